"""The published-number registry: ``conf/table/<id>.yaml`` as small validated dataclasses.

Each table file holds one paper table exactly as the paper prints it (see
``published_tables.md`` §13 for the encoding). Nothing here computes a published number; the
loader only checks that the file is well formed, so a typo fails loudly instead of silently
changing a comparison.

A table that prints several metric columns (Extended Data Fig. 5: one per XOR encoding) declares
them under ``columns:`` with the Hydra overrides that produce each, names the reproduced one in
``column:``, and gives every row's values per column; a row's ``mean``/``std``/``bold`` are then
the reproduced column's (``load_table(id, column=...)`` picks another).

Rows the paper does not print (e.g. the gnODE and nODE of Kim et al. 2023 beside the CfC rows) go
under ``not_in_paper:``: each gives a ``name``, the ``model`` that runs it and optionally
``overrides``, ``variant`` and ``notes``, and no published number, source or n. They load as
``Table.extra_rows`` (``Row.in_paper`` False, source ``ctbench``), never as ``Table.rows``: the
paper's table stays as printed, and the renderer shows them as "not in the paper", without a
verdict. In a multi-column table they get the reproduced column's overrides like the paper's rows.

A table of ``kind: parameter_counts`` (Extended Data Fig. 9) prints parameter counts instead of
trained metrics: each row gives ``params_total`` and ``params_rnn`` (integers, null when not
printed) and may name a ``network`` that the table's ``counter`` (``module:function``, called
with the network name, returning ``{"total": ..., "rnn": ...}``) builds and counts. Such rows need
no ``mean``/``std`` and are never trained (no ``model``).

    from ctbench.published import load_table
    t = load_table("3")                 # or "table3", or the arXiv alias "arxiv-v2-table7"
    t.row("CfC (ours)").mean            # the published mean, as conf/table/table3.yaml holds it
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "Cell",
    "Column",
    "KINDS",
    "DIRECTIONS",
    "METRICS",
    "NA",
    "NOT_IN_PAPER_SOURCE",
    "PM_KINDS",
    "Row",
    "SOURCES",
    "STATUSES",
    "Table",
    "TableError",
    "UnknownTableError",
    "conf_dir",
    "known_tables",
    "load_table",
    "resolve_id",
]

NA = "n/a"
"""A spread the source paper did not report (distinct from ``None``: not transcribed/unknown)."""

DIRECTIONS = ("lower", "higher")
SOURCES = ("self", "rerun_by_authors", "borrowed")
STATUSES = ("known", "partial", "unknown")
METRICS = ("mse", "accuracy", "auroc")
PM_KINDS = ("population_std", "sample_std", "unknown")
#: ``results``: trained metrics (mean ± std); ``parameter_counts``: printed parameter counts
KINDS = ("results", "parameter_counts")

_TABLE_KEYS = {
    "id", "alias", "aliases", "label", "title", "caption", "status", "metric", "metric_label",
    "direction", "decimals", "pm", "n", "time_unit", "data", "sources", "notes", "rows",
    "columns", "column", "kind", "counter", "not_in_paper",
}
_ROW_KEYS = {
    "name", "marker", "variant", "model", "overrides", "mean", "std", "n", "time_min", "bold",
    "source", "borrowed_from", "code_comment", "code_comment_differs", "calibration", "encoding",
    "notes", "columns", "network", "params_total", "params_rnn",
}
#: the fields a row may give per metric column (tables that print several, e.g. XOR's encodings)
_CELL_KEYS = {"mean", "std", "bold", "code_comment", "code_comment_differs"}
_MODEL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
#: the fields of a ``not_in_paper`` row (no published number, source or n)
_EXTRA_ROW_KEYS = {"name", "model", "overrides", "variant", "notes"}
#: the source of a row the paper does not print
NOT_IN_PAPER_SOURCE = "ctbench"


class TableError(ValueError):
    """A table file is malformed (the message names the file, the row and the field)."""


class UnknownTableError(TableError, KeyError):
    """No table has this id or alias (the message lists the known ids)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Column:
    """One metric column of a table that prints several (e.g. XOR: equidistant, event-based).

    ``overrides`` are the Hydra overrides that make a run produce this column's number (e.g.
    ``data.encoding=equidistant``); they are added to every runnable row when the column is
    the reproduced one.
    """

    key: str
    label: str
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cell:
    """A row's published value in one column."""

    mean: float | None = None
    std: float | str | None = None
    bold: bool = False
    code_comment: str | None = None
    code_comment_differs: bool = False


