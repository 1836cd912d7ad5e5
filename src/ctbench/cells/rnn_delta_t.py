"""RNN-Δt: a GRU whose input is the observation, its mask and the elapsed time (PhysioNet baseline).

Rubanova, Chen & Duvenaud, NeurIPS 2019 (Table 6; the row of Nature Extended Data Fig. 6 is
theirs, via mTAN), ``reference/models.md`` §8.2. Their ``Classic_RNN`` (``lib/rnn_baselines.py``)
feeds ``GRUCell([x, mask, delta_t])``. This cell works on ctbench's masked input, which the data
module builds when it sets ``append_mask``: ``u = [x_ff, m]`` with ``x_ff`` the forward-filled
values (F columns) and ``m`` the observation mask (the second half, F columns)::

    x' = x_ff * m  (fill="zero": unobserved entries 0, as in Rubanova's data)   or   x_ff (fill="forward")
    h' = GRU([x', m, dt], h)          (torch nn.GRUCell equations, cells.gru)

Differences from Rubanova's code, which cannot be reproduced inside a per-step cell:
- their delta_t at step i is t_{i+1} - t_i (the gap to the NEXT time point, 0 at the last), on
  the union of the batch's time points; here dt is the elapsed time before the step that the data
  module gives (under PhysioNet's protocol=paper that is the authors' negated, lagged elapsed time);
- their hidden state is kept on time points without any observation; ctbench records have a row
  only where something was observed, and ``last_observed`` reads the output at the last such row.
"""

from __future__ import annotations

import math
from typing import List

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell
from ctbench.cells.gru import gru_update
from ctbench.cells.kernels import GateKernels

FILLS = ("zero", "forward")


def split_masked_input(x: Tensor) -> tuple[Tensor, Tensor]:
    """``[x_ff, m]`` -> (x_ff, m): the second half of the features is the observation mask."""
    if x.shape[-1] % 2:
        raise ValueError(f"expected [values, mask] inputs of even width, got {x.shape[-1]} features")
    return x.chunk(2, dim=-1)


class RNNDeltaTCell(GateKernels, Cell):
    """GRU on ``[x', m, dt]``; ``input_size`` = 2F (values and mask, as ``append_mask`` feeds them)."""

    def __init__(self, input_size: int, hidden_size: int, fill: str = "zero") -> None:
        super().__init__()
        if input_size % 2:
            raise ValueError(f"RNN-Δt needs [values, mask] inputs (data module with append_mask): input_size {input_size} is odd")
        if fill not in FILLS:
            raise ValueError(f"unknown fill {fill!r}; known: {', '.join(FILLS)}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.fill = fill
        self.build_gate_kernels(input_size, hidden_size, 3, time_input=True, time_before_recurrent=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)  # nn.GRUCell's default
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def gru_input(self, x: Tensor) -> Tensor:
        """``[x', m]`` from ``[x_ff, m]`` (elementwise, valid for any leading shape)."""
        values, mask = split_masked_input(x)
        if self.fill == "zero":
            values = values * mask
        return torch.cat([values, mask], dim=-1)

    def project_inputs(self, x: Tensor) -> Tensor:
        """The GRU's input gates without the dt column, shape (..., 3*hidden)."""
        return self.input_kernel(self.gru_input(x))

    def step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        return gru_update(self.add_time_input(u, dt), self.recurrent_kernel(state), state)

    def regularized_weights(self) -> List[Tensor]:  # this order (not GateKernels'), as before
        return [self.input_kernel.weight, self.time_kernel, self.recurrent_kernel.weight]

    def extra_repr(self) -> str:
        return f"fill={self.fill!r}"
