"""The fused unroll (``cell.unroll``) against the plain step-by-step loop, to 1e-5.

Values and gradients (every parameter, the inputs and the elapsed times) of a SequenceModel run
both ways on random inputs, with and without step masks, with per-sample elapsed times (zeros
included), for every readout, every CfC variant and implementation, the mixed-memory CfC and the
LTC. Dropout is compared in training mode from the same seed: the fast path draws the same masks.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import pytest
import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell
from ctbench.cells.cfc import CfCCell, MixedMemoryCfCCell, _GatedHeads, _LSTMGates, _PureHead
from ctbench.cells import ltc
from ctbench.cells.ltc import LTCCell, _Unfolds
from ctbench.data.batch import Batch
from ctbench.sequence import SequenceModel

B, T, F, H, U = 5, 7, 3, 4, 6
TOL = dict(rtol=1e-5, atol=1e-5)


def randomize(module: nn.Module, scale: float = 0.5) -> None:
    """Non-trivial values everywhere (zero biases, A = 1, w_tau = 0 would hide wiring errors)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn_like(p))


def make_batch(readout: str, masked: bool, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, F, generator=g)
    dt = torch.rand(B, T, generator=g) * 2.0
    dt[0, 2] = 0.0  # zero elapsed time is a legal input
    step_mask = obs_mask = None
    if masked:
        lengths = torch.tensor([T, 5, 1, 3, T])
        step_mask = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
    if readout == "last_observed":
        obs_mask = torch.rand(B, T, F, generator=g) > 0.6
        obs_mask[1] = False  # never observed: the readout takes step 0
        obs_mask[2, 0] = False
    y = torch.zeros(B, T, 2) if readout == "sequence" else torch.zeros(B)
    return Batch(x=x, dt=dt, y=y, step_mask=step_mask, obs_mask=obs_mask)


def run(model: SequenceModel, batch: Batch, fast: bool, seed: int = 1) -> Tuple[Tensor, List[Optional[Tensor]]]:
    """Output and the gradients of a fixed random projection of it (parameters, x, dt)."""
    model.fast_path = fast
    x = batch.x.clone().requires_grad_()
    dt = batch.dt.clone().requires_grad_()
    b = Batch(x=x, dt=dt, y=batch.y, step_mask=batch.step_mask, obs_mask=batch.obs_mask)
    torch.manual_seed(seed)  # the same dropout masks on both paths
    out = model(b)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    inputs = [x, dt, *model.parameters()]
    grads = torch.autograd.grad((out * weights).sum(), inputs, allow_unused=True)
    return out.detach(), list(grads)


def assert_paths_agree(model: SequenceModel, batch: Batch) -> None:
    assert hasattr(model.cell, "unroll")
    out_plain, grads_plain = run(model, batch, fast=False)
    out_fast, grads_fast = run(model, batch, fast=True)
    torch.testing.assert_close(out_fast, out_plain, **TOL)
    names = ["x", "dt"] + [n for n, _ in model.named_parameters()]
    for name, g_fast, g_plain in zip(names, grads_fast, grads_plain):
        if g_plain is None:
            assert g_fast is None or torch.count_nonzero(g_fast) == 0, name
            continue
        torch.testing.assert_close(g_fast, g_plain, **TOL, msg=lambda m, n=name: f"grad of {n}: {m}")


def model_for(cell: Cell, readout: str, append_mask: bool = False) -> SequenceModel:
    model = SequenceModel(cell, n_outputs=2, readout=readout, append_mask=append_mask)
    randomize(model)
    return model


READOUTS = ("sequence", "last", "last_observed")


@pytest.mark.parametrize("mode", ("default", "no_gate", "pure"))
@pytest.mark.parametrize("impl", ("authors_tf", "authors_torch", "ncps"))
@pytest.mark.parametrize("readout", READOUTS)
@pytest.mark.parametrize("masked", (False, True))
def test_cfc_fast_path_matches_plain_loop(mode: str, impl: str, readout: str, masked: bool) -> None:
    torch.manual_seed(0)
    cell = CfCCell(F * (2 if readout == "last_observed" else 1), H, mode=mode, impl=impl, backbone_units=U, backbone_activation="silu")
    assert_paths_agree(model_for(cell, readout, append_mask=readout == "last_observed"), make_batch(readout, masked))


@pytest.mark.parametrize("mode", ("default", "no_gate", "pure"))
@pytest.mark.parametrize("layers, activation", [(0, "relu"), (2, "lecun_tanh"), (3, "gelu"), (1, "softplus"), (1, "tanh")])
def test_cfc_fast_path_backbones(mode: str, layers: int, activation: str) -> None:
    torch.manual_seed(1)
    cell = CfCCell(F, H, mode=mode, impl="authors_torch", backbone_units=U, backbone_layers=layers, backbone_activation=activation)
    assert_paths_agree(model_for(cell, "sequence"), make_batch("sequence", masked=True))


@pytest.mark.parametrize("impl", ("authors_tf", "authors_torch"))
@pytest.mark.parametrize("layers", (1, 2))
def test_cfc_fast_path_draws_the_same_dropout(impl: str, layers: int) -> None:
    torch.manual_seed(2)
    cell = CfCCell(F, H, impl=impl, backbone_units=U, backbone_layers=layers, backbone_dropout=0.3)
    model = model_for(cell, "sequence").train()
    batch = make_batch("sequence", masked=True)
    assert_paths_agree(model, batch)
    if impl == "authors_tf" or layers > 1:  # dropout is active: two seeds give different outputs
        assert not torch.equal(run(model, batch, fast=True, seed=1)[0], run(model, batch, fast=True, seed=3)[0])


