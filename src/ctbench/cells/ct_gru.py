"""CT-GRU (Mozer, Kazakov & Lindsey, "Discrete event, continuous time RNNs", arXiv 1710.04110,
2017), as ``CTGRU`` in ``mlech26l/ode-lstms`` ``node_cell.py`` (``reference/models.md`` §8.1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell, State
from ctbench.cells.ode_lstms_parts import glorot_uniform_


class CTGRUCell(Cell):
    """CT-GRU with M traces per unit at time scales tau_k = tau_min * tau_ratio**k (k = 0..M-1;
    defaults 1, sqrt(10): tau_k = 10^(k/2)). State ``(h_hat,)``, h_hat of shape (B, H*M)
    (unit-major: the M traces of unit j are columns j*M .. j*M+M-1, as ode-lstms). Per step::

        h   = sum_k h_hat_k
        r_k = softmax_k(-(W_r [x, h] + b_r - ln tau_k)^2)                  (retrieval scale)
        q   = tanh(W_q [x, sum_k r_k h_hat_k] + b_q)                       (detected event)
        s_k = softmax_k(-(W_s [x, h] + b_s - ln tau_k)^2)                  (storage scale)
        h_hat_k' = ((1 - s_k) h_hat_k + s_k q) * exp(-dt / tau_k)
        output h' = sum_k h_hat_k'

    W_r, W_s map to H*M log-time-scales; W_q to H. Init as ode-lstms' Keras ``Dense`` layers:
    Glorot over each whole fused kernel (fan_in = input + H), zero biases. The input parts
    ``W_r x + b_r``, ``W_s x + b_s``, ``W_q x + b_q`` are precomputed by :meth:`project_inputs`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_traces: int = 8,
        tau_min: float = 1.0,
        tau_ratio: float = math.sqrt(10.0),
    ) -> None:
        super().__init__()
        if num_traces < 1 or not tau_min > 0 or not tau_ratio > 0:
            raise ValueError(f"need num_traces >= 1, tau_min > 0, tau_ratio > 0; got {num_traces}, {tau_min}, {tau_ratio}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_traces = int(num_traces)
        self.tau_min = float(tau_min)
        self.tau_ratio = float(tau_ratio)
        hm = hidden_size * self.num_traces
        # input parts of [retrieval (H*M), storage (H*M), detect (H)], with their biases
        self.input_kernel = nn.Linear(input_size, 2 * hm + hidden_size)
        self.recurrent_kernel = nn.Linear(hidden_size, 2 * hm, bias=False)  # h -> retrieval, storage
        self.detect_kernel = nn.Linear(hidden_size, hidden_size, bias=False)  # q_input -> detect
        tau = self.tau_min * self.tau_ratio ** torch.arange(self.num_traces, dtype=torch.float64)
        self.register_buffer("tau", tau.float(), persistent=False)
        self.register_buffer("ln_tau", tau.log().float(), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        h, hm = self.hidden_size, self.hidden_size * self.num_traces
        fan_in = self.input_size + h
        w_in = self.input_kernel.weight
        glorot_uniform_([w_in[: 2 * hm], self.recurrent_kernel.weight], fan_in, hm)
        glorot_uniform_([w_in[2 * hm :], self.detect_kernel.weight], fan_in, h)
        nn.init.zeros_(self.input_kernel.bias)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        return (torch.zeros(batch_size, self.hidden_size * self.num_traces, device=device, dtype=dtype),)

    def project_inputs(self, x: Tensor) -> Tensor:
        """Input parts of retrieval, storage (H*M each) and detect (H), shape (..., 2*H*M + H)."""
        return self.input_kernel(x)

    def step(self, u: Tensor, state: State, dt: Tensor) -> State:
        (flat,) = state
        b, h_units, m = flat.shape[0], self.hidden_size, self.num_traces
        hm = h_units * m
        h_hat = flat.view(b, h_units, m)
        h = h_hat.sum(-1)
        ln_r, ln_s = (u[..., : 2 * hm] + self.recurrent_kernel(h)).split(hm, dim=-1)
        r = torch.softmax(-(ln_r.view(b, h_units, m) - self.ln_tau).square(), dim=-1)
        q = torch.tanh(u[..., 2 * hm :] + self.detect_kernel((r * h_hat).sum(-1))).unsqueeze(-1)
        s = torch.softmax(-(ln_s.view(b, h_units, m) - self.ln_tau).square(), dim=-1)
        decay = torch.exp(-dt.to(flat.dtype).view(b, 1, 1) / self.tau)
        h_hat_new = ((1.0 - s) * h_hat + s * q) * decay
        return (h_hat_new.reshape(b, hm),)

    def output(self, state: State) -> Tensor:
        flat = state[0]
        return flat.view(flat.shape[0], self.hidden_size, self.num_traces).sum(-1)

    def extra_repr(self) -> str:
        return f"num_traces={self.num_traces}, tau_min={self.tau_min}, tau_ratio={self.tau_ratio}"
