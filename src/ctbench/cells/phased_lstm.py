"""PhasedLSTM (Neil, Pfeiffer & Liu, NeurIPS 2016) as ``PhasedLSTM`` in ``mlech26l/ode-lstms``
``node_cell.py`` (``reference/models.md`` §8.1): the time gate's phase is computed from the
observation's elapsed dt, not from the absolute timestamp.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ctbench.cells.base import Cell, State
from ctbench.cells.cfc import check_choice
from ctbench.cells.ode_lstms_parts import glorot_uniform_

RISES: Tuple[str, ...] = ("ode_lstms", "paper")


class PhasedLSTMCell(Cell):
    """PhasedLSTM, state ``(h, c)``; LSTM gates in Keras order i, f, g, o::

        tau, s, r_on = softplus(tau_raw), softplus(s_raw), softplus(r_on_raw)   (scalars, raw 0 at init)
        phi = ((dt - s) mod tau) / tau                                          (floor mod, phi in [0, 1))
        k = 2 phi r_on         if phi < r_on / 2      (rise="ode_lstms", as coded; "paper": 2 phi / r_on)
            2 - 2 phi / r_on   elif phi < r_on
            leak * phi         otherwise              (leak alpha = 0.001)
        [i, f, g, o] = W_x x + W_h h + b
        c~ = sigma(f + forget_bias) * c + sigma(i) * tanh(g),   h~ = sigma(o) * tanh(c~)
        c' = k c~ + (1 - k) c,   h' = k h~ + (1 - k) h

    As ode-lstms: one (tau, s, r_on) shared by all units (Neil et al. learn them per unit), the
    phase taken from dt, r_on not clipped to (0, 1), forget bias +1. Glorot input kernel,
    orthogonal recurrent kernel, zero bias; ``W_x x + b`` is precomputed.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        leak: float = 0.001,
        forget_bias: float = 1.0,
        rise: str = "ode_lstms",
    ) -> None:
        super().__init__()
        check_choice(rise, RISES, "PhasedLSTM rise")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.leak = float(leak)
        self.forget_bias = float(forget_bias)
        self.rise = rise
        self.input_kernel = nn.Linear(input_size, 4 * hidden_size)
        self.recurrent_kernel = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.tau_raw = nn.Parameter(torch.zeros(1))
        self.shift_raw = nn.Parameter(torch.zeros(1))
        self.r_on_raw = nn.Parameter(torch.zeros(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_uniform_([self.input_kernel.weight], self.input_size, 4 * self.hidden_size)
        nn.init.zeros_(self.input_kernel.bias)
        nn.init.orthogonal_(self.recurrent_kernel.weight)
        for p in (self.tau_raw, self.shift_raw, self.r_on_raw):
            nn.init.zeros_(p)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def project_inputs(self, x: Tensor) -> Tensor:
        """``W_x x + b`` for the four gates, shape (..., 4*hidden)."""
        return self.input_kernel(x)

    def time_gate(self, dt: Tensor) -> Tensor:
        """The openness k of each sample, shape (B, 1)."""
        tau = F.softplus(self.tau_raw)
        shift = F.softplus(self.shift_raw)
        r_on = F.softplus(self.r_on_raw)
        phi = torch.remainder(dt.unsqueeze(-1) - shift, tau) / tau
        rising = 2.0 * phi * r_on if self.rise == "ode_lstms" else 2.0 * phi / r_on
        return torch.where(phi < 0.5 * r_on, rising, torch.where(phi < r_on, 2.0 - 2.0 * phi / r_on, self.leak * phi))

    def step(self, u: Tensor, state: State, dt: Tensor) -> State:
        h, c = state
        k = self.time_gate(dt.to(h.dtype))
        i, f, g, o = (u + self.recurrent_kernel(h)).chunk(4, dim=-1)
        c_tilde = torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(g)
        h_tilde = torch.sigmoid(o) * torch.tanh(c_tilde)
        return (k * h_tilde + (1.0 - k) * h, k * c_tilde + (1.0 - k) * c)

    def output(self, state: State) -> Tensor:
        return state[0]

    def extra_repr(self) -> str:
        return f"leak={self.leak}, forget_bias={self.forget_bias}, rise={self.rise!r}"
