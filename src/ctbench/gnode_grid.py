"""The gnODE flip-flop experiments: the authors' grid per task and model, selection, the table.

``conf/gnode/flipflop.yaml`` holds the tasks (sizes and epochs of the authors' scripts), the
27-point learning-rate x weight-decay x batch grid and the grid budgets. One grid is:

1. every (task, model, grid point) at seed 0, each one ``ctbench.train.run`` with the authors'
   per-step model selection (:class:`StepBestValidation`);
2. per (task, model), the grid point with the lowest selected validation MSE;
3. seeds 1 .. k-1 at that point only.

Runs are records in ``results/runs`` like any other (a run whose record exists is skipped, so a
killed grid resumes); a run that raises is written as ``<run_id>.failed.json`` and the grid goes
on. :func:`render` builds ``results/tables/gnode_flipflop.md`` and ``.csv`` from the records only.
The paper publishes no flip-flop number (gnode.md G11), so the table has no published column.

Command line::

    python -m ctbench.gnode_grid reproduce --budget smoke     # grid, attractor figures, table
    python -m ctbench.gnode_grid run --budget cpu1h [overrides...]
    python -m ctbench.gnode_grid render --budget cpu1h
"""

from __future__ import annotations

import argparse
import copy
import csv
import datetime as _dt
import io
import itertools
import json
import math
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import pytorch_lightning as pl
import torch
import yaml

from ctbench import records
from ctbench.config import compose, conf_dir
from ctbench.tables import CellStats, cell_stats
from ctbench.train import run as train_run

DEFAULT_RUNS_DIR = "results/runs"
DEFAULT_OUT_DIR = "results/tables"
DEFAULT_FIG_DIR = "results/figures"
TABLE_NAME = "gnode_flipflop"
#: the metric the step selection logs (the selected parameters' validation MSE) and its step
STEP_BEST = "val/step_best_mse"
STEP_BEST_AT = "val/step_best_step"
TWO_BIT = ("fixed2", "square", "rectangle", "ring", "disk")

Runner = Callable[..., Any]
Composer = Callable[[list], Any]


class GridError(ValueError):
    """conf/gnode/flipflop.yaml is malformed or a budget, task or model is unknown."""


# =========================================================================== selection callback


class StepBestValidation(pl.Callback):
    """The authors' model selection (gnode.md G5): validate before every optimiser step, keep the best.

    At every training batch the MSE over the whole validation split is computed with the
    parameters *before* that batch's update (``train_rnn``'s callback); the final update is never
    validated, as in their loop. The best parameters are loaded before testing, so the test
    metric, the checkpoint and the record are those of the selected state. The selected
    validation MSE and its optimiser step are logged at test start as ``val/step_best_mse`` and
    ``val/step_best_step``, so they reach the record's ``metrics`` beside ``test/mse``.
    """

    def __init__(self) -> None:
        self.best: Optional[float] = None
        self.best_step: Optional[int] = None
        self.state: Optional[Dict[str, torch.Tensor]] = None
        self._val: List[Any] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._val = [b.to(pl_module.device) for b in trainer.datamodule.val_dataloader()]

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        with torch.no_grad():
            sq = n = 0.0
            for b in self._val:
                err = (pl_module.model(b) - b.y.to(torch.float32)) ** 2
                sq, n = sq + float(err.sum()), n + err.numel()
        value = sq / n
        if math.isfinite(value) and (self.best is None or value < self.best):
            self.best, self.best_step = value, trainer.global_step
            self.state = copy.deepcopy({k: v.detach() for k, v in pl_module.state_dict().items()})

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.state is not None:
            pl_module.load_state_dict(self.state)
        # logged with the test metrics, which are what the record's ``metrics`` keeps
        pl_module.log(STEP_BEST, self.best if self.best is not None else math.nan)
        pl_module.log(STEP_BEST_AT, float(self.best_step if self.best_step is not None else -1))


# =========================================================================== spec


