"""The GRU of Kim, Can & Krishnamurthy's code (``RNNTools.jl``; ``../shared/reference/gnode.md`` G2.2).

Not ``torch.nn.GRU``: the reset gate acts on h *before* the recurrent matrix, each gate has one
bias, and z = 1 means a full update::

    z = sigmoid(W_z h + U_z x + b_z),  r = sigmoid(W_r h + U_r x + b_r)
    h~ = tanh(W_h (r * h) + U_h x + b_h)
    h' = (1 - z) * h + z * h~                                   (alpha = dt / tau = 1)

For general alpha the step follows the gated family of G2.2, h' = (1 - alpha z) h + alpha z h~
(``integrator="euler"``), or the exact step with z and h~ frozen, h' = h~ + (h - h~) exp(-alpha z)
(``integrator="exact"``; not the authors'). The authors' GRU is discrete only; these two are
ctbench's extensions to alpha != 1 and reduce to the line above at alpha = 1 (euler).

Parameters 3 (N^2 + nN + N). Init as the other gnODE-family cells: each gate's [W U] Glorot
uniform as one matrix (fan_in = N + n), biases N(0, 1e-3^2); ``h0`` as every cell of the family
(:class:`ctbench.cells.gnode.GNODEFamilyCell`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ctbench.cells.cfc import check_choice
from ctbench.cells.gnode import BIAS_STD, GNODEFamilyCell

GRU_INTEGRATORS = ("euler", "exact")


class GNODEGRUCell(GNODEFamilyCell):
    """The authors' one-bias, reset-before-matrix GRU; equations in the module docstring."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        tau: float = 1.0,
        integrator: str = "euler",
        h0: str = "zero",
    ) -> None:
        super().__init__()
        check_choice(integrator, GRU_INTEGRATORS, "GRU integrator")
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.tau = float(tau)
        self.integrator = integrator
        self.input_kernel = nn.Linear(input_size, 3 * hidden_size, bias=False)  # [U_z; U_r; U_h]
        self.gate_kernel = nn.Linear(hidden_size, 2 * hidden_size)  # [W_z; W_r], [b_z; b_r]
        self.candidate_kernel = nn.Linear(hidden_size, hidden_size)  # W_h, b_h
        self._init_h0(h0)
        self.reset_parameters()

    def core_parameters(self):
        return [*self.input_kernel.parameters(), *self.gate_kernel.parameters(), *self.candidate_kernel.parameters()]

    def reset_parameters(self) -> None:
        n, N = self.input_size, self.hidden_size
        with torch.no_grad():
            for g in range(3):
                w = torch.empty(N, N + n)
                nn.init.xavier_uniform_(w)
                self.input_kernel.weight[g * N : (g + 1) * N].copy_(w[:, N:])
                if g < 2:
                    self.gate_kernel.weight[g * N : (g + 1) * N].copy_(w[:, :N])
                else:
                    self.candidate_kernel.weight.copy_(w[:, :N])
            self.gate_kernel.bias.normal_(0.0, BIAS_STD)
            self.candidate_kernel.bias.normal_(0.0, BIAS_STD)
        self._reset_h0()

    def input_drive(self, x: Tensor) -> Tensor:
        """[U_z x, U_r x, U_h x]."""
        return self.input_kernel(x)

    def _step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        N = self.hidden_size
        gates = torch.sigmoid(self.gate_kernel(state) + u[..., : 2 * N])
        z, r = gates[..., :N], gates[..., N:]
        cand = torch.tanh(self.candidate_kernel(r * state) + u[..., 2 * N :])
        alpha = (dt.to(state.dtype) / self.tau).unsqueeze(-1)
        if self.integrator == "euler":
            return state + alpha * z * (cand - state)
        return cand + (state - cand) * torch.exp(-alpha * z)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, integrator={self.integrator!r}, h0={self.h0_mode!r}"
