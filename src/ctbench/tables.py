"""Re-run a paper table, aggregate its run records and render it beside the published numbers.

Two separate steps:

* :func:`reproduce` runs the missing cells of a table: for every row that names a ctbench model
  and every seed ``0..k-1`` (``k = cfg.budget.seeds``, or the table's ``n`` when that is null) it
  composes the run's config, skips it when ``<runs_dir>/<run_id>.json`` exists, and runs it
  otherwise. A failing run is written as ``<runs_dir>/<run_id>.failed.json`` and the table goes
  on; a killed table resumes where it stopped. It then calls :func:`render`.
* :func:`render` builds ``<out_dir>/<id>.md``, ``.csv`` and ``.png`` from the run records only.

Command line::

    python -m ctbench.tables reproduce 3 --budget smoke --protocol paper
    python -m ctbench.tables render 3 --budget smoke --protocol paper
    python -m ctbench.tables list
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import hashlib
import io
import json
import math
import os
import statistics
import sys
import tempfile
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import yaml

from ctbench.published import NA, Row, Table, TableError, known_tables, load_table
from ctbench.records import FAILED_SUFFIX, load_failures, load_records

__all__ = [
    "ALPHA",
    "CellStats",
    "ReproduceSummary",
    "RowResult",
    "aggregate",
    "cell_stats",
    "main",
    "render",
    "reproduce",
    "welch_verdict",
]

ALPHA = 0.05

WITHIN = "within spread"
BETTER = "better"
WORSE = "worse"
N_LT_2 = "n<2"
NOT_RUN = "not run"
FAILED = "failed"
NO_PUBLISHED = "no published number"
NOT_IN_PAPER = "not in the paper"
NO_PUBLISHED_PM = "no published ±"

DEFAULT_RUNS_DIR = "results/runs"
DEFAULT_OUT_DIR = "results/tables"

_METRIC_NAMES = {"mse": "MSE", "accuracy": "accuracy (%)", "auroc": "AUROC"}

Composer = Callable[[list], Any]
Runner = Callable[[Any], Any]
RunIdFn = Callable[[Any], str]
Loader = Callable[[Path], list]


# =========================================================================== statistics


@dataclass(frozen=True)
class CellStats:
    """Our side of one row: mean ± population std over seeds, n, median seconds per epoch."""

    mean: float
    std: float  # population std, ddof 0 (as the paper's ±)
    n: int
    seconds_per_epoch: float | None  # median over runs
    seeds: tuple[int, ...] = ()
    run_ids: tuple[str, ...] = ()


def cell_stats(
    values: Sequence[float],
    seconds: Sequence[float | None] = (),
    seeds: Sequence[int] = (),
    run_ids: Sequence[str] = (),
) -> CellStats:
    """Mean and population std (ddof 0) of ``values``; median of the known ``seconds``."""
    if not values:
        raise ValueError("cell_stats needs at least one value")
    arr = np.asarray(values, dtype=float)
    secs = [float(s) for s in seconds if s is not None and math.isfinite(float(s))]
    return CellStats(
        mean=float(arr.mean()),
        std=float(arr.std(ddof=0)),
        n=int(arr.size),
        seconds_per_epoch=float(statistics.median(secs)) if secs else None,
        seeds=tuple(seeds),
        run_ids=tuple(run_ids),
    )


def sample_std(pop_std: float, n: int) -> float:
    """Population std (ddof 0) over n values → sample std (ddof 1): × sqrt(n / (n − 1))."""
    return float(pop_std) * math.sqrt(n / (n - 1))


def welch_verdict(
    ours_mean: float,
    ours_std: float,
    ours_n: int,
    pub_mean: float,
    pub_std: float,
    pub_n: int,
    direction: str,
    alpha: float = ALPHA,
) -> tuple[str, float | None]:
    """Welch's t-test of ours against the published cell; both stds are population stds.

    Returns ``(verdict, p)``: "within spread" when p ≥ alpha, else "better" or "worse" by the
    table's direction; "n<2" (p None) when either side has fewer than two runs.
    """
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', got {direction!r}")
    if ours_n < 2 or pub_n < 2:
        return N_LT_2, None
    from scipy.stats import ttest_ind_from_stats

    s1, s2 = sample_std(ours_std, ours_n), sample_std(pub_std, pub_n)
    if s1 == 0.0 and s2 == 0.0:  # no spread on either side: the t statistic is undefined
        p = 1.0 if ours_mean == pub_mean else 0.0
    else:
        with np.errstate(all="ignore"):
            res = ttest_ind_from_stats(ours_mean, s1, ours_n, pub_mean, s2, pub_n, equal_var=False)
        p = float(res.pvalue)
    if not p < alpha:  # also p NaN → no evidence of a difference
        return WITHIN, p
    ours_lower = ours_mean < pub_mean
    return (BETTER if ours_lower == (direction == "lower") else WORSE), p


# =========================================================================== records


def _select(cfg: Any, dotted: str) -> tuple[bool, Any]:
    cur = cfg
    for part in dotted.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.lstrip("-").isdigit() and -len(cur) <= int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return False, None
    return True, cur


def _override_matches(record: dict, override: str) -> bool:
    """Whether a run record was made with ``key=value`` (looked up in its config)."""
    key, _, raw_val = override.partition("=")
    key = key.lstrip("+~")
    found, got = _select(record.get("config") or {}, key)
    if found:
        try:
            want = yaml.safe_load(raw_val)
        except yaml.YAMLError:
            want = raw_val
        if isinstance(got, dict) and "name" in got and not isinstance(want, dict):
            got = got["name"]  # a config-group choice recorded as its content
        return got == want or str(got) == raw_val
    return False


def _matches(record: dict, table: Table, row: Row, budget: str, protocol: str) -> bool:
    return (
        record["status"] == "finished"
        and (record["data"], record["model"], record["budget"], record["protocol"]) == (table.data, row.model, budget, protocol)
        and all(_override_matches(record, o) for o in row.overrides)
    )


# =========================================================================== aggregation


@dataclass
class RowResult:
    row: Row
    pub_n: int | None
    stats: CellStats | None = None
    failures: list[dict] = field(default_factory=list)
    verdict: str = NOT_RUN
    p_value: float | None = None
    diff: float | None = None
    duplicates_dropped: int = 0
    metric_mismatch: int = 0
    stale_dropped: int = 0  # older-config records ignored because current ones exist
    stale_keys: tuple[str, ...] = ()  # set when the shown runs come from an older config


def _failure_matches(f: dict, table: Table, row: Row, budget: str, protocol: str) -> bool:
    if f.get("budget") != budget or f.get("protocol") != protocol:
        return False
    if f.get("table") == table.id and f.get("row") is not None:
        return f.get("row") == row.name
    overrides = list(f.get("overrides") or [])
    return (
        f.get("data") == table.data
        and f.get("model") == row.model
        and all(o in overrides for o in row.overrides)
    )


# Keys of a record's config that do not make it stale: the seed, and the experiment's
# descriptive fields (name, source, the tables it feeds).
_NOT_STALENESS = ("seed", "experiment")


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def config_differences(record_config: dict, current: dict) -> list[str]:
    """Dotted keys whose value differs between a record's config and the current one."""
    a = {k: v for k, v in _flatten(record_config).items() if k.split(".")[0] not in _NOT_STALENESS}
    b = {k: v for k, v in _flatten(current).items() if k.split(".")[0] not in _NOT_STALENESS}
    return sorted(k for k in a.keys() | b.keys() if a.get(k, _MISSING) != b.get(k, _MISSING))


