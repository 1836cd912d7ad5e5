"""Human activity = UCI "Localization Data for Person Activity" (CfC paper, Nature Table 2).

The authors' ``train_person_acitivity.py`` (sic) loads the data with ``duv_person_activity.py``, a
copy of Rubanova et al.'s ``latent_ode`` "activity" loader (``person_activity.py``).
``protocol=paper`` reproduces it exactly (``../shared/reference/protocols.md`` §2.5):

- the file ``ConfLongDemo_JSI.txt``: one line per tag reading,
  ``<sequence>,<tag id>,<timestamp>,<date>,<x>,<y>,<z>,<activity>``; a record is a run of
  consecutive lines with the same sequence name (A01 … E05);
- 4 tags (:data:`TAG_IDS`: ankle left, ankle right, chest, belt) × (x, y, z) = 12 values and a
  12-dim observation mask;
- time of a line: ``round((float(timestamp) − float(first timestamp of its record)) / 1e5)`` with
  Python's ``round`` (half to even), in ticks; a record starts with a row at tick 0 and a new row
  starts whenever the tick differs from the previous *line's*. The loader's comment calls a tick
  "100 ms" but also says 10,000 units are 1 ms, which makes a tick 10 ms; the code is kept;
- readings of one tag in one row are averaged as the loader does: a float32 running mean
  ``(prev · n + value) / (n + 1)`` in file order;
- labels: the 11 activity names are merged into 7 classes (:data:`LABEL_TO_CLASS`, latent_ode's
  ``label_dict``) and stored as an 11-long vector with a 1 at the class index of every label seen
  in the row (only positions 0 … 6 can be set; a row whose readings carry two labels has two
  ones). The class is its argmax (the lowest such index); a row counts (``y_mask``) when any
  label is set. The model has 11 logits, as the authors' ``Cfc(out_feature=11)``;
- windows of 50 rows with a slide of 25 (``while offset + 50 < len``), times re-based to the
  window's first row, per record in file order; at most 10,000 windows (``n_samples``);
- sklearn ``train_test_split(train_size=0.8, random_state=42, shuffle=True)``;
- then **both train and test are bootstrap-resampled with replacement**:
  ``np.random.choice(n, n)`` on train, then on test, from the global NumPy RNG. The CfC script
  never seeds it (not reproducible); ctbench draws from ``RandomState(bootstrap_seed)`` (default
  1991, Rubanova's seed), train first, and records the seed.

``protocol=clean`` changes only: no bootstrap, and a seeded validation split of the training
windows (``train_test_split(test_size=0.1, random_state=val_seed)``); the test windows are the
same as under ``paper``.

Batches: ``x`` (N, 50, 12) float32 (0 where unobserved), ``obs_mask`` (N, 50, 12) bool, ``dt``
(N, 50) = diff(ticks) with 0 at the first step (the experiment's ``sequence.tau`` multiplies it, as
the authors' ``t * tau``), ``y`` (N, 50) int64 class, ``y_mask`` (N, 50) bool. The model sees
``[forward-filled x, obs_mask]`` (24 inputs) and predicts at every step.

The file has no published hash: its SHA-256 is recorded in the processed cache's sidecar
(``<data_dir>/person_activity/processed/person_activity_windows.npz.json``, key
``source_sha256``) and kept as ``source_sha256`` on the data module.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from sklearn.model_selection import train_test_split

from ctbench.data.archive import (
    CorruptDataError,
    RemoteFile,
    fingerprint,
    flatten_splits,
    load_or_build_fingerprinted,
    sha256_file,
)
from ctbench.data.base import Arrays, SequenceDataModule
from ctbench.data.batch import TaskKind

log = logging.getLogger(__name__)

#: latent_ode's ``tag_ids``, in its order (the feature order: 3 values per tag)
TAG_IDS: Tuple[str, ...] = (
    "010-000-024-033",  # ankle left
    "010-000-030-096",  # ankle right
    "020-000-033-111",  # chest
    "020-000-032-221",  # belt
)
#: latent_ode's ``label_names`` (11 activities; the length of the label vector)
LABEL_NAMES: Tuple[str, ...] = (
    "walking",
    "falling",
    "lying down",
    "lying",
    "sitting down",
    "sitting",
    "standing up from lying",
    "on all fours",
    "sitting on the ground",
    "standing up from sitting",
    "standing up from sit on grnd",
)
#: latent_ode's ``label_dict``: the 11 activities merged into 7 classes
LABEL_TO_CLASS: Dict[str, int] = {
    "walking": 0,
    "falling": 1,
    "lying": 2,
    "lying down": 2,
    "sitting": 3,
    "sitting down": 3,
    "standing up from lying": 4,
    "standing up from sitting": 4,
    "standing up from sit on grnd": 4,
    "on all fours": 5,
    "sitting on the ground": 6,
}
CLASS_NAMES: Tuple[str, ...] = ("walking", "falling", "lying", "sitting", "standing up", "on all fours", "sitting on the ground")
N_TAGS = len(TAG_IDS)
N_VALUES = 3 * N_TAGS  # 12
N_LABELS = len(LABEL_NAMES)  # 11 (the one-hot width and the number of logits)
N_CLASSES = len(CLASS_NAMES)  # 7
TICK = 10**5  # timestamp units per tick
#: bump whenever the processing below changes: it invalidates every cache
PROCESSING_VERSION = 1

_TAG_INDEX = {t: i for i, t in enumerate(TAG_IDS)}


# -- parsing ------------------------------------------------------------------------------
class Record:
    """One record (a run of lines with the same sequence name), as latent_ode builds it."""

    __slots__ = ("record_id", "ticks", "values", "mask", "labels")

    def __init__(self, record_id: str, ticks: np.ndarray, values: np.ndarray, mask: np.ndarray, labels: np.ndarray):
        self.record_id = record_id
        self.ticks = ticks  # (T,) float32 (torch.tensor of [tensor(0.), int, ...])
        self.values = values  # (T, 12) float32
        self.mask = mask  # (T, 12) float32 0/1
        self.labels = labels  # (T, 11) float32 0/1


class _Builder:
    """The per-record lists of latent_ode's loop (rows of tick, values, mask, nobs, labels)."""

    def __init__(self, record_id: str):
        self.record_id = record_id
        self.ticks: List[int] = [0]
        self.values: List[np.ndarray] = [np.zeros((N_TAGS, 3), np.float32)]
        self.mask: List[np.ndarray] = [np.zeros((N_TAGS, 3), np.float32)]
        self.nobs: List[np.ndarray] = [np.zeros(N_TAGS, np.float32)]
        self.labels: List[np.ndarray] = [np.zeros(N_LABELS, np.float32)]

    def new_row(self, tick: int) -> None:
        self.ticks.append(tick)
        self.values.append(np.zeros((N_TAGS, 3), np.float32))
        self.mask.append(np.zeros((N_TAGS, 3), np.float32))
        self.nobs.append(np.zeros(N_TAGS, np.float32))
        self.labels.append(np.zeros(N_LABELS, np.float32))

    def add(self, tag: int, value: np.ndarray, label: str, reduce: str) -> None:
        n = self.nobs[-1][tag]
        if reduce == "average" and n > 0:
            prev = self.values[-1][tag]
            self.values[-1][tag] = (prev * n + value) / (n + np.float32(1))  # float32 throughout
        else:
            self.values[-1][tag] = value
        self.mask[-1][tag] = 1
        self.nobs[-1][tag] += 1
        if label in LABEL_TO_CLASS:
            self.labels[-1][LABEL_TO_CLASS[label]] = 1

    def finish(self) -> Record:
        return Record(
            self.record_id,
            np.asarray(self.ticks, dtype=np.float32),
            np.stack(self.values).reshape(len(self.ticks), N_VALUES),
            np.stack(self.mask).reshape(len(self.ticks), N_VALUES),
            np.stack(self.labels),
        )


