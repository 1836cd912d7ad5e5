"""Bit-stream XOR (ODE-LSTM's task; CfC paper Extended Data Fig. 5 = arXiv v2 Table 4).

The authors' generator, exactly: ``XORData(time_major=False, event_based=True, pad_size=32)``
of ``irregular_sampled_datasets.py``, which ``train_xor.py`` uses (see
``../shared/reference/protocols.md`` §2.6):

- train = 100,000 samples from ``np.random.RandomState(1234984)``, test = 10,000 from
  ``RandomState(48736)``; each set has its own RandomState;
- per sample, in RNG order: ``length = rng.randint(2, pad_size)`` (2 … pad_size − 1), then one
  ``rng.randint(0, 2)`` per step; the label is the parity of all the bits;
- **event-based** encoding (the only one ``train_xor.py`` runs): an event is written whenever the
  bit changes (the first bit always emits, elapsed 1), holding the new bit and the number of steps
  since the previous event; writing stops at ``pad_size − 1`` events; a final event carries the
  last run (the current bit, with the remaining count) when that count is > 0;
- **dense** (``equidistant``) encoding: every bit is an event with elapsed 1;
- arrays are padded to ``pad_size``; the raw counts are divided by ``pad_size`` after loading.

Speed: drawing 1.8 M scalars one ``randint`` call at a time takes seconds, so the generator reads
the RandomState's raw 32-bit Mersenne-Twister words once and applies NumPy's legacy bounded-integer
rule to them (masked rejection: ``randint(low, high)`` takes ``word & mask`` with ``mask`` the
smallest all-ones value ≥ ``high − low − 1`` and redraws while it exceeds that; no word is drawn
when ``high − low == 1``). :func:`draw_bit_strings_reference` is the literal per-call loop; the
tests check that both give the same bits.

Under ``protocol=clean`` a validation set of ``val_size`` samples comes from a third RandomState
(``val_seed``), generated exactly like the other two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from ctbench.data.archive import flatten_splits, load_or_build_fingerprinted, unflatten_splits
from ctbench.data.base import Arrays, SequenceDataModule
from ctbench.data.batch import TaskKind

ENCODINGS = ("event_based", "equidistant")
#: bump whenever the generation below changes: it invalidates every cache
PROCESSING_VERSION = 1


# -- drawing the bit strings -------------------------------------------------------------
def _legacy_mask(span: int) -> int:
    """NumPy's ``gen_mask``: the smallest 2**k − 1 that is >= span."""
    mask = span
    for shift in (1, 2, 4, 8, 16, 32):
        mask |= mask >> shift
    return mask


