"""ODE-RNN and CT-RNN: a tanh RNN vector field integrated over each observation's elapsed time.

The ``node`` / ``ctrnn`` cells of ``mlech26l/ode-lstms`` (``reference/models.md`` §8.1)::

    dh/dt = s * tanh(W_in x + W_rec h + b) - leak * h

(leak 0: ODE-RNN; leak 1: CT-RNN of Funahashi & Nakamura 1993). Init as ode-lstms: Glorot
input kernel, orthogonal recurrent kernel, zero bias, s = 1.

Per-sample elapsed times are handled by the change of variables t = s * dt, s in [0, 1]:
``dh/ds = dt[:, None] * f(h, x)``, so one ``torchdiffeq.odeint`` call over s in [0, 1] advances
every sample by its own dt. Fixed-step solvers take ceil(1 / step_size) equal steps (default RK4
with step_size 1/3: 3 unfolds, the ode-lstms setting). torchdiffeq's ``rk4`` is Kutta's 3/8-rule
RK4; ``rk4_classic`` (the default) is the classic tableau that ode-lstms uses (both are fourth
order; one 0.67-long step of a tanh field differs by ~1e-3 between them).

``jump="gru"`` applies a GRU update with the observation after the ODE evolution (the ODE-RNN of
Rubanova, Chen & Duvenaud 2019); the vector field still sees x, as in ode-lstms.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Tuple, Union

import torch
from torch import Tensor, nn
from torchdiffeq import odeint, odeint_adjoint
from torchdiffeq._impl.fixed_grid import RK4 as _RK4ThreeEighths
from torchdiffeq._impl.misc import Perturb
from torchdiffeq._impl.odeint import SOLVERS as _TORCHDIFFEQ_SOLVERS
from torchdiffeq._impl.rk_common import rk4_step_func

from ctbench.cells.base import Cell
from ctbench.cells.cfc import check_choice


class ClassicRK4(_RK4ThreeEighths):
    """Fixed-grid RK4 with the classic tableau (weights 1/6, 1/3, 1/3, 1/6), as ode-lstms' ``rk4``.

    torchdiffeq's own ``rk4`` is Kutta's 3/8 rule; this one is registered as ``rk4_classic``
    (torchdiffeq 0.2.5 keeps its solver table in ``torchdiffeq._impl.odeint.SOLVERS``, which
    ``odeint`` and ``odeint_adjoint`` both read).
    """

    def _step_func(self, func, t0, dt, t1, y0):  # type: ignore[no-untyped-def]
        f0 = func(t0, y0, perturb=Perturb.NEXT if self.perturb else Perturb.NONE)
        return rk4_step_func(func, t0, dt, t1, y0, f0=f0, perturb=self.perturb), f0


_TORCHDIFFEQ_SOLVERS.setdefault("rk4_classic", ClassicRK4)

FIXED_STEP_METHODS: Tuple[str, ...] = ("euler", "midpoint", "rk4", "rk4_classic", "heun2", "heun3", "explicit_adams", "implicit_adams")
ADAPTIVE_METHODS: Tuple[str, ...] = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
JUMPS: Tuple[str, ...] = ("none", "gru")

ODEState = Union[Tensor, Tuple[Tensor, Tensor, Tensor]]


class _VectorField(nn.Module):
    """f(s, h) = dt * (scale * tanh(u + W_rec h) - leak * h), u = W_in x + b precomputed.

    ``u`` and ``dt`` come either as attributes (plain odeint: autograd sees them) or as constant
    components of an augmented state ``(h, u, dt)`` (adjoint: their gradients come out of the
    adjoint of the initial state).
    """

    def __init__(self, hidden_size: int, leak: float) -> None:
        super().__init__()
        self.recurrent = nn.Linear(hidden_size, hidden_size, bias=False)
        self.scale = nn.Parameter(torch.ones(hidden_size))
        self.leak = leak
        self.nfe = 0
        self.u: Optional[Tensor] = None
        self.dt: Optional[Tensor] = None

    def field(self, h: Tensor, u: Tensor, dt: Tensor) -> Tensor:
        dh = self.scale * torch.tanh(u + self.recurrent(h))
        if self.leak != 0.0:
            dh = dh - self.leak * h
        return dt * dh

    def forward(self, s: Tensor, y: ODEState) -> ODEState:
        self.nfe += 1
        if isinstance(y, tuple):
            h, u, dt = y
            return self.field(h, u, dt), torch.zeros_like(u), torch.zeros_like(dt)
        return self.field(y, self.u, self.dt)


class ODERNNCell(Cell):
    """ODE-RNN / CT-RNN cell: h' = ODESolve(dh/dt = s*tanh(W_in x + W_rec h + b) - leak*h, h, dt).

    With ``jump="gru"``, h' = GRUCell(x, ODESolve(...)) (torch ``nn.GRUCell`` equations, gates r, z, n).
    ``nfe`` counts vector-field evaluations (forward, and backward under the adjoint) since the
    last :meth:`reset_nfe`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        method: str = "rk4_classic",
        step_size: float = 1.0 / 3.0,
        rtol: float = 1e-3,
        atol: float = 1e-4,
        leak: float = 0.0,
        jump: str = "none",
        adjoint: bool = False,
    ) -> None:
        super().__init__()
        check_choice(method, FIXED_STEP_METHODS + ADAPTIVE_METHODS, "ODE solver method")
        check_choice(jump, JUMPS, "ODE-RNN jump")
        if method in FIXED_STEP_METHODS and not step_size > 0:
            raise ValueError(f"step_size must be > 0 for the fixed-step method {method!r}, got {step_size}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.method = method
        self.step_size = float(step_size)
        self.rtol = rtol
        self.atol = atol
        self.leak = float(leak)
        self.jump = jump
        self.adjoint = adjoint
        self.input_map = nn.Linear(input_size, hidden_size)
        self.dynamics = _VectorField(hidden_size, self.leak)
        if jump == "gru":
            self.gru_in = nn.Linear(input_size, 3 * hidden_size)
            self.gru_rec = nn.Linear(hidden_size, 3 * hidden_size)
        else:
            self.gru_in = None
            self.gru_rec = None
        self.reset_parameters()

    @property
    def n_unfolds(self) -> int:
        """Steps a fixed-step solver takes per observation."""
        return max(1, math.ceil(1.0 / self.step_size - 1e-9))

    @property
    def nfe(self) -> int:
        return self.dynamics.nfe

    @nfe.setter
    def nfe(self, value: int) -> None:
        self.dynamics.nfe = value

    def reset_nfe(self) -> None:
        self.dynamics.nfe = 0

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.input_map.weight)
        nn.init.zeros_(self.input_map.bias)
        nn.init.orthogonal_(self.dynamics.recurrent.weight)
        nn.init.ones_(self.dynamics.scale)
        if self.gru_in is not None:
            bound = 1.0 / math.sqrt(self.hidden_size)  # nn.GRUCell's default
            for p in (*self.gru_in.parameters(), *self.gru_rec.parameters()):
                nn.init.uniform_(p, -bound, bound)

    def project_inputs(self, x: Tensor) -> Tensor:
        """``W_in x + b`` (hidden), followed by the GRU's input gates (3*hidden) when jump="gru"."""
        u = self.input_map(x)
        if self.gru_in is not None:
            return torch.cat([u, self.gru_in(x)], dim=-1)
        return u

    def _solver_kwargs(self) -> Dict[str, object]:
        if self.method in FIXED_STEP_METHODS:
            n = self.n_unfolds

            def grid(func: Callable, y0: Tensor, t: Tensor) -> Tensor:
                # n equal steps from t[0] to t[-1], built on the device (no host sync)
                frac = torch.arange(n + 1, dtype=t.dtype, device=t.device) / n
                g = t[0] + (t[-1] - t[0]) * frac
                g[-1] = t[-1]
                return g

            return {"method": self.method, "options": {"grid_constructor": grid}}
        return {"method": self.method, "rtol": self.rtol, "atol": self.atol}

    def evolve(self, u: Tensor, h: Tensor, dt: Tensor) -> Tensor:
        """Integrate the vector field from h over each sample's elapsed time dt."""
        dtc = dt.to(h.dtype).unsqueeze(-1)
        s = torch.arange(2, dtype=h.dtype, device=h.device)  # [0, 1], made on the device
        kwargs = self._solver_kwargs()
        if self.adjoint:
            sol = odeint_adjoint(self.dynamics, (h, u, dtc), s, adjoint_params=tuple(self.dynamics.parameters()), **kwargs)
            return sol[0][-1]
        self.dynamics.u, self.dynamics.dt = u, dtc
        try:
            return odeint(self.dynamics, h, s, **kwargs)[-1]
        finally:
            self.dynamics.u = self.dynamics.dt = None

    def step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        h = self.hidden_size
        h_ode = self.evolve(u[..., :h], state, dt)
        if self.gru_in is None:
            return h_ode
        gi = u[..., h:]
        gh = self.gru_rec(h_ode)
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1.0 - z) * n + z * h_ode

    def extra_repr(self) -> str:
        return f"method={self.method!r}, leak={self.leak}, jump={self.jump!r}, adjoint={self.adjoint}"
