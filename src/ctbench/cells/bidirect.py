"""The "Bi-directional RNN" baseline of the ODE-LSTM paper (Lechner & Hasani, NeurIPS 2020), as
``BidirectionalRNN`` (model ``bidirect``) in ``mlech26l/ode-lstms`` ``node_cell.py``
(``reference/models.md`` §8.1).

**Not a time-reversed (forward + backward) bidirectional RNN**: the two "directions" are two
cells running forward in time side by side, an LSTM and a CT-RNN, each reading the other's
previous state.
"""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell, State
from ctbench.cells.kernels import lstm_update
from ctbench.cells.ode_lstms_parts import EulerCTRNN, glorot_uniform_


class BidirectRNNCell(Cell):
    """An LSTM and a CT-RNN exchanging states; state ``(c, h_lstm, h_ctrnn)``, output their sum.

    **Not a time-reversed bidirectional RNN** (both cells run forward in time)::

        LSTM (ode-lstms LSTMCell, gate order g, i, f, o) on input [x, h_ctrnn, dt]:
            [g, i, f, o] = W_x x + W_c h_ctrnn + w_t dt + W_h h_lstm + b
            c' = sigma(f + forget_bias) * c + sigma(i) * tanh(g),  h_lstm' = sigma(o) * tanh(c')
        CT-RNN on input [x, h_lstm] (the previous h_lstm), num_unfolds Euler steps over dt:
            dh/dt = s * tanh(V_x x + V_l h_lstm + b_v + W_rec h) - tau * h,  from h = h_ctrnn
        output = h_lstm' + h_ctrnn'

    ode-lstms' LSTMCell concatenates the elapsed time to its input, so the LSTM sees dt
    (``time_input``; models.md lists only [x, h_ctrnn]). Init as ode-lstms: Glorot over the LSTM's
    whole input kernel ((input + H + 1, 4H), the dt column included) and over the CT-RNN's
    ((input + H, H)), orthogonal recurrent kernels, zero biases, s = 1. The x parts
    ``[W_x x + b; V_x x + b_v]`` are precomputed by :meth:`project_inputs`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        forget_bias: float = 1.0,
        time_input: bool = True,
        num_unfolds: int = 4,
        tau: float = 1.0,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.forget_bias = float(forget_bias)
        self.time_input = bool(time_input)
        h = hidden_size
        self.input_kernel = nn.Linear(input_size, 5 * h)  # x -> [LSTM gates (4H); CT-RNN input (H)]
        self.lstm_from_ctrnn = nn.Linear(h, 4 * h, bias=False)  # W_c
        self.lstm_recurrent = nn.Linear(h, 4 * h, bias=False)  # W_h
        self.ctrnn_from_lstm = nn.Linear(h, h, bias=False)  # V_l
        if self.time_input:
            self.time_kernel = nn.Parameter(torch.empty(4 * h))  # w_t
        else:
            self.register_parameter("time_kernel", None)
        self.ctrnn = EulerCTRNN(h, num_unfolds=num_unfolds, tau=tau)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        h = self.hidden_size
        w_x = self.input_kernel.weight
        lstm_fan_in = self.input_size + h + (1 if self.time_input else 0)
        lstm_parts = [w_x[: 4 * h], self.lstm_from_ctrnn.weight]
        if self.time_kernel is not None:
            lstm_parts.append(self.time_kernel)
        glorot_uniform_(lstm_parts, lstm_fan_in, 4 * h)
        glorot_uniform_([w_x[4 * h :], self.ctrnn_from_lstm.weight], self.input_size + h, h)
        nn.init.zeros_(self.input_kernel.bias)
        nn.init.orthogonal_(self.lstm_recurrent.weight)
        self.ctrnn.reset_parameters()

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone(), zeros.clone())

    def project_inputs(self, x: Tensor) -> Tensor:
        """``[W_x x + b; V_x x + b_v]``, shape (..., 5*hidden)."""
        return self.input_kernel(x)

    def step(self, u: Tensor, state: State, dt: Tensor) -> State:
        c, h_lstm, h_ctrnn = state
        n = self.hidden_size
        dtc = dt.to(c.dtype)
        z = u[..., : 4 * n] + self.lstm_from_ctrnn(h_ctrnn) + self.lstm_recurrent(h_lstm)
        if self.time_kernel is not None:
            z = z + dtc.unsqueeze(-1) * self.time_kernel
        g, i, f, o = z.chunk(4, dim=-1)
        h_lstm_new, c_new = lstm_update(i, f, g, o, c, self.forget_bias)
        v = u[..., 4 * n :] + self.ctrnn_from_lstm(h_lstm)
        h_ctrnn_new = self.ctrnn.evolve(v, h_ctrnn, dtc)
        return (c_new, h_lstm_new, h_ctrnn_new)

    def output(self, state: State) -> Tensor:
        return state[1] + state[2]

    def regularized_weights(self) -> List[Tensor]:
        """All kernels: LSTM (with its dt column) and CT-RNN, input and recurrent."""
        weights = [
            self.input_kernel.weight,
            self.lstm_from_ctrnn.weight,
            self.lstm_recurrent.weight,
            self.ctrnn_from_lstm.weight,
            self.ctrnn.recurrent.weight,
        ]
        if self.time_kernel is not None:
            weights.append(self.time_kernel)
        return weights

    def extra_repr(self) -> str:
        return f"forget_bias={self.forget_bias}, time_input={self.time_input}"
