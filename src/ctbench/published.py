"""The published-number registry: ``conf/table/<id>.yaml`` as small validated dataclasses.

Each table file holds one paper table exactly as the paper prints it (see
``published_tables.md`` §13 for the encoding). Nothing here computes a published number; the
loader only checks that the file is well formed, so a typo fails loudly instead of silently
changing a comparison.

    >>> from ctbench.published import load_table
    >>> t = load_table("3")             # or "table3", or the arXiv alias "arxiv-v2-table7"
    >>> t.row("CfC (ours)").mean
    0.643
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DIRECTIONS",
    "METRICS",
    "NA",
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

_TABLE_KEYS = {
    "id", "alias", "aliases", "label", "title", "caption", "status", "metric", "metric_label",
    "direction", "decimals", "pm", "n", "time_unit", "data", "sources", "notes", "rows",
}
_ROW_KEYS = {
    "name", "marker", "variant", "model", "overrides", "mean", "std", "n", "time_min", "bold",
    "source", "borrowed_from", "code_comment", "code_comment_differs", "calibration", "encoding",
    "notes",
}
_MODEL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class TableError(ValueError):
    """A table file is malformed (the message names the file, the row and the field)."""


class UnknownTableError(TableError, KeyError):
    """No table has this id or alias (the message lists the known ids)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


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

    @property
    def heading(self) -> str:
        return f"{self.label} — {self.title}"

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


def _parse_row(raw: Any, where: str) -> Row:
    if not isinstance(raw, dict):
        raise TableError(f"{where}: a row must be a mapping, got {raw!r}")
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
    std = raw.get("std")
    if isinstance(std, str):
        if std.strip().lower() != NA:
            raise TableError(f"{where}.std: the only string allowed is {NA!r}, got {std!r}")
        std = NA
    else:
        std = _num(std, f"{where}.std", minimum=0.0)
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


def parse_table(raw: Any, *, path: Path | None = None, expected_id: str | None = None) -> Table:
    """Validate a table mapping (as read from YAML) into a :class:`Table`."""
    where = str(path) if path else "table"
    if not isinstance(raw, dict):
        raise TableError(f"{where}: expected a mapping at the top level")
    unknown = set(raw) - _TABLE_KEYS
    if unknown:
        raise TableError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_TABLE_KEYS)}")
    tid = _str(raw.get("id"), f"{where}.id", nullable=False)
    if expected_id is not None and tid != expected_id:
        raise TableError(f"{where}: id {tid!r} does not match the file name {expected_id!r}")
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
    rows = tuple(_parse_row(r, f"{where}.rows[{i}]") for i, r in enumerate(rows_raw))
    seen: set[tuple[str, str | None]] = set()
    for r in rows:
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
    )


def load_table(name: str | int) -> Table:
    """Load and validate ``conf/table/<id>.yaml`` for an id or alias."""
    tid = resolve_id(name)
    path = known_tables()[tid]
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise TableError(f"{path}: not valid YAML: {e}") from e
    return parse_table(raw, path=path, expected_id=tid)
