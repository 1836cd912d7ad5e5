"""Closed-form continuous-time cells: CfC, CfC-noGate, Cf-S and CfC-mmRNN (Hasani et al. 2022).

Three implementations are reproduced, chosen by ``impl`` (``reference/models.md`` §2-5):

- ``authors_tf`` (``tf_cfc.py``): gate sigma(-t_a*t + t_b), LeCun-tanh ff1/ff2, dropout after
  every backbone layer, Glorot-uniform kernels and zero biases;
- ``authors_torch`` (``torch_cfc.py``): gate sigma(t_a*t + t_b), tanh ff1/ff2, dropout only after
  backbone layers >= 2, torch's default Linear init, then Xavier-uniform with gain ``init_gain``
  on every 2-D parameter when ``init_gain`` is set;
- ``ncps`` (``ncps.torch.CfCCell``): as ``authors_torch`` with Xavier gain 1 always.

"Every 2-D parameter" includes Cf-S's ``A`` and ``w_tau``, which the torch codes store as
``(1, hidden)``: under a Xavier init they do not start at ones / zeros (as in the originals).

Fast path: the first backbone layer ``Linear([x, h])`` is split into an input part ``in_proj``
(with the bias; applied to a whole sequence by :meth:`CfCCell.project_inputs`) and a recurrent
part ``rec_proj``; the heads ff1, ff2, time_a, time_b are one ``Linear(units, 4*hidden)`` with
rows ``[ff1; ff2; time_a; time_b]`` (Cf-S: only ff1). The parameter count equals the unfused form.

Fused unroll (:meth:`CfCCell.unroll`, used by ``ctbench.sequence`` whenever a cell has one): the
time loop keeps only the two matrix products per step (``addmm`` on transposed weights taken once
per sequence) and hands the elementwise head update to one autograd node with a hand-written
backward (``_GatedHeads``, ``_PureHead``; the mixed-memory LSTM gates likewise, ``_LSTMGates``).
Eager autograd would record about a dozen nodes per step there, and the backward of the fused
heads' ``chunk`` alone (a ``cat`` of four strided gradients per step) cost more on CPU than the
head products. :meth:`CfCCell.step` stays the plain reference; ``tests/test_fast_path.py`` holds
the two to 1e-5 (values and gradients), with masks, per-sample elapsed times and dropout.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ctbench.cells.activations import get_activation, lecun_tanh
from ctbench.cells.base import Cell, State, keep_or_carry, step_masks

IMPLS: Tuple[str, ...] = ("authors_tf", "authors_torch", "ncps")
MODES: Tuple[str, ...] = ("default", "no_gate", "pure")


def check_choice(value: str, known: Sequence[str], what: str) -> None:
    """Raise a ValueError naming the known choices when ``value`` is not one of them."""
    if value not in known:
        raise ValueError(f"unknown {what} {value!r}; known: {', '.join(known)}")


# LeCun tanh, 1.7159 * tanh(0.666 z), the authors' TF head activation (``activations.lecun_tanh``)
_LECUN_SCALE, _LECUN_SLOPE = 1.7159, 0.666


class _GatedHeads(torch.autograd.Function):
    """``default``/``no_gate`` update from the fused heads ``z = [ff1, ff2, t_a, t_b]`` (B, 4H).

    The head activation ``amp * tanh(slope * z)`` is computed as ``amp * (2 sigma(2 slope z) - 1)``
    (equal to float rounding): on CPU torch's ``tanh`` costs about three ``sigmoid``s.
    """

    @staticmethod
    def forward(ctx: Any, z: Tensor, t: Tensor, gate_sign: float, lecun: bool, no_gate: bool) -> Tensor:
        hidden = z.shape[-1] // 4
        amp, slope = (_LECUN_SCALE, _LECUN_SLOPE) if lecun else (1.0, 1.0)
        s = torch.sigmoid(z[:, : 2 * hidden] * (2.0 * slope))  # ff = amp (2 s - 1)
        t_a = z[:, 2 * hidden : 3 * hidden]
        gate = torch.sigmoid(torch.addcmul(z[:, 3 * hidden :], t_a, t, value=gate_sign))
        if no_gate:  # h = ff1 + g ff2
            ff = s.mul(2.0 * amp).sub_(amp)
            h = torch.addcmul(ff[:, :hidden], gate, ff[:, hidden:])
        else:  # h = ff1 (1 - g) + g ff2 = amp (2 lerp(s1, s2, g) - 1)
            h = torch.lerp(s[:, :hidden], s[:, hidden:], gate).mul_(2.0 * amp).sub_(amp)
        ctx.save_for_backward(s, gate, t, t_a if ctx.needs_input_grad[1] else None)
        ctx.gate_sign, ctx.amp, ctx.slope, ctx.no_gate = gate_sign, amp, slope, no_gate
        return h

    @staticmethod
    def backward(ctx: Any, grad_h: Tensor) -> Tuple[Optional[Tensor], ...]:
        s, gate, t, t_a = ctx.saved_tensors
        hidden = gate.shape[-1]
        s1, s2 = s[:, :hidden], s[:, hidden:]
        grad_z = torch.empty(gate.shape[0], 4 * hidden, dtype=gate.dtype, device=gate.device)
        d_s = s - s * s  # sigma'
        grad_ff2 = grad_h * gate
        if ctx.no_gate:
            torch.mul(grad_h, d_s[:, :hidden], out=grad_z[:, :hidden])
            grad_gate = (s2 * (2.0 * ctx.amp) - ctx.amp) * grad_h  # ff2 * grad_h
        else:
            torch.mul(grad_h - grad_ff2, d_s[:, :hidden], out=grad_z[:, :hidden])
            grad_gate = (s2 - s1).mul_(grad_h).mul_(2.0 * ctx.amp)  # (ff2 - ff1) * grad_h
        torch.mul(grad_ff2, d_s[:, hidden:], out=grad_z[:, hidden : 2 * hidden])
        grad_z[:, : 2 * hidden].mul_(4.0 * ctx.amp * ctx.slope)  # d ff / d s * d s / d z, sans sigma'
        grad_pre = grad_gate.mul_(gate - gate * gate)  # through the gate's sigmoid
        torch.mul(grad_pre, t, out=grad_z[:, 2 * hidden : 3 * hidden])
        if ctx.gate_sign != 1.0:
            grad_z[:, 2 * hidden : 3 * hidden].mul_(ctx.gate_sign)
        grad_z[:, 3 * hidden :] = grad_pre
        grad_t = (grad_pre * t_a).sum(-1, keepdim=True) * ctx.gate_sign if t_a is not None else None
        return grad_z, grad_t, None, None, None


class _PureHead(torch.autograd.Function):
    """Cf-S update ``h = -A exp(-t (|w_tau| + |f|)) f + A`` from the linear head ``f`` (B, H)."""

    @staticmethod
    def forward(ctx: Any, f: Tensor, t: Tensor, a: Tensor, w_tau: Tensor) -> Tensor:
        decay = torch.exp(-t * (torch.abs(w_tau) + torch.abs(f)))
        ctx.save_for_backward(f, t, a, w_tau, decay)
        return a - a * decay * f

    @staticmethod
    def backward(ctx: Any, grad_h: Tensor) -> Tuple[Optional[Tensor], ...]:
        f, t, a, w_tau, decay = ctx.saved_tensors
        fe = f * decay
        grad_f = grad_h * (-a * decay * (1.0 - t * torch.abs(f)))  # d|f|/df = sign(f), 0 at 0
        grad_a = (grad_h * (1.0 - fe)).sum(0, keepdim=True)
        grad_w = (grad_h * a * fe * t * torch.sign(w_tau)).sum(0, keepdim=True)
        grad_t = None
        if ctx.needs_input_grad[1]:
            grad_t = (grad_h * a * fe * (torch.abs(w_tau) + torch.abs(f))).sum(-1, keepdim=True)
        return grad_f, grad_t, grad_a, grad_w


class _LSTMGates(torch.autograd.Function):
    """Mixed-memory LSTM update from ``z = [i, g_i, g_f, g_o]`` (B, 4H) and ``c``; ``shift`` (3H,)
    adds the forget bias to g_f. Returns ``(tanh(c') sigma(g_o), c')``."""

    @staticmethod
    def forward(ctx: Any, z: Tensor, c: Tensor, shift: Tensor) -> Tuple[Tensor, Tensor]:
        hidden = c.shape[-1]
        cand = torch.tanh(z[:, :hidden])
        gates = torch.sigmoid(z[:, hidden:] + shift)  # [sigma(g_i), sigma(g_f + b), sigma(g_o)]
        c_new = torch.addcmul(c * gates[:, hidden : 2 * hidden], cand, gates[:, :hidden])
        tanh_c = torch.tanh(c_new)
        ctx.save_for_backward(c, cand, gates, tanh_c)
        return tanh_c * gates[:, 2 * hidden :], c_new

    @staticmethod
    def backward(ctx: Any, grad_h: Tensor, grad_c_new: Tensor) -> Tuple[Optional[Tensor], ...]:
        c, cand, gates, tanh_c = ctx.saved_tensors
        hidden = c.shape[-1]
        s_i, s_f, s_o = gates[:, :hidden], gates[:, hidden : 2 * hidden], gates[:, 2 * hidden :]
        grad_c = grad_c_new + grad_h * s_o * (1.0 - tanh_c * tanh_c)
        grad_z = torch.empty(c.shape[0], 4 * hidden, dtype=c.dtype, device=c.device)
        torch.mul(grad_c * s_i, 1.0 - cand * cand, out=grad_z[:, :hidden])
        torch.mul(grad_c, cand, out=grad_z[:, hidden : 2 * hidden])
        torch.mul(grad_c, c, out=grad_z[:, 2 * hidden : 3 * hidden])
        torch.mul(grad_h, tanh_c, out=grad_z[:, 3 * hidden :])
        grad_z[:, hidden:].mul_(gates * (1.0 - gates))
        return grad_z, grad_c * s_f, None


def _uniform_(tensor: Tensor, bound: float) -> None:
    with torch.no_grad():
        tensor.uniform_(-bound, bound)


def _glorot_bound(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    return gain * math.sqrt(6.0 / (fan_in + fan_out))


class CfCCell(Cell):
    """Closed-form continuous-time cell, one observation per step.

    With ``b = backbone([x, h])`` and elapsed time ``t``:

    - ``default``:  h' = ff1(b) * (1 - g) + g * ff2(b),  g = sigma(s * time_a(b) * t + time_b(b))
    - ``no_gate``:  h' = ff1(b) + g * ff2(b)
    - ``pure`` (Cf-S): h' = -A * exp(-t * (|w_tau| + |ff1(b)|)) * ff1(b) + A, ff1 linear

    where s = -1 for ``authors_tf`` (the paper's sigma(-f t)) and +1 for ``authors_torch``/``ncps``,
    and ff1, ff2 are LeCun tanh (``authors_tf``) or tanh heads (otherwise).
    ``backbone_layers=0`` feeds ``[x, h]`` to the heads directly (ncps allows it).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        mode: str = "default",
        impl: str = "authors_tf",
        backbone_units: int = 128,
        backbone_layers: int = 1,
        backbone_activation: str = "lecun_tanh",
        backbone_dropout: float = 0.0,
        init_gain: Optional[float] = None,
    ) -> None:
        super().__init__()
        check_choice(mode, MODES, "CfC mode")
        check_choice(impl, IMPLS, "CfC impl")
        if backbone_layers < 0:
            raise ValueError(f"backbone_layers must be >= 0, got {backbone_layers}")
        if init_gain is not None and impl != "authors_torch":
            raise ValueError(
                f"init_gain is a hyperparameter of impl='authors_torch' only (got impl={impl!r}: "
                "authors_tf uses Glorot-uniform, ncps Xavier-uniform with gain 1); set it to null"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.mode = mode
        self.impl = impl
        self.backbone_units = backbone_units
        self.backbone_layers = backbone_layers
        self.backbone_activation = backbone_activation
        self.backbone_dropout = backbone_dropout
        self.init_gain = init_gain

        self.activation = get_activation(backbone_activation)
        self.head_activation = lecun_tanh if impl == "authors_tf" else torch.tanh
        self.gate_sign = -1.0 if impl == "authors_tf" else 1.0
        # authors' TF: Dropout after every Dense; torch codes: only after layers 2..L.
        self.dropout_first = impl == "authors_tf"
        self.dropout = nn.Dropout(backbone_dropout)

        self.n_heads = 1 if mode == "pure" else 4
        heads_out = self.n_heads * hidden_size
        first_out = backbone_units if backbone_layers > 0 else heads_out
        self.in_proj = nn.Linear(input_size, first_out)
        self.rec_proj = nn.Linear(hidden_size, first_out, bias=False)
        self.backbone_hidden = nn.ModuleList(
            nn.Linear(backbone_units, backbone_units) for _ in range(max(backbone_layers - 1, 0))
        )
        self.heads = nn.Linear(backbone_units, heads_out) if backbone_layers > 0 else None
        if mode == "pure":
            self.A = nn.Parameter(torch.ones(1, hidden_size))
            self.w_tau = nn.Parameter(torch.zeros(1, hidden_size))
        else:
            self.register_parameter("A", None)
            self.register_parameter("w_tau", None)
        self.reset_parameters()

    # ------------------------------------------------------------------ init
    def _unfused_kernels(self) -> List[Tuple[Tensor, int, int]]:
        """(weight, fan_in, fan_out) of every unfused kernel; a fused weight is one uniform draw
        per block, and all blocks of one fused weight share their fans."""
        h, u = self.hidden_size, self.backbone_units
        first_block = u if self.backbone_layers > 0 else h
        kernels = [
            (self.in_proj.weight, self.input_size + h, first_block),
            (self.rec_proj.weight, self.input_size + h, first_block),
        ]
        kernels += [(lin.weight, u, u) for lin in self.backbone_hidden]
        if self.heads is not None:
            kernels.append((self.heads.weight, u, h))
        return kernels

    def _biases(self) -> List[Tuple[Tensor, int]]:
        """(bias, fan_in of its unfused layer)."""
        h, u = self.hidden_size, self.backbone_units
        biases = [(self.in_proj.bias, self.input_size + h)]
        biases += [(lin.bias, u) for lin in self.backbone_hidden]
        if self.heads is not None:
            biases.append((self.heads.bias, u))
        return biases

    def reset_parameters(self) -> None:
        """Initialise as the chosen implementation does (see the module docstring)."""
        if self.impl == "authors_tf":
            for weight, fan_in, fan_out in self._unfused_kernels():
                _uniform_(weight, _glorot_bound(fan_in, fan_out))
            for bias, _ in self._biases():
                nn.init.zeros_(bias)
            if self.A is not None:
                nn.init.ones_(self.A)
                nn.init.zeros_(self.w_tau)
            return
        # torch codes: nn.Linear's default init of every unfused layer ...
        for weight, fan_in, _ in self._unfused_kernels():
            _uniform_(weight, 1.0 / math.sqrt(fan_in))
        for bias, fan_in in self._biases():
            _uniform_(bias, 1.0 / math.sqrt(fan_in))
        if self.A is not None:
            nn.init.ones_(self.A)
            nn.init.zeros_(self.w_tau)
        # ... then Xavier-uniform on every 2-D parameter (ncps always, authors' torch if init set).
        gain = 1.0 if self.impl == "ncps" else self.init_gain
        if gain is not None:
            for weight, fan_in, fan_out in self._unfused_kernels():
                _uniform_(weight, _glorot_bound(fan_in, fan_out, gain))
            if self.A is not None:
                # (1, hidden) parameters: torch's fan_in = hidden, fan_out = 1
                for p in (self.A, self.w_tau):
                    _uniform_(p, _glorot_bound(self.hidden_size, 1, gain))

    # ------------------------------------------------------------------ compute
    def project_inputs(self, x: Tensor) -> Tensor:
        """Input part of the first layer (bias included): ``W_x x + b``, shape (..., first_out)."""
        return self.in_proj(x)

    def step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        z = u + self.rec_proj(state)
        if self.heads is not None:
            z = self.activation(z)
            if self.dropout_first:
                z = self.dropout(z)
            for layer in self.backbone_hidden:
                z = self.dropout(self.activation(layer(z)))
            z = self.heads(z)
        return self.combine_heads(z, dt)

    def combine_heads(self, z: Tensor, dt: Tensor) -> Tensor:
        """The closed-form update from the fused head outputs ``z`` (B, n_heads*hidden)."""
        t = dt.to(z.dtype).unsqueeze(-1)
        if self.mode == "pure":
            ff1 = z
            return -self.A * torch.exp(-t * (torch.abs(self.w_tau) + torch.abs(ff1))) * ff1 + self.A
        ff1, ff2, t_a, t_b = z.chunk(4, dim=-1)
        ff1 = self.head_activation(ff1)
        ff2 = self.head_activation(ff2)
        gate = torch.sigmoid(self.gate_sign * t_a * t + t_b)
        if self.mode == "no_gate":
            return ff1 + gate * ff2
        return ff1 * (1.0 - gate) + gate * ff2

    # ------------------------------------------------------------------ fused unroll
    def step_weights(self) -> Tuple[Tensor, ...]:
        """The transposed kernels :meth:`fast_step` reads, taken once per sequence."""
        heads = (self.heads.weight.t(), self.heads.bias) if self.heads is not None else ()
        return (self.rec_proj.weight.t(), *heads)

    def fast_step(self, u: Tensor, state: Tensor, t: Tensor, weights: Tuple[Tensor, ...]) -> Tensor:
        """:meth:`step` with ``t`` (B, 1), the kernels of :meth:`step_weights` and fused heads."""
        z = torch.addmm(u, state, weights[0])
        if self.heads is not None:
            z = self.activation(z)
            if self.dropout_first:
                z = self.dropout(z)
            for layer in self.backbone_hidden:
                z = self.dropout(self.activation(F.linear(z, layer.weight, layer.bias)))
            z = torch.addmm(weights[2], z, weights[1])
        if self.mode == "pure":
            return _PureHead.apply(z, t, self.A, self.w_tau)
        return _GatedHeads.apply(z, t, self.gate_sign, self.impl == "authors_tf", self.mode == "no_gate")

    def unroll(self, u: Tensor, dt: Tensor, keep: Optional[Tensor] = None) -> Tensor:
        """Every step's state (B, T, hidden) from the zero state, for projected inputs ``u``
        (B, T, P), elapsed times ``dt`` (B, T) and ``keep`` (B, T) bool (False: carry the state)."""
        weights = self.step_weights()
        h = self.initial_state(u.shape[0], u.device, u.dtype)
        ts = dt.to(u.dtype).unsqueeze(-1).unbind(1)
        states = []
        for u_t, t, k in zip(u.unbind(1), ts, step_masks(keep, len(ts))):
            h = keep_or_carry(k, self.fast_step(u_t, h, t, weights), h)
            states.append(h)
        return torch.stack(states, 1)

    def regularized_weights(self) -> List[Tensor]:
        """Backbone and head kernels (the TF script's ``kernel_regularizer``s); not A, w_tau."""
        return [w for w, _, _ in self._unfused_kernels()]

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, impl={self.impl!r}"


class MixedMemoryCfCCell(Cell):
    """CfC-mmRNN: a CfC wrapped in an LSTM memory (ODE-LSTM construction). State ``(h, c)``.

    ``authors_tf`` (``MixedCfcCell``)::

        i, g_i, g_f, g_o = split(W_x x + W_h h + b);  b init 0
        c' = c * sigma(g_f + forget_bias) + tanh(i) * sigma(g_i)
        h' = CfC(input = tanh(c') * sigma(g_o), state = h, t)

    ``authors_torch`` / ``ncps`` (LSTM first, forget bias fixed at +1)::

        same gates from W_x x + b + W_h h (b init U(-0.1, 0.1), W_h without bias), giving
        h_l = tanh(c') * sigma(g_o);  h' = CfC(input = x, state = h_l, t)

    The LSTM kernels are Xavier/Glorot (input) and orthogonal (recurrent) in all three.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        mode: str = "default",
        impl: str = "authors_tf",
        backbone_units: int = 128,
        backbone_layers: int = 1,
        backbone_activation: str = "lecun_tanh",
        backbone_dropout: float = 0.0,
        init_gain: Optional[float] = None,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__()
        check_choice(impl, IMPLS, "CfC impl")
        if impl != "authors_tf" and forget_bias != 1.0:
            raise ValueError(
                f"impl={impl!r} hard-codes the mixed-memory forget bias at +1.0 (forget_bias "
                f"is used by impl='authors_tf' only); got forget_bias={forget_bias}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.impl = impl
        self.forget_bias = float(forget_bias)
        self.lstm_first = impl != "authors_tf"
        self.cfc = CfCCell(
            hidden_size if impl == "authors_tf" else input_size,
            hidden_size,
            mode=mode,
            impl=impl,
            backbone_units=backbone_units,
            backbone_layers=backbone_layers,
            backbone_activation=backbone_activation,
            backbone_dropout=backbone_dropout,
            init_gain=init_gain,
        )
        self.mode = mode
        self.lstm_in = nn.Linear(input_size, 4 * hidden_size)
        self.lstm_rec = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.reset_lstm_parameters()

    def reset_lstm_parameters(self) -> None:
        nn.init.xavier_uniform_(self.lstm_in.weight)
        nn.init.orthogonal_(self.lstm_rec.weight)
        if self.impl == "authors_tf":
            nn.init.zeros_(self.lstm_in.bias)
        else:
            _uniform_(self.lstm_in.bias, 0.1)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def project_inputs(self, x: Tensor) -> Tensor:
        """LSTM input gates ``W_x x + b`` (4*hidden); for the torch wiring also the CfC's input part."""
        lstm = self.lstm_in(x)
        if self.lstm_first:
            return torch.cat([lstm, self.cfc.project_inputs(x)], dim=-1)
        return lstm

    def _lstm(self, z: Tensor, c: Tensor) -> Tuple[Tensor, Tensor]:
        i, ig, fg, og = z.chunk(4, dim=-1)
        c_new = c * torch.sigmoid(fg + self.forget_bias) + torch.tanh(i) * torch.sigmoid(ig)
        return torch.tanh(c_new) * torch.sigmoid(og), c_new

    def step(self, u: Tensor, state: State, dt: Tensor) -> State:
        h, c = state
        n_gates = 4 * self.hidden_size
        z = u[..., :n_gates] + self.lstm_rec(h)
        lstm_out, c_new = self._lstm(z, c)
        if self.lstm_first:
            h_new = self.cfc.step(u[..., n_gates:], lstm_out, dt)
        else:
            h_new = self.cfc.step(self.cfc.project_inputs(lstm_out), h, dt)
        return (h_new, c_new)

    def output(self, state: State) -> Tensor:
        return state[0]

    def unroll(self, u: Tensor, dt: Tensor, keep: Optional[Tensor] = None) -> Tensor:
        """Every step's output h (B, T, hidden); see :meth:`CfCCell.unroll`."""
        n_gates = 4 * self.hidden_size
        rec = self.lstm_rec.weight.t()
        cfc_weights = self.cfc.step_weights()
        shift = torch.zeros(3 * self.hidden_size, device=u.device, dtype=u.dtype)
        shift[self.hidden_size : 2 * self.hidden_size] = self.forget_bias
        h, c = self.initial_state(u.shape[0], u.device, u.dtype)
        ts = dt.to(u.dtype).unsqueeze(-1).unbind(1)
        outputs = []
        for u_t, t, k in zip(u.unbind(1), ts, step_masks(keep, len(ts))):
            lstm_out, c_new = _LSTMGates.apply(torch.addmm(u_t[:, :n_gates], h, rec), c, shift)
            if self.lstm_first:
                h_new = self.cfc.fast_step(u_t[:, n_gates:], lstm_out, t, cfc_weights)
            else:
                h_new = self.cfc.fast_step(self.cfc.project_inputs(lstm_out), h, t, cfc_weights)
            h, c = keep_or_carry(k, (h_new, c_new), (h, c))
            outputs.append(h)
        return torch.stack(outputs, 1)

    def regularized_weights(self) -> List[Tensor]:
        """Only the CfC's kernels: the TF ``MixedCfcCell`` puts no regulariser on its LSTM."""
        return self.cfc.regularized_weights()

    def extra_repr(self) -> str:
        return f"impl={self.impl!r}, forget_bias={self.forget_bias}"
