"""PhysioNet/CinC Challenge 2012 in-hospital mortality (CfC paper Extended Data Fig. 6 = arXiv v2 Table 5).

The authors' ``train_physio.py`` loads the data with ``duv_physionet.py``, a copy of Rubanova
et al.'s ``latent_ode`` loader (``lib/physionet.py``). ``protocol=paper`` reproduces it exactly
(``../shared/reference/protocols.md`` §2.1):

- only set-a is used: 4,000 records ``set-a/<RecordID>.txt`` (lines ``Time,Parameter,Value``,
  times "hh:mm" since admission) and the label ``In-hospital_death`` of ``Outcomes-a.txt``;
- per record, the time of a line is ``hh + mm/60`` hours, quantised exactly as the loader does:
  ``round(t / 0.016) * 0.016`` with Python's ``round`` (round half to even) in float64, then
  stored as float32 (``torch.tensor`` of a list of floats). A new row starts whenever the
  quantised time differs from the previous *line's* (the first row is t = 0, initialised to
  zeros, and takes the lines stamped 00:00: RecordID and the descriptors). The quantisation is
  finer than a minute, so distinct minutes stay distinct rows;
- repeated measurements of one parameter in one row are averaged as the loader does: a running
  mean ``(prev * n + value) / (n + 1)`` in float32, in file order;
- the 41 parameters in the loader's order (:data:`PARAMS`); RecordID is not a feature;
- records sorted by RecordID (the loader uses the ``os.listdir`` order, which depends on the
  file system: the one trap this module fixes in both protocols), then sklearn
  ``train_test_split(train_size=0.8, random_state=42, shuffle=True)`` → 3,200 / 800;
- normalisation ``(v − min) / max`` per feature (not divided by max − min), min and max over the
  observed values of all of set-a (a leak), max = 0 replaced by 1; unobserved entries inside a
  record are not zeroed (they become −min/max; forward filling hides them), padding stays 0;
- the collate ``variable_time_collate_fn2`` writes ``tt[0] − tt[k−1]`` at positions 1…L−1 and the
  trainer then takes successive differences, so the model sees ``Δt_0 = Δt_1 = 0``,
  ``Δt_k = −(t_{k−1} − t_{k−2})`` for 2 ≤ k < L (negated and lagged by one step), a positive jump
  ``t_{L−2}`` at the first padded step k = L and 0 after it (see :func:`paper_elapsed`).

``protocol=clean`` changes only: min/max from the training records, a validation split
(``train_test_split(train, train_size=0.8, random_state=11, shuffle=True)`` as mTAN does →
2,560 / 640 / 800), and the true elapsed time ``Δt_0 = 0, Δt_k = t_k − t_{k−1}`` (0 on padding).

Batches: ``x`` (N, T_max, 41) normalised values, ``obs_mask`` (N, T_max, 41) bool (False on
padding), ``dt`` (N, T_max), ``y`` (N,) int64. The model sees ``[forward-filled x, obs_mask]``
(82 inputs) and reads out the output at the last step where any feature was observed.

Padding: the stored arrays pad every record to one global length T_max (the longest record of
set-a: 203 rows), and the loaders cut every batch back after its longest record
(:class:`TrimmedArrayDataset`, ``trim_batches=True``), which is exactly the authors' per-batch
padding: the collate pads to the batch's longest record, so a batch's arrays are bit-identical to
``variable_time_collate_fn2``'s. Even untrimmed, the global padding would change nothing the
model outputs or learns from: every row of a record up to its last row L−1 has an observation
(a row exists because a line was stamped with its time), the ``last_observed`` readout freezes
the output after that step, and the inputs and Δt up to it are per-record values that do not
depend on where the padding ends (the Δt jump t_{L−2} sits at step L, after the readout). Only
the padded steps differ (more of them); they cost compute (on set-a, random batches of 128 reach
about 152 rows on average against 203), not results.
"""

from __future__ import annotations

import io
import re
import tarfile
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ctbench.data.archive import (
    CorruptDataError,
    RemoteFile,
    flatten_splits,
    load_or_build_fingerprinted,
    sha256_file,
    unflatten_splits,
)
from ctbench.data.base import Arrays, ArrayDataset, SequenceDataModule
from ctbench.data.batch import Batch, TaskKind

