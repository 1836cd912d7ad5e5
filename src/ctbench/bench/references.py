"""What ctbench's CfC is measured against at the Walker2d CfC shapes.

- :class:`NcpsCfCLoop`: the ``ncps`` library's CfC (``ncps.torch.CfC``'s cell, output layer and
  time loop), fed per-sample elapsed times as a (B, 1) column;
- :class:`FusedLSTM`: torch's fused ``nn.LSTM`` of the same hidden size, with a linear readout;
- :class:`GemmFloor`: only the matrix products of one CfC training step, the part no loop
  rewrite can remove;
- :func:`compile_fast_step` and :class:`ScriptedCfC`: the two compilers tried on the fast path
  (``torch.compile`` of the per-step function; TorchScript of the whole time loop);
- :func:`profile_step`: where a training step's time goes, by operator class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ctbench.cells.cfc import CfCCell
from ctbench.data.batch import Batch
from ctbench.sequence import SequenceModel


class NcpsCfCLoop(nn.Module):
    """``ncps.torch.CfC`` (one-layer backbone), stepped exactly as its ``forward`` steps it.

    Its own ``forward`` squeezes per-sample timespans to shape (B,), which only broadcasts
    when B equals the hidden size (ncps issue #81); the loop below passes the (B, 1) column
    its cell expects and is otherwise that ``forward``: ``input[:, t]`` per step, the output
    layer at every step, one ``stack``.
    """

    def __init__(self, input_size: int, hidden_size: int, n_outputs: int, backbone_units: int,
                 backbone_layers: int, activation: str, dropout: float) -> None:
        super().__init__()
        from ncps.torch import CfC

        self.net = CfC(input_size, hidden_size, proj_size=n_outputs, backbone_units=backbone_units,
                       backbone_layers=backbone_layers, backbone_dropout=dropout, activation=activation)
        self.hidden_size = hidden_size

    def forward(self, batch: Batch) -> Tensor:
        x, dt = batch.x, batch.dt
        h = torch.zeros(x.shape[0], self.hidden_size, device=x.device, dtype=x.dtype)
        outputs = []
        for t in range(x.shape[1]):
            h_out, h = self.net.rnn_cell(x[:, t], h, dt[:, t].unsqueeze(-1))
            outputs.append(self.net.fc(h_out))
        return torch.stack(outputs, 1)


class FusedLSTM(nn.Module):
    """``nn.LSTM`` (cuDNN on GPU, oneDNN on CPU) and a linear readout at every step."""

    def __init__(self, input_size: int, hidden_size: int, n_outputs: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, n_outputs)

    def forward(self, batch: Batch) -> Tensor:
        return self.head(self.lstm(batch.x)[0])


@dataclass
class GemmFloor:
    """The matrix products of one training step of a one-layer-backbone CfC, on random tensors.

    Forward, per step: h W_rec (B,H)x(H,U) and a W_heads (B,U)x(U,4H). Backward, per step: the
    gradients of both inputs and both kernels. Once per sequence: the input projection and the
    readout, forward and backward. Nothing else (no elementwise work, no autograd).
    """

    batch: int
    steps: int
    inputs: int
    hidden: int
    units: int
    outputs: int
    device: torch.device

    def __post_init__(self) -> None:
        b, t, i, h, u, o = self.batch, self.steps, self.inputs, self.hidden, self.units, self.outputs
        r = lambda *s: torch.randn(*s, device=self.device)  # noqa: E731
        self.h, self.w_rec, self.a, self.w_heads = r(b, h), r(h, u), r(b, u), r(u, 4 * h)
        self.dz, self.dpre = r(b, 4 * h), r(b, u)
        self.x, self.w_in, self.dpre_all = r(b * t, i), r(i, u), r(b * t, u)
        self.states, self.w_out, self.dout = r(b * t, h), r(h, o), r(b * t, o)
        self.flops = 2 * t * (b * h * u + b * u * 4 * h) * 3 + 2 * b * t * (i * u * 2 + h * o * 3)

    def __call__(self) -> None:
        for _ in range(self.steps):
            self.h @ self.w_rec
            self.a @ self.w_heads
        for _ in range(self.steps):
            self.dz @ self.w_heads.t()
            self.a.t() @ self.dz
            self.dpre @ self.w_rec.t()
            self.h.t() @ self.dpre
        self.x @ self.w_in
        self.x.t() @ self.dpre_all
        self.states @ self.w_out
        self.dout @ self.w_out.t()
        self.states.t() @ self.dout


def compile_fast_step(model: SequenceModel) -> SequenceModel:
    """``torch.compile`` the CfC's per-step function (not the time loop: dynamo would unroll it)."""
    cell = model.cell
    if not isinstance(cell, CfCCell):
        raise TypeError(f"compile_fast_step needs a CfCCell, got {type(cell).__name__}")
    cell.fast_step = torch.compile(cell.fast_step, dynamic=False)
    return model


@torch.jit.script
def _scripted_cfc_loop(u: Tensor, dt: Tensor, w_rec_t: Tensor, w_heads_t: Tensor, b_heads: Tensor) -> Tensor:
    hidden = w_rec_t.shape[0]
    h = torch.zeros(u.shape[0], hidden, dtype=u.dtype, device=u.device)
    states: List[Tensor] = []
    for u_t, t in zip(u.unbind(1), dt.unsqueeze(-1).unbind(1)):
        z = torch.addmm(b_heads, F.silu(torch.addmm(u_t, h, w_rec_t)), w_heads_t)
        ff1 = torch.tanh(z[:, :hidden])
        ff2 = torch.tanh(z[:, hidden : 2 * hidden])
        gate = torch.sigmoid(z[:, 2 * hidden : 3 * hidden] * t + z[:, 3 * hidden :])
        h = ff1 * (1.0 - gate) + gate * ff2
        states.append(h)
    return torch.stack(states, 1)


class ScriptedCfC(nn.Module):
    """A SequenceModel's CfC (``impl=ncps``/``authors_torch``, ``default`` mode, one silu backbone
    layer, no dropout) run by a TorchScript time loop of the plain step's operations."""

    def __init__(self, model: SequenceModel) -> None:
        super().__init__()
        cell = model.cell
        supported = (
            isinstance(cell, CfCCell) and cell.mode == "default" and cell.impl != "authors_tf"
            and cell.backbone_layers == 1 and cell.backbone_activation == "silu" and cell.backbone_dropout == 0.0
            and model.readout == "sequence" and model.embedding is None and not model.append_mask
        )
        if not supported:
            raise ValueError("ScriptedCfC covers the default-mode, one-silu-layer, torch-gate CfC only")
        self.model = model

    def forward(self, batch: Batch) -> Tensor:
        cell = self.model.cell
        u = cell.project_inputs(batch.x)
        dt = batch.dt.to(u.dtype) * self.model.tau
        states = _scripted_cfc_loop(u, dt, cell.rec_proj.weight.t(), cell.heads.weight.t(), cell.heads.bias)
        return self.model.head(states)


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear", "aten::mkldnn_rnn_layer", "aten::mkldnn_rnn_layer_backward")


@dataclass
class Profile:
    """Shares of a step's profiled CPU time, and the top operators by self time (ms per step)."""

    matmul_share: float
    other_aten_share: float
    overhead_share: float
    top: List[Tuple[str, float, int]]


def profile_step(step: Callable[[], None], repeats: int = 2, top: int = 8) -> Profile:
    """Profile ``step`` on the CPU. ``overhead`` is self time outside ATen operators: the autograd
    engine, Python autograd Functions and the optimiser's Python."""
    from torch.profiler import ProfilerActivity, profile

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            step()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS)
    aten = sum(e.self_cpu_time_total for e in events if e.key.startswith("aten::"))
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return Profile(
        matmul_share=matmul / total,
        other_aten_share=(aten - matmul) / total,
        overhead_share=(total - aten) / total,
        top=[(e.key, e.self_cpu_time_total / 1e3 / repeats, e.count // repeats) for e in ranked],
    )