@dataclass(frozen=True)
class Row:
    """One published row, in the paper's order."""

    name: str
    source: str
    mean: float | None = None
    std: float | str | None = None  # float, NA ("n/a": source gave none) or None (unknown)
    n: int | None = None
    time_min: float | None = None
    bold: bool = False
    model: str | None = None
    overrides: tuple[str, ...] = ()
    marker: str | None = None
    variant: str | None = None
    borrowed_from: str | None = None
    code_comment: str | None = None
    code_comment_differs: bool = False
    calibration: float | None = None
    encoding: str | None = None
    notes: str | None = None
    #: every column's published value, ``((key, Cell), ...)`` in the table's column order, for
    #: tables with ``columns``; mean/std/bold above are then those of the reproduced column
    cells: tuple[tuple[str, Cell], ...] = ()
    #: ``kind: parameter_counts`` tables only: the network the table's counter builds, and the
    #: printed total and recurrent parameter counts (None: not printed)
    network: str | None = None
    params_total: int | None = None
    params_rnn: int | None = None
    #: False for a ``not_in_paper`` row: a ctbench addition with no published number
    in_paper: bool = True

    def cell(self, key: str) -> Cell:
        """This row's published value in column ``key``."""
        for k, c in self.cells:
            if k == key:
                return c
        raise KeyError(f"row {self.name!r} has no column {key!r}; columns: {[k for k, _ in self.cells]}")

    @property
    def runnable(self) -> bool:
        """Whether ctbench has a model config for this row."""
        return self.model is not None

    @property
    def std_na(self) -> bool:
        """The source paper reported no spread ("n/a")."""
        return self.std == NA

    @property
    def std_value(self) -> float | None:
        """The spread as a number, or None when it is unknown or "n/a"."""
        return self.std if isinstance(self.std, float) else None

    @property
    def display_name(self) -> str:
        return f"{self.marker}{self.name}" if self.marker else self.name


@dataclass(frozen=True)
class Table:
    """One published table."""

    id: str
    alias: str | None
    label: str
    title: str
    status: str
    metric: str
    direction: str
    n: int | None
    data: str
    rows: tuple[Row, ...]
    pm_kind: str = "population_std"
    pm_ddof: int | None = 0
    metric_label: str | None = None
    decimals: int = 3
    time_unit: str = "min/epoch"
    caption: str | None = None
    aliases: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    path: Path | None = field(default=None, compare=False)
    #: the metric columns the paper prints, for tables with more than one (else empty)
    columns: tuple[Column, ...] = ()
    #: the key of the column that rows' mean/std/bold hold and that is reproduced (else None)
    column: str | None = None
    #: ``results`` or ``parameter_counts`` (see the module docstring)
    kind: str = "results"
    #: ``parameter_counts`` tables: ``module:function`` that counts a row's ``network``
    counter: str | None = None
    #: the ``not_in_paper`` rows: run and rendered after the paper's, never compared
    extra_rows: tuple[Row, ...] = ()

    @property
    def reproduced_column(self) -> Column | None:
        """The :class:`Column` being reproduced, for tables with several columns."""
        return next((c for c in self.columns if c.key == self.column), None)

    @property
    def heading(self) -> str:
        col = self.reproduced_column
        return f"{self.label} — {self.title}" + (f", {col.label} column" if col else "")

    @property
    def runnable_rows(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.runnable)

    def row(self, name: str) -> Row:
        """The row named ``name`` (with or without its marker)."""
        for r in self.rows:
            if name in (r.name, r.display_name):
                return r
        raise KeyError(f"{self.id} has no row {name!r}; rows: {[r.name for r in self.rows]}")

    def row_n(self, row: Row) -> int | None:
        """Runs behind a row's ± (the row's own n, else the table's)."""
        return row.n if row.n is not None else self.n


