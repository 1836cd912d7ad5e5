"""CT-LSTM, the continuous-time LSTM of the Neural Hawkes Process (Mei & Eisner, NeurIPS 2017),
as ``HawkLSTMCell`` in ``mlech26l/ode-lstms`` ``node_cell.py`` (``reference/models.md`` §8.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ctbench.cells.base import Cell, State
from ctbench.cells.kernels import GateKernels
from ctbench.cells.ode_lstms_parts import glorot_uniform_


class CTLSTMCell(GateKernels, Cell):
    """CT-LSTM, state ``(c, c_bar, h)``; seven pre-activations in ode-lstms order::

        [g, i, f, o, i_bar, f_bar, d] = W_x x + W_h h + b
        c'     = sigma(f) * c + sigma(i) * tanh(g)
        c_bar' = sigma(f_bar) * c_bar + sigma(i_bar) * tanh(g)
        delta  = softplus(d)
        c(dt)  = c_bar' + (c' - c_bar') * exp(-delta * dt)
        h'     = sigma(o) * tanh(c(dt))                     (output and next recurrent input)

    As ode-lstms (not Mei & Eisner's event-time bookkeeping): the update and the decay happen in
    the same step, the decay runs over this observation's dt, and the stored ``c'`` is the
    undecayed value (only h' sees the decayed cell). No forget-gate bias. Glorot input kernel
    over (input, 7H), orthogonal recurrent kernel, zero bias; ``W_x x + b`` is precomputed.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.build_gate_kernels(input_size, hidden_size, 7, recurrent_bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_uniform_([self.input_kernel.weight], self.input_size, 7 * self.hidden_size)
        nn.init.zeros_(self.input_kernel.bias)
        nn.init.orthogonal_(self.recurrent_kernel.weight)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone(), zeros.clone())

    def step(self, u: Tensor, state: State, dt: Tensor) -> State:
        c, c_bar, h = state
        g, i, f, o, i_bar, f_bar, d = (u + self.recurrent_kernel(h)).chunk(7, dim=-1)
        g = torch.tanh(g)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * g
        c_bar_new = torch.sigmoid(f_bar) * c_bar + torch.sigmoid(i_bar) * g
        decay = torch.exp(-F.softplus(d) * dt.to(h.dtype).unsqueeze(-1))
        c_t = c_bar_new + (c_new - c_bar_new) * decay
        h_new = torch.sigmoid(o) * torch.tanh(c_t)
        return (c_new, c_bar_new, h_new)

    def output(self, state: State) -> Tensor:
        return state[2]
