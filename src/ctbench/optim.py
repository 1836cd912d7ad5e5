"""Optimisers the authors' frameworks use that torch does not ship as such.

``KerasRMSprop`` is TF 2.x Keras ``RMSprop`` before TF 2.11 (``optimizer_v2``, which the TF
scripts of CfC and ODE-LSTM ran): its kernel ``ApplyRMSProp`` adds epsilon *inside* the square
root, ``p -= lr * g / sqrt(ms + eps)``, where ``torch.optim.RMSprop`` divides by
``sqrt(ms) + eps``. With Keras' eps = 1e-7 the floor of the denominator is sqrt(1e-7) ~ 3.2e-4
instead of 1e-7, so a parameter with a tiny gradient takes a tiny step instead of a full
``lr``-sized one; at the XOR CfC's lr of 0.05 the two diverge within the first epoch.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor


class KerasRMSprop(torch.optim.Optimizer):
    """RMSprop as TF 2.x (< 2.11) Keras: ms <- rho*ms + (1-rho)*g^2; p <- p - lr*g/sqrt(ms+eps).

    The mean-square slot starts at zero (Keras' ``rms`` slot); no momentum, not centred.
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, rho: float = 0.9, eps: float = 1e-7) -> None:
        if lr <= 0 or not 0.0 <= rho < 1.0 or eps < 0:
            raise ValueError(f"KerasRMSprop needs lr > 0, 0 <= rho < 1, eps >= 0; got lr={lr}, rho={rho}, eps={eps}")
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, rho, eps = group["lr"], group["rho"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["ms"] = torch.zeros_like(p)
                ms = state["ms"]
                ms.mul_(rho).addcmul_(p.grad, p.grad, value=1.0 - rho)
                p.addcdiv_(p.grad, (ms + eps).sqrt_(), value=-lr)
        return loss
