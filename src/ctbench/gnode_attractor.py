"""Learned attractors of a 2-D gnODE: fixed and slow points by speed minimisation, and the phase plane.

gnode.md G6: the 2-bit scripts train N = 2 gnODEs so that the learned attractor can be drawn. Between
pulses the input is zero, so what holds the memory is the input-free flow

    dh/dt = v(h) = G(h, 0) * (F(h, 0) - h) / tau        (at alpha = 1, also the step h' - h).

:func:`minimise_speed` minimises q(h) = |v(h)|^2 / 2 from many starts (Sussillo & Barak 2013) with a
damped Gauss-Newton (Levenberg-Marquardt) step per point: zeros of v are fixed points, and local
minima with a small but non-zero speed are slow points. A continuous attractor shows up as slow
points covering a set, which the figure draws over the task's target attractor (the square, the
rectangle, the ring of radius 2, the annulus 1 < r < 2, or the four corners of the fixed 2-bit task).

Everything is drawn in output space y = C h + d (the linear readout; invertible for N = n = 2), where
the target shapes are defined; speeds are |C v(h)| in output units per bin.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

Field = Callable[[Tensor], Tensor]

FIXED_TOL = 1e-5  # speed below which a point is a fixed point (output units per bin)
SLOW_TOL = 1e-3  # speed below which it is a slow point: a drift under 0.1 over a 100-bin trial
RADIUS = 0.1  # distance (output units) at which a target point counts as covered


@dataclass
class SpeedMinima:
    """Where each start ended: the points, their speeds, and the Jacobian's eigenvalues there."""

    points: Tensor  # (M, d)
    speeds: Tensor  # (M,)
    eigenvalues: Tensor  # (M, d), complex


def jacobians(field: Field, h: Tensor) -> Tensor:
    """dv/dh at every row of h: (M, d, d), batched with torch.func."""
    one = lambda x: field(x.unsqueeze(0)).squeeze(0)  # noqa: E731
    return torch.func.vmap(torch.func.jacrev(one))(h)


def minimise_speed(field: Field, starts: Tensor, iters: int = 100, damping: float = 1e-3) -> SpeedMinima:
    """Minimise q(h) = |v(h)|^2 / 2 from every start (float64, Levenberg-Marquardt per point).

    Each point takes h <- h - (J^T J + lam I)^-1 J^T v; a step is kept only where it lowers q,
    and lam shrinks after a kept step and grows after a rejected one, so near a zero of v the
    step is Gauss-Newton (quadratic convergence) and on flat or singular parts a short gradient
    step.
    """
    h = starts.detach().to(torch.float64).clone()
    m, d = h.shape
    lam = torch.full((m, 1, 1), damping, dtype=h.dtype)
    eye = torch.eye(d, dtype=h.dtype)
    with torch.no_grad():
        v = field(h)
    q = 0.5 * (v**2).sum(-1)
    for _ in range(iters):
        J = jacobians(field, h).detach()
        Jt = J.transpose(1, 2)
        step = torch.linalg.solve(Jt @ J + lam * eye, (Jt @ v.unsqueeze(-1))).squeeze(-1)
        with torch.no_grad():
            trial = h - step
            v_trial = field(trial)
        q_trial = 0.5 * (v_trial**2).sum(-1)
        better = q_trial < q
        h = torch.where(better.unsqueeze(-1), trial, h)
        v = torch.where(better.unsqueeze(-1), v_trial, v)
        q = torch.where(better, q_trial, q)
        lam = torch.where(better.view(-1, 1, 1), lam / 3.0, lam * 3.0).clamp(1e-12, 1e12)
    eig = torch.linalg.eigvals(jacobians(field, h).detach())
    return SpeedMinima(h, v.norm(dim=-1), eig)