def draw_bit_strings(seed: int, size: int, pad_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """``size`` bit strings drawn as the authors' generator draws them from ``RandomState(seed)``.

    Returns ``(bits, lengths)``: bits (size, pad_size − 1) uint8, zero beyond each length, and
    lengths (size,) int64 in 2 … pad_size − 1; the same numbers as ``size`` ×
    (``rng.randint(2, pad_size)``, then ``length`` × ``rng.randint(0, 2)``).
    """
    if pad_size < 3:
        raise ValueError(f"pad_size must be >= 3 (randint(2, pad_size) needs pad_size > 2), got {pad_size}")
    span = pad_size - 3  # randint(2, pad_size): NumPy's rng = high - low - 1
    mask = _legacy_mask(span)
    bitgen = np.random.MT19937()
    bitgen.state = np.random.RandomState(seed).get_state(legacy=False)  # RandomState's own stream
    chunk = max(1 << 16, size * (pad_size + 1))
    words = bitgen.random_raw(chunk)
    pos = 0

    bits = np.zeros((size, pad_size - 1), dtype=np.uint8)
    lengths = np.empty(size, dtype=np.int64)
    for i in range(size):
        if len(words) - pos < 4 * pad_size:  # rare: refill, keeping the unread words in order
            words = np.concatenate([words[pos:], bitgen.random_raw(chunk)])
            pos = 0
        v = 0
        if span > 0:  # NumPy draws no word for a one-value range
            while True:
                if pos >= len(words) - pad_size:
                    words = np.concatenate([words[pos:], bitgen.random_raw(chunk)])
                    pos = 0
                v = int(words[pos]) & mask
                pos += 1
                if v <= span:
                    break
        length = 2 + v
        bits[i, :length] = words[pos:pos + length] & 1  # randint(0, 2): mask 1, never rejects
        pos += length
        lengths[i] = length
    return bits, lengths


def draw_bit_strings_reference(seed: int, size: int, pad_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """The authors' draw order, literally: one ``rng.randint`` call per number (slow)."""
    rng = np.random.RandomState(seed)
    bits = np.zeros((size, pad_size - 1), dtype=np.uint8)
    lengths = np.empty(size, dtype=np.int64)
    for i in range(size):
        length = rng.randint(low=2, high=pad_size)
        for t in range(length):
            bits[i, t] = int(rng.randint(low=0, high=2))
        lengths[i] = length
    return bits, lengths


# -- encoding ----------------------------------------------------------------------------
def encode_event_based(bits: np.ndarray, lengths: np.ndarray, pad_size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The authors' ``create_event_based_sample`` on already drawn bits, vectorised.

    Returns raw arrays as the authors cache them: events (N, pad, 1) float32, elapsed
    (N, pad, 1) float32 (raw step counts), mask (N, pad) bool.

    - an event at every step whose bit differs from the previous one (step 0 always), with
      elapsed = steps since the previous event (step 0: 1);
    - at most ``pad_size − 1`` such events: the authors stop the scan when the count reaches it
      (then the counter is 0 and no final event follows). Lengths are <= pad_size − 1, so that
      cap can only be reached at the last step of an all-alternating string and never cuts a
      draw short (the RNG order is unaffected);
    - a final event, written at the next free slot, holding the last bit and the steps since the
      last change, when that count is > 0 (the string ends in a run of equal bits).
    """
    n, width = bits.shape
    steps = np.arange(width)[None, :]
    valid = steps < lengths[:, None]
    change = np.zeros_like(valid)
    change[:, 0] = True
    change[:, 1:] = bits[:, 1:] != bits[:, :-1]
    change &= valid
    cap = pad_size - 1
    # index of each change event within its sample
    rank = np.cumsum(change, axis=1) - 1
    keep = change & (rank < cap)
    rows, cols = np.nonzero(keep)
    slot = rank[rows, cols]
    first = np.r_[True, rows[1:] != rows[:-1]]
    prev = np.where(first, -1, np.r_[-1, cols[:-1]])
    events = np.zeros((n, pad_size, 1), dtype=np.float32)
    elapsed = np.zeros((n, pad_size, 1), dtype=np.float32)
    mask = np.zeros((n, pad_size), dtype=bool)
    events[rows, slot, 0] = bits[rows, cols]
    elapsed[rows, slot, 0] = cols - prev
    mask[rows, slot] = True

    n_events = keep.sum(axis=1)
    capped = change.sum(axis=1) >= cap  # the scan stopped at the cap: counter 0, no final event
    last_change = np.where(valid & change, steps, -1).max(axis=1)
    remaining = lengths - 1 - last_change
    final = (remaining > 0) & ~capped
    r = np.flatnonzero(final)
    events[r, n_events[r], 0] = bits[r, lengths[r] - 1]
    elapsed[r, n_events[r], 0] = remaining[r]
    mask[r, n_events[r]] = True
    return events, elapsed, mask


def encode_dense(bits: np.ndarray, lengths: np.ndarray, pad_size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The authors' ``create_dense_sample``: every bit is an event with elapsed 1."""
    n, width = bits.shape
    valid = np.arange(width)[None, :] < lengths[:, None]
    events = np.zeros((n, pad_size, 1), dtype=np.float32)
    elapsed = np.zeros((n, pad_size, 1), dtype=np.float32)
    mask = np.zeros((n, pad_size), dtype=bool)
    events[:, :width, 0] = np.where(valid, bits, 0)
    elapsed[:, :width, 0] = valid
    mask[:, :width] = valid
    return events, elapsed, mask


def parity(bits: np.ndarray) -> np.ndarray:
    """The label: the sum of all drawn bits modulo 2, as int64 (``np.stack`` of Python ints)."""
    return (bits.sum(axis=1, dtype=np.int64) % 2).astype(np.int64)


def generate_set(size: int, seed: int, pad_size: int = 32, encoding: str = "event_based") -> Dict[str, np.ndarray]:
    """One set as the authors' ``XORData.create_set(size, seed)`` returns it (raw counts).

    Keys: ``events`` (N, pad, 1) float32, ``elapsed`` (N, pad, 1) float32 (steps, not yet divided
    by pad_size), ``mask`` (N, pad) bool, ``y`` (N,) int64.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    bits, lengths = draw_bit_strings(seed, size, pad_size)
    encode = encode_event_based if encoding == "event_based" else encode_dense
    events, elapsed, mask = encode(bits, lengths, pad_size)
    return {"events": events, "elapsed": elapsed, "mask": mask, "y": parity(bits)}


def to_batch_fields(raw: Dict[str, np.ndarray], pad_size: int) -> Arrays:
    """Raw set → Batch fields; elapsed is divided by pad_size after loading, as the authors do."""
    return {
        "x": raw["events"],
        "dt": raw["elapsed"][..., 0] / np.float32(pad_size),
        "step_mask": raw["mask"],
        "y": raw["y"],
    }


# -- the data module ---------------------------------------------------------------------
class XORDataModule(SequenceDataModule):
    """Parity of a bit stream, fed as events (bit, elapsed) with padding masked (Keras masking).

    The model reads the final state (padded steps carry it) into one logit; binary
    cross-entropy from logits; accuracy at logit threshold 0.
    """

    task_kind = TaskKind.SEQUENCE_CLASSIFICATION
    metric = "accuracy"
    n_features = 1
    n_outputs = 1
    readout = "last"
    REMOTES = ()  # generated

    def __init__(
        self,
        *args,
        encoding: str = "event_based",
        pad_size: int = 32,
        train_size: int = 100_000,
        test_size: int = 10_000,
        val_size: int = 10_000,
        train_seed: int = 1234984,
        test_seed: int = 48736,
        val_seed: int = 20220815,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if encoding not in ENCODINGS:
            raise ValueError(f"data.encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
        if pad_size < 3:
            raise ValueError(f"data.pad_size must be >= 3, got {pad_size}")
        seeds = {"train": train_seed, "test": test_seed, "val": val_seed}
        if len(set(seeds.values())) != 3:
            raise ValueError(f"the XOR sets need three different seeds, got {seeds}")
        self.encoding = encoding
        self.pad_size = pad_size
        self.sizes = {"train": train_size, "test": test_size, "val": val_size}
        self.seeds = seeds

    def split_names(self) -> List[str]:
        """paper: train and test only (the authors have no validation set); clean: + val."""
        return ["train", "test"] + (["val"] if self.protocol == "clean" else [])

    def cache_key(self) -> dict:
        names = self.split_names()
        return {
            "dataset": "xor",
            "processing_version": PROCESSING_VERSION,
            "encoding": self.encoding,
            "pad_size": self.pad_size,
            "sizes": {s: self.sizes[s] for s in names},
            "seeds": {s: self.seeds[s] for s in names},
        }

    def cache_path(self) -> Path:
        # encoding and pad size in the file name too, so both encodings can be cached side by side
        # (the authors' dataset/xor_*.npy names hold neither, and a stale set is silently reused)
        return self.data_dir / "xor" / "processed" / f"xor-{self.encoding}-pad{self.pad_size}-{self.protocol}.npz"

    def build_splits(self) -> Dict[str, Arrays]:
        def build() -> Arrays:
            splits = {
                name: to_batch_fields(generate_set(self.sizes[name], self.seeds[name], self.pad_size, self.encoding), self.pad_size)
                for name in self.split_names()
            }
            return flatten_splits(splits)

        arrays, self.fingerprint = load_or_build_fingerprinted(self.cache_path(), self.cache_key(), build)
        return unflatten_splits(arrays)