_MISSING = object()

#: (row, seed) -> the identity config that run would have now (None: not judged)
CurrentConfig = Callable[[Row, Any], "dict | None"]


def _staleness(record: dict, current: dict | None) -> list[str]:
    """The keys by which ``record`` is stale; none when either config is unknown."""
    if current is None or not record.get("config"):
        return []
    return config_differences(record["config"], current)


def aggregate(
    table: Table,
    records: Iterable[dict],
    budget: str,
    protocol: str,
    failures: Iterable[dict] = (),
    alpha: float = ALPHA,
    extra_rows: Sequence[Row] = (),
    current_config: CurrentConfig | None = None,
) -> list[RowResult]:
    """One :class:`RowResult` per published row, in the paper's order, from run records only.

    ``extra_rows`` (a user's own models, ``ctbench.compare``) are aggregated the same way, after them.
    ``current_config`` ((row, seed) -> the config that run would have now, as ``records.identity``,
    or None when unknown): records made with another config are stale. A row uses its current records when it has any; a row with
    only stale records shows them, flagged with the keys that changed.
    """
    records = list(records)
    failures = list(failures)
    finished_ids = {r.get("run_id") for r in records if r.get("status", "finished") == "finished"}
    results: list[RowResult] = []
    for row in (*table.rows, *extra_rows):
        rr = RowResult(row=row, pub_n=table.row_n(row))
        if row.model is not None:
            matched = [r for r in records if _matches(r, table, row, budget, protocol)]
            good = [r for r in matched if r.get("metric", table.metric) == table.metric]
            rr.metric_mismatch = len(matched) - len(good)
            if current_config is not None:
                # a record without a config (hand-written, or from before records kept one) is not judged
                diffs = {r.get("run_id"): _staleness(r, current_config(row, r.get("seed", 0))) for r in good}
                fresh = [r for r in good if not diffs[r.get("run_id")]]
                if fresh:
                    rr.stale_dropped = len(good) - len(fresh)
                    good = fresh
                elif good:
                    rr.stale_keys = tuple(sorted({k for r in good for k in diffs[r.get("run_id")]}))
            by_seed: dict[Any, dict] = {}
            for r in sorted(good, key=lambda r: r["created"]):  # newest record wins per seed
                if r.get("test_metric") is None or not math.isfinite(float(r["test_metric"])):
                    continue
                seed = r.get("seed", r.get("run_id"))
                if seed in by_seed:
                    rr.duplicates_dropped += 1
                by_seed[seed] = r
            if by_seed:
                recs = [by_seed[s] for s in sorted(by_seed, key=str)]
                rr.stats = cell_stats(
                    [float(r["test_metric"]) for r in recs],
                    [r.get("seconds_per_epoch") for r in recs],
                    seeds=[r.get("seed") for r in recs],
                    run_ids=[str(r.get("run_id")) for r in recs],
                )
            done_seeds = set(by_seed)
            rr.failures = sorted((
                f for f in failures
                if _failure_matches(f, table, row, budget, protocol)
                and f.get("run_id") not in finished_ids
                and f.get("seed") not in done_seeds
            ), key=lambda f: (str(f.get("seed")), str(f.get("run_id"))))
        _judge(rr, table, alpha)
        results.append(rr)
    return results


def _judge(rr: RowResult, table: Table, alpha: float) -> None:
    row, st = rr.row, rr.stats
    if st is None:
        rr.verdict = FAILED if rr.failures else NOT_RUN
        return
    if not row.in_paper:  # a not_in_paper row: nothing to compare with
        rr.verdict = NOT_IN_PAPER
        return
    if row.mean is None:
        rr.verdict = NO_PUBLISHED
        return
    rr.diff = st.mean - row.mean
    if row.std_value is None or rr.pub_n is None:
        rr.verdict = NO_PUBLISHED_PM
        return
    rr.verdict, rr.p_value = welch_verdict(
        st.mean, st.std, st.n, row.mean, row.std_value, rr.pub_n, table.direction, alpha
    )


def is_partial(table: Table, results: Sequence[RowResult], budget: str) -> bool:
    """PARTIAL: the budget is not "paper", or a runnable row has fewer runs than the table's n."""
    if budget != "paper":
        return True
    for rr in results:
        if rr.row.runnable:
            need = rr.pub_n or table.n or 1
            if rr.stats is None or rr.stats.n < need:
                return True
    return False


# =========================================================================== formatting


