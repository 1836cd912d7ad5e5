"""Event-based sequential MNIST, ET-sMNIST (Lechner & Hasani 2020; CfC paper Nature Table 4).

The authors' transform, exactly: ``ETSMnistData(time_major=False)`` of
``irregular_sampled_datasets.py`` (pad_size 256, threshold 128), which ``train_et_smnist.py`` uses
(see ``../shared/reference/protocols.md`` §2.4). Per image:

- flatten the 28×28 uint8 image to 784 pixels and binarise: bit = pixel > 128;
- scan the pixels with a counter that increments at every pixel; emit an **event** whenever the
  bit differs from the previous bit (the first pixel always emits, with elapsed 1): the event holds
  the new bit and the counter, and the counter resets to 0;
- stop after 256 events; the final run after the last change is **not** emitted;
- pad to 256 with zeros; the mask marks the events. Elapsed is divided by 256 after loading.

The data are the four MNIST IDX files (``tf.keras.datasets.mnist`` holds the same arrays),
60,000 train / 10,000 test. The transform is vectorised (the whole set in about a second) and
cached with every transform parameter in the cache key (the authors' ``dataset/*.npy`` names
hold neither the threshold nor the pad size, so a stale cache is silently reused).

``protocol=paper``: train and test only (the authors have no validation set).
``protocol=clean``: a seeded ``val_fraction`` (10%) of the training images is held out.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from ctbench.data.archive import (
    CorruptDataError,
    RemoteFile,
    fingerprint,
    flatten_splits,
    load_or_build_fingerprinted,
    sha256_file,
    unflatten_splits,
)
from ctbench.data.base import Arrays, SequenceDataModule
from ctbench.data.batch import TaskKind

#: bump whenever the processing below changes: it invalidates every cache
PROCESSING_VERSION = 1

IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension
IMAGE_SHAPE = (28, 28)
N_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
#: the repacked copies in ../shared/data/mnist (SOURCES.md); their members are the canonical files
MIRROR_SHA256 = {
    "train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
}
#: what the content check demands of a file whose sha256 is not a known one (an upstream .gz, a
#: re-compressed copy): the official record count and the canonical LeCun MD5 of the
#: **uncompressed** IDX bytes (SOURCES.md), so any container of the real files passes
OFFICIAL = {
    "train-images-idx3-ubyte.gz": (60000, "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte.gz": (60000, "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte.gz": (10000, "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte.gz": (10000, "27ae3e4e09519cfbb04c329615203637"),
}
URL_BASES = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's mirror
    "http://yann.lecun.com/exdb/mnist/",  # the original site (often refuses automated downloads)
)


def _remote(name: str) -> RemoteFile:
    return RemoteFile(name, "mnist", urls=tuple(base + name for base in URL_BASES), sha256=(MIRROR_SHA256[name],))


# -- reading IDX files -------------------------------------------------------------------
def _read_gz(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise CorruptDataError(f"{path}: truncated or unreadable gzip file ({err})") from err


def _header(raw: bytes, path: Path, size: int) -> Tuple[int, ...]:
    if len(raw) < size:
        raise CorruptDataError(f"{path}: IDX header truncated: {len(raw)} bytes, expected at least {size}")
    return tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=size // 4))


def parse_images(raw: bytes, path: Path) -> np.ndarray:
    """An IDX3 image file (16-byte header: magic 2051, count, rows, cols) → (N, 28, 28) uint8."""
    magic, n, rows, cols = _header(raw, path, 16)
    if magic != IMAGES_MAGIC:
        raise CorruptDataError(f"{path}: bad magic number {magic} (0x{magic:08x}), expected {IMAGES_MAGIC} (0x{IMAGES_MAGIC:08x}) for an IDX image file")
    if (rows, cols) != IMAGE_SHAPE:
        raise CorruptDataError(f"{path}: images are {rows}x{cols}, expected 28x28")
    expected = 16 + n * rows * cols
    if len(raw) != expected:
        raise CorruptDataError(f"{path}: the header announces {n} images ({expected} bytes), the file holds {len(raw)} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)


def parse_labels(raw: bytes, path: Path) -> np.ndarray:
    """An IDX1 label file (8-byte header: magic 2049, count) → (N,) uint8 in 0..9."""
    magic, n = _header(raw, path, 8)
    if magic != LABELS_MAGIC:
        raise CorruptDataError(f"{path}: bad magic number {magic} (0x{magic:08x}), expected {LABELS_MAGIC} (0x{LABELS_MAGIC:08x}) for an IDX label file")
    if len(raw) != 8 + n:
        raise CorruptDataError(f"{path}: the header announces {n} labels ({8 + n} bytes), the file holds {len(raw)} bytes")
    labels = np.frombuffer(raw, dtype=np.uint8, offset=8)
    if n and labels.max() > 9:
        raise CorruptDataError(f"{path}: label {int(labels.max())} out of range 0..9")
    return labels


def read_idx(path: Path) -> np.ndarray:
    """Parse one gzipped IDX file; images or labels by its file name."""
    path = Path(path)
    raw = _read_gz(path)
    return parse_images(raw, path) if "images" in path.name else parse_labels(raw, path)


def check_file(path: Path, official: Dict[str, Tuple[int, str]] = OFFICIAL) -> None:
    """Content check of one MNIST file: gzip integrity, IDX header, official count and MD5."""
    path = Path(path)
    raw = _read_gz(path)
    arr = parse_images(raw, path) if "images" in path.name else parse_labels(raw, path)
    if path.name in official:
        count, md5 = official[path.name]
        if len(arr) != count:
            raise CorruptDataError(f"{path}: wrong record count: {len(arr)}, expected {count}")
        got = hashlib.md5(raw).hexdigest()
        if got != md5:
            raise CorruptDataError(f"{path}: the uncompressed IDX data has MD5 {got}, expected the canonical {md5}")


# -- the authors' transform --------------------------------------------------------------
def transform(images: np.ndarray, threshold: int = 128, pad_size: int = 256, chunk: int = 8192) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``ETSMnistData.transform_array``, vectorised; raw counts, as the authors cache them.

    Returns events (N, pad) uint8 (the bit of each event), elapsed (N, pad) uint16 (pixels since
    the previous event; the first pixel: 1) and mask (N, pad) bool.
    """
    images = np.asarray(images)
    n = len(images)
    flat = images.reshape(n, -1)
    if flat.shape[1] >= 1 << 16:
        raise ValueError("images too long for uint16 elapsed counts")
    events = np.zeros((n, pad_size), dtype=np.uint8)
    elapsed = np.zeros((n, pad_size), dtype=np.uint16)
    mask = np.zeros((n, pad_size), dtype=bool)
    for start in range(0, n, chunk):
        bits = flat[start:start + chunk] > threshold
        change = np.empty_like(bits)
        change[:, 0] = True  # last_char starts at -1: the first pixel always emits
        np.not_equal(bits[:, 1:], bits[:, :-1], out=change[:, 1:])
        rows, cols = np.nonzero(change)  # row-major: each image's changes in pixel order
        counts = np.bincount(rows, minlength=len(bits))
        starts = np.cumsum(counts) - counts
        slot = np.arange(len(rows)) - np.repeat(starts, counts)
        first = slot == 0
        prev = np.empty_like(cols)
        prev[0:1] = -1
        prev[1:] = cols[:-1]
        prev[first] = -1  # the counter starts at 0 before the first pixel
        keep = slot < pad_size  # stop at pad_size events; the final run is never emitted
        r, s, c = rows[keep] + start, slot[keep], cols[keep]
        events[r, s] = bits[rows[keep], c]
        elapsed[r, s] = (c - prev[keep]).astype(np.uint16)
        mask[r, s] = True
    return events, elapsed, mask


