"""The ODE-LSTM-lineage baselines (models.md §8.1) against direct computations of their equations.

Each reference below is written with plain torch ops on the cell's own parameters, in the fused
form of ode-lstms' node_cell.py (one kernel on a concatenation such as [x, h]), so a wrong split
of a kernel, a swapped gate or a dt broadcast along the wrong axis shows up. Batches use a
different dt per sample. The generic contract (shapes, per-sample dt, gradients, ...) runs on
these cells' model configs in tests/test_cells.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import Tensor

from ctbench.cells.bidirect import BidirectRNNCell
from ctbench.cells.ct_gru import CTGRUCell
from ctbench.cells.ct_lstm import CTLSTMCell
from ctbench.cells.gru_d import GRUDCell
from ctbench.cells.gru_ode import GRUODECell
from ctbench.cells.ode_lstm import ODELSTMCell
from ctbench.cells.ode_rnn import ODERNNCell
from ctbench.cells.phased_lstm import PhasedLSTMCell
from ctbench.cells.rnn_decay import RNNDecayCell

ROOT = Path(__file__).resolve().parents[1]
F, H = 3, 4
B = 5
DT = torch.tensor([0.0, 0.3, 1.0, 1.7, 4.0])
TOL = dict(rtol=1e-5, atol=1e-5)


def randomized(cell: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random parameters, so that zero biases and unit scales cannot hide a wrong wiring."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return cell


def sig(z: Tensor) -> Tensor:
    return torch.sigmoid(z)


def dense(inputs: list, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Keras Dense on the concatenation of ``inputs`` (torch weight layout: (out, in))."""
    z = torch.cat(inputs, dim=-1) @ weight.T
    return z if bias is None else z + bias


def euler_ctrnn(v: Tensor, h: Tensor, dt: Tensor, w_rec: Tensor, scale: Tensor, tau: float, n: int) -> Tensor:
    """ode-lstms CTRNNCell.euler, n unfolds of dt/n: dh/dt = s * tanh(v + W_rec h) - tau * h."""
    for _ in range(n):
        h = h + (dt / n).unsqueeze(-1) * (scale * torch.tanh(v + h @ w_rec.T) - tau * h)
    return h


def inputs(seed: int = 1):
    torch.manual_seed(seed)
    return torch.randn(B, F), torch.randn(B, H), torch.randn(B, H), torch.randn(B, H)


# --------------------------------------------------------------------------- CT-RNN (a config)
def test_ct_rnn_config_is_the_ode_rnn_cell_with_unit_leak_and_three_classic_rk4_steps() -> None:
    from hydra.utils import instantiate

    cfg = OmegaConf.load(ROOT / "conf" / "model" / "ct_rnn.yaml")
    assert cfg.name == "ct_rnn" and cfg.display_name == "CT-RNN"
    cell = randomized(instantiate(cfg.cell, input_size=F, hidden_size=H))
    assert isinstance(cell, ODERNNCell) and cell.leak == 1.0 and cell.jump == "none"
    assert cell.method == "rk4_classic" and cell.n_unfolds == 3
    x, h, _, _ = inputs()
    v = x @ cell.input_map.weight.T + cell.input_map.bias
    w, s = cell.dynamics.recurrent.weight, cell.dynamics.scale

    def f(y: Tensor) -> Tensor:
        return s * torch.tanh(v + y @ w.T) - 1.0 * y

    want, step = h, (DT / 3).unsqueeze(-1)
    for _ in range(3):  # ode-lstms CTRNNCell.rk4
        k1 = f(want)
        k2 = f(want + k1 * step * 0.5)
        k3 = f(want + k2 * step * 0.5)
        k4 = f(want + k3 * step)
        want = want + step * (k1 + 2 * k2 + 2 * k3 + k4) / 6.0
    with torch.no_grad():
        torch.testing.assert_close(cell(x, h, DT), want, **TOL)


# --------------------------------------------------------------------------- ODE-LSTM
def odelstm_reference(cell: ODELSTMCell, x: Tensor, c: Tensor, h_ode: Tensor, dt: Tensor, forget_bias: float, n: int):
    z = dense([x, h_ode], torch.cat([cell.input_kernel.weight, cell.recurrent_kernel.weight], 1), cell.input_kernel.bias)
    g, i, f, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
    c_new = sig(f + forget_bias) * c + sig(i) * torch.tanh(g)
    y = sig(o) * torch.tanh(c_new)
    v = dense([y], cell.ode_input.weight, cell.ode_input.bias)
    return c_new, euler_ctrnn(v, h_ode, dt, cell.ctrnn.recurrent.weight, cell.ctrnn.scale, 1.0, n)


