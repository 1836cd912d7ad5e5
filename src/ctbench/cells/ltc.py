"""Liquid time-constant cell with the fused semi-implicit solver (Hasani et al., AAAI 2021).

``reference/models.md`` §6. The implementations differ only in the elapsed-time offset, the
output map and the E_rev initialisation:

- ``authors_tf`` (``tf_cfc.py``): Delta' = Delta + 1e-3, affine output map, E_rev from {-1, +1};
- ``authors_torch`` (``torch_cfc.py``): Delta' = Delta + 1, no output map, E_rev from {-1, +1};
- ``ncps`` (``ncps.torch.LTCCell`` with a ``FullyConnected`` wiring, explicit clipping):
  Delta' = Delta (so Delta = 0 gives NaN, as in ncps), affine output map, E_rev from {-1, +1, +1}
  (2/3 excitatory; drawn from torch's RNG here, not ncps's fixed seed 1111).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell
from ctbench.cells.cfc import check_choice

LTC_IMPLS: Tuple[str, ...] = ("authors_tf", "authors_torch", "ncps")
# Offset added to the elapsed time before it is split into unfolds, per implementation.
DT_OFFSET: Dict[str, float] = {"authors_tf": 1e-3, "authors_torch": 1.0, "ncps": 0.0}
# Uniform initialisation ranges, identical in all implementations.
INIT_RANGES: Dict[str, Tuple[float, float]] = {
    "gleak": (0.001, 1.0),
    "vleak": (-0.2, 0.2),
    "cm": (0.4, 0.6),
    "w": (0.001, 1.0),
    "sigma": (3.0, 8.0),
    "mu": (0.3, 0.8),
    "sensory_w": (0.001, 1.0),
    "sensory_sigma": (3.0, 8.0),
    "sensory_mu": (0.3, 0.8),
}
# Parameters clipped at zero after every optimiser step.
NON_NEGATIVE: Tuple[str, ...] = ("w", "sensory_w", "cm", "gleak")


class LTCCell(Cell):
    """LTC neuron layer; one step = ``ode_unfolds`` fused semi-implicit Euler steps over Delta'.

    With I = input_w * x + input_b, s_ij = sigmoid(sigma_ij (v_i - mu_ij)) and the sensory terms
    (the same with the input I_i and the sensory_* parameters), each unfold computes::

        v_j <- (c_t v_j + gleak_j vleak_j + sum_i w_ij s_ij E_ij + sum_i w^s_ij s^s_ij E^s_ij)
               / (c_t + gleak_j + sum_i w_ij s_ij + sum_i w^s_ij s^s_ij + epsilon),
        c_t = cm / (Delta' / ode_unfolds).

    The output is ``output_w * v + output_b`` (``authors_tf``, ``ncps``) or ``v`` (``authors_torch``).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        ode_unfolds: int = 6,
        impl: str = "authors_tf",
        epsilon: float = 1e-8,
    ) -> None:
        super().__init__()
        check_choice(impl, LTC_IMPLS, "LTC impl")
        if ode_unfolds < 1:
            raise ValueError(f"ode_unfolds must be >= 1, got {ode_unfolds}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.ode_unfolds = ode_unfolds
        self.impl = impl
        self.epsilon = epsilon
        self.dt_offset = DT_OFFSET[impl]
        n, d = hidden_size, input_size
        self.gleak = nn.Parameter(torch.empty(n))
        self.vleak = nn.Parameter(torch.empty(n))
        self.cm = nn.Parameter(torch.empty(n))
        self.sigma = nn.Parameter(torch.empty(n, n))
        self.mu = nn.Parameter(torch.empty(n, n))
        self.w = nn.Parameter(torch.empty(n, n))
        self.erev = nn.Parameter(torch.empty(n, n))
        self.sensory_sigma = nn.Parameter(torch.empty(d, n))
        self.sensory_mu = nn.Parameter(torch.empty(d, n))
        self.sensory_w = nn.Parameter(torch.empty(d, n))
        self.sensory_erev = nn.Parameter(torch.empty(d, n))
        self.input_w = nn.Parameter(torch.empty(d))
        self.input_b = nn.Parameter(torch.empty(d))
        self.has_output_map = impl != "authors_torch"
        if self.has_output_map:
            self.output_w = nn.Parameter(torch.empty(n))
            self.output_b = nn.Parameter(torch.empty(n))
        else:
            self.register_parameter("output_w", None)
            self.register_parameter("output_b", None)
        self.reset_parameters()

    def _draw_erev(self, shape: torch.Size) -> Tensor:
        if self.impl == "ncps":  # FullyConnected draws polarities from {-1, +1, +1}
            return torch.where(torch.randint(0, 3, shape) == 0, -1.0, 1.0)
        return torch.randint(0, 2, shape).float() * 2.0 - 1.0

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for name, (low, high) in INIT_RANGES.items():
                getattr(self, name).uniform_(low, high)
            self.erev.copy_(self._draw_erev(self.erev.shape))
            self.sensory_erev.copy_(self._draw_erev(self.sensory_erev.shape))
            self.input_w.fill_(1.0)
            self.input_b.zero_()
            if self.has_output_map:
                self.output_w.fill_(1.0)
                self.output_b.zero_()

    def project_inputs(self, x: Tensor) -> Tensor:
        """The per-feature affine input map ``input_w * x + input_b``."""
        return x * self.input_w + self.input_b

    def step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        v = state
        # Sensory synapses depend only on the input: once per step. (B, D, N) -> (B, N, 2)
        s_sens = torch.sigmoid(self.sensory_sigma * (u.unsqueeze(-1) - self.sensory_mu))
        w_sens = torch.stack([self.sensory_w * self.sensory_erev, self.sensory_w], dim=-1)
        sens = torch.einsum("bin,ink->bnk", s_sens, w_sens)
        sens_num, sens_den = sens[..., 0], sens[..., 1]

        w_erev = self.w * self.erev
        cm_t = self.cm / ((dt.to(v.dtype).unsqueeze(-1) + self.dt_offset) / self.ode_unfolds)
        num_const = self.gleak * self.vleak + sens_num
        den_const = cm_t + self.gleak + sens_den + self.epsilon
        for _ in range(self.ode_unfolds):
            s = torch.sigmoid(self.sigma * (v.unsqueeze(-1) - self.mu))  # (B, N_pre, N_post)
            # Two broadcast-multiply-sums: on CPU about 3x faster than one einsum over a
            # stacked (N, N, 2) weight, which makes torch permute-copy the (B, N, N) tensor.
            rec_num = (s * w_erev).sum(dim=1)
            rec_den = (s * self.w).sum(dim=1)
            v = (cm_t * v + num_const + rec_num) / (den_const + rec_den)
        return v

    def output(self, state: Tensor) -> Tensor:
        if self.has_output_map:
            return state * self.output_w + self.output_b
        return state

    def apply_constraints(self) -> None:
        """ReLU-clip w, sensory_w, cm and gleak (the TF ``NonNeg`` / torch ``apply_weight_constraints``)."""
        with torch.no_grad():
            for name in NON_NEGATIVE:
                getattr(self, name).clamp_(min=0.0)

    def regularized_weights(self) -> List[Tensor]:
        """None: the authors' TF LTC declares no ``kernel_regularizer``."""
        return []

    def extra_repr(self) -> str:
        return f"impl={self.impl!r}, ode_unfolds={self.ode_unfolds}, dt_offset={self.dt_offset}"
