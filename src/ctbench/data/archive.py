"""Download, verify and cache: the code every ctbench dataset shares.

A dataset declares its raw files as :class:`RemoteFile` s. :func:`locate` finds each one,
in this order:

1. the local mirror (``<mirror>/<subdir>/<name>``, e.g. ``../shared/data`` through the
   ``CTBENCH_DATA_MIRROR`` environment variable);
2. the data folder (``<data_dir>/<subdir>/<name>``);
3. a download from each official URL in turn. The download goes to a temporary file in the
   target folder and is renamed into place only after it passed its checks, so a killed or
   failed download never leaves a half-written file under the final name.

A file is accepted when its SHA-256 is one of the known-good hashes. Otherwise, when the
dataset gives a content check (member names, counts, shapes...), that check decides: the
repacked mirror copies and the upstream archives differ as containers, so a hash alone cannot
cover both. With neither a known hash nor a content check, presence is enough.

:func:`load_or_build` caches processed arrays as an ``.npz`` plus a JSON sidecar holding the
cache key and a content :func:`fingerprint`; it rebuilds when the key changes or the
fingerprint no longer matches.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
Arrays = Dict[str, np.ndarray]
#: A content check: raises :class:`CorruptDataError` (saying which check failed) or returns.
Verifier = Callable[[Path], None]

MIRROR_ENV = "CTBENCH_DATA_MIRROR"
USER_AGENT = "ctbench/0.1 (+https://github.com/raminmh/CfC reproduction)"
_CHUNK = 1 << 20
_FILE_MODE = 0o644  # mkstemp creates 0600; finished files are ordinary readable files


# -- errors ------------------------------------------------------------------------------
class DataError(RuntimeError):
    """Base class of every data problem ctbench reports to the user."""


class MissingDataError(DataError):
    """A raw file is nowhere to be found and could not be downloaded."""


class CorruptDataError(DataError):
    """A raw file (or cache) is present but failed a check; the message says which."""


# -- remote files ------------------------------------------------------------------------
@dataclass(frozen=True)
class RemoteFile:
    """One raw file of a dataset.

    name:   file name, e.g. ``walker.zip``.
    subdir: folder under the data dir and under the mirror, e.g. ``walker2d``.
    urls:   every official URL, tried in order.
    sha256: known-good hashes (upstream archives and the repacked mirror copy). Empty: the
            content check alone decides.
    """

    name: str
    subdir: str
    urls: Tuple[str, ...] = ()
    sha256: Tuple[str, ...] = ()

    def __post_init__(self) -> None:  # accept lists from configs, keep the dataclass hashable
        object.__setattr__(self, "urls", tuple(self.urls))
        object.__setattr__(self, "sha256", tuple(h.lower() for h in self.sha256))

    @property
    def relpath(self) -> str:
        return f"{self.subdir}/{self.name}"

    def target(self, data_dir: PathLike) -> Path:
        """Where the file lives (or will be downloaded to) under ``data_dir``."""
        return Path(data_dir) / self.subdir / self.name

    def in_mirror(self, mirror: PathLike) -> Path:
        return Path(mirror) / self.subdir / self.name


# -- hashing -----------------------------------------------------------------------------
def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(arrays: Mapping[str, np.ndarray]) -> str:
    """Content hash of processed arrays: names, dtypes, shapes and bytes, in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{tuple(a.shape)}\0".encode())
        h.update(a.reshape(-1).view(np.uint8))
    return h.hexdigest()


# -- verification ------------------------------------------------------------------------
def verify(remote: RemoteFile, path: PathLike, content_check: Optional[Verifier] = None) -> str:
    """Check one file; return a short description of how it passed, or raise CorruptDataError."""
    path = Path(path)
    digest = sha256_file(path)
    if digest in remote.sha256:
        return "sha256 ok"
    if content_check is not None:
        try:
            content_check(path)
        except CorruptDataError as err:
            hash_note = (
                f"its sha256 {digest} matches none of the known hashes ({', '.join(remote.sha256)}), and "
                if remote.sha256
                else ""
            )
            detail = str(err)
            if detail.startswith(f"{path}: "):
                detail = detail[len(f"{path}: "):]
            raise CorruptDataError(f"{path}: {hash_note}the content check failed: {detail}") from err
        return "content check ok" + (" (sha256 differs from the mirror copy's)" if remote.sha256 else "")
    if remote.sha256:
        raise CorruptDataError(
            f"{path}: hash mismatch: sha256 {digest}, expected one of {', '.join(remote.sha256)}"
        )
    return "present (no hash or content check known)"


