"""RNN-Decay as ode-lstms runs it: ``VanillaRNN`` (model ``vanilla``) in ``mlech26l/ode-lstms``
``node_cell.py`` (``reference/models.md`` §8.1). Not the RNN-Decay of Rubanova et al. 2019 /
mTAN (a GRU whose state decays as h * exp(-tau dt)); the idea of a learned time decay follows
Rubanova et al. 2019 and Che et al. 2018.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell
from ctbench.cells.ode_lstms_parts import glorot_uniform_


class RNNDecayCell(Cell):
    """ode-lstms' "vanilla" RNN with a linear time decay::

        h' = W_o tanh(W_x x + W_h h + b) + b_o - dt * tau          (tau in R^H learned, init tau_init)

    The decay is subtracted, not multiplied (as coded). Init as ode-lstms' Keras ``Dense``
    layers: Glorot over the fused (input + H, H) kernel and over W_o (H, H), zero biases,
    tau = 0.1. ``W_x x + b`` is precomputed by :meth:`project_inputs`.
    """

    def __init__(self, input_size: int, hidden_size: int, tau_init: float = 0.1) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.tau_init = float(tau_init)
        self.input_kernel = nn.Linear(input_size, hidden_size)
        self.recurrent_kernel = nn.Linear(hidden_size, hidden_size, bias=False)
        self.out_layer = nn.Linear(hidden_size, hidden_size)
        self.tau = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        h = self.hidden_size
        glorot_uniform_([self.input_kernel.weight, self.recurrent_kernel.weight], self.input_size + h, h)
        glorot_uniform_([self.out_layer.weight], h, h)
        nn.init.zeros_(self.input_kernel.bias)
        nn.init.zeros_(self.out_layer.bias)
        nn.init.constant_(self.tau, self.tau_init)

    def project_inputs(self, x: Tensor) -> Tensor:
        """``W_x x + b``, shape (..., hidden)."""
        return self.input_kernel(x)

    def step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        hidden = torch.tanh(u + self.recurrent_kernel(state))
        return self.out_layer(hidden) - dt.to(state.dtype).unsqueeze(-1) * self.tau

    def extra_repr(self) -> str:
        return f"tau_init={self.tau_init}"
