"""GRU, ReLU GRU, vanilla RNN, coRNN, Lipschitz RNN, RNN-Δt and RNN-Impute steps against their
equations written out on the cells' own parameters; the Transformer network's causality and readouts."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ctbench.cells.cornn import CoRNNCell
from ctbench.cells.gru import GRUCell
from ctbench.cells.lipschitz_rnn import LipschitzRNNCell
from ctbench.cells.relu_gru import ReLUGRUCell
from ctbench.cells.rnn_delta_t import RNNDeltaTCell
from ctbench.cells.rnn_impute import RNNImputeCell
from ctbench.cells.vanilla_rnn import VanillaRNNCell
from ctbench.data.batch import Batch
from ctbench.models.transformer import TransformerNetwork
from ctbench.sequence import SequenceModel

F, H, B = 3, 5, 4


def randomized(cell: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return cell


def gru_direct(x: Tensor, h: Tensor, w_ih: Tensor, b_ih: Tensor, w_hh: Tensor, b_hh: Tensor, act=torch.tanh) -> Tensor:
    r = torch.sigmoid(x @ w_ih[:H].T + b_ih[:H] + h @ w_hh[:H].T + b_hh[:H])
    z = torch.sigmoid(x @ w_ih[H:2 * H].T + b_ih[H:2 * H] + h @ w_hh[H:2 * H].T + b_hh[H:2 * H])
    n = act(x @ w_ih[2 * H:].T + b_ih[2 * H:] + r * (h @ w_hh[2 * H:].T + b_hh[2 * H:]))
    return (1 - z) * n + z * h


# -- GRU family ---------------------------------------------------------------------------
def test_gru_equals_torch_gru_cell_on_shared_weights() -> None:
    torch.manual_seed(0)
    cell = randomized(GRUCell(F, H))
    ref = torch.nn.GRUCell(F, H)
    with torch.no_grad():
        ref.weight_ih.copy_(cell.input_kernel.weight)
        ref.bias_ih.copy_(cell.input_kernel.bias)
        ref.weight_hh.copy_(cell.recurrent_kernel.weight)
        ref.bias_hh.copy_(cell.recurrent_kernel.bias)
    x, h, dt = torch.randn(B, F), torch.randn(B, H), torch.rand(B)
    with torch.no_grad():
        torch.testing.assert_close(cell(x, h, dt), ref(x, h))
        torch.testing.assert_close(cell(x, h, 5 * dt), ref(x, h))  # no time input: dt is ignored
    with pytest.raises(ValueError, match="candidate_activation"):
        GRUCell(F, H, candidate_activation="sigmoid")


def test_gru_time_input_is_one_more_input_column() -> None:
    torch.manual_seed(1)
    cell = randomized(GRUCell(F, H, time_input=True))
    x, h, dt = torch.randn(B, F), torch.randn(B, H), torch.rand(B) * 3
    w_ih = torch.cat([cell.input_kernel.weight, cell.time_kernel.unsqueeze(-1)], dim=1)
    expected = gru_direct(torch.cat([x, dt.unsqueeze(-1)], -1), h, w_ih, cell.input_kernel.bias,
                          cell.recurrent_kernel.weight, cell.recurrent_kernel.bias)
    with torch.no_grad():
        torch.testing.assert_close(cell(x, h, dt), expected)


def test_relu_gru_uses_relu_in_the_candidate_only() -> None:
    torch.manual_seed(2)
    cell = randomized(ReLUGRUCell(F, H))
    x, h, dt = 3 * torch.randn(B, F), torch.randn(B, H), torch.ones(B)
    args = (cell.input_kernel.weight, cell.input_kernel.bias, cell.recurrent_kernel.weight, cell.recurrent_kernel.bias)
    with torch.no_grad():
        out = cell(x, h, dt)
        torch.testing.assert_close(out, gru_direct(x, h, *args, act=torch.relu))
        assert not torch.allclose(out, gru_direct(x, h, *args))


def test_vanilla_rnn_equals_torch_rnn_cell() -> None:
    torch.manual_seed(3)
    cell = randomized(VanillaRNNCell(F, H))
    ref = torch.nn.RNNCell(F, H, nonlinearity="tanh")
    with torch.no_grad():
        ref.weight_ih.copy_(cell.input_kernel.weight)
        ref.bias_ih.copy_(cell.input_kernel.bias)
        ref.weight_hh.copy_(cell.recurrent_kernel.weight)
        ref.bias_hh.copy_(cell.recurrent_kernel.bias)
    x, h = torch.randn(B, F), torch.randn(B, H)
    with torch.no_grad():
        torch.testing.assert_close(cell(x, h, torch.rand(B)), ref(x, h))


# -- coRNN ----------------------------------------------------------------------------------
@pytest.mark.parametrize("implicit", [False, True])
def test_cornn_step_is_the_imex_scheme(implicit: bool) -> None:
    torch.manual_seed(4)
    cell = randomized(CoRNNCell(F, H, dt=0.3, gamma=1.5, epsilon=2.5, implicit_damping=implicit))
    x, y, z = torch.randn(B, F), torch.randn(B, H), torch.randn(B, H)
    elapsed = torch.tensor([0.5, 1.0, 2.0, 0.0])
    delta = (0.3 * elapsed).unsqueeze(-1)
    W, Wz = cell.h2h.weight[:, H:], cell.h2h.weight[:, :H]  # h2h acts on [z, y]
    s = torch.tanh(y @ W.T + z @ Wz.T + x @ cell.i2h.weight.T + cell.i2h.bias)
    if implicit:
        z_new = (z + delta * (s - 1.5 * y)) / (1 + delta * 2.5)
    else:
        z_new = z + delta * (s - 1.5 * y - 2.5 * z)
    y_new = y + delta * z_new
    with torch.no_grad():
        out = cell(x, (y, z), elapsed)
    torch.testing.assert_close(out[0], y_new)
    torch.testing.assert_close(out[1], z_new)
    torch.testing.assert_close(cell.output(out), y_new)
    torch.testing.assert_close(out[0][3], y[3])  # zero elapsed time: no motion


def test_cornn_without_elapsed_time_uses_the_fixed_step() -> None:
    torch.manual_seed(5)
    cell = randomized(CoRNNCell(F, H, dt=0.2, use_elapsed_time=False))
    ref = CoRNNCell(F, H, dt=0.2)
    ref.load_state_dict(cell.state_dict())
    x, state = torch.randn(B, F), (torch.randn(B, H), torch.randn(B, H))
    with torch.no_grad():
        a = cell(x, state, torch.rand(B) * 7)
        b = ref(x, state, torch.ones(B))
    torch.testing.assert_close(a, b)


# -- Lipschitz RNN --------------------------------------------------------------------------
def test_lipschitz_rnn_step_and_matrices() -> None:
    torch.manual_seed(6)
    cell = randomized(LipschitzRNNCell(F, H, beta=0.6, gamma_A=0.1, gamma_W=0.2, eps=0.05))
    A, W = cell.matrices()
    I = torch.eye(H)
    # symmetric part (1 - beta)(M + M^T) - gamma I, skew part beta (M - M^T)
    torch.testing.assert_close((A + A.T) / 2, 0.4 * (cell.B + cell.B.T) - 0.1 * I)
    torch.testing.assert_close((A - A.T) / 2, 0.6 * (cell.B - cell.B.T))
    torch.testing.assert_close((W + W.T) / 2, 0.4 * (cell.C + cell.C.T) - 0.2 * I)
    x, h = torch.randn(B, F), torch.randn(B, H)
    elapsed = torch.tensor([1.0, 0.5, 3.0, 0.0])
    step = (0.05 * elapsed).unsqueeze(-1)
    expected = h + step * (h @ A) + step * torch.tanh(h @ W + x @ cell.input_map.weight.T + cell.input_map.bias)
    with torch.no_grad():
        out = cell(x, h, elapsed)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(out[3], h[3])


def test_lipschitz_rnn_init_scale() -> None:
    torch.manual_seed(7)
    cell = LipschitzRNNCell(F, 64, init_std=6.0)
    assert abs(cell.B.std().item() - 6.0 / 64) < 0.01
    assert torch.all(cell.input_map.bias == 0)


# -- PhysioNet baselines ----------------------------------------------------------------------
def masked_input(values: Tensor, mask: Tensor) -> Tensor:
    return torch.cat([values, mask.to(values.dtype)], dim=-1)


@pytest.mark.parametrize("fill", ["zero", "forward"])
def test_rnn_delta_t_is_a_gru_on_values_mask_and_dt(fill: str) -> None:
    torch.manual_seed(8)
    cell = randomized(RNNDeltaTCell(2 * F, H, fill=fill))
    values, mask = torch.randn(B, F), torch.rand(B, F) > 0.5
    h, dt = torch.randn(B, H), torch.rand(B) * 2
    seen = values * mask if fill == "zero" else values
    gru_in = torch.cat([seen, mask.float(), dt.unsqueeze(-1)], dim=-1)
    w_ih = torch.cat([cell.input_kernel.weight, cell.time_kernel.unsqueeze(-1)], dim=1)
    expected = gru_direct(gru_in, h, w_ih, cell.input_kernel.bias, cell.recurrent_kernel.weight, cell.recurrent_kernel.bias)
    with torch.no_grad():
        torch.testing.assert_close(cell(masked_input(values, mask), h, dt), expected)
    with pytest.raises(ValueError, match="append_mask"):
        RNNDeltaTCell(2 * F + 1, H)


def test_rnn_impute_two_steps_against_the_input_decay() -> None:
    torch.manual_seed(9)
    cell = randomized(RNNImputeCell(2 * F, H))
    with torch.no_grad():
        cell.decay_weight.copy_(torch.tensor([0.5, 2.0, 1.0]))
        cell.decay_bias.copy_(torch.tensor([0.0, -0.5, 0.1]))
    v1, m1 = torch.randn(B, F), torch.rand(B, F) > 0.5
    v2, m2 = torch.randn(B, F), torch.rand(B, F) > 0.5
    dt1, dt2 = torch.rand(B), torch.rand(B) * 2
    h0 = torch.zeros(B, H)
    w_ih, b_ih, w_hh, b_hh = (cell.input_kernel.weight, cell.input_kernel.bias, cell.recurrent_kernel.weight, cell.recurrent_kernel.bias)

    def direct(v, m, delta, h):
        gamma = torch.exp(-torch.clamp(cell.decay_weight * delta + cell.decay_bias, 0, 1000))
        mf = m.float()
        x_hat = mf * v + (1 - mf) * (gamma * v + (1 - gamma) * cell.mean)
        return gru_direct(torch.cat([x_hat, mf], -1), h, w_ih, b_ih, w_hh, b_hh)

    delta1 = dt1.unsqueeze(-1).expand(B, F)
    h1 = direct(v1, m1, delta1, h0)
    delta2 = torch.where(m1, torch.zeros_like(delta1), delta1) + dt2.unsqueeze(-1)  # time since the last observation
    h2 = direct(v2, m2, delta2, h1)
    with torch.no_grad():
        state = cell.initial_state(B, torch.device("cpu"), torch.float32)
        state = cell(masked_input(v1, m1), state, dt1)
        torch.testing.assert_close(state[0], h1)
        state = cell(masked_input(v2, m2), state, dt2)
    torch.testing.assert_close(state[0], h2)
    torch.testing.assert_close(state[1], torch.where(m2, torch.zeros_like(delta2), delta2))
    # fully observed: the imputation is the identity and dt does not matter
    ones = torch.ones(B, F, dtype=torch.bool)
    with torch.no_grad():
        s = cell.initial_state(B, torch.device("cpu"), torch.float32)
        torch.testing.assert_close(cell(masked_input(v1, ones), s, dt1)[0], cell(masked_input(v1, ones), s, 9 * dt1)[0])


def test_rnn_impute_sees_the_mask_half_of_the_sequence_model_input() -> None:
    """SequenceModel with append_mask feeds [forward-filled x, mask]: the cell's mean shows at missing entries."""
    torch.manual_seed(10)
    T = 6
    cell = RNNImputeCell(2 * F, H, time_input=True)
    model = SequenceModel(cell, n_outputs=2, readout="last_observed", append_mask=True)
    x = torch.randn(B, T, F)
    obs = torch.rand(B, T, F) > 0.4
    batch = Batch(x=x, dt=torch.rand(B, T), y=torch.zeros(B, dtype=torch.long), obs_mask=obs)
    with torch.no_grad():
        out = model(batch)
        x_changed = torch.where(obs, x, x + 100.0)  # unobserved values are never seen
        torch.testing.assert_close(model(Batch(x=x_changed, dt=batch.dt, y=batch.y, obs_mask=obs)), out)
        cell.mean.add_(1.0)
        assert not torch.allclose(model(batch), out)