def _decimals_of(x: float) -> int:
    s = repr(float(x))
    if "e" in s or "E" in s:
        return 6
    return len(s.split(".")[1].rstrip("0")) if "." in s else 0


def _fmt_pub(x: float | str | None, decimals: int) -> str:
    """A published number at its printed precision (at least the table's decimals)."""
    if x is None:
        return "unknown"
    if isinstance(x, str):
        return x
    return f"{x:.{max(decimals, _decimals_of(x))}f}"


def _fmt(x: float | None, decimals: int) -> str:
    return "—" if x is None else f"{x:.{decimals}f}"


def _fmt_time(x: float | None) -> str:
    return "—" if x is None else f"{x:g}"


def _one_line(text: str, limit: int = 160) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _failure_text(f: dict) -> str:
    etype = f.get("error_type") or "Error"
    msg = f.get("error") or f.get("error_message") or ""
    return _one_line(f"{etype}: {msg}" if msg else etype)


def _published_text(rr: RowResult, table: Table) -> str:
    row = rr.row
    if not row.in_paper:
        return NOT_IN_PAPER
    if row.mean is None:
        return "unknown"
    d = table.decimals
    std = "± n/a" if row.std_na else ("± ?" if row.std is None else f"± {_fmt_pub(row.std, d)}")
    core = f"{_fmt_pub(row.mean, d)} {std}"
    if row.bold:
        core = f"**{core}**"
    return f"{core} ({rr.pub_n})" if rr.pub_n else core


def _verdict_text(rr: RowResult) -> str:
    if rr.verdict == FAILED and rr.failures:
        return f"failed ({_failure_text(rr.failures[0])})"
    text = rr.verdict
    if rr.p_value is not None:
        text += f" (p={rr.p_value:.2g})"
    if rr.stats is not None and rr.failures:
        text += f"; {len(rr.failures)} failed"
    if rr.stale_keys:
        text += f"; ⚠ runs from an older config (changed: {_one_line(', '.join(rr.stale_keys), 80)})"
    return text


def _hardware(records: Sequence[dict]) -> list[str]:
    seen: list[str] = []
    for r in records:
        hw = r.get("hardware") or {}
        if isinstance(hw, dict):
            parts = [str(hw.get("device") or "?"), str(hw.get("cpu") or "?")]
            if hw.get("threads") is not None:
                parts.append(f"{hw['threads']} threads")
            s = ", ".join(parts)
        else:
            s = str(hw)
        if s not in seen:
            seen.append(s)
    return seen


def _title(table: Table, budget: str, protocol: str, partial: bool) -> str:
    t = f"{table.heading} (budget: {budget}, protocol: {protocol})"
    return t + " — PARTIAL" if partial else t


def _runs_per_cell(results: Sequence[RowResult]) -> str:
    ns = [rr.stats.n if rr.stats else 0 for rr in results if rr.row.runnable]
    if not ns:
        return "0 (no runnable rows)"
    lo, hi = min(ns), max(ns)
    return str(lo) if lo == hi else f"{lo}–{hi}"