@pytest.mark.parametrize("forget_bias, n", [(3.0, 4), (1.0, 2)])
def test_ode_lstm_step(forget_bias: float, n: int) -> None:
    cell = randomized(ODELSTMCell(F, H, forget_bias=forget_bias, num_unfolds=n))
    x, c, h, _ = inputs()
    with torch.no_grad():
        got = cell(x, (c, h), DT)
        want = odelstm_reference(cell, x, c, h, DT, forget_bias, n)
        torch.testing.assert_close(got[0], want[0], **TOL)
        torch.testing.assert_close(got[1], want[1], **TOL)
        assert cell.output(got) is got[1]
        # dt = 0 keeps h_ode (the LSTM part still updates c)
        torch.testing.assert_close(got[1][0], h[0])


def test_ode_lstm_defaults_are_the_ode_lstms_ones() -> None:
    cell = ODELSTMCell(F, H)
    assert cell.forget_bias == 3.0 and cell.ctrnn.num_unfolds == 4 and cell.ctrnn.tau == 1.0
    assert torch.count_nonzero(cell.input_kernel.bias) == 0 and bool((cell.ctrnn.scale == 1).all())


# --------------------------------------------------------------------------- CT-GRU
def test_ct_gru_time_scales() -> None:
    cell = CTGRUCell(F, H)
    torch.testing.assert_close(cell.tau, torch.tensor([10 ** (k / 2) for k in range(8)]))
    torch.testing.assert_close(cell.ln_tau, torch.tensor([math.log(10 ** (k / 2)) for k in range(8)]))


@pytest.mark.parametrize("m", [8, 3])
@torch.no_grad()
def test_ct_gru_step(m: int) -> None:
    cell = randomized(CTGRUCell(F, H, num_traces=m))
    torch.manual_seed(2)
    x, h_hat = torch.randn(B, F), torch.randn(B, H, m)
    hm = H * m
    w_x, b = cell.input_kernel.weight, cell.input_kernel.bias
    w_ret = torch.cat([w_x[:hm], cell.recurrent_kernel.weight[:hm]], 1)
    w_sto = torch.cat([w_x[hm : 2 * hm], cell.recurrent_kernel.weight[hm:]], 1)
    w_det = torch.cat([w_x[2 * hm :], cell.detect_kernel.weight], 1)
    want = torch.empty(B, H, m)
    for n in range(B):  # one sample, one unit, one trace at a time
        h = h_hat[n].sum(-1)
        ln_r = dense([x[n], h], w_ret, b[:hm]).view(H, m)
        ln_s = dense([x[n], h], w_sto, b[hm : 2 * hm]).view(H, m)
        q_in = torch.zeros(H)
        r = torch.zeros(H, m)
        s = torch.zeros(H, m)
        for j in range(H):
            lr = torch.tensor([-((ln_r[j, k] - math.log(10 ** (k / 2))) ** 2) for k in range(m)])
            ls = torch.tensor([-((ln_s[j, k] - math.log(10 ** (k / 2))) ** 2) for k in range(m)])
            r[j], s[j] = lr.exp() / lr.exp().sum(), ls.exp() / ls.exp().sum()
            q_in[j] = (r[j] * h_hat[n, j]).sum()
        q = torch.tanh(dense([x[n], q_in], w_det, b[2 * hm :]))
        for j in range(H):
            for k in range(m):
                stored = (1 - s[j, k]) * h_hat[n, j, k] + s[j, k] * q[j]
                want[n, j, k] = stored * math.exp(-DT[n].item() / 10 ** (k / 2))
    with torch.no_grad():
        (got,) = cell(x, (h_hat.reshape(B, hm),), DT)
        torch.testing.assert_close(got, want.reshape(B, hm), **TOL)
        torch.testing.assert_close(cell.output((got,)), want.sum(-1), **TOL)


