"""Hyperparameter sweeps: a small standalone Optuna driver that composes ctbench's Hydra configs.

Why not Hydra's Optuna sweeper plugin: it pins ``optuna<3``, blocks per batch, cannot prune and
cannot resume without storage, and one crashed trial kills the sweep (lessons.md §5.2, R14).

``conf/sweep/<name>.yaml`` describes one sweep::

    base: [data=walker2d, model=cfc, budget=quick, protocol=clean]   # overrides every trial gets
    n_trials: 40          # total over every resumed invocation (completed + pruned + failed)
    timeout: null         # seconds for one invocation, or null
    seed: 0               # the TPE sampler's seed
    objective: val        # val (default) | test: which split's metric the study optimises
    enqueue_base: true    # trial 0 = the base config's own values (the authors' hyperparameters)
    pruner: {n_startup_trials: 5, n_warmup_steps: 1}                  # optuna MedianPruner
    space:
      optim.lr: {type: float, low: 1.0e-3, high: 5.0e-2, log: true}
      model.cell.backbone_layers: {type: int, low: 1, high: 3}
      model.cell.backbone_activation: {type: categorical, choices: [silu, lecun_tanh]}

The direction follows the data module's metric (mse: minimize; accuracy, auroc: maximize). Each
trial is one ``ctbench.train.run``: its record (``<sweep dir>/runs/<run_id>.json``, kept apart from
``results/runs`` so that tables never aggregate a sweep's trials) is reused when the same config
comes again, and its id goes in the trial's user attrs; the trials share the W&B group
``sweep-<name>``. A trial that raises any Exception (NonFiniteLossError, an OOM, a solver
underflow) is recorded as failed with its message; the sweep goes on. KeyboardInterrupt stops
the sweep; the study is in its storage (sqlite ``results/sweeps/<name>.db`` by default, any
SQLAlchemy URL with ``--storage``) and the same command resumes it. At the end the best trial
is exported as ``conf/experiment/<data>_<model>_<sweep>.yaml`` and a report is written to
``results/sweeps/<name>.md`` (with ``<name>_history.png``).

Command line::

    python -m ctbench.sweep walker2d_cfc --trials 40 [--timeout S] [--storage URL] [overrides...]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import yaml

__all__ = [
    "PruningCallback",
    "SweepSpec",
    "SweepResult",
    "export_best",
    "load_spec",
    "main",
    "merge_overrides",
    "run_sweep",
    "write_report",
]

DEFAULT_OUT_DIR = "results/sweeps"
PARAM_TYPES = ("float", "int", "categorical")
#: trial user attribute set when Ctrl-C stopped the trial: it is not counted towards n_trials
INTERRUPTED = "interrupted"


class SweepError(ValueError):
    """A sweep file is malformed or names something unknown (the message says which)."""


# =========================================================================== spec


@dataclass
class Param:
    key: str  # a Hydra override key, e.g. optim.lr or ++model.cell.forget_bias
    type: str
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    step: Optional[float] = None
    choices: tuple = ()

    @property
    def name(self) -> str:
        """The config key without Hydra's ``+``/``++`` prefix (the Optuna parameter name)."""
        return self.key.lstrip("+~")

    def suggest(self, trial: Any) -> Any:
        if self.type == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_categorical(self.name, list(self.choices))

    def contains(self, value: Any) -> bool:
        if self.type == "categorical":
            return value in self.choices
        try:
            return self.low <= float(value) <= self.high
        except (TypeError, ValueError):
            return False


@dataclass
class SweepSpec:
    name: str
    path: Optional[Path]
    base: List[str]
    space: List[Param]
    n_trials: int = 20
    timeout: Optional[float] = None
    seed: int = 0
    objective: str = "val"
    enqueue_base: bool = False
    pruner: Dict[str, Any] = field(default_factory=dict)
    notes: str = ""


def sweep_dir() -> Path:
    from ctbench.config import conf_dir

    return conf_dir() / "sweep"