def descend_speed(field: Field, starts: Tensor, stop_below: float, iters: int = 300) -> Tuple[Tensor, Tensor]:
    """Gradient descent on q(h) = |v(h)|^2 / 2 from every start, each point frozen once its speed < ``stop_below``.

    The slow-point pass: unlike the Gauss-Newton steps of :func:`minimise_speed`, a gradient step
    barely moves along a slow manifold, so the points stay spread over it instead of sliding to
    the manifold's exact zeros. Per-point step sizes double after an accepted step and halve after
    a rejected one (accepted: q drops by at least a tenth of the first-order prediction, Armijo's
    rule). Returns (points, speeds).
    """
    h = starts.detach().to(torch.float64).clone()
    with torch.no_grad():
        v = field(h)
    q = 0.5 * (v**2).sum(-1)
    t = torch.full((h.shape[0],), 1e-3, dtype=h.dtype)  # small first steps: follow the descent, do not jump
    for _ in range(iters):
        active = q.sqrt() * 2**0.5 >= stop_below
        if not bool(active.any()):
            break
        J = jacobians(field, h).detach()
        g = (J.transpose(1, 2) @ v.unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():
            trial = h - t.unsqueeze(-1) * g
            v_trial = field(trial)
        q_trial = 0.5 * (v_trial**2).sum(-1)
        better = (q_trial <= q - 0.1 * t * (g**2).sum(-1)) & active  # Armijo's sufficient decrease
        h = torch.where(better.unsqueeze(-1), trial, h)
        v = torch.where(better.unsqueeze(-1), v_trial, v)
        q = torch.where(better, q_trial, q)
        t = torch.where(better, t * 2.0, torch.where(active, t / 2.0, t)).clamp(1e-12, 1e6)
    return h, v.norm(dim=-1)


def unique_points(points: np.ndarray, radius: float) -> List[int]:
    """Indices of a greedy subset whose members are at least ``radius`` apart (first come, first kept)."""
    tree = cKDTree(points)
    gone = np.zeros(len(points), dtype=bool)
    kept: List[int] = []
    for i in range(len(points)):
        if not gone[i]:
            kept.append(i)
            gone[tree.query_ball_point(points[i], radius)] = True
    return kept


# =========================================================================== target attractors


def target_distance(task: str, y: np.ndarray) -> np.ndarray:
    """Distance of each output point y (M, 2) to the task's target attractor (gnode.md G3.2)."""
    r = np.hypot(y[:, 0], y[:, 1])
    if task == "fixed2":
        return cKDTree(target_samples("fixed2")).query(y)[0]
    if task in ("square", "rectangle"):
        half = np.array([1.0, 1.0] if task == "square" else [2.0, 1.0])
        out = np.maximum(np.abs(y) - half, 0.0)
        return np.hypot(out[:, 0], out[:, 1])
    if task == "ring":
        return np.abs(r - 2.0)
    if task == "disk":
        return np.maximum(np.maximum(1.0 - r, r - 2.0), 0.0)
    raise ValueError(f"no 2-D target attractor for task {task!r}")


def target_samples(task: str, n: int = 41) -> np.ndarray:
    """Points spread over the target attractor (a grid over areas, n per side; 8 n on the ring)."""
    if task == "fixed2":
        return np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=float)
    if task == "ring":
        t = np.linspace(0, 2 * np.pi, 8 * n, endpoint=False)
        return 2.0 * np.stack([np.cos(t), np.sin(t)], 1)
    half = {"square": (1.0, 1.0), "rectangle": (2.0, 1.0), "disk": (2.0, 2.0)}[task]
    g = np.stack(np.meshgrid(np.linspace(-half[0], half[0], n), np.linspace(-half[1], half[1], n)), -1).reshape(-1, 2)
    return g[target_distance(task, g) == 0] if task == "disk" else g


def extent(task: str) -> float:
    """Half-width of the plotted square of output space."""
    return 1.6 if task in ("fixed2", "square") else 2.8


