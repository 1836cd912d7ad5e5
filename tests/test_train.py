"""One run end to end on the fixture Walker2d archive: record, determinism, protocol, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.errors import MissingConfigException

from ctbench import records
from ctbench.config import compose
from ctbench.published import load_table
from ctbench.task import NonFiniteLossError
from ctbench.train import build_datamodule, effective_epochs, load_model, run


def test_run_writes_one_complete_record(smoke_cfg):
    cfg = smoke_cfg("model=cfc", "seed=3")
    record = run(cfg)
    path = records.record_path(cfg.paths.runs_dir, record["run_id"])
    assert json.loads(path.read_text()) == json.loads(json.dumps(record, default=str))
    assert record["run_id"] == records.run_id(cfg)
    assert (record["data"], record["model"], record["seed"], record["budget"], record["protocol"]) == ("walker2d", "cfc", 3, "smoke", "paper")
    assert record["experiment"] == "walker2d_cfc"
    assert record["metric"] == "mse" and record["test_metric"] > 0
    assert record["seconds_per_epoch"] > 0 and record["epochs"] == 1
    assert len(record["data_fingerprint"]) == 64
    assert record["versions"]["torch"].startswith("2.")
    assert record["config"]["model"]["cell"]["hidden_size"] == 64  # from experiment/walker2d_cfc.yaml
    assert not list(Path(cfg.paths.runs_dir).glob("*.tmp"))


def test_same_seed_same_metrics_on_cpu(smoke_cfg, tmp_path):
    first = run(smoke_cfg("model=cfc_mmrnn", "seed=1"))
    again = run(smoke_cfg("model=cfc_mmrnn", "seed=1", f"paths.runs_dir={tmp_path / 'again'}"))
    other = run(smoke_cfg("model=cfc_mmrnn", "seed=2"))
    assert first["test_metric"] == again["test_metric"]
    assert first["run_id"] == again["run_id"]  # paths are not part of a run's identity
    assert other["run_id"] != first["run_id"]
    assert other["test_metric"] != first["test_metric"]


def test_clean_protocol_tests_the_best_validation_weights(smoke_cfg):
    cfg = smoke_cfg("model=cfs", "protocol=clean", "budget.max_epochs=3", "budget.limit_train_batches=1")
    record = run(cfg)
    assert record["protocol"] == "clean"
    assert record["selected_epoch"] in (0, 1, 2)
    val_history = _csv_column(Path(cfg.paths.logs_dir) / record["run_id"] / "csv" / "metrics.csv", "val/mse")
    assert record["best_val"] == pytest.approx(min(val_history), rel=1e-6)
    assert record["selected_epoch"] == val_history.index(min(val_history))


def _csv_column(path: Path, name: str) -> list:
    import pandas as pd

    frame = pd.read_csv(path)
    return [float(v) for v in frame[name].dropna()]


def test_nan_loss_stops_the_run_and_writes_nothing(smoke_cfg):
    cfg = smoke_cfg("model=cfc", "optim.lr=1e30", "optim.clipnorm=0", "budget.limit_train_batches=4")
    with pytest.raises(NonFiniteLossError):
        run(cfg)
    assert records.load_records(cfg.paths.runs_dir) == []


def test_checkpoint_reloads_to_the_same_outputs(smoke_cfg):
    cfg = smoke_cfg("model=ltc", "model.cell.hidden_size=8")
    record = run(cfg)
    model = load_model(Path(cfg.paths.runs_dir) / record["run_id"] / "model.pt")
    dm = build_datamodule(cfg)
    batch = next(iter(dm.test_dataloader()))
    model.eval()
    again = load_model(Path(cfg.paths.runs_dir) / record["run_id"] / "model.pt").eval()
    with torch.no_grad():
        assert torch.equal(model(batch), again(batch))


def test_budget_scales_epochs():
    assert effective_epochs(compose(["budget=paper"])) == 50
    assert effective_epochs(compose(["budget=quick"])) == 10
    assert effective_epochs(compose(["budget=quick", "model=lstm_aug"])) == 10
    assert effective_epochs(compose(["budget=quick", "budget.max_epochs=null", "model=lstm_aug"])) == 40
    assert effective_epochs(compose(["budget=smoke"])) == 1


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(MissingConfigException) as err:
        compose(["model=transformerxl"])
    assert "cfc_mmrnn" in str(err.value) and "ltc" in str(err.value)


def test_command_line_entry_point(smoke_overrides):
    out = subprocess.run(
        [sys.executable, "-m", "ctbench.train", "model=lstm_aug", *smoke_overrides],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "test mse =" in out.stdout


def test_reproduce_table3_at_smoke_budget_renders(smoke_overrides, tmp_path):
    """`make reproduce-table-3 BUDGET=smoke`, end to end with the real runner on fixture data."""
    from ctbench import tables

    small = ["data.batch_size=16", "data.eval_batch_size=32"]
    summary = tables.reproduce(
        "table3", budget="smoke", protocol="paper", runs_dir=tmp_path / "runs", out_dir=tmp_path / "tables",
        extra_overrides=smoke_overrides + small, log=lambda line: None,
    )
    assert not summary.failed, summary.failed[0]["error"] if summary.failed else ""
    found = records.load_records(tmp_path / "runs")
    assert sorted(r["model"] for r in found) == sorted(row.model for row in load_table("table3").runnable_rows)
    text = (tmp_path / "tables" / "table3.md").read_text()
    assert "budget: smoke" in text and "protocol: paper" in text and "PARTIAL" in text
    assert (tmp_path / "tables" / "table3.png").stat().st_size > 0
    again = tables.reproduce(
        "table3", budget="smoke", protocol="paper", runs_dir=tmp_path / "runs", out_dir=tmp_path / "tables",
        extra_overrides=smoke_overrides + small, log=lambda line: None, render_after=False,
    )
    assert (again.skipped, again.ran) == (len(found), 0)  # a re-run table skips what is done


def test_wandb_mode_is_offline_unless_logged_in(monkeypatch, tmp_path):
    from ctbench.train import wandb_mode

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert wandb_mode("auto") == "offline"
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password x\n")
    assert wandb_mode("auto") == "online"
    assert wandb_mode("disabled") == "disabled"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_mode("online") == "offline"  # the environment wins


def test_wandb_group_reaches_the_logger(smoke_overrides, monkeypatch):
    """Runs of one table or sweep share the group they are given; a lone run gets <data>-<model>-<budget>."""
    import pytorch_lightning.loggers as pl_loggers

    from ctbench.train import build_loggers

    made = []

    class FakeWandbLogger(pl_loggers.CSVLogger):
        def __init__(self, **kwargs):
            made.append(kwargs)
            super().__init__(kwargs["save_dir"], name="fake")

    monkeypatch.setattr(pl_loggers, "WandbLogger", FakeWandbLogger)
    monkeypatch.setenv("WANDB_MODE", "offline")
    base = [o for o in smoke_overrides if not o.startswith("logger=")] + ["model=cfs"]
    build_loggers(compose(base), "abc")
    build_loggers(compose(base + ["logger.wandb.group=table-table3-smoke-paper"]), "abc")
    assert [m["group"] for m in made] == ["walker2d-cfs-smoke", "table-table3-smoke-paper"]
    assert made[0]["mode"] == "offline" and made[0]["config"]["model"]["name"] == "cfs"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert len(build_loggers(compose(base), "abc")) == 1  # CSV only


@pytest.mark.slow
def test_offline_wandb_run_leaves_a_syncable_run(smoke_overrides, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose([o for o in smoke_overrides if not o.startswith("logger=")] + ["model=cfs"])
    run(cfg)
    assert list((Path(cfg.paths.logs_dir) / "wandb").glob("offline-run-*"))
    sync = Path(__file__).resolve().parents[1] / "scripts" / "wandb_sync.sh"
    out = subprocess.run(["bash", str(sync), cfg.paths.logs_dir, "--dry-run"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Would sync 1 run(s)" in out.stdout + out.stderr