# --------------------------------------------------------------------------- locating files


def conf_dir() -> Path:
    """The Hydra ``conf/`` tree: ``$CTBENCH_CONF`` if set, else the repository's ``conf/``."""
    env = os.environ.get("CTBENCH_CONF")
    if env:
        return Path(env).expanduser().resolve()
    import ctbench

    return Path(ctbench.__file__).resolve().parents[2] / "conf"


def _table_dir() -> Path:
    return conf_dir() / "table"


def _norm(name: str) -> str:
    return re.sub(r"[\s_]+", "-", str(name).strip().lower())


def known_tables() -> dict[str, Path]:
    """``{id: path}`` of every ``conf/table/*.yaml``, sorted by id."""
    d = _table_dir()
    out: dict[str, Path] = {}
    if d.is_dir():
        for p in sorted(d.glob("*.yaml")):
            out[p.stem] = p
    return out


def _alias_map() -> dict[str, str]:
    """Every accepted spelling (normalised) → table id."""
    amap: dict[str, str] = {}
    for tid, path in known_tables().items():
        names = {tid}
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            raw = {}
        if isinstance(raw, dict):
            if raw.get("alias"):
                names.add(str(raw["alias"]))
            names.update(str(a) for a in (raw.get("aliases") or []))
        m = re.fullmatch(r"table(\d+)", tid)
        if m:  # "3", "table 3", "nature-table3"
            names.update({m.group(1), f"nature-table{m.group(1)}"})
        for name in names:
            amap.setdefault(_norm(name), tid)
    return amap


def resolve_id(name: str | int) -> str:
    """The table id for an id or alias (``"3"``, ``"table3"``, ``"arxiv-v2-table7"``)."""
    amap = _alias_map()
    key = _norm(str(name))
    if key in amap:
        return amap[key]
    key2 = key.replace("-", "")
    for k, tid in amap.items():
        if k.replace("-", "") == key2:
            return tid
    known = sorted(known_tables())
    aliases = sorted(k for k in amap if k not in known)
    raise UnknownTableError(
        f"unknown table {name!r}; known ids: {', '.join(known) or '(none)'}"
        + (f" (aliases: {', '.join(aliases)})" if aliases else "")
        + f"; tables are read from {_table_dir()}"
    )


# --------------------------------------------------------------------------- validation


def _num(value: Any, where: str, *, nullable: bool = True, minimum: float | None = None) -> float | None:
    if value is None:
        if nullable:
            return None
        raise TableError(f"{where}: a number is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TableError(f"{where}: expected a number, got {value!r}")
    f = float(value)
    if f != f:
        raise TableError(f"{where}: NaN is not a published value (use null for unknown)")
    if minimum is not None and f < minimum:
        raise TableError(f"{where}: {f} is below {minimum}")
    return f


def _int(value: Any, where: str, *, nullable: bool = True) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TableError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _str(value: Any, where: str, *, nullable: bool = True) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TableError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise TableError(f"{where}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TableError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(value)


def _std(std: Any, where: str) -> float | str | None:
    if isinstance(std, str):
        if std.strip().lower() != NA:
            raise TableError(f"{where}: the only string allowed is {NA!r}, got {std!r}")
        return NA
    return _num(std, where, minimum=0.0)


def _parse_cell(raw: Any, where: str) -> Cell:
    if not isinstance(raw, dict):
        raise TableError(f"{where}: expected a mapping with mean and std, got {raw!r}")
    unknown = set(raw) - _CELL_KEYS
    if unknown:
        raise TableError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_CELL_KEYS)}")
    if "std" not in raw or "mean" not in raw:
        raise TableError(f"{where}: mean and std must be given (null when unknown)")
    bold = raw.get("bold", False)
    ccd = raw.get("code_comment_differs", False)
    for name, value in (("bold", bold), ("code_comment_differs", ccd)):
        if not isinstance(value, bool):
            raise TableError(f"{where}.{name}: expected true/false, got {value!r}")
    return Cell(
        mean=_num(raw.get("mean"), f"{where}.mean"),
        std=_std(raw.get("std"), f"{where}.std"),
        bold=bold,
        code_comment=_str(raw.get("code_comment"), f"{where}.code_comment"),
        code_comment_differs=ccd,
    )


