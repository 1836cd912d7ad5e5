"""CfC, CfC-noGate, Cf-S and CfC-mmRNN: hand-computed steps per impl, and equality with ncps."""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import pytest
import torch
from torch import Tensor, nn

from ctbench.cells.cfc import CfCCell, MixedMemoryCfCCell

ncps_torch = pytest.importorskip("ncps.torch")

I, H, U = 3, 4, 6
MODES = ("default", "no_gate", "pure")
IMPLS = ("authors_tf", "authors_torch", "ncps")
ACT = {
    "lecun_tanh": lambda z: 1.7159 * torch.tanh(0.666 * z),
    "silu": lambda z: z * torch.sigmoid(z),
    "relu": lambda z: torch.clamp(z, min=0.0),
    "tanh": torch.tanh,
    "gelu": lambda z: 0.5 * z * (1.0 + torch.erf(z / math.sqrt(2.0))),
}


def randomize(module: nn.Module, scale: float = 0.5) -> None:
    """Non-trivial values everywhere (zero biases, A=1, w_tau=0 would hide wiring errors)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn_like(p))


def unfused(cell: CfCCell) -> Dict[str, object]:
    """The cell's parameters in the unfused layout: backbone Linear([x, h]) and four heads."""
    w1 = torch.cat([cell.in_proj.weight, cell.rec_proj.weight], dim=1)
    out: Dict[str, object] = {"first_w": w1, "first_b": cell.in_proj.bias}
    out["hidden"] = [(lin.weight, lin.bias) for lin in cell.backbone_hidden]
    if cell.heads is not None:
        names = ["ff1"] if cell.mode == "pure" else ["ff1", "ff2", "time_a", "time_b"]
        for k, name in enumerate(names):
            out[name] = (cell.heads.weight[k * H : (k + 1) * H], cell.heads.bias[k * H : (k + 1) * H])
    return out


def reference_cfc_step(cell: CfCCell, x: Tensor, h: Tensor, dt: Tensor) -> Tensor:
    """The CfC equations of models.md §2-4 written out on the unfused parameters (no dropout)."""
    p = unfused(cell)
    act = ACT[cell.backbone_activation]
    t = dt.reshape(-1, 1)
    z = torch.cat([x, h], dim=1) @ p["first_w"].T + p["first_b"]
    if cell.backbone_layers > 0:
        z = act(z)
        for w, b in p["hidden"]:
            z = act(z @ w.T + b)
        ff1 = z @ p["ff1"][0].T + p["ff1"][1]
    else:  # heads directly on [x, h]
        ff1 = z[:, :H]
    if cell.mode == "pure":
        a, w_tau = cell.A, cell.w_tau
        return -a * torch.exp(-t * (torch.abs(w_tau) + torch.abs(ff1))) * ff1 + a
    if cell.backbone_layers > 0:
        ff2 = z @ p["ff2"][0].T + p["ff2"][1]
        t_a = z @ p["time_a"][0].T + p["time_a"][1]
        t_b = z @ p["time_b"][0].T + p["time_b"][1]
    else:
        ff2, t_a, t_b = z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
    if cell.impl == "authors_tf":
        ff1 = 1.7159 * torch.tanh(0.666 * ff1)
        ff2 = 1.7159 * torch.tanh(0.666 * ff2)
        gate = torch.sigmoid(-t_a * t + t_b)
    else:
        ff1, ff2 = torch.tanh(ff1), torch.tanh(ff2)
        gate = torch.sigmoid(t_a * t + t_b)
    if cell.mode == "no_gate":
        return ff1 + gate * ff2
    return ff1 * (1.0 - gate) + gate * ff2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layers, activation", [(1, "lecun_tanh"), (2, "silu"), (3, "gelu"), (0, "relu")])
def test_cfc_step_matches_hand_computation(mode: str, impl: str, layers: int, activation: str) -> None:
    torch.manual_seed(0)
    cell = CfCCell(I, H, mode=mode, impl=impl, backbone_units=U, backbone_layers=layers, backbone_activation=activation).eval()
    randomize(cell)
    x, h = torch.randn(5, I), torch.randn(5, H)
    dt = torch.tensor([0.0, 0.3, 1.0, 2.5, 7.0])
    got = cell(x, h, dt)
    want = reference_cfc_step(cell, x, h, dt)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_gate_sign_differs_between_tf_and_torch() -> None:
    """The same weights give sigma(-t_a t + t_b) (tf) vs sigma(t_a t + t_b) (torch): results differ."""
    torch.manual_seed(1)
    tf = CfCCell(I, H, impl="authors_tf", backbone_units=U)
    th = CfCCell(I, H, impl="authors_torch", backbone_units=U)
    randomize(tf)
    th.load_state_dict(tf.state_dict())
    x, h, dt = torch.randn(3, I), torch.randn(3, H), torch.ones(3)
    assert (tf(x, h, dt) - th(x, h, dt)).abs().max() > 1e-3


