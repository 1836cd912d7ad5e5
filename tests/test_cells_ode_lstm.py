"""ODE-RNN / CT-RNN against explicit Runge-Kutta steps, and the (Augmented) LSTM against its equations."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ctbench.cells.lstm import LSTMCell
from ctbench.cells.ode_rnn import ODERNNCell

F, H = 3, 4


def randomized(cell: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return cell


def field(cell: ODERNNCell, x: Tensor, h: Tensor) -> Tensor:
    """dh/dt = s * tanh(W_in x + b + W_rec h) - leak * h, on the cell's own parameters."""
    pre = x @ cell.input_map.weight.T + cell.input_map.bias + h @ cell.dynamics.recurrent.weight.T
    return cell.dynamics.scale * torch.tanh(pre) - cell.leak * h


def rk4_38(cell: ODERNNCell, x: Tensor, h: Tensor, dt: Tensor, n: int) -> Tensor:
    """n explicit steps of Kutta's 3/8-rule RK4 (torchdiffeq's "rk4") over each sample's dt."""
    step = (dt / n).unsqueeze(-1)
    for _ in range(n):
        k1 = field(cell, x, h)
        k2 = field(cell, x, h + step * k1 / 3)
        k3 = field(cell, x, h + step * (k2 - k1 / 3))
        k4 = field(cell, x, h + step * (k1 - k2 + k3))
        h = h + step * (k1 + 3 * (k2 + k3) + k4) / 8
    return h


def rk4_classic(cell: ODERNNCell, x: Tensor, h: Tensor, dt: Tensor, n: int) -> Tensor:
    """The classic RK4 of ode-lstms' node_cell.py."""
    step = (dt / n).unsqueeze(-1)
    for _ in range(n):
        k1 = field(cell, x, h)
        k2 = field(cell, x, h + 0.5 * step * k1)
        k3 = field(cell, x, h + 0.5 * step * k2)
        k4 = field(cell, x, h + step * k3)
        h = h + step * (k1 + 2 * k2 + 2 * k3 + k4) / 6
    return h


@pytest.mark.parametrize("leak", [0.0, 1.0])
@pytest.mark.parametrize("batch", [1, 3, H])
def test_default_step_is_three_classic_rk4_steps(leak: float, batch: int) -> None:
    torch.manual_seed(0)
    cell = randomized(ODERNNCell(F, H, leak=leak))
    assert cell.method == "rk4_classic" and cell.n_unfolds == 3
    x, h = torch.randn(batch, F), torch.randn(batch, H)
    dt = torch.linspace(0.0, 2.0, batch)
    with torch.no_grad():
        torch.testing.assert_close(cell(x, h, dt), rk4_classic(cell, x, h, dt, 3), rtol=1e-5, atol=1e-5)


def test_torchdiffeq_rk4_is_the_three_eighths_rule() -> None:
    torch.manual_seed(1)
    cell = randomized(ODERNNCell(F, H, method="rk4"))
    x, h, dt = torch.randn(3, F), torch.randn(3, H), torch.tensor([0.3, 1.0, 2.0])
    with torch.no_grad():
        got = cell(x, h, dt)
        torch.testing.assert_close(got, rk4_38(cell, x, h, dt, 3), rtol=1e-5, atol=1e-5)
        assert (got - rk4_classic(cell, x, h, dt, 3)).abs().max() > 1e-6  # a different tableau


def test_euler_step_size_sets_the_unfolds() -> None:
    torch.manual_seed(1)
    cell = randomized(ODERNNCell(F, H, method="euler", step_size=0.25))
    assert cell.n_unfolds == 4
    x, h, dt = torch.randn(2, F), torch.randn(2, H), torch.tensor([0.5, 1.5])
    want = h
    for _ in range(4):
        want = want + (dt / 4).unsqueeze(-1) * field(cell, x, want)
    with torch.no_grad():
        torch.testing.assert_close(cell(x, h, dt), want, rtol=1e-5, atol=1e-5)
    assert ODERNNCell(F, H, step_size=0.3).n_unfolds == 4  # ceil(1/0.3) equal steps


def test_dopri5_agrees_with_a_fine_fixed_step_solution() -> None:
    torch.manual_seed(2)
    cell = randomized(ODERNNCell(F, H, method="dopri5", rtol=1e-7, atol=1e-8))
    x, h, dt = torch.randn(3, F), torch.randn(3, H), torch.tensor([0.1, 1.0, 4.0])
    with torch.no_grad():
        torch.testing.assert_close(cell(x, h, dt), rk4_classic(cell, x, h, dt, 200), rtol=1e-5, atol=1e-5)


def test_zero_dt_keeps_the_state() -> None:
    cell = randomized(ODERNNCell(F, H))
    h = torch.randn(2, H)
    with torch.no_grad():
        torch.testing.assert_close(cell(torch.randn(2, F), h, torch.zeros(2)), h)


def test_nfe_counts_and_resets() -> None:
    cell = ODERNNCell(F, H)  # rk4, 3 steps: 4 evaluations each
    x, h = torch.randn(2, F), torch.randn(2, H)
    cell(x, h, torch.ones(2))
    assert cell.nfe == 12
    cell(x, h, torch.ones(2))
    assert cell.nfe == 24
    cell.reset_nfe()
    assert cell.nfe == 0
    adaptive = ODERNNCell(F, H, method="dopri5")
    adaptive(x, h, torch.full((2,), 5.0))
    assert adaptive.nfe >= 6