# --------------------------------------------------------------------------- CT-LSTM
def test_ct_lstm_step() -> None:
    cell = randomized(CTLSTMCell(F, H))
    x, c, c_bar, h = inputs()
    z = dense([x, h], torch.cat([cell.input_kernel.weight, cell.recurrent_kernel.weight], 1), cell.input_kernel.bias)
    g, i, f, o, i_bar, f_bar, d = (z[:, k * H : (k + 1) * H] for k in range(7))
    c_new = sig(f) * c + sig(i) * torch.tanh(g)
    c_bar_new = sig(f_bar) * c_bar + sig(i_bar) * torch.tanh(g)
    delta = torch.log1p(torch.exp(d))
    c_t = c_bar_new + (c_new - c_bar_new) * torch.exp(-delta * DT.unsqueeze(-1))
    h_new = sig(o) * torch.tanh(c_t)
    with torch.no_grad():
        got = cell(x, (c, c_bar, h), DT)
        for g_, w_ in zip(got, (c_new, c_bar_new, h_new)):
            torch.testing.assert_close(g_, w_, **TOL)
        assert cell.output(got) is got[2]
        # dt = 0: the output reads the undecayed c'; a long dt: it tends to c_bar'
        torch.testing.assert_close(got[2][0], (sig(o) * torch.tanh(c_new))[0], **TOL)


# --------------------------------------------------------------------------- GRU-ODE
@pytest.mark.parametrize("n", [4, 1])
def test_gru_ode_step(n: int) -> None:
    cell = randomized(GRUODECell(F, H, num_unfolds=n))
    x, h, _, _ = inputs()
    w_x, b = cell.input_kernel.weight, cell.input_kernel.bias
    w_r = torch.cat([w_x[:H], cell.recurrent_kernel.weight[:H]], 1)
    w_z = torch.cat([w_x[H : 2 * H], cell.recurrent_kernel.weight[H:]], 1)
    w_g = torch.cat([w_x[2 * H :], cell.candidate_kernel.weight], 1)
    want = h
    for _ in range(n):
        r = sig(dense([x, want], w_r, b[:H]))
        z = sig(dense([x, want], w_z, b[H : 2 * H]))
        g = torch.tanh(dense([x, r * want], w_g, b[2 * H :]))
        want = want + (DT / n).unsqueeze(-1) * (1 - z) * (g - want)
    with torch.no_grad():
        torch.testing.assert_close(cell(x, h, DT), want, **TOL)


def test_gru_ode_reset_bias_starts_at_one() -> None:
    cell = GRUODECell(F, H)
    torch.testing.assert_close(cell.input_kernel.bias, torch.cat([torch.ones(H), torch.zeros(2 * H)]))


# --------------------------------------------------------------------------- GRU-D
def test_gru_d_step() -> None:
    cell = randomized(GRUDCell(F, H))
    x, h, _, _ = inputs()
    gamma = torch.exp(-torch.clamp(DT.unsqueeze(-1) @ cell.decay.weight.T + cell.decay.bias, min=0))
    h_hat = gamma * h
    w_x, b = cell.input_kernel.weight, cell.input_kernel.bias
    r = sig(dense([x, h_hat], torch.cat([w_x[:H], cell.recurrent_kernel.weight[:H]], 1), b[:H]))
    z = sig(dense([x, h_hat], torch.cat([w_x[H : 2 * H], cell.recurrent_kernel.weight[H:]], 1), b[H : 2 * H]))
    g = torch.tanh(dense([x, r * h_hat], torch.cat([w_x[2 * H :], cell.candidate_kernel.weight], 1), b[2 * H :]))
    want = z * h_hat + (1 - z) * g
    with torch.no_grad():
        torch.testing.assert_close(cell(x, h, DT), want, **TOL)
    assert bool((gamma <= 1).all()) and bool((gamma < 1).any()) and bool((gamma == 1).any())  # relu clips


# --------------------------------------------------------------------------- PhasedLSTM
def inv_softplus(v: float) -> float:
    return math.log(math.expm1(v))


