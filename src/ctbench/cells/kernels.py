"""Pieces shared by the gated recurrent cells (LSTM, GRU, Elman RNN and their relatives).

- :class:`GateKernels`: a mixin (placed before :class:`~ctbench.cells.base.Cell`) that builds
  the fused kernels ``input_kernel`` (Linear in -> k*H), ``recurrent_kernel`` (Linear H -> k*H)
  and the optional dt column ``time_kernel`` (k*H) as attributes of the cell itself, so the
  parameter names and ``state_dict`` keys are the cell's own. Each cell keeps its own init and
  gate equations.
- :func:`lstm_update`: the LSTM cell-state and output update from the four pre-activations.
"""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor, nn


class GateKernels:
    """Mixin: fused input / recurrent / dt kernels for ``gates`` gates of width ``hidden_size``."""

    input_kernel: nn.Linear
    recurrent_kernel: nn.Linear
    time_kernel: "nn.Parameter | None"

    def build_gate_kernels(
        self,
        input_size: int,
        hidden_size: int,
        gates: int,
        *,
        recurrent_bias: bool = True,
        time_input: bool = False,
        time_before_recurrent: bool = False,
    ) -> None:
        """Register ``input_kernel``, ``recurrent_kernel`` and ``time_kernel`` (None without ``time_input``).

        ``time_before_recurrent`` registers the dt column before the recurrent kernel (parameter order).
        """
        width = gates * hidden_size
        self.input_kernel = nn.Linear(input_size, width)
        if time_before_recurrent:
            self._register_time_kernel(width, time_input)
        self.recurrent_kernel = nn.Linear(hidden_size, width, bias=recurrent_bias)
        if not time_before_recurrent:
            self._register_time_kernel(width, time_input)

    def _register_time_kernel(self, width: int, time_input: bool) -> None:
        if time_input:
            self.time_kernel = nn.Parameter(torch.empty(width))
        else:
            self.register_parameter("time_kernel", None)  # type: ignore[attr-defined]

    def project_inputs(self, x: Tensor) -> Tensor:
        """``W_x x + b`` for all gates, shape (..., gates*hidden)."""
        return self.input_kernel(x)

    def add_time_input(self, z: Tensor, dt: Tensor) -> Tensor:
        """``z + dt * time_kernel`` (the dt column of the input kernel); ``z`` unchanged without it."""
        if self.time_kernel is None:
            return z
        return z + dt.to(z.dtype).unsqueeze(-1) * self.time_kernel

    def regularized_weights(self) -> List[Tensor]:
        """Input kernel (with its dt column) and recurrent kernel."""
        weights = [self.input_kernel.weight, self.recurrent_kernel.weight]
        if self.time_kernel is not None:
            weights.append(self.time_kernel)
        return weights


def lstm_update(i: Tensor, f: Tensor, g: Tensor, o: Tensor, c: Tensor, forget_bias: float) -> Tuple[Tensor, Tensor]:
    """LSTM update from the pre-activations: returns ``(h', c')``::

    c' = sigma(f + forget_bias) * c + sigma(i) * tanh(g),   h' = sigma(o) * tanh(c')
    """
    c_new = torch.sigmoid(f + forget_bias) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new
