"""Flip-flop (continuous-memory) tasks of Kim, Can & Krishnamurthy (ICML 2023).

The generator of the authors' ``RNNTools.jl`` ``src/generate_data.jl`` as
``../shared/reference/gnode.md`` G3 describes it, on NumPy's random stream (Julia 1.6's
stream cannot be replayed; there are no golden vectors, G3.3):

1. inputs and targets of shape (trials, bins, n) = (600, 100, n), zeros, float32;
2. per trial: K ~ Poisson(frequency) pulses (12; 6 for ``disk``), K onsets uniform on bins
   1 … 100, with replacement, unsorted;
3. per onset, *in draw order*: if onset <= bins − (pulse_bins − 1) = 98, draw the pulse value
   (the variant's rule) and write it over bins onset … onset + 2 of its channel(s),
   overwriting what is there; onsets 99 and 100 are dropped and draw no value (so the kept
   pulses per trial are Poisson(0.98 × frequency));
4. target: per channel, start at the variant's initial target; at each bin where the input is
   non-zero the target takes the input's value, otherwise it keeps its previous value.

Variants (G3.2): ``fixed3`` (one channel, ±1; initial target (1, 1, 1)), ``variable3`` (one
channel, U[−1, 1]; (0, 0, 0)), ``fixed2`` (±1; (1, 1)), ``square`` (the variable generator with
n = 2; (0, 0)), ``rectangle`` (one channel; channel 1 U[−2, 2], channel 2 U[−1, 1]; (0, 0)),
``ring`` (both channels (2 cos θ, 2 sin θ), θ ~ U[0, 2π); (2, 0)), ``disk`` (both channels, a
point of U([−2, 2]²) rejected until 1 < ‖m‖ < 2; rate 6; (1.5, 0)).

Splits (G3.3): trials 1–500 train, 501–600 validation (the authors' ``data_test``, which drives
their model selection). The authors have no test set, so under ``protocol=paper`` the test split
is the same 100 validation trials (the number they would report). ``protocol=clean`` adds a
fresh test set of ``test_size`` trials from its own generator (``test_seed``), made exactly like
the others.

Per-step regression: MSE over all channels, trials and bins (Flux ``mse``), read out after every
step (the output at bin t already sees x_t). dt = 1 with the cells' tau = 1, so alpha = 1 (G2.4).
Trials are batched in fixed order, as the authors' ``MyDataLoader`` (``shuffle_train: false``).
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple

import numpy as np
from torch.utils.data import DataLoader

from ctbench.data.archive import fingerprint
from ctbench.data.base import Arrays, SequenceDataModule
from ctbench.data.batch import TaskKind

#: variant -> (channels, Poisson rate, initial target)
VARIANTS: Dict[str, Tuple[int, float, Tuple[float, ...]]] = {
    "fixed3": (3, 12.0, (1.0, 1.0, 1.0)),
    "variable3": (3, 12.0, (0.0, 0.0, 0.0)),
    "fixed2": (2, 12.0, (1.0, 1.0)),
    "square": (2, 12.0, (0.0, 0.0)),
    "rectangle": (2, 12.0, (0.0, 0.0)),
    "ring": (2, 12.0, (2.0, 0.0)),
    "disk": (2, 6.0, (1.5, 0.0)),
}
BIT_GENERATOR = "numpy.random.Generator(PCG64)"
#: bump whenever the generation below changes
PROCESSING_VERSION = 1

PulseDraw = Callable[[np.random.Generator], Tuple[np.ndarray, np.ndarray]]


def _one_channel(n: int, value: Callable[[np.random.Generator, int], float]) -> PulseDraw:
    def draw(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        ch = int(rng.integers(n))
        return np.array([ch]), np.array([value(rng, ch)])

    return draw


def _ring(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    theta = rng.uniform(0.0, 2.0 * np.pi)
    return np.array([0, 1]), np.array([2.0 * np.cos(theta), 2.0 * np.sin(theta)])


def _disk(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    while True:
        m = rng.uniform(-2.0, 2.0, size=2)
        r = float(np.hypot(m[0], m[1]))
        if 1.0 < r < 2.0:
            return np.array([0, 1]), m


def pulse_rule(variant: str) -> PulseDraw:
    """The variant's draw of one kept pulse: (channels, values)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown flip-flop variant {variant!r}; known: {', '.join(VARIANTS)}")
    n = VARIANTS[variant][0]
    if variant in ("fixed3", "fixed2"):
        return _one_channel(n, lambda rng, ch: float(2 * rng.integers(2) - 1))
    if variant in ("variable3", "square"):
        return _one_channel(n, lambda rng, ch: rng.uniform(-1.0, 1.0))
    if variant == "rectangle":
        return _one_channel(n, lambda rng, ch: rng.uniform(-2.0, 2.0) if ch == 0 else rng.uniform(-1.0, 1.0))
    return _ring if variant == "ring" else _disk


