"""Bit-stream XOR: the authors' generator (RNG order, event and dense encodings, parity), the cache
key, the protocol splits, the experiment configs, and (slow) the authors' cached arrays."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from ctbench.data.archive import fingerprint, flatten_splits
from ctbench.data.batch import TaskKind
from ctbench.data.xor import (
    XORDataModule,
    draw_bit_strings,
    draw_bit_strings_reference,
    encode_dense,
    encode_event_based,
    generate_set,
    parity,
)

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(train_size=3000, test_size=1000, val_size=500)


# -- the authors' per-sample code, written out (given bits instead of an rng) -------------
def authors_event_sample(bits, pad_size):
    """``XORData.create_event_based_sample`` with its bits given (same control flow)."""
    events = np.zeros([pad_size, 1], dtype=np.float32)
    elapsed = np.zeros([pad_size, 1], dtype=np.float32)
    mask = np.zeros([pad_size], dtype=bool)
    label, last_char, write_index, elapsed_counter = 0, -1, 0, 0
    for char in bits:
        elapsed_counter += 1
        label += char
        if last_char != char:
            events[write_index] = char
            elapsed[write_index] = elapsed_counter
            mask[write_index] = True
            write_index += 1
            elapsed_counter = 0
            if write_index >= pad_size - 1:
                break
        last_char = char
    if elapsed_counter > 0:
        events[write_index] = char
        elapsed[write_index] = elapsed_counter
        mask[write_index] = True
    return events, elapsed, mask, label % 2


def encode_one(bits, pad_size, encoder=encode_event_based):
    arr = np.array([bits], dtype=np.uint8)
    events, elapsed, mask = encoder(arr, np.array([len(bits)]), pad_size)
    return events[0, :, 0], elapsed[0, :, 0], mask[0]


def decode(events, elapsed, mask):
    """Events back to the bit string: each event adds (elapsed − 1) copies of the previous bit, then its own."""
    out, prev = [], None
    for v, e in zip(events[mask], elapsed[mask]):
        out += [prev] * (int(e) - 1) + [int(v)]
        prev = int(v)
    return out


# -- drawing ------------------------------------------------------------------------------
@pytest.mark.parametrize("pad_size", [3, 4, 5, 24, 32, 40])
def test_draws_equal_one_randint_call_at_a_time(pad_size):
    for seed in (0, 48736):
        bits, lengths = draw_bit_strings(seed, 1500, pad_size)
        ref_bits, ref_lengths = draw_bit_strings_reference(seed, 1500, pad_size)
        np.testing.assert_array_equal(lengths, ref_lengths)
        np.testing.assert_array_equal(bits, ref_bits)


def test_lengths_cover_2_to_31_and_bits_stop_at_length():
    bits, lengths = draw_bit_strings(1234984, 5000, 32)
    assert bits.shape == (5000, 31) and lengths.dtype == np.int64
    assert set(np.unique(lengths)) == set(range(2, 32))
    beyond = np.arange(31)[None, :] >= lengths[:, None]
    assert not bits[beyond].any()
    assert set(np.unique(bits)) == {0, 1}
    assert 0.45 < bits[~beyond].mean() < 0.55


def test_pad_size_must_allow_randint():
    with pytest.raises(ValueError, match="pad_size must be >= 3"):
        draw_bit_strings(0, 10, 2)


# -- encodings on hand-built strings ------------------------------------------------------
@pytest.mark.parametrize(
    "bits, events, elapsed",
    [
        ([0, 1], [0, 1], [1, 1]),  # ends on a change: no final event
        ([1, 1, 1], [1, 1], [1, 2]),  # final run: the current bit with the remaining count
        ([0, 0, 1, 1, 1, 0], [0, 1, 0], [1, 2, 3]),  # elapsed = steps since the last event
        ([1, 0, 0, 0], [1, 0, 0], [1, 1, 2]),
        ([0, 0, 0, 0, 0, 1, 1, 1], [0, 1, 1], [1, 5, 2]),
    ],
)
def test_event_encoding_hand_built(bits, events, elapsed):
    ev, el, mask = encode_one(bits, 32)
    n = len(events)
    assert mask[:n].all() and not mask[n:].any()
    np.testing.assert_array_equal(ev[:n], events)
    np.testing.assert_array_equal(el[:n], elapsed)
    assert not ev[n:].any() and not el[n:].any()
    assert el[:n].sum() == len(bits)  # the events cover every step
    assert decode(ev, el, mask) == bits


def test_event_encoding_stops_at_pad_minus_one_events():
    # pad 5: at most 4 change events; the scan stops there (counter 0, so no final event)
    ev, el, mask = encode_one([0, 1, 0, 1, 0, 1, 0, 0], 5)
    np.testing.assert_array_equal(ev, [0, 1, 0, 1, 0])
    np.testing.assert_array_equal(el, [1, 1, 1, 1, 0])
    np.testing.assert_array_equal(mask, [True] * 4 + [False])
    # a final event still fits in the last free slot below the cap
    ev, el, mask = encode_one([0, 1, 0, 0], 5)
    np.testing.assert_array_equal(ev[:4], [0, 1, 0, 0])
    np.testing.assert_array_equal(el[:4], [1, 1, 1, 1])
    assert mask.sum() == 4
    # the longest string the generator makes (pad - 1), all alternating: exactly the cap
    ev, el, mask = encode_one([1, 0, 1, 0], 5)
    assert mask.sum() == 4 and (el[:4] == 1).all()


def test_event_encoding_equals_authors_loop_on_random_strings():
    rng = np.random.RandomState(3)
    for pad_size in (4, 6, 32):
        width = pad_size + 6  # longer than the generator makes: exercises the cap mid-string
        lengths = rng.randint(1, width + 1, size=400)
        bits = (rng.rand(400, width) < rng.choice([0.1, 0.5, 0.9], size=(400, 1))).astype(np.uint8)
        bits[np.arange(width)[None, :] >= lengths[:, None]] = 0
        events, elapsed, mask = encode_event_based(bits, lengths, pad_size)
        for i in range(400):
            e, t, m, _ = authors_event_sample([int(b) for b in bits[i, : lengths[i]]], pad_size)
            np.testing.assert_array_equal(events[i], e, err_msg=f"pad {pad_size} sample {i}")
            np.testing.assert_array_equal(elapsed[i], t, err_msg=f"pad {pad_size} sample {i}")
            np.testing.assert_array_equal(mask[i], m, err_msg=f"pad {pad_size} sample {i}")


def test_dense_encoding_hand_built():
    ev, el, mask = encode_one([1, 0, 1, 1], 32, encode_dense)
    np.testing.assert_array_equal(ev[:5], [1, 0, 1, 1, 0])
    np.testing.assert_array_equal(el[:5], [1, 1, 1, 1, 0])
    np.testing.assert_array_equal(mask[:5], [True] * 4 + [False])
    assert mask.sum() == 4


def test_parity_labels():
    bits = np.array([[1, 0, 1, 1, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=np.uint8)
    y = parity(bits)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [1, 0, 0, 1])


@pytest.mark.parametrize("encoding", ["event_based", "equidistant"])
def test_generated_sets_round_trip_to_the_drawn_bits(encoding):
    raw = generate_set(2000, 48736, 32, encoding)
    bits, lengths = draw_bit_strings(48736, 2000, 32)
    assert raw["events"].shape == raw["elapsed"].shape == (2000, 32, 1)
    assert raw["events"].dtype == raw["elapsed"].dtype == np.float32
    assert raw["mask"].shape == (2000, 32) and raw["mask"].dtype == bool
    assert raw["y"].shape == (2000,) and raw["y"].dtype == np.int64
    counts = raw["mask"].sum(axis=1)
    # the mask is a prefix: real events first, padding after
    np.testing.assert_array_equal(raw["mask"], np.arange(32)[None, :] < counts[:, None])
    for i in range(2000):
        decoded = decode(raw["events"][i, :, 0], raw["elapsed"][i, :, 0], raw["mask"][i])
        assert decoded == bits[i, : lengths[i]].tolist()
        assert raw["y"][i] == sum(decoded) % 2
    np.testing.assert_array_equal(raw["elapsed"][..., 0].sum(axis=1), lengths)
    if encoding == "equidistant":
        np.testing.assert_array_equal(counts, lengths)
        assert set(np.unique(raw["elapsed"][raw["mask"]])) == {1.0}
    else:
        assert (counts <= lengths).all() and (counts < lengths).any()
        assert raw["elapsed"].max() > 1


# -- the data module ----------------------------------------------------------------------
def arrays_of(dm) -> dict:
    return {s: {k: t.numpy() for k, t in ds.tensors.items()} for s, ds in dm.splits.items()}


def test_declares_task():
    assert XORDataModule.task_kind is TaskKind.SEQUENCE_CLASSIFICATION
    assert XORDataModule.metric == "accuracy"
    assert (XORDataModule.n_features, XORDataModule.n_outputs, XORDataModule.readout) == (1, 1, "last")
    assert XORDataModule.REMOTES == ()
    assert XORDataModule.check("unused") == ("ready", "(generated)")


def test_batch_fields_and_scaling(tmp_path):
    dm = XORDataModule(data_dir=str(tmp_path), **SMALL)
    dm.setup()
    got = arrays_of(dm)
    assert set(got) == {"train", "test"}  # paper: no validation set
    assert dm.split_sizes() == {"train": 3000, "test": 1000}
    raw = generate_set(1000, 48736, 32, "event_based")
    test = got["test"]
    np.testing.assert_array_equal(test["x"], raw["events"])
    assert test["dt"].shape == (1000, 32) and test["dt"].dtype == np.float32
    np.testing.assert_array_equal(test["dt"] * 32, raw["elapsed"][..., 0])  # elapsed / pad_size
    np.testing.assert_array_equal(test["step_mask"], raw["mask"])
    np.testing.assert_array_equal(test["y"], raw["y"])
    assert dm.fingerprint == fingerprint(flatten_splits(got))
    batch = next(iter(dm.train_dataloader()))
    assert batch.x.shape == (128, 32, 1) and batch.dt.shape == (128, 32) and batch.step_mask.shape == (128, 32)
    assert batch.y.shape == (128,) and str(batch.y.dtype) == "torch.int64" and str(batch.step_mask.dtype) == "torch.bool"


def test_clean_protocol_adds_validation_from_a_third_seed(tmp_path):
    paper = XORDataModule(data_dir=str(tmp_path), protocol="paper", **SMALL)
    clean = XORDataModule(data_dir=str(tmp_path), protocol="clean", **SMALL)
    paper.setup()
    clean.setup()
    p, c = arrays_of(paper), arrays_of(clean)
    assert set(c) == {"train", "val", "test"}
    assert clean.split_sizes() == {"train": 3000, "val": 500, "test": 1000}
    for split in ("train", "test"):  # clean changes nothing but the added set
        for k in p[split]:
            np.testing.assert_array_equal(p[split][k], c[split][k])
    raw_val = generate_set(500, clean.seeds["val"], 32, "event_based")
    np.testing.assert_array_equal(c["val"]["x"], raw_val["events"])
    assert clean.seeds["val"] not in (1234984, 48736)
    assert not np.array_equal(c["val"]["x"], c["train"]["x"][:500])
    with pytest.raises(ValueError, match="three different seeds"):
        XORDataModule(data_dir=str(tmp_path), val_seed=48736)


def test_cache_key_holds_encoding_and_pad_size(tmp_path, monkeypatch):
    """The authors' dataset/xor_*.npy names hold neither: a cached event set is silently reused."""
    import ctbench.data.xor as xor

    calls = []
    real = xor.generate_set
    monkeypatch.setattr(xor, "generate_set", lambda *a, **k: calls.append(a) or real(*a, **k))
    event = XORDataModule(data_dir=str(tmp_path), encoding="event_based", **SMALL)
    event.setup()
    n_event = len(calls)
    assert n_event == 2
    again = XORDataModule(data_dir=str(tmp_path), encoding="event_based", **SMALL)
    again.setup()
    assert len(calls) == n_event and again.fingerprint == event.fingerprint  # reused
    dense = XORDataModule(data_dir=str(tmp_path), encoding="equidistant", **SMALL)
    dense.setup()
    assert len(calls) == 2 * n_event  # rebuilt, not reused
    assert dense.fingerprint != event.fingerprint
    assert dense.cache_path() != event.cache_path()
    np.testing.assert_array_equal(arrays_of(dense)["test"]["dt"][arrays_of(dense)["test"]["step_mask"]], 1 / 32)
    pad24 = XORDataModule(data_dir=str(tmp_path), pad_size=24, **SMALL)
    pad24.setup()
    assert len(calls) == 3 * n_event and pad24.splits["test"].tensors["x"].shape[1:] == (24, 1)
    for dm, enc, pad in ((event, "event_based", 32), (dense, "equidistant", 32), (pad24, "event_based", 24)):
        meta = json.loads(Path(str(dm.cache_path()) + ".json").read_text())
        assert (meta["key"]["encoding"], meta["key"]["pad_size"]) == (enc, pad)
        assert meta["key"]["seeds"] == {"train": 1234984, "test": 48736}
    # a stale file under the same name but another key is rebuilt, never reused
    stale = json.loads(Path(str(event.cache_path()) + ".json").read_text())
    stale["key"]["encoding"] = "equidistant"
    Path(str(event.cache_path()) + ".json").write_text(json.dumps(stale))
    XORDataModule(data_dir=str(tmp_path), encoding="event_based", **SMALL).setup()
    assert len(calls) == 4 * n_event


