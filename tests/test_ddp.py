"""DDP: two CPU processes (gloo) write one record with the single-process metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning_fabric.utilities.distributed import DistributedSamplerWrapper
from torch.utils.data import BatchSampler, SequentialSampler

from ctbench.config import compose
from ctbench.task import merge_shards
from ctbench.train import build_strategy, run


@pytest.mark.parametrize("n, batch, ranks", [(11, 3, 2), (11, 3, 3), (5, 2, 4), (225, 50, 2), (8, 2, 2)])
def test_merge_shards_restores_the_unsharded_batches(n, batch, ranks):
    """Shard the batches as Lightning does under DDP (padding included) and merge them back."""
    unsharded = list(BatchSampler(SequentialSampler(range(n)), batch, drop_last=False))
    per_rank = []
    for rank in range(ranks):
        shard = DistributedSamplerWrapper(BatchSampler(SequentialSampler(range(n)), batch, drop_last=False),
                                          num_replicas=ranks, rank=rank, shuffle=False)
        per_rank.append([(torch.tensor(b, dtype=torch.float32).unsqueeze(-1), torch.tensor(b), None) for b in shard])
    assert sum(len(r) for r in per_rank) >= len(unsharded)  # equal shards: some hold a repeated batch
    merged = merge_shards(per_rank, n)
    assert [o[1].tolist() for o in merged] == unsharded


def test_ddp_configs_compose():
    gloo = build_strategy(compose(["trainer=ddp_cpu"]).trainer.strategy)
    assert type(gloo).__name__ == "DDPStrategy" and gloo._process_group_backend == "gloo"
    multi = compose(["trainer=ddp_multinode"]).trainer
    assert (multi.strategy, multi.accelerator, multi.num_nodes, multi.devices) == ("ddp", "gpu", 2, 4)
    assert compose(["trainer=ddp"]).trainer.num_nodes == 1


def test_two_gloo_processes_write_one_record_with_the_single_process_metrics(smoke_overrides, smoke_cfg, tmp_path):
    # lr 0: both runs test the same (initial) weights, so their metrics must agree exactly when the
    # DDP run evaluates every sample once: 225 test and 154 validation samples in batches of 50 give
    # an odd number of batches, so the second rank's shard is padded with a repeated batch.
    same = ["model=cfc", "protocol=clean", "optim.lr=0", "budget.limit_eval_batches=null",
            "data.batch_size=16", "data.eval_batch_size=50", "runtime.num_threads=1"]
    ddp_runs = tmp_path / "ddp_runs"
    overrides = [o for o in smoke_overrides if not o.startswith("trainer=")]
    out = subprocess.run(
        [sys.executable, "-m", "ctbench.train", "trainer=ddp_cpu", "trainer.devices=2", *overrides, *same,
         f"paths.runs_dir={ddp_runs}", f"hydra.run.dir={tmp_path / 'hydra'}"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "distributed_backend=gloo" in out.stderr and "MEMBER: 2/2" in out.stderr
    assert out.stdout.count("test mse =") == 1  # rank 1 returns no record and prints nothing
    (path,) = ddp_runs.glob("*.json")  # written once, by rank 0
    assert (ddp_runs / path.stem / "model.pt").is_file()
    ddp = json.loads(path.read_text())

    single = run(smoke_cfg(*same))
    assert ddp.keys() == single.keys() and ddp["metrics"].keys() == single["metrics"].keys()
    assert ddp["config"].keys() == single["config"].keys()
    assert ddp["config"]["trainer"]["devices"] == 2 and ddp["run_id"] != single["run_id"]
    assert ddp["split_sizes"] == single["split_sizes"] == {"train": 1171, "val": 154, "test": 225}
    assert ddp["n_parameters"] == single["n_parameters"]
    assert ddp["test_metric"] == pytest.approx(single["test_metric"], rel=1e-6)
    assert ddp["best_val"] == pytest.approx(single["best_val"], rel=1e-6)
    assert ddp["selected_epoch"] == single["selected_epoch"]
