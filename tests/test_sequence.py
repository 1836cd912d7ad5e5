"""Unrolling: forward fill, masks and readouts against direct loops."""

import pytest
import torch
from torch import nn

from ctbench.cells.base import Cell
from ctbench.data.batch import Batch
from ctbench.sequence import SequenceModel, forward_fill


class ToyCell(Cell):
    """h' = tanh(W x + U h) * dt + h: simple, but dt- and history-dependent."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.w = nn.Linear(input_size, hidden_size)
        self.u = nn.Linear(hidden_size, hidden_size, bias=False)

    def project_inputs(self, x):
        return self.w(x)

    def step(self, u, state, dt):
        return torch.tanh(u + self.u(state)) * dt.unsqueeze(-1) + state


def test_forward_fill_matches_a_loop():
    torch.manual_seed(0)
    x = torch.randn(3, 7, 4)
    observed = torch.rand(3, 7, 4) > 0.6
    expected = torch.zeros_like(x)
    for b in range(3):
        for f in range(4):
            last = 0.0
            for t in range(7):
                if observed[b, t, f]:
                    last = x[b, t, f]
                expected[b, t, f] = last
    assert torch.equal(forward_fill(x, observed), expected)


def _direct_states(cell, x, dt, step_mask=None):
    h = torch.zeros(x.shape[0], cell.hidden_size)
    states = []
    for t in range(x.shape[1]):
        new = cell(x[:, t], h, dt[:, t])
        if step_mask is not None:
            new = torch.where(step_mask[:, t : t + 1], new, h)
        h = new
        states.append(h)
    return torch.stack(states, 1)


def test_sequence_readout_equals_direct_unroll():
    torch.manual_seed(1)
    cell = ToyCell(5, 6)
    model = SequenceModel(cell, n_outputs=2, readout="sequence")
    x, dt = torch.randn(4, 9, 5), torch.rand(4, 9) + 0.5
    out = model(Batch(x=x, dt=dt, y=torch.zeros(4, 9, 2)))
    expected = model.head(_direct_states(cell, x, dt))
    assert out.shape == (4, 9, 2)
    assert torch.allclose(out, expected, atol=1e-6)


def test_last_readout_carries_state_over_padded_steps():
    torch.manual_seed(2)
    cell = ToyCell(3, 4)
    model = SequenceModel(cell, n_outputs=1, readout="last")
    x, dt = torch.randn(3, 8, 3), torch.rand(3, 8)
    lengths = torch.tensor([8, 5, 2])
    step_mask = torch.arange(8).unsqueeze(0) < lengths.unsqueeze(1)
    out = model(Batch(x=x, dt=dt, y=torch.zeros(3), step_mask=step_mask))
    for b in range(3):
        n = int(lengths[b])
        alone = _direct_states(cell, x[b : b + 1, :n], dt[b : b + 1, :n])[:, -1]
        assert torch.allclose(out[b], model.head(alone)[0], atol=1e-6)


def test_last_observed_readout_and_mask_inputs():
    torch.manual_seed(3)
    cell = ToyCell(4, 5)  # 2 raw features -> [values, mask] = 4 inputs
    model = SequenceModel(cell, n_outputs=2, readout="last_observed", append_mask=True)
    x = torch.randn(2, 6, 2)
    obs = torch.rand(2, 6, 2) > 0.3
    obs[0, 4:] = False  # sample 0: nothing observed after step 3
    obs[0, 3] = True
    dt = torch.rand(2, 6)
    out = model(Batch(x=x, dt=dt, y=torch.zeros(2), obs_mask=obs))
    inputs = torch.cat([forward_fill(x, obs), obs.float()], -1)
    states = _direct_states(cell, inputs, dt)
    last_obs = [max(t for t in range(6) if obs[b, t].any()) for b in range(2)]
    expected = torch.stack([model.head(states[b, last_obs[b]]) for b in range(2)])
    assert last_obs[0] == 3
    assert torch.allclose(out, expected, atol=1e-6)


def test_unknown_readout_is_refused():
    with pytest.raises(ValueError, match="known: sequence, last, last_observed"):
        SequenceModel(ToyCell(1, 1), n_outputs=1, readout="mean")
