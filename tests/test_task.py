"""The task module: losses, epoch metrics, clipping, schedules and the NaN guard."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from ctbench.data.batch import Batch, TaskKind
from ctbench.sequence import SequenceModel
from ctbench.task import NonFiniteLossError, SequenceTask, epoch_metric
from test_sequence import ToyCell

OPTIM = dict(name="adam", lr=0.01, decay_lr=0.5, decay_every="step", clipnorm=0.0, weight_decay=0.0)


def _task(kind=TaskKind.PER_STEP_REGRESSION, metric="mse", n_out=2, readout="sequence", **optim):
    model = SequenceModel(ToyCell(3, 4), n_outputs=n_out, readout=readout)
    return SequenceTask(model, kind, metric, {**OPTIM, **optim}, steps_per_epoch=4)


def test_mse_loss_respects_the_target_mask():
    task = _task()
    out = torch.randn(2, 5, 2)
    y = torch.randn(2, 5, 2)
    y_mask = torch.tensor([[1, 1, 0, 0, 1], [0, 1, 1, 1, 1]], dtype=torch.bool)
    loss = task.loss(out, Batch(x=None, dt=None, y=y, y_mask=y_mask))
    expected = ((out - y) ** 2)[y_mask].mean()
    assert torch.allclose(loss, expected)


def test_class_weighted_cross_entropy_matches_direct_formula():
    task = _task(TaskKind.SEQUENCE_CLASSIFICATION, "auroc", readout="last")
    task.class_weight = 5.0
    logits = torch.randn(6, 2)
    y = torch.tensor([0, 1, 1, 0, 0, 1])
    loss = task.loss(logits, Batch(x=None, dt=None, y=y))
    logp = torch.log_softmax(logits, -1)
    w = torch.where(y == 1, 5.0, 1.0)
    expected = -(w * logp[torch.arange(6), y]).sum() / w.sum()
    assert torch.allclose(loss, expected, atol=1e-6)


def test_epoch_metrics_against_direct_computation():
    rng = np.random.RandomState(0)
    logits = torch.tensor(rng.randn(20, 2), dtype=torch.float32)
    y = torch.tensor(rng.randint(0, 2, 20))
    chunks = [(logits[:7], y[:7], None), (logits[7:], y[7:], None)]
    acc = epoch_metric("accuracy", TaskKind.SEQUENCE_CLASSIFICATION, chunks)
    assert acc == pytest.approx(100.0 * float((logits.argmax(-1) == y).float().mean()))
    auc = epoch_metric("auroc", TaskKind.SEQUENCE_CLASSIFICATION, chunks)
    assert auc == pytest.approx(roc_auc_score(y.numpy(), torch.softmax(logits, -1)[:, 1].numpy()))
    one_logit = torch.tensor(rng.randn(20, 1), dtype=torch.float32)
    bin_acc = epoch_metric("accuracy", TaskKind.SEQUENCE_CLASSIFICATION, [(one_logit, y, None)])
    assert bin_acc == pytest.approx(100.0 * float(((one_logit[:, 0] > 0).long() == y).float().mean()))


def test_per_step_accuracy_counts_only_labelled_steps():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]]])
    y = torch.tensor([[0, 0, 1]])
    y_mask = torch.tensor([[True, True, False]])
    acc = epoch_metric("accuracy", TaskKind.PER_STEP_CLASSIFICATION, [(logits, y, y_mask)])
    assert acc == pytest.approx(50.0)


def test_per_tensor_clipping_clips_each_gradient_on_its_own():
    task = _task(clipnorm=0.1, clip_mode="per_tensor")
    for p in task.model.parameters():
        p.grad = torch.full_like(p, 3.0)
    task.configure_gradient_clipping(None)
    for p in task.model.parameters():
        assert float(p.grad.norm()) == pytest.approx(0.1, rel=1e-4)


def test_global_clipping_scales_all_gradients_together():
    task = _task(clipnorm=0.1, clip_mode="global")
    for p in task.model.parameters():
        p.grad = torch.full_like(p, 3.0)
    task.configure_gradient_clipping(None)
    total = math.sqrt(sum(float(p.grad.norm()) ** 2 for p in task.model.parameters()))
    assert total == pytest.approx(0.1, rel=1e-4)
    grads = [p.grad.flatten() for p in task.model.parameters()]
    assert torch.allclose(torch.cat(grads), torch.cat(grads)[0].expand(sum(g.numel() for g in grads)))


def test_step_schedule_is_keras_exponential_decay():
    task = _task(decay_every="step", decay_lr=0.5, lr=0.01)
    conf = task.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert conf["lr_scheduler"]["interval"] == "step"
    for step in range(1, 9):
        opt.step()
        sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5 ** (step / 4))


def test_nan_loss_stops_with_a_clear_error():
    task = _task()
    batch = Batch(x=torch.full((2, 3, 3), float("nan")), dt=torch.ones(2, 3), y=torch.zeros(2, 3, 2))
    with pytest.raises(NonFiniteLossError, match="diverged"):
        task.training_step(batch, 0)


def test_unknown_optimizer_and_metric_are_refused():
    with pytest.raises(ValueError, match="known: adam, adamw, rmsprop"):
        _task(name="sgd")
    with pytest.raises(ValueError, match="known: mse, accuracy, auroc"):
        _task(metric="f1")