def _parse_row_with_columns(raw: dict, where: str, columns: dict[str, Column], column: str | None) -> Row:
    """A row of a multi-column table: one :class:`Cell` per column; the reproduced one is the row's value."""
    row_where = where
    if isinstance(raw.get("name"), str):
        where = f"{where} ({raw['name']})"
    if not columns or column is None:
        raise TableError(f"{where}: a row with `columns:` needs the table's `columns:` and `column:`")
    clash = sorted({"mean", "std", "bold"} & set(raw))
    if clash:
        raise TableError(f"{where}: give {clash} under `columns:`, not beside it")
    given = raw["columns"]
    if not isinstance(given, dict) or set(given) != set(columns):
        got = sorted(given) if isinstance(given, dict) else given
        raise TableError(f"{where}.columns: expected exactly the table's columns {sorted(columns)}, got {got!r}")
    cells = tuple((key, _parse_cell(given[key], f"{where}.columns.{key}")) for key in columns)
    chosen = dict(cells)[column]
    plain = {k: v for k, v in raw.items() if k != "columns"}
    plain.update(mean=chosen.mean, std=chosen.std, bold=chosen.bold)
    if chosen.code_comment is not None:
        plain.update(code_comment=chosen.code_comment, code_comment_differs=chosen.code_comment_differs)
    if plain.get("model") is not None:  # the reproduced column's overrides come first
        plain["overrides"] = list(columns[column].overrides) + list(_strings(raw.get("overrides"), f"{where}.overrides"))
    row = _parse_row(plain, row_where)
    return replace(row, cells=cells)


def _parse_columns(raw: Any, where: str) -> dict[str, Column]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) < 2:
        raise TableError(f"{where}: expected a mapping of at least two columns {{key: {{label, overrides}}}}, got {raw!r}")
    out: dict[str, Column] = {}
    for key, spec in raw.items():
        if not isinstance(key, str) or not _MODEL_RE.match(key):
            raise TableError(f"{where}: column key {key!r} is not a plain name")
        spec = spec or {}
        if not isinstance(spec, dict) or set(spec) - {"label", "overrides"}:
            raise TableError(f"{where}.{key}: expected {{label, overrides}}, got {spec!r}")
        overrides = _strings(spec.get("overrides"), f"{where}.{key}.overrides")
        for o in overrides:
            if "=" not in o:
                raise TableError(f"{where}.{key}.overrides: {o!r} is not a key=value Hydra override")
        out[key] = Column(key, _str(spec.get("label"), f"{where}.{key}.label") or key, overrides)
    return out


def _count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TableError(f"{where}: expected a non-negative integer parameter count, got {value!r}")
    return value


_COUNT_ROW_KEYS = {"name", "marker", "variant", "network", "params_total", "params_rnn", "source",
                   "borrowed_from", "notes"}


def _named_row(raw: Any, where: str, allowed: set[str], context: str) -> tuple[str, str]:
    """Check that a row is a mapping of ``allowed`` keys with a name; return the name and ``where (name)``."""
    if not isinstance(raw, dict):
        raise TableError(f"{where}: a row must be a mapping, got {raw!r}")
    unknown = set(raw) - allowed
    if unknown:
        raise TableError(f"{where}: unknown field(s) {sorted(unknown)} {context}; allowed: {sorted(allowed)}")
    name = _str(raw.get("name"), f"{where}.name", nullable=False)
    return name, f"{where} ({name})"


