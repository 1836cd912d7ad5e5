"""The gnODE flip-flop grid (ctbench.gnode_grid) and the attractor analysis (ctbench.gnode_attractor):
grid expansion, the authors' per-step selection, `make reproduce-gnode BUDGET=smoke`'s path, and the
speed minimisation on systems whose fixed points are known."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ctbench import gnode_grid as gg
from ctbench.config import compose
from ctbench.gnode_attractor import analyse, descend_speed, minimise_speed, unique_points

SMOKE_EXTRA = ["logger=none", "runtime.progress_bar=false", "runtime.num_threads=1"]


# -- grid expansion ---------------------------------------------------------------------------------
def test_paper_grid_expands_to_the_authors_runs() -> None:
    spec = gg.load_spec("paper")
    # 27 points per (task, model) with a grid, 1 recipe per fixed3 model, one seed (gnode.md G5):
    # variable3 5 models, fixed2 1, square 5, rectangle/ring/disk 1 each; fixed3 5 models x 1
    assert gg.n_runs(spec) == 27 * (5 + 1 + 5 + 3) + 5 == 383
    plan = gg.stage_one(spec)
    assert len(plan) == 383 and gg.stage_two(spec, {("square", "gnode"): spec.grid[0]}) == []
    square = [r.point for r in plan if (r.task.name, r.model) == ("square", "gnode")]
    assert square[0] == gg.GridPoint(1e-4, 1e-3, 10) and square[26] == gg.GridPoint(1e-2, 1e-1, 100)
    assert square[9 * 1 + 3 * 2 + 1] == gg.GridPoint(1e-3, 1e-1, 50)  # idx 17 = 9(i-1) + 3(j-1) + k, 0-based 16
    fixed3 = {r.model: r.point for r in plan if r.task.name == "fixed3"}
    assert fixed3["gnode"] == gg.GridPoint(1e-3, 0.1, 100) and fixed3["mgru"] == gg.GridPoint(1e-2, 0.1, 100)


def test_budget_subsets_and_second_stage_seeds() -> None:
    spec = gg.load_spec("cpu1h")
    assert len(spec.grid) == 2 and spec.seeds == 2
    # square: 5 models, rectangle/ring/disk: gnODE; 2 points at seed 0 + 1 more seed each
    assert gg.n_runs(spec) == 8 * (2 + 1) == 24 and len(gg.stage_one(spec)) == 16
    chosen = {("square", "gnode"): spec.grid[1], ("ring", "gnode"): spec.grid[0]}
    second = gg.stage_two(spec, chosen)
    assert [(r.task.name, r.model, r.seed, r.point) for r in second] == [
        ("square", "gnode", 1, spec.grid[1]), ("ring", "gnode", 1, spec.grid[0])]
    with pytest.raises(gg.GridError, match="unknown gnODE grid budget"):
        gg.load_spec("huge")


def test_run_overrides_compose_into_the_task_recipe() -> None:
    spec = gg.load_spec("cpu1h")
    square = next(t for t, _ in spec.tasks if t.name == "square")
    cfg = compose(list(gg.run_overrides(spec, square, "gnode", spec.grid[1], 1)))
    assert cfg.experiment.name == "flipflop_gnode" and cfg.data.variant == "square" and cfg.seed == 1
    assert (cfg.model.cell.hidden_size, list(cfg.model.cell.f_widths), cfg.model.cell.h0) == (2, [316, 316], "encoder")
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay, cfg.data.batch_size) == ("adamw", 1e-2, 1e-2, 100)
    assert (cfg.budget.name, cfg.protocol.name, cfg.gnode.select, cfg.gnode.budget) == ("cpu1h", "clean", "step", "cpu1h")
    assert cfg.train.epochs == 200 and math.ceil(200 * cfg.budget.epoch_fraction) == 50
    gru = compose(list(gg.run_overrides(spec, square, "gru_gnode", spec.grid[0], 0)))  # no F to size
    assert gru.model.cell.hidden_size == 2 and "f_widths" not in gru.model.cell


# -- the authors' selection and the make target ----------------------------------------------------
def test_step_selection_records_the_selected_parameters(tmp_path) -> None:
    """The record's val/step_best_mse is the validation MSE of the checkpoint it saved (the selected state)."""
    from ctbench.gnode_attractor import load_run
    from ctbench.train import run

    spec = gg.load_spec("smoke")
    square = next(t for t, _ in spec.tasks if t.name == "square")
    cfg = compose(list(gg.run_overrides(spec, square, "mgru", spec.grid[1], 0)) + SMOKE_EXTRA + [
        f"paths.runs_dir={tmp_path / 'runs'}", f"paths.logs_dir={tmp_path / 'logs'}", "budget.limit_train_batches=4"])
    rec = run(cfg, extra_callbacks=[gg.StepBestValidation()])
    best, at = rec["metrics"][gg.STEP_BEST], rec["metrics"][gg.STEP_BEST_AT]
    assert 0 <= at < 4 and at == int(at)  # validated before each of the 4 updates, never after the last
    model, dm = load_run(tmp_path / "runs" / rec["run_id"] / "model.pt")
    val = dm.splits["val"].tensors
    from ctbench.data.batch import Batch

    with torch.no_grad():
        mse = float(((model(Batch(x=val["x"], dt=val["dt"], y=val["y"])) - val["y"]) ** 2).mean())
    assert mse == pytest.approx(best, rel=1e-5)
    assert rec["test_metric"] > 0 and rec["split_sizes"]["test"] == 100  # fresh test trials (protocol clean)


