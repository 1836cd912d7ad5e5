"""The batch every data module yields, whatever the dataset."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Optional

import torch
from torch import Tensor


class TaskKind(str, Enum):
    """What the model predicts; the task module reads this, never the dataset name."""

    SEQUENCE_CLASSIFICATION = "sequence_classification"
    PER_STEP_CLASSIFICATION = "per_step_classification"
    PER_STEP_REGRESSION = "per_step_regression"


@dataclass
class Batch:
    """One batch of sequences.

    x:         (B, T, F) float inputs, or (B, T) int64 token ids.
    dt:        (B, T) elapsed time before each step.
    y:         (B,) labels for sequence tasks; (B, T) labels or (B, T, O) targets per step.
    step_mask: (B, T) bool, False on padded steps (the state is carried over them) or None.
    obs_mask:  (B, T, F) bool, which features were observed at a step, or None.
    y_mask:    (B, T) bool, which per-step targets count, or None (all count).
    """

    x: Tensor
    dt: Tensor
    y: Tensor
    step_mask: Optional[Tensor] = None
    obs_mask: Optional[Tensor] = None
    y_mask: Optional[Tensor] = None

    def to(self, device: torch.device) -> "Batch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(self, **{k: (v.to(device) if v is not None else None) for k, v in moved.items()})

    def __len__(self) -> int:
        return self.x.shape[0]


def collate(items: list) -> Batch:
    """Stack equally shaped samples (dicts with the Batch field names) into a Batch."""
    names = [f.name for f in fields(Batch)]
    stacked = {}
    for name in names:
        values = [item.get(name) for item in items]
        stacked[name] = None if values[0] is None else torch.stack([torch.as_tensor(v) for v in values])
    return Batch(**stacked)
