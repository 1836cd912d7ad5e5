"""The published-number registry: conf/table/table3.yaml against published_tables.md §4."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ctbench import published
from ctbench.published import NA, TableError, UnknownTableError, load_table, parse_table, resolve_id

from reference import REFERENCE
REPO = Path(__file__).resolve().parents[1]

TABLE3_ORDER = [
    "ODE-RNN", "CT-RNN", "Augmented LSTM", "CT-GRU", "RNN-Decay", "Bi-directional RNN", "GRU-D",
    "PhasedLSTM", "GRU-ODE", "CT-LSTM", "ODE-LSTM", "coRNN", "Lipschitz RNN", "LTC", "Transformer",
    "Cf-S (ours)", "CfC-noGate (ours)", "CfC (ours)", "CfC-mmRNN (ours)",
]


@pytest.fixture(scope="module")
def t3():
    return load_table("table3")


def test_table3_header(t3):
    assert t3.id == "table3" and t3.alias == "arxiv-v2-table7"
    assert t3.label == "Nature Table 3"
    assert (t3.metric, t3.direction, t3.n, t3.data) == ("mse", "lower", 5, "walker2d")
    assert (t3.pm_kind, t3.pm_ddof) == ("population_std", 0)
    assert t3.status == "known" and t3.time_unit == "min/epoch"


def test_table3_rows_in_paper_order(t3):
    assert len(t3.rows) == 19
    assert [r.name for r in t3.rows] == TABLE3_ORDER
    assert [r.marker for r in t3.rows[:11]] == ["†"] * 11
    assert all(r.marker is None for r in t3.rows[11:])


@pytest.mark.parametrize(
    "name, mean, std, time, bold, source",
    [
        ("CfC (ours)", 0.643, 0.006, 0.08, True, "self"),
        ("LTC", 0.662, 0.013, 0.78, True, "self"),
        ("CfC-mmRNN (ours)", 0.617, 0.006, 0.34, True, "self"),
        ("Cf-S (ours)", 0.948, 0.009, 0.12, False, "self"),
        ("ODE-RNN", 1.904, 0.061, 0.79, False, "borrowed"),
        ("PhasedLSTM", 1.063, 0.010, 0.25, False, "borrowed"),
        ("coRNN", 3.241, 0.215, 0.18, False, "rerun_by_authors"),
        ("Transformer", 0.761, 0.032, 0.8, False, "rerun_by_authors"),
    ],
)
def test_table3_cells(t3, name, mean, std, time, bold, source):
    r = t3.row(name)
    assert (r.mean, r.std, r.time_min, r.bold, r.source) == (mean, std, time, bold, source)
    assert t3.row_n(r) == 5


def test_table3_models_and_provenance(t3):
    models = {r.name: r.model for r in t3.rows if r.model}
    assert models == {
        "ODE-RNN": "ode_rnn", "CT-RNN": "ct_rnn", "Augmented LSTM": "lstm_aug", "CT-GRU": "ct_gru",
        "RNN-Decay": "rnn_decay", "Bi-directional RNN": "bidirect", "GRU-D": "gru_d",
        "PhasedLSTM": "phased_lstm", "GRU-ODE": "gru_ode", "CT-LSTM": "ct_lstm", "ODE-LSTM": "ode_lstm",
        "coRNN": "cornn", "Lipschitz RNN": "lipschitz_rnn", "LTC": "ltc", "Transformer": "transformer",
        "Cf-S (ours)": "cfs", "CfC-noGate (ours)": "cfc_nogate", "CfC (ours)": "cfc", "CfC-mmRNN (ours)": "cfc_mmrnn",
    }
    assert list(models) == TABLE3_ORDER  # every row of the table is runnable
    assert [r.model for r in t3.runnable_rows] == list(models.values())
    for r in t3.rows:
        assert (REPO / "conf" / "model" / f"{r.model}.yaml").is_file(), r.model
    for r in t3.rows:
        if r.source == "borrowed":
            assert "ODE-LSTM" in r.borrowed_from
    assert t3.row("CfC (ours)").code_comment.startswith("0.64038 ± 0.00574")
    assert t3.row("CfC (ours)").code_comment_differs
    assert not t3.row("LTC").code_comment_differs


def _reference_section4() -> dict[str, tuple[float, float, float, bool]]:
    text = REFERENCE.read_text(encoding="utf-8")
    sec = text.split("## 4. Nature Table 3", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in sec.splitlines():
        m = re.match(r"\| †?(.+?) \| ([\d.]+) ± ([\d.]+)( \(bold\))? \| ([\d.]+) \|", line)
        if m:
            out[m.group(1)] = (float(m.group(2)), float(m.group(3)), float(m.group(5)), bool(m.group(4)))
    return out


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared reference not available")
def test_table3_equals_reference_file(t3):
    ref = _reference_section4()
    assert list(ref) == TABLE3_ORDER
    for r in t3.rows:
        assert (r.mean, r.std, r.time_min, r.bold) == ref[r.name], r.name


@pytest.mark.parametrize("alias", ["table3", "3", 3, "arxiv-v2-table7", "Table 3", "TABLE3", "nature-table3"])
def test_aliases_resolve(alias):
    assert resolve_id(alias) == "table3"
    assert load_table(alias).id == "table3"


def test_unknown_id_lists_known():
    with pytest.raises(UnknownTableError) as ei:
        load_table("table99")
    assert "table3" in str(ei.value) and "table99" in str(ei.value)
    assert isinstance(ei.value, ValueError) and isinstance(ei.value, KeyError)


def _raw() -> dict:
    return {
        "id": "tx", "title": "T", "status": "known", "metric": "accuracy", "direction": "higher",
        "pm": {"kind": "population_std", "ddof": 0}, "n": 5, "data": "d",
        "rows": [
            {"name": "A", "mean": 88.0, "std": 0.2, "source": "borrowed", "borrowed_from": "HiPPO"},
            {"name": "B", "mean": 86.2, "std": "n/a", "source": "borrowed", "borrowed_from": "HiPPO"},
            {"name": "C", "mean": None, "std": None, "source": "self", "model": "cfc"},
        ],
    }


def test_std_na_distinct_from_unknown():
    t = parse_table(_raw())
    a, b, c = t.rows
    assert a.std_value == 0.2 and not a.std_na
    assert b.std == NA and b.std_na and b.std_value is None
    assert c.std is None and not c.std_na and c.mean is None


@pytest.mark.parametrize(
    "mutate, msg",
    [
        (lambda r: r.update(direction="up"), "direction"),
        (lambda r: r["rows"][0].update(source="copied"), "source"),
        (lambda r: r["rows"][0].pop("borrowed_from"), "borrowed_from"),
        (lambda r: r["rows"][1].update(std="unknown"), "n/a"),
        (lambda r: r["rows"][0].update(mean="0.5"), "number"),
        (lambda r: r["rows"][0].update(colour="red"), "unknown field"),
        (lambda r: r.update(pm={"kind": "population_std", "ddof": 1}), "ddof"),
        (lambda r: r["rows"][2].update(overrides=["nokey"]), "override"),
        (lambda r: r["rows"].append(dict(r["rows"][0])), "twice"),
        (lambda r: r["rows"][0].pop("std"), "mean and std"),
    ],
)
def test_validation_rejects(mutate, msg):
    raw = _raw()
    mutate(raw)
    with pytest.raises(TableError, match=msg):
        parse_table(raw)


def test_conf_dir_env(tmp_path, monkeypatch):
    (tmp_path / "table").mkdir()
    raw = _raw()
    raw["alias"] = "arxiv-v2-table6"
    (tmp_path / "table" / "tx.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("CTBENCH_CONF", str(tmp_path))
    assert published.conf_dir() == tmp_path.resolve()
    assert published.load_table("arxiv-v2-table6").id == "tx"
    with pytest.raises(UnknownTableError, match="tx"):
        published.load_table("table3")


def test_id_must_match_file(tmp_path, monkeypatch):
    (tmp_path / "table").mkdir()
    (tmp_path / "table" / "ty.yaml").write_text(yaml.safe_dump(_raw()), encoding="utf-8")
    monkeypatch.setenv("CTBENCH_CONF", str(tmp_path))
    with pytest.raises(TableError, match="does not match"):
        published.load_table("ty")
