"""A user's own model against a published table: ``make compare MODEL=<config> TABLE=<id>``.

Runs the user's model config over the table's seeds (``budget.seeds``, else the table's n), on the
table's dataset and under the chosen protocol, skipping seeds whose record exists, then renders
the table with the user's row added after the paper's rows (``tables.render(extra_rows=...)``) and
a section comparing that row with every published row (Welch's t-test, the tables' verdicts).

The model is found through Hydra's searchpath: ``--searchpath DIR`` names the user's folder; its
``conf/`` subfolder (or DIR itself when it has none) must hold ``model/<name>.yaml`` (and may hold
``experiment/<data>_<name>.yaml``), and DIR is put on ``sys.path`` so that the config's
``_target_`` imports the user's module. ``examples/my_cell/`` is a complete example::

    python -m ctbench.compare --model my_cell --table 3 --searchpath examples/my_cell --budget smoke
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

from ctbench import tables
from ctbench.published import Row, TableError, load_table

DEFAULT_OUT_DIR = "results/compare"


def user_searchpath(folder: str | Path) -> List[str]:
    """Put the user's folder on ``sys.path``; return the ``hydra.searchpath`` override for it."""
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"--searchpath {folder}: no such folder")
    conf = root / "conf" if (root / "conf").is_dir() else root
    for p in (root, conf):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    return [f"hydra.searchpath=[file://{conf.as_posix()}]"]


@dataclass
class CompareResult:
    rendered: tables.RenderResult
    row: Row
    ran: int
    skipped: int
    failed: List[dict]


def compare_section(table: Any, results: Sequence[tables.RowResult], user: tables.RowResult,
                    alpha: float = tables.ALPHA) -> str:
    """Markdown: the user's row against every published row (Welch's t-test, as the table)."""
    d = table.decimals
    lines = [f"## {user.row.display_name} (`{user.row.model}`) against every published row", ""]
    st = user.stats
    if st is None:
        lines.append(f"No finished run of `{user.row.model}` yet" + (" (all failed)." if user.failures else "."))
        return "\n".join(lines) + "\n"
    lines.append(f"Ours: {st.mean:.{d + 1}f} ± {st.std:.{d + 1}f} (n = {st.n}); {table.direction} is better. "
                 f"Welch's t-test, α = {alpha}, the same verdicts as the table.")
    lines += ["", "| Published row | Published ± (n) | Δ (ours − published) | Verdict |", "|---|---|---|---|"]
    for rr in results:
        row = rr.row
        if row is user.row or row.source == "user":
            continue
        if row.mean is None:
            verdict, pub, diff = tables.NO_PUBLISHED, "unknown", "—"
        else:
            pub = f"{row.mean:.{d}f} ± " + (f"{row.std_value:.{d}f}" if row.std_value is not None else "?")
            pub += f" ({rr.pub_n})" if rr.pub_n else ""
            diff = f"{st.mean - row.mean:+.{d + 1}f}"
            if row.std_value is None or rr.pub_n is None:
                verdict = tables.NO_PUBLISHED_PM
            else:
                v, p = tables.welch_verdict(st.mean, st.std, st.n, row.mean, row.std_value, rr.pub_n,
                                            table.direction, alpha)
                verdict = v + (f" (p={p:.2g})" if p is not None else "")
        lines.append(f"| {row.display_name} | {pub} | {diff} | {verdict} |")
    return "\n".join(lines) + "\n"