@dataclass(frozen=True)
class GridPoint:
    lr: float
    weight_decay: float
    batch_size: int

    def overrides(self) -> List[str]:
        return [f"optim.lr={self.lr!r}", f"optim.weight_decay={self.weight_decay!r}", f"data.batch_size={self.batch_size}"]

    def label(self) -> str:
        return f"lr {self.lr:g}, wd {self.weight_decay:g}, batch {self.batch_size}"


@dataclass(frozen=True)
class Task:
    name: str
    variant: str
    epochs: int
    hidden_size: int
    f_widths: Tuple[int, ...]
    h0: str
    models: Tuple[str, ...]
    hidden_size_by_model: Tuple[Tuple[str, int], ...] = ()
    #: a fixed recipe instead of the grid (fixed-amplitude 3-bit): ((model, lr), ...), wd, batch
    recipe_lr: Tuple[Tuple[str, float], ...] = ()
    recipe_weight_decay: Optional[float] = None
    recipe_batch_size: Optional[int] = None

    def hidden(self, model: str) -> int:
        return dict(self.hidden_size_by_model).get(model, self.hidden_size)


@dataclass(frozen=True)
class GridSpec:
    """One grid budget of conf/gnode/flipflop.yaml, resolved."""

    budget: str
    hydra_budget: str
    budget_overrides: Tuple[str, ...]
    seeds: int
    grid: Tuple[GridPoint, ...]
    tasks: Tuple[Tuple[Task, Tuple[str, ...]], ...]  # (task, models run at this budget)
    all_tasks: Tuple[Task, ...]
    mlp_models: Tuple[str, ...]
    #: options of the attractor figures (``ctbench.gnode_attractor.figure_for_run``): n_grid, iters, states_every
    attractor: Tuple[Tuple[str, int], ...] = ()

    def points(self, task: Task, model: str) -> List[GridPoint]:
        """The grid points searched for (task, model): the budget's grid, or the task's one recipe."""
        if task.recipe_lr:
            return [GridPoint(dict(task.recipe_lr)[model], task.recipe_weight_decay, task.recipe_batch_size)]
        return list(self.grid)


@dataclass(frozen=True)
class PlannedRun:
    task: Task
    model: str
    point: GridPoint
    seed: int
    overrides: Tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.task.name}/{self.model} [{self.point.label()}] seed {self.seed}"


def default_spec_path() -> Path:
    return conf_dir() / "gnode" / "flipflop.yaml"


def _product(grid: Mapping[str, Sequence[Any]]) -> Tuple[GridPoint, ...]:
    """lr outermost, then weight decay, then batch: the authors' idx = 9(i-1) + 3(j-1) + k."""
    try:
        return tuple(GridPoint(float(a), float(b), int(c))
                     for a, b, c in itertools.product(grid["lr"], grid["weight_decay"], grid["batch_size"]))
    except (KeyError, TypeError) as e:
        raise GridError(f"a grid needs lists lr, weight_decay and batch_size, got {grid!r}") from e


def _task(name: str, raw: Mapping[str, Any]) -> Task:
    recipe = raw.get("recipe") or {}
    models = tuple(raw["models"])
    if recipe and set(recipe.get("lr", {})) != set(models):
        raise GridError(f"task {name}: the recipe's lr must name exactly its models {list(models)}")
    return Task(
        name=name, variant=str(raw.get("variant", name)), epochs=int(raw["epochs"]),
        hidden_size=int(raw["hidden_size"]), f_widths=tuple(int(w) for w in raw.get("f_widths", ())),
        h0=str(raw["h0"]), models=models,
        hidden_size_by_model=tuple(sorted((raw.get("hidden_size_by_model") or {}).items())),
        recipe_lr=tuple(sorted((m, float(v)) for m, v in (recipe.get("lr") or {}).items())),
        recipe_weight_decay=float(recipe["weight_decay"]) if recipe else None,
        recipe_batch_size=int(recipe["batch_size"]) if recipe else None,
    )