# --------------------------------------------------------------------------- ncps equivalence
def copy_from_ncps(ours: CfCCell, theirs: nn.Module) -> None:
    """Load an ``ncps.torch.CfCCell``'s weights into the fused layout."""
    with torch.no_grad():
        if theirs.backbone_layers > 0:
            linears: List[nn.Linear] = [m for m in theirs.backbone if isinstance(m, nn.Linear)]
            first, hidden = linears[0], linears[1:]
            heads: Tuple[nn.Linear, ...] = (theirs.ff1,) if theirs.mode == "pure" else (theirs.ff1, theirs.ff2, theirs.time_a, theirs.time_b)
            ours.heads.weight.copy_(torch.cat([m.weight for m in heads], 0))
            ours.heads.bias.copy_(torch.cat([m.bias for m in heads], 0))
            for dst, src in zip(ours.backbone_hidden, hidden):
                dst.load_state_dict(src.state_dict())
            w, b = first.weight, first.bias
        else:
            heads = (theirs.ff1,) if theirs.mode == "pure" else (theirs.ff1, theirs.ff2, theirs.time_a, theirs.time_b)
            w = torch.cat([m.weight for m in heads], 0)
            b = torch.cat([m.bias for m in heads], 0)
        ours.in_proj.weight.copy_(w[:, : ours.input_size])
        ours.rec_proj.weight.copy_(w[:, ours.input_size :])
        ours.in_proj.bias.copy_(b)
        if theirs.mode == "pure":
            ours.A.copy_(theirs.A)
            ours.w_tau.copy_(theirs.w_tau)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("impl", ["authors_torch", "ncps"])
@pytest.mark.parametrize("layers", [1, 2, 0])
def test_cfc_matches_ncps_cell(mode: str, impl: str, layers: int) -> None:
    torch.manual_seed(2)
    theirs = ncps_torch.CfCCell(I, H, mode=mode, backbone_activation="lecun_tanh", backbone_units=U, backbone_layers=layers).eval()
    randomize(theirs)
    ours = CfCCell(I, H, mode=mode, impl=impl, backbone_units=U, backbone_layers=layers).eval()
    copy_from_ncps(ours, theirs)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    x, h = torch.randn(4, I), torch.randn(4, H)
    dt = torch.tensor([0.1, 0.5, 1.0, 3.0])
    want, _ = theirs(x, h, dt.view(-1, 1))  # (B, 1): the per-sample form the cell accepts
    got = ours(x, h, dt)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def _copy_ncps_mixed(ours: MixedMemoryCfCCell, theirs: nn.Module) -> None:
    copy_from_ncps(ours.cfc, theirs.rnn_cell)
    with torch.no_grad():
        ours.lstm_in.weight.copy_(theirs.lstm.input_map.weight)
        ours.lstm_in.bias.copy_(theirs.lstm.input_map.bias)
        ours.lstm_rec.weight.copy_(theirs.lstm.recurrent_map.weight)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("impl", ["authors_torch", "ncps"])
