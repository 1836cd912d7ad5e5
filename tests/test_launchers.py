"""Hydra launchers: a joblib multirun in parallel for real; the SLURM launcher up to submission."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import submitit

from ctbench import records
from ctbench.train import main


def test_joblib_multirun_runs_two_jobs_in_parallel(smoke_overrides, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "ctbench.train", "-m", "hydra/launcher=local_parallel", "model=cfc,cfs",
         *smoke_overrides, "runtime.num_threads=1", "data.batch_size=16", "data.eval_batch_size=32",
         "budget.limit_train_batches=1", "budget.limit_eval_batches=1", f"hydra.sweep.dir={tmp_path / 'multirun'}"],
        capture_output=True, text=True, timeout=400,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in out.stdout + out.stderr
    found = records.load_records(tmp_path / "runs")
    assert sorted(r["model"] for r in found) == ["cfc", "cfs"]
    assert all(r["budget"] == "smoke" and r["data"] == "walker2d" for r in found)


@pytest.fixture()
def fake_srun(tmp_path, monkeypatch):
    """submitit's SLURM executor refuses to start where no ``srun`` is on the PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")


def _submit(monkeypatch, argv):
    """Run the command line in-process up to the SLURM submission; return the executor and its jobs."""
    captured = {}

    def map_array(self, fn, *iterables):
        captured["executor"], captured["jobs"] = self, list(zip(*iterables))
        return []  # nothing submitted: the launcher then has no result to wait for

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", map_array)
    monkeypatch.setattr(sys, "argv", ["ctbench.train", *argv])
    main()
    return captured["executor"], captured["jobs"]


def test_slurm_launcher_asks_for_what_the_trainer_needs(fake_srun, monkeypatch, tmp_path):
    common = ["trainer=ddp_multinode", "model=cfc"]
    executor, jobs = _submit(monkeypatch, ["-m", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                           f"hydra.sweep.dir={tmp_path / 'sweep'}", *common, "seed=0,1"])
    assert [job[0] for job in jobs] == [[*common, "seed=0"], [*common, "seed=1"]]  # one array task each
    params = executor._executor.parameters  # validated by submitit's update_parameters
    assert (params["nodes"], params["ntasks_per_node"], params["gpus_per_node"]) == (2, 4, 4)
    assert (params["partition"], params["time"], params["cpus_per_task"]) == ("gpu", 240, 4)
    assert Path(executor.folder).parent == tmp_path / "sweep" / ".submitit"
    sbatch = executor._executor._make_submission_file_text("python -u -m submitit.core._submit", "uid")
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4", "#SBATCH --partition=gpu"):
        assert line in sbatch


def test_slurm_launcher_default_is_one_gpu_task(fake_srun, monkeypatch, tmp_path):
    executor, jobs = _submit(monkeypatch, ["-m", "hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                                           "model=cfc,ltc"])
    assert len(jobs) == 2
    params = executor._executor.parameters
    assert (params["nodes"], params["ntasks_per_node"], params["gpus_per_node"]) == (1, 1, 1)