@pytest.mark.parametrize("mode", ("default", "no_gate", "pure"))
@pytest.mark.parametrize("impl", ("authors_tf", "authors_torch", "ncps"))
@pytest.mark.parametrize("readout, masked", [("sequence", False), ("last", True), ("last_observed", False)])
def test_mixed_memory_fast_path_matches_plain_loop(mode: str, impl: str, readout: str, masked: bool) -> None:
    torch.manual_seed(3)
    n_in = F * (2 if readout == "last_observed" else 1)
    kwargs: Dict[str, float] = {"forget_bias": 1.7} if impl == "authors_tf" else {}
    cell = MixedMemoryCfCCell(n_in, H, mode=mode, impl=impl, backbone_units=U, backbone_layers=2, **kwargs)
    assert_paths_agree(model_for(cell, readout, append_mask=readout == "last_observed"), make_batch(readout, masked))


@pytest.mark.parametrize("impl", ("authors_tf", "authors_torch", "ncps"))
@pytest.mark.parametrize("readout, masked", [("sequence", True), ("last", False), ("last_observed", True)])
def test_ltc_fast_path_matches_plain_loop(impl: str, readout: str, masked: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ltc, "CPU_CHUNK_ELEMENTS", 2 * H * H)  # batch chunks of 2, 2 and 1 samples
    torch.manual_seed(4)
    cell = LTCCell(F * (2 if readout == "last_observed" else 1), H, ode_unfolds=3, impl=impl)
    model = SequenceModel(cell, n_outputs=2, readout=readout, append_mask=readout == "last_observed")
    with torch.no_grad():  # the LTC's own ranges (positive conductances), not N(0, 0.25)
        model.head.weight.normal_()
    batch = make_batch(readout, masked)
    # dt = 0 divides by zero for ncps (no offset) and by 1e-3 for authors_tf, where float32
    # rounding alone moves the dt gradient by ~1e-4: both paths are compared away from it.
    batch.dt.clamp_(min=0.1)
    assert_paths_agree(model, batch)


def test_fast_path_is_the_default_and_cells_without_unroll_use_the_loop() -> None:
    cell = CfCCell(F, H, backbone_units=U)
    assert SequenceModel(cell, n_outputs=2).fast_path

    class Recorder(CfCCell):
        calls: List[str] = []

        def unroll(self, u: Tensor, dt: Tensor, keep: Optional[Tensor] = None) -> Tensor:
            self.calls.append("unroll")
            return super().unroll(u, dt, keep)

        def step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
            self.calls.append("step")
            return super().step(u, state, dt)

    model = SequenceModel(Recorder(F, H, backbone_units=U), n_outputs=2)
    batch = make_batch("sequence", masked=False)
    model(batch)
    assert Recorder.calls == ["unroll"]
    model.fast_path = False
    model(batch)
    assert Recorder.calls[1:] == ["step"] * T


def _pure_reference(f: Tensor, t: Tensor, a: Tensor, w: Tensor) -> Tensor:
    return -a * torch.exp(-t * (torch.abs(w) + torch.abs(f))) * f + a


@pytest.mark.parametrize("gate_sign, lecun, no_gate", [(-1.0, True, False), (1.0, False, False), (1.0, False, True)])
def test_gated_heads_pass_gradcheck(gate_sign: float, lecun: bool, no_gate: bool) -> None:
    """The hand-written backward against finite differences in float64."""
    torch.manual_seed(5)
    z = torch.randn(3, 4 * H, dtype=torch.float64, requires_grad=True)
    t = torch.rand(3, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, t: _GatedHeads.apply(z, t, gate_sign, lecun, no_gate), (z, t))


def test_pure_and_lstm_functions_pass_gradcheck() -> None:
    torch.manual_seed(6)
    f = torch.randn(3, H, dtype=torch.float64, requires_grad=True)
    t = torch.rand(3, 1, dtype=torch.float64, requires_grad=True)
    a = torch.randn(1, H, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, H, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_PureHead.apply, (f, t, a, w))
    torch.testing.assert_close(_PureHead.apply(f, t, a, w), _pure_reference(f, t, a, w))
    z = torch.randn(3, 4 * H, dtype=torch.float64, requires_grad=True)
    c = torch.randn(3, H, dtype=torch.float64, requires_grad=True)
    shift = torch.cat([torch.zeros(H), torch.full((H,), 1.3), torch.zeros(H)]).double()
    assert torch.autograd.gradcheck(lambda z, c: _LSTMGates.apply(z, c, shift), (z, c))


def test_ltc_unfolds_pass_gradcheck() -> None:
    """The recomputing backward of the LTC unfolds against finite differences in float64."""
    torch.manual_seed(7)
    n, b = 3, 2
    pos = lambda *s: (torch.rand(*s, dtype=torch.float64) + 0.2).requires_grad_()  # noqa: E731
    args = (torch.randn(b, n, dtype=torch.float64, requires_grad=True), pos(b, n), torch.randn(b, n, dtype=torch.float64, requires_grad=True),
            pos(b, n), torch.randn(n, n, dtype=torch.float64, requires_grad=True), torch.randn(n, n, dtype=torch.float64, requires_grad=True),
            torch.randn(n, n, dtype=torch.float64, requires_grad=True), pos(n, n))
    assert torch.autograd.gradcheck(lambda *a: _Unfolds.apply(*a, 3), args)