def _parse_count_row(raw: Any, where: str) -> Row:
    """A row of a ``kind: parameter_counts`` table."""
    name, where = _named_row(raw, where, _COUNT_ROW_KEYS, "in a parameter_counts table")
    source = _choice(raw.get("source"), SOURCES, f"{where}.source")
    borrowed_from = _str(raw.get("borrowed_from"), f"{where}.borrowed_from")
    if source == "borrowed" and not borrowed_from:
        raise TableError(f"{where}: a borrowed row needs borrowed_from (paper and table)")
    network = raw.get("network")
    if network is not None and (not isinstance(network, str) or not _MODEL_RE.match(network)):
        raise TableError(f"{where}.network: expected a network name or null, got {network!r}")
    total = _count(raw.get("params_total"), f"{where}.params_total")
    rnn = _count(raw.get("params_rnn"), f"{where}.params_rnn")
    if total is not None and rnn is not None and rnn > total:
        raise TableError(f"{where}: params_rnn {rnn} exceeds params_total {total}")
    return Row(
        name=name,
        source=source,
        marker=_str(raw.get("marker"), f"{where}.marker"),
        variant=_str(raw.get("variant"), f"{where}.variant"),
        borrowed_from=borrowed_from,
        notes=_str(raw.get("notes"), f"{where}.notes"),
        network=network,
        params_total=total,
        params_rnn=rnn,
    )


def _parse_row(raw: Any, where: str, columns: dict[str, Column] | None = None, column: str | None = None) -> Row:
    if not isinstance(raw, dict):
        raise TableError(f"{where}: a row must be a mapping, got {raw!r}")
    if "columns" in raw:
        return _parse_row_with_columns(raw, where, columns or {}, column)
    if columns:
        raise TableError(f"{where}: this table prints columns {sorted(columns)}: give the row's values under `columns:`")
    counts = sorted({"network", "params_total", "params_rnn"} & set(raw))
    if counts:
        raise TableError(f"{where}: {counts} belong to `kind: parameter_counts` tables only")
    unknown = set(raw) - _ROW_KEYS
    if unknown:
        raise TableError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_ROW_KEYS)}")
    name = _str(raw.get("name"), f"{where}.name", nullable=False)
    where = f"{where} ({name})"
    source = _choice(raw.get("source"), SOURCES, f"{where}.source")
    borrowed_from = _str(raw.get("borrowed_from"), f"{where}.borrowed_from")
    if source == "borrowed" and not borrowed_from:
        raise TableError(f"{where}: a borrowed row needs borrowed_from (paper and table)")
    if "std" not in raw or "mean" not in raw:
        raise TableError(f"{where}: mean and std must be given (null when unknown)")
    std = _std(raw.get("std"), f"{where}.std")
    model = raw.get("model")
    if model is not None and (not isinstance(model, str) or not _MODEL_RE.match(model)):
        raise TableError(f"{where}.model: expected a conf/model/ name or null, got {model!r}")
    overrides = _strings(raw.get("overrides"), f"{where}.overrides")
    for o in overrides:
        if "=" not in o:
            raise TableError(f"{where}.overrides: {o!r} is not a key=value Hydra override")
    if overrides and model is None:
        raise TableError(f"{where}: overrides given for a row without a model")
    bold = raw.get("bold", False)
    if not isinstance(bold, bool):
        raise TableError(f"{where}.bold: expected true/false, got {bold!r}")
    ccd = raw.get("code_comment_differs", False)
    if not isinstance(ccd, bool):
        raise TableError(f"{where}.code_comment_differs: expected true/false, got {ccd!r}")
    return Row(
        name=name,
        source=source,
        mean=_num(raw.get("mean"), f"{where}.mean"),
        std=std,
        n=_int(raw.get("n"), f"{where}.n"),
        time_min=_num(raw.get("time_min"), f"{where}.time_min", minimum=0.0),
        bold=bold,
        model=model,
        overrides=overrides,
        marker=_str(raw.get("marker"), f"{where}.marker"),
        variant=_str(raw.get("variant"), f"{where}.variant"),
        borrowed_from=borrowed_from,
        code_comment=_str(raw.get("code_comment"), f"{where}.code_comment"),
        code_comment_differs=ccd,
        calibration=_num(raw.get("calibration"), f"{where}.calibration", minimum=0.0),
        encoding=_str(raw.get("encoding"), f"{where}.encoding"),
        notes=_str(raw.get("notes"), f"{where}.notes"),
    )


