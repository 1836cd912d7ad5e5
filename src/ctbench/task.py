"""The LightningModule for every task kind: loss, epoch metrics and the optimiser recipe.

It reads the data module's task kind and metric, never the dataset's name. The optimiser
recipe reproduces both of the authors' frameworks, chosen by config:

- TF/Keras scripts (Walker2d, IMDB, XOR, ET-sMNIST): ``clip_mode=per_tensor`` (Keras
  ``clipnorm`` clips each gradient tensor on its own), ``weight_decay_mode=l2_kernels`` (an
  L2 loss term on the kernels), ``decay_every=step`` (a smooth ExponentialDecay worth
  ``decay_lr`` per epoch), and ``name=keras_rmsprop`` for Keras' RMSprop (``ctbench.optim``).
- torch scripts (PhysioNet, person activity): ``clip_mode=global``, ``weight_decay_mode``
  ``decoupled`` (AdamW) or ``coupled`` (Adam's weight_decay), ``decay_every=epoch``.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Dict, List, Optional

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import Tensor

from ctbench.data.batch import Batch, TaskKind
from ctbench.optim import KerasRMSprop
from ctbench.sequence import SequenceModel

METRIC_DIRECTION = {"mse": "min", "accuracy": "max", "auroc": "max"}
OPTIMIZERS = ("adam", "adamw", "rmsprop", "keras_rmsprop")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run stops and writes no record."""


class SequenceTask(pl.LightningModule):
    def __init__(
        self,
        model: SequenceModel,
        task_kind: TaskKind,
        metric: str,
        optim: Dict[str, Any],
        steps_per_epoch: int,
        class_weight: Optional[float] = None,
    ):
        super().__init__()
        if metric not in METRIC_DIRECTION:
            raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRIC_DIRECTION)}")
        if optim["name"] not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optim['name']!r}; known: {', '.join(OPTIMIZERS)}")
        self.model = model
        self.task_kind = TaskKind(task_kind)
        self.metric = metric
        self.optim = dict(optim)
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.class_weight = class_weight
        self._eval_outputs: List[tuple] = []

    # -- loss ---------------------------------------------------------------------------
    def loss(self, out: Tensor, batch: Batch) -> Tensor:
        if self.task_kind == TaskKind.PER_STEP_REGRESSION:
            err = (out - batch.y.to(out.dtype)) ** 2
            if batch.y_mask is not None:
                mask = batch.y_mask.unsqueeze(-1).expand_as(err)
                return err[mask].mean()
            return err.mean()
        logits, labels = out, batch.y.long()
        if self.task_kind == TaskKind.PER_STEP_CLASSIFICATION:
            keep = batch.y_mask if batch.y_mask is not None else torch.ones_like(labels, dtype=torch.bool)
            logits, labels = logits[keep], labels[keep]
        if logits.shape[-1] == 1:
            return F.binary_cross_entropy_with_logits(logits.squeeze(-1), labels.to(logits.dtype))
        weight = None
        if self.class_weight is not None:
            weight = torch.ones(logits.shape[-1], device=logits.device, dtype=logits.dtype)
            weight[1] = self.class_weight
        return F.cross_entropy(logits, labels, weight=weight)

    def l2_penalty(self) -> Tensor:
        weights = self.model.regularized_weights()
        if not weights:
            return torch.zeros((), device=self.device)
        return sum((w**2).sum() for w in weights)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        out = self.model(batch)
        loss = self.loss(out, batch)
        if self.optim.get("weight_decay_mode") == "l2_kernels" and self.optim.get("weight_decay", 0) > 0:
            loss = loss + self.optim["weight_decay"] * self.l2_penalty()
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss is {loss.item()} at epoch {self.current_epoch}, batch {batch_idx}: "
                "the run diverged (try a lower lr, gradient clipping, or check the inputs); no record written"
            )
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch))
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        self.model.apply_constraints()

    # -- evaluation ---------------------------------------------------------------------
    def _eval_step(self, batch: Batch) -> None:
        out = self.model(batch)
        self._eval_outputs.append((out.detach().float().cpu(), batch.y.cpu(), None if batch.y_mask is None else batch.y_mask.cpu()))

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metric("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metric("test")

    def _log_epoch_metric(self, split: str) -> None:
        if not self._eval_outputs:  # the same on every rank: DistributedSampler pads to equal shards
            return
        outputs = self._eval_outputs
        if self.trainer.world_size > 1:
            loader = self.trainer.val_dataloaders if split == "val" else self.trainer.test_dataloaders
            outputs = gather_eval_outputs(outputs, len(loader.dataset))
        value = epoch_metric(self.metric, self.task_kind, outputs)
        self._eval_outputs = []
        # Every rank computed the same value over every rank's predictions: syncing changes nothing
        # (and keeps Lightning from warning that an epoch-level value is not synced).
        self.log(f"{split}/{self.metric}", value, prog_bar=True, sync_dist=True)

    # -- optimiser ----------------------------------------------------------------------
    def configure_optimizers(self):
        o = self.optim
        lr, wd, eps = o["lr"], o.get("weight_decay", 0.0), o.get("eps", 1e-8)
        params = self.model.parameters()
        optimizer_wd = wd if o.get("weight_decay_mode") in ("decoupled", "coupled") else 0.0
        if o["name"] == "adamw":
            optimizer = torch.optim.AdamW(params, lr=lr, eps=eps, weight_decay=optimizer_wd)
        elif o["name"] == "adam":
            optimizer = torch.optim.Adam(params, lr=lr, eps=eps, weight_decay=optimizer_wd)
        elif o["name"] == "keras_rmsprop":
            if optimizer_wd:
                raise ValueError("keras_rmsprop has no weight_decay of its own: use weight_decay_mode=l2_kernels")
            optimizer = KerasRMSprop(params, lr=lr, rho=o.get("rho", 0.9), eps=eps)
        else:  # rmsprop (checked in __init__)
            optimizer = torch.optim.RMSprop(params, lr=lr, alpha=o.get("rho", 0.9), eps=eps, weight_decay=optimizer_wd)
        decay = o.get("decay_lr", 1.0)
        if o.get("decay_every", "epoch") == "step":
            per_step = self.steps_per_epoch
            schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: decay ** (step / per_step))
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: decay**epoch)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        clip = self.optim.get("clipnorm", 0.0) or 0.0
        if clip <= 0:
            return
        if self.optim.get("clip_mode", "global") == "per_tensor":
            for p in self.model.parameters():
                if p.grad is not None:
                    torch.nn.utils.clip_grad_norm_([p], clip)
        else:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)


