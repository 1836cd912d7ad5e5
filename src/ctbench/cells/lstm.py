"""LSTM cells: the "Augmented LSTM" (input [x, dt]) of the ODE-LSTM tables and a plain LSTM.

As ode-lstms / Keras ``LSTMCell`` (``reference/models.md`` §8.1): Glorot-uniform input kernel,
orthogonal recurrent kernel, zero biases, ``forget_bias`` added to the forget gate.
"""

from __future__ import annotations

import math
from typing import List

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell, State


class LSTMCell(Cell):
    """LSTM (Hochreiter & Schmidhuber 1997), state ``(h, c)``; gates in Keras order i, f, g, o::

        [i, f, g, o] = W_x x' + W_h h + b,   x' = [x, dt] if time_input else x
        c' = sigma(f + forget_bias) * c + sigma(i) * tanh(g)
        h' = sigma(o) * tanh(c')

    ``W_x x + b`` is precomputed by :meth:`project_inputs`; with ``time_input`` the dt column of the
    input kernel (``time_kernel``) is applied in :meth:`step`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        time_input: bool = True,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.time_input = time_input
        self.forget_bias = float(forget_bias)
        self.input_kernel = nn.Linear(input_size, 4 * hidden_size)
        self.recurrent_kernel = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        if time_input:
            self.time_kernel = nn.Parameter(torch.empty(4 * hidden_size))
        else:
            self.register_parameter("time_kernel", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Glorot over the whole input kernel, the dt column included: fan_in = input_size (+1).
        fan_in = self.input_size + (1 if self.time_input else 0)
        bound = math.sqrt(6.0 / (fan_in + 4 * self.hidden_size))
        with torch.no_grad():
            self.input_kernel.weight.uniform_(-bound, bound)
            if self.time_kernel is not None:
                self.time_kernel.uniform_(-bound, bound)
        nn.init.zeros_(self.input_kernel.bias)
        nn.init.orthogonal_(self.recurrent_kernel.weight)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def project_inputs(self, x: Tensor) -> Tensor:
        """``W_x x + b`` for all four gates, shape (..., 4*hidden)."""
        return self.input_kernel(x)

    def step(self, u: Tensor, state: State, dt: Tensor) -> State:
        h, c = state
        z = u + self.recurrent_kernel(h)
        if self.time_kernel is not None:
            z = z + dt.to(z.dtype).unsqueeze(-1) * self.time_kernel
        i, f, g, o = z.chunk(4, dim=-1)
        c_new = torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        return (h_new, c_new)

    def output(self, state: State) -> Tensor:
        return state[0]

    def regularized_weights(self) -> List[Tensor]:
        """Input kernel (with its dt column) and recurrent kernel."""
        weights = [self.input_kernel.weight, self.recurrent_kernel.weight]
        if self.time_kernel is not None:
            weights.append(self.time_kernel)
        return weights

    def extra_repr(self) -> str:
        return f"time_input={self.time_input}, forget_bias={self.forget_bias}"