# -- Transformer -----------------------------------------------------------------------------
def walker_like_batch(T: int = 7, with_padding: bool = False) -> Batch:
    x = torch.randn(B, T, F)
    step_mask = None
    if with_padding:
        lengths = torch.tensor([T, 3, 5, 1])
        step_mask = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
    return Batch(x=x, dt=torch.rand(B, T) + 0.5, y=torch.zeros(B, T, 2), step_mask=step_mask)


def test_transformer_is_causal() -> None:
    torch.manual_seed(11)
    net = TransformerNetwork(F, 2, readout="sequence", d_model=8, n_layers=2, n_heads=4, dim_feedforward=16).eval()
    batch = walker_like_batch()
    t = 3
    later = Batch(x=batch.x.clone(), dt=batch.dt.clone(), y=batch.y)
    later.x[:, t + 1:] += torch.randn_like(later.x[:, t + 1:]) * 5
    later.dt[:, t + 1:] += 2.0
    with torch.no_grad():
        a, b = net(batch), net(later)
    assert a.shape == (B, 7, 2)
    torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1])
    assert not torch.allclose(a[:, t + 1:], b[:, t + 1:])
    earlier = Batch(x=batch.x.clone(), dt=batch.dt, y=batch.y)
    earlier.x[:, 0] += 1.0
    with torch.no_grad():
        assert not torch.allclose(net(earlier)[:, t], a[:, t])  # but it does see the past


