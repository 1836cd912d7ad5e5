"""``make bench``: training-step, inference, per-epoch and memory cost of every table model, the
paper's speed ratios beside ours, and ctbench's CfC against ncps's and torch's LSTM.

All models of one comparison (one dataset; the fast-CfC group) are built in this one process and
timed round-robin (:func:`ctbench.bench.timing.time_interleaved`), so their ratios are taken under
the same conditions. Seconds per epoch are estimated as median training-step time x steps per
epoch (data loading and validation excluded). Memory: on CUDA the peak torch allocation of a
training step; on CPU, where torch keeps no peak, the bytes autograd saves for the backward pass.
"""

from __future__ import annotations

import csv
import gc
import math
import os
import resource
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ctbench.bench.cases import Case, DataShape, build_case, shapes_from
from ctbench.bench.references import (
    FusedLSTM, GemmFloor, NcpsCfCLoop, Profile, ScriptedCfC, compile_fast_step, profile_step,
)
from ctbench.bench.timing import Timing, cuda_peak_bytes, environment, saved_tensor_bytes, time_interleaved, time_once
from ctbench.config import compose
from ctbench.published import Row, Table, load_table

MIB = 2.0**20


@dataclass
class Measurement:
    """One model at one dataset's shapes (a CSV row)."""

    section: str  # table | fast_cfc
    data: str
    label: str
    model: str
    overrides: str
    batch_size: int
    seq_len: int
    params: int
    train_ms: float
    train_cpu_ms: float
    train_spread: float
    first_call_s: float
    infer_ms: float
    steps_per_epoch: int
    epoch_s: float
    memory_mib: float
    memory_kind: str
    nfe_per_forward: Optional[float]
    published_min: Optional[float]
    error: str = ""


@dataclass(frozen=True)
class Entry:
    """A model to measure: label, model config, Hydra overrides and its published row (if any)."""

    label: str
    model: str
    overrides: Tuple[str, ...] = ()
    row: Optional[Row] = None

    @property
    def key(self) -> Tuple[str, Tuple[str, ...]]:
        return self.model, tuple(sorted(self.overrides))


def published_ratio(model_row: Optional[Row], ref_row: Optional[Row], remove_calibration: bool = False) -> Optional[float]:
    """Ratio of two rows' printed minutes per epoch; with ``remove_calibration`` each time is first
    divided by its row's calibration factor (the CfC PhysioNet rows' x1.34)."""
    if model_row is None or ref_row is None or model_row.time_min is None or ref_row.time_min is None:
        return None
    model_min, ref_min = model_row.time_min, ref_row.time_min
    if remove_calibration:
        model_min /= model_row.calibration or 1.0
        ref_min /= ref_row.calibration or 1.0
    return model_min / ref_min


def _row(table: Optional[Table], name: str) -> Optional[Row]:
    if table is None:
        return None
    try:
        return table.row(name)
    except KeyError:
        return None


def _memory(case: Case, device: torch.device) -> Tuple[float, str]:
    if device.type == "cuda":
        return cuda_peak_bytes(case.train_step, device) / MIB, "peak allocated (CUDA)"
    case.model.train()
    _, saved = saved_tensor_bytes(case.forward)
    return saved / MIB, "saved for backward (CPU)"


