"""Lane keeping: ED Fig. 9 parameter counts, the recordings loader and the highway-env substitute."""

from __future__ import annotations

import csv
import importlib.util

import numpy as np
import pytest
import torch

from ctbench.data.archive import MissingDataError
from ctbench.data.batch import TaskKind
from ctbench.data.lane_keeping import LaneKeepingDataModule
from ctbench.models.lane_keeping import (
    HEAD_PARAMS, PUBLISHED_RNN_PARAMS, ROWS, ConvHead, LaneKeepingNet, count_parameters,
)
from ctbench.published import load_table

PUBLISHED_TOTAL = {"lstm": 259_733, "ncp": 233_139, "cfs": 227_728, "cfc": 230_828,
                   "cfc_nogate": 230_828, "cfc_mmrnn": 235_052}


@pytest.fixture(scope="module", params=ROWS)
def net(request):
    torch.manual_seed(0)
    return LaneKeepingNet(request.param)


def test_shared_head_size():
    assert count_parameters(ConvHead()) == HEAD_PARAMS == 226_644


def test_counts_exact(net):
    c = net.parameter_counts()
    assert c["head"] == 226_644
    assert c["rnn"] == PUBLISHED_RNN_PARAMS[net.row]
    assert c["total"] == PUBLISHED_TOTAL[net.row] == 226_644 + PUBLISHED_RNN_PARAMS[net.row]


def test_registry_matches_models():
    t = load_table("ed9")
    assert t.kind == "parameter_counts"
    for row in t.rows:
        if row.network:
            assert row.params_rnn == PUBLISHED_RNN_PARAMS[row.network]
            assert row.params_total == PUBLISHED_TOTAL[row.network]


def test_forward_frames(net):
    x = torch.rand(2, 3, 3, 72, 128)
    dt = torch.tensor([[1.0, 0.5, 2.0], [0.1, 1.0, 1.0]])
    y = net(x, dt)
    assert y.shape == (2, 3, 1) and torch.isfinite(y).all()


