"""Optuna sweeps on the fixture Walker2d data at smoke budget: resume, failures, export, report."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from ctbench import sweep
from ctbench.config import compose

SMOKE = "smoke_walker2d_cfc"
SMALL = ["data.batch_size=16", "data.eval_batch_size=32"]


def _kw(tmp_path: Path) -> dict:
    return dict(
        storage=f"sqlite:///{tmp_path / 'study.db'}",
        out_dir=tmp_path / "sweeps",
        export_dir=tmp_path / "conf" / "experiment",
        log=lambda line: None,
    )


def test_sweep_resumes_exports_and_reports(smoke_overrides, tmp_path):
    ran = []

    def runner(cfg, extra_callbacks=()):
        from ctbench.train import run

        ran.append(cfg)
        return run(cfg, extra_callbacks=extra_callbacks)

    first = sweep.run_sweep(SMOKE, n_trials=2, overrides=smoke_overrides + SMALL, runner=runner, **_kw(tmp_path))
    assert first.counts["complete"] == 2 and len(ran) == 2
    ids = [t.user_attrs["run_id"] for t in first.study.trials]
    # "killed" after 2 trials: the same command with n_trials=3 adds one trial, redoing none
    again = sweep.run_sweep(SMOKE, n_trials=3, overrides=smoke_overrides + SMALL, runner=runner, **_kw(tmp_path))
    trials = again.study.trials
    assert len(trials) == 3 and len(ran) == 3
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert [t.user_attrs["run_id"] for t in trials[:2]] == ids
    for t in trials:  # each trial is a ctbench run; its record holds the trial's values
        record = json.loads((again.runs_dir / f"{t.user_attrs['run_id']}.json").read_text())
        assert record["config"]["optim"]["lr"] == pytest.approx(t.params["optim.lr"])
        assert record["config"]["model"]["cell"]["hidden_size"] == t.params["model.cell.hidden_size"]
        assert record["budget"] == "smoke" and record["protocol"] == "clean"
        assert t.value == pytest.approx(record["best_val"])
    assert again.study.direction == optuna.study.StudyDirection.MINIMIZE  # walker2d: mse

    # the exported experiment composes to the best values
    best = again.study.best_trial
    assert again.export_path.name == "walker2d_cfc_smoke_walker2d_cfc.yaml"
    text = again.export_path.read_text()
    assert text.startswith("# @package _global_") and f"trial {best.number}" in text
    cfg = compose([f"experiment={again.export_path.stem}", f"hydra.searchpath=[file://{tmp_path / 'conf'}]"])
    assert cfg.optim.lr == pytest.approx(best.params["optim.lr"])
    assert cfg.model.cell.hidden_size == best.params["model.cell.hidden_size"]
    assert cfg.model.cell.backbone_units == best.params["model.cell.backbone_units"]
    assert cfg.optim.clipnorm == 1.0 and cfg.train.epochs == 50  # the rest: experiment/walker2d_cfc.yaml
    assert cfg.experiment.name == again.export_path.stem and "smoke_walker2d_cfc" in cfg.experiment.source

    report = again.report_path.read_text()
    assert "3 completed, 0 pruned, 0 failed" in report and "Parameter importances" in report
    assert "| `optim.lr` |" in report
    assert again.history_png.stat().st_size > 0


def test_diverging_trial_is_failed_and_the_sweep_goes_on(smoke_overrides, tmp_path):
    res = sweep.run_sweep(
        SMOKE, n_trials=2, overrides=smoke_overrides + SMALL + ["optim.clipnorm=0", "budget.limit_train_batches=4"],
        enqueue=[{"optim.lr": 1e30, "model.cell.hidden_size": 8, "model.cell.backbone_units": 16}], **_kw(tmp_path),
    )
    first, second = res.study.trials
    assert first.state == TrialState.FAIL
    assert first.user_attrs["error_type"] == "NonFiniteLossError" and first.user_attrs["error"]
    assert (res.runs_dir / f"{first.user_attrs['run_id']}.failed.json").is_file()
    assert second.state == TrialState.COMPLETE
    assert res.counts == {"complete": 1, "pruned": 0, "failed": 1, "interrupted": 0, "running": 0}
    assert "NonFiniteLossError" in res.report_path.read_text()


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit(1)])  # SystemExit: Ctrl-C inside Lightning's fit
def test_ctrl_c_stops_the_sweep_with_the_study_saved(smoke_overrides, tmp_path, stop):
    calls = []

    def runner(cfg, extra_callbacks=()):
        calls.append(cfg)
        if len(calls) == 2:
            raise stop
        return {"run_id": "x", "test_metric": 1.0, "best_val": 0.5 + len(calls), "config": {"protocol": {"select": "best_val"}}}

    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(SMOKE, n_trials=3, overrides=smoke_overrides, runner=runner, **_kw(tmp_path))
    study = optuna.load_study(study_name=SMOKE, storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert study.trials[1].user_attrs[sweep.INTERRUPTED]
    res = sweep.run_sweep(SMOKE, n_trials=3, overrides=smoke_overrides, runner=runner, **_kw(tmp_path))
    assert res.counts["complete"] == 3 and res.counts["interrupted"] == 1  # the interrupted one is not counted
    assert len(calls) == 4


def test_trials_share_the_sweeps_wandb_group(smoke_overrides, tmp_path):
    seen = []

    def runner(cfg, extra_callbacks=()):
        seen.append(cfg.logger.wandb.group)
        return {"run_id": "x", "test_metric": 1.0, "best_val": 0.5 + len(seen), "config": {"protocol": {"select": "best_val"}}}

    res = sweep.run_sweep(SMOKE, n_trials=2, overrides=smoke_overrides, runner=runner, **_kw(tmp_path))
    assert seen == [f"sweep-{SMOKE}"] * 2
    assert "logger" not in res.export_path.read_text()  # the exported experiment logs where its runs say
    sweep.run_sweep(SMOKE, n_trials=3, overrides=smoke_overrides + ["logger.wandb.group=mine"], runner=runner,
                    **_kw(tmp_path))
    assert seen[-1] == "mine"  # the caller's override wins


def test_pruning_callback_reports_and_prunes():
    class Trainer:
        sanity_checking = False
        current_epoch = 3
        callback_metrics = {"val/mse": 0.7}

    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.5))
    trial = study.ask()
    cb = sweep.pruning_callback(trial, "val/mse")
    with pytest.raises(optuna.TrialPruned):
        cb.on_validation_end(Trainer(), None)
    assert study._storage.get_trial(trial._trial_id).intermediate_values == {3: 0.7}


def test_sweep_files_load_and_unknown_names_list_the_known():
    for name in ("walker2d_cfc", "walker2d_cfc_nogate", "walker2d_cfs", "walker2d_cfc_mmrnn", SMOKE):
        spec = sweep.load_spec(name)
        assert spec.space and any(p.name == "optim.lr" and p.log for p in spec.space)
        compose(spec.base)  # the base overrides compose
    with pytest.raises(sweep.SweepError, match="walker2d_cfc_mmrnn"):
        sweep.load_spec("nope")
    assert sweep.merge_overrides(["budget=quick", "model=cfc"], ["budget=smoke"]) == ["model=cfc", "budget=smoke"]
    assert sweep.export_name("walker2d", "cfc", "walker2d_cfc") == "walker2d_cfc_sweep"


def test_command_line(smoke_overrides, tmp_path):
    code = sweep.main([SMOKE, "--trials", "1", "--storage", f"sqlite:///{tmp_path / 'cli.db'}",
                       "--out-dir", str(tmp_path / "sweeps"), "--export-dir", str(tmp_path / "exp"),
                       *smoke_overrides, *SMALL])
    assert code == 0
    assert (tmp_path / "sweeps" / f"{SMOKE}.md").is_file()
    assert (tmp_path / "exp" / "walker2d_cfc_smoke_walker2d_cfc.yaml").is_file()
