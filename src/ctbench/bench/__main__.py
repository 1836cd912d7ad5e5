"""``python -m ctbench.bench speed|table1 [--config NAME] [--device auto|cpu|cuda] [--out DIR] [--note TEXT]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional

import torch

from ctbench.bench.cases import load_bench_config


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ctbench.bench", description=__doc__)
    parser.add_argument("what", choices=("speed", "table1"), help="speed: make bench; table1: make reproduce-table-1")
    parser.add_argument("--config", help="conf/bench/<name>.yaml or a YAML path (default: default / table1)")
    parser.add_argument("--smoke", action="store_true", help="the smoke config (tiny shapes, seconds)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available) | cpu | cuda")
    parser.add_argument("--out", default="results/bench", help="report folder (default results/bench)")
    parser.add_argument("--note", default="", help="measurement conditions to print in the report (e.g. other load)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    if args.what == "speed":
        from ctbench.bench.speed import run_speed, write_report

        cfg = load_bench_config(args.config or ("smoke" if args.smoke else "default"))
        paths = write_report(run_speed(cfg, device, args.note), Path(args.out))
    else:
        from ctbench.bench.complexity import run_table1, write_table1

        cfg = load_bench_config(args.config or ("table1_smoke" if args.smoke else "table1"))
        paths = write_table1(run_table1(cfg, device, args.note), Path(args.out))
    print("[bench] wrote " + ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