#: The 41 parameters in the latent-ODE order: ``PhysioNet.params`` of Rubanova et al.'s
#: ``latent_ode/lib/physionet.py``, copied verbatim into the authors' ``duv_physionet.py``
#: (raminmh/CfC). 5 descriptors (stamped 00:00), then 36 time series (MechVent included).
PARAMS: Tuple[str, ...] = (
    "Age", "Gender", "Height", "ICUType", "Weight",
    "Albumin", "ALP", "ALT", "AST", "Bilirubin", "BUN", "Cholesterol", "Creatinine", "DiasABP",
    "FiO2", "GCS", "Glucose", "HCO3", "HCT", "HR", "K", "Lactate", "Mg", "MAP", "MechVent", "Na",
    "NIDiasABP", "NIMAP", "NISysABP", "PaCO2", "PaO2", "pH", "Platelets", "RespRate", "SaO2",
    "SysABP", "Temp", "TroponinI", "TroponinT", "Urine", "WBC",
)
PARAM_INDEX = {name: i for i, name in enumerate(PARAMS)}
N_PARAMS = len(PARAMS)
#: the one parameter of the files that is not a feature (the loader asserts exactly this)
ID_PARAM = "RecordID"
HEADER = "Time,Parameter,Value"
OUTCOMES_HEADER = "RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"
LABEL_COLUMN = "In-hospital_death"  # the 6th column of Outcomes-a.txt (the loader's labels[4])
N_RECORDS = 4000
#: bump whenever the processing below changes: it invalidates every cache
PROCESSING_VERSION = 1

_MEMBER_RE = re.compile(r"^set-a/(\d+)\.txt$")
_TIME_RE = re.compile(r"^(\d+):(\d+)$")


# -- reading the raw files -----------------------------------------------------------------
class Records:
    """Set-a parsed into the loader's per-record tables, padded to the longest record.

    record_ids (N,) int64 sorted; lengths (N,) rows per record; tt (N, T) float32 row times
    (0 on padding); vals (N, T, 41) float32 averaged raw values (0 where unobserved or padded);
    mask (N, T, 41) bool observed. On set-a: T = 203, 299,264 rows, 1,750,236 observed entries.
    """

    def __init__(self, record_ids, lengths, tt, vals, mask, n_lines):
        self.record_ids = record_ids
        self.lengths = lengths
        self.tt = tt
        self.vals = vals
        self.mask = mask
        self.n_lines = n_lines  # observation lines read (header excluded), RecordID lines included

    def __len__(self) -> int:
        return len(self.record_ids)


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:gz")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise CorruptDataError(f"{path}: truncated or unreadable tar.gz archive ({err})") from err


def read_member_texts(path: Path) -> Dict[int, str]:
    """``{RecordID: text}`` of every ``set-a/<RecordID>.txt`` member, read without unpacking."""
    path = Path(path)
    texts: Dict[int, str] = {}
    with _open_tar(path) as tf:
        try:
            for member in tf:
                if not member.isfile():
                    continue
                m = _MEMBER_RE.match(member.name)
                if m is None:
                    raise CorruptDataError(
                        f"{path}: unexpected member {member.name!r}; expected only set-a/<RecordID>.txt files"
                    )
                rid = int(m.group(1))
                if rid in texts:
                    raise CorruptDataError(f"{path}: member {member.name} appears twice")
                raw = tf.extractfile(member).read()
                try:
                    texts[rid] = raw.decode("ascii")
                except UnicodeDecodeError as err:
                    raise CorruptDataError(f"{path}: member {member.name} is not ASCII text ({err})") from err
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            raise CorruptDataError(f"{path}: truncated or corrupt tar.gz archive ({err})") from err
    if not texts:
        raise CorruptDataError(f"{path}: no set-a/<RecordID>.txt members")
    return texts