def render_markdown(
    table: Table,
    results: Sequence[RowResult],
    budget: str,
    protocol: str,
    *,
    records: Sequence[dict] = (),
    runs_dir: Path | str | None = None,
    today: str | None = None,
    alpha: float = ALPHA,
) -> str:
    partial = is_partial(table, results, budget)
    d = table.decimals
    metric = _METRIC_NAMES.get(table.metric, table.metric)
    if table.metric_label:
        metric = f"{metric} (\"{table.metric_label}\")"
    hw = _hardware(records)
    today = today or _dt.date.today().isoformat()
    out = io.StringIO()
    w = out.write
    w(f"# {_title(table, budget, protocol, partial)}\n\n")
    w(f"- **Budget:** {budget} · **Protocol:** {protocol}\n")
    w(f"- **Metric:** {metric}, {table.direction} is better; ± is the population std (ddof 0) over runs\n")
    w(f"- **Runs per cell:** {_runs_per_cell(results)} (published: n = {table.n})\n")
    w(f"- **Hardware (ours):** {'; '.join(hw) if hw else 'no runs yet'}\n")
    w(f"- **Date:** {today}" + (f" · records from `{runs_dir}`" if runs_dir else "") + "\n")
    if table.alias:
        w(f"- **Source table:** {table.id} (alias {table.alias}), status: {table.status}\n")
    if partial:
        reasons = []
        if budget != "paper":
            reasons.append(f'budget "{budget}" is not the paper budget')
        short = [rr.row.name for rr in results if rr.row.runnable and (rr.stats is None or rr.stats.n < (rr.pub_n or table.n or 1))]
        if short:
            reasons.append(f"fewer than n = {table.n} runs for: {', '.join(short)}")
        w(f"- **PARTIAL:** {'; '.join(reasons)}\n")
    w("\n")
    w(f"| # | Model | Source | Published ± (n) | Published {table.time_unit} | Ours ± | Ours n | Ours s/epoch | Δ (ours − published) | Verdict |\n")
    w("|---|---|---|---|---|---|---|---|---|---|\n")
    for i, rr in enumerate(results, 1):
        row, st = rr.row, rr.stats
        name = row.display_name + (f" `{row.model}`" if row.model else "")
        ours = f"{_fmt(st.mean, d + 1)} ± {_fmt(st.std, d + 1)}" if st else "—"
        secs = _fmt(st.seconds_per_epoch, 2) if st and st.seconds_per_epoch is not None else "—"
        diff = f"{rr.diff:+.{d + 1}f}" if rr.diff is not None else "—"
        cells = [
            str(i), name, row.source, _published_text(rr, table), _fmt_time(row.time_min),
            ours, str(st.n) if st else "0", secs, diff, _verdict_text(rr),
        ]
        w("| " + " | ".join(_md_cell(c) for c in cells) + " |\n")
    failures = [(rr, f) for rr in results for f in rr.failures]
    if failures:
        w("\n## Failed runs\n\n")
        for rr, f in failures:
            rid = f.get("run_id", "?")
            w(f"- {rr.row.name} (`{rr.row.model}`), seed {f.get('seed', '?')}, run `{rid}`: {_md_cell(_failure_text(f))}\n")
    notes = []
    notes.append(
        f"Verdict: Welch's t-test (scipy.stats.ttest_ind_from_stats, unequal variances, α = {alpha}) "
        "of our runs against the published mean ± std (n). Both ± are population stds (ddof 0); "
        "they are converted to sample stds with × sqrt(n/(n−1)) before the test. \"within spread\": "
        "p ≥ α; \"better\"/\"worse\": p < α, judged by the table's direction. \"n<2\": a side has "
        "fewer than two runs. \"not run\": no ctbench model for the row, or no records yet "
        "(the published number is still shown). Our ± and Δ carry one more decimal than the paper."
    )
    borrowed = sorted({rr.row.borrowed_from for rr in results if rr.row.source == "borrowed" and rr.row.borrowed_from})
    if borrowed:
        marks = sorted({rr.row.marker for rr in results if rr.row.source == "borrowed" and rr.row.marker})
        notes.append(
            "Source: `self` = run by the CfC authors; `rerun_by_authors` = a baseline re-run by the "
            f"CfC authors; `borrowed` ({' '.join(marks) or 'unmarked'}) = copied from {'; '.join(borrowed)}. "
            "Borrowed rows may rest on another protocol (e.g. best-validation checkpoint), and their "
            "n and ddof are the source paper's."
        )
    notes.append(
        f"Times are not comparable: the published column is {table.time_unit} on the authors' "
        "(unstated) hardware, borrowed rows on the source paper's; ours is raw wall-clock seconds "
        "of training per epoch on the hardware above (median over runs; the warm-up epoch is excluded when a run has more than one)."
    )
    cc = [rr.row for rr in results if rr.row.code_comment and rr.row.code_comment_differs]
    if cc:
        notes.append(
            "The authors' code comments differ from the printed numbers for: "
            + "; ".join(f"{r.name}: {r.code_comment}" for r in cc)
            + ". The table compares with the printed numbers."
        )
    if any(rr.row.bold for rr in results):
        notes.append("Bold: the paper prints the metric cell in bold.")
    extra = [f"{rr.row.name}: {rr.row.notes}" if rr.row.notes else rr.row.name for rr in results if not rr.row.in_paper]
    if extra:
        notes.append("\"not in the paper\" rows are ctbench additions with no published number, hence no "
                     "verdict (conf/table/<id>.yaml `not_in_paper`): " + "; ".join(extra))
    dups = sum(rr.duplicates_dropped for rr in results)
    if dups:
        notes.append(f"{dups} older record(s) for an already recorded seed were ignored (newest kept).")
    stale = [rr.row.name for rr in results if rr.stale_keys]
    if stale:
        notes.append(
            "⚠ " + ", ".join(stale) + ": every record of the row was made with a config that has changed "
            "since (the keys are in the verdict); the numbers are those runs' and the row needs re-running "
            "(`make reproduce-table-X` runs only what is missing)."
        )
    dropped = sum(rr.stale_dropped for rr in results)
    if dropped:
        notes.append(f"{dropped} record(s) made with an older config were ignored (records of the current config exist).")
    mism = sum(rr.metric_mismatch for rr in results)
    if mism:
        notes.append(f"{mism} record(s) with a metric other than {table.metric} were ignored.")
    w("\n## Notes\n\n")
    for i, n in enumerate(notes, 1):
        w(f"{i}. {n}\n")
    return out.getvalue()


_CSV_FIELDS = [
    "table", "budget", "protocol", "row", "name", "model", "source", "borrowed_from",
    "published_mean", "published_std", "published_n", "published_time_min", "published_bold",
    "ours_mean", "ours_std", "ours_n", "ours_seconds_per_epoch", "diff", "p_value", "verdict",
    "n_failed", "partial",
]


def render_csv(table: Table, results: Sequence[RowResult], budget: str, protocol: str) -> str:
    partial = is_partial(table, results, budget)
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, lineterminator="\n")
    wr.writeheader()
    for i, rr in enumerate(results, 1):
        row, st = rr.row, rr.stats
        wr.writerow({
            "table": table.id, "budget": budget, "protocol": protocol, "row": i,
            "name": row.display_name, "model": row.model or "", "source": row.source,
            "borrowed_from": row.borrowed_from or "",
            "published_mean": "" if row.mean is None else row.mean,
            "published_std": "" if row.std is None else row.std,
            "published_n": rr.pub_n or "",
            "published_time_min": "" if row.time_min is None else row.time_min,
            "published_bold": row.bold,
            "ours_mean": st.mean if st else "", "ours_std": st.std if st else "",
            "ours_n": st.n if st else 0,
            "ours_seconds_per_epoch": st.seconds_per_epoch if st and st.seconds_per_epoch is not None else "",
            "diff": "" if rr.diff is None else rr.diff,
            "p_value": "" if rr.p_value is None else rr.p_value,
            "verdict": rr.verdict, "n_failed": len(rr.failures), "partial": partial,
        })
    return buf.getvalue()


