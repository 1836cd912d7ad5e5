"""One run: ``python -m ctbench.train data=walker2d model=cfc seed=0``.

Builds the data module and model from the composed config, trains with Lightning, tests
(at the last epoch under ``protocol=paper``, at the best validation epoch under
``protocol=clean``) and writes one JSON record named by the run id. Nothing is written for
a run that fails.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger, Logger
from torch import nn

from ctbench import records
from ctbench.config import conf_dir
from ctbench.data.base import SequenceDataModule
from ctbench.data.batch import TaskKind
from ctbench.sequence import SequenceModel
from ctbench.task import METRIC_DIRECTION, BestWeights, SequenceTask

NOT_CONSTRUCTOR_ARGS = ("name", "display_name")
records.git_commit()  # pin the commit of the code this process runs (see records.git_commit)


def _instantiate(node: DictConfig, **kwargs: Any) -> Any:
    """Instantiate a config node whose descriptive keys are not constructor arguments."""
    spec = OmegaConf.to_container(node, resolve=True)
    for key in NOT_CONSTRUCTOR_ARGS:
        spec.pop(key, None)
    return instantiate(spec, **kwargs)


def build_datamodule(cfg: DictConfig) -> SequenceDataModule:
    return _instantiate(cfg.data)


def build_model(cfg: DictConfig, dm: SequenceDataModule) -> nn.Module:
    """A :class:`SequenceModel` around ``cfg.model.cell``, or the network of ``cfg.model.network``.

    Extension point for sequence-level models that are not step cells (``ctbench.models``): a
    model config with a ``network:`` key instead of ``cell:`` is instantiated with
    ``input_size`` (features, doubled when the data module appends the mask), ``n_outputs``,
    ``readout``, ``append_mask`` and ``tau``, and used in place of SequenceModel. It must take
    the same Batch and return the same shapes, and provide ``regularized_weights()`` and
    ``apply_constraints()`` (called by ``ctbench.task``).
    """
    seq = cfg.sequence
    per_step = dm.task_kind in (TaskKind.PER_STEP_REGRESSION, TaskKind.PER_STEP_CLASSIFICATION)
    if cfg.model.get("network") is not None:
        if dm.vocab_size:
            raise ValueError(f"{cfg.data.name} feeds token ids: model {cfg.model.name} (a network) takes float features only")
        return _instantiate(
            cfg.model.network,
            input_size=dm.n_features * (2 if dm.append_mask else 1),
            n_outputs=seq.n_outputs or dm.n_outputs,
            readout="sequence" if per_step else dm.readout,
            append_mask=dm.append_mask,
            tau=seq.tau,
        )
    if dm.vocab_size:
        if not seq.embed_dim:
            raise ValueError(f"{cfg.data.name} feeds token ids: set sequence.embed_dim")
        cell_input = seq.embed_dim
    else:
        cell_input = dm.n_features * (2 if dm.append_mask else 1)
    cell = _instantiate(cfg.model.cell, input_size=cell_input)
    return SequenceModel(
        cell,
        n_outputs=seq.n_outputs or dm.n_outputs,
        readout="sequence" if per_step else dm.readout,
        append_mask=dm.append_mask,
        vocab_size=dm.vocab_size,
        embed_dim=seq.embed_dim,
        embed_dropout=seq.embed_dropout,
        tau=seq.tau,
    )


def effective_epochs(cfg: DictConfig) -> int:
    """The experiment's epochs scaled by the budget's fraction and capped by its maximum."""
    epochs = max(1, math.ceil(cfg.train.epochs * cfg.budget.epoch_fraction))
    if cfg.budget.max_epochs:
        epochs = min(epochs, cfg.budget.max_epochs)
    return epochs


class EpochTimer(pl.Callback):
    """Wall-clock seconds of training per epoch, validation excluded."""

    def __init__(self) -> None:
        self.seconds: List[float] = []
        self._start: Optional[float] = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def _stop(self) -> None:
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._stop()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop()

    def summary(self) -> Dict[str, Any]:
        """Mean over epochs after the first (warm-up), or the one epoch there is."""
        steady = self.seconds[1:] or self.seconds
        return {
            "seconds_per_epoch": sum(steady) / len(steady) if steady else float("nan"),
            "seconds_first_epoch": self.seconds[0] if self.seconds else float("nan"),
            "seconds_train_total": sum(self.seconds),
        }


def build_strategy(node: Any) -> Any:
    """``trainer.strategy``: a Lightning name (``auto``, ``ddp``) or a ``_target_`` node (trainer=ddp_cpu)."""
    return instantiate(node) if isinstance(node, DictConfig) else node


def wandb_mode(requested: str) -> str:
    """``auto`` means online when the user is logged in to W&B, else offline."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if requested != "auto":
        return requested
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path.home() / ".netrc"
    return "online" if netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore") else "offline"


def build_loggers(cfg: DictConfig, rid: str) -> List[Logger]:
    loggers: List[Logger] = [CSVLogger(cfg.paths.logs_dir, name=rid, version="csv")]
    if cfg.logger.wandb.enabled:
        mode = wandb_mode(cfg.logger.wandb.mode)
        if mode != "disabled":
            from pytorch_lightning.loggers import WandbLogger

            loggers.append(
                WandbLogger(
                    project=cfg.logger.wandb.project,
                    group=cfg.logger.wandb.group or f"{cfg.data.name}-{cfg.model.name}-{cfg.budget.name}",
                    name=f"{cfg.data.name}-{cfg.model.name}-s{cfg.seed}-{rid[:8]}",
                    save_dir=cfg.paths.logs_dir,
                    mode=mode,
                    config=OmegaConf.to_container(cfg, resolve=True),
                )
            )
    return loggers