def _write_recordings(root, n_episodes=4, n_frames=12, size=(20, 30)):
    rng = np.random.RandomState(0)
    from PIL import Image

    for e in range(n_episodes):
        ep = root / f"ep{e:02d}"
        (ep / "frames").mkdir(parents=True)
        ts = np.cumsum(rng.uniform(0.02, 0.06, n_frames))
        with open(ep / "steering.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["timestamp", "steering"])
            for k in range(n_frames):
                img = rng.randint(0, 256, size + (3,), dtype=np.uint8)
                if e % 2:
                    np.save(ep / "frames" / f"{k:05d}.npy", img)
                else:
                    Image.fromarray(img).save(ep / "frames" / f"{k:05d}.png")
                w.writerow([f"{ts[k]:.6f}", f"{np.sin(k / 3):.6f}"])
    return root


def test_folder_loader(tmp_path):
    root = _write_recordings(tmp_path / "rec")
    dm = LaneKeepingDataModule(data_dir=str(tmp_path), root=str(root), image_size=(72, 128), seq_len=6, stride=3)
    dm.setup()
    assert dm.task_kind == TaskKind.PER_STEP_REGRESSION and dm.metric == "mse"
    sizes = dm.split_sizes()
    assert set(sizes) == {"train", "val", "test"} and sum(sizes.values()) == 4 * 3
    b = next(iter(dm.train_dataloader()))
    assert b.x.shape[1:] == (6, 3, 72, 128) and b.y.shape[1:] == (6, 1) and b.dt.shape[1:] == (6,)
    assert 0.0 <= float(b.x.min()) and float(b.x.max()) <= 1.0
    assert (b.dt > 0.019).all() and (b.dt < 0.061).all()
    with torch.no_grad():
        out = LaneKeepingNet("cfc")(b.x, b.dt)
    assert out.shape == b.y.shape


def test_folder_flat_layout(tmp_path):
    root = _write_recordings(tmp_path / "rec", n_episodes=3)
    dm = LaneKeepingDataModule(data_dir=str(tmp_path), root=str(root), image_size=(8, 8), layout="flat",
                               seq_len=4, stride=4)
    b = next(iter(dm.train_dataloader()))
    assert b.x.shape[1:] == (4, 3 * 8 * 8) == (4, dm.n_features)


def test_missing_recordings_names_format(tmp_path):
    dm = LaneKeepingDataModule(data_dir=str(tmp_path))
    with pytest.raises(MissingDataError, match=r"steering\.csv.*timestamp,steering"):
        dm.setup()


@pytest.mark.skipif(importlib.util.find_spec("highway_env") is None, reason="highway-env not installed")
def test_highway_env_generator(tmp_path):
    from ctbench.data.lane_keeping import generate_highway_env

    eps = generate_highway_env(n_episodes=1, episode_steps=10, image_size=(36, 64))
    frames, dt, steer = eps[0]
    assert frames.shape == (10, 3, 36, 64) and frames.std() > 0.01
    assert np.allclose(dt, 0.1) and np.all(np.abs(steer) <= 1.0)


def test_tables_reproduce_ed9_renders_counts(tmp_path):
    from ctbench import tables

    lines = []
    s = tables.reproduce("ed9", runs_dir=tmp_path / "runs", out_dir=tmp_path / "out", log=lines.append)
    assert s.ran == 0 and s.failed == []
    md = (tmp_path / "out" / "ed9.md").read_text()
    assert md.count("| exact |") == 6 and "| CNN | 2,124,901 | – |" in md
    assert "8,408 | 8,408 | 0 | exact" in md and any("exact" in line for line in lines)
    assert (tmp_path / "out" / "ed9.csv").read_text().count(",exact") == 6
    assert (tmp_path / "out" / "ed9.png").stat().st_size > 0


def test_parameter_count_fields_validated():
    from ctbench.published import TableError, parse_table

    base = {"id": "x", "title": "t", "status": "known", "data": "d", "kind": "parameter_counts",
            "rows": [{"name": "a", "source": "self", "params_total": 10, "params_rnn": 3}]}
    assert parse_table(base).rows[0].params_rnn == 3
    with pytest.raises(TableError, match="exceeds"):
        parse_table({**base, "rows": [{"name": "a", "source": "self", "params_total": 1, "params_rnn": 3}]})
    with pytest.raises(TableError, match="belong to .kind: parameter_counts. tables only"):
        parse_table({"id": "x", "title": "t", "status": "known", "data": "d", "metric": "mse", "direction": "lower",
                     "rows": [{"name": "a", "source": "self", "mean": 1.0, "std": None, "params_rnn": 3}]})


# -- the network: extension point (conf/model/lane_*.yaml) --------------------------------
def test_network_adapter_takes_batch_and_keeps_counts():
    from ctbench.data.batch import Batch
    from ctbench.models.lane_keeping import LaneKeepingNetwork

    torch.manual_seed(0)
    net = LaneKeepingNetwork("cfc", input_size=3 * 56 * 64, n_outputs=1, readout="sequence", append_mask=False, tau=2.0)
    assert net.parameter_counts()["total"] == PUBLISHED_TOTAL["cfc"]
    x, dt = torch.rand(2, 3, 3, 56, 64), torch.rand(2, 3) + 0.1
    b = Batch(x=x, dt=dt, y=torch.zeros(2, 3, 1))
    with torch.no_grad():
        assert torch.allclose(net(b), LaneKeepingNet.forward(net, x, 2.0 * dt))
    assert all(p.requires_grad and p.ndim >= 2 for p in net.regularized_weights())
    with pytest.raises(ValueError, match="n_outputs"):
        LaneKeepingNetwork("cfc", n_outputs=2)
    with pytest.raises(ValueError, match="readout"):
        LaneKeepingNetwork("cfc", readout="last")
    with pytest.raises(ValueError, match="at least 53"):
        net(Batch(x=torch.rand(1, 2, 3, 40, 64), dt=torch.ones(1, 2), y=torch.zeros(1, 2, 1)))
    with pytest.raises(ValueError, match="layout=frames"):
        net(Batch(x=torch.rand(1, 2, 3 * 56 * 64), dt=torch.ones(1, 2), y=torch.zeros(1, 2, 1)))


def test_ncp_apply_constraints_clips_ltc_parameters():
    from ctbench.models.lane_keeping import LaneKeepingNetwork

    net = LaneKeepingNetwork("ncp")
    params = net.rnn.cell._params
    assert not net.rnn.cell._implicit_param_constraints  # so ncps needs the explicit clipping
    with torch.no_grad():
        for name in ("w", "sensory_w", "cm", "gleak"):
            params[name].fill_(-1.0)
    net.apply_constraints()
    for name in ("w", "sensory_w", "cm", "gleak"):
        assert float(params[name].detach().min()) >= 0.0


@pytest.mark.parametrize("row", ROWS)
def test_model_configs_build_networks(row, smoke_overrides):
    from hydra.utils import instantiate

    from ctbench.config import compose

    cfg = compose(smoke_overrides + ["data=lane_keeping", f"model=lane_{row}"])
    assert cfg.model.get("cell") is None and cfg.experiment.name is None  # the paper gives no recipe
    net = instantiate(cfg.model.network, input_size=3 * 72 * 128, n_outputs=1, readout="sequence",
                      append_mask=False, tau=1.0)
    assert net.parameter_counts()["total"] == PUBLISHED_TOTAL[row]


@pytest.mark.parametrize("row", ROWS)
def test_smoke_run_on_user_recordings(row, smoke_overrides, tmp_path):
    from ctbench.config import compose
    from ctbench.train import run

    root = _write_recordings(tmp_path / "rec", n_episodes=4, n_frames=12, size=(56, 64))
    cfg = compose(smoke_overrides + [
        "data=lane_keeping", f"model=lane_{row}", f"data.root={root}", "data.image_size=[56,64]",
        "data.seq_len=6", "data.stride=3", "data.batch_size=4", "data.eval_batch_size=8",
    ])
    record = run(cfg)
    assert (record["data"], record["model"], record["budget"]) == ("lane_keeping", f"lane_{row}", "smoke")
    assert record["metric"] == "mse" and np.isfinite(record["test_metric"]) and record["test_metric"] > 0
    assert record["epochs"] == 1