def render_figure(table: Table, results: Sequence[RowResult], budget: str, protocol: str, path: Path) -> None:
    """Ours vs published, mean with ± bars, one line per row (matplotlib Agg, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    partial = is_partial(table, results, budget)
    nrows = len(results)
    fig = Figure(figsize=(8.5, 1.6 + 0.38 * nrows))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ys = np.arange(nrows)
    labels = []
    pub_x, pub_e, pub_y, our_x, our_e, our_y = [], [], [], [], [], []
    for y, rr in zip(ys, results):
        row, st = rr.row, rr.stats
        tag = "" if st is not None else ("  [failed]" if rr.verdict == FAILED else "  [not run]")
        labels.append(row.display_name + tag)
        if row.mean is not None:
            pub_x.append(row.mean)
            pub_e.append(row.std_value or 0.0)
            pub_y.append(y - 0.17)
        if st is not None:
            our_x.append(st.mean)
            our_e.append(st.std)
            our_y.append(y + 0.17)
    if pub_x:
        ax.errorbar(pub_x, pub_y, xerr=pub_e, fmt="o", color="tab:gray", ecolor="tab:gray",
                    capsize=3, label="published (mean ± std)")
    if our_x:
        ax.errorbar(our_x, our_y, xerr=our_e, fmt="s", color="tab:blue", ecolor="tab:blue",
                    capsize=3, label=f"ours, budget {budget} (mean ± std)")
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(nrows - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    metric = _METRIC_NAMES.get(table.metric, table.metric)
    ax.set_xlabel(f"{metric} ({table.direction} is better)")
    ax.set_title(_title(table, budget, protocol, partial), fontsize=9)
    if pub_x or our_x:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    _atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100), binary=True)


# =========================================================================== files


def _atomic_write(path: Path, write: Callable[[Any], None], *, binary: bool = False) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; rendered tables are for everyone
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda fh: fh.write(text))


def _infer_budget_protocol(table: Table, records: Sequence[dict]) -> tuple[str, str]:
    models = {r.model for r in table.runnable_rows}
    combos = Counter(
        (r["budget"], r["protocol"])
        for r in records
        if r["data"] == table.data and r["model"] in models
    )
    combos.pop((None, None), None)
    if not combos:
        return "paper", "paper"
    if ("paper", "paper") in combos:
        return "paper", "paper"
    (b, p), _ = combos.most_common(1)[0]
    if len(combos) > 1:
        others = ", ".join(f"{ob}/{op}" for (ob, op) in combos if (ob, op) != (b, p))
        print(f"[{table.id}] rendering budget {b}, protocol {p}; records also exist for: {others} "
              "(choose with --budget/--protocol)", file=sys.stderr)
    return str(b), str(p)


def output_stem(table_id: str | int, column: str | None) -> str:
    """``<id>``, or ``<id>-<column>`` when a non-default metric column is rendered."""
    default = load_table(table_id)
    return default.id if column is None or column == default.column else f"{default.id}-{column}"


def current_row_configs(table: Table, budget: str, protocol: str,
                        composer: Composer | None = None) -> CurrentConfig:
    """(row, seed) -> the identity config that run would have now, composed once per pair.

    Per seed, not seed 0 for all: keys interpolated from the seed (``data.loader_seed: ${seed}``)
    differ between seeds without making a record stale. A row that does not compose (e.g. a user's
    model outside the search path) gives None: its records are not judged.
    """
    from ctbench.records import identity

    if composer is None:
        from ctbench.config import compose as composer  # type: ignore[no-redef]
    cache: dict[tuple[str, Any], dict | None] = {}

    def current(row: Row, seed: Any) -> dict | None:
        key = (row.name, seed)
        if key not in cache:
            cache[key] = None
            if row.model is not None:
                try:
                    cache[key] = identity(composer([
                        f"data={table.data}", f"model={row.model}", f"seed={seed}", f"budget={budget}",
                        f"protocol={protocol}", *row.overrides]))
                except Exception:  # noqa: BLE001 - not composable here: not judged
                    pass
        return cache[key]

    return current


@dataclass
class RenderResult:
    table: Table
    budget: str
    protocol: str
    results: list[RowResult]
    partial: bool
    md: Path
    csv: Path
    png: Path


def render(
    table_id: str | int,
    budget: str | None = None,
    protocol: str | None = None,
    runs_dir: Path | str = DEFAULT_RUNS_DIR,
    out_dir: Path | str = DEFAULT_OUT_DIR,
    *,
    loader: Loader | None = None,
    today: str | None = None,
    alpha: float = ALPHA,
    extra_rows: Sequence[Row] = (),
    composer: Composer | None = None,
    column: str | None = None,
) -> RenderResult:
    """Render ``<out_dir>/<id>.md``, ``.csv`` and ``.png`` from the records in ``runs_dir``.

    Without ``budget``/``protocol`` it renders the combination found in the records
    (paper/paper when present, else the one with most records). ``extra_rows``: rows without a
    published number added after the paper's (``ctbench.compare``). ``composer`` (default
    ``ctbench.config.compose``) gives each row's current config, against which records are
    checked for staleness (:func:`aggregate`). ``column``: for a table that prints several metric
    columns, the one to render (files ``<id>-<column>.*`` unless it is the table's default).
    """
    table = load_table(table_id, column=column)
    if table.kind == "parameter_counts":  # no runs: build the networks and count
        return render_parameter_counts(table, budget, protocol, out_dir)
    extra_rows = (*table.extra_rows, *extra_rows)  # the table's not_in_paper rows first
    runs_dir = Path(runs_dir)
    loader = loader or load_records
    records = [r for r in (loader(runs_dir) if runs_dir.is_dir() else []) if isinstance(r, dict)]
    failures = load_failures(runs_dir)
    if budget is None or protocol is None:
        b, p = _infer_budget_protocol(table, records)
        budget, protocol = budget or b, protocol or p
    results = aggregate(table, records, budget, protocol, failures, alpha=alpha, extra_rows=extra_rows,
                        current_config=current_row_configs(table, budget, protocol, composer))
    results = [rr for rr in results if rr.row.in_paper or rr.stats or rr.failures]  # not_in_paper: once run
    used = [r for r in records if any(r.get("run_id") in (rr.stats.run_ids if rr.stats else ()) for rr in results)]
    out_dir = Path(out_dir)
    stem = output_stem(table_id, column)
    md, csv_path, png = out_dir / f"{stem}.md", out_dir / f"{stem}.csv", out_dir / f"{stem}.png"
    _atomic_write_text(md, render_markdown(table, results, budget, protocol, records=used,
                                           runs_dir=runs_dir, today=today, alpha=alpha))
    _atomic_write_text(csv_path, render_csv(table, results, budget, protocol))
    render_figure(table, results, budget, protocol, png)
    return RenderResult(table, budget, protocol, results, is_partial(table, results, budget), md, csv_path, png)


# =========================================================================== reproduce


@dataclass
class PlannedRun:
    row: Row
    seed: int
    overrides: list[str]
    cfg: Any = None
    run_id: str | None = None
    error: BaseException | None = None  # compose or run-id failure
    error_tb: str | None = None

    @property
    def label(self) -> str:
        return f"{self.row.name} seed {self.seed}"


@dataclass
class ReproduceSummary:
    table: str
    budget: str
    protocol: str
    runs_dir: Path
    planned: int = 0
    skipped: int = 0
    ran: int = 0
    failed: list[dict] = field(default_factory=list)
    rendered: RenderResult | None = None


def select_rows(table: Table, models: Sequence[str]) -> list[Row]:
    """The table's runnable rows whose model is in ``models``, in that order (all when empty).

    A ``not_in_paper`` row runs only when named here.
    """
    if not models:
        return list(table.runnable_rows)
    by_model = {r.model: r for r in (*table.runnable_rows, *table.extra_rows)}  # not_in_paper rows by name only
    unknown = [m for m in models if m not in by_model]
    if unknown:
        raise TableError(f"{table.id} has no runnable row for model(s) {', '.join(unknown)}; "
                         f"its rows run: {', '.join(by_model)}")
    return [by_model[m] for m in models]


def run_overrides(budget: str | None, protocol: str | None, runs_dir: Path | str | None) -> list[str]:
    """The Hydra overrides for the budget, protocol and records folder given (None: the config's)."""
    common: list[str] = []
    if budget is not None:
        common.append(f"budget={budget}")
    if protocol is not None:
        common.append(f"protocol={protocol}")
    if runs_dir is not None:
        common.append(f"paths.runs_dir={Path(runs_dir).as_posix()}")
    return common


def _cfg_get(cfg: Any, dotted: str, default: Any = None) -> Any:
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(cfg):
            v = OmegaConf.select(cfg, dotted, default=default)
            return default if v is None else v
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    found, v = _select(cfg, dotted)
    return v if found and v is not None else default


def _compose_failure_id(overrides: Sequence[str]) -> str:
    return "compose-" + hashlib.sha1("\n".join(overrides).encode()).hexdigest()[:12]


def _write_failure(runs_dir: Path, run_id: str, payload: dict) -> Path:
    path = runs_dir / f"{run_id}{FAILED_SUFFIX}"
    _atomic_write_text(path, json.dumps(payload, indent=2, default=str) + "\n")
    return path


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def reproduce(
    table_id: str | int,
    budget: str | None = None,
    protocol: str | None = None,
    runs_dir: Path | str | None = None,
    out_dir: Path | str = DEFAULT_OUT_DIR,
    *,
    runner: Runner | None = None,
    composer: Composer | None = None,
    run_id_fn: RunIdFn | None = None,
    loader: Loader | None = None,
    extra_overrides: Sequence[str] = (),
    render_after: bool = True,
    log: Callable[[str], None] | None = None,
    rows: Sequence[str] = (),
    column: str | None = None,
) -> ReproduceSummary:
    """Run every missing (row, seed) of a table, then render it.

    ``runner``, ``composer`` and ``run_id_fn`` default to ``ctbench.train.run``,
    ``ctbench.config.compose`` and ``ctbench.records.run_id``. ``budget``/``protocol``/``runs_dir``
    left as None keep the config's defaults. A run that raises an ``Exception`` is written as
    ``<runs_dir>/<run_id>.failed.json`` and the table goes on; KeyboardInterrupt stops the table
    (finished records stay, and the next call resumes). ``rows``: run only these rows (model
    config names), in this order; the table still renders every row. ``column``: the metric
    column to reproduce, for tables that print several (its overrides go to every run).
    """
    table = load_table(table_id, column=column)
    if log is None:
        def log(msg: str) -> None:
            print(msg, flush=True)
    if table.kind == "parameter_counts":  # nothing to train: count and render
        return _reproduce_parameter_counts(table, budget, protocol, runs_dir, out_dir, render_after, log)
    if composer is None:
        from ctbench.config import compose as composer  # type: ignore[no-redef]
    if runner is None:
        from ctbench.train import run as runner  # type: ignore[no-redef]
    if run_id_fn is None:
        from ctbench.records import run_id as run_id_fn  # type: ignore[no-redef]

    common = run_overrides(budget, protocol, runs_dir)
    # one W&B group per table rebuild (the logger is not part of a run's identity)
    common.append(f"logger.wandb.group=table-{table.id}-{budget or 'default'}-{protocol or 'default'}")

    # ---- plan: compose every (row, seed) first, so counts and names are known up front.
    # Seed 0 of every row first: the budget's seed count is then known even for a row whose
    # config does not compose (that row is written as k failed runs).
    plan: list[PlannedRun] = []
    budget_name, protocol_name, cfg_runs_dir = budget, protocol, runs_dir
    firsts: list[tuple[PlannedRun, int | None]] = []
    budget_k: int | None = None
    for row in select_rows(table, rows):
        ov0 = [f"data={table.data}", f"model={row.model}", "seed=0"] + common + list(row.overrides) + list(extra_overrides)
        try:
            cfg0 = composer(ov0)
        except Exception as e:  # noqa: BLE001 - reported as failed runs
            firsts.append((PlannedRun(row, 0, ov0, error=e, error_tb=traceback.format_exc()), None))
            continue
        seeds = _cfg_get(cfg0, "budget.seeds")
        k = int(seeds) if seeds is not None else (table.row_n(row) or 1)
        budget_k = budget_k if budget_k is not None else k
        budget_name = budget_name or _cfg_get(cfg0, "budget.name")
        protocol_name = protocol_name or _cfg_get(cfg0, "protocol.name")
        cfg_runs_dir = cfg_runs_dir or _cfg_get(cfg0, "paths.runs_dir")
        firsts.append((PlannedRun(row, 0, ov0, cfg0), k))
    for first, k in firsts:
        row = first.row
        if k is None:
            k = budget_k if budget_k is not None else (table.row_n(row) or 1)
        for s in range(k):
            ov = [o if o != "seed=0" else f"seed={s}" for o in first.overrides]
            pr = first if s == 0 else PlannedRun(row, s, ov)
            if first.error is not None:
                pr.error, pr.error_tb = first.error, first.error_tb
            elif pr.cfg is None:
                try:
                    pr.cfg = composer(pr.overrides)
                except Exception as e:  # noqa: BLE001
                    pr.error, pr.error_tb = e, traceback.format_exc()
            if pr.error is None:
                try:
                    pr.run_id = str(run_id_fn(pr.cfg))
                except Exception as e:  # noqa: BLE001
                    pr.error, pr.error_tb = e, traceback.format_exc()
            plan.append(pr)
    budget_name = str(budget_name or "unknown")
    protocol_name = str(protocol_name or "unknown")
    rdir = Path(cfg_runs_dir or DEFAULT_RUNS_DIR)
    rdir.mkdir(parents=True, exist_ok=True)
    summary = ReproduceSummary(table.id, budget_name, protocol_name, rdir, planned=len(plan))

    def failure_payload(pr: PlannedRun, rid: str, err: BaseException, tb: str | None) -> dict:
        return {
            "run_id": rid, "status": "failed", "table": table.id, "row": pr.row.name,
            "data": table.data, "model": pr.row.model, "seed": pr.seed,
            "budget": budget_name, "protocol": protocol_name, "overrides": pr.overrides,
            "error_type": type(err).__name__, "error": str(err), "traceback": tb or "",
            "failed_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }

    done = failed = 0
    todo: list[PlannedRun] = []
    for pr in plan:
        if pr.error is not None:
            fid = _compose_failure_id(pr.overrides)
            summary.failed.append(failure_payload(pr, fid, pr.error, pr.error_tb))
            _write_failure(rdir, fid, summary.failed[-1])
            failed += 1
        elif (rdir / f"{pr.run_id}.json").exists():
            _unlink(rdir / f"{pr.run_id}{FAILED_SUFFIX}")
            done += 1
        else:
            todo.append(pr)
    summary.skipped = done
    total = len(plan)

    def progress(running: PlannedRun | None) -> None:
        left = total - done - failed - (1 if running else 0)
        line = (f"[{table.id}] {done}/{total} done · {1 if running else 0} running · {left} left · "
                f"{failed} failed")
        if running is not None:
            line += f" · running: {running.label} (run {running.run_id})"
        log(line)

    log(f"[{table.id}] {table.heading}: budget {budget_name}, protocol {protocol_name}, "
        f"{total} runs planned, {done} already recorded, records in {rdir}")
    try:
        for pr in todo:
            progress(pr)
            try:
                runner(pr.cfg)
            except Exception as e:  # noqa: BLE001 - a failed run must not stop the table
                payload = failure_payload(pr, str(pr.run_id), e, traceback.format_exc())
                _write_failure(rdir, str(pr.run_id), payload)
                summary.failed.append(payload)
                failed += 1
                log(f"[{table.id}] FAILED {pr.label}: {type(e).__name__}: {_one_line(str(e))}")
                continue
            _unlink(rdir / f"{pr.run_id}{FAILED_SUFFIX}")
            _unlink(rdir / f"{_compose_failure_id(pr.overrides)}{FAILED_SUFFIX}")
            done += 1
            summary.ran += 1
    except KeyboardInterrupt:
        log(f"[{table.id}] interrupted: {done}/{total} done; run the same command again to resume")
        raise
    progress(None)
    if render_after:
        summary.rendered = render(table.id, budget_name, protocol_name, rdir, out_dir, loader=loader,
                                  composer=composer, column=column)
        log(f"[{table.id}] rendered {summary.rendered.md}, {summary.rendered.csv.name}, "
            f"{summary.rendered.png.name}" + (" (PARTIAL)" if summary.rendered.partial else ""))
    return summary


# =========================================================================== parameter counts
# Tables of ``kind: parameter_counts`` (Extended Data Fig. 9): no runs; each row's network is
# built by the table's ``counter`` and its parameters are counted beside the printed counts.


def _load_counter(spec: str) -> Callable[[str], dict]:
    import importlib

    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func)


def count_parameters_of(table: Table) -> list[tuple[Row, dict | None, str | None]]:
    """``[(row, {"total", "rnn", ...} or None, error or None)]``; rows without a network get None."""
    counter = _load_counter(table.counter) if table.counter else None
    out: list[tuple[Row, dict | None, str | None]] = []
    for row in table.rows:
        if row.network is None or counter is None:
            out.append((row, None, None))
            continue
        try:
            out.append((row, dict(counter(row.network)), None))
        except Exception as e:  # noqa: BLE001 - shown in the table, the others still count
            out.append((row, None, f"{type(e).__name__}: {_one_line(str(e))}"))
    return out


def _count_cells(published: int | None, ours: int | None) -> tuple[str, str, str]:
    pub = "–" if published is None else f"{published:,}"
    our = "–" if ours is None else f"{ours:,}"
    diff = "" if published is None or ours is None else ("0" if ours == published else f"{ours - published:+,}")
    return pub, our, diff


def _count_status(row: Row, counts: dict | None, error: str | None) -> str:
    if error:
        return f"error: {error}"
    if counts is None:
        return "not built"
    pairs = [(row.params_total, counts.get("total")), (row.params_rnn, counts.get("rnn"))]
    pairs = [(p, o) for p, o in pairs if p is not None]
    return "exact" if pairs and all(p == o for p, o in pairs) else "differs"


def render_parameter_counts_markdown(table: Table, counted: Sequence[tuple[Row, dict | None, str | None]],
                                     budget: str, protocol: str) -> str:
    lines = [f"# {_title(table, budget, protocol, False)}", "",
             "No training: each row's network is built and its trainable parameters counted "
             f"(`{table.counter}`).", "",
             "| Model | Total (published) | Total (ours) | Δ | RNN (published) | RNN (ours) | Δ | match |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for row, counts, error in counted:
        c = counts or {}
        tp, to, td = _count_cells(row.params_total, c.get("total"))
        rp, ro, rd = _count_cells(row.params_rnn, c.get("rnn"))
        status = _count_status(row, counts, error)
        lines.append(f"| {_md_cell(row.display_name)} | {tp} | {to} | {td} | {rp} | {ro} | {rd} | {_md_cell(status)} |")
    if table.notes:
        lines += ["", "Notes:", ""] + [f"- {_one_line(n, 1000)}" for n in table.notes]
    return "\n".join(lines) + "\n"


def _render_count_csv(counted: Sequence[tuple[Row, dict | None, str | None]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "network", "published_total", "ours_total", "published_rnn", "ours_rnn", "status"])
    for row, counts, error in counted:
        c = counts or {}
        w.writerow([row.name, row.network or "", row.params_total if row.params_total is not None else "",
                    c.get("total", ""), row.params_rnn if row.params_rnn is not None else "",
                    c.get("rnn", ""), _count_status(row, counts, error)])
    return buf.getvalue()


def _render_count_figure(table: Table, counted: Sequence[tuple[Row, dict | None, str | None]], title: str,
                         path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(r, c) for r, c, _ in counted if r.params_rnn is not None]
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(rows), 1) + 1.2))
    ys = np.arange(len(rows))
    ax.barh(ys - 0.2, [r.params_rnn for r, _ in rows], height=0.4, label="published")
    ax.barh(ys + 0.2, [(c or {}).get("rnn", 0) for _, c in rows], height=0.4, label="ours")
    ax.set_yticks(ys, [r.display_name for r, _ in rows])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("recurrent parameters")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    _atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100), binary=True)
    plt.close(fig)


