"""Walker2d kinematic per-time-step regression (Lechner & Hasani 2020; CfC paper Table 3).

The authors' protocol, exactly: ODE-LSTM's ``Walker2dImitationData(seq_len=64)``, which the
CfC repository's ``train_walker.py`` uses (see ``../shared/reference/protocols.md`` §2.2):

- the 400 rollouts ``walker/rollout_000.npy`` … ``rollout_399.npy`` (float64, (T, 17)) are
  sorted by name and the list is shuffled in place with ``RandomState(125487)``;
- test = the first int(0.15·n) files, validation = up to int(0.25·n), train = the rest;
- per file, x = rows[:-1] and y = rows[1:], cast to float32 (next-state prediction);
- one ``RandomState(891374)`` is consumed train → validation → test, file by file, one
  ``rand()`` per raw step; a step is kept when the draw is < 0.9 and its elapsed time is the
  number of raw steps since the previous kept step (the first kept step gets its index + 1);
  the target stays the raw next state of that step;
- windows of 64 steps with stride 16 (starts ``range(0, len - 64, 16)``) are cut per file
  from the thinned sequence. No normalisation.

Expected (from the authors' files): train/val/test = 9684/1272/1937 windows from 300/40/60
files. The protocol switch does not change the data: only checkpoint selection differs.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ctbench.data.archive import (
    CorruptDataError,
    RemoteFile,
    flatten_splits,
    load_or_build_fingerprinted,
    sha256_file,
    unflatten_splits,
)
from ctbench.data.base import Arrays, SequenceDataModule
from ctbench.data.batch import TaskKind

N_ROLLOUTS = 400
N_DIMS = 17
MEMBER_PREFIX = "walker/"
MEMBER_NAMES = tuple(f"{MEMBER_PREFIX}rollout_{i:03d}.npy" for i in range(N_ROLLOUTS))
#: bump whenever the processing below changes: it invalidates every cache
PROCESSING_VERSION = 1

Rollout = Tuple[np.ndarray, np.ndarray]  # (x, y), float32 (T-1, 17) each


# -- reading the archive -----------------------------------------------------------------
def _npy_members(zf: zipfile.ZipFile) -> List[str]:
    """The ``walker/*.npy`` members (the authors' loader reads ``*.npy`` in ``data/walker``)."""
    return [
        n for n in zf.namelist()
        if n.startswith(MEMBER_PREFIX) and n.endswith(".npy") and "/" not in n[len(MEMBER_PREFIX):]
    ]


def _check_members(path: Path, names: Sequence[str]) -> None:
    if sorted(names) == list(MEMBER_NAMES):
        return
    got, want = set(names), set(MEMBER_NAMES)
    missing, extra = sorted(want - got), sorted(got - want)
    detail = []
    if missing:
        detail.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
    if extra:
        detail.append(f"unexpected {len(extra)} (e.g. {', '.join(extra[:3])})")
    raise CorruptDataError(
        f"{path}: wrong member count: expected exactly {N_ROLLOUTS} files "
        f"{MEMBER_NAMES[0]} … {MEMBER_NAMES[-1]}, found {len(names)} .npy files under {MEMBER_PREFIX}"
        + (f"; {'; '.join(detail)}" if detail else "")
    )


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise CorruptDataError(f"{path}: truncated or unreadable zip archive ({err})") from err


def _load_member(zf: zipfile.ZipFile, path: Path, name: str) -> np.ndarray:
    try:
        raw = zf.read(name)  # checks the member's CRC
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as err:
        raise CorruptDataError(f"{path}: member {name} is unreadable (truncated or corrupt zip: {err})") from err
    try:
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise CorruptDataError(f"{path}: member {name} is not a valid .npy file ({err})") from err
    if arr.ndim != 2 or arr.shape[1] != N_DIMS or arr.shape[0] < 2:
        raise CorruptDataError(
            f"{path}: member {name} has shape {arr.shape}, expected (T, {N_DIMS}) with T >= 2"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise CorruptDataError(f"{path}: member {name} has dtype {arr.dtype}, expected float")
    return arr


def read_rollouts(path: Path) -> Dict[str, np.ndarray]:
    """All 400 rollouts of ``walker.zip``, keyed by bare file name, read without unpacking."""
    path = Path(path)
    with _open_zip(path) as zf:
        names = _npy_members(zf)
        _check_members(path, names)
        return {n[len(MEMBER_PREFIX):]: _load_member(zf, path, n) for n in names}


def check_archive(path: Path) -> None:
    """Content check of walker.zip: zip integrity (CRCs), the 400 members, each (T, 17)."""
    read_rollouts(path)


# -- the authors' processing -------------------------------------------------------------
def split_files(names: Sequence[str], split_seed: int = 125487) -> Dict[str, List[str]]:
    """Sort, shuffle in place with RandomState(split_seed), then test / valid / train."""
    files = sorted(names)
    np.random.RandomState(split_seed).shuffle(files)
    test_n = int(0.15 * len(files))
    valid_n = int((0.15 + 0.1) * len(files))
    return {"train": files[valid_n:], "val": files[test_n:valid_n], "test": files[:test_n]}


def thin(x: np.ndarray, y: np.ndarray, rng: np.random.RandomState, keep_prob: float = 0.9) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Irregular sampling of one file: one draw per raw step, keep if < keep_prob.

    Returns (x, dt, y) of the kept steps; dt = raw steps since the previous kept step (the
    first kept step gets its index + 1). ``rng.rand(n)`` yields the same numbers as n
    successive ``rng.rand()`` calls, so the authors' per-step loop is reproduced exactly.
    """
    kept = np.flatnonzero(rng.rand(len(y)) < keep_prob)
    dt = np.diff(kept, prepend=-1).astype(np.float32)
    return x[kept], dt, y[kept]


def windows(seq: np.ndarray, seq_len: int, stride: int) -> np.ndarray:
    """Windows at starts range(0, len - seq_len, stride) (the end is excluded, as upstream)."""
    starts = np.arange(0, len(seq) - seq_len, stride)
    if len(starts) == 0:
        return np.zeros((0, seq_len) + seq.shape[1:], seq.dtype)
    return seq[starts[:, None] + np.arange(seq_len)[None, :]]


def process(
    rollouts: Dict[str, np.ndarray],
    seq_len: int = 64,
    stride: int = 16,
    keep_prob: float = 0.9,
    split_seed: int = 125487,
    sampling_seed: int = 891374,
) -> Dict[str, Arrays]:
    """The authors' Walker2dImitationData pipeline on already-read rollouts."""
    files = split_files(list(rollouts), split_seed)
    rng = np.random.RandomState(sampling_seed)  # one stream: train, then val, then test
    out: Dict[str, Arrays] = {}
    for split in ("train", "val", "test"):
        xs, dts, ys = [], [], []
        for name in files[split]:
            arr = rollouts[name]
            x, dt, y = thin(arr[:-1].astype(np.float32), arr[1:].astype(np.float32), rng, keep_prob)
            xs.append(windows(x, seq_len, stride))
            dts.append(windows(dt, seq_len, stride))
            ys.append(windows(y, seq_len, stride))
        out[split] = {
            "x": np.concatenate(xs).astype(np.float32, copy=False),
            "dt": np.concatenate(dts).astype(np.float32, copy=False),
            "y": np.concatenate(ys).astype(np.float32, copy=False),
        }
    return out


# -- the data module ---------------------------------------------------------------------
class Walker2dDataModule(SequenceDataModule):
    """Next-state regression on the 17-D Walker2d observations, irregularly thinned."""

    task_kind = TaskKind.PER_STEP_REGRESSION
    metric = "mse"
    n_features = N_DIMS
    n_outputs = N_DIMS

    REMOTE = RemoteFile(
        "walker.zip",
        "walker2d",
        urls=(
            "https://people.csail.mit.edu/mlechner/datasets/walker.zip",  # ODE-LSTM download_dataset.sh
            "https://www.mit.edu/~mlechner/walker.zip",  # ODE-LSTM README
            "https://pub.ist.ac.at/~mlechner/datasets/walker.zip",  # the loader's own URL; dead
        ),
        # the repacked copy in ../shared/data (SOURCES.md); upstream archives pass the content check
        sha256=("3013485315ba26e9b061d4d600db087448a53c679f14f66cfab071d85b0629dd",),
    )
    REMOTES = (REMOTE,)

    def __init__(
        self,
        *args,
        seq_len: int = 64,
        stride: int = 16,
        keep_prob: float = 0.9,
        split_seed: int = 125487,
        sampling_seed: int = 891374,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.seq_len = seq_len
        self.stride = stride
        self.keep_prob = keep_prob
        self.split_seed = split_seed
        self.sampling_seed = sampling_seed

    @classmethod
    def check_content(cls, remote: RemoteFile, path: Path) -> None:
        check_archive(path)

    def cache_path(self) -> Path:
        return self.data_dir / self.REMOTE.subdir / "processed" / "walker2d.npz"

    def cache_key(self, source_sha256: str) -> dict:
        return {
            "dataset": "walker2d",
            "processing_version": PROCESSING_VERSION,
            "source_sha256": source_sha256,
            "seq_len": self.seq_len,
            "stride": self.stride,
            "keep_prob": self.keep_prob,
            "split_seed": self.split_seed,
            "sampling_seed": self.sampling_seed,
        }

    def build_splits(self) -> Dict[str, Arrays]:
        archive = self.locate(self.REMOTE)
        key = self.cache_key(sha256_file(archive))

        def build() -> Arrays:
            splits = process(
                read_rollouts(archive),
                seq_len=self.seq_len,
                stride=self.stride,
                keep_prob=self.keep_prob,
                split_seed=self.split_seed,
                sampling_seed=self.sampling_seed,
            )
            return flatten_splits(splits)

        arrays, self.fingerprint = load_or_build_fingerprinted(self.cache_path(), key, build)
        return unflatten_splits(arrays)
