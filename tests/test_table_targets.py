"""Every registered table: its runnable rows compose into runs, and it renders at smoke budget.

This is what `make reproduce-table-X BUDGET=smoke` does, with a stand-in trainer so the test
needs no data: the composition (data, model, experiment file, row overrides) is real.
"""

from __future__ import annotations

import pytest

from ctbench import records, tables
from ctbench.config import compose
from ctbench.published import known_tables, load_table

TABLE_IDS = sorted(known_tables())


class RecordingRunner:
    """Writes a plausible record for each composed config, as train.run would."""

    def __init__(self, runs_dir, metric):
        self.runs_dir, self.metric = runs_dir, metric
        self.configs = []

    def __call__(self, cfg):
        self.configs.append(cfg)
        rid = records.run_id(cfg)
        record = {
            "run_id": rid, "status": "finished", "data": cfg.data.name, "model": cfg.model.name,
            "experiment": cfg.experiment.name, "seed": cfg.seed, "budget": cfg.budget.name,
            "protocol": cfg.protocol.name, "metric": self.metric, "test_metric": 1.0 + cfg.seed,
            "seconds_per_epoch": 1.0, "epochs": 1, "created": records.now_utc(),
            "hardware": {"device": "cpu", "cpu": "test", "threads": 1}, "config": records.identity(cfg),
        }
        records.write_json_atomic(records.record_path(self.runs_dir, rid), record)
        return record


@pytest.mark.parametrize("table_id", TABLE_IDS)
def test_table_rows_compose_and_render_at_smoke(table_id, tmp_path):
    table = load_table(table_id)
    runner = RecordingRunner(tmp_path / "runs", table.metric)
    summary = tables.reproduce(
        table_id, budget="smoke", protocol="paper", runs_dir=tmp_path / "runs", out_dir=tmp_path / "out",
        runner=runner, composer=compose, log=lambda line: None,
    )
    assert summary.failed == []
    assert summary.ran == len(table.runnable_rows)
    for cfg in runner.configs:
        assert cfg.data.name == table.data
        assert cfg.experiment.name == f"{cfg.data.name}_{cfg.model.name}", (
            f"{table_id}: no conf/experiment/{cfg.data.name}_{cfg.model.name}.yaml, the row would train on defaults"
        )
    text = (tmp_path / "out" / f"{table.id}.md").read_text()
    assert "budget: smoke" in text and "protocol: paper" in text
