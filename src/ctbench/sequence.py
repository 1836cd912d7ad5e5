"""Unroll any cell over a batch: inputs, elapsed times, masks, forward-fill and readouts.

Readouts:
- ``sequence``: a prediction at every step (per-step tasks).
- ``last``: the final state; padded steps (``step_mask`` False) carry the state, as Keras
  masking does in the authors' TF scripts (XOR, ET-sMNIST).
- ``last_observed``: the output at the last step where any feature was observed, as the
  authors' torch ``Cfc`` does for PhysioNet (the state is not carried over padding there).

Fast path: a cell with an ``unroll(u, dt, keep) -> (B, T, hidden)`` method (every step's
:meth:`Cell.output`, from the initial state, carrying the state where ``keep`` is False) runs its
own fused time loop; the readouts are then taken from that sequence. ``fast_path=False`` forces
the plain step-by-step loop below (``tests/test_fast_path.py`` holds the two equal).
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor, nn

from ctbench.cells.base import Cell, keep_or_carry, step_masks
from ctbench.data.batch import Batch

READOUTS = ("sequence", "last", "last_observed")


def forward_fill(x: Tensor, observed: Tensor) -> Tensor:
    """Carry each feature's last observed value forward in time (zeros before the first).

    x, observed: (B, T, F). Vectorised: the index of the last observation at or before each
    step is a running maximum over time.
    """
    steps = torch.arange(x.shape[1], device=x.device).view(1, -1, 1).expand_as(x)
    last_seen = torch.where(observed.bool(), steps, torch.zeros_like(steps)).cummax(dim=1).values
    filled = torch.gather(x, 1, last_seen)
    ever_seen = observed.bool().cummax(dim=1).values
    return torch.where(ever_seen, filled, torch.zeros_like(x))


class SequenceModel(nn.Module):
    """Input encoder → cell unrolled over time → linear readout."""

    def __init__(
        self,
        cell: Cell,
        n_outputs: int,
        readout: str = "sequence",
        append_mask: bool = False,
        vocab_size: Optional[int] = None,
        embed_dim: Optional[int] = None,
        embed_dropout: float = 0.0,
        tau: float = 1.0,
        fast_path: bool = True,
    ):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; known: {', '.join(READOUTS)}")
        self.cell = cell
        self.readout = readout
        self.append_mask = append_mask
        self.tau = tau
        self.fast_path = fast_path
        self.embedding = nn.Embedding(vocab_size, embed_dim) if vocab_size else None
        self.embed_dropout = nn.Dropout(embed_dropout) if vocab_size else None
        self.head = nn.Linear(cell.hidden_size, n_outputs)

    def regularized_weights(self) -> List[Tensor]:
        """The kernels an L2 ``weight_decay_mode=l2_kernels`` term penalises: the cell's."""
        return self.cell.regularized_weights()

    def apply_constraints(self) -> None:
        self.cell.apply_constraints()

    def encode_inputs(self, batch: Batch) -> Tensor:
        x = batch.x
        if self.embedding is not None:
            return self.embed_dropout(self.embedding(x))
        if batch.obs_mask is not None and self.append_mask:
            mask = batch.obs_mask.to(x.dtype)
            return torch.cat([forward_fill(x, batch.obs_mask), mask], dim=-1)
        return x

    def forward(self, batch: Batch) -> Tensor:
        """Logits or predictions: (B, T, O) for the ``sequence`` readout, else (B, O)."""
        x = self.encode_inputs(batch)
        u = self.cell.project_inputs(x)
        unroll = getattr(self.cell, "unroll", None) if self.fast_path else None
        if unroll is not None:
            return self._readout(unroll(u, batch.dt.to(u.dtype) * self.tau, batch.step_mask), batch)
        state = self.cell.initial_state(u.shape[0], u.device, u.dtype)
        # unbind, not u[:, t]: indexing one step makes autograd scatter into a zero tensor the
        # size of the whole sequence at every step of the backward pass.
        inputs = u.unbind(1)
        dts = (batch.dt.to(u.dtype) * self.tau).unbind(1)
        keeps = step_masks(batch.step_mask, len(inputs))
        observed_any = batch.obs_mask.any(dim=-1).unbind(1) if self.readout == "last_observed" else None
        outputs = []
        last_output: Optional[Tensor] = None
        for t, (u_t, dt_t, keep_t) in enumerate(zip(inputs, dts, keeps)):
            state = keep_or_carry(keep_t, self.cell.step(u_t, state, dt_t), state)
            if self.readout == "sequence":
                outputs.append(self.cell.output(state))
            elif self.readout == "last_observed":
                out = self.cell.output(state)
                last_output = out if last_output is None else torch.where(observed_any[t].unsqueeze(-1), out, last_output)
        if self.readout == "sequence":
            return self.head(torch.stack(outputs, dim=1))
        if self.readout == "last_observed":
            return self.head(last_output)
        return self.head(self.cell.output(state))

    def _readout(self, outputs: Tensor, batch: Batch) -> Tensor:
        """The readouts of the plain loop, from every step's output (B, T, hidden)."""
        if self.readout == "sequence":
            return self.head(outputs)
        if self.readout == "last":
            return self.head(outputs[:, -1])
        # last_observed: the last step with any observation, step 0 when there is none after it
        steps = torch.arange(outputs.shape[1], device=outputs.device)
        last = (batch.obs_mask.any(dim=-1) * steps).amax(dim=1)
        return self.head(outputs[torch.arange(outputs.shape[0], device=outputs.device), last])