def _finish_wandb(loggers: List[Logger]) -> None:
    """Close the W&B run so that runs of one process (tables, multirun) never merge."""
    if any(type(lg).__name__ == "WandbLogger" for lg in loggers):
        import wandb

        wandb.finish()


def run(cfg: DictConfig, extra_callbacks: Sequence[pl.Callback] = ()) -> Dict[str, Any]:
    """Train and test one configuration; write and return its record.

    ``extra_callbacks`` are added to the trainer's own (e.g. ``ctbench.sweep``'s pruning
    callback); they do not change the run's identity.
    """
    rid = records.run_id(cfg)
    if cfg.runtime.num_threads:
        torch.set_num_threads(cfg.runtime.num_threads)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_datamodule(cfg)
    dm.setup()
    model = build_model(cfg, dm)
    sizes = dm.split_sizes()
    limit_train = cfg.budget.limit_train_batches or 1.0
    # Keras' ExponentialDecay uses decay_steps = train_size // batch_size (floor), so one
    # "epoch" of decay is that many steps even though an epoch runs one step more.
    steps_per_epoch = max(1, sizes["train"] // dm.batch_size)
    if isinstance(limit_train, int):
        steps_per_epoch = min(steps_per_epoch, limit_train)
    task = SequenceTask(
        model,
        task_kind=dm.task_kind,
        metric=dm.metric,
        optim=OmegaConf.to_container(cfg.optim, resolve=True),
        steps_per_epoch=steps_per_epoch,
        class_weight=cfg.task.class_weight,
    )
    has_val = dm.has_split("val")
    timer = EpochTimer()
    best = BestWeights(monitor=f"val/{dm.metric}", mode=METRIC_DIRECTION[dm.metric])
    loggers = build_loggers(cfg, rid)
    epochs = effective_epochs(cfg)
    trainer = pl.Trainer(
        max_epochs=epochs,
        limit_train_batches=limit_train,
        limit_val_batches=(cfg.budget.limit_eval_batches or 1.0) if has_val else 0,
        limit_test_batches=cfg.budget.limit_eval_batches or 1.0,
        num_sanity_val_steps=0,
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        strategy=build_strategy(cfg.trainer.strategy),
        num_nodes=cfg.trainer.num_nodes,
        precision=cfg.trainer.precision,
        logger=loggers,
        callbacks=[timer, best, *extra_callbacks],
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=cfg.runtime.progress_bar,
        log_every_n_steps=cfg.trainer.log_every_n_steps,
    )
    try:
        trainer.fit(task, datamodule=dm)
        if cfg.protocol.select == "best_val":
            if not has_val:
                raise ValueError(f"protocol={cfg.protocol.name} selects on validation, but {cfg.data.name} has no validation split")
            best.restore(task)
        tested = trainer.test(task, datamodule=dm, verbose=False)
    finally:
        _finish_wandb(loggers)
    if not trainer.is_global_zero:
        return {}
    test_value = float(tested[0][f"test/{dm.metric}"])
    record = {
        "run_id": rid,
        "status": "finished",
        "data": cfg.data.name,
        "model": cfg.model.name,
        "experiment": cfg.experiment.name,
        "seed": cfg.seed,
        "budget": cfg.budget.name,
        "protocol": cfg.protocol.name,
        "metric": dm.metric,
        "test_metric": test_value,
        "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
        "selected_epoch": best.best_epoch if cfg.protocol.select == "best_val" else epochs - 1,
        "best_val": best.best,
        "epochs": epochs,
        **timer.summary(),
        "split_sizes": sizes,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "hardware": records.hardware(),
        "versions": records.versions(),
        "git_commit": records.git_commit(),
        "data_fingerprint": dm.fingerprint,
        "created": records.now_utc(),
        "config": records.identity(cfg),
    }
    runs_dir = Path(cfg.paths.runs_dir)
    if cfg.runtime.save_checkpoint:
        save_checkpoint(runs_dir / rid / "model.pt", model, cfg)
    records.write_json_atomic(records.record_path(runs_dir, rid), record)
    return record


def save_checkpoint(path: Path, model: nn.Module, cfg: DictConfig) -> None:
    """``state_dict`` plus the resolved config: enough to rebuild the model anywhere."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": model.state_dict(), "config": OmegaConf.to_container(cfg, resolve=True)}, tmp)
    os.replace(tmp, path)


def load_model(path: str | Path) -> nn.Module:
    """Rebuild a model from :func:`save_checkpoint` (the data itself is not loaded)."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    cfg = OmegaConf.create(saved["config"])
    model = build_model(cfg, build_datamodule(cfg))
    model.load_state_dict(saved["state_dict"])
    return model


@hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> Optional[float]:
    from ctbench.task import NonFiniteLossError

    try:
        record = run(cfg)
    except NonFiniteLossError as err:
        sys.exit(f"ctbench: run stopped: {err}")
    if record:
        print(f"run {record['run_id']}: test {record['metric']} = {record['test_metric']:.6g} "
              f"({record['seconds_per_epoch']:.2f} s/epoch) -> {records.record_path(cfg.paths.runs_dir, record['run_id'])}")
        return record["test_metric"]
    return None


if __name__ == "__main__":
    main()
