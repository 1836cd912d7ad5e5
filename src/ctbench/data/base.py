"""What every ctbench data module shares: in-memory splits, seeded loaders, declared task."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from ctbench.data.archive import RemoteFile, check_remotes, locate
from ctbench.data.batch import Batch, TaskKind

Arrays = Dict[str, np.ndarray]
SPLITS = ("train", "val", "test")


class ArrayDataset(Dataset):
    """Equal-length arrays keyed by Batch field name; indexing with a list gives a Batch.

    Whole batches are sliced at once (no per-sample collation), which keeps the loader
    out of the profile for these small sequence datasets.
    """

    def __init__(self, arrays: Arrays):
        lengths = {name: len(a) for name, a in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"split arrays differ in length: {lengths}")
        self.tensors: Dict[str, Tensor] = {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in arrays.items()}
        self.length = next(iter(lengths.values()))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: Sequence[int]) -> Batch:
        idx = torch.as_tensor(index, dtype=torch.long)
        return Batch(**{name: t[idx] for name, t in self.tensors.items()})


def default_mirror() -> Optional[str]:
    """The local mirror folder from ``CTBENCH_DATA_MIRROR``, if set."""
    return os.environ.get("CTBENCH_DATA_MIRROR") or None


class SequenceDataModule(pl.LightningDataModule):
    """Base class: subclasses implement :meth:`build_splits` and declare their task.

    ``protocol`` is ``paper`` (the authors' code, quirks included) or ``clean`` (leaks
    fixed); see ``conf/protocol/``. ``data_fraction`` < 1 keeps a seeded subset of the
    training split (budgets use it); validation and test stay whole.
    """

    task_kind: TaskKind
    metric: str  # "mse", "accuracy" or "auroc"
    n_features: int
    n_outputs: int
    vocab_size: Optional[int] = None  # set by token datasets (x holds int ids)
    append_mask: bool = False  # feed [forward-filled values, obs_mask] (PhysioNet-style inputs)
    readout: str = "last"  # sequence tasks: "last" or "last_observed" (see ctbench.sequence)
    #: raw files to locate/download; empty for generated datasets
    REMOTES: Tuple[RemoteFile, ...] = ()

    def __init__(
        self,
        data_dir: str = "data",
        mirror: Optional[str] = None,
        batch_size: int = 128,
        eval_batch_size: int = 1024,
        protocol: str = "paper",
        data_fraction: float = 1.0,
        loader_seed: int = 0,
        download: bool = True,
    ):
        super().__init__()
        if protocol not in ("paper", "clean"):
            raise ValueError(f"protocol must be 'paper' or 'clean', got {protocol!r}")
        if not 0.0 < data_fraction <= 1.0:
            raise ValueError(f"data_fraction must be in (0, 1], got {data_fraction}")
        self.data_dir = Path(data_dir)
        self.mirror = Path(mirror) if mirror else (Path(default_mirror()) if default_mirror() else None)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.protocol = protocol
        self.data_fraction = data_fraction
        self.loader_seed = loader_seed
        self.download = download
        self.splits: Optional[Dict[str, ArrayDataset]] = None
        self.fingerprint: Optional[str] = None

    # -- to implement -------------------------------------------------------------------
    def build_splits(self) -> Dict[str, Arrays]:
        """Return {'train'|'val'|'test': {batch field: array}} and set ``self.fingerprint``.

        A split may be absent (e.g. no validation set under ``protocol=paper``).
        """
        raise NotImplementedError

    @classmethod
    def check_content(cls, remote: RemoteFile, path: Path) -> None:
        """Content check of one raw file whose hash is not a known one (override per dataset).

        Raise :class:`ctbench.data.archive.CorruptDataError` saying which check failed.
        """

    # -- shared -------------------------------------------------------------------------
    @classmethod
    def check(cls, data_dir: str = "data", mirror: Optional[str] = None) -> Tuple[str, str]:
        """("ready" | "missing" | "corrupt", message) for the raw files; never downloads."""
        return check_remotes(cls.REMOTES, data_dir, mirror, content_check=cls.check_content)

    def locate(self, remote: RemoteFile) -> Path:
        """A verified local path for one raw file (mirror, data folder, then download)."""
        return locate(
            remote,
            self.data_dir,
            self.mirror,
            download=self.download,
            content_check=lambda path: type(self).check_content(remote, path),
        )

    def prepare_data(self) -> None:
        for remote in self.REMOTES:
            self.locate(remote)

    def setup(self, stage: Optional[str] = None) -> None:
        if self.splits is not None:
            return
        arrays = self.build_splits()
        if self.data_fraction < 1.0 and "train" in arrays:
            arrays["train"] = _subset(arrays["train"], self.data_fraction, self.loader_seed)
        self.splits = {name: ArrayDataset(a) for name, a in arrays.items()}

    def split_sizes(self) -> Dict[str, int]:
        self.setup()
        return {name: len(ds) for name, ds in self.splits.items()}

    def has_split(self, name: str) -> bool:
        self.setup()
        return name in self.splits

    def _loader(self, name: str, batch_size: int, shuffle: bool) -> DataLoader:
        self.setup()
        if name not in self.splits:
            raise KeyError(f"{type(self).__name__} has no {name!r} split under protocol={self.protocol!r}")
        ds = self.splits[name]
        if shuffle:
            generator = torch.Generator().manual_seed(self.loader_seed)
            sampler = RandomSampler(ds, generator=generator)
        else:
            sampler = SequentialSampler(ds)
        return DataLoader(ds, sampler=BatchSampler(sampler, batch_size, drop_last=False), batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def transfer_batch_to_device(self, batch: Batch, device: torch.device, dataloader_idx: int) -> Batch:
        return batch.to(device)


def _subset(arrays: Arrays, fraction: float, seed: int) -> Arrays:
    n = len(next(iter(arrays.values())))
    keep = max(1, int(round(n * fraction)))
    idx = np.sort(np.random.RandomState(seed).permutation(n)[:keep])
    return {name: a[idx] for name, a in arrays.items()}
