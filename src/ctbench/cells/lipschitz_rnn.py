"""Lipschitz RNN (Erichson, Azencot, Queiruga, Hodgkinson & Mahoney, ICLR 2021), ``reference/models.md`` §8.1.

    h' = A h + tanh(W h + U x + b)
    A = beta (B - B^T) + (1 - beta)(B + B^T) - gamma_A I
    W = beta (C - C^T) + (1 - beta)(C + C^T) - gamma_W I

discretised with one forward-Euler step of size eps per observation, as their released code
(``erichson/LipschitzRNN`` ``models.py``, model ``LipschitzRNN``) does, row-vector convention
included (``h @ A``, ``h @ W``)::

    h_n = h_{n-1} + eps * (h_{n-1} A) + eps * tanh(h_{n-1} W + U x_n + b)

With ``use_elapsed_time`` (default) the step is eps * elapsed per sample (eps for elapsed 1);
without it, eps (their code, which has no elapsed time). Init as their code: ``U`` Xavier-normal
with zero bias; B and C Gaussian with std ``init_std / hidden_size`` (their ``gaussian_init_``).
Defaults beta = 0.7, gamma_A = gamma_W = 0.001, eps = 0.05, init_std = 6 are the argparse
defaults of their ``driver.py`` (one gamma there, used for both A and W; the paper tunes gamma_A
and gamma_W separately). The CfC authors' settings for their re-runs are not released.
"""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell


class LipschitzRNNCell(Cell):
    """Lipschitz RNN, one Euler step per observation; see the module docstring."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        beta: float = 0.7,
        gamma_A: float = 0.001,
        gamma_W: float = 0.001,
        eps: float = 0.05,
        init_std: float = 6.0,
        use_elapsed_time: bool = True,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.beta = float(beta)
        self.gamma_A = float(gamma_A)
        self.gamma_W = float(gamma_W)
        self.eps = float(eps)
        self.init_std = float(init_std)
        self.use_elapsed_time = use_elapsed_time
        self.input_map = nn.Linear(input_size, hidden_size)
        self.B = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.C = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.register_buffer("eye", torch.eye(hidden_size), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.input_map.weight)
        nn.init.zeros_(self.input_map.bias)
        std = self.init_std / self.hidden_size
        nn.init.normal_(self.B, 0.0, std)
        nn.init.normal_(self.C, 0.0, std)

    def _compose(self, M: Tensor, gamma: float) -> Tensor:
        return self.beta * (M - M.T) + (1.0 - self.beta) * (M + M.T) - gamma * self.eye

    def matrices(self) -> Tuple[Tensor, Tensor]:
        """(A, W) from B and C."""
        return self._compose(self.B, self.gamma_A), self._compose(self.C, self.gamma_W)

    def project_inputs(self, x: Tensor) -> Tensor:
        """``U x + b``, shape (..., hidden)."""
        return self.input_map(x)

    def step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        A, W = self.matrices()
        if self.use_elapsed_time:
            step = self.eps * dt.to(u.dtype).unsqueeze(-1)
        else:
            step = torch.full((u.shape[0], 1), self.eps, dtype=u.dtype, device=u.device)
        return state + step * (state @ A) + step * torch.tanh(state @ W + u)

    def regularized_weights(self) -> List[Tensor]:
        return [self.input_map.weight, self.B, self.C]

    def extra_repr(self) -> str:
        return (f"beta={self.beta}, gamma_A={self.gamma_A}, gamma_W={self.gamma_W}, eps={self.eps}, "
                f"init_std={self.init_std}, use_elapsed_time={self.use_elapsed_time}")