def targets_from_inputs(x: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Step 4: per channel, the latest non-zero input value, else the initial target. x (trials, bins, n)."""
    trials, bins, n = x.shape
    nonzero = x != 0
    steps = np.arange(bins).reshape(1, bins, 1)
    last = np.maximum.accumulate(np.where(nonzero, steps, -1), axis=1)
    held = np.take_along_axis(x, np.maximum(last, 0), axis=1)
    return np.where(last >= 0, held, np.asarray(initial, dtype=x.dtype).reshape(1, 1, n)).astype(x.dtype)


def write_pulses(x: np.ndarray, trial: int, onsets: np.ndarray, draw: PulseDraw, rng: np.random.Generator, pulse_bins: int) -> None:
    """Step 3 for one trial: onsets are 1-based; kept ones are written in draw order."""
    bins = x.shape[1]
    for onset in onsets:
        if onset > bins - (pulse_bins - 1):
            continue  # dropped: no value drawn
        channels, values = draw(rng)
        start = int(onset) - 1
        x[trial, start : start + pulse_bins][:, channels] = values


def generate_flipflop(
    variant: str,
    n_trials: int = 600,
    n_bins: int = 100,
    seed: int = 8,
    frequency: float | None = None,
    pulse_bins: int = 3,
) -> Dict[str, np.ndarray]:
    """{'x', 'y'}: (n_trials, n_bins, n) float32 inputs and targets of one variant (steps 1–4)."""
    draw = pulse_rule(variant)
    n, rate, initial = VARIANTS[variant]
    rate = rate if frequency is None else float(frequency)
    rng = np.random.Generator(np.random.PCG64(seed))
    x = np.zeros((n_trials, n_bins, n), dtype=np.float64)
    for trial in range(n_trials):
        k = int(rng.poisson(rate))
        onsets = rng.integers(1, n_bins + 1, size=k)
        write_pulses(x, trial, onsets, draw, rng, pulse_bins)
    x = x.astype(np.float32)
    return {"x": x, "y": targets_from_inputs(x, np.asarray(initial, dtype=np.float32))}


class FlipFlopDataModule(SequenceDataModule):
    """The flip-flop family of G3: per-step regression of the held pulse values."""

    task_kind = TaskKind.PER_STEP_REGRESSION
    metric = "mse"
    readout = "last"  # unused: per-step tasks read out every step
    REMOTES = ()  # generated

    def __init__(
        self,
        *args,
        variant: str = "fixed3",
        n_trials: int = 600,
        n_train: int = 500,
        n_bins: int = 100,
        frequency: float | None = None,
        pulse_bins: int = 3,
        seed: int = 8,
        dt: float = 1.0,
        test_size: int = 100,
        test_seed: int = 20230723,
        shuffle_train: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        pulse_rule(variant)  # validates the name
        if not 0 < n_train < n_trials:
            raise ValueError(f"n_train must be in (0, n_trials={n_trials}), got {n_train}")
        if pulse_bins < 1 or pulse_bins > n_bins:
            raise ValueError(f"pulse_bins must be in 1 … n_bins, got {pulse_bins}")
        if test_seed == seed:
            raise ValueError(f"the clean test set needs its own seed, got test_seed == seed == {seed}")
        self.variant = variant
        self.n_features = self.n_outputs = VARIANTS[variant][0]
        self.n_trials, self.n_train, self.n_bins = n_trials, n_train, n_bins
        self.frequency = frequency
        self.pulse_bins = pulse_bins
        self.seed, self.test_seed, self.test_size = seed, test_seed, test_size
        self.dt = float(dt)
        self.shuffle_train = shuffle_train
        self.generator = {"bit_generator": BIT_GENERATOR, "seed": seed, "test_seed": test_seed if self.protocol == "clean" else None}

    def _fields(self, data: Dict[str, np.ndarray]) -> Arrays:
        dt = np.full(data["x"].shape[:2], self.dt, dtype=np.float32)
        return {"x": data["x"], "dt": dt, "y": data["y"]}

    def build_splits(self) -> Dict[str, Arrays]:
        kw = dict(n_bins=self.n_bins, frequency=self.frequency, pulse_bins=self.pulse_bins)
        data = self._fields(generate_flipflop(self.variant, self.n_trials, seed=self.seed, **kw))
        splits = {
            "train": {k: v[: self.n_train] for k, v in data.items()},
            "val": {k: v[self.n_train :] for k, v in data.items()},
        }
        if self.protocol == "clean":
            splits["test"] = self._fields(generate_flipflop(self.variant, self.test_size, seed=self.test_seed, **kw))
        else:  # the authors have no test set: report on their validation trials
            splits["test"] = splits["val"]
        self.fingerprint = fingerprint({f"{s}/{k}": v for s, a in splits.items() for k, v in a.items()})
        return splits

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=self.shuffle_train)
