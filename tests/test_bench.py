"""ctbench.bench: power-law fits, published ratios, memory and FLOP counts, and the smoke reports.

No absolute timing is asserted anywhere: only the structure of the reports and the arithmetic.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Dict

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ctbench.bench.__main__ import main
from ctbench.bench.cases import DataShape, build_case, load_bench_config
from ctbench.bench.references import GemmFloor
from ctbench.bench.speed import Measurement, dataset_entries, published_ratio, speed_ratios
from ctbench.bench.timing import fit_power_law, saved_tensor_bytes
from ctbench.published import Row, load_table


def test_power_law_fit_recovers_a_synthetic_exponent() -> None:
    xs = [16, 32, 64, 128, 256]
    fit = fit_power_law(xs, [3.0 * x**1.7 for x in xs])
    assert fit.exponent == pytest.approx(1.7) and fit.prefactor == pytest.approx(3.0)
    assert fit.r2 == pytest.approx(1.0) and fit.local_exponent == pytest.approx(1.7)
    # a fixed cost plus a quadratic term: the overall slope lies below 2, the local one nears it
    bent = fit_power_law(xs, [100.0 + x**2 for x in xs])
    assert 1.0 < bent.exponent < bent.local_exponent < 2.0
    with pytest.raises(ValueError):
        fit_power_law([4, 4], [1.0, 2.0])


def test_published_ratio_by_hand() -> None:
    ed6 = load_table("ed6")
    cfc, ode_rnn, ltc = ed6.row("CfC (ours)"), ed6.row("ODE-RNN"), ed6.row("LTC")
    assert (cfc.time_min, cfc.calibration, ode_rnn.time_min, ode_rnn.calibration) == (0.1, 1.34, 16.5, None)
    assert published_ratio(ode_rnn, cfc) == pytest.approx(165.0)  # the paper's "160 times"
    assert published_ratio(ode_rnn, cfc, remove_calibration=True) == pytest.approx(16.5 / (0.1 / 1.34))
    # both rows calibrated: the factor cancels
    assert published_ratio(ltc, cfc) == pytest.approx(5.0)
    assert published_ratio(ltc, cfc, remove_calibration=True) == pytest.approx(5.0)
    assert published_ratio(Row(name="x", source="self"), cfc) is None  # no printed time


def _measurement(data: str, model: str, overrides: str, epoch_s: float) -> Measurement:
    return Measurement("table", data, model, model, overrides, 8, 4, 1, 1.0, 1.0, 0.0, 0.0, 1.0, 10, epoch_s,
                       0.0, "", None, None)


def test_speed_ratios_by_hand() -> None:
    cfg: Dict[str, Any] = {
        "tables": {"walker2d": "table3", "xor": "ed5"},
        "ratios": {
            "datasets": ["walker2d", "xor"],
            "reference": {"label": "CfC", "model": "cfc", "row": "CfC (ours)"},
            "models": [
                {"label": "ODE-RNN (dopri5)", "model": "ode_rnn", "overrides": ["model.cell.method=dopri5"], "row": "ODE-RNN"},
                {"label": "LTC", "model": "ltc", "row": "LTC"},
            ],
        },
    }
    xor_enc = "data.encoding=event_based"  # ed5's reproduced column: added to every entry
    measured = [
        _measurement("walker2d", "cfc", "", 2.0),
        _measurement("walker2d", "ode_rnn", "model.cell.method=dopri5", 50.0),
        _measurement("walker2d", "ltc", "", 9.0),
        _measurement("walker2d", "ode_rnn", "", 7.0),  # the RK4 table row: not the dopri5 entry
        _measurement("xor", "cfc", xor_enc, 4.0),
        _measurement("xor", "ltc", xor_enc, 10.0),
    ]
    rows = {(r.data, r.label): r for r in speed_ratios(cfg, measured)}
    assert rows["walker2d", "ODE-RNN (dopri5)"].measured_ratio == pytest.approx(25.0)
    assert rows["walker2d", "ODE-RNN (dopri5)"].published_ratio == pytest.approx(0.79 / 0.08)
    assert rows["walker2d", "LTC"].measured_ratio == pytest.approx(4.5)
    assert rows["xor", "LTC"].measured_ratio == pytest.approx(2.5)
    assert rows["xor", "LTC"].published_ratio == pytest.approx(2.67 / 0.75)
    assert rows["xor", "ODE-RNN (dopri5)"].measured_ratio is None  # not measured
    assert rows["walker2d", "LTC"].published_ratio_uncalibrated is None  # nothing calibrated on Walker2d
    # the dataset group measures each table row once and adds only what the table lacks
    entries = dataset_entries(cfg, "walker2d")
    assert [e.label for e in entries].count("LTC") == 1 and len({e.key for e in entries}) == len(entries)
    assert entries[-1].label == "ODE-RNN (dopri5)"


def test_saved_tensor_bytes_counts_unique_storages() -> None:
    w = torch.nn.Parameter(torch.randn(8, 8))
    x = torch.randn(4, 8, requires_grad=True)

    def forward() -> torch.Tensor:
        h = x @ w  # mm saves x and w (a parameter: not counted)
        s = torch.sigmoid(h)  # saves its output s
        return s * s[:, :2].sum()  # mul saves s again (counted once) and the 0-d sum

    out, saved = saved_tensor_bytes(forward)
    assert out.shape == (4, 8)
    assert saved == 4 * (4 * 8 + 4 * 8 + 1)


def test_gemm_floor_flop_count_matches_torch_counter() -> None:
    floor = GemmFloor(batch=4, steps=3, inputs=5, hidden=6, units=7, outputs=2, device=torch.device("cpu"))
    with FlopCounterMode(display=False) as counter:
        floor()
    assert counter.get_total_flops() == floor.flops


def test_build_case_uses_the_experiment_config_and_the_shape() -> None:
    shape = DataShape(seq_len=5, n_train=1000, dt_mean=0.5, min_length=2)
    case = build_case("CfC", "xor", "cfc", shape, torch.device("cpu"))
    assert case.batch_size == 128 and case.steps_per_epoch == math.ceil(1000 / 128)  # xor_cfc.yaml
    assert case.model.cell.hidden_size == 192 and case.batch.x.shape == (128, 5, 1)
    assert case.batch.step_mask is not None and bool(case.batch.step_mask[:, :2].all())
    case.train_step()
    assert case.forward().shape == (128, 1)


def _read_csv(path: Path) -> list:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_smoke_bench_writes_its_reports(tmp_path: Path) -> None:
    main(["speed", "--smoke", "--device", "cpu", "--out", str(tmp_path), "--note", "test run"])
    md = (tmp_path / "speed.md").read_text()
    for heading in ("A fast CfC", "The paper's speed ratios, measured", "Every model at the walker2d shapes",
                    "x1.34 removed", "ncps CfC / ctbench fast", "test run", "torch threads"):
        assert heading in md
    rows = _read_csv(tmp_path / "speed.csv")
    assert {"device", "section", "data", "label", "train_ms", "infer_ms", "epoch_s", "memory_mib", "published_min"} <= set(rows[0])
    cfg = load_bench_config("smoke")
    walker = [r for r in rows if r["section"] == "table" and r["data"] == "walker2d"]
    assert {r["model"] for r in walker} == set(cfg["rows"]) | {"ode_rnn"}
    assert all(not r["error"] and float(r["train_ms"]) > 0 for r in walker)
    fast = {r["label"] for r in rows if r["section"] == "fast_cfc" and not r["error"]}
    assert {"ctbench CfC, fast path (default)", "torch nn.LSTM (fused)", "matrix products only (floor)"} <= fast
    assert (tmp_path / "speed.png").stat().st_size > 0


def test_smoke_table1_writes_its_reports(tmp_path: Path) -> None:
    main(["table1", "--smoke", "--device", "cpu", "--out", str(tmp_path)])
    md = (tmp_path / "table1.md").read_text()
    assert "O(nkp)" in md and "exponent of n" in md
    rows = _read_csv(tmp_path / "table1.csv")
    assert {(r["model"], r["axis"]) for r in rows} == {("ODE-RNN", "n"), ("ODE-RNN", "k"), ("ODE-RNN", "p"), ("CfC", "n"), ("CfC", "k")}
    assert all(math.isfinite(float(r["fitted_exponent"])) for r in rows)
    assert (tmp_path / "table1.png").stat().st_size > 0