def load_spec(budget: str, path: Path | str | None = None) -> GridSpec:
    """The grid budget ``budget`` of ``conf/gnode/flipflop.yaml`` (or ``path``)."""
    path = Path(path) if path else default_spec_path()
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    budgets = raw.get("budgets") or {}
    if budget not in budgets:
        raise GridError(f"unknown gnODE grid budget {budget!r}; {path} defines: {', '.join(budgets)}")
    b = budgets[budget]
    all_tasks = {name: _task(name, t) for name, t in raw["tasks"].items()}
    chosen = b.get("tasks")
    if chosen is None:
        chosen = {name: list(t.models) for name, t in all_tasks.items()}
    tasks = []
    for name, models in chosen.items():
        if name not in all_tasks:
            raise GridError(f"budget {budget}: unknown task {name!r}; tasks: {', '.join(all_tasks)}")
        unknown = [m for m in models if m not in all_tasks[name].models]
        if unknown:
            raise GridError(f"budget {budget}: task {name} has no model(s) {unknown}; it runs {list(all_tasks[name].models)}")
        tasks.append((all_tasks[name], tuple(models)))
    seeds = int(b.get("seeds", 1))
    if seeds < 1:
        raise GridError(f"budget {budget}: seeds must be >= 1, got {seeds}")
    return GridSpec(
        budget=budget, hydra_budget=str(b["hydra_budget"]), budget_overrides=tuple(b.get("overrides") or ()),
        seeds=seeds, grid=_product(b.get("grid") or raw["grid"]), tasks=tuple(tasks),
        all_tasks=tuple(all_tasks.values()), mlp_models=tuple(raw.get("mlp_models") or ()),
        attractor=tuple(sorted((str(k), int(v)) for k, v in (b.get("attractor") or {}).items())),
    )


# =========================================================================== plan


def run_overrides(spec: GridSpec, task: Task, model: str, point: GridPoint, seed: int,
                  extra: Sequence[str] = ()) -> Tuple[str, ...]:
    """The Hydra overrides of one run (composed like ``python -m ctbench.train``)."""
    ov = [f"data=flipflop", f"model={model}", f"budget={spec.hydra_budget}", "protocol=clean", f"seed={seed}",
          f"+gnode.budget={spec.budget}", "+gnode.select=step",
          f"data.variant={task.variant}", f"train.epochs={task.epochs}",
          f"model.cell.hidden_size={task.hidden(model)}", f"model.cell.h0={task.h0}"]
    if model in spec.mlp_models:
        ov.append(f"model.cell.f_widths=[{','.join(str(w) for w in task.f_widths)}]")
    return tuple(ov + point.overrides() + list(spec.budget_overrides) + list(extra))


def stage_one(spec: GridSpec, extra: Sequence[str] = ()) -> List[PlannedRun]:
    """Every (task, model, grid point) at seed 0, in the config's task order and the authors' grid order."""
    return [PlannedRun(task, model, p, 0, run_overrides(spec, task, model, p, 0, extra))
            for task, models in spec.tasks for model in models for p in spec.points(task, model)]


def stage_two(spec: GridSpec, selected: Mapping[Tuple[str, str], GridPoint], extra: Sequence[str] = ()) -> List[PlannedRun]:
    """Seeds 1 .. k-1 at each (task, model)'s selected point; pairs without a selection are left out."""
    out = []
    for task, models in spec.tasks:
        for model in models:
            point = selected.get((task.name, model))
            if point is not None:
                out += [PlannedRun(task, model, point, s, run_overrides(spec, task, model, point, s, extra))
                        for s in range(1, spec.seeds)]
    return out


def n_runs(spec: GridSpec) -> int:
    """Runs of a complete grid: every grid point at seed 0 plus seeds - 1 per (task, model)."""
    return sum(len(spec.points(t, m)) + spec.seeds - 1 for t, models in spec.tasks for m in models)


# =========================================================================== running