def _parse_extra_row(raw: Any, where: str, columns: dict[str, Column], column: str | None) -> Row:
    """A ``not_in_paper`` row: a model ctbench runs beside the paper's rows, with nothing published."""
    name, where = _named_row(raw, where, _EXTRA_ROW_KEYS, "in a not_in_paper row (nothing is published for it)")
    model = raw.get("model")
    if not isinstance(model, str) or not _MODEL_RE.match(model):
        raise TableError(f"{where}.model: a not_in_paper row must name the conf/model/ that runs it, got {model!r}")
    overrides = _strings(raw.get("overrides"), f"{where}.overrides")
    for o in overrides:
        if "=" not in o:
            raise TableError(f"{where}.overrides: {o!r} is not a key=value Hydra override")
    if column is not None:
        overrides = tuple(columns[column].overrides) + overrides
    return Row(name=name, source=NOT_IN_PAPER_SOURCE, model=model, overrides=overrides, in_paper=False,
               variant=_str(raw.get("variant"), f"{where}.variant"), notes=_str(raw.get("notes"), f"{where}.notes"))


def parse_table(
    raw: Any, *, path: Path | None = None, expected_id: str | None = None, select_column: str | None = None
) -> Table:
    """Validate a table mapping (as read from YAML) into a :class:`Table`.

    ``select_column`` picks the reproduced column of a multi-column table instead of the file's
    ``column:`` (e.g. ``"equidistant"`` for the XOR table).
    """
    where = str(path) if path else "table"
    if not isinstance(raw, dict):
        raise TableError(f"{where}: expected a mapping at the top level")
    unknown = set(raw) - _TABLE_KEYS
    if unknown:
        raise TableError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_TABLE_KEYS)}")
    tid = _str(raw.get("id"), f"{where}.id", nullable=False)
    if expected_id is not None and tid != expected_id:
        raise TableError(f"{where}: id {tid!r} does not match the file name {expected_id!r}")
    kind = _choice(raw.get("kind", "results"), KINDS, f"{where}.kind")
    if kind == "parameter_counts":
        return _parse_count_table(raw, where, tid, path)
    if raw.get("counter") is not None:
        raise TableError(f"{where}.counter: only `kind: parameter_counts` tables have a counter")
    pm = raw.get("pm") or {}
    if not isinstance(pm, dict) or set(pm) - {"kind", "ddof"}:
        raise TableError(f"{where}.pm: expected {{kind, ddof}}, got {pm!r}")
    pm_kind = _choice(pm.get("kind", "population_std"), PM_KINDS, f"{where}.pm.kind")
    ddof = pm.get("ddof", 0 if pm_kind == "population_std" else None)
    if pm_kind == "population_std" and ddof != 0:
        raise TableError(f"{where}.pm: a population std has ddof 0, got {ddof!r}")
    if pm_kind == "sample_std" and ddof != 1:
        raise TableError(f"{where}.pm: a sample std has ddof 1, got {ddof!r}")
    decimals = raw.get("decimals", 3)
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 8:
        raise TableError(f"{where}.decimals: expected an integer 0..8, got {decimals!r}")
    rows_raw = raw.get("rows")
    if not isinstance(rows_raw, list) or not rows_raw:
        raise TableError(f"{where}.rows: expected a non-empty list of rows")
    columns = _parse_columns(raw.get("columns"), f"{where}.columns")
    column = raw.get("column") if select_column is None else select_column
    if columns and column not in columns:
        raise TableError(f"{where}.column: {column!r} is not one of the table's columns {sorted(columns)}")
    if not columns and column is not None:
        raise TableError(f"{where}.column: {column!r} given, but the table declares no `columns:`")
    rows = tuple(_parse_row(r, f"{where}.rows[{i}]", columns, column) for i, r in enumerate(rows_raw))
    extras_raw = raw.get("not_in_paper") or []
    if not isinstance(extras_raw, list):
        raise TableError(f"{where}.not_in_paper: expected a list of rows")
    extra_rows = tuple(_parse_extra_row(r, f"{where}.not_in_paper[{i}]", columns, column) for i, r in enumerate(extras_raw))
    seen: set[tuple[str, str | None]] = set()
    for r in (*rows, *extra_rows):
        key = (r.name, r.encoding)
        if key in seen:
            raise TableError(f"{where}: row {r.name!r} appears twice")
        seen.add(key)
    alias = _str(raw.get("alias"), f"{where}.alias")
    return Table(
        id=tid,
        alias=alias,
        label=_str(raw.get("label"), f"{where}.label") or tid,
        title=_str(raw.get("title"), f"{where}.title", nullable=False),
        status=_choice(raw.get("status"), STATUSES, f"{where}.status"),
        metric=_choice(raw.get("metric"), METRICS, f"{where}.metric"),
        direction=_choice(raw.get("direction"), DIRECTIONS, f"{where}.direction"),
        n=_int(raw.get("n"), f"{where}.n"),
        data=_str(raw.get("data"), f"{where}.data", nullable=False),
        rows=rows,
        pm_kind=pm_kind,
        pm_ddof=ddof,
        metric_label=_str(raw.get("metric_label"), f"{where}.metric_label"),
        decimals=decimals,
        time_unit=_str(raw.get("time_unit"), f"{where}.time_unit") or "min/epoch",
        caption=_str(raw.get("caption"), f"{where}.caption"),
        aliases=_strings(raw.get("aliases"), f"{where}.aliases"),
        sources=_strings(raw.get("sources"), f"{where}.sources"),
        notes=_strings(raw.get("notes"), f"{where}.notes"),
        path=path,
        columns=tuple(columns.values()),
        column=column,
        extra_rows=extra_rows,
    )


