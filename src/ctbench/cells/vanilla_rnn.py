"""Vanilla (Elman) RNN with ``torch.nn.RNNCell`` conventions.

    h' = act(W_ih x' + b_ih + W_hh h + b_hh),   act = tanh (default) or relu,   x' = [x, dt] if time_input

Elman, *Cognitive Science* 1990; the IMDB "Vanilla RNN" row (Nature Extended Data Fig. 8) is
HiPPO's (Gu et al. 2020) tanh RNN. Init as ``nn.RNNCell``: uniform in +-1/sqrt(hidden_size).
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ctbench.cells.base import Cell
from ctbench.cells.gru import CANDIDATE_ACTIVATIONS
from ctbench.cells.kernels import GateKernels


class VanillaRNNCell(GateKernels, Cell):
    """tanh RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (``nn.RNNCell`` layout)."""

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh", time_input: bool = False) -> None:
        super().__init__()
        if nonlinearity not in CANDIDATE_ACTIVATIONS:
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}; known: {', '.join(CANDIDATE_ACTIVATIONS)}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.nonlinearity = nonlinearity
        self.activation = CANDIDATE_ACTIVATIONS[nonlinearity]
        self.time_input = time_input
        self.build_gate_kernels(input_size, hidden_size, 1, time_input=time_input)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)  # nn.RNNCell's default
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        return self.activation(self.add_time_input(u + self.recurrent_kernel(state), dt))

    def extra_repr(self) -> str:
        return f"nonlinearity={self.nonlinearity!r}, time_input={self.time_input}"