@pytest.mark.parametrize("rise", ["ode_lstms", "paper"])
def test_phased_lstm_step(rise: str) -> None:
    cell = randomized(PhasedLSTMCell(F, H, rise=rise))
    tau, shift, r_on, alpha = 2.0, 0.5, 0.6, 0.001
    with torch.no_grad():
        cell.tau_raw.fill_(inv_softplus(tau))
        cell.shift_raw.fill_(inv_softplus(shift))
        cell.r_on_raw.fill_(inv_softplus(r_on))
    # phases 0.1 (rising), 0.4 (falling), 0.75 and 0.85 (closed; 0.2 - 0.5 < 0 wraps), 0 (edge)
    dt = torch.tensor([0.7, 1.3, 2.0, 0.2, 0.5])
    x, h, c, _ = inputs()
    ks = []
    for d in dt.tolist():
        phi = ((d - shift) - tau * math.floor((d - shift) / tau)) / tau
        if phi < 0.5 * r_on:
            k = 2 * phi * r_on if rise == "ode_lstms" else 2 * phi / r_on
        elif phi < r_on:
            k = 2 - 2 * phi / r_on
        else:
            k = alpha * phi
        ks.append(k)
    k = torch.tensor(ks).unsqueeze(-1)
    z = dense([x, h], torch.cat([cell.input_kernel.weight, cell.recurrent_kernel.weight], 1), cell.input_kernel.bias)
    i, f, g, o = (z[:, j * H : (j + 1) * H] for j in range(4))
    c_tilde = sig(f + 1.0) * c + sig(i) * torch.tanh(g)
    h_tilde = sig(o) * torch.tanh(c_tilde)
    with torch.no_grad():
        torch.testing.assert_close(cell.time_gate(dt), k, **TOL)
        got_h, got_c = cell(x, (h, c), dt)
        torch.testing.assert_close(got_c, k * c_tilde + (1 - k) * c, **TOL)
        torch.testing.assert_close(got_h, k * h_tilde + (1 - k) * h, **TOL)


def test_phased_lstm_init_and_rise_choice() -> None:
    cell = PhasedLSTMCell(F, H)
    for p in (cell.tau_raw, cell.shift_raw, cell.r_on_raw):
        assert p.shape == (1,) and float(p.detach()) == 0.0  # softplus(0) = ln 2, as ode-lstms
    assert cell.leak == 0.001 and cell.forget_bias == 1.0 and cell.rise == "ode_lstms"
    with pytest.raises(ValueError, match="ode_lstms"):
        PhasedLSTMCell(F, H, rise="neil")


# --------------------------------------------------------------------------- RNN-Decay
def test_rnn_decay_step() -> None:
    cell = RNNDecayCell(F, H)
    torch.testing.assert_close(cell.tau.detach(), torch.full((H,), 0.1))
    randomized(cell)
    x, h, _, _ = inputs()
    hidden = torch.tanh(dense([x, h], torch.cat([cell.input_kernel.weight, cell.recurrent_kernel.weight], 1), cell.input_kernel.bias))
    want = dense([hidden], cell.out_layer.weight, cell.out_layer.bias) - DT.unsqueeze(-1) * cell.tau
    with torch.no_grad():
        torch.testing.assert_close(cell(x, h, DT), want, **TOL)


# --------------------------------------------------------------------------- Bi-directional RNN
@pytest.mark.parametrize("time_input", [True, False])
def test_bidirect_step(time_input: bool) -> None:
    cell = randomized(BidirectRNNCell(F, H, time_input=time_input))
    x, c, h_l, h_c = inputs()
    w_x, b = cell.input_kernel.weight, cell.input_kernel.bias
    lstm_in = [x, h_c] + ([DT.unsqueeze(-1)] if time_input else [])
    w_lstm = [w_x[: 4 * H], cell.lstm_from_ctrnn.weight] + ([cell.time_kernel.unsqueeze(-1)] if time_input else [])
    z = dense(lstm_in, torch.cat(w_lstm, 1), b[: 4 * H]) + h_l @ cell.lstm_recurrent.weight.T
    g, i, f, o = (z[:, j * H : (j + 1) * H] for j in range(4))
    c_new = sig(f + 1.0) * c + sig(i) * torch.tanh(g)
    h_l_new = sig(o) * torch.tanh(c_new)
    v = dense([x, h_l], torch.cat([w_x[4 * H :], cell.ctrnn_from_lstm.weight], 1), b[4 * H :])  # the old h_lstm
    h_c_new = euler_ctrnn(v, h_c, DT, cell.ctrnn.recurrent.weight, cell.ctrnn.scale, 1.0, 4)
    with torch.no_grad():
        got = cell(x, (c, h_l, h_c), DT)
        for g_, w_ in zip(got, (c_new, h_l_new, h_c_new)):
            torch.testing.assert_close(g_, w_, **TOL)
        torch.testing.assert_close(cell.output(got), h_l_new + h_c_new, **TOL)


# --------------------------------------------------------------------------- structure and configs
P, U = 10, 16  # a Keras model of ode-lstms with input width P and U units