def _parse_lines(path: Path, texts: Dict[int, str], record_ids: np.ndarray):
    """Every record's lines as per-line arrays: record index, hours, parameter index, value.

    One pandas C-parser pass over all bodies; values with ``float_precision="round_trip"``
    (correctly rounded, equal to Python's ``float()`` the loader uses).
    """
    import pandas as pd

    bodies: List[str] = []
    counts = np.zeros(len(record_ids), dtype=np.int64)
    for r, rid in enumerate(record_ids):
        text = texts[int(rid)]
        header, _, body = text.partition("\n")
        if header.strip() != HEADER:
            raise CorruptDataError(f"{path}: member set-a/{rid}.txt does not start with the header {HEADER!r}")
        if "\r" in body or "\n\n" in body or body.startswith("\n"):
            body = "\n".join(line.strip() for line in body.splitlines() if line.strip())
        if body and not body.endswith("\n"):
            body += "\n"
        counts[r] = body.count("\n")
        bodies.append(body)
    rec = np.repeat(np.arange(len(record_ids), dtype=np.int64), counts)
    if not len(rec):
        return rec, np.zeros(0), np.zeros(0, np.int64), np.zeros(0)
    try:
        table = pd.read_csv(
            io.StringIO("".join(bodies)),
            header=None,
            names=["time", "param", "value"],
            dtype={"time": "category", "param": "category", "value": np.float64},
            float_precision="round_trip",
            skip_blank_lines=False,
            na_filter=False,
        )
    except (ValueError, pd.errors.ParserError) as err:
        raise CorruptDataError(f"{path}: malformed line in a set-a member ({err})") from err
    if len(table) != len(rec):
        raise CorruptDataError(f"{path}: read {len(table)} lines, expected {len(rec)}")

    # time in hours: float(hh) + float(mm) / 60.0, as the loader computes it
    time_cat = table["time"].cat
    hours_of = np.empty(len(time_cat.categories), dtype=np.float64)
    for i, s in enumerate(time_cat.categories):
        m = _TIME_RE.match(str(s).strip())
        if m is None:
            raise CorruptDataError(f"{path}: malformed time {s!r} (want hh:mm)")
        hours_of[i] = float(m.group(1)) + float(m.group(2)) / 60.0
    hours = hours_of[time_cat.codes.to_numpy()]

    param_cat = table["param"].cat
    unknown = [str(p) for p in param_cat.categories if p not in PARAM_INDEX and p != ID_PARAM]
    if unknown:
        raise CorruptDataError(
            f"{path}: unknown parameter(s) {unknown[:5]}; expected the 41 latent-ODE parameters and RecordID"
        )
    param_of = np.array([PARAM_INDEX.get(p, -1) for p in param_cat.categories], dtype=np.int64)
    param_idx = param_of[param_cat.codes.to_numpy()]
    vals = table["value"].to_numpy(dtype=np.float64)
    if table["time"].isna().any() or table["param"].isna().any() or np.isnan(vals).any():
        raise CorruptDataError(f"{path}: a line of a set-a member lacks its Time, Parameter or Value")

    # each record has exactly one RecordID line, naming its own file
    is_id = param_idx < 0
    if np.bincount(rec[is_id], minlength=len(record_ids)).max(initial=0) > 1 or (vals[is_id] != record_ids[rec[is_id]]).any():
        raise CorruptDataError(f"{path}: a set-a member holds another record's (or a second) RecordID line")
    return rec, hours, param_idx, vals


def quantise(hours: np.ndarray, quantization: float) -> np.ndarray:
    """``round(t / q) * q`` as the loader computes it (Python ``round``: half to even, float64)."""
    return np.round(hours / quantization) * quantization


