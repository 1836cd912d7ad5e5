"""LTC: the fused semi-implicit solver against an explicit loop, ncps's LTCCell, init, constraints."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ctbench.cells.ltc import LTCCell

D, N = 3, 4
OFFSET = {"authors_tf": 1e-3, "authors_torch": 1.0, "ncps": 0.0}


def reference_ltc_step(cell: LTCCell, x: Tensor, v0: Tensor, dt: Tensor) -> Tensor:
    """models.md §6 written as explicit loops over samples, unfolds and post-synaptic neurons."""
    out = torch.empty_like(v0)
    for b in range(x.shape[0]):
        inp = x[b] * cell.input_w + cell.input_b
        c_t = cell.cm / ((dt[b] + OFFSET[cell.impl]) / cell.ode_unfolds)
        sens_num = torch.zeros(N)
        sens_den = torch.zeros(N)
        for j in range(N):
            for i in range(D):
                s = torch.sigmoid(cell.sensory_sigma[i, j] * (inp[i] - cell.sensory_mu[i, j]))
                sens_num[j] += cell.sensory_w[i, j] * s * cell.sensory_erev[i, j]
                sens_den[j] += cell.sensory_w[i, j] * s
        v = v0[b].clone()
        for _ in range(cell.ode_unfolds):
            new_v = torch.empty(N)
            for j in range(N):
                rec_num = rec_den = 0.0
                for i in range(N):
                    s = torch.sigmoid(cell.sigma[i, j] * (v[i] - cell.mu[i, j]))
                    rec_num = rec_num + cell.w[i, j] * s * cell.erev[i, j]
                    rec_den = rec_den + cell.w[i, j] * s
                num = c_t[j] * v[j] + cell.gleak[j] * cell.vleak[j] + rec_num + sens_num[j]
                den = c_t[j] + cell.gleak[j] + rec_den + sens_den[j]
                new_v[j] = num / (den + cell.epsilon)
            v = new_v
        out[b] = v
    return out


@pytest.mark.parametrize("impl", ["authors_tf", "authors_torch", "ncps"])
@pytest.mark.parametrize("unfolds", [1, 3])
def test_ltc_step_matches_explicit_loop(impl: str, unfolds: int) -> None:
    torch.manual_seed(0)
    cell = LTCCell(D, N, ode_unfolds=unfolds, impl=impl)
    with torch.no_grad():  # a non-trivial input map
        cell.input_w.uniform_(0.5, 1.5)
        cell.input_b.uniform_(-0.2, 0.2)
    x, v = torch.randn(3, D), 0.5 * torch.randn(3, N)
    dt = torch.tensor([0.05, 1.0, 2.5])
    with torch.no_grad():
        got = cell(x, v, dt)
        want = reference_ltc_step(cell, x, v, dt)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_dt_offsets_per_impl() -> None:
    """authors_torch(dt) == ncps(dt + 1) and authors_tf(dt) == ncps(dt + 1e-3) on the same parameters."""
    torch.manual_seed(1)
    ncps = LTCCell(D, N, impl="ncps", ode_unfolds=6)
    x, v, dt = torch.randn(2, D), torch.randn(2, N), torch.tensor([0.2, 1.3])
    for impl, offset in (("authors_torch", 1.0), ("authors_tf", 1e-3)):
        other = LTCCell(D, N, impl=impl, ode_unfolds=6)
        other.load_state_dict(ncps.state_dict(), strict=False)
        with torch.no_grad():
            torch.testing.assert_close(other(x, v, dt), ncps(x, v, dt + offset), rtol=1e-5, atol=1e-5)


def test_matches_ncps_ltc_cell() -> None:
    ncps_torch = pytest.importorskip("ncps.torch")
    from ncps.wirings import FullyConnected

    torch.manual_seed(2)
    theirs = ncps_torch.LTCCell(FullyConnected(N), in_features=D, ode_unfolds=6, implicit_param_constraints=False)
    ours = LTCCell(D, N, ode_unfolds=6, impl="ncps")
    with torch.no_grad():
        for name, p in ours.named_parameters():
            p.copy_(getattr(theirs, name))
        ours.input_w.uniform_(0.5, 1.5)  # non-trivial maps, copied back into ncps
        ours.input_b.uniform_(-0.2, 0.2)
        ours.output_w.uniform_(0.5, 1.5)
        ours.output_b.uniform_(-0.2, 0.2)
        for name in ("input_w", "input_b", "output_w", "output_b"):
            getattr(theirs, name).copy_(getattr(ours, name))
    x, v = torch.randn(N, D), 0.5 * torch.randn(N, N)  # B == N on purpose
    dt = torch.tensor([0.1, 0.7, 1.0, 3.0])
    with torch.no_grad():
        want_out, want_state = theirs(x, v, dt.view(-1, 1))
        got_state = ours(x, v, dt)
        torch.testing.assert_close(got_state, want_state, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours.output(got_state), want_out, rtol=1e-5, atol=1e-5)
    # The trainable parameter count matches too (ncps's sparsity masks are frozen buffers-as-parameters).
    n_theirs = sum(p.numel() for p in theirs.parameters() if p.requires_grad)
    assert sum(p.numel() for p in ours.parameters()) == n_theirs


def test_output_map_per_impl() -> None:
    torch.manual_seed(3)
    torch_cell = LTCCell(D, N, impl="authors_torch")
    assert torch_cell.output_w is None and torch_cell.output_b is None
    v = torch.randn(2, N)
    assert torch.equal(torch_cell.output(v), v)
    tf_cell = LTCCell(D, N, impl="authors_tf")
    with torch.no_grad():
        tf_cell.output_w.fill_(2.0)
        tf_cell.output_b.fill_(0.5)
    torch.testing.assert_close(tf_cell.output(v), 2.0 * v + 0.5)


def test_init_ranges_and_reversal_potentials() -> None:
    torch.manual_seed(4)
    cell = LTCCell(8, 60, impl="authors_tf")
    ranges = {"gleak": (0.001, 1.0), "vleak": (-0.2, 0.2), "cm": (0.4, 0.6), "w": (0.001, 1.0), "sigma": (3, 8), "mu": (0.3, 0.8),
              "sensory_w": (0.001, 1.0), "sensory_sigma": (3, 8), "sensory_mu": (0.3, 0.8)}
    for name, (low, high) in ranges.items():
        p = getattr(cell, name)
        assert p.min() >= low and p.max() <= high, name
        assert p.max() - p.min() > 0.8 * (high - low), name
    assert torch.all(cell.input_w == 1) and torch.all(cell.input_b == 0)
    assert torch.all(cell.output_w == 1) and torch.all(cell.output_b == 0)
    for erev in (cell.erev, cell.sensory_erev):
        assert set(erev.unique().tolist()) == {-1.0, 1.0}
    assert 0.45 < float((cell.erev > 0).float().mean()) < 0.55
    ncps = LTCCell(8, 60, impl="ncps")  # FullyConnected's {-1, +1, +1}: 2/3 excitatory
    assert 0.62 < float((ncps.erev > 0).float().mean()) < 0.71
    # torch's RNG drives the draw, so seeding reproduces it
    torch.manual_seed(5)
    a = LTCCell(D, N).erev.clone()
    torch.manual_seed(5)
    assert torch.equal(LTCCell(D, N).erev, a)


def test_apply_constraints_clips_only_the_positive_parameters() -> None:
    torch.manual_seed(6)
    cell = LTCCell(D, N)
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.randn_like(p))
    before = {k: v.clone() for k, v in cell.state_dict().items()}
    cell.apply_constraints()
    after = cell.state_dict()
    for name in ("w", "sensory_w", "cm", "gleak"):
        assert torch.all(after[name] >= 0), name
        torch.testing.assert_close(after[name], before[name].clamp(min=0))
    for name in ("vleak", "sigma", "mu", "erev", "sensory_erev", "input_b"):
        assert (before[name] < 0).any() and torch.equal(after[name], before[name]), name


def test_regularly_sampled_dt_zero_is_finite_for_authors_impls() -> None:
    """The offsets keep dt = 0 finite in the authors' codes; ncps divides by zero (as ncps does)."""
    torch.manual_seed(7)
    x, v, dt = torch.randn(2, D), torch.randn(2, N), torch.zeros(2)
    for impl in ("authors_tf", "authors_torch"):
        assert torch.isfinite(LTCCell(D, N, impl=impl)(x, v, dt)).all()
    assert not torch.isfinite(LTCCell(D, N, impl="ncps")(x, v, dt)).all()
