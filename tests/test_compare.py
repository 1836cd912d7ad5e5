"""A user's own cell (examples/my_cell) against Table 3 at smoke budget on the fixture Walker2d data."""

from __future__ import annotations

import csv
from pathlib import Path

from ctbench import records
from ctbench.compare import compare, main
from ctbench.train import run

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_cell"
SMALL = ["data.batch_size=16", "data.eval_batch_size=32"]


def test_my_cell_against_table3(smoke_overrides, tmp_path):
    """The README's walkthrough (`python -m ctbench.compare --model my_cell --table 3 --searchpath
    examples/my_cell --budget smoke`), on the fixture Walker2d data."""
    groups = []

    def runner(cfg):
        groups.append(cfg.logger.wandb.group)
        return run(cfg)

    res = compare("my_cell", "3", EXAMPLE, budget="smoke", protocol="paper", runs_dir=tmp_path / "runs",
                  out_dir=tmp_path / "compare", overrides=smoke_overrides + SMALL, runner=runner, log=lambda line: None)
    assert (res.ran, res.skipped, res.failed) == (1, 0, [])  # smoke: 1 seed
    assert groups == ["compare-my_cell-table3"]
    (record,) = records.load_records(tmp_path / "runs")
    assert (record["data"], record["model"], record["budget"], record["protocol"]) == ("walker2d", "my_cell", "smoke", "paper")
    assert record["experiment"] == "walker2d_my_cell"  # the user's experiment file, from the same searchpath
    assert record["config"]["model"]["cell"]["_target_"] == "my_cell.LeakyTimeRNNCell"

    md = res.rendered.md
    assert md == tmp_path / "compare" / "my_cell" / "table3.md"
    text = md.read_text()
    published = [r for r in res.rendered.table.rows]
    assert "| My leaky time RNN `my_cell` | user |" in text  # the extra row, after the paper's
    assert text.index("My leaky time RNN `my_cell`") > text.index(published[-1].display_name)
    section = text.split("against every published row", 1)[1]
    for row in published:  # compared with every published row, with the tables' verdicts
        assert f"| {row.display_name} |" in section
    assert "n<2" in section  # one smoke seed
    rows = list(csv.DictReader(res.rendered.csv.open()))
    assert rows[-1]["model"] == "my_cell" and rows[-1]["ours_n"] == "1" and len(rows) == len(published) + 1
    assert res.rendered.png.stat().st_size > 0

    # again: the finished seed is skipped; the command line renders the same table
    assert main(["--model", "my_cell", "--table", "table3", "--searchpath", str(EXAMPLE), "--budget", "smoke",
                 "--runs-dir", str(tmp_path / "runs"), "--out-dir", str(tmp_path / "compare"),
                 *smoke_overrides, *SMALL]) == 0
    assert len(records.load_records(tmp_path / "runs")) == 1


def test_readme_walks_through_this_example():
    readme = (EXAMPLE.parents[1] / "README.md").read_text()
    assert "python -m ctbench.compare --model my_cell --table 3 --searchpath examples/my_cell --budget smoke" in readme
    for path in ("my_cell.py", "conf/model/my_cell.yaml", "conf/experiment/walker2d_my_cell.yaml"):
        assert (EXAMPLE / path).is_file() and f"examples/my_cell/{path}" in readme
