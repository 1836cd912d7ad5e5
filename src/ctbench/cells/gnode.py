"""Gated neural ODE family of Kim, Can & Krishnamurthy (ICML 2023): nODE, gnODE, mGRU, vanilla RNN.

``../shared/reference/gnode.md`` G2; the authors' ``RNNTools.jl`` cells::

    nODE:   tau dh/dt = -h + F(h, x)
    gnODE:  tau dh/dt = G(h, x) * (-h + F(h, x))

    F: s_1 = relu(W_0 h + U x + b_0), s_{l+1} = relu(W_l s_l + b_l), F = phi_o(W_L s_L + b_L)
       (``f_widths`` = [w_1 .. w_L]; an empty list gives the single layer F = phi_o(W h + U x + b))
    G: the same layer form with its own parameters and a sigmoid output (``g_widths``; every
       released script uses the single layer G = sigmoid(W* h + U* x + b*)).

The input enters only the first layers of F and G, through bias-free matrices U and U*; that
part is :meth:`GatedNODECell.input_drive` (one matrix product for the whole sequence).

The comparison family is one switchboard (G2.2):

=============  =======  ==========  =========
model          gated    f_widths    f_output
=============  =======  ==========  =========
vanilla RNN    False    []          tanh
mGRU           True     []          tanh
nODE           False    [100, ...]  identity
gnODE          True     [100, ...]  identity
=============  =======  ==========  =========

(the authors' GRU, with its reset gate, is :class:`ctbench.cells.gnode_gru.GNODEGRUCell`).

Integrators over one observation of elapsed time dt, alpha = dt / tau, z = G(h, x) (z = 1 when
not gated), F and x held over the step:

- ``euler`` (the authors' ``train_rnn``, G2.4): h' = (1 - alpha z) h + alpha z F. At alpha = 1 it
  is the discrete RNN / mGRU / nODE / gnODE step of G2.2's table. Unstable when alpha z > 2.
- ``exact`` (not the authors' method; G2.4): z and F frozen over the step and the linear ODE
  solved exactly, h' = F + (h - F) exp(-alpha z). Its effective gate 1 - exp(-alpha z) lies in
  (0, 1) for any alpha, so the step is a convex combination of h and F.
- ``odeint``: torchdiffeq integrates tau dh/dt = z(h) (-h + F(h, x)) over the elapsed time with
  F and z re-evaluated inside the solver (x held constant, the authors' constant interpolation).
  Per-sample dt by the change of variables t = s dt, s in [0, 1], as ``ode_rnn.py``.

Initialisation (G2.3): weights Glorot uniform, biases N(0, 1e-3^2). The first layer of F (and
of G) is one Flux ``Dense`` over [h; x] in the authors' code, so its Glorot bound uses
fan_in = N + n for the matrix [W_0 U] (ctbench's reading; G2.1 gives the layer form only).
``init="critical"`` is the code's ``our_normal`` option (G2.5), see :meth:`critical_rescale`.

Initial state (G2.3), :class:`GNODEFamilyCell`: ``h0="zero"`` (the JAX port), ``"encoder"``
(the authors' default, a trainable affine map of the first input h0 = A x_1 + c, A bias-free),
``"learned"`` (the trainable c alone) or ``"fixed_random"`` (the variable-amplitude scripts'
fixed h0 ~ N(0, 2/(N+1)), drawn once at construction and not trained). Neither h0 nor A is part
of the core parameter counts of G4.2.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torchdiffeq import odeint

from ctbench.cells.base import Cell
from ctbench.cells.cfc import check_choice
from ctbench.cells.ode_rnn import ADAPTIVE_METHODS, FIXED_STEP_METHODS  # also registers rk4_classic

INTEGRATORS: Tuple[str, ...] = ("euler", "exact", "odeint")
F_OUTPUTS: Tuple[str, ...] = ("identity", "tanh")
INITS: Tuple[str, ...] = ("glorot_uniform", "critical")
H0_MODES: Tuple[str, ...] = ("zero", "encoder", "learned", "fixed_random")
BIAS_STD = 1e-3  # the authors' bias_init: N(0, 0.001^2)


class GNODEFamilyCell(Cell):
    """The initial state shared by the gnODE family (G2.3); subclasses implement ``input_drive`` and ``_step``.

    ``h0="encoder"`` is the authors' h0 = A x_1 + c. ``initial_state`` cannot see the inputs, so
    :meth:`project_inputs` appends a block holding A x_1 at the first step of the sequence and
    zeros after it, and :meth:`step` adds that block to the state before stepping: the first step
    then starts from c + A x_1 and consumes x_1 again, as in the authors' code. A bare single-step
    call (``project_inputs`` on (B, n), no time axis) cannot tell the first step and starts from c.
    """

    input_size: int
    hidden_size: int
    h0_mode: str

    def _init_h0(self, h0: str) -> None:
        check_choice(h0, H0_MODES, "gnODE-family h0")
        self.h0_mode = h0
        self.h0_encoder = nn.Linear(self.input_size, self.hidden_size, bias=False) if h0 == "encoder" else None  # A
        if h0 in ("encoder", "learned"):
            self.h0 = nn.Parameter(torch.empty(self.hidden_size))  # c
        else:
            self.register_buffer("h0", torch.zeros(self.hidden_size))

    def _reset_h0(self) -> None:
        """c ~ N(0, 1e-3^2) (bias_init), A Glorot uniform, fixed h0 ~ N(0, 2/(N+1)) (Flux glorot_normal(N))."""
        with torch.no_grad():
            if self.h0_mode in ("encoder", "learned"):
                nn.init.normal_(self.h0, 0.0, BIAS_STD)
            elif self.h0_mode == "fixed_random":
                self.h0.normal_(0.0, math.sqrt(2.0 / (self.hidden_size + 1)))
            else:
                self.h0.zero_()
        if self.h0_encoder is not None:
            nn.init.xavier_uniform_(self.h0_encoder.weight)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        return self.h0.to(device=device, dtype=dtype).unsqueeze(0).expand(batch_size, -1)

    def input_drive(self, x: Tensor) -> Tensor:
        """The input part of a step (what :meth:`step` needs besides the h0 block), any leading shape."""
        raise NotImplementedError

    def _step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        raise NotImplementedError

    def project_inputs(self, x: Tensor) -> Tensor:
        u = self.input_drive(x)
        if self.h0_encoder is None:
            return u
        if x.dim() < 3:
            return torch.cat([u, u.new_zeros(*u.shape[:-1], self.hidden_size)], dim=-1)
        first = self.h0_encoder(x[..., :1, :])
        rest = first.new_zeros(*first.shape[:-2], x.shape[-2] - 1, self.hidden_size)
        return torch.cat([u, torch.cat([first, rest], dim=-2)], dim=-1)

    def step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        if self.h0_encoder is not None:
            state = state + u[..., -self.hidden_size :]
            u = u[..., : -self.hidden_size]
        return self._step(u, state, dt)


class _LayerStack(nn.Module):
    """phi_o(W_L ... relu(W_0 h + u + b_0) ...) with the input part u = U x precomputed.

    ``first`` is W_0 (with bias b_0) acting on h; the bias-free U lives in the cell's
    ``*_input`` layer so that it can be applied to a whole sequence at once.
    """

    def __init__(self, hidden_size: int, widths: Sequence[int], out_activation: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        sizes = list(widths) + [hidden_size]
        self.first = nn.Linear(hidden_size, sizes[0])
        self.rest = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out_activation = out_activation

    @property
    def n_layers(self) -> int:
        """L in G2.5: hidden layers + 1 (1 for a single-layer network)."""
        return 1 + len(self.rest)

    def forward(self, h: Tensor, u: Tensor) -> Tensor:
        s = self.first(h) + u
        for layer in self.rest:
            s = layer(torch.relu(s))
        return self.out_activation(s)


def _identity(x: Tensor) -> Tensor:
    return x


class GatedNODECell(GNODEFamilyCell):
    """nODE / gnODE / mGRU / vanilla RNN of Kim et al. 2023; equations in the module docstring."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        f_widths: Sequence[int] = (100, 100, 100),
        gated: bool = True,
        g_widths: Sequence[int] = (),
        f_output: str = "identity",
        tau: float = 1.0,
        integrator: str = "euler",
        method: str = "rk4_classic",
        step_size: float = 0.1,
        rtol: float = 1e-5,
        atol: float = 1e-6,
        init: str = "glorot_uniform",
        h0: str = "zero",
        critical_input_mean: Optional[Sequence[float]] = None,
    ) -> None:
        super().__init__()
        check_choice(integrator, INTEGRATORS, "gnODE integrator")
        check_choice(f_output, F_OUTPUTS, "gnODE f_output")
        check_choice(init, INITS, "gnODE init")
        if integrator == "odeint":
            check_choice(method, FIXED_STEP_METHODS + ADAPTIVE_METHODS, "ODE solver method")
            if method in FIXED_STEP_METHODS and not step_size > 0:
                raise ValueError(f"step_size must be > 0 for the fixed-step method {method!r}, got {step_size}")
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.f_widths = [int(w) for w in f_widths]
        self.g_widths = [int(w) for w in g_widths]
        self.gated = bool(gated)
        self.f_output = f_output
        self.tau = float(tau)
        self.integrator = integrator
        self.method = method
        self.step_size = float(step_size)
        self.rtol = rtol
        self.atol = atol
        self.init = init
        self.critical_scale: Optional[float] = None  # sigma_w of init="critical", once applied

        f_first = self.f_widths[0] if self.f_widths else hidden_size
        self.f_input = nn.Linear(input_size, f_first, bias=False)  # U
        self.f_net = _LayerStack(hidden_size, self.f_widths, torch.tanh if f_output == "tanh" else _identity)
        if self.gated:
            g_first = self.g_widths[0] if self.g_widths else hidden_size
            self.g_input = nn.Linear(input_size, g_first, bias=False)  # U*
            self.g_net = _LayerStack(hidden_size, self.g_widths, torch.sigmoid)
        else:
            self.g_input = None
            self.g_net = None
        self._init_h0(h0)
        self.reset_parameters(critical_input_mean)

    # -- parameters -------------------------------------------------------------------
    def _networks(self) -> List[Tuple[nn.Linear, _LayerStack]]:
        nets = [(self.f_input, self.f_net)]
        if self.gated:
            nets.append((self.g_input, self.g_net))
        return nets

    def core_parameters(self) -> List[nn.Parameter]:
        """F's and G's parameters: the 'core' of G4.2's table (no h0, no readout)."""
        return [p for inp, net in self._networks() for p in (*inp.parameters(), *net.parameters())]

    def reset_parameters(self, critical_input_mean: Optional[Sequence[float]] = None) -> None:
        for inp, net in self._networks():
            # first layer: [W_0 U] as one matrix (Flux Dense over [h; x])
            w = torch.empty(net.first.out_features, self.hidden_size + self.input_size)
            if self.init == "glorot_uniform":
                nn.init.xavier_uniform_(w)
            else:  # our_normal: N(0, 1/fan_in)
                nn.init.normal_(w, 0.0, 1.0 / math.sqrt(w.shape[1]))
            with torch.no_grad():
                net.first.weight.copy_(w[:, : self.hidden_size])
                inp.weight.copy_(w[:, self.hidden_size :])
            for layer in net.rest:
                if self.init == "glorot_uniform":
                    nn.init.xavier_uniform_(layer.weight)
                else:
                    nn.init.normal_(layer.weight, 0.0, 1.0 / math.sqrt(layer.in_features))
            for layer in (net.first, *net.rest):
                nn.init.normal_(layer.bias, 0.0, BIAS_STD)
        self._reset_h0()
        if self.init == "critical":
            self.critical_rescale(critical_input_mean)

    def leading_eigenvalue(self, h: Optional[Tensor] = None, x: Optional[Tensor] = None) -> float:
        """eta_max: the largest real part among the eigenvalues of d/dh (-h + F(h, x)) (G2.5 step 3-4).

        Default h: h0, in encoder mode c + A x (the trial mean of the encoder's h0 when x is the
        mean input, as the code's option takes it).
        """
        x = torch.zeros(self.input_size, dtype=self.h0.dtype) if x is None else torch.as_tensor(x, dtype=self.h0.dtype).reshape(-1)
        if h is None:
            h = self.h0.detach().clone()
            if self.h0_encoder is not None:
                h = h + self.h0_encoder(x).detach()
        h = h.detach().reshape(-1)
        u = self.f_input(x)
        jac = torch.autograd.functional.jacobian(lambda v: -v + self.f_net(v, u), h)
        return float(torch.linalg.eigvals(jac.double()).real.max())

    def critical_rescale(self, input_mean: Optional[Sequence[float]] = None) -> float:
        """The code's ``our_normal`` step 5: scale F and G by (1/(eta_max + 1))^(1/L); returns the factor.

        The Jacobian is taken at h0 with the input ``input_mean`` (the training inputs' mean;
        zeros when not given). Every parameter of F and G is scaled, input matrices U, U*
        included (they are part of the first Dense layer in the authors' code).
        """
        x = None if input_mean is None else torch.as_tensor(list(input_mean), dtype=torch.float32)
        with torch.no_grad():
            eta = self.leading_eigenvalue(x=x)
        if eta <= -1.0:
            raise ValueError(
                f"critical init is undefined: the leading real eigenvalue of the Jacobian of -h + F(h, x) is "
                f"{eta:.4g} <= -1, so (1/(eta_max + 1))^(1/L) has no real value; use init=glorot_uniform"
            )
        sigma = (1.0 / (eta + 1.0)) ** (1.0 / self.f_net.n_layers)
        with torch.no_grad():
            for p in self.core_parameters():
                p.mul_(sigma)
        self.critical_scale = sigma
        return sigma

    # -- dynamics ---------------------------------------------------------------------
    def input_drive(self, x: Tensor) -> Tensor:
        """[U x, U* x]: the input parts of F's and G's first layers."""
        weight = torch.cat([self.f_input.weight, self.g_input.weight], dim=0) if self.gated else self.f_input.weight
        return nn.functional.linear(x, weight)

    def _split(self, u: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        if not self.gated:
            return u, None
        n_f = self.f_net.first.out_features
        return u[..., :n_f], u[..., n_f:]

    def flow(self, h: Tensor, u: Tensor) -> Tuple[Tensor, Tensor]:
        """(F(h, x), z = G(h, x)) on u = ``input_drive(x)``; z = 1 when not gated."""
        u_f, u_g = self._split(u)
        f = self.f_net(h, u_f)
        z = self.g_net(h, u_g) if self.gated else torch.ones_like(f)
        return f, z

    def velocity(self, h: Tensor, u: Tensor) -> Tensor:
        """tau dh/dt = G (-h + F); returns dh/dt."""
        f, z = self.flow(h, u)
        return z * (f - h) / self.tau

    def _step(self, u: Tensor, state: Tensor, dt: Tensor) -> Tensor:
        alpha = (dt.to(state.dtype) / self.tau).unsqueeze(-1)
        if self.integrator == "odeint":
            return self._odeint(u, state, alpha)
        f, z = self.flow(state, u)
        if self.integrator == "euler":
            return state + alpha * z * (f - state)
        return f + (state - f) * torch.exp(-alpha * z)

    def _odeint(self, u: Tensor, h: Tensor, alpha: Tensor) -> Tensor:
        def field(s: Tensor, y: Tensor) -> Tensor:
            f, z = self.flow(y, u)
            return alpha * z * (f - y)

        s = torch.arange(2, dtype=h.dtype, device=h.device)
        if self.method in FIXED_STEP_METHODS:
            n = max(1, math.ceil(1.0 / self.step_size - 1e-9))

            def grid(func: Callable, y0: Tensor, t: Tensor) -> Tensor:
                g = t[0] + (t[-1] - t[0]) * torch.arange(n + 1, dtype=t.dtype, device=t.device) / n
                g[-1] = t[-1]
                return g

            kwargs: Dict[str, object] = {"method": self.method, "options": {"grid_constructor": grid}}
        else:
            kwargs = {"method": self.method, "rtol": self.rtol, "atol": self.atol}
        return odeint(field, h, s, **kwargs)[-1]

    def extra_repr(self) -> str:
        return (
            f"f_widths={self.f_widths}, gated={self.gated}, g_widths={self.g_widths}, f_output={self.f_output!r}, "
            f"tau={self.tau}, integrator={self.integrator!r}, init={self.init!r}, h0={self.h0_mode!r}"
        )