def test_transformer_non_causal_sees_the_future() -> None:
    torch.manual_seed(12)
    net = TransformerNetwork(F, 2, d_model=8, n_heads=2, dim_feedforward=16, causal=False).eval()
    batch = walker_like_batch()
    later = Batch(x=batch.x.clone(), dt=batch.dt, y=batch.y)
    later.x[:, -1] += 5.0
    with torch.no_grad():
        assert not torch.allclose(net(batch)[:, 0], net(later)[:, 0])


def test_transformer_last_readout_ignores_padding() -> None:
    torch.manual_seed(13)
    kw = dict(d_model=8, n_heads=4, dim_feedforward=16)
    seq = TransformerNetwork(F, 1, readout="sequence", **kw).eval()
    last = TransformerNetwork(F, 1, readout="last", **kw).eval()
    last.load_state_dict(seq.state_dict())
    batch = walker_like_batch(with_padding=True)
    lengths = batch.step_mask.sum(1)
    with torch.no_grad():
        out_last = last(batch)
        out_seq = seq(batch)
        padded = Batch(x=batch.x.clone(), dt=batch.dt.clone(), y=batch.y, step_mask=batch.step_mask)
        padded.x[~batch.step_mask] = 50.0
        padded.dt[~batch.step_mask] = 9.0
        out_padded = last(padded)
    assert out_last.shape == (B, 1)
    torch.testing.assert_close(out_last, out_seq[torch.arange(B), lengths - 1])
    torch.testing.assert_close(out_padded, out_last)
    assert torch.isfinite(out_seq).all()


def test_transformer_runs_through_build_model(smoke_cfg) -> None:
    from ctbench.train import build_datamodule, build_model, load_model, run

    cfg = smoke_cfg("model=transformer", "model.network.d_model=8", "model.network.dim_feedforward=16", "seed=1")
    assert cfg.experiment.name == "walker2d_transformer"
    dm = build_datamodule(cfg)
    dm.setup()
    model = build_model(cfg, dm)
    assert isinstance(model, TransformerNetwork)
    record = run(cfg)
    assert record["model"] == "transformer" and record["test_metric"] > 0
    reloaded = load_model(f"{cfg.paths.runs_dir}/{record['run_id']}/model.pt").eval()
    batch = next(iter(dm.test_dataloader()))
    with torch.no_grad():
        assert reloaded(batch).shape == batch.y.shape