@dataclass
class GridState:
    """The records (or failures) of a grid's planned runs, by plan position."""

    spec: GridSpec
    runs: List[Tuple[PlannedRun, str, Optional[dict], Optional[dict]]] = field(default_factory=list)  # (run, id, record, failure)

    def records_of(self, task: str, model: str) -> List[Tuple[PlannedRun, str, Optional[dict], Optional[dict]]]:
        return [r for r in self.runs if r[0].task.name == task and r[0].model == model]


def selected_value(record: Mapping[str, Any]) -> float:
    """The selected parameters' validation MSE of a run (inf when it has none)."""
    v = (record.get("metrics") or {}).get(STEP_BEST)
    return float(v) if v is not None and math.isfinite(float(v)) else math.inf


def select(state: GridState) -> Dict[Tuple[str, str], GridPoint]:
    """Per (task, model): the seed-0 grid point with the lowest selected validation MSE."""
    best: Dict[Tuple[str, str], Tuple[float, GridPoint]] = {}
    for run, _, rec, _ in state.runs:
        if run.seed != 0 or rec is None:
            continue
        key, v = (run.task.name, run.model), selected_value(rec)
        if math.isfinite(v) and (key not in best or v < best[key][0]):
            best[key] = (v, run.point)
    return {k: p for k, (_, p) in best.items()}


