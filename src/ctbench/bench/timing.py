"""Measurement primitives: timed calls, memory, power-law fits and the machine's description.

Every timing is the median of repeated calls after warm-up calls. On CUDA the device is
synchronised around each call. On CPU the thread's own CPU time is recorded beside the wall
time: with other processes on the machine, wall time includes waiting for a core, CPU time
does not (it still includes their cache pressure).
"""

from __future__ import annotations

import math
import os
from importlib import metadata
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Wall and thread-CPU seconds of each timed call."""

    wall: List[float] = field(default_factory=list)
    cpu: List[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall) if self.wall else float("nan")

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu) if self.cpu else float("nan")

    @property
    def spread(self) -> float:
        """(max - min) / median of the wall times: how noisy the repeats were."""
        return (max(self.wall) - min(self.wall)) / self.median if len(self.wall) > 1 else 0.0


def time_once(fn: Callable[[], object], device: torch.device, timing: Timing) -> None:
    """Call ``fn`` once and append its wall and thread-CPU seconds to ``timing``."""
    synchronize(device)
    c0, w0 = time.thread_time(), time.perf_counter()
    fn()
    synchronize(device)
    timing.wall.append(time.perf_counter() - w0)
    timing.cpu.append(time.thread_time() - c0)


def time_interleaved(
    fns: Dict[str, Callable[[], object]], device: torch.device, warmup: int, repeats: int
) -> Dict[str, Timing]:
    """Time several callables round-robin (warm-up calls first, each untimed).

    Interleaving spreads any background load evenly over the compared callables, so their
    ratios stay meaningful on a shared machine.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    timings = {name: Timing() for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            time_once(fn, device, timings[name])
    return timings


def saved_tensor_bytes(fn: Callable[[], Tensor]) -> Tuple[Tensor, int]:
    """Run ``fn`` (a forward pass) and count the bytes autograd keeps for the backward pass.

    Unique storages only (views of one tensor count once); parameters are excluded. This is
    the activation memory of a training step, measurable on CPU, where torch keeps no peak
    statistics.
    """
    seen: Dict[Tuple[int, int], int] = {}

    @torch.compiler.disable  # bookkeeping, not model code: keep it out of compiled graphs
    def pack(t: Tensor) -> Tensor:
        if not isinstance(t, torch.nn.Parameter) and t.device.type != "meta":
            storage = t.untyped_storage()
            seen[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, sum(seen.values())


def cuda_peak_bytes(fn: Callable[[], object], device: torch.device) -> Optional[int]:
    """Peak bytes allocated by torch on ``device`` during ``fn`` (CUDA only)."""
    if device.type != "cuda":
        return None
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


@dataclass
class PowerLaw:
    """``y = prefactor * x ** exponent`` fitted by least squares on logs."""

    exponent: float
    prefactor: float
    r2: float
    local_exponent: float  # the slope between the two largest x: the asymptotic regime


def fit_power_law(xs: Sequence[float], ys: Sequence[float]) -> PowerLaw:
    """Least-squares line through (log x, log y); needs at least two distinct x."""
    if len(xs) != len(ys) or len(set(xs)) < 2:
        raise ValueError("fit_power_law needs at least two distinct x values, one y per x")
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    slope = sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sxx
    intercept = my - slope * mx
    ss_res = sum((b - (intercept + slope * a)) ** 2 for a, b in zip(lx, ly))
    ss_tot = sum((b - my) ** 2 for b in ly)
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    i, j = order[-2], order[-1]
    local = (ly[j] - ly[i]) / (lx[j] - lx[i])
    return PowerLaw(slope, math.exp(intercept), 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0, local)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device, threads: int) -> Dict[str, str]:
    """Hardware, thread count and versions, for the report header."""
    import numpy

    env = {
        "device": device.type,
        "cpu": f"{_cpu_model()} ({os.cpu_count()} logical cores)",
        "torch threads": str(threads),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu capability": torch.backends.cpu.get_cpu_capability(),
        "load average at start (1/5/15 min)": " / ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    for package in ("ncps", "torchdiffeq"):
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            env[package] = "not installed"
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = str(torch.version.cuda)
        env["cudnn"] = str(torch.backends.cudnn.version())
    return env