def test_reproduce_smoke_renders_the_table_and_a_figure(tmp_path) -> None:
    """`make reproduce-gnode BUDGET=smoke`: the grid, the attractor figure of the 2-bit task, the table."""
    runs, out, figs = tmp_path / "runs", tmp_path / "tables", tmp_path / "figures"
    extra = SMOKE_EXTRA + [f"paths.logs_dir={tmp_path / 'logs'}", f"paths.data_dir={tmp_path / 'data'}"]
    md, csv_path = gg.reproduce("smoke", runs, out, figs, extra, log=lambda line: None)
    text = md.read_text()
    assert text.startswith("# Gated neural ODEs: flip-flop tasks (budget: smoke) — PARTIAL")
    assert "No number of the paper is known" in text and "8 finished of 8 planned" in text
    lines = [l for l in text.splitlines() if l.startswith("| square | `gnode`") or l.startswith("| fixed3 | `gnode`")]
    assert len(lines) == 2 + 3  # summary rows, then the seed-0 grid rows (2 square points + 1 recipe)
    assert "(2) |" in lines[0] and "(2) |" in lines[1]  # two seeds at the selected point
    rows = list(csv_path.read_text().splitlines())
    assert len(rows) == 1 + 8 and rows[0].startswith("budget,task,model,lr")
    assert sum(",True," in r for r in rows) == 2 * 3  # the selected point's seed-0 and seed-1 runs
    png, summary = figs / "gnode_square_attractor.png", json.loads((figs / "gnode_square_attractor.json").read_text())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and summary["budget"] == "smoke"
    assert "gnode_square_attractor.png" in text and 0.0 <= summary["coverage"] <= 1.0
    # resuming trains nothing: every record exists
    called = []
    gg.run_grid(gg.load_spec("smoke"), runs, extra, runner=lambda cfg, **kw: called.append(cfg), log=lambda line: None)
    assert called == []


# -- speed minimisation ----------------------------------------------------------------------------
def grid_starts(lo: float = -2.0, hi: float = 2.0, n: int = 15) -> torch.Tensor:
    g = torch.linspace(lo, hi, n, dtype=torch.float64)
    return torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)


def test_minimise_speed_finds_the_known_fixed_points_and_their_stability() -> None:
    """dh/dt = (h1 - h1^3, -h2): fixed points (-1, 0) and (1, 0) stable, (0, 0) a saddle."""
    field = lambda h: torch.stack([h[:, 0] - h[:, 0] ** 3, -h[:, 1]], -1)  # noqa: E731
    res = minimise_speed(field, grid_starts(), iters=60)
    fixed = res.speeds < 1e-10
    assert bool(fixed.all())  # every start reaches a zero of v
    pts = res.points[fixed].numpy()
    keep = unique_points(pts, 1e-3)
    found = sorted(tuple(np.round(p, 6) + 0.0) for p in pts[keep])
    assert found == [(-1.0, 0.0), (0.0, 0.0), (1.0, 0.0)]
    stable = {tuple(np.round(pts[i], 3) + 0.0): bool((res.eigenvalues[fixed][i].real < 0).all()) for i in keep}
    assert stable == {(-1.0, 0.0): True, (0.0, 0.0): False, (1.0, 0.0): True}


def test_slow_point_descent_spreads_over_a_continuous_attractor() -> None:
    """dh/dt = (1 - |h|^2) h: the unit circle is a ring of fixed points; every sector gets slow points."""
    field = lambda h: (1 - (h**2).sum(-1, keepdim=True)) * h  # noqa: E731
    pts, speeds = descend_speed(field, grid_starts(), stop_below=1e-3)
    ring = (speeds < 1e-3) & ((pts.norm(dim=-1) - 1).abs() < 1e-2)
    angles = torch.atan2(pts[ring][:, 1], pts[ring][:, 0])
    sectors = set((((angles + math.pi) // (math.pi / 6)).long() % 12).tolist())
    assert len(sectors) == 12  # spread round the ring, not collapsed onto a few points


def test_analyse_recovers_the_nine_fixed_points_of_a_hand_built_cell() -> None:
    """z = 1/2, F = tanh(2h) per unit: fixed points tanh(2h) = h, h in {0, +-h*}; the 4 corners are stable.
    With the readout y = h / h*, the corners are the fixed 2-bit task's targets (+-1, +-1)."""
    from ctbench.cells.gnode import GatedNODECell
    from ctbench.sequence import SequenceModel

    cell = GatedNODECell(2, 2, f_widths=[], gated=True, f_output="tanh")
    model = SequenceModel(cell, n_outputs=2)
    h_star = 0.957504  # tanh(2 h) = h
    with torch.no_grad():
        for p in cell.parameters():
            p.zero_()
        cell.f_net.first.weight.copy_(2 * torch.eye(2))
        model.head.weight.copy_(torch.eye(2) / h_star)
        model.head.bias.zero_()
    att = analyse(model, "fixed2", n_grid=21, iters=100)
    assert len(att.fixed) == 9 and int(att.stable.sum()) == 4
    corners = att.fixed[att.stable]
    np.testing.assert_allclose(np.sort(np.abs(corners), axis=0), np.ones((4, 2)), atol=1e-4)
    assert att.coverage == 1.0 and 0.0 < att.precision <= 1.0