@pytest.mark.parametrize(
    "build, keras_count",
    [
        # LSTM (P, 4U) + (U, 4U) + 4U, CTRNN kernel (U, U) + recurrent + bias + scale
        (lambda: ODELSTMCell(P, U), P * 4 * U + U * 4 * U + 4 * U + 2 * U * U + 2 * U),
        # retrieval and update Dense(U*M) on [x, h], detect Dense(U) on [x, q]
        (lambda: CTGRUCell(P, U), 2 * ((P + U) * U * 8 + U * 8) + (P + U) * U + U),
        (lambda: CTLSTMCell(P, U), P * 7 * U + U * 7 * U + 7 * U),
        (lambda: GRUODECell(P, U), 3 * ((P + U) * U + U)),
        # d_gate Dense(U) on dt, three Dense(U) on [x, h]
        (lambda: GRUDCell(P, U), U + U + 3 * ((P + U) * U + U)),
        (lambda: PhasedLSTMCell(P, U), P * 4 * U + U * 4 * U + 4 * U + 3),
        (lambda: RNNDecayCell(P, U), (P + U) * U + U + U * U + U + U),
        # LSTM on [x, h_ctrnn, dt], CTRNN on [x, h_lstm]
        (lambda: BidirectRNNCell(P, U), (P + U + 1) * 4 * U + U * 4 * U + 4 * U + (P + U) * U + U * U + 2 * U),
    ],
)
def test_parameter_counts_match_ode_lstms(build, keras_count: int) -> None:
    assert sum(p.numel() for p in build().parameters()) == keras_count


def test_glorot_bounds_use_the_fused_kernel_fans() -> None:
    torch.manual_seed(0)
    cell = GRUDCell(P, U)
    bound = math.sqrt(6.0 / (P + U + U))
    for w in (cell.input_kernel.weight, cell.recurrent_kernel.weight, cell.candidate_kernel.weight):
        assert w.abs().max() <= bound and w.abs().max() > 0.8 * bound
    bi = BidirectRNNCell(P, U)
    bound = math.sqrt(6.0 / (P + U + 1 + 4 * U))
    assert bi.time_kernel.abs().max() <= bound and bi.lstm_from_ctrnn.weight.abs().max() > 0.8 * bound
    w = bi.lstm_recurrent.weight
    torch.testing.assert_close(w.T @ w, torch.eye(U), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "stem, checks",
    [
        ("ode_lstm", {"forget_bias": 3.0, "num_unfolds": 4, "tau": 1.0}),
        ("ct_gru", {"num_traces": 8, "tau_min": 1.0}),
        ("gru_ode", {"num_unfolds": 4, "reset_bias": 1.0}),
        ("phased_lstm", {"leak": 0.001, "forget_bias": 1.0, "rise": "ode_lstms"}),
        ("rnn_decay", {"tau_init": 0.1}),
        ("bidirect", {"forget_bias": 1.0, "time_input": True, "num_unfolds": 4, "tau": 1.0}),
        ("ct_lstm", {}),
        ("gru_d", {}),
    ],
)
def test_model_configs_carry_the_ode_lstms_defaults(stem: str, checks: dict) -> None:
    cell_cfg = OmegaConf.load(ROOT / "conf" / "model" / f"{stem}.yaml").cell
    assert cell_cfg.hidden_size == 64
    for key, value in checks.items():
        assert cell_cfg[key] == value, key
    if stem == "ct_gru":
        assert abs(cell_cfg.tau_ratio - math.sqrt(10)) < 1e-12


def test_sequence_unroll_is_per_sample() -> None:
    """Unrolling a sequence with per-sample dt equals unrolling each sample alone (all cells)."""
    torch.manual_seed(5)
    x, dt = torch.randn(3, 4, F), torch.rand(3, 4) * 2
    for build in (ODELSTMCell, CTGRUCell, CTLSTMCell, GRUODECell, GRUDCell, PhasedLSTMCell, RNNDecayCell, BidirectRNNCell):
        cell = randomized(build(F, H))
        with torch.no_grad():
            u = cell.project_inputs(x)
            s = cell.initial_state(3, x.device, x.dtype)
            for t in range(4):
                s = cell.step(u[:, t], s, dt[:, t])
            for n in range(3):
                s1 = cell.initial_state(1, x.device, x.dtype)
                for t in range(4):
                    s1 = cell.step(u[n : n + 1, t], s1, dt[n : n + 1, t])
                torch.testing.assert_close(cell.output(s1), cell.output(s)[n : n + 1], **TOL)
