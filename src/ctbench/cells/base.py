"""The one interface every recurrent cell implements.

A cell advances a hidden state over one observation: ``state = cell(x_t, state, dt)``.
It knows nothing about sequences, masks or tasks; ``ctbench.sequence`` unrolls it.

Speed comes from the split between :meth:`Cell.project_inputs`, which may be applied to a
whole sequence at once (one matrix product for all steps), and :meth:`Cell.step`, the
per-step recurrent work on the already-projected input.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

State = Union[Tensor, Tuple[Tensor, ...]]


def keep_or_carry(keep: Optional[Tensor], new: State, old: State) -> State:
    """Per sample, ``new`` where ``keep`` (B,) is True, else ``old`` (a padded step carries the
    state); ``new`` when there is no mask. Tensor or tuple states."""
    if keep is None:
        return new
    keep = keep.unsqueeze(-1)
    if isinstance(new, Tensor):
        return torch.where(keep, new, old)
    return tuple(torch.where(keep, n, o) for n, o in zip(new, old))


def step_masks(keep: Optional[Tensor], steps: int) -> Sequence[Optional[Tensor]]:
    """``keep`` (B, T) as T per-step (B,) masks, or T Nones when there is no mask."""
    return keep.unbind(1) if keep is not None else [None] * steps


class Cell(nn.Module):
    """Base class of all recurrent cells.

    Subclasses set ``input_size`` and ``hidden_size`` (the width of :meth:`output`) and
    implement :meth:`step`. ``dt`` is always the per-sample elapsed time of shape ``(B,)``.
    """

    input_size: int
    hidden_size: int

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        """Zero state; cells with tuple states override this."""
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def project_inputs(self, x: Tensor) -> Tensor:
        """The input-only part of a step, valid for any leading shape ``(..., input_size)``.

        ``sequence.py`` calls it once on ``(B, T, input_size)``; the default is the identity.
        """
        return x

    def step(self, u: Tensor, state: State, dt: Tensor) -> State:
        """Advance ``state`` by one observation whose projected input is ``u`` (B, P)."""
        raise NotImplementedError

    def output(self, state: State) -> Tensor:
        """The features a readout sees, shape (B, hidden_size)."""
        return state if isinstance(state, Tensor) else state[0]

    def regularized_weights(self) -> List[Tensor]:
        """The kernels a Keras L2 ``kernel_regularizer`` would penalise (``wd * sum(W**2)``).

        Used when ``weight_decay_mode`` is ``l2_kernels``. Default: every parameter with
        ``ndim >= 2``; cells whose reference implementation regularises a different set override it.
        """
        return [p for p in self.parameters() if p.ndim >= 2]

    def apply_constraints(self) -> None:
        """Called after every optimiser step (e.g. the LTC's non-negative parameters)."""

    def forward(self, x: Tensor, state: State, dt: Tensor) -> State:
        return self.step(self.project_inputs(x), state, dt)
