"""LSTM cells: the "Augmented LSTM" (input [x, dt]) of the ODE-LSTM tables and a plain LSTM.

As ode-lstms / Keras ``LSTMCell`` (``reference/models.md`` §8.1): Glorot-uniform input kernel,
orthogonal recurrent kernel, zero biases, ``forget_bias`` added to the forget gate.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell, State
from ctbench.cells.kernels import GateKernels, lstm_update


class LSTMCell(GateKernels, Cell):
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
        self.build_gate_kernels(input_size, hidden_size, 4, recurrent_bias=False, time_input=time_input)
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

    def step(self, u: Tensor, state: State, dt: Tensor) -> State:
        h, c = state
        i, f, g, o = self.add_time_input(u + self.recurrent_kernel(h), dt).chunk(4, dim=-1)
        return lstm_update(i, f, g, o, c, self.forget_bias)

    def output(self, state: State) -> Tensor:
        return state[0]

    def extra_repr(self) -> str:
        return f"time_input={self.time_input}, forget_bias={self.forget_bias}"
