"""Where the Hydra tree lives, and composing it outside ``@hydra.main`` (tables, sweeps, tests)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

import ctbench


def conf_dir() -> Path:
    """The ``conf/`` folder: ``CTBENCH_CONF`` if set, else the one beside ``src/``."""
    override = os.environ.get("CTBENCH_CONF")
    path = Path(override) if override else Path(ctbench.__file__).resolve().parents[2] / "conf"
    if not (path / "config.yaml").is_file():
        raise FileNotFoundError(
            f"no Hydra config tree at {path}: run from a ctbench checkout (pip install -e .) "
            "or point CTBENCH_CONF at its conf/ folder"
        )
    return path


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/config.yaml`` with command-line style overrides."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))