def parse_lines(lines: Sequence[str], reduce: str = "average", where: str = "ConfLongDemo_JSI.txt") -> List[Record]:
    """latent_ode's loop over the lines of ``ConfLongDemo_JSI.txt``, record by record."""
    records: List[Record] = []
    current: Optional[_Builder] = None
    first_tp = 0.0
    prev_tick = -1
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue  # latent_ode would fail on a blank line; the real file ends with a newline only
        fields = line.strip().split(",")
        if len(fields) != 8:
            raise CorruptDataError(f"{where}: line {lineno} has {len(fields)} comma-separated fields, expected 8: {line.strip()[:80]!r}")
        record_id, tag_id, stamp, _date, v1, v2, v3, label = fields
        try:
            value = np.array((float(v1), float(v2), float(v3)), dtype=np.float32)
            time = float(stamp)
        except ValueError as err:
            raise CorruptDataError(f"{where}: line {lineno}: unreadable number ({err})") from err
        if current is None or record_id != current.record_id:
            if current is not None:
                records.append(current.finish())
            current = _Builder(record_id)
            first_tp = time
            tick = round((time - first_tp) / TICK)  # 0
            prev_tick = tick
        else:
            tick = round((time - first_tp) / TICK)  # Python round: half to even
        if tick != prev_tick:
            current.new_row(tick)
            prev_tick = tick
        if tag_id in _TAG_INDEX:
            current.add(_TAG_INDEX[tag_id], value, label, reduce)
        elif tag_id != "RecordID":
            raise CorruptDataError(f"{where}: line {lineno}: unexpected tag id {tag_id!r}; known: {', '.join(TAG_IDS)}")
    if current is not None:
        records.append(current.finish())
    return records