def test_gru_jump_after_the_ode() -> None:
    torch.manual_seed(3)
    cell = randomized(ODERNNCell(F, H, jump="gru"))
    gru = torch.nn.GRUCell(F, H)
    with torch.no_grad():
        gru.weight_ih.copy_(cell.gru_in.weight)
        gru.bias_ih.copy_(cell.gru_in.bias)
        gru.weight_hh.copy_(cell.gru_rec.weight)
        gru.bias_hh.copy_(cell.gru_rec.bias)
        x, h, dt = torch.randn(3, F), torch.randn(3, H), torch.tensor([0.2, 0.9, 1.7])
        want = gru(x, rk4_classic(cell, x, h, dt, 3))
        torch.testing.assert_close(cell(x, h, dt), want, rtol=1e-5, atol=1e-5)


def test_adjoint_gradients_match_backprop() -> None:
    torch.manual_seed(4)
    direct = randomized(ODERNNCell(F, H, method="dopri5", rtol=1e-7, atol=1e-8))
    adjoint = ODERNNCell(F, H, method="dopri5", rtol=1e-7, atol=1e-8, adjoint=True)
    adjoint.load_state_dict(direct.state_dict())
    x, h, dt = torch.randn(3, F), torch.randn(3, H), torch.tensor([0.3, 1.0, 2.0])
    grads = []
    for cell in (direct, adjoint):
        cell.zero_grad()
        cell(x, h, dt).pow(2).sum().backward()
        grads.append({n: p.grad.clone() for n, p in cell.named_parameters()})
    for name, g in grads[0].items():
        assert grads[1][name].abs().sum() > 0, name  # the input map is reached through the adjoint
        torch.testing.assert_close(grads[1][name], g, rtol=1e-3, atol=1e-4)


# --------------------------------------------------------------------------- LSTM
@pytest.mark.parametrize("time_input", [True, False])
def test_lstm_step_matches_hand_computation_and_torch(time_input: bool) -> None:
    torch.manual_seed(5)
    cell = randomized(LSTMCell(F, H, time_input=time_input, forget_bias=1.0))
    x, h, c = torch.randn(3, F), torch.randn(3, H), torch.randn(3, H)
    dt = torch.tensor([0.1, 1.0, 2.5])
    xin = torch.cat([x, dt.unsqueeze(-1)], -1) if time_input else x
    w_x = torch.cat([cell.input_kernel.weight, cell.time_kernel.unsqueeze(-1)], 1) if time_input else cell.input_kernel.weight
    z = xin @ w_x.T + cell.input_kernel.bias + h @ cell.recurrent_kernel.weight.T
    i, f, g, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
    c_want = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(g)
    h_want = torch.sigmoid(o) * torch.tanh(c_want)
    with torch.no_grad():
        got_h, got_c = cell(x, (h, c), dt)
        torch.testing.assert_close(got_h, h_want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got_c, c_want, rtol=1e-5, atol=1e-5)
        # torch.nn.LSTMCell (gate order i, f, g, o) with the forget bias folded into its bias
        ref = torch.nn.LSTMCell(xin.shape[-1], H)
        ref.weight_ih.copy_(w_x)
        ref.weight_hh.copy_(cell.recurrent_kernel.weight)
        ref.bias_ih.copy_(cell.input_kernel.bias + torch.cat([torch.zeros(H), torch.ones(H), torch.zeros(2 * H)]))
        ref.bias_hh.zero_()
        ref_h, ref_c = ref(xin, (h, c))
        torch.testing.assert_close(got_h, ref_h, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got_c, ref_c, rtol=1e-5, atol=1e-5)
    assert cell.output((got_h, got_c)) is got_h


def test_lstm_init_and_parameter_count() -> None:
    torch.manual_seed(6)
    aug = LSTMCell(10, 16, time_input=True)
    assert torch.count_nonzero(aug.input_kernel.bias) == 0
    w = aug.recurrent_kernel.weight  # (4H, H): orthonormal columns, as Keras' orthogonal (H, 4H)
    torch.testing.assert_close(w.T @ w, torch.eye(16), rtol=1e-5, atol=1e-5)
    bound = (6.0 / (11 + 64)) ** 0.5  # Glorot over the whole [x, dt] kernel
    assert aug.input_kernel.weight.abs().max() <= bound and aug.time_kernel.abs().max() <= bound
    n = sum(p.numel() for p in aug.parameters())
    assert n == sum(p.numel() for p in torch.nn.LSTMCell(11, 16).parameters()) - 4 * 16  # one bias vector
    assert sum(p.numel() for p in LSTMCell(10, 16, time_input=False).parameters()) == n - 4 * 16


def test_lstm_forget_bias_is_used() -> None:
    torch.manual_seed(7)
    a = LSTMCell(F, H, forget_bias=1.0)
    b = LSTMCell(F, H, forget_bias=3.0)
    b.load_state_dict(a.state_dict())
    x, state, dt = torch.randn(2, F), (torch.randn(2, H), torch.randn(2, H)), torch.ones(2)
    assert (a(x, state, dt)[1] - b(x, state, dt)[1]).abs().max() > 1e-3