def _parse_count_table(raw: dict, where: str, tid: str, path: Path | None) -> Table:
    """A ``kind: parameter_counts`` table: rows of printed counts; no metric, spread or runs."""
    for key in ("pm", "n", "columns", "column", "decimals", "time_unit", "not_in_paper"):
        if raw.get(key) is not None:
            raise TableError(f"{where}.{key}: not used by a `kind: parameter_counts` table")
    metric = raw.get("metric", "parameters")
    if metric != "parameters":
        raise TableError(f"{where}.metric: a parameter_counts table's metric is 'parameters', got {metric!r}")
    counter = _str(raw.get("counter"), f"{where}.counter")
    if counter is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", counter):
        raise TableError(f"{where}.counter: expected 'package.module:function', got {counter!r}")
    rows_raw = raw.get("rows")
    if not isinstance(rows_raw, list) or not rows_raw:
        raise TableError(f"{where}.rows: expected a non-empty list of rows")
    rows = tuple(_parse_count_row(r, f"{where}.rows[{i}]") for i, r in enumerate(rows_raw))
    names = [r.name for r in rows]
    if len(set(names)) != len(names):
        raise TableError(f"{where}: a row appears twice in {names}")
    if any(r.network for r in rows) and counter is None:
        raise TableError(f"{where}: rows name networks but the table gives no `counter`")
    return Table(
        id=tid,
        alias=_str(raw.get("alias"), f"{where}.alias"),
        label=_str(raw.get("label"), f"{where}.label") or tid,
        title=_str(raw.get("title"), f"{where}.title", nullable=False),
        status=_choice(raw.get("status"), STATUSES, f"{where}.status"),
        metric="parameters",
        direction=_choice(raw.get("direction", "lower"), DIRECTIONS, f"{where}.direction"),
        n=None,
        data=_str(raw.get("data"), f"{where}.data", nullable=False),
        rows=rows,
        pm_kind="unknown",
        pm_ddof=None,
        metric_label=_str(raw.get("metric_label"), f"{where}.metric_label"),
        decimals=0,
        time_unit="n/a",
        caption=_str(raw.get("caption"), f"{where}.caption"),
        aliases=_strings(raw.get("aliases"), f"{where}.aliases"),
        sources=_strings(raw.get("sources"), f"{where}.sources"),
        notes=_strings(raw.get("notes"), f"{where}.notes"),
        path=path,
        kind="parameter_counts",
        counter=counter,
    )


def load_table(name: str | int, column: str | None = None) -> Table:
    """Load and validate ``conf/table/<id>.yaml`` for an id or alias.

    ``column``: for a table that prints several metric columns, the one to reproduce (default:
    the file's ``column:``).
    """
    tid = resolve_id(name)
    path = known_tables()[tid]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise TableError(f"{path}: not valid YAML: {e}") from e
    return parse_table(raw, path=path, expected_id=tid, select_column=column)