def measure_cases(
    cases: Dict[str, Case], device: torch.device, warmup: int, repeats: int, section: str,
    published: Dict[str, Optional[float]], extra: Optional[Dict[str, Callable[[], object]]] = None,
) -> List[Measurement]:
    """Time every case's training step and inference round-robin; ``extra`` callables (no model)
    are timed beside the training steps."""
    first: Dict[str, Timing] = {name: Timing() for name in cases}
    for name, case in cases.items():  # the first call (compilation, caches) is reported apart
        time_once(case.train_step, device, first[name])
    steps = {name: case.train_step for name, case in cases.items()}
    steps.update(extra or {})
    train = time_interleaved(steps, device, max(warmup - 1, 0), repeats)
    infer = time_interleaved({n: c.infer for n, c in cases.items()}, device, 1, repeats)
    out: List[Measurement] = []
    for name, t in train.items():
        case = cases.get(name)
        if case is None:  # an extra callable
            out.append(Measurement(section, "", name, "", "", 0, 0, 0, t.median * 1e3, t.cpu_median * 1e3,
                                   t.spread, math.nan, math.nan, 0, math.nan, math.nan, "", None, None))
            continue
        memory, kind = _memory(case, device)
        out.append(Measurement(
            section=section, data=case.data, label=name, model=case.model_name,
            overrides=" ".join(case.overrides), batch_size=case.batch_size,
            seq_len=int(case.batch.x.shape[1]), params=case.n_params,
            train_ms=t.median * 1e3, train_cpu_ms=t.cpu_median * 1e3, train_spread=t.spread,
            first_call_s=first[name].wall[0], infer_ms=infer[name].median * 1e3,
            steps_per_epoch=case.steps_per_epoch, epoch_s=t.median * case.steps_per_epoch,
            memory_mib=memory, memory_kind=kind, nfe_per_forward=case.nfe_per_forward(),
            published_min=published.get(name),
        ))
    return out


def _failed(section: str, data: str, entry: Entry, error: BaseException) -> Measurement:
    nan = math.nan
    return Measurement(section, data, entry.label, entry.model, " ".join(entry.overrides), 0, 0, 0, nan, nan, nan,
                       nan, nan, 0, nan, nan, "", None, entry.row.time_min if entry.row else None,
                       error=f"{type(error).__name__}: {error}".splitlines()[0][:200])


# --------------------------------------------------------------------------- the dataset groups
def _table(cfg: Dict[str, Any], data: str) -> Optional[Table]:
    table_id = cfg.get("tables", {}).get(data)
    return load_table(table_id) if table_id else None


def ratio_entries(cfg: Dict[str, Any], data: str, table: Optional[Table]) -> List[Entry]:
    """The reference (CfC) and the ratio models at ``data``, with the table's column overrides."""
    ratios = cfg.get("ratios", {})
    if data not in ratios.get("datasets", ()):
        return []
    column = table.reproduced_column.overrides if table is not None and table.reproduced_column else ()
    extra = tuple(column) + tuple(cfg.get("overrides", ()))
    return [Entry(spec["label"], spec["model"], tuple(spec.get("overrides", ())) + extra, _row(table, spec["row"]))
            for spec in [ratios["reference"], *ratios["models"]]]


def dataset_entries(cfg: Dict[str, Any], data: str) -> List[Entry]:
    """The table's runnable rows at ``data``, then the ratio models the table lacks (one entry per
    model config and overrides)."""
    table = _table(cfg, data)
    entries: Dict[Tuple[str, Tuple[str, ...]], Entry] = {}
    if table is not None:
        keep = cfg.get("rows")
        for row in table.runnable_rows:
            if keep is None or row.model in keep:
                e = Entry(row.display_name, row.model, tuple(row.overrides) + tuple(cfg.get("overrides", ())), row)
                entries.setdefault(e.key, e)
    for e in ratio_entries(cfg, data, table):
        entries.setdefault(e.key, e)
    return list(entries.values())


def measure_dataset(cfg: Dict[str, Any], data: str, shape: DataShape, device: torch.device) -> List[Measurement]:
    entries = dataset_entries(cfg, data)
    cases: Dict[str, Case] = {}
    failed: List[Measurement] = []
    for e in entries:
        try:
            cases[e.label] = build_case(e.label, data, e.model, shape, device, e.overrides, seed=cfg["seed"])
        except Exception as err:  # a model that cannot be built is reported, not fatal
            failed.append(_failed("table", data, e, err))
    published = {e.label: (e.row.time_min if e.row else None) for e in entries}
    print(f"[bench] {data}: {len(cases)} models, {cfg['repeats']} interleaved repeats", flush=True)
    measured = measure_cases(cases, device, cfg["warmup"], cfg["repeats"], "table", published)
    del cases
    gc.collect()
    return measured + failed


@dataclass
class RatioRow:
    data: str
    label: str
    measured_epoch_s: Optional[float]
    measured_ratio: Optional[float]
    published_min: Optional[float]
    published_ratio: Optional[float]
    published_ratio_uncalibrated: Optional[float]
    calibrated_rows: str


