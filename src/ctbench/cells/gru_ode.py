"""GRU-ODE (De Brouwer, Simm, Arany & Moreau, "GRU-ODE-Bayes", NeurIPS 2019) without the
Bayesian update, as ``GRUODE`` in ``mlech26l/ode-lstms`` ``node_cell.py``
(``reference/models.md`` §8.1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell
from ctbench.cells.ode_lstms_parts import glorot_uniform_


class GRUODECell(Cell):
    """GRU-ODE: the GRU's continuous-time limit, integrated by ``num_unfolds`` Euler steps over dt::

        r = sigma(W_r [x, h] + b_r),  z = sigma(W_z [x, h] + b_z)
        g = tanh(W_g [x, r * h] + b_g)
        dh/dt = (1 - z) * (g - h),    h <- h + (dt / N) * dh/dt,  N = num_unfolds times

    x is held fixed over the dt. Init as ode-lstms' Keras ``Dense`` layers: Glorot over each
    fused (input + H, H) kernel, zero biases except the reset gate's, which starts at
    ``reset_bias`` (ode-lstms: ``constant_initializer(1)``). The input parts
    ``W_{r,z,g} x + b`` are precomputed by :meth:`project_inputs`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_unfolds: int = 4, reset_bias: float = 1.0) -> None:
        super().__init__()
        if num_unfolds < 1:
            raise ValueError(f"num_unfolds must be >= 1, got {num_unfolds}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_unfolds = int(num_unfolds)
        self.reset_bias = float(reset_bias)
        self.input_kernel = nn.Linear(input_size, 3 * hidden_size)  # rows [r; z; g]
        self.recurrent_kernel = nn.Linear(hidden_size, 2 * hidden_size, bias=False)  # h -> [r; z]
        self.candidate_kernel = nn.Linear(hidden_size, hidden_size, bias=False)  # r * h -> g
        self.reset_parameters()

    def reset_parameters(self) -> None:
        h = self.hidden_size
        glorot_uniform_([self.input_kernel.weight, self.recurrent_kernel.weight, self.candidate_kernel.weight], self.input_size + h, h)
        with torch.no_grad():
            self.input_kernel.bias.zero_()
            self.input_kernel.bias[:h].fill_(self.reset_bias)

    def project_inputs(self, x: Tensor) -> Tensor:
        """``W_{r,z,g} x + b``, shape (..., 3*hidden)."""
        return self.input_kernel(x)

    def derivative(self, u: Tensor, h: Tensor) -> Tensor:
        n = self.hidden_size
        r, z = (u[..., : 2 * n] + self.recurrent_kernel(h)).sigmoid().chunk(2, dim=-1)
        g = torch.tanh(u[..., 2 * n :] + self.candidate_kernel(r * h))
        return (1.0 - z) * (g - h)

    def step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        h = state
        step = (dt.to(h.dtype) / self.num_unfolds).unsqueeze(-1)
        for _ in range(self.num_unfolds):
            h = h + step * self.derivative(u, h)
        return h

    def extra_repr(self) -> str:
        return f"num_unfolds={self.num_unfolds}, reset_bias={self.reset_bias}"
