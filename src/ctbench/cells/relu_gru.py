"""ReLU GRU: the GRU of ``cells.gru`` with a ReLU candidate activation.

    n = relu(n_x + r * n_h),   h' = (1 - z) * n + z * h       (gates as in ``cells.gru``)

The IMDB row (Nature Extended Data Fig. 8, marked *) is borrowed from Rusch & Mishra, ICLR 2021
(coRNN), who cite it from earlier work (``reference/models.md`` §8.3); ctbench's cell is the
``torch.nn.GRUCell`` form with ``tanh`` replaced by ``relu`` in the candidate only.
"""

from __future__ import annotations

from ctbench.cells.gru import GRUCell


class ReLUGRUCell(GRUCell):
    """A :class:`~ctbench.cells.gru.GRUCell` whose candidate state uses ReLU instead of tanh."""

    def __init__(self, input_size: int, hidden_size: int, time_input: bool = False) -> None:
        super().__init__(input_size, hidden_size, candidate_activation="relu", time_input=time_input)