def to_batch_fields(events: np.ndarray, elapsed: np.ndarray, mask: np.ndarray, labels: np.ndarray, pad_size: int) -> Arrays:
    """Raw transform → Batch fields; elapsed / pad_size after loading, as the authors do."""
    return {
        "x": events.astype(np.float32)[..., None],
        "dt": elapsed.astype(np.float32) / np.float32(pad_size),
        "step_mask": mask,
        "y": labels.astype(np.int64),
    }


# -- the data module ---------------------------------------------------------------------
class ETSMnistDataModule(SequenceDataModule):
    """MNIST digits as a stream of (bit, elapsed) change events; 10-way classification.

    The model reads the final state (padded steps carry it) into 10 logits; sparse cross-entropy
    from logits; accuracy.
    """

    task_kind = TaskKind.SEQUENCE_CLASSIFICATION
    metric = "accuracy"
    n_features = 1
    n_outputs = 10
    readout = "last"

    REMOTE_FILES = {key: _remote(name) for key, name in FILES.items()}
    REMOTES = tuple(REMOTE_FILES.values())
    OFFICIAL = OFFICIAL

    def __init__(
        self,
        *args,
        threshold: int = 128,
        pad_size: int = 256,
        val_fraction: float = 0.1,
        val_seed: int = 20220816,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if not 0 <= threshold <= 255:
            raise ValueError(f"data.threshold must be in 0..255, got {threshold}")
        if pad_size < 1:
            raise ValueError(f"data.pad_size must be >= 1, got {pad_size}")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
        self.threshold = threshold
        self.pad_size = pad_size
        self.val_fraction = val_fraction
        self.val_seed = val_seed

    @classmethod
    def check_content(cls, remote: RemoteFile, path: Path) -> None:
        check_file(path, cls.OFFICIAL)

    def cache_path(self) -> Path:
        return self.data_dir / "mnist" / "processed" / f"etsmnist-thr{self.threshold}-pad{self.pad_size}.npz"

    def cache_key(self, source_sha256: Dict[str, str]) -> dict:
        return {
            "dataset": "etsmnist",
            "processing_version": PROCESSING_VERSION,
            "source_sha256": source_sha256,
            "threshold": self.threshold,
            "pad_size": self.pad_size,
        }

    def build_raw(self) -> Dict[str, np.ndarray]:
        """The cached raw transform of both sets (compact dtypes; labels uint8 as in MNIST)."""
        paths = {key: self.locate(remote) for key, remote in self.REMOTE_FILES.items()}
        key = self.cache_key({p.name: sha256_file(p) for p in paths.values()})

        def build() -> Dict[str, np.ndarray]:
            out = {}
            for split in ("train", "test"):
                images = read_idx(paths[f"{split}_images"])
                labels = read_idx(paths[f"{split}_labels"])
                if len(images) != len(labels):
                    raise CorruptDataError(
                        f"{paths[f'{split}_images']} holds {len(images)} images but "
                        f"{paths[f'{split}_labels']} holds {len(labels)} labels"
                    )
                events, elapsed, mask = transform(images, self.threshold, self.pad_size)
                out[split] = {"events": events, "elapsed": elapsed, "mask": mask, "y": labels}
            return flatten_splits(out)

        arrays, self.raw_fingerprint = load_or_build_fingerprinted(self.cache_path(), key, build)
        return arrays

    def build_splits(self) -> Dict[str, Arrays]:
        raw = unflatten_splits(self.build_raw())
        splits = {name: to_batch_fields(r["events"], r["elapsed"], r["mask"], r["y"], self.pad_size) for name, r in raw.items()}
        if self.protocol == "clean":
            n = len(splits["train"]["y"])
            n_val = int(round(n * self.val_fraction))
            perm = np.random.RandomState(self.val_seed).permutation(n)
            val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            splits["val"] = {k: a[val_idx] for k, a in splits["train"].items()}
            splits["train"] = {k: a[train_idx] for k, a in splits["train"].items()}
        self.fingerprint = fingerprint(flatten_splits(splits))  # of the arrays the model sees
        return splits