def build_records(path: Path, quantization: float = 0.016) -> Records:
    """Parse set-a.tar.gz into the loader's per-record (tt, vals, mask), vectorised."""
    texts = read_member_texts(path)
    record_ids = np.array(sorted(texts), dtype=np.int64)
    n = len(record_ids)
    rec, hours, param_idx, values = _parse_lines(path, texts, record_ids)
    qt = quantise(hours, quantization)

    # rows: a new row whenever the quantised time differs from the previous line's
    # (prev_time starts at 0 for every record; row 0 is t = 0)
    first_of_rec = np.r_[True, rec[1:] != rec[:-1]] if len(rec) else np.zeros(0, bool)
    prev = np.where(first_of_rec, 0.0, np.r_[0.0, qt[:-1]])
    new_row = qt != prev
    cum = np.cumsum(new_row)
    starts = np.flatnonzero(first_of_rec)
    base = np.zeros(len(rec), dtype=np.int64)
    if len(rec):
        base_at_start = cum[starts] - new_row[starts]
        base = np.repeat(base_at_start, np.diff(np.r_[starts, len(rec)]))
    row = cum - base  # 0-based row within the record
    lengths = np.ones(n, dtype=np.int64)
    np.maximum.at(lengths, rec, row + 1)
    t_max = int(lengths.max())

    tt = np.zeros((n, t_max), dtype=np.float32)
    tt[rec[new_row], row[new_row]] = qt[new_row].astype(np.float32)

    vals = np.zeros((n, t_max, N_PARAMS), dtype=np.float32)
    mask = np.zeros((n, t_max, N_PARAMS), dtype=bool)
    obs = param_idx >= 0
    o_rec, o_row, o_par = rec[obs], row[obs], param_idx[obs]
    o_val = values[obs].astype(np.float32)  # the loader stores into float32 tensors
    key = (o_rec * t_max + o_row) * N_PARAMS + o_par
    order = np.argsort(key, kind="stable")  # stable: file order within a (record, row, param)
    key_s, val_s = key[order], o_val[order]
    group_start = np.r_[True, key_s[1:] != key_s[:-1]] if len(key_s) else np.zeros(0, bool)
    gid = np.cumsum(group_start) - 1
    occurrence = np.arange(len(key_s)) - np.flatnonzero(group_start)[gid]
    n_groups = int(group_start.sum())
    acc = np.zeros(n_groups, dtype=np.float32)
    first = occurrence == 0
    acc[gid[first]] = val_s[first]
    # running mean in float32, one occurrence index at a time (each group has at most one):
    # new = (prev * n + value) / (n + 1), the loader's "average" reduce
    for k in range(1, int(occurrence.max()) + 1 if len(occurrence) else 1):
        sel = occurrence == k
        g = gid[sel]
        nk = np.float32(k)
        acc[g] = (acc[g] * nk + val_s[sel]) / (nk + np.float32(1.0))
    gkey = key_s[group_start]
    flat_vals = vals.reshape(-1)
    flat_mask = mask.reshape(-1)
    flat_vals[gkey] = acc
    flat_mask[gkey] = True
    return Records(record_ids, lengths, tt, vals, mask, n_lines=len(rec))


def read_outcomes(path: Path) -> Dict[int, int]:
    """``{RecordID: In-hospital_death}`` from Outcomes-a.txt."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptDataError(f"{path}: unreadable outcomes file ({err})") from err
    if not lines or lines[0].strip() != OUTCOMES_HEADER:
        raise CorruptDataError(f"{path}: the header is not {OUTCOMES_HEADER!r}")
    out: Dict[int, int] = {}
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        if len(parts) != 6:
            raise CorruptDataError(f"{path}: line {i} has {len(parts)} fields, expected 6")
        try:
            rid = int(parts[0])
            numbers = [float(p) for p in parts[1:]]  # the loader: np.array(l[1:]).astype(float)
        except ValueError as err:
            raise CorruptDataError(f"{path}: line {i} is not numeric ({err})") from err
        death = numbers[4]
        if death not in (0.0, 1.0):
            raise CorruptDataError(f"{path}: line {i}: In-hospital_death is {parts[5]!r}, expected 0 or 1")
        if rid in out:
            raise CorruptDataError(f"{path}: RecordID {rid} appears twice")
        out[rid] = int(death)
    if not out:
        raise CorruptDataError(f"{path}: no outcome rows")
    return out


def check_set_archive(path: Path) -> None:
    """Content check of set-a.tar.gz: gzip/tar integrity, member names, headers, parseable lines."""
    path = Path(path)
    texts = read_member_texts(path)
    record_ids = np.array(sorted(texts), dtype=np.int64)
    _parse_lines(path, texts, record_ids)


# -- the authors' processing ---------------------------------------------------------------
def split_indices(n: int, protocol: str, split_seed: int = 42, val_seed: int = 11, train_size: float = 0.8) -> Dict[str, np.ndarray]:
    """Record indices per split, in the order sklearn's train_test_split returns them.

    paper: ``train_test_split(records, train_size=0.8, random_state=42, shuffle=True)``.
    clean: the same test split, then ``train_test_split(train, train_size=0.8, random_state=11,
    shuffle=True)`` for the validation split, as mTAN does.
    """
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(n), train_size=train_size, random_state=split_seed, shuffle=True)
    if protocol == "paper":
        return {"train": train, "test": test}
    train, val = train_test_split(train, train_size=train_size, random_state=val_seed, shuffle=True)
    return {"train": train, "val": val, "test": test}


def data_min_max(vals: np.ndarray, mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-feature min and max of the observed values (``get_data_min_max``), max = 0 → 1.

    A feature never observed in ``vals`` (impossible on set-a, where all 41 occur) gets min 0,
    max 1 instead of the loader's ±inf, which would turn every value into NaN.
    """
    flat_v = vals.reshape(-1, vals.shape[-1])
    flat_m = mask.reshape(-1, mask.shape[-1])
    lo = np.where(flat_m, flat_v, np.float32(np.inf)).min(axis=0)
    hi = np.where(flat_m, flat_v, np.float32(-np.inf)).max(axis=0)
    seen = flat_m.any(axis=0)
    lo = np.where(seen, lo, np.float32(0.0)).astype(np.float32)
    hi = np.where(seen, hi, np.float32(1.0)).astype(np.float32)
    hi[hi == 0.0] = 1.0
    return lo, hi