# -- locating ----------------------------------------------------------------------------
def _candidates(remote: RemoteFile, data_dir: PathLike, mirror: Optional[PathLike]) -> Iterator[Tuple[str, Path]]:
    if mirror:
        yield "mirror", remote.in_mirror(mirror)
    yield "data folder", remote.target(data_dir)


def missing_message(
    remote: RemoteFile,
    data_dir: PathLike,
    mirror: Optional[PathLike] = None,
    attempts: Sequence[str] = (),
    downloads_disabled: bool = False,
) -> str:
    """The user-facing text for a file that is nowhere: where we looked, what to do."""
    folder = remote.target(data_dir).parent.resolve()
    lines = [f"{remote.relpath} is missing."]
    looked = [f"{remote.in_mirror(mirror)} ({MIRROR_ENV})"] if mirror else []
    looked.append(str(remote.target(data_dir)))
    lines.append("  looked in: " + "; ".join(looked))
    if attempts:
        lines.append("  download attempts:")
        lines += [f"    {a}" for a in attempts]
    elif downloads_disabled:
        lines.append("  downloads are disabled (download=False)")
    if remote.urls:
        lines.append(f"  Download {remote.name} from one of:")
        lines += [f"    {u}" for u in remote.urls]
    else:
        lines.append("  No public URL is known for this file.")
    lines.append(f"  and put it in the folder {folder}/ (as {remote.name}),")
    lines.append(f"  or set {MIRROR_ENV} to a folder holding {remote.relpath}.")
    return "\n".join(lines)


def locate(
    remote: RemoteFile,
    data_dir: PathLike,
    mirror: Optional[PathLike] = None,
    download: bool = True,
    content_check: Optional[Verifier] = None,
    timeout: float = 60.0,
) -> Path:
    """Return a verified local path for ``remote``: mirror, then data folder, then download.

    A file that is present but fails its checks raises :class:`CorruptDataError` (it is not
    silently replaced: delete it to download again). A file nowhere to be found and not
    downloadable raises :class:`MissingDataError`.
    """
    for where, path in _candidates(remote, data_dir, mirror):
        if path.is_file():
            how = verify(remote, path, content_check)
            log.debug("%s: using %s copy %s (%s)", remote.relpath, where, path, how)
            return path

    if not download:
        raise MissingDataError(missing_message(remote, data_dir, mirror, downloads_disabled=True))

    target = remote.target(data_dir)
    attempts = []
    corrupt = []
    for url in remote.urls:
        try:
            _download(url, target, remote, content_check, timeout)
            return target
        except CorruptDataError as err:
            corrupt.append(f"{url}: {err}")
            attempts.append(f"{url}: downloaded but rejected: {err}")
        except (OSError, ValueError, http.client.HTTPException) as err:  # HTTP errors, DNS, timeouts, cut connections
            attempts.append(f"{url}: {_describe(err)}")
    message = missing_message(remote, data_dir, mirror, attempts=attempts)
    if corrupt and len(corrupt) == len(attempts):
        raise CorruptDataError(message)
    raise MissingDataError(message)