def speed_ratios(cfg: Dict[str, Any], measurements: List[Measurement]) -> List[RatioRow]:
    """Each ratio model's s/epoch over CfC's, beside the published time columns' ratio."""
    out: List[RatioRow] = []
    for data in cfg.get("ratios", {}).get("datasets", ()):
        by_key = {(m.model, tuple(sorted(m.overrides.split()))): m
                  for m in measurements if m.data == data and m.section == "table" and not m.error}
        ref, *models = ratio_entries(cfg, data, _table(cfg, data))
        ref_m = by_key.get(ref.key)
        for e in models:
            m = by_key.get(e.key)
            calibrated = [f"{r.display_name} x{r.calibration:g}" for r in (e.row, ref.row) if r is not None and r.calibration]
            out.append(RatioRow(
                data=data, label=e.label, measured_epoch_s=m.epoch_s if m else None,
                measured_ratio=m.epoch_s / ref_m.epoch_s if m and ref_m else None,
                published_min=e.row.time_min if e.row else None,
                published_ratio=published_ratio(e.row, ref.row),
                published_ratio_uncalibrated=published_ratio(e.row, ref.row, remove_calibration=True) if calibrated else None,
                calibrated_rows=", ".join(calibrated),
            ))
    return out


# --------------------------------------------------------------------------- the fast-CfC group
@dataclass
class FastCfC:
    measurements: List[Measurement]
    ratios: Dict[str, Optional[float]]
    goals: Dict[str, float]
    profile: Optional[Profile]
    floor_gflop: float
    shapes: Dict[str, int]


NCPS, PLAIN, FAST, CONFIGURED, LSTM, FLOOR = (
    "ncps.torch CfC (library)", "ctbench CfC, plain step loop", "ctbench CfC, fast path (default)",
    "ctbench CfC as configured (authors_tf, dropout 0.1), fast path", "torch nn.LSTM (fused)",
    "matrix products only (floor)",
)
VARIANT_LABELS = {"torch_compile": "fast path + torch.compile(fast_step)", "torchscript": "TorchScript time loop (plain ops)"}


def measure_fast_cfc(cfg: Dict[str, Any], shapes: Dict[str, DataShape], device: torch.device) -> FastCfC:
    """ctbench's CfC (impl=ncps: ncps's equations) against ncps's CfC, nn.LSTM and the GEMM floor."""
    spec = cfg["fast_cfc"]
    data, shape = spec["data"], shapes[spec["data"]]
    common = list(cfg.get("overrides", ()))
    run_cfg = compose([f"data={data}", f"model={spec['model']}", *common])
    cell = run_cfg.model.cell
    hidden, units, layers = int(cell.hidden_size), int(cell.backbone_units), int(cell.backbone_layers)
    like_ncps = [*common, "model.cell.impl=ncps"]
    build = lambda label, overrides, transform=None: build_case(  # noqa: E731
        label, data, spec["model"], shape, device, overrides, cfg["seed"], transform)
    cases: Dict[str, Case] = {}
    cases[PLAIN] = build(PLAIN, like_ncps, _plain)
    cases[FAST] = build(FAST, like_ncps)
    cases[CONFIGURED] = build(CONFIGURED, common)
    ref = cases[FAST]
    n_in, n_out = int(ref.batch.x.shape[-1]), int(ref.model.head.out_features)

    def wrap(label: str, module: torch.nn.Module) -> Case:
        return Case(label, data, spec["model"], module.to(device), ref.batch, ref.batch_size, ref.steps_per_epoch)

    failures: List[Measurement] = []
    try:
        torch.manual_seed(cfg["seed"])
        cases[NCPS] = wrap(NCPS, NcpsCfCLoop(n_in, hidden, n_out, units, layers, str(cell.backbone_activation), float(cell.backbone_dropout)))
    except ImportError as err:
        failures.append(_failed("fast_cfc", data, Entry(NCPS, "ncps"), err))
    cases[LSTM] = wrap(LSTM, FusedLSTM(n_in, hidden, n_out))
    for variant in spec.get("variants", ()):
        label = VARIANT_LABELS[variant]
        try:
            if variant == "torch_compile":
                cases[label] = build(label, like_ncps, compile_fast_step)
            else:
                cases[label] = wrap(label, ScriptedCfC(build(label, [*like_ncps, "model.cell.backbone_dropout=0.0"]).model))
        except Exception as err:  # a compiler that is unavailable here is reported, not fatal
            failures.append(_failed("fast_cfc", data, Entry(label, spec["model"]), err))
    floor = GemmFloor(ref.batch_size, shape.seq_len, n_in, hidden, units, n_out, device)
    print(f"[bench] fast CfC: {len(cases) + 1} variants, {cfg['repeats']} interleaved repeats", flush=True)
    measured = []
    try:
        measured = measure_cases(cases, device, cfg["warmup"], cfg["repeats"], "fast_cfc", {}, {FLOOR: floor})
    except Exception as err:  # e.g. torch.compile failing at its first call
        failures.append(_failed("fast_cfc", data, Entry("fast-CfC group", spec["model"]), err))
    by = {m.label: m.train_ms for m in measured}
    ratio = lambda a, b: by[a] / by[b] if a in by and b in by else None  # noqa: E731
    prof = profile_step(cases[FAST].train_step) if spec.get("profile") and device.type == "cpu" else None
    return FastCfC(
        measurements=measured + failures,
        ratios={
            "ncps CfC / ctbench fast": ratio(NCPS, FAST),
            "ctbench fast / nn.LSTM": ratio(FAST, LSTM),
            "ctbench plain / ctbench fast": ratio(PLAIN, FAST),
            "ctbench fast / matrix-product floor": ratio(FAST, FLOOR),
            "ncps CfC / matrix-product floor": ratio(NCPS, FLOOR),
            "matrix-product floor / nn.LSTM": ratio(FLOOR, LSTM),
        },
        goals={"vs_ncps": float(spec["goal_vs_ncps"]), "vs_lstm": float(spec["goal_vs_lstm"])},
        profile=prof, floor_gflop=floor.flops / 1e9,
        shapes={"batch": ref.batch_size, "steps": shape.seq_len, "inputs": n_in, "hidden": hidden, "backbone": units, "outputs": n_out},
    )


