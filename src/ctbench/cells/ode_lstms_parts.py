"""Parts shared by the ODE-LSTM-lineage baselines (``reference/models.md`` §8.1).

- :func:`glorot_uniform_`: Keras' ``glorot_uniform`` for a kernel that ctbench stores in pieces.
  ode-lstms builds most of its cells from one Keras ``Dense`` on a concatenation such as
  ``[x, h]``; ctbench splits that kernel into an input part (applied to a whole sequence by
  ``project_inputs``) and a recurrent part, so the Glorot bound must use the fans of the
  whole fused kernel, not of each piece.
- :class:`EulerCTRNN`: the CT-RNN of ode-lstms ``CTRNNCell`` (``method="euler"``, ``tau=1``)
  that ODE-LSTM and the "Bi-directional RNN" embed: fixed-step explicit Euler of
  ``dh/dt = s * tanh(v + W_rec h) - tau * h`` with the input term ``v = W_in u + b`` held fixed.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor, nn


def glorot_uniform_(tensors: Iterable[Tensor], fan_in: int, fan_out: int) -> None:
    """Fill every tensor with U(-b, b), b = sqrt(6 / (fan_in + fan_out)) (Keras ``glorot_uniform``)."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        for t in tensors:
            t.uniform_(-bound, bound)


class EulerCTRNN(nn.Module):
    """Recurrent part of a CT-RNN integrated by ``num_unfolds`` explicit Euler steps over dt::

        dh/dt = s * tanh(v + W_rec h) - tau * h,     v = W_in u + b (given, constant over dt)
        h <- h + (dt / N) * dh/dt,  N times

    (ode-lstms ``CTRNNCell.euler``; Funahashi & Nakamura 1993). ``W_rec`` orthogonal, ``s = 1``
    at init. The owner keeps ``W_in`` and ``b``, because its input is partly precomputable.
    """

    def __init__(self, hidden_size: int, num_unfolds: int = 4, tau: float = 1.0) -> None:
        super().__init__()
        if num_unfolds < 1:
            raise ValueError(f"num_unfolds must be >= 1, got {num_unfolds}")
        self.hidden_size = hidden_size
        self.num_unfolds = int(num_unfolds)
        self.tau = float(tau)
        self.recurrent = nn.Linear(hidden_size, hidden_size, bias=False)
        self.scale = nn.Parameter(torch.ones(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.orthogonal_(self.recurrent.weight)
        nn.init.ones_(self.scale)

    def derivative(self, v: Tensor, h: Tensor) -> Tensor:
        dh = self.scale * torch.tanh(v + self.recurrent(h))
        if self.tau != 0.0:  # ode-lstms: `if self.tau > 0`; a negative tau is applied too
            dh = dh - self.tau * h
        return dh

    def evolve(self, v: Tensor, h: Tensor, dt: Tensor) -> Tensor:
        """Advance h (B, H) over each sample's dt (B,) with the input term v (B, H)."""
        step = (dt.to(h.dtype) / self.num_unfolds).unsqueeze(-1)
        for _ in range(self.num_unfolds):
            h = h + step * self.derivative(v, h)
        return h

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, num_unfolds={self.num_unfolds}, tau={self.tau}"