def test_unknown_encoding_rejected(tmp_path):
    with pytest.raises(ValueError, match="event_based, equidistant"):
        XORDataModule(data_dir=str(tmp_path), encoding="dense")


# -- configs ------------------------------------------------------------------------------
def test_conf_file_matches_module():
    cfg = yaml.safe_load((ROOT / "conf" / "data" / "xor.yaml").read_text())
    assert cfg["_target_"] == "ctbench.data.xor.XORDataModule"
    assert cfg["protocol"] == "${protocol.name}" and cfg["data_dir"] == "${paths.data_dir}"
    assert (cfg["encoding"], cfg["pad_size"]) == ("event_based", 32)
    assert (cfg["train_size"], cfg["test_size"], cfg["train_seed"], cfg["test_seed"]) == (100000, 10000, 1234984, 48736)
    assert cfg["val_size"] == 10000 and cfg["val_seed"] not in (1234984, 48736)


# published_tables.md §11.1 (code values; CfC decay_lr 0.95 from the code, Table S1 says 0.7)
XOR_HP = {
    "cfs": dict(clip=5.0, opt="adam", bs=256, hidden=64, lr=0.005, decay=0.9, act="silu", dr=0.0, units=64, wd=3e-05),
    "cfc": dict(clip=1.0, opt="keras_rmsprop", bs=128, hidden=192, lr=0.05, decay=0.95, act="relu", dr=0.0, units=128, wd=3e-06),
    "cfc_nogate": dict(clip=10.0, opt="keras_rmsprop", bs=128, hidden=128, lr=0.005, decay=0.95, act="silu", dr=0.3, units=192, wd=5e-06),
    "cfc_mmrnn": dict(clip=10.0, opt="keras_rmsprop", bs=128, hidden=64, lr=0.005, decay=0.95, act="relu", dr=0.0, units=128, wd=2e-06),
    "ltc": dict(clip=5.0, opt="adam", bs=256, hidden=64, lr=0.005, decay=0.9, wd=3e-05),
}