def _plain(model: torch.nn.Module) -> torch.nn.Module:
    model.fast_path = False
    return model


# --------------------------------------------------------------------------- the run and its report
@dataclass
class SpeedReport:
    env: Dict[str, str]
    config: Dict[str, Any]
    measurements: List[Measurement]
    ratios: List[RatioRow]
    fast: FastCfC
    note: str


def run_speed(cfg: Dict[str, Any], device: torch.device, note: str = "") -> SpeedReport:
    torch.set_num_threads(int(cfg["threads"]))
    env = environment(device, torch.get_num_threads())
    shapes = shapes_from(cfg["shapes"])
    fast = measure_fast_cfc(cfg, shapes, device)
    datasets = list(dict.fromkeys([*cfg.get("tables", {}), *cfg.get("ratios", {}).get("datasets", ())]))
    measurements: List[Measurement] = []
    for data in datasets:
        measurements += measure_dataset(cfg, data, shapes[data], device)
    env["load average at end (1/5/15 min)"] = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    env["process peak RSS"] = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    return SpeedReport(env, cfg, measurements, speed_ratios(cfg, measurements), fast, note)


def _f(value: Optional[float], fmt: str = "{:.3g}") -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def render_markdown(report: SpeedReport) -> str:
    dev = report.env["device"]
    lines = [f"# ctbench speed report ({dev.upper()})", ""]
    lines += ["Written by `make bench` (`python -m ctbench.bench speed`, config "
              f"`conf/bench/{report.config['name']}.yaml`). Timings are medians of {report.config['repeats']} "
              f"calls after {report.config['warmup']} warm-up call(s), interleaved across the models of each "
              "comparison, in one process. Seconds per epoch = median training-step time x steps per "
              "epoch (ceil(training samples / batch size)); data loading and validation excluded. A training "
              "step is forward, a mean-square loss on the outputs, backward and an Adam step; inference is "
              "one forward pass in eval mode without autograd. Inputs are random tensors of each dataset's "
              "shapes; models, batch sizes and hyperparameters come from the experiment configs.", ""]
    if report.note:
        lines += [f"**Conditions:** {report.note}", ""]
    lines += _md_table(["", ""], [[k, v] for k, v in report.env.items()]) + [""]
    lines += _fast_section(report.fast, dev) + [""]
    lines += _ratio_section(report.ratios) + [""]
    lines += _table_sections(report.measurements, dev)
    return "\n".join(lines) + "\n"


