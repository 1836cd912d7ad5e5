"""The authors' cached arrays, as golden references for the XOR generator and the ET-sMNIST transform.

``cfc_reference_caches/cfc_59f6e01_dataset_cache.tar.gz`` (in the local mirror, see
``../shared/data/SOURCES.md``) holds the ``dataset/`` folder of ``raminmh/CfC`` @ ``59f6e01``:
``xor_test_{events,elapsed,mask,y}.npy``, ``xor_train_{mask,y}.npy`` and the ET-sMNIST
``test_mask.npy``, ``test_y.npy``, ``train_y.npy``. The arrays are read from the archive in
memory; nothing is unpacked.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Dict, Iterable, Optional

import numpy as np

from ctbench.data.archive import CorruptDataError, MissingDataError, PathLike, RemoteFile, verify

REFERENCE_CACHE = RemoteFile(
    "cfc_59f6e01_dataset_cache.tar.gz",
    "cfc_reference_caches",
    urls=(),  # a repack made for the mirror; the member files are raminmh/CfC@59f6e01 dataset/*.npy
    sha256=("dd360a8df4afb6346465507dc754737b23663222d9d82b2116f9f1c5552d45d9",),
)
MEMBERS = (
    "xor_test_events", "xor_test_elapsed", "xor_test_mask", "xor_test_y", "xor_train_mask", "xor_train_y",
    "test_mask", "test_y", "train_y",
)


def reference_path(mirror: PathLike) -> Path:
    """The archive in ``mirror``; MissingDataError when absent, CorruptDataError on a hash mismatch."""
    path = REFERENCE_CACHE.in_mirror(mirror)
    if not path.is_file():
        raise MissingDataError(f"{REFERENCE_CACHE.relpath} is missing (looked in {path})")
    verify(REFERENCE_CACHE, path)
    return path


def load_reference(mirror: PathLike, names: Optional[Iterable[str]] = None) -> Dict[str, np.ndarray]:
    """``{name: array}`` for the requested members (default: all), e.g. ``"xor_test_y"``."""
    wanted = tuple(MEMBERS if names is None else names)
    unknown = sorted(set(wanted) - set(MEMBERS))
    if unknown:
        raise KeyError(f"unknown reference arrays {unknown}; known: {', '.join(MEMBERS)}")
    path = reference_path(mirror)
    out: Dict[str, np.ndarray] = {}
    with tarfile.open(path, "r:gz") as tar:
        for name in wanted:
            try:
                member = tar.getmember(f"dataset/{name}.npy")
            except KeyError as err:
                raise CorruptDataError(f"{path}: member dataset/{name}.npy is missing") from err
            f = tar.extractfile(member)
            if f is None:
                raise CorruptDataError(f"{path}: member dataset/{name}.npy is not a regular file")
            out[name] = np.load(io.BytesIO(f.read()), allow_pickle=False)
    return out