def _describe(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"cannot connect ({err.reason})"
    return f"{type(err).__name__}: {err}"


def _download(url: str, target: Path, remote: RemoteFile, content_check: Optional[Verifier], timeout: float) -> None:
    """Stream ``url`` into a temporary file next to ``target``, verify it, rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            show = sys.stderr.isatty()
            print(f"downloading {url} -> {target}", file=sys.stderr)
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                done += len(chunk)
                if show:
                    pct = f" {100 * done / total:5.1f}%" if total else ""
                    print(f"\r  {done / 1e6:8.1f} MB{pct}", end="", file=sys.stderr, flush=True)
            if show:
                print(file=sys.stderr)
            out.flush()
            os.fsync(out.fileno())
        if total is not None and done != total:
            raise CorruptDataError(f"truncated download: got {done} of {total} bytes")
        verify(remote, tmp, content_check)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


# -- status for `ctbench data list` ------------------------------------------------------
def check_remotes(
    remotes: Sequence[RemoteFile],
    data_dir: PathLike,
    mirror: Optional[PathLike] = None,
    content_check: Optional[Callable[[RemoteFile, Path], None]] = None,
) -> Tuple[str, str]:
    """("ready" | "missing" | "corrupt", message) for a dataset's raw files; never downloads.

    Looks where :func:`locate` looks, in the same order, and applies the same checks.
    """
    if not remotes:
        return "ready", "(generated)"
    found, problems, states = [], [], set()
    for remote in remotes:
        check = (lambda p, r=remote: content_check(r, p)) if content_check is not None else None
        path = next((p for _, p in _candidates(remote, data_dir, mirror) if p.is_file()), None)
        if path is None:
            states.add("missing")
            problems.append(missing_message(remote, data_dir, mirror))
            continue
        try:
            found.append(f"{path} ({verify(remote, path, check)})")
        except CorruptDataError as err:
            states.add("corrupt")
            problems.append(f"{err}\n  Delete it to download it again.")
    state = "corrupt" if "corrupt" in states else "missing" if "missing" in states else "ready"
    return state, "\n".join(problems) if problems else "; ".join(found)


# -- processed-array cache ---------------------------------------------------------------
def _canonical(key: Any) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)


def sidecar_path(cache_path: PathLike) -> Path:
    cache_path = Path(cache_path)
    return cache_path.with_name(cache_path.name + ".json")


def _atomic_write(path: Path, write: Callable[[Any], None], binary: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, _FILE_MODE)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _try_load(cache_path: Path, key: Any) -> Optional[Tuple[Arrays, str]]:
    meta_path = sidecar_path(cache_path)
    if not (cache_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != json.loads(_canonical(key)):
            log.info("%s: cache key changed, rebuilding", cache_path)
            return None
        with np.load(cache_path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception as err:  # unreadable cache: rebuild, never fail on it
        log.warning("%s: cache unreadable (%s), rebuilding", cache_path, err)
        return None
    fp = fingerprint(arrays)
    if fp != meta.get("fingerprint"):
        log.warning("%s: fingerprint mismatch, rebuilding", cache_path)
        return None
    return arrays, fp


def load_or_build(cache_path: PathLike, key: Any, build_fn: Callable[[], Arrays]) -> Arrays:
    """Load processed arrays from ``cache_path`` or build and store them.

    ``key`` (JSON-serialisable) must hold everything the arrays depend on: the processing
    version, the source hash and every transform parameter. The cache is rebuilt when the key
    differs from the stored one, or the stored arrays no longer match their fingerprint.
    Both the ``.npz`` and its ``.json`` sidecar are written atomically.
    """
    return load_or_build_fingerprinted(cache_path, key, build_fn)[0]


def load_or_build_fingerprinted(
    cache_path: PathLike, key: Any, build_fn: Callable[[], Arrays]
) -> Tuple[Arrays, str]:
    """:func:`load_or_build`, also returning the arrays' fingerprint (computed once)."""
    cache_path = Path(cache_path)
    hit = _try_load(cache_path, key)
    if hit is not None:
        return hit
    arrays = {name: np.asarray(a) for name, a in build_fn().items()}
    fp = fingerprint(arrays)
    _atomic_write(cache_path, lambda f: np.savez(f, **arrays))
    meta = {
        "key": json.loads(_canonical(key)),
        "fingerprint": fp,
        "arrays": {name: {"dtype": a.dtype.str, "shape": list(a.shape)} for name, a in sorted(arrays.items())},
    }
    _atomic_write(sidecar_path(cache_path), lambda f: f.write(json.dumps(meta, indent=1, sort_keys=True)), binary=False)
    return arrays, fp


def flatten_splits(splits: Mapping[str, Mapping[str, np.ndarray]]) -> Arrays:
    """{'train': {'x': a}} -> {'train.x': a}, for one-file caches and fingerprints."""
    return {f"{split}.{field}": a for split, fields in splits.items() for field, a in fields.items()}


def unflatten_splits(arrays: Mapping[str, np.ndarray]) -> Dict[str, Arrays]:
    out: Dict[str, Arrays] = {}
    for name, a in arrays.items():
        split, field = name.split(".", 1)
        out.setdefault(split, {})[field] = a
    return out