def _fast_section(fast: FastCfC, dev: str) -> List[str]:
    s = fast.shapes
    lines = ["## A fast CfC: training step at the Walker2d CfC shapes", "",
             f"Batch {s['batch']}, {s['steps']} steps, {s['inputs']} inputs, {s['hidden']} hidden, backbone "
             f"{s['backbone']} (silu, one layer), {s['outputs']} outputs, per-sample elapsed times. "
             "`impl=ncps` computes ncps's equations (tests/test_cells_cfc.py holds them to 5e-7), so "
             "the first three rows do the same arithmetic. The floor runs only the matrix products of one "
             f"such training step ({fast.floor_gflop:.2f} GFLOP).", ""]
    rows = []
    for m in fast.measurements:
        if m.error:
            rows.append([m.label, "failed: " + m.error, "", "", "", ""])
            continue
        rows.append([m.label, _f(m.train_ms, "{:.1f}"), _f(m.train_cpu_ms, "{:.1f}"), _f(m.infer_ms, "{:.1f}"),
                     _f(m.first_call_s, "{:.2f}"), _f(m.memory_mib, "{:.0f}")])
    lines += _md_table(["model", "train step ms", "CPU ms" if dev == "cpu" else "host CPU ms", "inference ms",
                        "first call s", "memory MiB"], rows) + [""]
    r, g = fast.ratios, fast.goals
    lines += _md_table(["ratio (same run)", "value", "goal"], [
        ["ncps CfC / ctbench fast (speed-up)", _f(r["ncps CfC / ctbench fast"], "{:.2f}x"), f">= {g['vs_ncps']:g}x " + _goal(r["ncps CfC / ctbench fast"], lambda v: v >= g["vs_ncps"])],
        ["ctbench fast / nn.LSTM", _f(r["ctbench fast / nn.LSTM"], "{:.2f}x"), f"<= {g['vs_lstm']:g}x " + _goal(r["ctbench fast / nn.LSTM"], lambda v: v <= g["vs_lstm"])],
        ["ctbench plain / ctbench fast", _f(r["ctbench plain / ctbench fast"], "{:.2f}x"), ""],
        ["ctbench fast / matrix-product floor", _f(r["ctbench fast / matrix-product floor"], "{:.2f}x"), ""],
        ["ncps CfC / matrix-product floor (best speed-up any loop rewrite can reach)", _f(r["ncps CfC / matrix-product floor"], "{:.2f}x"), ""],
        ["matrix-product floor / nn.LSTM", _f(r["matrix-product floor / nn.LSTM"], "{:.2f}x"), ""],
    ]) + [""]
    if fast.profile is not None:
        p = fast.profile
        lines += [f"Profile of the fast path's training step (torch.profiler, CPU self time): matrix products "
                  f"{p.matmul_share:.0%}, other ATen operators (elementwise, copies, reductions) "
                  f"{p.other_aten_share:.0%}, outside ATen (autograd engine, Python autograd Functions, "
                  f"optimiser) {p.overhead_share:.0%}. Top operators:", ""]
        lines += _md_table(["operator", "ms per step (profiled)", "calls per step"],
                           [[f"`{k}`", f"{ms:.1f}", str(n)] for k, ms, n in p.top])
    return lines


def _goal(value: Optional[float], test: Callable[[float], bool]) -> str:
    return "" if value is None else ("(met)" if test(value) else "(not met)")


