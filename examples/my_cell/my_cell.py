"""An example of a user's own cell, run against a published table by ``make compare``.

A leaky tanh RNN whose state relaxes towards its target with a learned time constant over the
observed elapsed time:

    h' = h + (1 - exp(-dt / tau)) * (tanh(W x + U h + b) - h),    tau = softplus(rho) + tau_min

It follows ``ctbench.cells.base.Cell``: ``project_inputs`` (input-only work, applied to a whole
sequence at once) and ``step`` (per-step recurrent work). Nothing else in ctbench changes:
``conf/model/my_cell.yaml`` names this class in ``_target_``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ctbench.cells.base import Cell


class LeakyTimeRNNCell(Cell):
    def __init__(self, input_size: int, hidden_size: int, tau_min: float = 0.1) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.tau_min = input_size, hidden_size, tau_min
        self.input_proj = nn.Linear(input_size, hidden_size)
        self.recurrent = nn.Linear(hidden_size, hidden_size, bias=False)
        self.rho = nn.Parameter(torch.zeros(hidden_size))

    def project_inputs(self, x: Tensor) -> Tensor:
        return self.input_proj(x)

    def step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        target = torch.tanh(u + self.recurrent(state))
        tau = F.softplus(self.rho) + self.tau_min
        alpha = 1.0 - torch.exp(-dt.unsqueeze(-1) / tau)
        return state + alpha * (target - state)
