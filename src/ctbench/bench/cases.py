"""A benchmark case: a model built from the experiment configs and a synthetic batch of its shapes.

The model, its batch size and its hyperparameters come from the same Hydra composition as a
training run (``data=<data> model=<model>`` picks ``conf/experiment/<data>_<model>.yaml``). The
data are random tensors of the dataset's real shapes (``DataShape``, from ``conf/bench/*.yaml``),
so ``make bench`` needs no dataset on disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from ctbench.config import compose, conf_dir
from ctbench.data.batch import Batch, TaskKind
from ctbench.train import build_datamodule, build_model


@dataclass(frozen=True)
class DataShape:
    """What a dataset's batches look like, beyond its data config.

    seq_len: steps per batch; n_train: training samples (steps per epoch = ceil(n_train / batch));
    dt_mean: mean elapsed time (drawn uniformly in [0.5, 1.5] * dt_mean); min_length: when set,
    sequences are padded (``step_mask``) with lengths uniform in [min_length, seq_len];
    obs_density: when set, an ``obs_mask`` with this fraction of features observed.
    """

    seq_len: int
    n_train: int
    dt_mean: float = 1.0
    min_length: Optional[int] = None
    obs_density: Optional[float] = None

    @classmethod
    def from_dict(cls, spec: Dict[str, Any]) -> "DataShape":
        return cls(**spec)


@dataclass
class Case:
    """One model ready to time: ``train_step`` (forward, loss, backward, Adam step) and ``infer``."""

    label: str
    data: str
    model_name: str
    model: nn.Module
    batch: Batch
    batch_size: int
    steps_per_epoch: int
    overrides: Sequence[str] = ()
    optimizer: Optional[torch.optim.Optimizer] = None

    def __post_init__(self) -> None:
        if self.optimizer is None:
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def forward(self) -> Tensor:
        return self.model(self.batch)

    def train_step(self) -> None:
        """One optimisation step; the loss is the mean square of the outputs (its cost is negligible
        beside the model's, and it needs no targets)."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.forward().float().pow(2).mean()
        loss.backward()
        self.optimizer.step()
        constrain = getattr(self.model, "apply_constraints", None)
        if constrain is not None:
            constrain()

    def infer(self) -> None:
        """One forward pass in eval mode without autograd (prediction)."""
        self.model.eval()
        with torch.no_grad():
            self.forward()
        self.model.train()

    def nfe_per_forward(self) -> Optional[float]:
        """Vector-field evaluations of one forward pass over the batch (ODE cells), else None."""
        counters = [m for m in self.model.modules() if hasattr(m, "reset_nfe")]
        if not counters:
            return None
        for m in counters:
            m.reset_nfe()
        self.infer()
        return float(sum(m.nfe for m in counters))


def synthetic_batch(
    shape: DataShape, batch_size: int, n_features: int, n_outputs: int, task_kind: TaskKind,
    device: torch.device, seed: int = 0, obs_mask: bool = False,
) -> Batch:
    """Random inputs of the dataset's shapes (see :class:`DataShape`)."""
    g = torch.Generator().manual_seed(seed)
    b, t = batch_size, shape.seq_len
    x = torch.randn(b, t, n_features, generator=g)
    dt = shape.dt_mean * (0.5 + torch.rand(b, t, generator=g))
    step_mask = None
    if shape.min_length is not None:
        lengths = torch.randint(shape.min_length, t + 1, (b,), generator=g)
        step_mask = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)
    mask = None
    if obs_mask or shape.obs_density is not None:
        mask = torch.rand(b, t, n_features, generator=g) < (shape.obs_density or 1.0)
    per_step = task_kind in (TaskKind.PER_STEP_REGRESSION, TaskKind.PER_STEP_CLASSIFICATION)
    y = torch.zeros(b, t, n_outputs) if per_step else torch.zeros(b)
    return Batch(x=x, dt=dt, y=y, step_mask=step_mask, obs_mask=mask).to(device)


def build_case(
    label: str, data: str, model: str, shape: DataShape, device: torch.device,
    overrides: Sequence[str] = (), seed: int = 0,
    transform: Optional[Callable[[nn.Module], nn.Module]] = None,
) -> Case:
    """The model of ``data=<data> model=<model> <overrides>`` at the config's batch size."""
    cfg = compose([f"data={data}", f"model={model}", *overrides])
    torch.manual_seed(seed)
    dm = build_datamodule(cfg)
    net = build_model(cfg, dm)
    if transform is not None:
        net = transform(net)
    net = net.to(device)
    batch_size = int(cfg.data.batch_size)
    batch = synthetic_batch(
        shape, batch_size, dm.n_features, int(cfg.sequence.n_outputs or dm.n_outputs), dm.task_kind,
        device, seed=seed, obs_mask=dm.append_mask or dm.readout == "last_observed",
    )
    return Case(
        label=label, data=data, model_name=model, model=net, batch=batch, batch_size=batch_size,
        steps_per_epoch=math.ceil(shape.n_train / batch_size), overrides=tuple(overrides),
    )


def shapes_from(spec: Dict[str, Dict[str, Any]]) -> Dict[str, DataShape]:
    return {name: DataShape.from_dict(dict(s)) for name, s in spec.items()}


def load_bench_config(name: str) -> Dict[str, Any]:
    """``conf/bench/<name>.yaml`` (or a path to a YAML file) as a plain dict."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else conf_dir() / "bench" / f"{name}.yaml"
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)
