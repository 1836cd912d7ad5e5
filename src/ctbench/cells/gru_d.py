"""GRU-D (Che, Purushotham, Cho, Sontag & Liu, *Scientific Reports* 2018) as ode-lstms defines
it (``GRUD`` in ``mlech26l/ode-lstms`` ``node_cell.py``, ``reference/models.md`` §8.1): the
hidden-state decay only, **without** the original's input decay toward the empirical mean and
without mask inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ctbench.cells.base import Cell
from ctbench.cells.ode_lstms_parts import glorot_uniform_


class GRUDCell(Cell):
    """GRU-D (hidden decay only)::

        gamma = exp(-relu(w_d * dt + b_d))        (w_d, b_d in R^H: a Dense(H, relu) on dt)
        h_hat = gamma * h
        r = sigma(W_r [x, h_hat] + b_r),  z = sigma(W_z [x, h_hat] + b_z)
        g = tanh(W_g [x, r * h_hat] + b_g)
        h' = z * h_hat + (1 - z) * g

    Init as ode-lstms' Keras ``Dense`` layers: Glorot over each whole kernel (the gates' fused
    (input + H, H); the decay's (1, H)), zero biases. ``W_{r,z,g} x + b`` is precomputed.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.decay = nn.Linear(1, hidden_size)  # w_d, b_d
        self.input_kernel = nn.Linear(input_size, 3 * hidden_size)  # rows [r; z; g]
        self.recurrent_kernel = nn.Linear(hidden_size, 2 * hidden_size, bias=False)  # h_hat -> [r; z]
        self.candidate_kernel = nn.Linear(hidden_size, hidden_size, bias=False)  # r * h_hat -> g
        self.reset_parameters()

    def reset_parameters(self) -> None:
        h = self.hidden_size
        glorot_uniform_([self.decay.weight], 1, h)
        nn.init.zeros_(self.decay.bias)
        glorot_uniform_([self.input_kernel.weight, self.recurrent_kernel.weight, self.candidate_kernel.weight], self.input_size + h, h)
        nn.init.zeros_(self.input_kernel.bias)

    def project_inputs(self, x: Tensor) -> Tensor:
        """``W_{r,z,g} x + b``, shape (..., 3*hidden)."""
        return self.input_kernel(x)

    def step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        n = self.hidden_size
        gamma = torch.exp(-F.relu(self.decay(dt.to(state.dtype).unsqueeze(-1))))
        h_hat = gamma * state
        r, z = (u[..., : 2 * n] + self.recurrent_kernel(h_hat)).sigmoid().chunk(2, dim=-1)
        g = torch.tanh(u[..., 2 * n :] + self.candidate_kernel(r * h_hat))
        return z * h_hat + (1.0 - z) * g