def known_sweeps() -> List[str]:
    folder = sweep_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _parse_param(key: str, raw: Any, where: str) -> Param:
    if not isinstance(raw, Mapping):
        raise SweepError(f"{where}: space.{key} must be a mapping with a type")
    kind = raw.get("type")
    if kind not in PARAM_TYPES:
        raise SweepError(f"{where}: space.{key}: unknown type {kind!r}; known: {', '.join(PARAM_TYPES)}")
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SweepError(f"{where}: space.{key}: a categorical parameter needs a non-empty choices list")
        return Param(key, kind, choices=tuple(choices))
    if raw.get("low") is None or raw.get("high") is None:
        raise SweepError(f"{where}: space.{key}: a {kind} parameter needs low and high")
    low, high = float(raw["low"]), float(raw["high"])
    if not low <= high:
        raise SweepError(f"{where}: space.{key}: low {low} > high {high}")
    log = bool(raw.get("log", False))
    if log and low <= 0:
        raise SweepError(f"{where}: space.{key}: log scale needs low > 0")
    return Param(key, kind, low=low, high=high, log=log, step=raw.get("step"))


def load_spec(name_or_path: str | Path) -> SweepSpec:
    """``conf/sweep/<name>.yaml``, or a path to a sweep file."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = sweep_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise SweepError(f"unknown sweep {name_or_path!r}; known: {', '.join(known_sweeps()) or 'none'} "
                             f"(conf/sweep/<name>.yaml)")
    raw = yaml.safe_load(path.read_text()) or {}
    where = str(path)
    space = raw.get("space") or {}
    if not isinstance(space, Mapping) or not space:
        raise SweepError(f"{where}: needs a non-empty space: mapping of override key -> parameter")
    objective = raw.get("objective", "val")
    if objective not in ("val", "test"):
        raise SweepError(f"{where}: objective must be val or test, got {objective!r}")
    return SweepSpec(
        name=str(raw.get("name") or path.stem),
        path=path,
        base=[str(o) for o in raw.get("base") or []],
        space=[_parse_param(str(k), v, where) for k, v in space.items()],
        n_trials=int(raw.get("n_trials", 20)),
        timeout=raw.get("timeout"),
        seed=int(raw.get("seed", 0)),
        objective=objective,
        enqueue_base=bool(raw.get("enqueue_base", False)),
        pruner=dict(raw.get("pruner") or {}),
        notes=str(raw.get("notes") or ""),
    )


# =========================================================================== overrides


def _override_key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def merge_overrides(*lists: Sequence[str]) -> List[str]:
    """Concatenate override lists; a later override of the same key replaces an earlier one."""
    merged: Dict[str, str] = {}
    for overrides in lists:
        for o in overrides:
            key = _override_key(o)
            merged.pop(key, None)
            merged[key] = o
    return list(merged.values())


def hydra_value(value: Any) -> str:
    """A Python value as Hydra's override grammar reads it back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if text.replace("_", "").replace("-", "").replace(".", "").isalnum():
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# =========================================================================== pruning


class PruningCallback:
    """Reports each epoch's validation metric to the Optuna trial; prunes when it says so.

    A ``pytorch_lightning.Callback`` (made in :func:`pruning_callback` so that importing this
    module does not import Lightning).
    """


def pruning_callback(trial: Any, monitor: str):
    import pytorch_lightning as pl

    class _Pruning(pl.Callback, PruningCallback):
        def __init__(self) -> None:
            self.trial, self.monitor = trial, monitor

        def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if trainer.sanity_checking:
                return
            value = trainer.callback_metrics.get(self.monitor)
            if value is None or not math.isfinite(float(value)):
                return
            epoch = int(trainer.current_epoch)
            self.trial.report(float(value), step=epoch)
            if self.trial.should_prune():
                import optuna

                raise optuna.TrialPruned(f"{self.monitor} = {float(value):.6g} at epoch {epoch}")

    return _Pruning()


# =========================================================================== the sweep


@dataclass
class SweepResult:
    name: str
    storage: str
    study: Any
    counts: Dict[str, int]
    export_path: Optional[Path]
    report_path: Path
    history_png: Path
    runs_dir: Path


