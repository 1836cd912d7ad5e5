"""RNN-Impute: a GRU whose missing inputs are imputed from the last observation and the mean.

Che, Purushotham, Cho, Sontag & Liu, *Scientific Reports* 2018 (GRU-D's input decay), as run by
Rubanova, Chen & Duvenaud, NeurIPS 2019 (``--classic-rnn --input-decay``; the row of Nature
Extended Data Fig. 6 is theirs, via mTAN), ``reference/models.md`` §8.2. On ctbench's masked
input ``u = [x_ff, m]`` (forward-filled values, then the observation mask; ``append_mask``)::

    delta_t   = delta_{t-1} + dt_t                    (per feature: time since its last observation)
    gamma_t   = exp(-clamp(w * delta_t + b, 0, 1000)) (per feature, w and b learned)
    x_hat     = m * x_ff + (1 - m) * (gamma_t * x_ff + (1 - gamma_t) * mu)
    h'        = GRU([x_hat, m] (+ [dt] if time_input), h)     (nn.GRUCell equations, cells.gru)
    delta_t  <- (1 - m) * delta_t                      (reset where observed; carried in the state)

At a missing entry ``x_ff`` is the last observed value (0 before the first), which is Rubanova's
``data_last_obsv``. State: ``(h, delta)``; the readout sees h.

What is not reproduced (it needs the whole batch or the whole sequence, which a causal per-step
cell never sees):
- Rubanova's "empirical mean" is the per-sample mean over time of the zero-filled data and Che's
  is the training-set mean; here mu is a learned per-feature vector initialised at ``input_mean``
  (default 0);
- Rubanova normalises the accumulated delta by its maximum over the batch; here delta is raw
  elapsed time (scale it with ``sequence.tau``);
- Rubanova's GRU also gets delta_t appended (every ``Classic_RNN`` GRU does): ``time_input=True``
  reproduces that; the default False follows the paper's definition (imputation only, no Δt),
  which is what separates this row from RNN-Δt;
- Rubanova's w and b are allocated uninitialised (``torch.Tensor(1, D)``); here w ~ U(0, 1),
  b = 0, so the imputation starts between the last value and the mean.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell, State
from ctbench.cells.gru import gru_update
from ctbench.cells.kernels import GateKernels
from ctbench.cells.rnn_delta_t import split_masked_input


class RNNImputeCell(GateKernels, Cell):
    """GRU on input-decay-imputed values; ``input_size`` = 2F ([values, mask]). State ``(h, delta)``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        time_input: bool = False,
        input_mean: Optional[Sequence[float]] = None,
        learn_mean: bool = True,
    ) -> None:
        super().__init__()
        if input_size % 2:
            raise ValueError(f"RNN-Impute needs [values, mask] inputs (data module with append_mask): input_size {input_size} is odd")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.n_features = input_size // 2
        self.time_input = time_input
        mean = torch.zeros(self.n_features) if input_mean is None else torch.as_tensor(list(input_mean), dtype=torch.float32)
        if mean.shape != (self.n_features,):
            raise ValueError(f"input_mean needs {self.n_features} values, got {tuple(mean.shape)}")
        if learn_mean:
            self.mean = nn.Parameter(mean.clone())
        else:
            self.register_buffer("mean", mean.clone())
        self.decay_weight = nn.Parameter(torch.empty(self.n_features))
        self.decay_bias = nn.Parameter(torch.zeros(self.n_features))
        self.build_gate_kernels(input_size, hidden_size, 3, time_input=time_input, time_before_recurrent=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)  # nn.GRUCell's default
        for p in (*self.input_kernel.parameters(), *self.recurrent_kernel.parameters()):
            nn.init.uniform_(p, -bound, bound)
        if self.time_kernel is not None:
            nn.init.uniform_(self.time_kernel, -bound, bound)
        nn.init.uniform_(self.decay_weight, 0.0, 1.0)
        nn.init.zeros_(self.decay_bias)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        return (
            torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype),
            torch.zeros(batch_size, self.n_features, device=device, dtype=dtype),
        )

    project_inputs = Cell.project_inputs  # identity: imputation needs the raw [x_ff, m] in step

    def impute(self, values: Tensor, mask: Tensor, delta: Tensor) -> Tensor:
        """x_hat from the forward-filled values, the mask and the time since each feature's last observation."""
        decay = torch.exp(-torch.clamp(self.decay_weight * delta + self.decay_bias, 0.0, 1000.0))
        guess = decay * values + (1.0 - decay) * self.mean
        return mask * values + (1.0 - mask) * guess

    def step(self, u: Tensor, state: Tuple[Tensor, Tensor], dt: Tensor) -> Tuple[Tensor, Tensor]:
        h, delta = state
        values, mask = split_masked_input(u)
        dtc = dt.to(u.dtype).unsqueeze(-1)
        delta = delta + dtc
        x_hat = self.impute(values, mask, delta)
        gi = self.add_time_input(self.input_kernel(torch.cat([x_hat, mask], dim=-1)), dt)
        h_new = gru_update(gi, self.recurrent_kernel(h), h)
        return (h_new, (1.0 - mask) * delta)

    def output(self, state: State) -> Tensor:
        return state[0]

    def extra_repr(self) -> str:
        return f"n_features={self.n_features}, time_input={self.time_input}"
