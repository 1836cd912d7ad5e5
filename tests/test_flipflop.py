"""Flip-flop generator of Kim et al. 2023 (gnode.md G3): the invariants G3.3 lists, the target rule
and overwrite order on hand-built pulses, the 0.98 thinning, splits, and one end-to-end smoke run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import ctbench.data.flipflop as ff
from ctbench.config import compose
from ctbench.data.batch import TaskKind
from ctbench.data.flipflop import VARIANTS, FlipFlopDataModule, generate_flipflop, targets_from_inputs, write_pulses

CONF = Path(__file__).resolve().parents[1] / "conf"
MODELS = ("node", "gnode", "mgru", "rnn_gnode", "gru_gnode")


@pytest.fixture(scope="module")
def generated():
    return {v: generate_flipflop(v, seed=8) for v in VARIANTS}


def runs(channel: np.ndarray):
    """Maximal non-zero runs of one channel as (start, length), 0-based."""
    nz = np.r_[False, channel != 0, False]
    edges = np.flatnonzero(nz[1:] != nz[:-1])
    return list(zip(edges[::2], edges[1::2] - edges[::2]))


# -- target rule and pulse writing on hand-built data -----------------------------------------
def test_target_rule_on_hand_built_pulses() -> None:
    x = np.zeros((1, 12, 2), dtype=np.float32)
    x[0, 2:5, 0] = -1.0
    x[0, 7:10, 0] = 0.5
    x[0, 4:7, 1] = 0.25
    y = targets_from_inputs(x, np.array([1.0, -2.0], dtype=np.float32))
    np.testing.assert_array_equal(y[0, :, 0], [1, 1, -1, -1, -1, -1, -1, 0.5, 0.5, 0.5, 0.5, 0.5])
    np.testing.assert_array_equal(y[0, :, 1], [-2, -2, -2, -2, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25])


def test_pulses_overwrite_in_draw_order_and_late_onsets_draw_nothing() -> None:
    values = iter([0.1, 0.2, 0.3])
    drawn = []

    def draw(rng):
        v = next(values)
        drawn.append(v)
        return np.array([0]), np.array([v])

    x = np.zeros((1, 10, 1))
    # onsets 1-based: 5 then 4 (the later draw wins bins 5-6 though its onset is earlier), then 9
    # and 10 (> 10 - 2: dropped, no value drawn), then 1
    write_pulses(x, 0, np.array([5, 4, 9, 10, 1]), draw, np.random.default_rng(0), pulse_bins=3)
    np.testing.assert_array_equal(x[0, :, 0], [0.3, 0.3, 0.3, 0.2, 0.2, 0.2, 0.1, 0, 0, 0])
    assert drawn == [0.1, 0.2, 0.3]
    y = targets_from_inputs(x, np.array([0.0]))
    np.testing.assert_array_equal(y[0, :, 0], [0.3, 0.3, 0.3, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1])


# -- invariants of the generated arrays -------------------------------------------------------
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_generated_invariants(generated, variant: str) -> None:
    x, y = generated[variant]["x"], generated[variant]["y"]
    n, _, initial = VARIANTS[variant]
    assert x.shape == y.shape == (600, 100, n) and x.dtype == y.dtype == np.float32
    # target = latest non-zero input per channel, else the initial target (slow loop)
    for trial in range(0, 600, 37):
        for c in range(n):
            held = initial[c]
            for t in range(100):
                if x[trial, t, c] != 0:
                    held = x[trial, t, c]
                assert y[trial, t, c] == np.float32(held)
    # initial targets: trials without a pulse at bin 1 start at the initial target
    quiet = ~(x[:, 0] != 0).any(-1)
    assert quiet.sum() > 450
    np.testing.assert_array_equal(y[quiet, 0], np.broadcast_to(np.float32(initial), (quiet.sum(), n)))
    # every non-zero run lasts >= 3 bins and starts at or before bin 98 (1-based)
    for trial in range(0, 600, 7):
        for c in range(n):
            for start, length in runs(x[trial, :, c]):
                assert length >= 3 and start + 1 <= 98
    v = x[x != 0]
    if variant in ("fixed3", "fixed2"):
        assert set(np.unique(v)) == {-1.0, 1.0}
    elif variant in ("variable3", "square"):
        assert np.abs(v).max() <= 1 and v.min() < -0.9 and v.max() > 0.9
    elif variant == "rectangle":
        assert np.abs(x[..., 0]).max() <= 2 and np.abs(x[..., 0]).max() > 1.5 and np.abs(x[..., 1]).max() <= 1
    else:  # ring, disk: both channels over the same bins
        on = x != 0
        np.testing.assert_array_equal(on[..., 0], on[..., 1])
        r = np.hypot(x[..., 0], x[..., 1])[on[..., 0]]
        if variant == "ring":
            np.testing.assert_allclose(r, 2.0, rtol=1e-5)
        else:
            assert r.min() > 1 and r.max() < 2
    if variant in ("fixed3", "variable3", "fixed2", "square", "rectangle"):  # one channel per pulse
        starts = (x != 0) & np.r_["1", np.zeros((600, 1, n), bool), x[:, :-1] == 0]
        assert (starts.sum(-1) <= 1).mean() > 0.99  # simultaneous onsets on two channels are rare


def test_thinning_keeps_98_percent_of_pulses(monkeypatch) -> None:
    counts = {"draws": 0}
    real = ff.pulse_rule

    def counting(variant):
        draw = real(variant)

        def wrapped(rng):
            counts["draws"] += 1
            return draw(rng)

        return wrapped

    monkeypatch.setattr(ff, "pulse_rule", counting)
    trials = 8_000
    ff.generate_flipflop("fixed3", n_trials=trials, seed=1)
    mean = counts["draws"] / trials
    se = (0.98 * 12 / trials) ** 0.5
    assert abs(mean - 11.76) < 4 * se  # Poisson(0.98 * 12); 12 would be ~10 se away
    counts["draws"] = 0
    ff.generate_flipflop("disk", n_trials=trials, seed=2)
    assert abs(counts["draws"] / trials - 5.88) < 4 * (5.88 / trials) ** 0.5


def test_same_seed_same_arrays_other_seed_other_arrays() -> None:
    a, b, c = generate_flipflop("variable3", seed=8), generate_flipflop("variable3", seed=8), generate_flipflop("variable3", seed=9)
    np.testing.assert_array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["y"], b["y"])
    assert not np.array_equal(a["x"], c["x"])
    with pytest.raises(ValueError, match="ring"):
        generate_flipflop("annulus")


# -- data module -------------------------------------------------------------------------------
def test_splits_and_protocols(tmp_path) -> None:
    paper = FlipFlopDataModule(data_dir=str(tmp_path), variant="fixed3", protocol="paper")
    assert paper.task_kind == TaskKind.PER_STEP_REGRESSION and paper.metric == "mse"
    assert paper.n_features == paper.n_outputs == 3
    assert paper.split_sizes() == {"train": 500, "val": 100, "test": 100}
    full = generate_flipflop("fixed3", seed=8)
    np.testing.assert_array_equal(paper.splits["train"].tensors["x"].numpy(), full["x"][:500])
    np.testing.assert_array_equal(paper.splits["val"].tensors["y"].numpy(), full["y"][500:])
    # paper: the authors have no test set; the test split is their 100 validation trials
    np.testing.assert_array_equal(paper.splits["test"].tensors["x"].numpy(), full["x"][500:])
    assert (paper.splits["train"].tensors["dt"] == 1).all()
    clean = FlipFlopDataModule(data_dir=str(tmp_path), variant="fixed3", protocol="clean", test_size=50)
    assert clean.split_sizes() == {"train": 500, "val": 100, "test": 50}
    np.testing.assert_array_equal(clean.splits["val"].tensors["x"].numpy(), full["x"][500:])
    np.testing.assert_array_equal(clean.splits["test"].tensors["x"].numpy(), generate_flipflop("fixed3", 50, seed=clean.test_seed)["x"])
    assert clean.fingerprint != paper.fingerprint and len(paper.fingerprint) == 64
    two = FlipFlopDataModule(data_dir=str(tmp_path), variant="disk")
    assert two.n_features == two.n_outputs == 2
    with pytest.raises(ValueError, match="test_seed"):
        FlipFlopDataModule(data_dir=str(tmp_path), seed=3, test_seed=3)


def test_training_batches_come_in_fixed_order(tmp_path) -> None:
    dm = FlipFlopDataModule(data_dir=str(tmp_path), batch_size=100)
    batches = list(dm.train_dataloader())
    assert len(batches) == 5 and batches[0].x.shape == (100, 100, 3) and batches[0].dt.shape == (100, 100)
    torch.testing.assert_close(torch.cat([b.x for b in batches]), dm.splits["train"].tensors["x"])


def test_conf_file_matches_module() -> None:
    cfg = OmegaConf.load(CONF / "data" / "flipflop.yaml")
    assert cfg._target_ == "ctbench.data.flipflop.FlipFlopDataModule" and cfg.name == "flipflop"
    assert (cfg.variant, cfg.n_trials, cfg.n_train, cfg.n_bins, cfg.pulse_bins, cfg.seed, cfg.dt) == ("fixed3", 600, 500, 100, 3, 8, 1.0)
    assert cfg.shuffle_train is False


# -- experiments and the end-to-end run --------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_experiment_configs(model: str) -> None:
    cfg = compose(["data=flipflop", f"model={model}", "logger=none"])
    assert cfg.experiment.name == f"flipflop_{model}"
    assert cfg.optim.name == "adamw" and cfg.optim.weight_decay == 0.1 and cfg.optim.weight_decay_mode == "decoupled"
    assert cfg.optim.lr == (1e-3 if model in ("node", "gnode") else 1e-2)
    assert cfg.data.batch_size == 100 and cfg.train.epochs == 200 and cfg.data.variant == "fixed3"
    assert cfg.model.cell.hidden_size == 6 and cfg.model.cell.h0 == "encoder" and cfg.model.cell.tau == 1.0
    if model in ("node", "gnode"):
        assert list(cfg.model.cell.f_widths) == [100, 100, 100]


def test_smoke_run_end_to_end(smoke_overrides) -> None:
    from ctbench.train import run

    cfg = compose(smoke_overrides + ["data=flipflop", "model=gnode", "protocol=clean", "data.test_size=20"])
    record = run(cfg)
    assert record["data"] == "flipflop" and record["model"] == "gnode" and record["metric"] == "mse"
    assert record["split_sizes"] == {"train": 500, "val": 100, "test": 20}
    assert np.isfinite(record["test_metric"]) and record["test_metric"] > 0
    # G4.2: core 21,866 + readout 3*6 + 3 + h0 encoder 3*6 + 6
    assert record["n_parameters"] == 21866 + 21 + 24