def gather_eval_outputs(outputs: List[tuple], n_samples: int) -> List[tuple]:
    """Every rank's evaluation batches (a collective: every rank calls it), merged by :func:`merge_shards`."""
    import torch.distributed as dist

    per_rank: List[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(per_rank, outputs)
    return merge_shards(per_rank, n_samples)


def merge_shards(per_rank: List[List[tuple]], n_samples: int) -> List[tuple]:
    """The ranks' batches in the order of the unsharded loader, padding dropped.

    Under DDP, Lightning wraps the loader's batch sampler in a ``DistributedSampler`` (no
    shuffling for evaluation): rank ``r`` gets batches ``r, r + W, r + 2W, ...`` of the list
    padded with its first batches up to a multiple of the ``W`` ranks. Interleaving the ranks'
    lists restores that order; stopping at ``n_samples`` (the split's size) drops the padding, so
    an epoch metric such as AUROC sees each sample exactly once, as in one process.
    """
    kept: List[tuple] = []
    seen = 0
    for k in range(max(len(r) for r in per_rank)):
        for rank_outputs in per_rank:
            if k < len(rank_outputs) and seen < n_samples:
                kept.append(rank_outputs[k])
                seen += len(rank_outputs[k][0])
    return kept


def epoch_metric(metric: str, kind: TaskKind, outputs: List[tuple]) -> float:
    """One metric over a whole split (AUROC needs every prediction at once)."""
    out = torch.cat([o[0] for o in outputs])
    y = torch.cat([o[1] for o in outputs])
    masks = [o[2] for o in outputs]
    mask = None if masks[0] is None else torch.cat(masks)
    if metric == "mse":
        err = (out - y.float()) ** 2
        if mask is not None:
            err = err[mask.unsqueeze(-1).expand_as(err)]
        return float(err.mean())
    if kind == TaskKind.PER_STEP_CLASSIFICATION and mask is not None:
        out, y = out[mask], y[mask]
    if metric == "accuracy":
        pred = (out.squeeze(-1) > 0).long() if out.shape[-1] == 1 else out.argmax(-1)
        return float((pred == y.long()).float().mean() * 100.0)
    if metric == "auroc":
        scores = torch.sigmoid(out.squeeze(-1)) if out.shape[-1] == 1 else torch.softmax(out, -1)[..., 1]
        labels = y.long().numpy()
        if len(np.unique(labels)) < 2:
            return math.nan
        return float(roc_auc_score(labels, scores.numpy()))
    raise ValueError(f"unknown metric {metric!r}")


class BestWeights(pl.Callback):
    """Keep the weights of the best validation epoch in memory; restore them on request.

    ``protocol=clean`` restores them before testing; ``protocol=paper`` tests the last
    epoch, as every one of the authors' scripts does.
    """

    def __init__(self, monitor: str, mode: str):
        self.monitor, self.mode = monitor, mode
        self.best: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.state: Optional[Dict[str, Tensor]] = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        value = float(value)
        better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        if better:
            self.best, self.best_epoch = value, trainer.current_epoch
            self.state = copy.deepcopy({k: v.detach().cpu() for k, v in pl_module.state_dict().items()})

    def restore(self, pl_module: pl.LightningModule) -> bool:
        if self.state is None:
            return False
        pl_module.load_state_dict(self.state)
        return True