def wandb_group(name: str) -> str:
    """The W&B group every trial of sweep ``name`` logs to (a later ``logger.wandb.group=`` wins)."""
    return f"sweep-{name}"


def _default_storage(out_dir: Path, name: str) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(out_dir / f'{name}.db').resolve().as_posix()}"


def _safe_url(url: str) -> str:
    """The storage URL without a password (the report and the export file are shared)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is shown as given
        return url


def _counted(trial: Any) -> bool:
    from optuna.trial import TrialState

    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) and not trial.user_attrs.get(INTERRUPTED)


def trial_counts(study: Any) -> Dict[str, int]:
    from optuna.trial import TrialState

    counts = {"complete": 0, "pruned": 0, "failed": 0, "interrupted": 0, "running": 0}
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(INTERRUPTED):
            counts["interrupted"] += 1
        elif t.state == TrialState.COMPLETE:
            counts["complete"] += 1
        elif t.state == TrialState.PRUNED:
            counts["pruned"] += 1
        elif t.state == TrialState.FAIL:
            counts["failed"] += 1
        elif t.state == TrialState.RUNNING:
            counts["running"] += 1
    return counts


def objective_value(record: Mapping[str, Any], metric: str, objective: str) -> float:
    """The number the study optimises, from a run record.

    ``val``: the validation metric of the epoch the run tests (the best one under a protocol that
    selects on validation, else the last one); ``test``: the test metric (a leak when the sweep's
    result is then judged on the same test set: use it only knowingly).
    """
    if objective == "test":
        return float(record["test_metric"])
    cfg_protocol = (record.get("config") or {}).get("protocol") or {}
    if cfg_protocol.get("select") == "best_val" and record.get("best_val") is not None:
        return float(record["best_val"])
    value = (record.get("metrics") or {}).get(f"val/{metric}")
    if value is None:
        raise SweepError(
            f"run {record.get('run_id')} has no validation metric val/{metric}: the dataset has no "
            "validation split under this protocol; use protocol=clean or objective: test"
        )
    return float(value)


def run_sweep(
    name_or_path: str | Path,
    n_trials: Optional[int] = None,
    timeout: Optional[float] = None,
    storage: Optional[str] = None,
    overrides: Sequence[str] = (),
    *,
    out_dir: Path | str = DEFAULT_OUT_DIR,
    export_dir: Path | str | None = None,
    runs_dir: Path | str | None = None,
    enqueue: Sequence[Mapping[str, Any]] = (),
    runner: Optional[Callable[..., Dict[str, Any]]] = None,
    log: Optional[Callable[[str], None]] = None,
) -> SweepResult:
    """Run (or resume) a sweep until it holds ``n_trials`` finished trials; export and report.

    ``n_trials`` and ``timeout`` default to the sweep file's. ``overrides`` go after the sweep's
    base overrides (a later one of the same key wins) and before each trial's parameters.
    ``enqueue``: parameter dicts to try first (e.g. a known-bad config in a test). ``runner``
    defaults to :func:`ctbench.train.run` and is called as ``runner(cfg, extra_callbacks=[...])``.
    """
    import optuna

    from ctbench import records
    from ctbench.config import compose
    from ctbench.task import METRIC_DIRECTION

    if runner is None:
        from ctbench.train import run as runner  # type: ignore[no-redef]
    if log is None:
        def log(msg: str) -> None:
            print(msg, flush=True)

    spec = load_spec(name_or_path)
    n_trials = spec.n_trials if n_trials is None else int(n_trials)
    timeout = spec.timeout if timeout is None else timeout
    out_dir = Path(out_dir)
    storage_url = storage or _default_storage(out_dir, spec.name)
    rdir = Path(runs_dir) if runs_dir is not None else out_dir / spec.name / "runs"
    # One W&B group per sweep (logger settings are not part of a run's identity).
    fixed = merge_overrides(
        spec.base, [f"paths.runs_dir={rdir.as_posix()}", f"logger.wandb.group={hydra_value(wandb_group(spec.name))}"], overrides
    )

    base_cfg = compose(fixed)
    rdir = Path(base_cfg.paths.runs_dir)  # a caller's paths.runs_dir override wins
    from ctbench.train import build_datamodule

    metric = build_datamodule(base_cfg).metric
    direction = "minimize" if METRIC_DIRECTION[metric] == "min" else "maximize"
    monitor = f"val/{metric}"

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if storage_url.startswith(("sqlite", "postgresql", "mysql", "oracle", "mssql")):
        store: Any = optuna.storages.RDBStorage(storage_url, heartbeat_interval=60, grace_period=180)
    else:
        store = storage_url
    pr = {"n_startup_trials": 5, "n_warmup_steps": 1, **spec.pruner}
    study = optuna.create_study(
        study_name=spec.name,
        storage=store,
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=spec.seed),
        pruner=optuna.pruners.MedianPruner(**pr),
        load_if_exists=True,
    )
    # A resumed study gets the sampler seeded past its history: the same seed again would replay
    # the first invocation's random start-up points (duplicate trials).
    study.sampler = optuna.samplers.TPESampler(seed=spec.seed + len(study.get_trials(deepcopy=False)))
    study.set_user_attr("sweep_file", str(spec.path) if spec.path else "")
    study.set_user_attr("metric", metric)
    study.set_user_attr("objective", f"{spec.objective}/{metric}")
    study.set_user_attr("base_overrides", fixed)

    if spec.enqueue_base:
        base_params = {}
        for p in spec.space:
            from omegaconf import OmegaConf

            v = OmegaConf.select(base_cfg, p.name, default=None)
            if v is not None and p.contains(v):
                base_params[p.name] = v
        if base_params:
            study.enqueue_trial(base_params, user_attrs={"enqueued": "base"}, skip_if_exists=True)
    for params in enqueue:
        study.enqueue_trial(dict(params), user_attrs={"enqueued": "caller"}, skip_if_exists=True)

    def objective(trial: Any) -> float:
        params = {p.name: p.suggest(trial) for p in spec.space}
        trial_overrides = [f"{p.key}={hydra_value(params[p.name])}" for p in spec.space]
        trial.set_user_attr("overrides", trial_overrides)
        try:
            cfg = compose(merge_overrides(fixed, trial_overrides))
            rid = records.run_id(cfg)
            trial.set_user_attr("run_id", rid)
            path = records.record_path(rdir, rid)
            if path.is_file():  # the same config ran before (a resumed trial, a repeated point)
                import json

                record = json.loads(path.read_text())
                trial.set_user_attr("reused_record", True)
            else:
                log(f"[sweep {spec.name}] trial {trial.number}: run {rid}: " + " ".join(trial_overrides))
                record = runner(cfg, extra_callbacks=[pruning_callback(trial, monitor)])
            value = objective_value(record, metric, spec.objective)
            trial.set_user_attr("test_metric", float(record["test_metric"]))
            if not math.isfinite(value):
                raise FloatingPointError(f"{spec.objective}/{metric} is {value}")
            return value
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr(INTERRUPTED, True)
            raise
        except SystemExit as err:
            # Lightning turns Ctrl-C during fit/test into sys.exit(1) after its graceful shutdown;
            # Optuna would leave that trial RUNNING: record it as interrupted, and stop the sweep.
            trial.set_user_attr(INTERRUPTED, True)
            raise KeyboardInterrupt(f"the trial exited ({err.code})") from err
        except Exception as err:  # noqa: BLE001 - recorded as a failed trial; the sweep goes on
            trial.set_user_attr("error_type", type(err).__name__)
            trial.set_user_attr("error", str(err)[:2000])
            rid = trial.user_attrs.get("run_id")
            if rid:
                _write_failure(rdir, rid, spec.name, trial, err, fixed)
            log(f"[sweep {spec.name}] trial {trial.number} FAILED: {type(err).__name__}: {str(err)[:300]}")
            raise

    def stop_at_target(study: Any, trial: Any) -> None:
        if sum(1 for t in study.get_trials(deepcopy=False) if _counted(t)) >= n_trials:
            study.stop()

    done = sum(1 for t in study.get_trials(deepcopy=False) if _counted(t))
    remaining = max(0, n_trials - done)
    log(f"[sweep {spec.name}] study in {_safe_url(storage_url)}: {done} trial(s) finished, "
        f"{remaining} to go (n_trials={n_trials}), {direction} {spec.objective}/{metric}; records in {rdir}")
    if remaining:
        try:
            study.optimize(objective, n_trials=remaining, timeout=timeout, catch=(Exception,),
                           callbacks=[stop_at_target], gc_after_trial=True)
        except KeyboardInterrupt:
            log(f"[sweep {spec.name}] interrupted: the study is saved in {_safe_url(storage_url)}; "
                "run the same command again to resume")
            raise
    counts = trial_counts(study)
    export_path = None
    if counts["complete"]:
        export_path = export_best(study, spec, base_cfg, storage_url, export_dir)
        log(f"[sweep {spec.name}] best {spec.objective}/{metric} = {study.best_value:.6g} (trial "
            f"{study.best_trial.number}) -> {export_path}")
    report, png = write_report(study, spec, storage_url, out_dir, export_path, counts)
    log(f"[sweep {spec.name}] {counts['complete']} completed, {counts['pruned']} pruned, "
        f"{counts['failed']} failed -> {report}")
    return SweepResult(spec.name, storage_url, study, counts, export_path, report, png, rdir)


def _write_failure(rdir: Path, rid: str, sweep: str, trial: Any, err: BaseException, fixed: Sequence[str]) -> None:
    from ctbench import records

    payload = {
        "run_id": rid, "status": "failed", "sweep": sweep, "trial": trial.number,
        "overrides": list(fixed) + list(trial.user_attrs.get("overrides", [])),
        "error_type": type(err).__name__, "error": str(err), "traceback": traceback.format_exc(),
        "failed_at": records.now_utc(),
    }
    records.write_json_atomic(rdir / f"{rid}{records.FAILED_SUFFIX}", payload)


# =========================================================================== export


def export_name(data: str, model: str, sweep: str) -> str:
    """``<data>_<model>_<sweep>``; a sweep named ``<data>_<model>[...]`` gives ``<data>_<model>_sweep[...]``."""
    prefix = f"{data}_{model}"
    if sweep == prefix or sweep.startswith(prefix + "_"):
        return f"{prefix}_sweep{sweep[len(prefix):]}"
    return f"{prefix}_{sweep}"


def _set_dotted(tree: Dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = tree
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = value


GROUPS = ("data", "model", "trainer", "logger", "budget", "protocol", "experiment")
NOT_EXPORTED = ("paths.", "runtime.", "hydra.", "logger.", "seed", "data.mirror", "data.data_dir")


def export_best(study: Any, spec: SweepSpec, base_cfg: Any, storage_url: str,
                export_dir: Path | str | None = None) -> Path:
    """Write the best trial as a ``# @package _global_`` experiment file; return its path.

    Its values are the base experiment's (the file the trials composed, e.g. walker2d_cfc), then
    the sweep's own value overrides, then the best trial's parameters.
    """
    from omegaconf import OmegaConf

    from ctbench.config import conf_dir

    best = study.best_trial
    data, model = str(base_cfg.data.name), str(base_cfg.model.name)
    name = export_name(data, model, spec.name)
    folder = Path(export_dir) if export_dir is not None else conf_dir() / "experiment"
    base_name = OmegaConf.select(base_cfg, "experiment.name", default=None)
    tree: Dict[str, Any] = {}
    base_file = conf_dir() / "experiment" / f"{base_name}.yaml" if base_name else None
    if base_file is not None and base_file.is_file():
        tree = yaml.safe_load(base_file.read_text()) or {}
    base_source = OmegaConf.select(base_cfg, "experiment.source", default=None)
    for o in study.user_attrs.get("base_overrides", []):
        key, _, raw = o.partition("=")
        key = key.lstrip("+~")
        if key in GROUPS or key.startswith(NOT_EXPORTED) or key == "seed":
            continue
        _set_dotted(tree, key, yaml.safe_load(raw) if raw else None)
    for p in spec.space:
        _set_dotted(tree, p.name, best.params[p.name])
    value = best.value
    counts = trial_counts(study)
    tree["experiment"] = {
        "name": name,
        "source": (f"Optuna sweep {spec.name} (conf/sweep/{spec.name}.yaml), study {study.study_name} in "
                   f"{_safe_url(storage_url)}, trial {best.number}, run {best.user_attrs.get('run_id')}"
                   + (f"; base: {base_source}" if base_source else "")),
        "tables": [],
    }
    swept = ", ".join(p.name for p in spec.space)
    header = [
        "# @package _global_",
        f"# {data} x {model}: best trial of the Optuna sweep \"{spec.name}\", written by ctbench.sweep on "
        f"{_dt.date.today().isoformat()}.",
        f"# Study {study.study_name} ({_safe_url(storage_url)}), trial {best.number}: "
        f"{study.user_attrs.get('objective', 'value')} = {value:.6g} ({study.direction.name.lower()}); "
        f"run record {best.user_attrs.get('run_id')}; {counts['complete']} completed, {counts['pruned']} pruned, "
        f"{counts['failed']} failed trials.",
        f"# Searched: {swept}. Everything else is the base experiment "
        f"({base_name or 'none'}) and the sweep's base overrides.",
        f"# Use: python -m ctbench.train data={data} model={model} experiment={name}",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    body = yaml.safe_dump(tree, sort_keys=False, default_flow_style=False)
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(header) + "\n" + body)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


# =========================================================================== report


def _history_figure(study: Any, path: Path, ylabel: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if done:
        xs = [t.number for t in done]
        ys = [t.value for t in done]
        ax.plot(xs, ys, "o", color="tab:blue", label="completed trial")
        best, run_best = [], None
        better = (lambda a, b: a < b) if study.direction.name == "MINIMIZE" else (lambda a, b: a > b)
        for y in ys:
            run_best = y if run_best is None or better(y, run_best) else run_best
            best.append(run_best)
        ax.step(xs, best, where="post", color="tab:red", label="best so far")
    for state, marker, label in ((TrialState.PRUNED, "x", "pruned (last reported)"),):
        pts = [(t.number, t.intermediate_values[max(t.intermediate_values)]) for t in trials
               if t.state == state and t.intermediate_values]
        if pts:
            ax.plot(*zip(*pts), marker, color="tab:gray", label=label)
    failed = [t.number for t in trials if t.state == TrialState.FAIL and not t.user_attrs.get(INTERRUPTED)]
    for n in failed:
        ax.axvline(n, color="tab:orange", alpha=0.4, lw=1)
    if failed:
        ax.plot([], [], color="tab:orange", alpha=0.4, label="failed trial")
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel)
    ax.set_title(f"Optuna sweep {study.study_name}: optimisation history", fontsize=9)
    ax.grid(alpha=0.3)
    if done or failed:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)


def write_report(study: Any, spec: SweepSpec, storage_url: str, out_dir: Path | str,
                 export_path: Optional[Path], counts: Optional[Dict[str, int]] = None) -> tuple[Path, Path]:
    """``<out_dir>/<name>.md`` and ``<out_dir>/<name>_history.png``."""
    from optuna.trial import TrialState

    out_dir = Path(out_dir)
    counts = counts or trial_counts(study)
    objective = study.user_attrs.get("objective", "value")
    md, png = out_dir / f"{spec.name}.md", out_dir / f"{spec.name}_history.png"
    _history_figure(study, png, objective)
    lines = [f"# Sweep {spec.name}", ""]
    lines.append(f"- **Study:** {study.study_name} in `{_safe_url(storage_url)}`; sweep file `conf/sweep/{spec.name}.yaml`")
    lines.append(f"- **Objective:** {study.direction.name.lower()} {objective}; TPE sampler (seed {spec.seed}), "
                 f"median pruner {spec.pruner or '(defaults)'}")
    lines.append(f"- **Base overrides:** `{' '.join(study.user_attrs.get('base_overrides', []))}`")
    lines.append(f"- **Trials:** {counts['complete']} completed, {counts['pruned']} pruned, {counts['failed']} failed"
                 + (f", {counts['interrupted']} interrupted" if counts["interrupted"] else "")
                 + (f", {counts['running']} running or stale" if counts["running"] else "")
                 + f" (target n_trials = {spec.n_trials} per the sweep file)")
    lines.append(f"- **Date:** {_dt.date.today().isoformat()}")
    lines.append("")
    if counts["complete"]:
        best = study.best_trial
        lines += [f"## Best trial: {best.number}", "",
                  f"- {objective} = {best.value:.6g}; test metric of that run = "
                  f"{best.user_attrs.get('test_metric', float('nan')):.6g}; run record `{best.user_attrs.get('run_id')}`",
                  f"- exported as `{export_path}`" if export_path else "- not exported", "",
                  "| parameter | value |", "|---|---|"]
        lines += [f"| `{k}` | {v!r} |" for k, v in best.params.items()]
        lines.append("")
    else:
        lines += ["No completed trial yet: nothing to export.", ""]
    lines += ["## Parameter importances", ""]
    if counts["complete"] >= 2:
        try:
            import optuna

            imp = optuna.importance.get_param_importances(study)
            lines += ["optuna.importance.get_param_importances (fANOVA) over the completed trials:", "",
                      "| parameter | importance |", "|---|---:|"]
            lines += [f"| `{k}` | {v:.3f} |" for k, v in imp.items()]
        except Exception as err:  # noqa: BLE001 - e.g. every completed trial has the same params
            lines.append(f"Not computed: {type(err).__name__}: {err}")
    else:
        lines.append("Not computed: needs at least 2 completed trials.")
    lines += ["", f"![optimisation history]({png.name})", "", "## Trials", "",
              "| # | state | value | run | parameters / error |", "|---:|---|---:|---|---|"]
    for t in study.get_trials(deepcopy=False):
        state = "interrupted" if t.user_attrs.get(INTERRUPTED) else t.state.name.lower()
        value = f"{t.value:.6g}" if t.state == TrialState.COMPLETE and t.value is not None else "—"
        detail = ", ".join(f"{k}={v!r}" for k, v in t.params.items())
        if t.user_attrs.get("error"):
            detail += f" — {t.user_attrs.get('error_type')}: {str(t.user_attrs['error']).splitlines()[0][:200]}"
        detail = detail.replace("|", "\\|")
        lines.append(f"| {t.number} | {state} | {value} | `{t.user_attrs.get('run_id', '—')}` | {detail} |")
    if spec.notes:
        lines += ["", "## Notes", "", spec.notes.strip()]
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return md, png


# =========================================================================== CLI


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ctbench.sweep", description=__doc__.split("\n\n")[0])
    ap.add_argument("name", nargs="?", help="conf/sweep/<name>.yaml (or a path to a sweep file)")
    ap.add_argument("--trials", type=int, default=None, help="total trials the study should hold (default: the file's n_trials)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds for this invocation (default: the file's)")
    ap.add_argument("--storage", default=None, help="SQLAlchemy URL (default: sqlite:///results/sweeps/<name>.db)")
    ap.add_argument("--out-dir", default=DEFAULT_OUT_DIR, help="report, default storage and trial records")
    ap.add_argument("--export-dir", default=None, help="where the best trial's experiment file goes (default: conf/experiment)")
    ap.add_argument("--list", action="store_true", help="list the known sweeps")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every trial")
    args = ap.parse_intermixed_args(argv)  # options may come after the overrides
    if args.list or not args.name:
        for name in known_sweeps():
            print(name)
        return 0 if args.list else 2
    try:
        res = run_sweep(args.name, args.trials, args.timeout, args.storage, args.overrides,
                        out_dir=args.out_dir, export_dir=args.export_dir)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"report: {res.report_path}" + (f"; best trial exported: {res.export_path}" if res.export_path else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
