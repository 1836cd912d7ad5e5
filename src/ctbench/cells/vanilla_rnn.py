"""Vanilla (Elman) RNN with ``torch.nn.RNNCell`` conventions.

    h' = act(W_ih x' + b_ih + W_hh h + b_hh),   act = tanh (default) or relu,   x' = [x, dt] if time_input

Elman, *Cognitive Science* 1990; the IMDB "Vanilla RNN" row (Nature Extended Data Fig. 8) is
HiPPO's (Gu et al. 2020) tanh RNN. Init as ``nn.RNNCell``: uniform in +-1/sqrt(hidden_size).
"""

from __future__ import annotations

import math
from typing import List

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell
from ctbench.cells.gru import CANDIDATE_ACTIVATIONS


class VanillaRNNCell(Cell):
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
        self.input_kernel = nn.Linear(input_size, hidden_size)
        self.recurrent_kernel = nn.Linear(hidden_size, hidden_size)
        if time_input:
            self.time_kernel = nn.Parameter(torch.empty(hidden_size))
        else:
            self.register_parameter("time_kernel", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)  # nn.RNNCell's default
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def project_inputs(self, x: Tensor) -> Tensor:
        """``W_ih x + b_ih``, shape (..., hidden)."""
        return self.input_kernel(x)

    def step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        pre = u + self.recurrent_kernel(state)
        if self.time_kernel is not None:
            pre = pre + dt.to(u.dtype).unsqueeze(-1) * self.time_kernel
        return self.activation(pre)

    def regularized_weights(self) -> List[Tensor]:
        weights = [self.input_kernel.weight, self.recurrent_kernel.weight]
        if self.time_kernel is not None:
            weights.append(self.time_kernel)
        return weights

    def extra_repr(self) -> str:
        return f"nonlinearity={self.nonlinearity!r}, time_input={self.time_input}"