def test_mixed_memory_matches_ncps_cfc_module(mode: str, impl: str) -> None:
    torch.manual_seed(3)
    theirs = ncps_torch.CfC(I, H, mixed_memory=True, mode=mode, activation="lecun_tanh", backbone_units=U, backbone_layers=2, batch_first=True, return_sequences=True).eval()
    randomize(theirs)
    ours = MixedMemoryCfCCell(I, H, mode=mode, impl=impl, backbone_units=U, backbone_layers=2).eval()
    _copy_ncps_mixed(ours, theirs)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())

    def unroll(x: Tensor, dt: Tensor) -> Tensor:
        u = ours.project_inputs(x)
        state, outs = ours.initial_state(x.shape[0], x.device, x.dtype), []
        for t in range(x.shape[1]):
            state = ours.step(u[:, t], state, dt[:, t])
            outs.append(ours.output(state))
        return torch.stack(outs, 1)

    # ncps's module squeezes per-sample timespans to (B,) (ncps#81), so compare with its default
    # timespan 1.0 for B = 3, and with per-step timespans for B = 1, where the squeeze is harmless.
    x = torch.randn(3, 5, I)
    want, _ = theirs(x)
    torch.testing.assert_close(unroll(x, torch.ones(3, 5)), want, rtol=1e-5, atol=1e-5)
    x1, ts = torch.randn(1, 5, I), torch.rand(1, 5) * 2
    want1, _ = theirs(x1, timespans=ts)
    torch.testing.assert_close(unroll(x1, ts), want1, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", ["authors_torch", "ncps"])
def test_mixed_memory_step_matches_ncps_cells_with_per_sample_dt(impl: str) -> None:
    """The ncps wiring (LSTM on the input with (h, c), then the CfC on (input, h_lstm)) with (B, 1) dt."""
    torch.manual_seed(4)
    theirs = ncps_torch.CfC(I, H, mixed_memory=True, backbone_units=U, backbone_layers=1).eval()
    randomize(theirs)
    ours = MixedMemoryCfCCell(I, H, impl=impl, backbone_units=U, backbone_layers=1).eval()
    _copy_ncps_mixed(ours, theirs)
    x, h, c = torch.randn(H, I), torch.randn(H, H), torch.randn(H, H)  # B == H on purpose
    dt = torch.linspace(0.1, 2.0, H)
    h_l, c_new = theirs.lstm(x, (h, c))
    h_new, _ = theirs.rnn_cell(x, h_l, dt.view(-1, 1))
    got_h, got_c = ours(x, (h, c), dt)
    torch.testing.assert_close(got_h, h_new, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_c, c_new, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_mixed_memory_tf_matches_hand_computation(mode: str) -> None:
    """authors_tf MixedCfcCell: gates from [x, h_ode], LSTM output is the CfC *input*."""
    torch.manual_seed(5)
    cell = MixedMemoryCfCCell(I, H, mode=mode, impl="authors_tf", backbone_units=U, forget_bias=2.1).eval()
    randomize(cell)
    x, h, c = torch.randn(3, I), torch.randn(3, H), torch.randn(3, H)
    dt = torch.tensor([0.0, 0.4, 2.0])
    z = x @ cell.lstm_in.weight.T + cell.lstm_in.bias + h @ cell.lstm_rec.weight.T
    i, ig, fg, og = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
    c_want = c * torch.sigmoid(fg + 2.1) + torch.tanh(i) * torch.sigmoid(ig)
    lstm_out = torch.tanh(c_want) * torch.sigmoid(og)
    h_want = reference_cfc_step(cell.cfc, lstm_out, h, dt)
    got_h, got_c = cell(x, (h, c), dt)
    torch.testing.assert_close(got_c, c_want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_h, h_want, rtol=1e-5, atol=1e-5)
    assert cell.cfc.input_size == H  # the inner CfC reads the LSTM output


def test_mixed_memory_forget_bias_only_for_tf() -> None:
    with pytest.raises(ValueError, match="forget_bias"):
        MixedMemoryCfCCell(I, H, impl="authors_torch", forget_bias=2.0)
    torch.manual_seed(6)
    a = MixedMemoryCfCCell(I, H, forget_bias=1.0)
    b = MixedMemoryCfCCell(I, H, forget_bias=3.0)
    b.load_state_dict(a.state_dict())
    x, state, dt = torch.randn(2, I), (torch.randn(2, H), torch.randn(2, H)), torch.ones(2)
    assert (a(x, state, dt)[1] - b(x, state, dt)[1]).abs().max() > 1e-3


# --------------------------------------------------------------------------- structure and init
def unfused_count(mode: str, layers: int) -> int:
    heads = 1 if mode == "pure" else 4
    if layers == 0:
        n = heads * ((I + H) * H + H)
    else:
        n = (I + H) * U + U + (layers - 1) * (U * U + U) + heads * (U * H + H)
    return n + (2 * H if mode == "pure" else 0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layers", [0, 1, 3])
def test_fused_parameter_count_equals_unfused(mode: str, layers: int) -> None:
    cell = CfCCell(I, H, mode=mode, backbone_units=U, backbone_layers=layers)
    assert sum(p.numel() for p in cell.parameters()) == unfused_count(mode, layers)
    if layers > 0:  # one fused head Linear
        assert cell.heads.out_features == (H if mode == "pure" else 4 * H)


def test_regularized_weights_are_the_unfused_kernels() -> None:
    torch.manual_seed(7)
    theirs = ncps_torch.CfCCell(I, H, backbone_units=U, backbone_layers=2)
    ours = CfCCell(I, H, impl="ncps", backbone_units=U, backbone_layers=2)
    copy_from_ncps(ours, theirs)
    kernels = [m.weight for m in theirs.modules() if isinstance(m, nn.Linear)]
    want = sum(float((w.detach() ** 2).sum()) for w in kernels)
    got = sum(float((w.detach() ** 2).sum()) for w in ours.regularized_weights())
    assert abs(got - want) < 1e-4 * want
    mixed = MixedMemoryCfCCell(I, H, backbone_units=U)
    ids = {id(w) for w in mixed.regularized_weights()}
    assert id(mixed.lstm_in.weight) not in ids and id(mixed.lstm_rec.weight) not in ids
    pure = CfCCell(I, H, mode="pure", backbone_units=U)
    assert id(pure.A) not in {id(w) for w in pure.regularized_weights()}


def _glorot(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    return gain * math.sqrt(6.0 / (fan_in + fan_out))


def test_tf_init_is_glorot_with_zero_biases() -> None:
    torch.manual_seed(8)
    i, h, u = 20, 30, 40
    cell = CfCCell(i, h, impl="authors_tf", backbone_units=u, backbone_layers=2)
    for b in (cell.in_proj.bias, cell.heads.bias, cell.backbone_hidden[0].bias):
        assert torch.count_nonzero(b) == 0
    for w, bound in ((cell.in_proj.weight, _glorot(i + h, u)), (cell.rec_proj.weight, _glorot(i + h, u)),
                     (cell.backbone_hidden[0].weight, _glorot(u, u)), (cell.heads.weight, _glorot(u, h))):
        assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    pure = CfCCell(i, h, mode="pure", impl="authors_tf")
    assert torch.all(pure.A == 1) and torch.all(pure.w_tau == 0)


def test_torch_init_gain_and_ncps_xavier_cover_every_2d_parameter() -> None:
    torch.manual_seed(9)
    i, h, u = 20, 30, 40
    plain = CfCCell(i, h, mode="pure", impl="authors_torch", backbone_units=u)
    assert torch.all(plain.A == 1) and torch.all(plain.w_tau == 0)
    # torch default init: U(+-1/sqrt(fan_in)), biases included
    assert plain.in_proj.weight.abs().max() <= 1 / math.sqrt(i + h) and plain.in_proj.bias.abs().max() > 0
    gained = CfCCell(i, h, mode="pure", impl="authors_torch", backbone_units=u, init_gain=0.5)
    assert gained.in_proj.weight.abs().max() <= _glorot(i + h, u, 0.5)
    assert gained.in_proj.weight.abs().max() > 0.9 * _glorot(i + h, u, 0.5)
    assert gained.heads.weight.abs().max() <= _glorot(u, h, 0.5)
    # A and w_tau are (1, hidden) 2-D parameters: Xavier overwrites their ones / zeros, as in the originals
    assert not torch.all(gained.A == 1) and gained.A.abs().max() <= _glorot(h, 1, 0.5)
    ncps = CfCCell(i, h, mode="pure", impl="ncps", backbone_units=u)
    assert not torch.all(ncps.w_tau == 0) and ncps.w_tau.abs().max() <= _glorot(h, 1)
    with pytest.raises(ValueError, match="init_gain"):
        CfCCell(i, h, impl="authors_tf", init_gain=0.5)


def test_mixed_lstm_init() -> None:
    torch.manual_seed(10)
    tf = MixedMemoryCfCCell(I, 8, impl="authors_tf")
    th = MixedMemoryCfCCell(I, 8, impl="authors_torch")
    assert torch.count_nonzero(tf.lstm_in.bias) == 0
    assert 0 < th.lstm_in.bias.abs().max() <= 0.1
    w = tf.lstm_rec.weight  # (4H, H), orthonormal columns
    torch.testing.assert_close(w.T @ w, torch.eye(8), rtol=1e-5, atol=1e-5)


def test_backbone_dropout_placement() -> None:
    """TF: dropout after every layer (active with one layer); torch: only after layers >= 2."""
    torch.manual_seed(11)
    x, h, dt = torch.randn(4, I), torch.randn(4, H), torch.ones(4)

    def stochastic(cell: CfCCell) -> bool:
        cell.train()
        return not torch.equal(cell(x, h, dt), cell(x, h, dt))

    assert stochastic(CfCCell(I, H, impl="authors_tf", backbone_units=64, backbone_dropout=0.5))
    assert not stochastic(CfCCell(I, H, impl="authors_torch", backbone_units=64, backbone_dropout=0.5))
    assert not stochastic(CfCCell(I, H, impl="ncps", backbone_units=64, backbone_dropout=0.5))
    assert stochastic(CfCCell(I, H, impl="authors_torch", backbone_units=64, backbone_layers=2, backbone_dropout=0.5))
    evaluated = CfCCell(I, H, impl="authors_tf", backbone_units=64, backbone_dropout=0.5).eval()
    assert torch.equal(evaluated(x, h, dt), evaluated(x, h, dt))
