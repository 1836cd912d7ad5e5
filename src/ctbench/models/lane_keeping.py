"""Lane-keeping networks of Extended Data Fig. 9 (arXiv v2 Table 3), sized to the published counts.

A convolutional head maps each camera frame to ``FEATURES = 64`` features; one recurrent part
(LSTM, NCP, Cf-S, CfC, CfC-noGate or CfC-mmRNN) maps the feature sequence to one steering value
per step. The paper states only the counts (``published_tables.md`` §9): RNN part 33,089 /
6,495 / 1,084 / 4,184 / 4,184 / 8,408, and total = 226,644 + RNN part for every row. Every size
below is **inferred** from those counts by the arithmetic that follows; none is stated in the paper.

Count formulas (trainable parameters; ncps' fixed sparsity masks are ``requires_grad=False``
``Parameter`` s and are not counted). d = 64 head features, n = 19 NCP neurons (12 inter,
6 command, 1 motor), m = 1 motor neuron (= the steering output):

- **LSTM** (64 units, ``ctbench.cells.lstm.LSTMCell`` without a time input, Keras gate layout:
  one input bias, no recurrent bias) plus a ``Linear(64, 1)`` readout, counted in the RNN part:
  4h(d + h + 1) + (h + 1) = 4·64·129 + 65 = 33,024 + 65 = **33,089**. (Solving
  4h² + 261h + 1 = 33,089 gives exactly h = 64 for d = 64.)
- **NCP** = an LTC on an NCP wiring (``ncps.torch.LTCCell``; our ``LTCCell`` takes no wiring and
  maps all n neurons out, so it would count 6,531): gleak, vleak, cm (3n) + sigma, mu, w, E_rev
  (4n²) + sensory sigma, mu, w, E_rev (4dn) + input affine map (2d) + motor output affine map
  (2m) = 57 + 1,444 + 4,864 + 128 + 2 = **6,495**. With n = 19, m = 1 this fixes d:
  6,495 = 1,503 + 78d gives d = 64, the head width every other row then shares.
- **Wired CfC** (``ncps.torch.WiredCfCCell`` on the same NCP wiring; no backbone): one CfC
  sub-cell per wiring layer with i_l inputs and n_l neurons, k heads of (i_l + n_l + 1)·n_l each
  (ff1, ff2, time_a, time_b: k = 4; Cf-S: k = 1 plus A and w_tau, 2n_l). Layers 64→12, 12→6,
  6→1: 77·12 + 19·6 + 8·1 = 924 + 114 + 8 = 1,046 per head, so
  CfC = CfC-noGate = 4·1,046 = **4,184** and Cf-S = 1,046 + 2·19 = **1,084**. The motor neuron
  is the output: no readout.
- **CfC-mmRNN**: the authors' TF mixed-memory construction (``MixedCfcCell``: an LSTM memory
  whose recurrent input is the CfC state, and whose output is the CfC's *input*), LSTM gates
  4n(d + n + 1) = 4·19·84 = 6,384, plus the wired CfC with i_0 = 19 inputs:
  4·(32·12 + 114 + 8) = 2,024; total **8,408**. (ncps' own ``CfC(..., mixed_memory=True)``
  feeds x to the CfC and gives 10,568, which does not match.) Solving
  4n(n + 65) + 48(n − 64) = 4,224 gives exactly n = 19.
- **Head** (PilotNet-like, ReLU, no padding, no normalisation layers), conv(c_in→c_out, k) =
  c_in·c_out·k² + c_out: 3→24 5×5/2: 1,824; 24→36 5×5/2: 21,636; 36→48 3×3/2: 15,600;
  48→64 3×3: 27,712; 64→64 3×3: 36,928 (convs 103,700); an ``AdaptiveAvgPool2d((3, 10))``
  (no parameters; the identity on 72×128 frames, whose last map is exactly 3×10), then
  ``Linear(64·3·10 = 1,920, 64)`` = 122,944. Total **226,644**. The head is one solution, not
  the authors' head: it is the PilotNet convolution stack with the third kernel 3×3, chosen
  because 226,644 − 103,700 = 122,944 = 64·(1,920 + 1) is then an exact 64-wide projection.

What is inferred (not stated in the paper): the 64-feature head width; the head's layers; that
the LSTM readout (65 parameters) is in the RNN part while the NCP/CfC rows use their motor
neuron as the output; that the CfC rows are wired (NCP 12/6/1, the 19-neuron network of Nature
Fig. 2); the mmRNN construction (authors' TF, not ncps'). The NCP fan-outs do not change any
count; the defaults (sensory 3, inter 4, recurrent command 7, motor fan-in 6 on 64 inputs) give
253 synapses, the number quoted for the Fig. 2 network.

Elapsed time: every recurrent part takes ``dt`` (B, T) (default 1) and steps the ncps cells
with a (B, 1) time column, avoiding ncps issue #81 (per-sample timespans in its sequence wrappers).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ctbench.cells.lstm import LSTMCell

__all__ = [
    "FEATURES",
    "HEAD_PARAMS",
    "PUBLISHED_RNN_PARAMS",
    "ROWS",
    "ConvHead",
    "LaneKeepingNet",
    "LaneKeepingNetwork",
    "MIN_FRAME_SIZE",
    "build_lane_keeping",
    "count_parameters",
    "lane_keeping_counts",
    "ncp_wiring",
    "row_parameter_counts",
]

FEATURES = 64
HEAD_PARAMS = 226_644
#: ED Fig. 9's RNN column, by ctbench row key (the registry conf/table/ed9.yaml holds the same numbers)
PUBLISHED_RNN_PARAMS: Dict[str, int] = {
    "lstm": 33_089,
    "ncp": 6_495,
    "cfs": 1_084,
    "cfc": 4_184,
    "cfc_nogate": 4_184,
    "cfc_mmrnn": 8_408,
}
ROWS: Tuple[str, ...] = tuple(PUBLISHED_RNN_PARAMS)
#: (out_channels, kernel, stride) of the head's convolutions
HEAD_CONVS: Tuple[Tuple[int, int, int], ...] = ((24, 5, 2), (36, 5, 2), (48, 3, 2), (64, 3, 1), (64, 3, 1))
HEAD_POOL: Tuple[int, int] = (3, 10)
FRAME_SHAPE: Tuple[int, int, int] = (3, 72, 128)  # C, H, W whose last conv map is exactly 3×10


def _min_frame_side(convs: Sequence[Sequence[int]] = HEAD_CONVS) -> int:
    side = 1  # the last conv map must be at least 1×1
    for _, k, s in reversed(convs):
        side = (side - 1) * s + k
    return side


#: the smallest H (and W) the head accepts: 53 (smaller frames leave no output for the last conv).
#: Frames between 53 and 72×128 work (the adaptive pool then up-samples to 3×10); 72×128 is the
#: size at which the pool is the identity.
MIN_FRAME_SIZE: int = _min_frame_side()


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (ncps' fixed sparsity masks have ``requires_grad=False``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _require_ncps():
    try:
        import ncps.torch  # noqa: F401
        import ncps.wirings  # noqa: F401
    except ImportError as err:  # pragma: no cover - ncps is a core dependency
        raise ImportError("the NCP and CfC lane-keeping rows need ncps: pip install ncps") from err
    return ncps


def ncp_wiring(
    input_size: int = FEATURES,
    inter: int = 12,
    command: int = 6,
    motor: int = 1,
    sensory_fanout: int = 3,
    inter_fanout: int = 4,
    recurrent_command_synapses: int = 7,
    motor_fanin: int = 6,
    seed: int = 22222,
):
    """The 19-neuron NCP wiring (ncps.wirings.NCP), built for ``input_size`` sensory inputs."""
    _require_ncps()
    from ncps.wirings import NCP

    wiring = NCP(inter, command, motor, sensory_fanout, inter_fanout, recurrent_command_synapses, motor_fanin, seed=seed)
    wiring.build(input_size)
    return wiring


# ------------------------------------------------------------------------------------ head
class ConvHead(nn.Module):
    """Frames (N, C, H, W) → features (N, out_features). See the module docstring for the sizes."""

    def __init__(
        self,
        in_channels: int = 3,
        convs: Sequence[Sequence[int]] = HEAD_CONVS,
        pool: Sequence[int] = HEAD_POOL,
        out_features: int = FEATURES,
    ) -> None:
        super().__init__()
        layers: List[nn.Module] = []
        c = in_channels
        for out_c, k, s in convs:
            layers += [nn.Conv2d(c, out_c, kernel_size=k, stride=s), nn.ReLU()]
            c = out_c
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(tuple(pool))
        self.proj = nn.Linear(c * pool[0] * pool[1], out_features)
        self.in_channels = in_channels
        self.out_features = out_features

    def forward(self, frames: Tensor) -> Tensor:
        z = self.pool(self.convs(frames))
        return self.proj(z.flatten(1))


# ------------------------------------------------------------------------------------ RNN parts
def _dt_column(dt: Tensor, t: int) -> Tensor:
    return dt[:, t].unsqueeze(-1)


class LSTMPart(nn.Module):
    """LSTM (ctbench ``LSTMCell``, no time input) + Linear readout to the steering output."""

    def __init__(self, input_size: int = FEATURES, hidden_size: int = 64, n_outputs: int = 1) -> None:
        super().__init__()
        self.cell = LSTMCell(input_size, hidden_size, time_input=False)
        self.readout = nn.Linear(hidden_size, n_outputs)

    def forward(self, x: Tensor, dt: Tensor) -> Tensor:
        u = self.cell.project_inputs(x)
        state = self.cell.initial_state(x.shape[0], x.device, x.dtype)
        outs = []
        for t in range(x.shape[1]):
            state = self.cell.step(u[:, t], state, dt[:, t])
            outs.append(self.cell.output(state))
        return self.readout(torch.stack(outs, dim=1))


class NCPPart(nn.Module):
    """LTC on an NCP wiring (``ncps.torch.LTCCell``); the motor neuron is the output."""

    def __init__(self, input_size: int = FEATURES, ode_unfolds: int = 6, **wiring_kwargs) -> None:
        super().__init__()
        _require_ncps()
        from ncps.torch import LTCCell as NcpsLTCCell

        self.wiring = ncp_wiring(input_size, **wiring_kwargs)
        self.cell = NcpsLTCCell(self.wiring, in_features=input_size, ode_unfolds=ode_unfolds)

    def forward(self, x: Tensor, dt: Tensor) -> Tensor:
        h = torch.zeros(x.shape[0], self.cell.state_size, device=x.device, dtype=x.dtype)
        outs = []
        for t in range(x.shape[1]):
            y, h = self.cell(x[:, t], h, _dt_column(dt, t))
            outs.append(y)
        return torch.stack(outs, dim=1)

    def apply_constraints(self) -> None:
        self.cell.apply_weight_constraints()


class WiredCfCPart(nn.Module):
    """CfC / CfC-noGate / Cf-S on an NCP wiring (``ncps.torch.WiredCfCCell``); motor neuron out.

    ``mixed_memory``: the authors' TF ``MixedCfcCell`` construction, with an LSTM memory of the
    CfC state's width (n = 19): gates from [x, h], forget bias +1, and the LSTM output is the
    CfC's input: ``c' = c σ(f + 1) + tanh(i) σ(g_i)``, ``h' = CfC(tanh(c') σ(o), h, t)``.
    """

    def __init__(self, input_size: int = FEATURES, mode: str = "default", mixed_memory: bool = False,
                 forget_bias: float = 1.0, **wiring_kwargs) -> None:
        super().__init__()
        _require_ncps()
        from ncps.torch import WiredCfCCell

        self.mixed_memory = mixed_memory
        self.forget_bias = float(forget_bias)
        n_units = sum(wiring_kwargs.get(k, d) for k, d in (("inter", 12), ("command", 6), ("motor", 1)))
        cfc_in = n_units if mixed_memory else input_size
        self.wiring = ncp_wiring(cfc_in, **wiring_kwargs)
        self.cell = WiredCfCCell(cfc_in, self.wiring, mode=mode)
        self.state_size = self.cell.state_size
        if mixed_memory:
            self.lstm_in = nn.Linear(input_size, 4 * self.state_size)
            self.lstm_rec = nn.Linear(self.state_size, 4 * self.state_size, bias=False)
            nn.init.xavier_uniform_(self.lstm_in.weight)
            nn.init.zeros_(self.lstm_in.bias)
            nn.init.orthogonal_(self.lstm_rec.weight)

    def forward(self, x: Tensor, dt: Tensor) -> Tensor:
        batch = x.shape[0]
        h = torch.zeros(batch, self.state_size, device=x.device, dtype=x.dtype)
        c = torch.zeros_like(h) if self.mixed_memory else None
        gates_x = self.lstm_in(x) if self.mixed_memory else None
        outs = []
        for t in range(x.shape[1]):
            inp = x[:, t]
            if self.mixed_memory:
                i, g_i, g_f, g_o = (gates_x[:, t] + self.lstm_rec(h)).chunk(4, dim=-1)
                c = c * torch.sigmoid(g_f + self.forget_bias) + torch.tanh(i) * torch.sigmoid(g_i)
                inp = torch.tanh(c) * torch.sigmoid(g_o)
            y, h = self.cell(inp, h, _dt_column(dt, t))
            outs.append(y)
        return torch.stack(outs, dim=1)


def build_rnn(row: str, input_size: int = FEATURES) -> nn.Module:
    """The recurrent part of one ED Fig. 9 row (``ROWS``); unknown rows list the known ones."""
    if row == "lstm":
        return LSTMPart(input_size, 64, 1)
    if row == "ncp":
        return NCPPart(input_size)
    modes = {"cfc": "default", "cfc_nogate": "no_gate", "cfs": "pure"}
    if row in modes:
        return WiredCfCPart(input_size, mode=modes[row])
    if row == "cfc_mmrnn":
        return WiredCfCPart(input_size, mode="default", mixed_memory=True)
    raise ValueError(f"unknown lane-keeping row {row!r}; known: {', '.join(ROWS)}")


# ------------------------------------------------------------------------------------ network
class LaneKeepingNet(nn.Module):
    """Shared conv head + one recurrent part. ``forward(frames (B,T,C,H,W), dt (B,T)) → (B,T,1)``.

    ``frames`` may also be precomputed head features (B, T, 64), in which case the head is skipped.
    """

    def __init__(self, rnn: str = "cfc", in_channels: int = 3) -> None:
        super().__init__()
        self.row = rnn
        self.head = ConvHead(in_channels)
        self.rnn = build_rnn(rnn, self.head.out_features)

    def features(self, frames: Tensor) -> Tensor:
        if frames.dim() == 3:
            if frames.shape[-1] != self.head.out_features:
                raise ValueError(
                    f"expected frames (B, T, C, H, W) or head features (B, T, {self.head.out_features}), got shape "
                    f"{tuple(frames.shape)}: flattened frames are not accepted (use data.layout=frames)"
                )
            return frames
        if frames.dim() != 5:
            raise ValueError(f"expected frames (B, T, C, H, W) or features (B, T, F), got shape {tuple(frames.shape)}")
        if min(frames.shape[-2:]) < MIN_FRAME_SIZE:
            raise ValueError(f"frames of {tuple(frames.shape[-2:])} are too small for the conv head: "
                             f"H and W must be at least {MIN_FRAME_SIZE} (data.image_size)")
        b, t = frames.shape[:2]
        return self.head(frames.flatten(0, 1)).view(b, t, -1)

    def forward(self, frames: Tensor, dt: Optional[Tensor] = None) -> Tensor:
        feats = self.features(frames)
        if dt is None:
            dt = torch.ones(feats.shape[:2], device=feats.device, dtype=feats.dtype)
        return self.rnn(feats, dt.to(feats.dtype))

    def apply_constraints(self) -> None:
        fn = getattr(self.rnn, "apply_constraints", None)
        if fn is not None:
            fn()

    def parameter_counts(self) -> Dict[str, int]:
        head, rnn = count_parameters(self.head), count_parameters(self.rnn)
        return {"head": head, "rnn": rnn, "total": head + rnn}


class LaneKeepingNetwork(LaneKeepingNet):
    """:class:`LaneKeepingNet` behind ctbench's ``network:`` extension point (``ctbench.train.build_model``).

    ``forward(batch)`` reads frames from ``batch.x`` (B, T, C, H, W) (``data.layout: frames``) and
    the elapsed times from ``batch.dt`` (scaled by ``tau``) and returns (B, T, 1) steering. Of the
    keyword arguments ``build_model`` passes, ``input_size`` (C·H·W of the data module) and
    ``append_mask`` are ignored (no mask: the frames are fully observed); ``n_outputs`` must be 1
    (the NCP/CfC rows output their single motor neuron) and ``readout`` must be ``sequence``
    (per-step steering). Padded steps (``step_mask`` False) are refused: the recordings loader
    never pads. Parameters (names and counts) are exactly :class:`LaneKeepingNet`'s.
    """

    def __init__(
        self,
        rnn: str = "cfc",
        in_channels: int = 3,
        input_size: Optional[int] = None,
        n_outputs: int = 1,
        readout: str = "sequence",
        append_mask: bool = False,
        tau: float = 1.0,
    ) -> None:
        if int(n_outputs) != 1:
            raise ValueError(f"the lane-keeping networks predict one steering value per step, not n_outputs={n_outputs}")
        if readout != "sequence":
            raise ValueError(f"the lane-keeping networks predict per step (readout 'sequence'), not readout={readout!r}")
        super().__init__(rnn, in_channels)
        self.tau = float(tau)
        del input_size, append_mask  # frames come as (B, T, C, H, W); there is no observation mask

    # the hooks ctbench.task calls on every model
    def regularized_weights(self) -> List[Tensor]:
        """Trainable matrices and kernels (ndim >= 2); ncps' fixed sparsity masks are excluded."""
        return [p for p in self.parameters() if p.requires_grad and p.ndim >= 2]

    # apply_constraints: LaneKeepingNet's (the NCP row clips w, sensory_w, cm, gleak to >= 0 after
    # every optimiser step, as ncps.torch.LTCCell.apply_weight_constraints does without
    # implicit_param_constraints; the other rows have no constraints)

    def forward(self, batch, dt: Optional[Tensor] = None) -> Tensor:  # type: ignore[override]
        if isinstance(batch, Tensor):  # LaneKeepingNet's (frames, dt) call
            return super().forward(batch, dt)
        if batch.step_mask is not None and not bool(batch.step_mask.all()):
            raise ValueError("the lane-keeping networks take unpadded windows (step_mask all True)")
        if not torch.is_floating_point(batch.x):
            raise ValueError("the lane-keeping networks take float frames, not token ids")
        return super().forward(batch.x, batch.dt.to(batch.x.dtype) * self.tau)


def build_lane_keeping(rnn: str = "cfc", in_channels: int = 3) -> LaneKeepingNet:
    return LaneKeepingNet(rnn, in_channels)


def lane_keeping_counts(rows: Sequence[str] = ROWS) -> Dict[str, Dict[str, int]]:
    """``{row: {head, rnn, total}}`` for the ED Fig. 9 rows; builds each network (no training)."""
    return {row: LaneKeepingNet(row).parameter_counts() for row in rows}


def row_parameter_counts(network: str) -> Dict[str, int]:
    """``{head, rnn, total}`` of one row's network: the ``counter`` of ``conf/table/ed9.yaml``."""
    return LaneKeepingNet(network).parameter_counts()