def draw_target(ax: Any, task: str) -> None:
    from matplotlib.patches import Circle, Rectangle

    style = dict(fill=False, edgecolor="crimson", linewidth=1.6, linestyle="--", zorder=4)
    if task == "fixed2":
        c = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]])
        ax.scatter(c[:, 0], c[:, 1], marker="x", s=90, color="crimson", linewidths=2, zorder=6, label="target states")
    elif task in ("square", "rectangle"):
        w = 2.0 if task == "square" else 4.0
        ax.add_patch(Rectangle((-w / 2, -1), w, 2, label="target attractor", **style))
    elif task == "ring":
        ax.add_patch(Circle((0, 0), 2.0, label="target attractor", **style))
    else:
        ax.add_patch(Circle((0, 0), 2.0, label="target attractor (1 < r < 2)", **style))
        ax.add_patch(Circle((0, 0), 1.0, **style))


# =========================================================================== a trained model


@dataclass
class Attractor:
    """The analysis of one trained 2-D model, in output space."""

    task: str
    fixed: np.ndarray  # unique fixed points (K, 2), y-space
    stable: np.ndarray  # (K,) bool: every eigenvalue of dv/dh has a negative real part
    slow: np.ndarray  # slow points (S, 2), y-space: where the slow-point descent stopped
    coverage: float
    precision: float


def readout_maps(model: Any) -> Tuple[Tensor, Tensor]:
    """(C, d) of the readout y = C h + d, float64."""
    return model.head.weight.detach().double(), model.head.bias.detach().double()


def autonomous_field(model: Any) -> Field:
    """v(h) of the input-free flow of a SequenceModel around a gnODE-family cell, float64."""
    cell = copy.deepcopy(model.cell).double()
    u0 = cell.input_drive(torch.zeros(1, cell.input_size, dtype=torch.float64))
    return lambda h: cell.velocity(h, u0.expand(h.shape[0], -1))


def autonomous_gate(model: Any, h: Tensor) -> Optional[Tensor]:
    """z = G(h, 0) at the rows of h (float64), or None for a cell without a gate."""
    cell = copy.deepcopy(model.cell).double()
    if not getattr(cell, "gated", False):
        return None
    u0 = cell.input_drive(torch.zeros(1, cell.input_size, dtype=torch.float64))
    with torch.no_grad():
        return cell.flow(h, u0.expand(h.shape[0], -1))[1]


def analyse(model: Any, task: str, states: Optional[Tensor] = None, n_grid: int = 20, iters: int = 100,
            fixed_tol: float = FIXED_TOL, slow_tol: float = SLOW_TOL, radius: float = RADIUS) -> Attractor:
    """Fixed and slow points of a trained 2-D model from a grid of starts (and ``states``, e.g. trajectories).

    Slow points: :func:`descend_speed` from every start, kept where the speed fell below
    ``slow_tol``. Fixed points: :func:`minimise_speed` from there, kept where the speed is below
    ``fixed_tol``, merged within ``radius / 10``, stable when every eigenvalue of dv/dh has a
    negative real part (the flow's stability; the alpha = 1 Euler map can differ).
    """
    C, d = readout_maps(model)
    if C.shape != (2, 2):
        raise ValueError(f"the attractor figure needs a 2-D state and 2 outputs, got a {tuple(C.shape)} readout")
    field = autonomous_field(model)
    e = extent(task)
    ys = torch.stack(torch.meshgrid(*(torch.linspace(-e, e, n_grid, dtype=torch.float64),) * 2, indexing="xy"), -1).reshape(-1, 2)
    starts = torch.linalg.solve(C, (ys - d).T).T
    if states is not None:
        starts = torch.cat([starts, states.reshape(-1, 2).double()])
    # speeds are judged in output units: |C v| <= |C| |v|, so stopping at slow_tol / |C| is enough
    slow_h, _ = descend_speed(field, starts, stop_below=slow_tol / float(torch.linalg.matrix_norm(C, 2)), iters=iters)
    res = minimise_speed(field, slow_h, iters=iters)

    def to_y(h: Tensor) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = (h @ C.T + d).numpy()
        with torch.no_grad():
            speed = (field(h) @ C.T).norm(dim=-1).numpy()
        return y, speed, np.abs(y).max(axis=1) <= e

    y_slow, s_slow, in_slow = to_y(slow_h)
    slow = y_slow[(s_slow < slow_tol) & in_slow]
    y_fix, s_fix, in_fix = to_y(res.points)
    is_fixed = (s_fix < fixed_tol) & in_fix
    keep = unique_points(y_fix[is_fixed], radius / 10)
    fixed = y_fix[is_fixed][keep]
    stable = (res.eigenvalues.real.max(dim=-1).values < 0).numpy()[is_fixed][keep]
    targets = target_samples(task)
    if len(slow):
        near, _ = cKDTree(slow).query(targets)
        coverage = float(np.mean(near <= radius))
        precision = float(np.mean(target_distance(task, slow) <= radius))
    else:
        coverage = precision = 0.0
    return Attractor(task, fixed, stable, slow, coverage, precision)


