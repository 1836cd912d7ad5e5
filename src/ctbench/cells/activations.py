"""Activation functions selectable by name (the ``backbone_activation`` config field).

The names follow ncps: ``silu``, ``relu``, ``tanh``, ``gelu``, ``lecun_tanh``; ``softplus`` is
also accepted because the authors' TF CfC (``tf_cfc.py``) offers it.
"""

from __future__ import annotations

from typing import Callable, Dict

import torch
import torch.nn.functional as F
from torch import Tensor

Activation = Callable[[Tensor], Tensor]


def lecun_tanh(z: Tensor) -> Tensor:
    """LeCun's scaled tanh, 1.7159 * tanh(0.666 * z) (LeCun et al. 1998, "Efficient BackProp")."""
    return 1.7159 * torch.tanh(0.666 * z)


ACTIVATIONS: Dict[str, Activation] = {
    "silu": F.silu,
    "relu": F.relu,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "lecun_tanh": lecun_tanh,
    "softplus": F.softplus,
}


def get_activation(name: str) -> Activation:
    """The activation function called ``name``; a ValueError lists the known names."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}"
        ) from None
