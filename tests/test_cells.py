"""Contract tests every recurrent cell must pass, plus activations and the model configs.

Cell-specific equations are checked in tests/test_cells_{cfc,ltc,ode_lstm,baselines}.py.

The contract runs on the hand-written FACTORIES cases and on every ``conf/model/*.yaml`` that has
a ``cell:`` key (instantiated with input_size F, hidden_size H and small widths), so a new model
config gets the contract without editing this file. Model configs without a ``cell:`` key (e.g. a
transformer's ``network:``) are not recurrent cells and are skipped.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable, Dict

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from ctbench.cells.activations import ACTIVATIONS, get_activation, lecun_tanh
from ctbench.cells.base import Cell
from ctbench.cells.bidirect import BidirectRNNCell
from ctbench.cells.cfc import CfCCell, MixedMemoryCfCCell
from ctbench.cells.ct_gru import CTGRUCell
from ctbench.cells.ct_lstm import CTLSTMCell
from ctbench.cells.gru_d import GRUDCell
from ctbench.cells.gru_ode import GRUODECell
from ctbench.cells.lstm import LSTMCell
from ctbench.cells.ltc import LTCCell
from ctbench.cells.ode_lstm import ODELSTMCell
from ctbench.cells.ode_rnn import ODERNNCell
from ctbench.cells.phased_lstm import PhasedLSTMCell
from ctbench.cells.rnn_decay import RNNDecayCell

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "conf" / "model"

F, H = 3, 5  # input width, hidden width (B == H is one of the batch sizes tested)

FACTORIES: Dict[str, Callable[[], Cell]] = {
    **{
        f"cfc-{mode}-{impl}": (lambda mode=mode, impl=impl: CfCCell(F, H, mode=mode, impl=impl, backbone_units=8))
        for mode in ("default", "no_gate", "pure")
        for impl in ("authors_tf", "authors_torch", "ncps")
    },
    "cfc-default-torch-2layers": lambda: CfCCell(F, H, impl="authors_torch", backbone_units=8, backbone_layers=2, init_gain=0.6),
    "cfc-default-ncps-0layers": lambda: CfCCell(F, H, impl="ncps", backbone_layers=0),
    **{
        f"mixed-{impl}": (lambda impl=impl: MixedMemoryCfCCell(F, H, impl=impl, backbone_units=8, backbone_layers=2))
        for impl in ("authors_tf", "authors_torch", "ncps")
    },
    **{f"ltc-{impl}": (lambda impl=impl: LTCCell(F, H, ode_unfolds=3, impl=impl)) for impl in ("authors_tf", "authors_torch", "ncps")},
    "ode_rnn-rk4": lambda: ODERNNCell(F, H),
    "ct_rnn-rk4": lambda: ODERNNCell(F, H, leak=1.0),
    "ode_rnn-gru": lambda: ODERNNCell(F, H, jump="gru"),
    "ode_rnn-dopri5": lambda: ODERNNCell(F, H, method="dopri5", rtol=1e-6, atol=1e-7),
    "lstm_aug": lambda: LSTMCell(F, H, time_input=True),
    "lstm": lambda: LSTMCell(F, H, time_input=False),
}
DT_FREE = {"lstm"}  # cells whose output does not depend on dt

# Knobs shrunk when a model config has them (hidden_size must become H for the shape checks).
SMALL_OVERRIDES: Dict[str, object] = {"hidden_size": H, "backbone_units": 8}
# Input width per config (default F): cells fed [values, mask] need an even width.
CONFIG_INPUT_SIZE: Dict[str, int] = {"rnn_delta_t": 4, "rnn_impute": 4}
CONFIG_PREFIX = "conf-"


def cell_config_paths() -> Dict[str, Path]:
    """Every conf/model/*.yaml with a ``cell:`` key, by stem; a yaml that does not parse is kept
    (it then fails in its own tests, not at collection)."""
    found: Dict[str, Path] = {}
    for path in sorted(MODEL_DIR.glob("*.yaml")):
        try:
            cfg = OmegaConf.load(path)
        except Exception:  # noqa: BLE001
            found[path.stem] = path
            continue
        if isinstance(cfg, DictConfig) and "cell" in cfg:
            found[path.stem] = path
    return found


CELL_CONFIGS = cell_config_paths()


def config_factory(path: Path) -> Callable[[], Cell]:
    def build() -> Cell:
        from hydra.utils import instantiate

        cell_cfg = OmegaConf.load(path).cell
        small = {k: v for k, v in SMALL_OVERRIDES.items() if k in cell_cfg}
        cell = instantiate(cell_cfg, input_size=CONFIG_INPUT_SIZE.get(path.stem, F), **small)
        assert cell.hidden_size == H, f"{path.stem}: hidden_size override not applied"
        return cell

    return build


FACTORIES.update({f"{CONFIG_PREFIX}{stem}": config_factory(path) for stem, path in CELL_CONFIGS.items()})
# An adaptive solver picks its steps from the whole batch's error, so a batch and its single
# samples agree only to the solver tolerance.
PER_SAMPLE_ATOL = {"ode_rnn-dopri5": 1e-4}


def make(name: str) -> Cell:
    torch.manual_seed(0)
    cell = FACTORIES[name]()
    # Random parameters, so that zero-initialised biases etc. cannot hide a wrong wiring.
    with torch.no_grad():
        for p in cell.parameters():
            if isinstance(cell, LTCCell):
                continue  # keep the LTC's valid ranges
            p.add_(0.3 * torch.randn_like(p))
    return cell.eval()


def flat(state) -> torch.Tensor:
    return torch.cat(list(state), dim=-1) if isinstance(state, tuple) else state


def random_state(cell: Cell, batch: int):
    state = cell.initial_state(batch, torch.device("cpu"), torch.float32)
    if isinstance(state, tuple):
        return tuple(0.5 * torch.randn_like(s) for s in state)
    return 0.5 * torch.randn_like(state)


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("batch", [1, 3, H])
def test_state_shapes_and_per_sample_dt(name: str, batch: int) -> None:
    cell = make(name)
    torch.manual_seed(1)
    x = torch.randn(batch, cell.input_size)
    state = random_state(cell, batch)
    dt = torch.linspace(0.2, 1.7, batch)
    new = cell(x, state, dt)
    # state structure and shapes are preserved
    assert type(new) is type(state)
    if isinstance(state, tuple):
        assert len(new) == len(state) and all(n.shape == s.shape for n, s in zip(new, state))
    else:
        assert new.shape == (batch, H)
    assert cell.output(new).shape == (batch, cell.hidden_size) == (batch, H)
    assert torch.isfinite(flat(new)).all()
    # each sample advances by its own dt: the batch equals B single-sample steps (catches a dt
    # broadcast along the hidden axis, which is silent when B == H)
    for b in range(batch):
        single = cell(x[b : b + 1], tuple(s[b : b + 1] for s in state) if isinstance(state, tuple) else state[b : b + 1], dt[b : b + 1])
        tol = PER_SAMPLE_ATOL.get(name, 1e-5)
        torch.testing.assert_close(flat(single), flat(new)[b : b + 1], rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(set(FACTORIES) - DT_FREE))
def test_dt_changes_the_step(name: str) -> None:
    cell = make(name)
    torch.manual_seed(2)
    x = torch.randn(1, cell.input_size).expand(4, cell.input_size)
    state = random_state(cell, 1)
    state = tuple(s.expand(4, -1) for s in state) if isinstance(state, tuple) else state.expand(4, -1)
    out = cell.output(cell(x, state, torch.tensor([0.1, 0.5, 1.0, 2.0])))
    if name.startswith(CONFIG_PREFIX) and (out - out[:1]).abs().max() <= 1e-6:
        # the same x and state under four dt values gave one output (to rounding)
        pytest.skip("this model config's cell ignores dt entirely (a discrete-time cell)")
    for i in range(3):
        assert (out[i] - out[i + 1]).abs().max() > 1e-4, "samples with different dt gave the same state"


def test_dt_free_lstm_ignores_dt() -> None:
    cell = make("lstm")
    x, state = torch.randn(2, F), random_state(cell, 2)
    torch.testing.assert_close(flat(cell(x, state, torch.tensor([0.1, 3.0]))), flat(cell(x, state, torch.tensor([5.0, 0.0]))))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_project_inputs_on_a_sequence_equals_per_step(name: str) -> None:
    cell = make(name)
    x = torch.randn(2, 6, cell.input_size)
    u = cell.project_inputs(x)
    assert u.shape[:2] == (2, 6)
    for t in range(6):
        torch.testing.assert_close(u[:, t], cell.project_inputs(x[:, t]), rtol=1e-6, atol=1e-6)
    # and unrolling on the precomputed projection equals forward() step by step
    dt = torch.rand(2, 6) + 0.1
    s1 = s2 = cell.initial_state(2, x.device, x.dtype)
    for t in range(6):
        s1 = cell.step(u[:, t], s1, dt[:, t])
        s2 = cell(x[:, t], s2, dt[:, t])
    # six float32 steps: a last-bit difference between the batched and per-step projection
    # may grow by the cell's gain (the gnODE's linear-output MLP on random weights), so relative
    torch.testing.assert_close(flat(s1), flat(s2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_gradients_reach_every_parameter(name: str) -> None:
    cell = make(name).train()
    torch.manual_seed(3)
    x = torch.randn(4, 3, cell.input_size)
    dt = torch.rand(4, 3) + 0.2
    u = cell.project_inputs(x)
    state = cell.initial_state(4, x.device, x.dtype)
    for t in range(3):
        state = cell.step(u[:, t], state, dt[:, t])
    cell.output(state).pow(2).sum().backward()
    for pname, p in cell.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert p.grad.abs().sum() > 0, f"{pname} got an all-zero gradient"


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_regularized_weights_are_parameters(name: str) -> None:
    cell = make(name)
    ids = {id(p) for p in cell.parameters()}
    weights = cell.regularized_weights()
    assert all(id(w) in ids for w in weights)
    assert len({id(w) for w in weights}) == len(weights)
    if isinstance(cell, LTCCell):
        assert weights == []  # the TF LTC has no kernel regulariser
    else:
        assert weights and all(w.ndim >= 1 for w in weights)


def test_base_regularized_weights_default_is_matrices() -> None:
    class Tiny(Cell):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(2, 3)
            self.vec = torch.nn.Parameter(torch.ones(3))

    tiny = Tiny()
    assert [id(w) for w in tiny.regularized_weights()] == [id(tiny.lin.weight)]


# --------------------------------------------------------------------------- activations
def test_activations_by_name() -> None:
    z = torch.linspace(-3, 3, 13)
    torch.testing.assert_close(get_activation("lecun_tanh")(z), 1.7159 * torch.tanh(0.666 * z))
    torch.testing.assert_close(lecun_tanh(z), 1.7159 * torch.tanh(0.666 * z))
    torch.testing.assert_close(get_activation("silu")(z), z * torch.sigmoid(z))
    torch.testing.assert_close(get_activation("relu")(z), z.clamp(min=0))
    torch.testing.assert_close(get_activation("tanh")(z), torch.tanh(z))
    torch.testing.assert_close(get_activation("gelu")(z), torch.nn.GELU()(z))
    assert {"silu", "relu", "tanh", "gelu", "lecun_tanh"} <= set(ACTIVATIONS)


def test_unknown_activation_lists_known_names() -> None:
    with pytest.raises(ValueError) as err:
        get_activation("lecun")
    for known in ("silu", "relu", "tanh", "gelu", "lecun_tanh"):
        assert known in str(err.value)
    with pytest.raises(ValueError, match="lecun_tanh"):
        CfCCell(F, H, backbone_activation="swish")


@pytest.mark.parametrize(
    "build, words",
    [
        (lambda: CfCCell(F, H, mode="minimal"), ("default", "no_gate", "pure")),
        (lambda: CfCCell(F, H, impl="keras"), ("authors_tf", "authors_torch", "ncps")),
        (lambda: MixedMemoryCfCCell(F, H, impl="tf"), ("authors_tf", "authors_torch", "ncps")),
        (lambda: MixedMemoryCfCCell(F, H, mode="cfc"), ("default", "no_gate", "pure")),
        (lambda: LTCCell(F, H, impl="torch"), ("authors_tf", "authors_torch", "ncps")),
        (lambda: ODERNNCell(F, H, method="rk45"), ("rk4", "rk4_classic", "dopri5", "euler")),
        (lambda: ODERNNCell(F, H, jump="lstm"), ("none", "gru")),
    ],
)
def test_unknown_choices_name_the_known_ones(build, words) -> None:
    with pytest.raises(ValueError) as err:
        build()
    for word in words:
        assert word in str(err.value)


# --------------------------------------------------------------------------- configs
MODEL_CONFIGS = {
    "cfc": ("CfC", CfCCell),
    "cfc_nogate": ("CfC-noGate", CfCCell),
    "cfs": ("Cf-S", CfCCell),
    "cfc_mmrnn": ("CfC-mmRNN", MixedMemoryCfCCell),
    "ltc": ("LTC", LTCCell),
    "ode_rnn": ("ODE-RNN", ODERNNCell),
    "lstm_aug": ("Augmented LSTM", LSTMCell),
    "lstm": ("LSTM", LSTMCell),
    "ct_rnn": ("CT-RNN", ODERNNCell),
    "ode_lstm": ("ODE-LSTM", ODELSTMCell),
    "ct_gru": ("CT-GRU", CTGRUCell),
    "ct_lstm": ("CT-LSTM", CTLSTMCell),
    "gru_ode": ("GRU-ODE", GRUODECell),
    "gru_d": ("GRU-D", GRUDCell),
    "phased_lstm": ("PhasedLSTM", PhasedLSTMCell),
    "rnn_decay": ("RNN-Decay", RNNDecayCell),
    "bidirect": ("Bi-directional RNN", BidirectRNNCell),
}


def test_every_cell_config_is_under_contract() -> None:
    assert set(MODEL_CONFIGS) <= set(CELL_CONFIGS), "a listed model config has no cell: key"
    assert all(f"{CONFIG_PREFIX}{stem}" in FACTORIES for stem in CELL_CONFIGS)


@pytest.mark.parametrize("stem", sorted(CELL_CONFIGS))
def test_cell_config_follows_the_format(stem: str) -> None:
    """name == file stem, a display name, an opening comment, and every constructor arg but
    input_size in ``cell:`` (so the config states each knob)."""
    from hydra.utils import get_class

    path = CELL_CONFIGS[stem]
    assert path.read_text().startswith("#"), "each model yaml opens with a one-line equation comment"
    cfg = OmegaConf.load(path)
    assert cfg.name == stem and isinstance(cfg.display_name, str) and cfg.display_name
    cls = get_class(cfg.cell._target_)
    keys = set(cfg.cell) - {"_target_"}
    params = set(inspect.signature(cls.__init__).parameters) - {"self", "input_size"}
    assert keys == params, f"{stem}.yaml cell args differ from {cls.__name__}: {keys ^ params}"


@pytest.mark.parametrize("stem", sorted(MODEL_CONFIGS))
def test_model_config_instantiates_with_every_constructor_arg(stem: str) -> None:
    from hydra.utils import instantiate

    path = ROOT / "conf" / "model" / f"{stem}.yaml"
    text = path.read_text()
    assert text.startswith("#"), "each model yaml opens with a one-line equation comment"
    cfg = OmegaConf.load(path)
    display, cls = MODEL_CONFIGS[stem]
    assert cfg.name == stem and cfg.display_name == display
    keys = set(cfg.cell) - {"_target_"}
    params = set(inspect.signature(cls.__init__).parameters) - {"self", "input_size"}
    assert keys == params, f"{stem}.yaml cell args differ from {cls.__name__}: {keys ^ params}"
    cell = instantiate(cfg.cell, input_size=4)
    assert type(cell) is cls and cell.input_size == 4 and cell.hidden_size == 64
    out = cell.output(cell(torch.randn(2, 4), cell.initial_state(2, torch.device("cpu"), torch.float32), torch.ones(2)))
    assert out.shape == (2, 64)


def test_model_config_defaults() -> None:
    load = lambda stem: OmegaConf.load(ROOT / "conf" / "model" / f"{stem}.yaml").cell  # noqa: E731
    assert load("cfc").mode == "default" and load("cfc_nogate").mode == "no_gate" and load("cfs").mode == "pure"
    for stem in ("cfc", "cfc_nogate", "cfs", "cfc_mmrnn", "ltc"):
        assert load(stem).impl == "authors_tf"
    assert load("ltc").ode_unfolds == 3
    assert load("lstm_aug").time_input is True and load("lstm").time_input is False
    assert load("ode_rnn").method == "rk4_classic" and abs(load("ode_rnn").step_size - 1 / 3) < 1e-12