@pytest.mark.parametrize("model", sorted(XOR_HP))
def test_experiment_configs(model):
    from ctbench.config import compose

    cfg = compose(["data=xor", f"model={model}"])
    hp = XOR_HP[model]
    assert cfg.experiment.name == f"xor_{model}" and "ed5" in cfg.experiment.tables
    assert cfg.train.epochs == 200
    o = cfg.optim
    assert (o.name, o.lr, o.decay_lr, o.clipnorm, o.weight_decay) == (hp["opt"], hp["lr"], hp["decay"], hp["clip"], hp["wd"])
    assert (o.eps, o.rho, o.decay_every, o.clip_mode, o.weight_decay_mode) == (1e-7, 0.9, "step", "per_tensor", "l2_kernels")
    assert cfg.data.batch_size == hp["bs"] and cfg.model.cell.hidden_size == hp["hidden"]
    if model == "ltc":
        assert cfg.model.cell.ode_unfolds == 6
    else:
        c = cfg.model.cell
        assert (c.backbone_activation, c.backbone_dropout, c.backbone_units, c.backbone_layers) == (hp["act"], hp["dr"], hp["units"], 1)
    if model == "cfc_mmrnn":
        assert cfg.model.cell.forget_bias == 0.6


def test_model_runs_one_batch(tmp_path):
    """The composed data module and model fit together: one logit per sequence, a finite BCE loss."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: extra threads only contend (seconds on a busy CPU)
    try:
        _one_batch(tmp_path)
    finally:
        torch.set_num_threads(threads)


def _one_batch(tmp_path):
    import torch

    from ctbench.config import compose
    from ctbench.task import SequenceTask
    from ctbench.train import build_datamodule, build_model

    cfg = compose(["data=xor", "model=cfc", f"paths.data_dir={tmp_path}", "data.train_size=300", "data.test_size=100"])
    dm = build_datamodule(cfg)
    dm.setup()
    model = build_model(cfg, dm)
    batch = next(iter(dm.train_dataloader()))
    out = model(batch)
    assert out.shape == (128, 1)
    task = SequenceTask(model, dm.task_kind, dm.metric, dict(cfg.optim), steps_per_epoch=3)
    loss = task.loss(out, batch)
    assert torch.isfinite(loss) and 0.3 < float(loss.detach()) < 1.5
    # padded steps carry the state: changing their inputs changes nothing
    masked = batch.x.clone()
    masked[~batch.step_mask] = 7.0
    dt = batch.dt.clone()
    dt[~batch.step_mask] = 3.0
    from dataclasses import replace

    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(replace(batch, x=masked, dt=dt)))


# -- the authors' cached arrays -----------------------------------------------------------
def shared_data() -> Path:
    return Path(os.environ.get("CTBENCH_DATA_MIRROR") or ROOT.parent / "shared" / "data")


#: fingerprint of the protocol=paper arrays (event-based, pad 32) the data module serves
XOR_PAPER_FINGERPRINT = "29ee1467f4c404c2d89b3c68540d6362ebf96ca1550180121cd42e13bb5ef657"


@pytest.mark.slow
def test_golden_authors_cache(tmp_path):
    from ctbench.data.reference_cache import REFERENCE_CACHE, load_reference

    mirror = shared_data()
    if not REFERENCE_CACHE.in_mirror(mirror).is_file():
        pytest.skip(f"no {REFERENCE_CACHE.relpath} under {mirror}")
    ref = load_reference(mirror, ["xor_test_events", "xor_test_elapsed", "xor_test_mask", "xor_test_y", "xor_train_mask", "xor_train_y"])
    start = time.perf_counter()
    test = generate_set(10000, 48736, 32, "event_based")
    train = generate_set(100000, 1234984, 32, "event_based")
    print(f"XOR generation (110,000 samples): {time.perf_counter() - start:.2f} s")
    for k in ("events", "elapsed", "mask", "y"):  # bit-exact, dtypes included
        assert test[k].dtype == ref[f"xor_test_{k}"].dtype and test[k].shape == ref[f"xor_test_{k}"].shape
        assert test[k].tobytes() == ref[f"xor_test_{k}"].tobytes(), k
    for k in ("mask", "y"):
        assert train[k].dtype == ref[f"xor_train_{k}"].dtype
        assert train[k].tobytes() == ref[f"xor_train_{k}"].tobytes(), k
    # protocols.md §2.6 statistics
    lengths = test["mask"].sum(axis=1)
    assert (lengths.min(), lengths.max()) == (2, 24)
    assert (train["mask"].sum(axis=1).min(), train["mask"].sum(axis=1).max()) == (2, 26)
    assert (test["elapsed"].min(), test["elapsed"].max()) == (0.0, 15.0)
    assert int(test["y"].sum()) == 5089  # 50.89% ones; the LTC's 49.11% is all-zeros
    # the data module serves exactly these arrays, elapsed / 32
    dm = XORDataModule(data_dir=str(tmp_path))
    dm.setup()
    served = dm.splits["test"].tensors
    assert served["x"].numpy().tobytes() == ref["xor_test_events"].tobytes()
    np.testing.assert_array_equal(served["dt"].numpy(), ref["xor_test_elapsed"][..., 0] / np.float32(32))
    np.testing.assert_array_equal(dm.splits["train"].tensors["step_mask"].numpy(), ref["xor_train_mask"])
    print(f"XOR paper fingerprint: {dm.fingerprint}")
    assert dm.fingerprint == XOR_PAPER_FINGERPRINT



# -- the published table (Extended Data Fig. 5) -------------------------------------------
from reference import REFERENCE
ED5_ORDER = [
    "Augmented LSTM", "CT-GRU", "RNN Decay", "Bi-directional RNN", "GRU-D", "PhasedLSTM", "CT-LSTM", "coRNN",
    "Lipschitz RNN", "ODE-RNN", "CT-RNN", "GRU-ODE", "ODE-LSTM", "LTC", "Cf-S (ours)", "CfC-noGate (ours)",
    "CfC (ours)", "CfC-mmRNN (ours)",
]


def _reference_section6() -> dict:
    import re

    text = REFERENCE.read_text(encoding="utf-8")
    sec = text.split("## 6. Extended Data Fig. 5", 1)[1].split("\n## ", 1)[0]
    out = {}
    cell = r"([\d.]+) ± ([\d.]+)( \(bold\))?"
    for line in sec.splitlines():
        m = re.match(rf"\| (†?)(.+?) \| {cell} \| {cell} \| ([\d.]+) \|", line)
        if m:
            g = m.groups()
            out[g[1]] = (g[0] == "†", (float(g[2]), float(g[3]), bool(g[4])), (float(g[5]), float(g[6]), bool(g[7])), float(g[8]))
    return out


def test_ed5_table_header_and_models():
    from ctbench.published import load_table, resolve_id

    t = load_table("ed5")
    assert (t.id, t.alias, t.metric, t.direction, t.data, t.n, t.status) == ("ed5", "arxiv-v2-table4", "accuracy", "higher", "xor", 5, "known")
    assert (t.pm_kind, t.pm_ddof, t.decimals) == ("population_std", 0, 2)
    assert resolve_id("arxiv-v2-table4") == resolve_id("extended-data-fig5") == "ed5"
    assert [r.name for r in t.rows] == ED5_ORDER
    assert {r.name: r.model for r in t.rows if r.model} == {
        "Augmented LSTM": "lstm_aug", "CT-GRU": "ct_gru", "RNN Decay": "rnn_decay",
        "Bi-directional RNN": "bidirect", "GRU-D": "gru_d", "PhasedLSTM": "phased_lstm", "CT-LSTM": "ct_lstm",
        "coRNN": "cornn", "Lipschitz RNN": "lipschitz_rnn", "ODE-RNN": "ode_rnn", "CT-RNN": "ct_rnn",
        "GRU-ODE": "gru_ode", "ODE-LSTM": "ode_lstm", "LTC": "ltc", "Cf-S (ours)": "cfs",
        "CfC-noGate (ours)": "cfc_nogate", "CfC (ours)": "cfc", "CfC-mmRNN (ours)": "cfc_mmrnn",
    }
    assert [r.name for r in t.runnable_rows] == ED5_ORDER  # every row of the table is runnable
    assert [c.key for c in t.columns] == ["equidistant", "event_based"] and t.column == "event_based"
    assert "Event-based" in t.heading
    for r in t.rows:
        assert r.overrides == (("data.encoding=event_based",) if r.model else ())
        assert t.row_n(r) == (3 if r.source == "self" else 5)  # train_xor.py runs 3; the caption says 5
    cfc = t.row("CfC (ours)")
    assert (cfc.mean, cfc.std, cfc.bold, cfc.code_comment, cfc.code_comment_differs) == (99.42, 0.42, True, "99.42 ± 0.42", False)
    dense = load_table("ed5", column="equidistant")
    assert dense.row("CfC (ours)").overrides == ("data.encoding=equidistant",)
    assert (dense.row("CfC (ours)").mean, dense.row("CfC (ours)").std) == (100.0, 0.0)
    assert dense.row("CfC (ours)").code_comment.startswith("97.34 ± 1.85") and dense.row("CfC (ours)").code_comment_differs
    assert "Equidistant" in dense.heading


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared reference not available")
def test_ed5_equals_reference_file():
    from ctbench.published import load_table

    ref = _reference_section6()
    assert list(ref) == ED5_ORDER
    t = load_table("ed5")
    for r in t.rows:
        dagger, eq, ev, minutes = ref[r.name]
        assert (r.marker == "†") == dagger, r.name
        eq_cell, ev_cell = r.cell("equidistant"), r.cell("event_based")
        assert (eq_cell.mean, eq_cell.std, eq_cell.bold) == eq, r.name
        assert (ev_cell.mean, ev_cell.std, ev_cell.bold) == ev, r.name
        assert (r.mean, r.std, r.bold) == ev and r.time_min == minutes, r.name
        assert r.source == ("borrowed" if dagger else "rerun_by_authors" if r.name in ("coRNN", "Lipschitz RNN") else "self")


def _columns_table() -> dict:
    return {
        "id": "tx", "title": "T", "status": "known", "metric": "accuracy", "direction": "higher", "n": 5, "data": "xor",
        "columns": {"a": {"label": "A", "overrides": ["data.encoding=equidistant"]}, "b": {"label": "B"}},
        "column": "b",
        "rows": [
            {"name": "M", "model": "cfc", "source": "self", "overrides": ["seed=1"],
             "columns": {"a": {"mean": 1.0, "std": 0.1, "bold": True}, "b": {"mean": 2.0, "std": "n/a"}}},
            {"name": "N", "source": "borrowed", "borrowed_from": "X",
             "columns": {"a": {"mean": None, "std": None}, "b": {"mean": 3.0, "std": 0.3}}},
        ],
    }


def test_columns_select_values_and_overrides():
    from ctbench.published import parse_table

    t = parse_table(_columns_table())
    m, n = t.rows
    assert (m.mean, m.std, m.bold, m.overrides) == (2.0, "n/a", False, ("seed=1",))  # column b has no overrides
    assert (n.mean, n.std, n.overrides) == (3.0, 0.3, ())
    a = parse_table(_columns_table(), select_column="a")
    assert (a.rows[0].mean, a.rows[0].bold, a.rows[0].overrides) == (1.0, True, ("data.encoding=equidistant", "seed=1"))
    assert a.rows[1].mean is None and a.rows[1].cell("b").mean == 3.0


@pytest.mark.parametrize(
    "mutate, msg",
    [
        (lambda r: r.update(column="c"), "not one of the table's columns"),
        (lambda r: r.pop("column"), "not one of the table's columns"),
        (lambda r: r["rows"][0]["columns"].pop("a"), "expected exactly the table's columns"),
        (lambda r: r["rows"][0].update(mean=2.0), "not beside it"),
        (lambda r: r["rows"][0]["columns"]["a"].pop("std"), "mean and std"),
        (lambda r: r["rows"][0]["columns"]["a"].update(colour="red"), "unknown field"),
        (lambda r: r["rows"][1].update(columns=None), "expected exactly the table's columns"),
        (lambda r: (r["rows"][1].pop("columns"), r["rows"][1].update(mean=1.0, std=0.1)), "give the row's values under `columns:`"),
        (lambda r: r["columns"]["a"].update(overrides=["nokey"]), "override"),
        (lambda r: r.pop("columns"), "declares no `columns:`"),
    ],
)
def test_columns_validation_rejects(mutate, msg):
    from ctbench.published import TableError, parse_table

    raw = _columns_table()
    mutate(raw)
    with pytest.raises(TableError, match=msg):
        parse_table(raw)