def render_parameter_counts(table: Table, budget: str | None = None, protocol: str | None = None,
                            out_dir: Path | str = DEFAULT_OUT_DIR) -> RenderResult:
    """Write ``<out_dir>/<id>.md``, ``.csv`` and ``.png`` for a ``kind: parameter_counts`` table."""
    budget, protocol = budget or "n/a", protocol or "n/a"
    counted = count_parameters_of(table)
    out_dir = Path(out_dir)
    md, csv_path, png = out_dir / f"{table.id}.md", out_dir / f"{table.id}.csv", out_dir / f"{table.id}.png"
    _atomic_write_text(md, render_parameter_counts_markdown(table, counted, budget, protocol))
    _atomic_write_text(csv_path, _render_count_csv(counted))
    _render_count_figure(table, counted, _title(table, budget, protocol, False), png)
    return RenderResult(table, budget, protocol, [], False, md, csv_path, png)


def _reproduce_parameter_counts(table: Table, budget: str | None, protocol: str | None,
                                runs_dir: Path | str | None, out_dir: Path | str, render_after: bool,
                                log: Callable[[str], None]) -> ReproduceSummary:
    summary = ReproduceSummary(table.id, budget or "n/a", protocol or "n/a", Path(runs_dir or DEFAULT_RUNS_DIR))
    log(f"[{table.id}] {table.heading}: parameter counts, no runs to train")
    if render_after:
        summary.rendered = render_parameter_counts(table, budget, protocol, out_dir)
        log(summary.rendered.md.read_text(encoding="utf-8").rstrip())
        log(f"[{table.id}] rendered {summary.rendered.md}, {summary.rendered.csv.name}, {summary.rendered.png.name}")
    return summary


