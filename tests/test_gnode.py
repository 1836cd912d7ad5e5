"""Gated neural ODE family (Kim, Can & Krishnamurthy 2023; gnode.md G2, G4): each update against
its equation written out on the cells' own parameters, the alpha = 1 discrete forms, the exact and
odeint integrators, critical init and the parameter counts of G4.2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import Tensor

from ctbench.cells.gnode import GatedNODECell
from ctbench.cells.gnode_gru import GNODEGRUCell
from ctbench.sequence import SequenceModel

n, N, B = 3, 6, 4
CONF = Path(__file__).resolve().parents[1] / "conf"


def randomized(cell: torch.nn.Module, scale: float = 0.3) -> torch.nn.Module:
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(scale * torch.randn_like(p))
    return cell


def mlp_direct(h: Tensor, x: Tensor, U: Tensor, layers, out=lambda s: s) -> Tensor:
    """phi_o(W_L relu(... relu(W_0 h + U x + b_0) ...) + b_L), layers = [(W, b), ...]."""
    W0, b0 = layers[0]
    s = h @ W0.T + x @ U.T + b0
    for W, b in layers[1:]:
        s = torch.relu(s) @ W.T + b
    return out(s)


def layers_of(net) -> list:
    return [(l.weight, l.bias) for l in (net.first, *net.rest)]


def F_direct(cell: GatedNODECell, h: Tensor, x: Tensor) -> Tensor:
    return mlp_direct(h, x, cell.f_input.weight, layers_of(cell.f_net), torch.tanh if cell.f_output == "tanh" else (lambda s: s))


def G_direct(cell: GatedNODECell, h: Tensor, x: Tensor) -> Tensor:
    return mlp_direct(h, x, cell.g_input.weight, layers_of(cell.g_net), torch.sigmoid)


def data(seed: int = 0):
    torch.manual_seed(seed)
    return torch.randn(B, n), torch.randn(B, N)


# -- Euler updates ------------------------------------------------------------------------
@pytest.mark.parametrize("gated", [True, False])
def test_euler_step_is_the_leaky_gated_update(gated: bool) -> None:
    torch.manual_seed(0)
    cell = randomized(GatedNODECell(n, N, f_widths=[7, 5], gated=gated, tau=2.0))
    x, h = data(1)
    dt = torch.tensor([0.1, 0.5, 1.0, 3.0])
    alpha = (dt / 2.0).unsqueeze(-1)
    f = F_direct(cell, h, x)
    z = G_direct(cell, h, x) if gated else torch.ones_like(h)
    with torch.no_grad():
        torch.testing.assert_close(cell(x, h, dt), (1 - alpha * z) * h + alpha * z * f)
        torch.testing.assert_close(cell.velocity(h, cell.project_inputs(x)), z * (-h + f) / 2.0)


def test_alpha_one_gives_the_discrete_forms_of_g2_2() -> None:
    x, h = data(2)
    one = torch.ones(B)
    torch.manual_seed(3)
    rnn = randomized(GatedNODECell(n, N, f_widths=[], gated=False, f_output="tanh"))
    W, b, U = rnn.f_net.first.weight, rnn.f_net.first.bias, rnn.f_input.weight
    mgru = randomized(GatedNODECell(n, N, f_widths=[], gated=True, f_output="tanh"))
    node = randomized(GatedNODECell(n, N, f_widths=[10, 10], gated=False))
    gnode = randomized(GatedNODECell(n, N, f_widths=[10, 10], gated=True))
    with torch.no_grad():
        # vanilla RNN: h' = tanh(W h + U x + b)
        torch.testing.assert_close(rnn(x, h, one), torch.tanh(h @ W.T + x @ U.T + b))
        # mGRU: h' = (1 - z) h + z tanh(W h + U x + b), z = sigmoid(W_z h + U_z x + b_z)
        z = torch.sigmoid(h @ mgru.g_net.first.weight.T + x @ mgru.g_input.weight.T + mgru.g_net.first.bias)
        cand = torch.tanh(h @ mgru.f_net.first.weight.T + x @ mgru.f_input.weight.T + mgru.f_net.first.bias)
        torch.testing.assert_close(mgru(x, h, one), (1 - z) * h + z * cand)
        # nODE: h' = F(h, x); gnODE: h' = (1 - z) h + z F
        torch.testing.assert_close(node(x, h, one), F_direct(node, h, x))
        z = G_direct(gnode, h, x)
        torch.testing.assert_close(gnode(x, h, one), (1 - z) * h + z * F_direct(gnode, h, x))


def test_authors_gru_resets_before_the_matrix_and_z_one_is_a_full_update() -> None:
    torch.manual_seed(4)
    cell = randomized(GNODEGRUCell(n, N))
    x, h = data(5)
    Uz, Ur, Uh = cell.input_kernel.weight.chunk(3, dim=0)
    Wz, Wr = cell.gate_kernel.weight.chunk(2, dim=0)
    bz, br = cell.gate_kernel.bias.chunk(2)
    Wh, bh = cell.candidate_kernel.weight, cell.candidate_kernel.bias
    z = torch.sigmoid(h @ Wz.T + x @ Uz.T + bz)
    r = torch.sigmoid(h @ Wr.T + x @ Ur.T + br)
    cand = torch.tanh((r * h) @ Wh.T + x @ Uh.T + bh)
    with torch.no_grad():
        torch.testing.assert_close(cell(x, h, torch.ones(B)), (1 - z) * h + z * cand)
        dt = torch.tensor([0.2, 0.7, 1.5, 3.0])
        a = dt.unsqueeze(-1)
        torch.testing.assert_close(cell(x, h, dt), (1 - a * z) * h + a * z * cand)
        exact = GNODEGRUCell(n, N, integrator="exact")
        exact.load_state_dict(cell.state_dict())
        torch.testing.assert_close(exact(x, h, dt), cand + (h - cand) * torch.exp(-a * z))
        # z = 1 (huge gate bias) replaces the state by the candidate
        cell.gate_kernel.bias[:N] = 50.0
        r = torch.sigmoid(h @ Wr.T + x @ Ur.T + br)
        torch.testing.assert_close(cell(x, h, torch.ones(B)), torch.tanh((r * h) @ Wh.T + x @ Uh.T + bh))
    # torch's nn.GRUCell differs (reset after the matrix, two biases): not the same function
    assert sum(p.numel() for p in cell.core_parameters()) == 3 * (N * N + n * N + N)


# -- exact step -----------------------------------------------------------------------------
def test_exact_step_formula_and_boundedness_at_alpha_5() -> None:
    torch.manual_seed(6)
    exact = randomized(GatedNODECell(n, N, f_widths=[8], gated=True, integrator="exact"), scale=1.0)
    euler = GatedNODECell(n, N, f_widths=[8], gated=True, integrator="euler")
    euler.load_state_dict(exact.state_dict())
    x, h = data(7)
    dt = torch.full((B,), 5.0)
    with torch.no_grad():
        f, z = F_direct(exact, h, x), G_direct(exact, h, x)
        out = exact(x, h, dt)
        torch.testing.assert_close(out, f + (h - f) * torch.exp(-5.0 * z))
        # a convex combination of h and F, elementwise, for any alpha
        lo, hi = torch.minimum(h, f), torch.maximum(h, f)
        assert ((out >= lo - 1e-6) & (out <= hi + 1e-6)).all()
    # over many steps with a bounded F (the mGRU's tanh): the exact step keeps |h| <= max(|h0|, 1)
    # for any alpha; Euler with alpha z > 2 overshoots and blows up
    torch.manual_seed(7)
    mgru = randomized(GatedNODECell(n, N, f_widths=[], gated=True, f_output="tanh", integrator="exact"))
    with torch.no_grad():
        mgru.g_net.first.bias.add_(3.0)  # z ~ 0.95: alpha z ~ 4.7
    mgru_euler = GatedNODECell(n, N, f_widths=[], gated=True, f_output="tanh", integrator="euler")
    mgru_euler.load_state_dict(mgru.state_dict())
    he, hx = h.clone(), h.clone()
    bound = max(1.0, float(h.abs().max()))
    with torch.no_grad():
        for _ in range(100):
            he, hx = mgru(x, he, dt), mgru_euler(x, hx, dt)
            assert torch.isfinite(he).all() and he.abs().max() <= bound + 1e-6
    assert not torch.isfinite(hx).all() or hx.abs().max() > 1e3


def test_not_gated_exact_step_uses_z_one() -> None:
    torch.manual_seed(8)
    cell = randomized(GatedNODECell(n, N, f_widths=[], gated=False, f_output="tanh", integrator="exact"))
    x, h = data(9)
    dt = torch.tensor([0.5, 1.0, 2.0, 5.0])
    with torch.no_grad():
        f = F_direct(cell, h, x)
        torch.testing.assert_close(cell(x, h, dt), f + (h - f) * torch.exp(-dt.unsqueeze(-1)))


# -- odeint -----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["dopri5", "rk4_classic"])
def test_odeint_matches_a_fine_euler_solve(method: str) -> None:
    torch.manual_seed(10)
    kw = dict(f_widths=[8, 8], gated=True, tau=0.7, integrator="odeint", method=method, step_size=0.02, rtol=1e-7, atol=1e-8)
    cell = randomized(GatedNODECell(n, N, **kw))
    fine = GatedNODECell(n, N, **{**kw, "integrator": "euler"})
    fine.load_state_dict(cell.state_dict())
    x, h = data(11)
    dt = torch.tensor([0.3, 1.0, 2.0, 0.05])
    with torch.no_grad():
        out = cell(x, h, dt)
        u = fine.project_inputs(x)
        hf, k = h.clone(), 4000
        for _ in range(k):
            hf = fine.step(u, hf, dt / k)
    torch.testing.assert_close(out, hf, rtol=2e-3, atol=2e-3)
    assert (out - fine(x, h, dt)).abs().max() > 1e-3  # one big Euler step is not the solve
    cell(x, h, dt).sum().backward()  # gradients flow through the solver to F and G
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in cell.core_parameters())


# -- initialisation -------------------------------------------------------------------------
def test_default_init_glorot_weights_and_small_biases() -> None:
    torch.manual_seed(12)
    cell = GatedNODECell(n, 20, f_widths=[100, 100], gated=True)
    bound0 = (6.0 / (20 + n + 100)) ** 0.5  # [W_0 U] as one matrix: fan_in N + n
    assert cell.f_net.first.weight.abs().max() <= bound0 and cell.f_input.weight.abs().max() <= bound0
    assert cell.f_net.first.weight.abs().max() > 0.9 * bound0
    bound1 = (6.0 / 200) ** 0.5
    assert cell.f_net.rest[0].weight.abs().max() <= bound1
    biases = torch.cat([l.bias for l in (*cell.f_net.rest, cell.f_net.first, cell.g_net.first)])
    assert 0.5e-3 < biases.std() < 1.5e-3
    assert cell.f_input.bias is None and cell.g_input.bias is None  # inputs enter bias-free


def test_critical_init_moves_the_leading_eigenvalue_to_zero() -> None:
    # single layer: dF/dh = diag(tanh') W scales exactly with sigma (tanh' ~ 1 at tiny biases)
    for seed in range(3):
        torch.manual_seed(seed)
        cell = GatedNODECell(n, N, f_widths=[], gated=False, f_output="tanh", init="critical")
        assert abs(cell.leading_eigenvalue()) < 1e-3
    # MLP: with zero biases and a non-zero h0 the ReLU network is positively homogeneous, so the
    # rescale by (1/(eta+1))^(1/L) puts the eigenvalue at 0 exactly
    torch.manual_seed(0)
    cell = GatedNODECell(n, 12, f_widths=[50, 50, 50], h0="fixed_random")
    with torch.no_grad():
        for layer in (cell.f_net.first, *cell.f_net.rest):
            layer.bias.zero_()
    before = cell.leading_eigenvalue()
    sigma = cell.critical_rescale()
    assert abs(before) > 0.05 and sigma == pytest.approx((1 / (before + 1)) ** (1 / 4))
    assert abs(cell.leading_eigenvalue()) < 1e-4
    # the full option from the constructor: our_normal draws, then the rescale (F and G)
    torch.manual_seed(1)
    crit = GatedNODECell(n, 12, f_widths=[50, 50, 50], h0="fixed_random", init="critical")
    assert abs(crit.leading_eigenvalue()) < 0.1
    raw = GatedNODECell(n, 12, f_widths=[50, 50, 50], h0="fixed_random")
    raw.load_state_dict(crit.state_dict())
    with torch.no_grad():  # undo the rescale: sigma must be the formula on the unscaled draws
        for p in raw.core_parameters():
            p.div_(crit.critical_scale)
    assert crit.critical_scale == pytest.approx((1 / (raw.leading_eigenvalue() + 1)) ** (1 / 4), rel=1e-5)
    # the draws were our_normal, N(0, 1/fan_in): hidden layers 50 -> 50
    assert float(raw.f_net.rest[0].weight.detach().std()) == pytest.approx(50 ** -0.5, rel=0.1)


def test_critical_init_undefined_case_raises() -> None:
    torch.manual_seed(0)
    cell = GatedNODECell(n, N, f_widths=[16, 16])
    with torch.no_grad():  # zero biases at h0 = 0, x = 0: every ReLU is off, J = -I, eta_max = -1
        for layer in (cell.f_net.first, *cell.f_net.rest):
            layer.bias.zero_()
    with pytest.raises(ValueError, match="critical init is undefined"):
        cell.critical_rescale()


def test_h0_modes() -> None:
    torch.manual_seed(0)
    learned = GatedNODECell(n, N, f_widths=[], h0="learned")
    assert learned.h0.requires_grad and "h0" in dict(learned.named_parameters())
    fixed = GatedNODECell(n, 200, f_widths=[], h0="fixed_random")
    assert "h0" not in dict(fixed.named_parameters())
    assert fixed.h0.std() == pytest.approx((2 / 201) ** 0.5, rel=0.2)
    s = fixed.initial_state(3, torch.device("cpu"), torch.float32)
    assert s.shape == (3, 200) and torch.equal(s[0], s[2])
    assert GatedNODECell(n, N, f_widths=[]).initial_state(2, torch.device("cpu"), torch.float32).abs().sum() == 0
    with pytest.raises(ValueError, match="h0"):
        GatedNODECell(n, N, h0="from_data")


@pytest.mark.parametrize("make", [
    lambda: GatedNODECell(n, N, f_widths=[7, 5], h0="encoder"),
    lambda: GNODEGRUCell(n, N, h0="encoder"),
])
def test_encoder_h0_is_affine_in_the_first_input(make) -> None:
    """h0 = A x_1 + c (G2.3), then the first step consumes x_1 again; later inputs never reach h0."""
    torch.manual_seed(4)
    cell = randomized(make())
    A, c = cell.h0_encoder.weight, cell.h0
    assert cell.h0_encoder.bias is None and A.shape == (N, n) and c.requires_grad
    model = SequenceModel(cell, n_outputs=n, readout="sequence")
    x, T = torch.randn(B, 5, n), 5
    dt = torch.ones(B, T)
    from ctbench.data.batch import Batch

    with torch.no_grad():
        out = model(Batch(x=x, dt=dt, y=torch.zeros(B, T, n)))
        h = x[:, 0] @ A.T + c  # the encoder's h0
        manual = []
        for t in range(T):
            h = cell._step(cell.input_drive(x[:, t]), h, dt[:, t])
            manual.append(model.head(h))
        torch.testing.assert_close(out, torch.stack(manual, 1))
        x2 = x.clone()
        x2[:, 1:] += 1.0  # only x_1 enters h0: changing later inputs leaves the first output alone
        out2 = model(Batch(x=x2, dt=dt, y=torch.zeros(B, T, n)))
        torch.testing.assert_close(out2[:, 0], out[:, 0])
    # trainable extras beyond the core: A (n N) and c (N), the "h0 encoder" column of G4.2
    assert sum(p.numel() for p in cell.parameters()) == core(cell) + n * N + N


# -- parameter counts (G4.2) -----------------------------------------------------------------
def core(cell) -> int:
    return sum(p.numel() for p in cell.core_parameters())


@pytest.mark.parametrize(
    "n_in, N_, widths, expected",
    [
        (3, 6, [100, 100, 100], {"rnn": 60, "mgru": 120, "gru": 180, "node": 21806, "gnode": 21866}),
        (3, 12, [100, 100, 100], {"rnn": 192, "mgru": 384, "gru": 576, "node": 23012, "gnode": 23204}),
        (3, 100, [100, 100, 100], {"rnn": 10400, "mgru": 20800, "gru": 31200, "node": 40700, "gnode": 51100}),
        (2, 2, [316, 316], {"rnn": 10, "mgru": 20, "gru": 30, "node": 102386, "gnode": 102396}),
    ],
)
def test_core_parameter_counts_equal_g4_2(n_in, N_, widths, expected) -> None:
    cells = {
        "rnn": GatedNODECell(n_in, N_, f_widths=[], gated=False, f_output="tanh", h0="learned"),
        "mgru": GatedNODECell(n_in, N_, f_widths=[], gated=True, f_output="tanh", h0="learned"),
        "gru": GNODEGRUCell(n_in, N_, h0="learned"),
        "node": GatedNODECell(n_in, N_, f_widths=widths, gated=False, h0="learned"),
        "gnode": GatedNODECell(n_in, N_, f_widths=widths, gated=True, h0="learned"),
    }
    assert {k: core(c) for k, c in cells.items()} == expected
    for c in cells.values():  # all trainable = core + learned h0 (N); readout n N + n
        assert sum(p.numel() for p in c.parameters()) == core(c) + N_
        model = SequenceModel(c, n_outputs=n_in, readout="sequence")
        assert sum(p.numel() for p in model.head.parameters()) == n_in * N_ + n_in


# -- configs ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, cls, switches",
    [
        ("gnode", GatedNODECell, dict(gated=True, f_widths=[100, 100, 100], f_output="identity")),
        ("node", GatedNODECell, dict(gated=False, f_widths=[100, 100, 100], f_output="identity")),
        ("mgru", GatedNODECell, dict(gated=True, f_widths=[], f_output="tanh")),
        ("rnn_gnode", GatedNODECell, dict(gated=False, f_widths=[], f_output="tanh")),
        ("gru_gnode", GNODEGRUCell, dict()),
    ],
)
def test_model_configs_select_the_switchboard(name, cls, switches) -> None:
    from hydra.utils import instantiate

    path = CONF / "model" / f"{name}.yaml"
    assert path.read_text().startswith("# ")  # the one-line equation comment
    cfg = OmegaConf.load(path)
    assert cfg.name == name
    cell = instantiate(cfg.cell, input_size=3)
    assert isinstance(cell, cls) and cell.hidden_size == 6
    for key, value in switches.items():
        assert getattr(cell, key) == value, key