def _ratio_section(ratios: List[RatioRow]) -> List[str]:
    lines = ["## The paper's speed ratios, measured", "",
             "Per-epoch time of each model over CfC's at the same dataset's shapes (each at its own "
             "experiment batch size), beside the ratio of the published time-per-epoch columns. The "
             "PhysioNet CfC-family times were printed x1.34 'calibrated' to mTAN's GPU; the last column "
             "divides that factor back out of the printed times. It is never applied to a measurement.", ""]
    rows = [[r.data, r.label, _f(r.measured_epoch_s, "{:.2f}"), _f(r.measured_ratio, "{:.1f}x"),
             _f(r.published_min, "{:g}"), _f(r.published_ratio, "{:.1f}x"),
             _f(r.published_ratio_uncalibrated, "{:.1f}x") + (f" ({r.calibrated_rows})" if r.calibrated_rows else "")]
            for r in ratios]
    return lines + _md_table(["dataset", "model", "measured s/epoch", "measured / CfC", "published min/epoch",
                              "published / CfC (as printed)", "published / CfC, x1.34 removed"], rows)


def _table_sections(measurements: List[Measurement], dev: str) -> List[str]:
    lines: List[str] = []
    for data in dict.fromkeys(m.data for m in measurements if m.section == "table"):
        lines += [f"## Every model at the {data} shapes", ""]
        rows = []
        for m in (m for m in measurements if m.data == data and m.section == "table"):
            if m.error:
                rows.append([m.label, f"`{m.model}`", "failed: " + m.error] + [""] * 9)
                continue
            rows.append([m.label, f"`{m.model}`" + (f" `{m.overrides}`" if m.overrides else ""), str(m.batch_size),
                         str(m.seq_len), f"{m.params:,}", _f(m.train_ms, "{:.1f}"), _f(m.train_cpu_ms, "{:.1f}"),
                         _f(m.infer_ms, "{:.1f}"), str(m.steps_per_epoch), _f(m.epoch_s, "{:.1f}"),
                         _f(m.published_min, "{:g}"), _f(m.memory_mib, "{:.0f}"), _f(m.nfe_per_forward, "{:.0f}")])
        kind = next((m.memory_kind for m in measurements if m.memory_kind), "")
        lines += _md_table(["model", "config", "batch", "steps", "params", "train step ms", "CPU ms",
                            "inference ms", "steps/epoch", "s/epoch (est.)", "published min/epoch",
                            f"memory MiB, {kind}", "NFE per forward"], rows) + [""]
    return lines


def write_csv(report: SpeedReport, path: Path) -> None:
    names = [f.name for f in fields(Measurement)]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["device", *names])
        w.writeheader()
        for m in [*report.fast.measurements, *report.measurements]:
            w.writerow({"device": report.env["device"], **asdict(m)})


def write_figure(report: SpeedReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 5.5), gridspec_kw={"width_ratios": [1, 1.5]})
    fast = [m for m in report.fast.measurements if not m.error]
    ax1.barh([m.label for m in fast], [m.train_ms for m in fast], color="tab:blue")
    ax1.invert_yaxis()
    ax1.set_xlabel("training step, ms (median)")
    ax1.set_title(f"CfC at Walker2d shapes ({report.env['device']})")
    ax1.tick_params(axis="y", labelsize=7)
    rows = [r for r in report.ratios if r.measured_ratio is not None or r.published_ratio is not None]
    xs = range(len(rows))
    nan = float("nan")
    ax2.bar([x - 0.2 for x in xs], [r.measured_ratio or nan for r in rows], 0.4, label="measured here")
    ax2.bar([x + 0.2 for x in xs], [r.published_ratio or nan for r in rows], 0.4, label="published (as printed)")
    ax2.set_xticks(list(xs), [f"{r.label}\n{r.data}" for r in rows], rotation=60, ha="right", fontsize=7)
    ax2.set_yscale("log")
    ax2.axhline(1.0, color="grey", lw=0.8)
    ax2.set_ylabel("time per epoch / CfC's")
    ax2.set_title("speed ratios over CfC")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(report: SpeedReport, out_dir: Path) -> List[Path]:
    """speed.md, speed.csv and speed.png (``speed_cuda.*`` for a CUDA run) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "speed" if report.env["device"] == "cpu" else f"speed_{report.env['device']}"
    paths = [out_dir / f"{stem}.md", out_dir / f"{stem}.csv", out_dir / f"{stem}.png"]
    paths[0].write_text(render_markdown(report))
    write_csv(report, paths[1])
    write_figure(report, paths[2])
    return paths


__all__ = ["Measurement", "RatioRow", "SpeedReport", "published_ratio", "run_speed", "write_report"]
