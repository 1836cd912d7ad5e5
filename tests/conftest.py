"""Shared fixtures: a Walker2d mirror in the real format and composed smoke configs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

import pytest
import torch

from ctbench.config import compose
from test_walker2d import write_walker_zip

os.environ.setdefault("WANDB_MODE", "disabled")
# The tests' models are tiny: one thread is as fast, and immune to a busy machine's
# oversubscription (two threads on two loaded cores made small ops 10x slower here).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def no_real_data_mirror(request, monkeypatch):
    """Fast tests never see the real-data mirror: each builds its own fixture files, and a
    `missing file` test must not find the real copy that CI's CTBENCH_DATA_MIRROR points at.
    Slow (real-data) tests keep it."""
    if request.node.get_closest_marker("slow") is None:
        monkeypatch.delenv("CTBENCH_DATA_MIRROR", raising=False)


@pytest.fixture(scope="session")
def walker_mirror(tmp_path_factory) -> Path:
    """A mirror folder holding a small walker.zip in the authors' layout."""
    mirror = tmp_path_factory.mktemp("mirror")
    write_walker_zip(mirror / "walker2d")
    return mirror


@pytest.fixture()
def smoke_overrides(tmp_path, walker_mirror) -> List[str]:
    """Overrides that keep a run inside tmp_path, on the fixture data, at smoke budget."""
    return [
        "budget=smoke",
        "logger=none",
        "trainer=cpu",
        f"paths.data_dir={tmp_path / 'data'}",
        f"paths.runs_dir={tmp_path / 'runs'}",
        f"paths.logs_dir={tmp_path / 'logs'}",
        f"data.mirror={walker_mirror}",
        "runtime.progress_bar=false",
    ]


@pytest.fixture()
def smoke_cfg(smoke_overrides):
    def make(*extra: str):
        return compose(smoke_overrides + list(extra))

    return make
