"""KerasRMSprop against TF 2.x Keras' ApplyRMSProp update written out by hand."""

import numpy as np
import pytest
import torch

from ctbench.optim import KerasRMSprop


def _keras_reference(p0: np.ndarray, grads: list[np.ndarray], lr: float, rho: float, eps: float) -> np.ndarray:
    p, ms = p0.astype(np.float64).copy(), np.zeros_like(p0, dtype=np.float64)
    for g in grads:
        ms = rho * ms + (1 - rho) * g * g
        p = p - lr * g / np.sqrt(ms + eps)
    return p


def test_updates_match_keras_formula_with_eps_inside_the_sqrt():
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 4)).astype(np.float32)
    # tiny and ordinary gradients: eps inside the sqrt matters for the tiny ones
    grads = [(rng.normal(size=(3, 4)) * scale).astype(np.float32) for scale in (1e-5, 1.0, 1e-4, 0.3)]
    param = torch.nn.Parameter(torch.tensor(p0))
    opt = KerasRMSprop([param], lr=0.05, rho=0.9, eps=1e-7)
    for g in grads:
        param.grad = torch.tensor(g)
        opt.step()
    expected = _keras_reference(p0, grads, 0.05, 0.9, 1e-7)
    np.testing.assert_allclose(param.detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_differs_from_torch_rmsprop_on_tiny_gradients():
    g = torch.full((5,), 1e-5)
    keras_p, torch_p = torch.nn.Parameter(torch.zeros(5)), torch.nn.Parameter(torch.zeros(5))
    keras_p.grad, torch_p.grad = g.clone(), g.clone()
    KerasRMSprop([keras_p], lr=0.05, rho=0.9, eps=1e-7).step()
    torch.optim.RMSprop([torch_p], lr=0.05, alpha=0.9, eps=1e-7).step()
    # torch: a full step of lr/sqrt(1 - rho) ~ 0.158; Keras: damped by sqrt(1e-7) ~ 3.2e-4
    assert torch_p[0].item() == pytest.approx(-0.05 * 1e-5 / (np.sqrt(0.1 * 1e-10) + 1e-7), rel=1e-4)
    assert keras_p[0].item() == pytest.approx(-0.05 * 1e-5 / np.sqrt(0.1 * 1e-10 + 1e-7), rel=1e-4)
    assert abs(keras_p[0].item()) < abs(torch_p[0].item()) / 50  # ~97x smaller


def test_skips_parameters_without_gradient_and_refuses_bad_settings():
    p = torch.nn.Parameter(torch.ones(2))
    KerasRMSprop([p], lr=0.1).step()
    assert torch.equal(p.detach(), torch.ones(2))
    with pytest.raises(ValueError, match="lr > 0"):
        KerasRMSprop([p], lr=0.0)
    with pytest.raises(ValueError, match="rho"):
        KerasRMSprop([p], rho=1.0)


def test_task_builds_keras_rmsprop_and_refuses_its_weight_decay():
    from ctbench.data.batch import TaskKind
    from ctbench.task import SequenceTask

    model = torch.nn.Linear(2, 2)
    base = {"name": "keras_rmsprop", "lr": 0.01, "eps": 1e-7, "rho": 0.9, "weight_decay": 0.0, "weight_decay_mode": "l2_kernels"}
    task = SequenceTask(model, task_kind=TaskKind.SEQUENCE_CLASSIFICATION, metric="accuracy", optim=base, steps_per_epoch=1)
    assert isinstance(task.configure_optimizers()["optimizer"], KerasRMSprop)
    bad = SequenceTask(model, task_kind=TaskKind.SEQUENCE_CLASSIFICATION, metric="accuracy",
                       optim={**base, "weight_decay": 1e-4, "weight_decay_mode": "decoupled"}, steps_per_epoch=1)
    with pytest.raises(ValueError, match="l2_kernels"):
        bad.configure_optimizers()