def phase_plane(model: Any, att: Attractor, path: Path, title: str, trajectories: Optional[np.ndarray] = None,
                n: int = 120) -> None:
    """log10 speed and streamlines of the input-free flow in output space, the points, the target.

    For a gated cell, a dotted contour marks where the smallest gate G_i(h, 0) is 0.1: inside it
    a unit relaxes ten times slower than tau, the gnODE's way of making a slow region (gnode.md G2.1).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    C, d = readout_maps(model)
    field = autonomous_field(model)
    e = extent(att.task)
    g = np.linspace(-e, e, n)
    Y1, Y2 = np.meshgrid(g, g)
    ys = torch.from_numpy(np.stack([Y1.ravel(), Y2.ravel()], 1))
    with torch.no_grad():
        h = torch.linalg.solve(C, (ys - d).T).T
        vy = (field(h) @ C.T).numpy()
    speed = np.linalg.norm(vy, axis=1).reshape(n, n)
    fig = Figure(figsize=(6.8, 5.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    mesh = ax.pcolormesh(Y1, Y2, np.log10(speed + 1e-12), cmap="viridis", shading="auto", vmin=-4, vmax=0)
    fig.colorbar(mesh, ax=ax, label="log10 speed |dy/dt| (output units per bin)")
    ax.streamplot(g, g, vy[:, 0].reshape(n, n), vy[:, 1].reshape(n, n), color="white", linewidth=0.5, density=1.2, arrowsize=0.7)
    z = autonomous_gate(model, h)
    gate_handle = []
    if z is not None and z.min() < 0.1 < z.max():
        ax.contour(Y1, Y2, z.min(dim=-1).values.reshape(n, n).numpy(), levels=[0.1], colors="cyan", linestyles=":", linewidths=1.2)
        gate_handle = [Line2D([], [], color="cyan", linestyle=":", label="min gate G(h, 0) = 0.1")]
    if trajectories is not None:
        for k, tr in enumerate(trajectories):
            ax.plot(tr[:, 0], tr[:, 1], color="orange", linewidth=0.8, alpha=0.9, label="validation trials (output)" if k == 0 else None)
    if len(att.slow):
        ax.scatter(att.slow[:, 0], att.slow[:, 1], s=4, color="black", zorder=5, label=f"slow points (< {SLOW_TOL:g}/bin)")
    if len(att.fixed):
        st, un = att.fixed[att.stable], att.fixed[~att.stable]
        ax.scatter(st[:, 0], st[:, 1], s=36, color="white", edgecolors="black", zorder=7, label="stable fixed points")
        ax.scatter(un[:, 0], un[:, 1], s=36, facecolors="none", edgecolors="red", zorder=7, label="unstable / saddle fixed points")
    draw_target(ax, att.task)
    ax.set_xlim(-e, e)
    ax.set_ylim(-e, e)
    ax.set_aspect("equal")
    ax.set_xlabel("output 1 (y = C h + d)")
    ax.set_ylabel("output 2")
    ax.set_title(title, fontsize=9)
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + gate_handle, fontsize=7, loc="lower left", framealpha=0.8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def load_run(checkpoint: Path | str) -> Tuple[Any, Any]:
    """(model, data module) of a saved run (``ctbench.train.save_checkpoint``)."""
    from omegaconf import OmegaConf

    from ctbench.train import build_datamodule, build_model

    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    cfg = OmegaConf.create(saved["config"])
    dm = build_datamodule(cfg)
    dm.setup()
    model = build_model(cfg, dm)
    model.load_state_dict(saved["state_dict"])
    return model.eval(), dm


def figure_for_run(checkpoint: Path | str, task: str, fig_dir: Path | str, summary: Dict[str, Any],
                   n_grid: int = 20, iters: int = 100, states_every: int = 20) -> Path:
    """Analyse one trained 2-D gnODE; write ``gnode_<task>_attractor.png`` and ``.json``.

    Starts: an ``n_grid`` x ``n_grid`` grid over the plotted output square and every
    ``states_every``-th state of the 100 validation trials.
    """
    from ctbench.data.batch import Batch

    model, dm = load_run(checkpoint)
    val = dm.splits["val"].tensors
    with torch.no_grad():
        batch = Batch(x=val["x"], dt=val["dt"], y=val["y"])
        u = model.cell.project_inputs(batch.x)
        h, states = model.cell.initial_state(u.shape[0], u.device, u.dtype), []
        for t in range(u.shape[1]):
            h = model.cell.step(u[:, t], h, batch.dt[:, t])
            states.append(h)
        states_t = torch.stack(states, 1)  # (trials, bins, 2)
        outputs = model.head(states_t).numpy()
    att = analyse(model, task, states=states_t[:, ::states_every], n_grid=n_grid, iters=iters)
    fig_dir = Path(fig_dir)
    png = fig_dir / f"gnode_{task}_attractor.png"
    title = (f"gnODE (N = 2), {task} flip-flop: val MSE {summary['val_mse']:.4f} (budget {summary['budget']})\n"
             f"{len(att.fixed)} fixed ({int(att.stable.sum())} stable), {len(att.slow)} slow points; "
             f"target covered {100 * att.coverage:.0f}%, on target {100 * att.precision:.0f}%")
    phase_plane(model, att, png, title, trajectories=outputs[:3])
    out = dict(summary, task=task, figure=str(png), n_fixed=int(len(att.fixed)), n_stable=int(att.stable.sum()),
               n_slow=int(len(att.slow)), coverage=att.coverage, precision=att.precision, fixed_tol=FIXED_TOL,
               slow_tol=SLOW_TOL, radius=RADIUS, fixed_points=att.fixed.round(4).tolist(),
               fixed_stable=att.stable.tolist())
    (fig_dir / f"gnode_{task}_attractor.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return png


def figures_for_grid(state: Any, runs_dir: Path | str, fig_dir: Path | str) -> List[Path]:
    """One figure per 2-bit task of a grid (``ctbench.gnode_grid``): its selected seed-0 gnODE."""
    from ctbench.gnode_grid import TWO_BIT, select, selected_value

    chosen = select(state)
    paths = []
    for run, rid, rec, _ in state.runs:
        key = (run.task.name, run.model)
        if run.model != "gnode" or run.task.name not in TWO_BIT or run.seed != 0 or rec is None or chosen.get(key) != run.point:
            continue
        ckpt = Path(runs_dir) / rid / "model.pt"
        if not ckpt.is_file():
            continue
        summary = {"budget": state.spec.budget, "run_id": rid, "val_mse": selected_value(rec),
                   "test_mse": float(rec["test_metric"]), "point": run.point.label()}
        paths.append(figure_for_run(ckpt, run.task.name, fig_dir, summary, **dict(state.spec.attractor)))
    return paths