def compare(
    model: str,
    table_id: str | int,
    searchpath: str | Path | None = None,
    budget: Optional[str] = None,
    protocol: Optional[str] = "paper",
    runs_dir: str | Path | None = None,
    out_dir: str | Path = DEFAULT_OUT_DIR,
    overrides: Sequence[str] = (),
    *,
    runner: Optional[Callable[[Any], Any]] = None,
    log: Optional[Callable[[str], None]] = None,
) -> CompareResult:
    """Run ``model`` over the table's seeds and render the table with its row added.

    Writes ``<out_dir>/<model>/<table>.md`` (``.csv``, ``.png``); a seed that raises is written as
    ``<runs_dir>/<run_id>.failed.json`` and shown in the table, as ``tables.reproduce`` does.
    """
    from ctbench.config import compose
    from ctbench.records import record_path, run_id

    if runner is None:
        from ctbench.train import run as runner  # type: ignore[no-redef]
    if log is None:
        def log(msg: str) -> None:
            print(msg, flush=True)
    table = load_table(table_id)
    if table.kind != "results":
        raise TableError(f"{table.id} is a {table.kind} table: there is nothing to run a model against")
    common = user_searchpath(searchpath) if searchpath else []
    common += [f"data={table.data}", f"model={model}", *tables.run_overrides(budget, protocol, runs_dir)]
    common.append(f"logger.wandb.group=compare-{model}-{table.id}")  # the seeds' runs share one W&B group
    common += list(overrides)

    cfg0 = compose(common + ["seed=0"])
    seeds = cfg0.budget.seeds
    k = int(seeds) if seeds is not None else (table.n or 1)
    rdir = Path(cfg0.paths.runs_dir)
    name = str(cfg0.model.name)
    row = Row(name=str(cfg0.model.get("display_name") or name), source="user", model=name)
    if name != model:
        log(f"warning: model config {model} names itself {name!r}: records and the table use {name!r}")
    budget_name, protocol_name = str(cfg0.budget.name), str(cfg0.protocol.name)
    log(f"[compare] {row.display_name} (`{name}`) on {table.heading}: {k} seed(s), budget {budget_name}, "
        f"protocol {protocol_name}, records in {rdir}")
    ran = skipped = 0
    failed: List[dict] = []
    for seed in range(k):
        cfg = cfg0 if seed == 0 else compose(common + [f"seed={seed}"])
        rid = run_id(cfg)
        if record_path(rdir, rid).is_file():
            skipped += 1
            continue
        log(f"[compare] seed {seed}/{k}: run {rid}")
        try:
            runner(cfg)
        except Exception as err:  # noqa: BLE001 - a failed seed is shown in the table; the others run
            payload = {
                "run_id": rid, "status": "failed", "table": table.id, "row": row.name, "data": table.data,
                "model": name, "seed": seed, "budget": budget_name, "protocol": protocol_name,
                "overrides": common + [f"seed={seed}"], "error_type": type(err).__name__, "error": str(err),
                "traceback": traceback.format_exc(),
                "failed_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            }
            tables._write_failure(rdir, rid, payload)
            failed.append(payload)
            log(f"[compare] seed {seed} FAILED: {type(err).__name__}: {str(err)[:300]}")
            continue
        tables._unlink(rdir / f"{rid}.failed.json")
        ran += 1
    out = Path(out_dir) / name
    rendered = tables.render(table.id, budget_name, protocol_name, rdir, out, extra_rows=[row])
    user = next(rr for rr in rendered.results if rr.row is row)
    text = rendered.md.read_text(encoding="utf-8")
    marker = "\n## Notes\n"
    section = compare_section(table, rendered.results, user)
    text = text.replace(marker, "\n" + section + marker, 1) if marker in text else text + "\n" + section
    tables._atomic_write_text(rendered.md, text)
    log(f"[compare] rendered {rendered.md}, {rendered.csv.name}, {rendered.png.name}")
    return CompareResult(rendered, row, ran, skipped, failed)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ctbench.compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="model config name (conf/model/<name>.yaml, yours or ctbench's)")
    ap.add_argument("--table", required=True, help="table id or alias, e.g. 3, table3, arxiv-v2-table7")
    ap.add_argument("--searchpath", default=None, help="your folder: conf/model/<name>.yaml and your module")
    ap.add_argument("--budget", default=None, help="budget config (default: the config's, paper)")
    ap.add_argument("--protocol", default="paper", help="protocol config (default: paper)")
    ap.add_argument("--runs-dir", default=None, help="where run records go (default: cfg.paths.runs_dir)")
    ap.add_argument("--out-dir", default=DEFAULT_OUT_DIR, help="the table goes to <out-dir>/<model>/")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = ap.parse_intermixed_args(argv)
    try:
        res = compare(args.model, args.table, args.searchpath, args.budget, args.protocol, args.runs_dir,
                      args.out_dir, args.overrides)
    except (TableError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(res.rendered.md.read_text(encoding="utf-8"))
    return 1 if res.failed and res.ran == 0 and res.skipped == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
