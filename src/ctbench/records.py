"""Run identity and run records: one JSON per finished run, written atomically.

A run is fully described by its resolved config; its id is a hash of the parts of that
config that can change a result (seed included). Paths, loggers and runtime knobs such as
the progress bar are left out, so moving the data folder does not re-run a table.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Mapping

from omegaconf import DictConfig, OmegaConf

NOT_IDENTITY = ("paths", "logger", "runtime", "hydra")
NOT_IDENTITY_DATA = ("data_dir", "mirror", "eval_batch_size", "download")


def identity(cfg: DictConfig) -> Dict[str, Any]:
    """The resolved config without the keys that cannot change a result."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_IDENTITY:
        resolved.pop(key, None)
    for key in NOT_IDENTITY_DATA:
        resolved.get("data", {}).pop(key, None)
    return resolved


def run_id(cfg: DictConfig) -> str:
    blob = json.dumps(identity(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def record_path(runs_dir: str | Path, rid: str) -> Path:
    return Path(runs_dir) / f"{rid}.json"


def write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    """Write to a temporary file in the same folder, then rename: never a half record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


FAILED_SUFFIX = ".failed.json"


def _read_json_dir(runs_dir: str | Path, failed: bool) -> List[Dict[str, Any]]:
    folder = Path(runs_dir)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith(".") or path.name.endswith(FAILED_SUFFIX) != failed:
            continue
        try:
            payload = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            print(f"warning: skipping unreadable {path}: {err}", file=sys.stderr)
            continue
        if isinstance(payload, dict):
            found.append(payload)
    return found


def load_records(runs_dir: str | Path) -> List[Dict[str, Any]]:
    """Every finished run record under ``runs_dir`` (failure files are not records)."""
    return _read_json_dir(runs_dir, failed=False)


def load_failures(runs_dir: str | Path) -> List[Dict[str, Any]]:
    """Every ``<runs_dir>/<id>.failed.json`` written by a table for a run that raised."""
    return _read_json_dir(runs_dir, failed=True)


def hardware() -> Dict[str, Any]:
    import torch  # here, not at the top: reading records must not pay torch's import

    info: Dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": "cpu",
    }
    if torch.cuda.is_available():
        info["device"] = f"cuda:{torch.cuda.get_device_name(0)}"
        info["cuda"] = torch.version.cuda
    return info


def versions() -> Dict[str, str]:
    names = ("ctbench", "torch", "pytorch-lightning", "hydra-core", "numpy", "scikit-learn", "torchdiffeq", "wandb")
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


@functools.lru_cache(maxsize=None)
def git_commit() -> str:
    """The checkout's commit, with ``+dirty`` when tracked files differ from it.

    Cached: the first call (``ctbench.train`` makes it at import) names the code this process
    loaded, even if the checkout moves on while a long multirun is still going.
    """
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
