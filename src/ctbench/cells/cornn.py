"""coRNN: coupled oscillatory RNN (Rusch & Mishra, ICLR 2021), ``reference/models.md`` §8.1.

The second-order ODE y'' = tanh(W y + Wz y' + V u + b) - gamma y - epsilon y', written as the
first-order system y' = z, z' = ..., discretised implicit-explicit (their eq. 3) with step Delta::

    z_n = z_{n-1} + Delta [tanh(W y_{n-1} + Wz z_{n-1} + V u_n + b) - gamma y_{n-1} - epsilon z_m]
    y_n = y_{n-1} + Delta z_n

with m = n-1 (``implicit_damping=False``: what their released code ``tk-rusch/coRNN`` computes)
or m = n (``implicit_damping=True``: z_n = (z_{n-1} + Delta [tanh(.) - gamma y_{n-1}]) / (1 + Delta epsilon)).
The state is (y, z); the readout sees y.

Elapsed time: with ``use_elapsed_time`` (default) Delta = dt * elapsed, per sample, so equidistant
data with elapsed 1 gives their fixed step dt; with it off Delta = dt (their code, which has no
notion of elapsed time). Layout and init as their code: ``i2h = Linear(input, hidden)`` (V, b)
and ``h2h = Linear(2 hidden, hidden, bias=False)`` on [z, y] (Wz, W), torch's default init.

Defaults dt = 0.1, gamma = 0.2, epsilon = 6.4 are the argparse defaults of their HAR-2 script
(``HAR-2/har2_task.py``, 64 hidden units): the paper's only sensor time-series task. Their IMDB
script uses dt = 0.054, gamma = 4.9, epsilon = 4.8; sMNIST dt = 0.042, gamma = 2.7, epsilon = 4.7.
The CfC authors' settings for their re-runs are not released.
"""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell, State


class CoRNNCell(Cell):
    """coRNN cell, state ``(y, z)``; see the module docstring for the discretisation."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        dt: float = 0.1,
        gamma: float = 0.2,
        epsilon: float = 6.4,
        implicit_damping: bool = False,
        use_elapsed_time: bool = True,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.dt = float(dt)
        self.gamma = float(gamma)
        self.epsilon = float(epsilon)
        self.implicit_damping = implicit_damping
        self.use_elapsed_time = use_elapsed_time
        self.i2h = nn.Linear(input_size, hidden_size)
        self.h2h = nn.Linear(2 * hidden_size, hidden_size, bias=False)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def project_inputs(self, x: Tensor) -> Tensor:
        """``V u + b``, shape (..., hidden)."""
        return self.i2h(x)

    def step_size(self, dt: Tensor, dtype: torch.dtype) -> Tensor:
        """Delta per sample, shape (B, 1)."""
        if self.use_elapsed_time:
            return self.dt * dt.to(dtype).unsqueeze(-1)
        return torch.full((dt.shape[0], 1), self.dt, dtype=dtype, device=dt.device)

    def step(self, u: Tensor, state: Tuple[Tensor, Tensor], dt: Tensor) -> Tuple[Tensor, Tensor]:
        y, z = state
        delta = self.step_size(dt, u.dtype)
        force = torch.tanh(self.h2h(torch.cat([z, y], dim=-1)) + u) - self.gamma * y
        if self.implicit_damping:
            z_new = (z + delta * force) / (1.0 + delta * self.epsilon)
        else:
            z_new = z + delta * (force - self.epsilon * z)
        y_new = y + delta * z_new
        return (y_new, z_new)

    def output(self, state: State) -> Tensor:
        return state[0]

    def regularized_weights(self) -> List[Tensor]:
        return [self.i2h.weight, self.h2h.weight]

    def extra_repr(self) -> str:
        return (f"dt={self.dt}, gamma={self.gamma}, epsilon={self.epsilon}, "
                f"implicit_damping={self.implicit_damping}, use_elapsed_time={self.use_elapsed_time}")