def read_records(path: Path, reduce: str = "average") -> List[Record]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptDataError(f"{path}: unreadable text file ({err})") from err
    # read_text translates \r\n and \r to \n, as the authors' open() + readlines() do
    records = parse_lines(text.split("\n"), reduce=reduce, where=str(path))
    if not records:
        raise CorruptDataError(f"{path}: no readings found")
    return records


def check_file(path: Path) -> None:
    """Content check: every line parses (8 fields, known tags, numbers) and labels are known."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptDataError(f"{path}: unreadable text file ({err})") from err
    labels = set()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        if len(fields) != 8:
            raise CorruptDataError(f"{path}: line {lineno} has {len(fields)} comma-separated fields, expected 8")
        if fields[1] not in _TAG_INDEX:
            raise CorruptDataError(f"{path}: line {lineno}: unexpected tag id {fields[1]!r}")
        labels.add(fields[7])
    if not labels:
        raise CorruptDataError(f"{path}: no readings found")
    unknown = sorted(labels - set(LABEL_NAMES))
    if unknown:
        raise CorruptDataError(f"{path}: unknown activity label(s) {unknown}; known: {', '.join(LABEL_NAMES)}")


# -- windows, split, bootstrap ------------------------------------------------------------
def cut_windows(records: Sequence[Record], max_seq_length: int = 50) -> Dict[str, np.ndarray]:
    """latent_ode's ``save_record``: windows at offsets 0, L/2, … while offset + L < T,
    times re-based to the window's first row. Returns stacked arrays (record order)."""
    slide = max_seq_length // 2
    out: Dict[str, list] = {"ticks": [], "values": [], "mask": [], "labels": [], "record": []}
    for r_index, r in enumerate(records):
        offset = 0
        while offset + max_seq_length < len(r.ticks):
            idx = slice(offset, offset + max_seq_length)
            out["ticks"].append(r.ticks[idx] - r.ticks[offset])
            out["values"].append(r.values[idx])
            out["mask"].append(r.mask[idx])
            out["labels"].append(r.labels[idx])
            out["record"].append(r_index)
            offset += slide
    n = len(out["ticks"])
    if n == 0:
        return {
            "ticks": np.zeros((0, max_seq_length), np.float32),
            "values": np.zeros((0, max_seq_length, N_VALUES), np.float32),
            "mask": np.zeros((0, max_seq_length, N_VALUES), np.float32),
            "labels": np.zeros((0, max_seq_length, N_LABELS), np.float32),
            "record": np.zeros(0, np.int64),
        }
    return {
        "ticks": np.stack(out["ticks"]).astype(np.float32),
        "values": np.stack(out["values"]).astype(np.float32),
        "mask": np.stack(out["mask"]).astype(np.float32),
        "labels": np.stack(out["labels"]).astype(np.float32),
        "record": np.asarray(out["record"], dtype=np.int64),
    }


