"""The ``ctbench`` console command.

    ctbench data list                 one line per dataset: ready / missing / corrupt
    ctbench data prepare [NAME ...]   locate, verify, download and build the processed caches

Datasets are the ``conf/data/*.yaml`` files (``CTBENCH_CONF`` overrides the conf folder).
The data folder is ``<repo>/data`` unless ``--data-dir`` or ``CTBENCH_DATA_DIR`` says
otherwise; the mirror comes from ``--mirror`` or ``CTBENCH_DATA_MIRROR``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import ctbench

REPO_ROOT = Path(ctbench.__file__).resolve().parents[2]


def conf_dir() -> Path:
    return Path(os.environ.get("CTBENCH_CONF") or REPO_ROOT / "conf")


def default_data_dir() -> Path:
    return Path(os.environ.get("CTBENCH_DATA_DIR") or REPO_ROOT / "data")


def dataset_configs() -> Dict[str, dict]:
    """{dataset name: {"target": dotted class path or None, "file": yaml path}}."""
    import yaml  # installed with omegaconf

    out = {}
    for path in sorted((conf_dir() / "data").glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text()) or {}
        name = cfg.get("name") if isinstance(cfg.get("name"), str) else path.stem
        out[name] = {"target": cfg.get("_target_"), "file": path}
    return out


def _import(target: str):
    module, _, attr = target.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def cmd_list(args: argparse.Namespace) -> int:
    configs = dataset_configs()
    if not configs:
        print(f"no dataset configs in {conf_dir() / 'data'}")
        return 1
    width = max(len(n) for n in configs)
    bad = 0
    for name, info in configs.items():
        try:
            cls = _import(info["target"])
            state, message = cls.check(str(args.data_dir), args.mirror)
        except Exception as err:  # a broken config must not hide the other datasets
            state, message = "error", f"{info['file']}: {type(err).__name__}: {err}"
        bad += state in ("corrupt", "error")
        first, _, rest = message.partition("\n")
        print(f"{name:<{width}}  {state} {first}".rstrip())
        if rest:
            print(_indent(rest, " " * (width + 2)))
    return 1 if bad else 0  # missing data is a state, not a failure; corrupt files are


def cmd_prepare(args: argparse.Namespace) -> int:
    configs = dataset_configs()
    names: Sequence[str] = args.names or list(configs)
    unknown = [n for n in names if n not in configs]
    if unknown:
        print(f"unknown dataset(s): {', '.join(unknown)}; known: {', '.join(configs)}", file=sys.stderr)
        return 2
    failed: List[str] = []
    for name in names:
        print(f"[{name}] preparing ...", flush=True)
        try:
            cls = _import(configs[name]["target"])
            start = time.perf_counter()
            dm = cls(data_dir=str(args.data_dir), mirror=args.mirror, protocol=args.protocol)
            dm.prepare_data()
            dm.setup()
            sizes = ", ".join(f"{k} {v}" for k, v in dm.split_sizes().items())
            print(f"[{name}] ready: {sizes}; fingerprint {dm.fingerprint} ({time.perf_counter() - start:.1f} s)")
        except Exception as err:
            failed.append(name)
            print(f"[{name}] FAILED: {type(err).__name__}:\n{_indent(str(err), '  ')}", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctbench", description="ctbench: CfC reproduction pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="dataset status and preparation")
    data_sub = data.add_subparsers(dest="data_command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help="data folder (default: $CTBENCH_DATA_DIR or <repo>/data)")
    common.add_argument("--mirror", default=os.environ.get("CTBENCH_DATA_MIRROR") or None,
                        help="local mirror folder (default: $CTBENCH_DATA_MIRROR)")

    p_list = data_sub.add_parser("list", parents=[common], help="show which datasets are ready")
    p_list.set_defaults(func=cmd_list)
    p_prep = data_sub.add_parser("prepare", parents=[common], help="download, verify and build caches")
    p_prep.add_argument("names", nargs="*", help="datasets to prepare (default: all)")
    p_prep.add_argument("--protocol", choices=("paper", "clean"), default="paper")
    p_prep.set_defaults(func=cmd_prepare)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
