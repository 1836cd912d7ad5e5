"""ODE-LSTM (Lechner & Hasani, "Learning long-term dependencies in irregularly-sampled time
series", NeurIPS 2020), as ``ODELSTM`` in ``mlech26l/ode-lstms`` ``node_cell.py``
(``reference/models.md`` §8.1).
"""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell, State
from ctbench.cells.kernels import GateKernels, lstm_update
from ctbench.cells.ode_lstms_parts import EulerCTRNN, glorot_uniform_


class ODELSTMCell(GateKernels, Cell):
    """ODE-LSTM, state ``(c, h_ode)``; gates in ode-lstms order g, i, f, o::

        [g, i, f, o] = W_x x + W_h h_ode + b
        c' = sigma(f + forget_bias) * c + sigma(i) * tanh(g)
        y  = sigma(o) * tanh(c')                                   (the LSTM output)
        h_ode' = CT-RNN(input y, initial state h_ode) over dt:
                 dh/dt = s * tanh(W_in y + W_rec h + b_in) - tau * h,  num_unfolds Euler steps

    The output is ``h_ode'``. ode-lstms defaults: forget bias +3, Euler x4, tau = 1; Glorot
    input kernels (``W_x`` over (input, 4H), ``W_in`` over (H, H)), orthogonal ``W_h`` and
    ``W_rec``, zero biases, s = 1. ``W_x x + b`` is precomputed by :meth:`project_inputs`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        forget_bias: float = 3.0,
        num_unfolds: int = 4,
        tau: float = 1.0,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.forget_bias = float(forget_bias)
        self.build_gate_kernels(input_size, hidden_size, 4, recurrent_bias=False)
        self.ode_input = nn.Linear(hidden_size, hidden_size)  # the CT-RNN's W_in, b_in
        self.ctrnn = EulerCTRNN(hidden_size, num_unfolds=num_unfolds, tau=tau)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        h = self.hidden_size
        glorot_uniform_([self.input_kernel.weight], self.input_size, 4 * h)
        nn.init.zeros_(self.input_kernel.bias)
        nn.init.orthogonal_(self.recurrent_kernel.weight)
        glorot_uniform_([self.ode_input.weight], h, h)
        nn.init.zeros_(self.ode_input.bias)
        self.ctrnn.reset_parameters()

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def step(self, u: Tensor, state: State, dt: Tensor) -> State:
        c, h_ode = state
        g, i, f, o = (u + self.recurrent_kernel(h_ode)).chunk(4, dim=-1)
        y, c_new = lstm_update(i, f, g, o, c, self.forget_bias)
        h_new = self.ctrnn.evolve(self.ode_input(y), h_ode, dt)
        return (c_new, h_new)

    def output(self, state: State) -> Tensor:
        return state[1]

    def regularized_weights(self) -> List[Tensor]:
        return [self.input_kernel.weight, self.recurrent_kernel.weight, self.ode_input.weight, self.ctrnn.recurrent.weight]

    def extra_repr(self) -> str:
        return f"forget_bias={self.forget_bias}"
