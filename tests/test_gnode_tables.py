"""gnODE and nODE as "not in the paper" rows of Nature Table 3, Extended Data Figs. 5 and 6:
registry (ctbench.published not_in_paper), composition, and rendering without a verdict."""

from __future__ import annotations

import pytest

from ctbench import records, tables
from ctbench.config import compose
from ctbench.published import TableError, load_table, parse_table

EXTRA_TABLES = {"table3": "walker2d", "ed5": "xor", "ed6": "physionet2012"}


class StandIn:
    """Writes a plausible record for each composed config, as train.run would (no data needed)."""

    def __init__(self, runs_dir, metric):
        self.runs_dir, self.metric, self.configs = runs_dir, metric, []

    def __call__(self, cfg):
        self.configs.append(cfg)
        rid = records.run_id(cfg)
        rec = {"run_id": rid, "status": "finished", "data": cfg.data.name, "model": cfg.model.name,
               "experiment": cfg.experiment.name, "seed": cfg.seed, "budget": cfg.budget.name,
               "protocol": cfg.protocol.name, "metric": self.metric, "test_metric": 0.5 + 0.01 * cfg.seed,
               "seconds_per_epoch": 1.0, "epochs": 1, "created": records.now_utc(),
               "hardware": {"device": "cpu", "cpu": "test", "threads": 1}, "config": records.identity(cfg)}
        records.write_json_atomic(records.record_path(self.runs_dir, rid), rec)
        return rec


@pytest.mark.parametrize("table_id", sorted(EXTRA_TABLES))
def test_extra_rows_load_apart_from_the_papers_rows(table_id) -> None:
    t = load_table(table_id)
    assert [(r.model, r.in_paper, r.source, r.mean, r.std) for r in t.extra_rows] == [
        ("gnode", False, "ctbench", None, None), ("node", False, "ctbench", None, None)]
    assert all(r.in_paper for r in t.rows) and all(r.model not in ("gnode", "node") for r in t.runnable_rows)
    if table_id == "ed5":  # a multi-column table: the reproduced column's overrides, like the paper's rows
        assert all(r.overrides == ("data.encoding=event_based",) for r in t.extra_rows)


@pytest.mark.parametrize("table_id", sorted(EXTRA_TABLES))
def test_extra_rows_run_when_named_and_render_without_a_verdict(table_id, tmp_path) -> None:
    t = load_table(table_id)
    runs, out = tmp_path / "runs", tmp_path / "out"
    runner = StandIn(runs, t.metric)
    summary = tables.reproduce(table_id, budget="smoke", protocol="paper", runs_dir=runs, out_dir=out,
                               runner=runner, composer=compose, log=lambda line: None, rows=["gnode", "node"])
    assert summary.failed == [] and summary.ran == 2
    assert [c.experiment.name for c in runner.configs] == [f"{EXTRA_TABLES[table_id]}_gnode", f"{EXTRA_TABLES[table_id]}_node"]
    for cfg in runner.configs:
        assert cfg.optim.name == "adamw" and cfg.model.cell.integrator == "exact"
    md = (out / f"{table_id}.md").read_text()
    lines = [l for l in md.splitlines() if "(Kim et al. 2023)" in l and l.startswith("| ")]
    assert len(lines) == 2
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        # | # | Model | Source | Published ± (n) | Published time | Ours ± | Ours n | s/epoch | Δ | Verdict |
        assert cells[2] == "ctbench" and cells[3] == "not in the paper" and cells[8] == "—"
        assert cells[-1] == "not in the paper" and "p=" not in line and cells[6] == "1"
    assert '"not in the paper" rows are ctbench additions' in md
    csv_rows = [r for r in (out / f"{table_id}.csv").read_text().splitlines() if "Kim et al." in r]
    assert len(csv_rows) == 2 and all(",not in the paper," in r for r in csv_rows)


def test_extra_rows_are_left_out_until_run(tmp_path) -> None:
    t = load_table("table3")
    tables.render("table3", "smoke", "paper", tmp_path / "runs", tmp_path / "out")
    assert "not in the paper" not in (tmp_path / "out" / "table3.md").read_text()  # nothing published, nothing run
    assert [r.model for r in tables.select_rows(t, [])] == [r.model for r in t.runnable_rows]
    assert [r.model for r in tables.select_rows(t, ["gnode", "cfc"])] == ["gnode", "cfc"]


@pytest.mark.parametrize("row, msg", [
    ({"name": "X", "model": "gnode", "mean": 0.5}, "unknown field"),
    ({"name": "X"}, "must name the conf/model/"),
    ({"name": "CfC", "model": "gnode"}, "appears twice"),
])
def test_not_in_paper_rows_are_validated(row, msg) -> None:
    raw = {"id": "tx", "title": "T", "status": "known", "metric": "mse", "direction": "lower", "n": 2,
           "data": "walker2d", "rows": [{"name": "CfC", "mean": 0.6, "std": 0.01, "source": "self", "model": "cfc"}],
           "not_in_paper": [row]}
    with pytest.raises(TableError, match=msg):
        parse_table(raw)