def to_batch_fields(windows: Dict[str, np.ndarray]) -> Arrays:
    """Windows → Batch fields: x, obs_mask, dt (diff of ticks, 0 first), y (argmax class), y_mask."""
    ticks = windows["ticks"]
    dt = np.zeros_like(ticks, dtype=np.float32)
    dt[:, 1:] = ticks[:, 1:] - ticks[:, :-1]
    labels = windows["labels"]
    return {
        "x": windows["values"].astype(np.float32),
        "obs_mask": windows["mask"] > 0,
        "dt": dt,
        "y": labels.argmax(axis=-1).astype(np.int64),
        "y_mask": labels.sum(axis=-1) > 0,
    }


def split_indices(n: int, train_size: float = 0.8, split_seed: int = 42) -> Tuple[np.ndarray, np.ndarray]:
    """``train_test_split(data, train_size=0.8, random_state=42, shuffle=True)`` as indices
    (the shuffle does not depend on the data, so the windows land in the same order)."""
    train, test = train_test_split(np.arange(n), train_size=train_size, random_state=split_seed, shuffle=True)
    return np.asarray(train), np.asarray(test)


def bootstrap_indices(n_train: int, n_test: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """``np.random.choice(n, n)`` for train, then for test, from one ``RandomState(seed)``."""
    rng = np.random.RandomState(seed)
    return rng.choice(n_train, n_train), rng.choice(n_test, n_test)


def split_windows(
    windows: Dict[str, np.ndarray],
    protocol: str = "paper",
    max_windows: int = 10000,
    train_size: float = 0.8,
    split_seed: int = 42,
    bootstrap: Optional[bool] = None,
    bootstrap_seed: int = 1991,
    val_fraction: float = 0.1,
    val_seed: int = 11,
) -> Dict[str, Arrays]:
    """Windows (from :func:`cut_windows`) → splits of Batch fields.

    ``bootstrap`` None: on under ``paper``, off under ``clean``.
    """
    windows = {k: a[:max_windows] for k, a in windows.items()}
    fields = to_batch_fields(windows)
    n = len(fields["x"])
    train_idx, test_idx = split_indices(n, train_size, split_seed)
    if bootstrap is None:
        bootstrap = protocol == "paper"
    if bootstrap:
        b_train, b_test = bootstrap_indices(len(train_idx), len(test_idx), bootstrap_seed)
        train_idx, test_idx = train_idx[b_train], test_idx[b_test]
    splits = {"train": {k: a[train_idx] for k, a in fields.items()}, "test": {k: a[test_idx] for k, a in fields.items()}}
    if protocol == "clean":
        keep, val = train_test_split(np.arange(len(train_idx)), test_size=val_fraction, random_state=val_seed, shuffle=True)
        train = splits["train"]
        splits["train"] = {k: a[np.asarray(keep)] for k, a in train.items()}
        splits["val"] = {k: a[np.asarray(val)] for k, a in train.items()}
    return splits


def process(records: Sequence[Record], max_seq_length: int = 50, **split_kwargs) -> Dict[str, Arrays]:
    """Records → windows → splits (see :func:`split_windows` for the keyword arguments)."""
    return split_windows(cut_windows(records, max_seq_length), **split_kwargs)


# -- the data module ---------------------------------------------------------------------
class PersonActivityDataModule(SequenceDataModule):
    """Per-time-step activity classification on 50-step windows of 4 tags' positions."""

    task_kind = TaskKind.PER_STEP_CLASSIFICATION
    metric = "accuracy"
    n_features = N_VALUES
    n_outputs = N_LABELS  # 11 logits (the authors' out_feature=11); classes 0 … 6 occur
    append_mask = True

    REMOTE = RemoteFile(
        "ConfLongDemo_JSI.txt",
        "person_activity",
        urls=("https://archive.ics.uci.edu/ml/machine-learning-databases/00196/ConfLongDemo_JSI.txt",),
        sha256=(),  # none published: the content check decides; the hash goes to the cache sidecar
    )
    REMOTES = (REMOTE,)

    def __init__(
        self,
        *args,
        max_seq_length: int = 50,
        max_windows: int = 10000,
        reduce: str = "average",
        train_size: float = 0.8,
        split_seed: int = 42,
        bootstrap: Optional[bool] = None,
        bootstrap_seed: int = 1991,
        val_fraction: float = 0.1,
        val_seed: int = 11,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if reduce not in ("average", "last"):
            raise ValueError(f"reduce must be 'average' or 'last', got {reduce!r}")
        self.max_seq_length = max_seq_length
        self.max_windows = max_windows
        self.reduce = reduce
        self.train_size = train_size
        self.split_seed = split_seed
        self.bootstrap = bootstrap
        self.bootstrap_seed = bootstrap_seed
        self.val_fraction = val_fraction
        self.val_seed = val_seed
        self.source_sha256: Optional[str] = None
        self.n_windows: Optional[int] = None

    @classmethod
    def check_content(cls, remote: RemoteFile, path: Path) -> None:
        check_file(path)

    def cache_path(self) -> Path:
        return self.data_dir / self.REMOTE.subdir / "processed" / "person_activity_windows.npz"

    def cache_key(self, source_sha256: str) -> dict:
        """What the cached windows depend on (the split and bootstrap are redone in memory)."""
        return {
            "dataset": "person_activity",
            "processing_version": PROCESSING_VERSION,
            "source_sha256": source_sha256,  # recorded here: no hash is published for the file
            "max_seq_length": self.max_seq_length,
            "reduce": self.reduce,
        }

    @property
    def use_bootstrap(self) -> bool:
        return self.protocol == "paper" if self.bootstrap is None else bool(self.bootstrap)

    def build_splits(self) -> Dict[str, Arrays]:
        path = self.locate(self.REMOTE)
        self.source_sha256 = sha256_file(path)
        log.info("%s: sha256 %s", path, self.source_sha256)
        key = self.cache_key(self.source_sha256)

        def build() -> Arrays:
            return cut_windows(read_records(path, self.reduce), self.max_seq_length)

        windows, _ = load_or_build_fingerprinted(self.cache_path(), key, build)
        self.n_windows = min(len(windows["ticks"]), self.max_windows)
        splits = split_windows(
            windows,
            protocol=self.protocol,
            max_windows=self.max_windows,
            train_size=self.train_size,
            split_seed=self.split_seed,
            bootstrap=self.use_bootstrap,
            bootstrap_seed=self.bootstrap_seed,
            val_fraction=self.val_fraction,
            val_seed=self.val_seed,
        )
        self.fingerprint = fingerprint(flatten_splits(splits))
        return splits


__all__ = [
    "CLASS_NAMES",
    "LABEL_NAMES",
    "LABEL_TO_CLASS",
    "PersonActivityDataModule",
    "TAG_IDS",
    "bootstrap_indices",
    "cut_windows",
    "parse_lines",
    "process",
    "read_records",
    "split_indices",
    "split_windows",
    "to_batch_fields",
]