def _read(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _attach(state: GridState, plan: Sequence[PlannedRun], composer: Composer, runs_dir: Path) -> None:
    for run in plan:
        rid = records.run_id(composer(list(run.overrides)))
        state.runs.append((run, rid, _read(records.record_path(runs_dir, rid)),
                           _read(runs_dir / f"{rid}{records.FAILED_SUFFIX}")))


def collect(spec: GridSpec, runs_dir: Path | str, composer: Optional[Composer] = None,
            extra: Sequence[str] = ()) -> GridState:
    """The grid's runs as the records in ``runs_dir`` stand (nothing is trained)."""
    composer = composer or compose
    runs_dir = Path(runs_dir)
    state = GridState(spec)
    _attach(state, stage_one(spec, extra), composer, runs_dir)
    _attach(state, stage_two(spec, select(state), extra), composer, runs_dir)
    return state


def run_grid(spec: GridSpec, runs_dir: Path | str = DEFAULT_RUNS_DIR, extra: Sequence[str] = (), *,
             runner: Optional[Runner] = None, composer: Optional[Composer] = None,
             log: Callable[[str], None] = print) -> GridState:
    """Run every missing run of the grid (stage one, selection, stage two); return the final state."""
    runner, composer = runner or train_run, composer or compose
    runs_dir = Path(runs_dir)
    extra = [f"paths.runs_dir={runs_dir.as_posix()}", *extra]
    total, done = n_runs(spec), 0

    def execute(plan: Sequence[PlannedRun]) -> None:
        nonlocal done
        for run in plan:
            cfg = composer(list(run.overrides))
            rid = records.run_id(cfg)
            done += 1
            if records.record_path(runs_dir, rid).exists():
                continue
            log(f"[gnode {spec.budget}] {done}/{total} {run.label} (run {rid})")
            try:
                runner(cfg, extra_callbacks=[StepBestValidation()])
            except Exception as e:  # noqa: BLE001 - a diverged grid point must not stop the grid
                payload = {"run_id": rid, "status": "failed", "grid": TABLE_NAME, "budget": spec.budget,
                           "task": run.task.name, "model": run.model, "seed": run.seed,
                           "overrides": list(run.overrides), "error_type": type(e).__name__, "error": str(e),
                           "traceback": traceback.format_exc(), "failed_at": records.now_utc()}
                records.write_json_atomic(runs_dir / f"{rid}{records.FAILED_SUFFIX}", payload)
                log(f"[gnode {spec.budget}] FAILED {run.label}: {type(e).__name__}: {e}")
                continue
            (runs_dir / f"{rid}{records.FAILED_SUFFIX}").unlink(missing_ok=True)

    execute(stage_one(spec, extra))
    execute(stage_two(spec, select(collect(spec, runs_dir, composer, extra)), extra))
    return collect(spec, runs_dir, composer, extra)


# =========================================================================== table


@dataclass
class SummaryRow:
    """One (task, model) of the table: its selected grid point and the runs there."""

    task: Task
    model: str
    point: Optional[GridPoint]
    val: Optional[CellStats]
    test: Optional[CellStats]
    n_parameters: Optional[int]
    best_steps: Tuple[int, ...]
    steps_per_run: Optional[int]
    train_seconds: float
    failed: int


def _stats(runs: Sequence[Tuple[PlannedRun, str, dict]], value: Callable[[dict], float]) -> Optional[CellStats]:
    good = [(run, rid, rec) for run, rid, rec in runs if math.isfinite(value(rec))]
    if not good:
        return None
    return cell_stats([value(r) for _, _, r in good], [r.get("seconds_per_epoch") for _, _, r in good],
                      seeds=[run.seed for run, _, _ in good], run_ids=[rid for _, rid, _ in good])


def table_rows(state: GridState) -> List[SummaryRow]:
    selected = select(state)
    rows = []
    for task, models in state.spec.tasks:
        for model in models:
            runs = state.records_of(task.name, model)
            point = selected.get((task.name, model))
            chosen = [(run, rid, rec) for run, rid, rec, _ in runs if rec is not None and run.point == point]
            rec0 = chosen[0][2] if chosen else None
            steps = None
            if rec0 is not None:
                sizes = rec0.get("split_sizes") or {}
                per_epoch = math.ceil(sizes.get("train", 0) / point.batch_size) if sizes else 0
                limit = (rec0.get("config") or {}).get("budget", {}).get("limit_train_batches")
                steps = rec0.get("epochs", 0) * (min(per_epoch, limit) if isinstance(limit, int) else per_epoch)
            rows.append(SummaryRow(
                task=task, model=model, point=point,
                val=_stats(chosen, selected_value),
                test=_stats(chosen, lambda r: float(r.get("test_metric", math.nan))),
                n_parameters=rec0.get("n_parameters") if rec0 else None,
                best_steps=tuple(int((rec.get("metrics") or {}).get(STEP_BEST_AT, -1)) for _, _, rec in chosen),
                steps_per_run=steps,
                train_seconds=sum(float(rec.get("seconds_train_total") or 0.0) for _, _, rec, _ in runs if rec),
                failed=sum(1 for _, _, rec, fail in runs if rec is None and fail is not None),
            ))
    return rows


def _mse(x: float) -> str:
    """4 decimals; a diverged value (a map that blows up on some trial) in 3 significant digits."""
    return f"{x:.4f}" if abs(x) < 1e3 else f"{x:.3g}"


def _pm(st: Optional[CellStats]) -> str:
    if st is None:
        return "—"
    return f"{_mse(st.mean)} ± {_mse(st.std)}" if st.n > 1 else _mse(st.mean)


def _budget_lines(state: GridState, rows: Sequence[SummaryRow]) -> List[str]:
    spec = state.spec
    recs = [rec for _, _, rec, _ in state.runs if rec]
    total_s = sum(float(r.get("seconds_train_total") or 0.0) for r in recs)
    epochs = sorted({(r.get("config") or {}).get("data", {}).get("variant", "?") + f": {r.get('epochs')}" for r in recs})
    hw = sorted({f"{(r.get('hardware') or {}).get('cpu', '?')}, {(r.get('hardware') or {}).get('threads', '?')} thread(s)" for r in recs})
    full = len(spec.grid) == 27
    lines = [
        f"- **Budget:** `{spec.budget}` (conf/gnode/flipflop.yaml; Hydra budget `{spec.hydra_budget}`"
        + (f" with {', '.join(spec.budget_overrides)}" if spec.budget_overrides else "") + ")",
        f"- **Grid searched per (task, model):** {len(spec.grid)} point(s)"
        + (" (the authors' full 27-point grid)" if full else f" of the authors' 27: {'; '.join(p.label() for p in spec.grid)}")
        + ("; fixed3 uses the script's one recipe per model" if any(t.recipe_lr for t, _ in spec.tasks) else ""),
        f"- **Epochs per run:** {', '.join(epochs) if epochs else 'no runs yet'} "
        "(the authors: 200 for the 2-bit tasks and fixed3, 600 for variable3)",
        f"- **Seeds:** {spec.seeds} per (task, model): seed 0 searches the grid, "
        + ("seed 1 reruns" if spec.seeds == 2 else f"seeds 1..{spec.seeds - 1} rerun") + " the selected point"
        if spec.seeds > 1 else "- **Seeds:** 1 (the authors ran one)",
        f"- **Runs:** {len(recs)} finished of {n_runs(spec)} planned; "
        f"{sum(r.failed for r in rows)} failed; training wall time {total_s / 60:.1f} min "
        "(sum over runs of the training epochs, per-step validation included)",
        f"- **Hardware:** {'; '.join(hw) if hw else 'no runs yet'}",
    ]
    return lines


def render_markdown(state: GridState, rows: Sequence[SummaryRow], figures: Mapping[str, Mapping[str, Any]] = (),
                    today: Optional[str] = None) -> str:
    spec = state.spec
    partial = spec.budget != "paper" or any(r.val is None for r in rows)
    out = io.StringIO()
    w = out.write
    w(f"# Gated neural ODEs: flip-flop tasks (budget: {spec.budget})" + (" — PARTIAL" if partial else "") + "\n\n")
    w("Kim, Can & Krishnamurthy, ICML 2023 (gnODE). **No number of the paper is known** "
      "(../shared/reference/gnode.md G11): this table reports what ctbench measured and has nothing "
      "published to compare with.\n\n")
    for line in _budget_lines(state, rows):
        w(line + "\n")
    w(f"- **Date:** {today or _dt.date.today().isoformat()}\n")
    if partial:
        w("- **PARTIAL:** " + (f'budget "{spec.budget}" is not the paper budget' if spec.budget != "paper" else "")
          + ("; some (task, model) have no finished run" if any(r.val is None for r in rows) else "") + "\n")
    w("\n| Task | Model | N | Params | Selected (seed 0) | Val MSE ± (n) | Test MSE ± (n) | Best step / steps | s/epoch | Train min |\n")
    w("|---|---|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        n = r.val.n if r.val else 0
        steps = "—" if not r.best_steps else f"{', '.join(str(s) for s in r.best_steps)} / {r.steps_per_run}"
        secs = f"{r.val.seconds_per_epoch:.2f}" if r.val and r.val.seconds_per_epoch is not None else "—"
        fail = f" ({r.failed} failed)" if r.failed else ""
        w(f"| {r.task.name} | `{r.model}` | {r.task.hidden(r.model)} | {r.n_parameters if r.n_parameters else '—'} | "
          f"{r.point.label() if r.point else 'not run' + fail} | {_pm(r.val)} ({n}) | {_pm(r.test)} ({r.test.n if r.test else 0}) | "
          f"{steps} | {secs} | {r.train_seconds / 60:.1f} |\n")
    w("\n## Grid (seed 0)\n\n| Task | Model | Grid point | Val MSE (selected) | Test MSE | Best step | Status |\n|---|---|---|---|---|---|---|\n")
    sel = select(state)
    for run, rid, rec, fail in state.runs:
        if run.seed != 0:
            continue
        status = "selected" if sel.get((run.task.name, run.model)) == run.point else ""
        if rec is None:
            status = f"failed ({fail.get('error_type')})" if fail else "not run"
        val = _mse(selected_value(rec)) if rec else "—"
        test = _mse(float(rec["test_metric"])) if rec else "—"
        step = str(int((rec.get('metrics') or {}).get(STEP_BEST_AT, -1))) if rec else "—"
        w(f"| {run.task.name} | `{run.model}` | {run.point.label()} | {val} | {test} | {step} | {status} |\n")
    if figures:
        f0 = next(iter(figures.values()))
        w("\n## Learned attractors of the 2-D gnODE (one figure per 2-bit task)\n\n")
        w("| Task | Figure | Fixed points (stable) | Slow points | Target covered | Slow points on target | Val MSE |\n|---|---|---|---|---|---|---|\n")
        for task, f in figures.items():
            w(f"| {task} | [{Path(f['figure']).name}](../figures/{Path(f['figure']).name}) | {f['n_fixed']} ({f['n_stable']}) | "
              f"{f['n_slow']} | {100 * f['coverage']:.0f}% | {100 * f['precision']:.0f}% | {f['val_mse']:.4f} |\n")
        w("\nFrom the selected seed-0 gnODE of each task (`ctbench.gnode_attractor`): the speed "
          "‖dh/dt‖ of the input-free flow is minimised from many starts; fixed points have speed "
          f"< {f0['fixed_tol']:g}, slow points < {f0['slow_tol']:g} "
          "per bin, both in output units (y = C h + d). \"Target covered\": the share of points "
          "sampled on the target attractor within "
          f"{f0['radius']:g} of a slow point; \"slow points on target\": the share of "
          "slow points within that distance of the target set.\n")
    w("\n## Notes\n\n")
    notes = [
        "Protocol (gnode.md G3, G5): the authors' generator (600 trials x 100 bins, seed 8 on NumPy's "
        "PCG64, not Julia's stream), trials 1-500 train, 501-600 validation; AdamW (torch = Flux ADAMW, "
        "decay on every parameter), no clipping, no schedule, batches in fixed order; the validation MSE "
        "before every optimiser step selects the parameters (the authors' callback). Val MSE is that "
        "selected value; Test MSE is the selected parameters on 100 fresh trials (data.test_seed; the "
        "authors have no test set).",
        "Selection across the grid: the point with the lowest selected validation MSE at seed 0; the "
        "other seeds rerun that point only (the authors ran one seed, and which grid point the paper "
        "reports is not known). ± is the population std (ddof 0) over seeds.",
        "Models (gnode.md G2.2): RNN `rnn_gnode`, mGRU `mgru`, the authors' GRU `gru_gnode`, nODE `node`, "
        "gnODE `gnode`; Euler at alpha = dt/tau = 1; h0 = A x_1 + c (the encoder) except variable3's "
        "fixed random h0; F of nODE/gnODE [316, 316] (2-bit) or [100, 100, 100] (3-bit). Parameter counts "
        "are every trainable parameter (core + readout + h0 encoder). The models are not parameter-matched.",
        "Best step: the optimiser step whose parameters were selected, per seed; steps: optimiser steps per run.",
    ]
    late = [f"{r.task.name}/{r.model}" for r in rows
            if r.best_steps and r.steps_per_run and min(r.best_steps) >= 0.95 * r.steps_per_run]
    if late:
        notes.append(f"Still improving when the budget ended (every seed's best step in the last 5% of its steps): "
                     f"{', '.join(late)}. These are early-training numbers, not converged ones.")
    for i, n in enumerate(notes, 1):
        w(f"{i}. {n}\n")
    return out.getvalue()


_CSV_FIELDS = ["budget", "task", "model", "lr", "weight_decay", "batch_size", "seed", "selected",
               "val_mse", "test_mse", "best_step", "epochs", "n_parameters", "seconds_per_epoch",
               "seconds_train_total", "status", "run_id"]


def render_csv(state: GridState) -> str:
    sel = select(state)
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, lineterminator="\n")
    wr.writeheader()
    for run, rid, rec, fail in state.runs:
        rec = rec or {}
        wr.writerow({
            "budget": state.spec.budget, "task": run.task.name, "model": run.model, "lr": run.point.lr,
            "weight_decay": run.point.weight_decay, "batch_size": run.point.batch_size, "seed": run.seed,
            "selected": sel.get((run.task.name, run.model)) == run.point,
            "val_mse": selected_value(rec) if rec else "", "test_mse": rec.get("test_metric", ""),
            "best_step": (rec.get("metrics") or {}).get(STEP_BEST_AT, ""), "epochs": rec.get("epochs", ""),
            "n_parameters": rec.get("n_parameters", ""), "seconds_per_epoch": rec.get("seconds_per_epoch", ""),
            "seconds_train_total": rec.get("seconds_train_total", ""),
            "status": "finished" if rec else ("failed" if fail else "not run"), "run_id": rid,
        })
    return buf.getvalue()


def figure_summaries(fig_dir: Path | str, spec: GridSpec) -> Dict[str, dict]:
    """The attractor summaries (``gnode_<task>_attractor.json``) of this budget's 2-bit gnODE runs."""
    out = {}
    for task, models in spec.tasks:
        path = Path(fig_dir) / f"gnode_{task.name}_attractor.json"
        if "gnode" in models and task.name in TWO_BIT and path.is_file():
            summary = json.loads(path.read_text())
            if summary.get("budget") == spec.budget:
                out[task.name] = summary
    return out


def render(spec: GridSpec, runs_dir: Path | str = DEFAULT_RUNS_DIR, out_dir: Path | str = DEFAULT_OUT_DIR,
           fig_dir: Path | str = DEFAULT_FIG_DIR, *, composer: Optional[Composer] = None,
           extra: Sequence[str] = (), today: Optional[str] = None) -> Tuple[Path, Path]:
    """Write ``<out_dir>/gnode_flipflop.md`` and ``.csv`` from the run records; return their paths."""
    extra = [f"paths.runs_dir={Path(runs_dir).as_posix()}", *extra]
    state = collect(spec, runs_dir, composer, extra)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv_path = out_dir / f"{TABLE_NAME}.md", out_dir / f"{TABLE_NAME}.csv"
    md.write_text(render_markdown(state, table_rows(state), figure_summaries(fig_dir, spec), today), encoding="utf-8")
    csv_path.write_text(render_csv(state), encoding="utf-8")
    return md, csv_path


# =========================================================================== CLI


def reproduce(budget: str, runs_dir: Path | str = DEFAULT_RUNS_DIR, out_dir: Path | str = DEFAULT_OUT_DIR,
              fig_dir: Path | str = DEFAULT_FIG_DIR, extra: Sequence[str] = (), *,
              runner: Optional[Runner] = None, log: Callable[[str], None] = print) -> Tuple[Path, Path]:
    """``make reproduce-gnode``: the grid, one attractor figure per 2-bit task, the table."""
    from ctbench.gnode_attractor import figures_for_grid

    spec = load_spec(budget)
    state = run_grid(spec, runs_dir, extra, runner=runner, log=log)
    for path in figures_for_grid(state, runs_dir, fig_dir):
        log(f"[gnode {budget}] figure {path}")
    md, csv_path = render(spec, runs_dir, out_dir, fig_dir, extra=extra)
    log(f"[gnode {budget}] rendered {md} and {csv_path}")
    return md, csv_path


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ctbench.gnode_grid", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=("reproduce", "run", "render", "plan"))
    ap.add_argument("--budget", default="smoke", help="a budget of conf/gnode/flipflop.yaml")
    ap.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR)
    ap.add_argument("--out-dir", default=DEFAULT_OUT_DIR)
    ap.add_argument("--fig-dir", default=DEFAULT_FIG_DIR)
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run (runtime.num_threads=1, ...)")
    args, extra = ap.parse_known_args(argv)  # Hydra overrides may also come after the options
    if any(e.startswith("-") for e in extra):
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = list(args.overrides) + extra
    try:
        spec = load_spec(args.budget)
    except GridError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.command == "plan":
        for run in stage_one(spec, args.overrides):
            print(run.label)
        print(f"{n_runs(spec)} runs in all ({spec.seeds - 1} more seed(s) per (task, model) after selection)")
    elif args.command == "run":
        run_grid(spec, args.runs_dir, args.overrides)
    elif args.command == "render":
        md, csv_path = render(spec, args.runs_dir, args.out_dir, args.fig_dir, extra=args.overrides)
        print(f"wrote {md}, {csv_path}")
    else:
        reproduce(args.budget, args.runs_dir, args.out_dir, args.fig_dir, args.overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
