"""GRU cell with ``torch.nn.GRU`` conventions (fused gates r, z, n), and its candidate activation as a knob.

The IMDB "GRU" row of the CfC paper (Nature Extended Data Fig. 8) is HiPPO's number; the cell is
the standard GRU of Cho et al., EMNLP 2014, written as ``torch.nn.GRUCell`` computes it::

    [r_x, z_x, n_x] = W_ih x' + b_ih,   [r_h, z_h, n_h] = W_hh h + b_hh,   x' = [x, dt] if time_input
    r = sigma(r_x + r_h),  z = sigma(z_x + z_h)
    n = act(n_x + r * n_h)                       (act = tanh; relu for the ReLU GRU)
    h' = (1 - z) * n + z * h

Init as ``torch.nn.GRUCell``: every weight and bias uniform in +-1/sqrt(hidden_size). With
``time_input`` the elapsed time is one more input column (``time_kernel``), applied in
:meth:`step`; without it the cell ignores dt (a discrete-time RNN).
"""

from __future__ import annotations

import math
from typing import Callable, Dict

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell
from ctbench.cells.kernels import GateKernels

CANDIDATE_ACTIVATIONS: Dict[str, Callable[[Tensor], Tensor]] = {"tanh": torch.tanh, "relu": torch.relu}


def gru_update(gi: Tensor, gh: Tensor, h: Tensor, activation: Callable[[Tensor], Tensor] = torch.tanh) -> Tensor:
    """One GRU update from the input part ``gi`` and the recurrent part ``gh`` (both (B, 3H), order r, z, n)."""
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = activation(i_n + r * h_n)
    return (1.0 - z) * n + z * h


class GRUCell(GateKernels, Cell):
    """GRU (Cho et al. 2014) in ``torch.nn.GRUCell``'s form; see the module docstring for the equations.

    ``input_kernel`` holds ``weight_ih``/``bias_ih`` and ``recurrent_kernel`` holds
    ``weight_hh``/``bias_hh`` of ``nn.GRUCell`` (same layout, gates r, z, n).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        candidate_activation: str = "tanh",
        time_input: bool = False,
    ) -> None:
        super().__init__()
        if candidate_activation not in CANDIDATE_ACTIVATIONS:
            raise ValueError(f"unknown candidate_activation {candidate_activation!r}; known: {', '.join(CANDIDATE_ACTIVATIONS)}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.candidate_activation = candidate_activation
        self.activation = CANDIDATE_ACTIVATIONS[candidate_activation]
        self.time_input = time_input
        self.build_gate_kernels(input_size, hidden_size, 3, time_input=time_input)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)  # nn.GRUCell's default
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        return gru_update(self.add_time_input(u, dt), self.recurrent_kernel(state), state, self.activation)

    def extra_repr(self) -> str:
        return f"candidate_activation={self.candidate_activation!r}, time_input={self.time_input}"