def normalise(vals: np.ndarray, lengths: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``(v − min) / max`` on every row of a record (unobserved entries too), 0 on padding."""
    x = (vals - lo) / hi  # float32, as the collate computes it
    pad = np.arange(vals.shape[1])[None, :] >= lengths[:, None]
    x[pad] = 0.0
    return x.astype(np.float32, copy=False)


def paper_elapsed(tt: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The Δt the authors' model sees: the collate's ``tt[:1] − tt[:-1]`` then the trainer's diff.

    collate: ``c[k] = tt[0] − tt[k−1]`` for 1 ≤ k < L, 0 elsewhere (the padded grid starts at 0);
    trainer: ``dt = [0, c[1:] − c[:-1]]``. So dt = 0, 0, −(t_1 − t_0), … , −(t_{L−2} − t_{L−3}),
    then ``t_{L−2}`` at the first padded step (k = L) and 0 after. Computed literally, in float32.
    """
    n, t_max = tt.shape
    steps = np.arange(t_max)[None, :]
    inside = (steps >= 1) & (steps < lengths[:, None])
    shifted = np.zeros_like(tt)
    shifted[:, 1:] = tt[:, :-1]
    combined = np.where(inside, tt[:, :1] - shifted, np.float32(0.0)).astype(np.float32)
    dt = np.zeros_like(combined)
    dt[:, 1:] = combined[:, 1:] - combined[:, :-1]
    return dt


def true_elapsed(tt: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``Δt_0 = 0, Δt_k = t_k − t_{k−1}`` inside a record, 0 on padding (float32)."""
    steps = np.arange(tt.shape[1])[None, :]
    inside = (steps >= 1) & (steps < lengths[:, None])
    dt = np.zeros_like(tt)
    dt[:, 1:] = tt[:, 1:] - tt[:, :-1]
    return np.where(inside, dt, np.float32(0.0)).astype(np.float32)


def process(
    records: Records,
    outcomes: Dict[int, int],
    protocol: str = "paper",
    split_seed: int = 42,
    val_seed: int = 11,
    train_size: float = 0.8,
) -> Dict[str, Arrays]:
    """Splits of batch fields (plus ``record_id``) from parsed records, per protocol."""
    missing = [int(r) for r in records.record_ids if int(r) not in outcomes]
    if missing:
        raise CorruptDataError(
            f"Outcomes-a.txt has no label for {len(missing)} set-a record(s), e.g. {missing[:5]}"
        )
    y = np.array([outcomes[int(r)] for r in records.record_ids], dtype=np.int64)
    idx = split_indices(len(records), protocol, split_seed, val_seed, train_size)
    stats_idx = np.arange(len(records)) if protocol == "paper" else idx["train"]
    lo, hi = data_min_max(records.vals[stats_idx], records.mask[stats_idx])
    x_all = normalise(records.vals, records.lengths, lo, hi)
    elapsed = paper_elapsed if protocol == "paper" else true_elapsed
    dt_all = elapsed(records.tt, records.lengths)
    out: Dict[str, Arrays] = {}
    for split, ix in idx.items():
        out[split] = {
            "x": x_all[ix],
            "obs_mask": records.mask[ix],
            "dt": dt_all[ix],
            "y": y[ix],
            "record_id": records.record_ids[ix],
        }
    return out


# -- the data module -----------------------------------------------------------------------
class TrimmedArrayDataset(ArrayDataset):
    """An :class:`ArrayDataset` whose batches end at the longest record of the batch.

    The authors' collate pads each batch to its longest record; the stored arrays are padded to
    the longest record of the data set. A record's length is one past its last step with any
    observation (every row of a record has one).
    """

    TIME_FIELDS = ("x", "dt", "obs_mask", "step_mask", "y_mask")

    def __init__(self, arrays: Arrays):
        super().__init__(arrays)
        observed = self.tensors["obs_mask"].any(dim=-1)
        steps = torch.arange(1, observed.shape[1] + 1)
        self.lengths = (observed * steps).amax(dim=1)

    def __getitem__(self, index: Sequence[int]) -> Batch:
        idx = torch.as_tensor(index, dtype=torch.long)
        steps = max(1, int(self.lengths[idx].max()))
        return Batch(**{
            name: (t[idx, :steps] if name in self.TIME_FIELDS else t[idx]) for name, t in self.tensors.items()
        })


class PhysioNet2012DataModule(SequenceDataModule):
    """In-hospital mortality from the first 48 h of an ICU stay (set-a), AUROC."""

    task_kind = TaskKind.SEQUENCE_CLASSIFICATION
    metric = "auroc"
    n_features = N_PARAMS
    n_outputs = 2  # the authors' Cfc(out_feature=2) with a class-weighted cross-entropy
    append_mask = True  # the model sees [forward-filled values, mask]: 82 inputs
    readout = "last_observed"

    SET_A = RemoteFile(
        "set-a.tar.gz",
        "physionet2012",
        urls=("https://physionet.org/files/challenge-2012/1.0.0/set-a.tar.gz?download",),
        # the repacked mirror copy (SOURCES.md); upstream archives pass the content check
        sha256=("abcd119bae0f9f98d5e63b7bce5b2d37c64328e7c1acacab3836d17787d841df",),
    )
    OUTCOMES_A = RemoteFile(
        "Outcomes-a.txt",
        "physionet2012",
        urls=("https://physionet.org/files/challenge-2012/1.0.0/Outcomes-a.txt",),
        sha256=("2613ea60ccda29f87571a7d6b09ad130858a8ccd66325bd073365925026883c2",),
    )
    REMOTES = (SET_A, OUTCOMES_A)

    def __init__(
        self,
        *args,
        quantization: float = 0.016,
        split_seed: int = 42,
        val_seed: int = 11,
        train_size: float = 0.8,
        expected_records: Optional[int] = N_RECORDS,
        trim_batches: bool = True,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.trim_batches = trim_batches
        self.quantization = quantization
        self.split_seed = split_seed
        self.val_seed = val_seed
        self.train_size = train_size
        self.expected_records = expected_records
        self.record_ids: Dict[str, np.ndarray] = {}

    @classmethod
    def check_content(cls, remote: RemoteFile, path: Path) -> None:
        if remote.name == cls.SET_A.name:
            check_set_archive(path)
        elif remote.name == cls.OUTCOMES_A.name:
            read_outcomes(path)

    def setup(self, stage: Optional[str] = None) -> None:
        fresh = self.splits is None
        super().setup(stage)
        if fresh and self.trim_batches:
            self.splits = {
                name: TrimmedArrayDataset({k: t.numpy() for k, t in ds.tensors.items()})
                for name, ds in self.splits.items()
            }

    def cache_path(self) -> Path:
        return self.data_dir / self.SET_A.subdir / "processed" / f"physionet2012_{self.protocol}.npz"

    def cache_key(self, set_sha256: str, outcomes_sha256: str) -> dict:
        return {
            "dataset": "physionet2012",
            "processing_version": PROCESSING_VERSION,
            "set_a_sha256": set_sha256,
            "outcomes_a_sha256": outcomes_sha256,
            "protocol": self.protocol,
            "quantization": self.quantization,
            "split_seed": self.split_seed,
            "val_seed": self.val_seed,
            "train_size": self.train_size,
            "expected_records": self.expected_records,
        }

    def build_splits(self) -> Dict[str, Arrays]:
        set_path = self.locate(self.SET_A)
        outcomes_path = self.locate(self.OUTCOMES_A)
        key = self.cache_key(sha256_file(set_path), sha256_file(outcomes_path))

        def build() -> Arrays:
            records = build_records(set_path, self.quantization)
            if self.expected_records is not None and len(records) != self.expected_records:
                raise CorruptDataError(
                    f"{set_path}: wrong record count: expected {self.expected_records} set-a records, found {len(records)}"
                )
            splits = process(
                records,
                read_outcomes(outcomes_path),
                protocol=self.protocol,
                split_seed=self.split_seed,
                val_seed=self.val_seed,
                train_size=self.train_size,
            )
            return flatten_splits(splits)

        arrays, self.fingerprint = load_or_build_fingerprinted(self.cache_path(), key, build)
        splits = unflatten_splits(arrays)
        self.record_ids = {split: fields.pop("record_id") for split, fields in splits.items()}
        return splits