# =========================================================================== CLI


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ctbench.tables", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, helptext in (("reproduce", "run the missing cells of a table, then render it"),
                           ("render", "render a table from the run records only")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("table", help="table id or alias, e.g. table3, 3, arxiv-v2-table7")
        p.add_argument("--budget", default=None, help="budget config name (default: the config's)"
                       if name == "reproduce" else "budget name (default: inferred from the records)")
        p.add_argument("--protocol", default=None, help="protocol config name")
        p.add_argument("--runs-dir", default=None if name == "reproduce" else DEFAULT_RUNS_DIR,
                       help="where run records live" + (" (default: cfg.paths.runs_dir)" if name == "reproduce" else ""))
        p.add_argument("--out-dir", default=DEFAULT_OUT_DIR, help="where the .md/.csv/.png go")
        p.add_argument("--column", default=None, help="for a table printing several metric columns (ed5: "
                       "equidistant, event_based), the one to use (default: the table's)")
        if name == "reproduce":
            p.add_argument("--rows", default="", help="comma-separated model names: run only these rows, "
                           "in this order (default: every runnable row)")
            p.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    sub.add_parser("list", help="list the known tables")
    # Hydra overrides may come before or after the options (argparse alone would reject
    # ``reproduce ed6 --budget quick seed=0``).
    args, extra = ap.parse_known_args(argv)
    if extra and (args.cmd != "reproduce" or any(e.startswith("-") for e in extra)):
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    try:
        if args.cmd == "list":
            for tid in known_tables():
                t = load_table(tid)
                runnable = ", ".join(r.model for r in t.runnable_rows) or "none"
                print(f"{t.id}\t{t.alias or ''}\t{t.heading}\t({t.status}; runnable: {runnable})")
            return 0
        if args.cmd == "reproduce":
            s = reproduce(args.table, args.budget, args.protocol, args.runs_dir, args.out_dir,
                          extra_overrides=args.overrides,
                          rows=[m for m in args.rows.split(",") if m], column=args.column)
            if s.failed:
                print(f"[{s.table}] {len(s.failed)} run(s) failed; see {s.runs_dir}/*{FAILED_SUFFIX}",
                      file=sys.stderr)
            return 0
        r = render(args.table, args.budget, args.protocol, args.runs_dir, args.out_dir, column=args.column)
        print(f"wrote {r.md}, {r.csv}, {r.png}" + (" (PARTIAL)" if r.partial else ""))
        return 0
    except TableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:  # ctbench.config / train / records not installed yet
        print(f"error: {e} (reproduce needs ctbench.config, ctbench.train and ctbench.records)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
