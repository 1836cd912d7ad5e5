"""Liquid time-constant cell with the fused semi-implicit solver (Hasani et al., AAAI 2021).

``reference/models.md`` §6. The implementations differ only in the elapsed-time offset, the
output map and the E_rev initialisation:

- ``authors_tf`` (``tf_cfc.py``): Delta' = Delta + 1e-3, affine output map, E_rev from {-1, +1};
- ``authors_torch`` (``torch_cfc.py``): Delta' = Delta + 1, no output map, E_rev from {-1, +1};
- ``ncps`` (``ncps.torch.LTCCell`` with a ``FullyConnected`` wiring, explicit clipping):
  Delta' = Delta (so Delta = 0 gives NaN, as in ncps), affine output map, E_rev from {-1, +1, +1}
  (2/3 excitatory; drawn from torch's RNG here, not ncps's fixed seed 1111).

Fused unroll (:meth:`LTCCell.unroll`, used by ``ctbench.sequence``): the weight products
(``w * erev``, ``sigma * mu``, the stacked sensory weights) and the elapsed-time constants are
taken once per sequence instead of once per step; each unfold's synapse argument ``sigma (v - mu)``
is one ``addcmul`` (``sigma v - sigma mu``) on the (B, N, N) tensor instead of two passes; and the
unfolds of a step are one autograd node (``_Unfolds``) that recomputes the (B, N, N) synapse
activations in its backward pass instead of storing them, run on cache-sized batch chunks on CPU.
:meth:`LTCCell.step` stays the plain reference (``tests/test_fast_path.py``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell, keep_or_carry, step_masks
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
# Elements of one (chunk, N, N) synapse tensor in the fused CPU unroll: 1 MiB of float32.
CPU_CHUNK_ELEMENTS = 2**18
# Parameters clipped at zero after every optimiser step.
NON_NEGATIVE: Tuple[str, ...] = ("w", "sensory_w", "cm", "gleak")


class _Unfolds(torch.autograd.Function):
    """``unfolds`` fused semi-implicit updates of the LTC state ``v`` (B, N), as one autograd node.

    Each unfold's synapse activations ``s = sigmoid(sigma v_i - sigma mu)`` (B, N, N) are
    recomputed in the backward pass from the saved states instead of being stored: autograd would
    keep one (B, N, N) tensor per unfold and step (gigabytes at the paper's shapes) and read it
    back from memory, slower than recomputing it.
    """

    @staticmethod
    def forward(ctx: Any, v: Tensor, cm: Tensor, num_const: Tensor, den_const: Tensor, sigma: Tensor,
                neg_sigma_mu: Tensor, w_erev: Tensor, w: Tensor, unfolds: int) -> Tensor:
        states, dens = [v], []
        for _ in range(unfolds):
            s = torch.sigmoid(torch.addcmul(neg_sigma_mu, v.unsqueeze(-1), sigma))
            den = den_const + (s * w).sum(dim=1)
            v = (cm * v + num_const + (s * w_erev).sum(dim=1)) / den
            states.append(v)
            dens.append(den)
        ctx.save_for_backward(cm, sigma, neg_sigma_mu, w_erev, w, *states, *dens)
        ctx.unfolds = unfolds
        return v

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[Optional[Tensor], ...]:
        cm, sigma, neg_sigma_mu, w_erev, w, *rest = ctx.saved_tensors
        states, dens = rest[: ctx.unfolds + 1], rest[ctx.unfolds + 1 :]
        grad_cm = grad_num = grad_den = None
        grad_sigma = grad_nsm = grad_w_erev = grad_w = None
        for k in reversed(range(ctx.unfolds)):
            v, v_out, den = states[k], states[k + 1], dens[k]
            s = torch.sigmoid(torch.addcmul(neg_sigma_mu, v.unsqueeze(-1), sigma))
            g_num = grad / den  # v_out = num / den
            g_den = -g_num * v_out
            g_num_, g_den_ = g_num.unsqueeze(1), g_den.unsqueeze(1)
            grad_pre = torch.ops.aten.sigmoid_backward(torch.addcmul(g_num_ * w_erev, g_den_, w), s)
            steps = (
                g_num * v, g_num, g_den, (grad_pre * v.unsqueeze(-1)).sum(0), grad_pre.sum(0),
                (g_num_ * s).sum(0), (g_den_ * s).sum(0),
            )
            if grad_cm is None:
                grad_cm, grad_num, grad_den, grad_sigma, grad_nsm, grad_w_erev, grad_w = steps
            else:
                for total, part in zip((grad_cm, grad_num, grad_den, grad_sigma, grad_nsm, grad_w_erev, grad_w), steps):
                    total.add_(part)
            grad = g_num * cm + (grad_pre * sigma).sum(2)
        return grad, grad_cm, grad_num, grad_den, grad_sigma, grad_nsm, grad_w_erev, grad_w, None


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

    def unroll(self, u: Tensor, dt: Tensor, keep: Optional[Tensor] = None) -> Tensor:
        """Every step's output (B, T, hidden) from the zero state; see :meth:`step` and the module
        docstring. ``keep`` (B, T) bool: False carries the state over that step."""
        w_erev = self.w * self.erev
        neg_sigma_mu = -(self.sigma * self.mu)
        sens_neg_sigma_mu = -(self.sensory_sigma * self.sensory_mu)
        w_sens = torch.stack([self.sensory_w * self.sensory_erev, self.sensory_w], dim=-1)
        cm_t = self.cm / ((dt.to(u.dtype).unsqueeze(-1) + self.dt_offset) / self.ode_unfolds)  # (B, T, N)
        leak = self.gleak * self.vleak
        den_base = cm_t + self.gleak + self.epsilon
        v = self.initial_state(u.shape[0], u.device, u.dtype)
        # Samples are independent: on CPU the unfolds run on batch chunks whose (chunk, N, N)
        # synapse tensors fit in a core's L2 cache (1.6x faster at N = 128); on GPU in one piece.
        n = self.hidden_size
        chunk = u.shape[0] if u.is_cuda else max(1, CPU_CHUNK_ELEMENTS // (n * n))
        outputs = []
        for u_t, cm, den, k in zip(u.unbind(1), cm_t.unbind(1), den_base.unbind(1), step_masks(keep, u.shape[1])):
            s_sens = torch.sigmoid(torch.addcmul(sens_neg_sigma_mu, u_t.unsqueeze(-1), self.sensory_sigma))
            sens = torch.einsum("bin,ink->bnk", s_sens, w_sens)
            num_const = leak + sens[..., 0]
            den_const = den + sens[..., 1]
            v_new = torch.cat([
                _Unfolds.apply(v[i : i + chunk], cm[i : i + chunk], num_const[i : i + chunk], den_const[i : i + chunk],
                               self.sigma, neg_sigma_mu, w_erev, self.w, self.ode_unfolds)
                for i in range(0, v.shape[0], chunk)
            ])
            v = keep_or_carry(k, v_new, v)
            outputs.append(v)
        return self.output(torch.stack(outputs, 1))

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
