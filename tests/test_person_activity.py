"""Person activity (latent_ode's "activity" loader, as the CfC repository copies it), on a small
ConfLongDemo_JSI.txt in the real format written here; the experiment files and the (unknown)
published table; (slow) the real file when one is present."""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import model_selection

from ctbench.data.archive import CorruptDataError, MissingDataError, fingerprint, flatten_splits, sha256_file
from ctbench.data.batch import TaskKind
from ctbench.data.person_activity import (
    LABEL_NAMES,
    LABEL_TO_CLASS,
    TAG_IDS,
    PersonActivityDataModule,
    bootstrap_indices,
    cut_windows,
    parse_lines,
    split_indices,
)

from reference import REFERENCE, hyperparameter_rows
UCI_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/00196/ConfLongDemo_JSI.txt"


# -- fixture: a ConfLongDemo_JSI.txt in the real format ------------------------------------
#: (sequence name, rows): B01 is too short for a single 50-row window
RECORDS = (("A01", 230), ("A02", 140), ("B01", 40), ("C03", 260), ("E05", 120))


@functools.lru_cache(maxsize=None)
def fixture_text(seed: int = 0) -> str:
    """Lines ``<seq>,<tag>,<timestamp>,<dd.MM.yyyy HH:mm:ss:SSS>,<x>,<y>,<z>,<activity>``, as UCI's.

    Each "row" has 1–6 readings a few ms apart (the same 10 ms tick, mostly; a few straddle a tick
    boundary), tags drawn with repeats (same-tick averaging), every activity label in turn, and a
    second label inside the tick at some label changes (rows with two labels set).
    """
    rng = np.random.RandomState(seed)
    lines = []
    label_k = 0
    for name, n_rows in RECORDS:
        stamp = 633790226051280329 + int(rng.randint(0, 10**9)) * 1000
        for row in range(n_rows):
            if row % 12 == 0:
                label_k += 1
            label = LABEL_NAMES[label_k % len(LABEL_NAMES)]
            stamp += int(rng.randint(1, 4)) * 10**5 + int(rng.randint(-20000, 20000))
            for j in range(int(rng.randint(1, 7))):
                tag = TAG_IDS[rng.randint(len(TAG_IDS))]
                s = stamp + int(rng.randint(0, 30000))
                lab = LABEL_NAMES[(label_k + 1) % len(LABEL_NAMES)] if (row % 12 == 11 and j == 1) else label
                ms = (s // 10**4) % 1000
                x, y, z = rng.randn(3) * 2 + 1
                lines.append(f"{name},{tag},{s},27.05.2009 14:{(s // 10**7) % 60:02d}:{(s // 10**7) % 60:02d}:{ms:03d},"
                             f"{float(x)!r},{float(y)!r},{float(z)!r},{lab}")
    return "\n".join(lines) + "\n"


def write_file(folder: Path, text: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ConfLongDemo_JSI.txt"
    path.write_text(fixture_text() if text is None else text)
    return path


@pytest.fixture()
def one_thread():
    """Tiny forward passes on a loaded 2-core machine: intra-op threads only add contention."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture()
def pa_dir(tmp_path):
    write_file(tmp_path / "data" / "person_activity")
    return tmp_path / "data"


# -- the reference: latent_ode's loop, with torch tensors as the original ------------------
def reference_records(lines, max_seq_length=50):
    """PersonActivity.download() of latent_ode (person_activity.py), line by line, in torch."""
    tag_dict = {k: i for i, k in enumerate(TAG_IDS)}
    label_dict = {"walking": 0, "falling": 1, "lying": 2, "lying down": 2, "sitting": 3, "sitting down": 3,
                  "standing up from lying": 4, "standing up from sitting": 4, "standing up from sit on grnd": 4,
                  "on all fours": 5, "sitting on the ground": 6}
    records = []

    def save_record(record_id, tt, vals, mask, labels):
        tt = torch.tensor(tt)
        vals = torch.stack(vals).reshape(len(tt), -1)
        mask = torch.stack(mask).reshape(len(tt), -1)
        labels = torch.stack(labels)
        offset = 0
        while offset + max_seq_length < len(tt):
            idx = range(offset, offset + max_seq_length)
            records.append((record_id, tt[idx] - tt[idx][0], vals[idx], mask[idx], labels[idx]))
            offset += max_seq_length // 2

    record_id = None
    for line in lines:
        cur_record_id, tag_id, time, date, val1, val2, val3, label = line.strip().split(",")
        value_vec = torch.Tensor((float(val1), float(val2), float(val3)))
        time = float(time)
        if cur_record_id != record_id:
            if record_id is not None:
                save_record(record_id, tt, vals, mask, labels)
            record_id = cur_record_id
            tt = [torch.zeros(1)]
            vals, mask = [torch.zeros(4, 3)], [torch.zeros(4, 3)]
            nobs, labels = [torch.zeros(4)], [torch.zeros(11)]
            first_tp = time
            time = round((time - first_tp) / 10**5)
            prev_time = time
        else:
            time = round((time - first_tp) / 10**5)
        if time != prev_time:
            tt.append(time)
            vals.append(torch.zeros(4, 3))
            mask.append(torch.zeros(4, 3))
            nobs.append(torch.zeros(4))
            labels.append(torch.zeros(11))
            prev_time = time
        if tag_id in TAG_IDS:
            n = nobs[-1][tag_dict[tag_id]]
            if n > 0:
                vals[-1][tag_dict[tag_id]] = (vals[-1][tag_dict[tag_id]] * n + value_vec) / (n + 1)
            else:
                vals[-1][tag_dict[tag_id]] = value_vec
            mask[-1][tag_dict[tag_id]] = 1
            nobs[-1][tag_dict[tag_id]] += 1
            if label in LABEL_NAMES and torch.sum(labels[-1][label_dict[label]]) == 0:
                labels[-1][label_dict[label]] = 1
    save_record(record_id, tt, vals, mask, labels)
    return records


@functools.lru_cache(maxsize=None)
def reference_windows():
    return reference_records(fixture_text().splitlines())


def reference_splits(seed=1991, bootstrap=True):
    """get_person_dataset: data[:10000], sklearn 80/20 rs 42 on the list, global-RNG bootstrap."""
    data = reference_windows()[:10000]
    train, test = model_selection.train_test_split(data, train_size=0.8, random_state=42, shuffle=True)
    if bootstrap:
        np.random.seed(seed)
        train = [train[i] for i in np.random.choice(len(train), len(train))]
        test = [test[i] for i in np.random.choice(len(test), len(test))]
    return train, test


def as_fields(windows):
    """The authors' _prepare_batch on a list of windows: t diff with 0 first, argmax labels, mask."""
    t = torch.stack([w[1] for w in windows])
    x = torch.stack([w[2] for w in windows])
    mask = torch.stack([w[3] for w in windows])
    y = torch.stack([w[4] for w in windows])
    dt = torch.cat((torch.zeros(t.size(0), 1), t[:, 1:] - t[:, :-1]), dim=1)
    return {"x": x.numpy(), "obs_mask": mask.numpy() > 0, "dt": dt.numpy(), "y": torch.argmax(y, dim=-1).numpy(),
            "y_mask": (torch.sum(y, -1) > 0).numpy()}


def make_dm(data_dir, **kw) -> PersonActivityDataModule:
    args = dict(data_dir=str(data_dir), mirror=None, download=False)
    args.update(kw)
    return PersonActivityDataModule(**args)


def arrays_of(dm) -> dict:
    return {s: {k: t.numpy() for k, t in ds.tensors.items()} for s, ds in dm.splits.items()}


# -- the protocol ------------------------------------------------------------------------
def test_declares_task():
    assert PersonActivityDataModule.task_kind is TaskKind.PER_STEP_CLASSIFICATION
    assert PersonActivityDataModule.metric == "accuracy"
    assert (PersonActivityDataModule.n_features, PersonActivityDataModule.n_outputs) == (12, 11)
    assert PersonActivityDataModule.append_mask
    remote = PersonActivityDataModule.REMOTE
    assert (remote.name, remote.subdir, remote.urls, remote.sha256) == ("ConfLongDemo_JSI.txt", "person_activity", (UCI_URL,), ())


def test_label_merging_is_latent_odes():
    assert LABEL_TO_CLASS == {
        "walking": 0, "falling": 1, "lying": 2, "lying down": 2, "sitting": 3, "sitting down": 3,
        "standing up from lying": 4, "standing up from sitting": 4, "standing up from sit on grnd": 4,
        "on all fours": 5, "sitting on the ground": 6,
    }
    assert len(LABEL_NAMES) == 11 and set(LABEL_NAMES) == set(LABEL_TO_CLASS)
    assert TAG_IDS == ("010-000-024-033", "010-000-030-096", "020-000-033-111", "020-000-032-221")
    # one line per label: each row's 11-long vector has a single 1 at the merged class
    lines = [f"A01,{TAG_IDS[0]},{10**6 * (k + 1)},27.05.2009 14:03:25:127,1.0,2.0,3.0,{name}"
             for k, name in enumerate(LABEL_NAMES)]
    (rec,) = parse_lines(["A01,010-000-024-033,0,d,0,0,0,walking"] + lines)
    assert rec.labels.shape == (12, 11)
    for k, name in enumerate(LABEL_NAMES):
        row = rec.labels[k + 1]
        assert row.sum() == 1 and row.argmax() == LABEL_TO_CLASS[name], name
    assert rec.labels[:, 7:].sum() == 0  # only the 7 merged classes are ever set


def test_parsing_ticks_and_averaging():
    T = 633790226051280329
    lines = [
        f"A01,{TAG_IDS[0]},{T},d,1.0,2.0,3.0,walking",
        f"A01,{TAG_IDS[0]},{T + 30000},d,2.0,4.0,6.5,walking",  # same tick 0, same tag: averaged
        f"A01,{TAG_IDS[0]},{T + 40000},d,0.1,0.2,0.3,walking",  # third reading: running mean
        f"A01,{TAG_IDS[2]},{T + 45000},d,5.0,5.0,5.0,falling",  # same tick, other tag, second label
        f"A01,{TAG_IDS[3]},{T + 260000},d,7.0,8.0,9.0,lying",  # tick round(2.6) = 3
        f"A01,{TAG_IDS[1]},{T + 10**6},d,1.5,1.5,1.5,lying down",  # tick 10
        f"A01,{TAG_IDS[1]},{T + 960000},d,2.5,2.5,2.5,lying down",  # tick round(9.6) = 10: same row (not sorted)
        f"B01,{TAG_IDS[1]},{T + 5 * 10**8},d,3.0,3.0,3.0,sitting",  # a new record: tick 0 again
    ]
    a, b = parse_lines(lines)
    assert (a.record_id, b.record_id) == ("A01", "B01")
    np.testing.assert_array_equal(a.ticks, [0, 3, 10])
    assert a.ticks.dtype == np.float32 and a.values.dtype == np.float32
    v = np.float32
    first = (np.array([1.0, 2.0, 3.0], v) * v(1) + np.array([2.0, 4.0, 6.5], v)) / v(2)
    second = (first * v(2) + np.array([0.1, 0.2, 0.3], v)) / v(3)
    np.testing.assert_array_equal(a.values[0, 0:3], second)
    np.testing.assert_array_equal(a.values[0, 6:9], [5.0, 5.0, 5.0])
    np.testing.assert_array_equal(a.mask[0], [1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(a.labels[0, :3], [1, 1, 0])  # walking and falling in one row
    np.testing.assert_array_equal(a.values[1, 9:12], [7, 8, 9])
    np.testing.assert_array_equal(a.values[2, 3:6], [2.0, 2.0, 2.0])  # (1.5 + 2.5) / 2
    np.testing.assert_array_equal(b.ticks, [0])


def test_tick_rounding_is_half_to_even():
    lines = [f"A01,{TAG_IDS[0]},{s},d,1,1,1,walking" for s in (0, 150000, 250000, 350000, 449999)]
    (rec,) = parse_lines(lines)
    np.testing.assert_array_equal(rec.ticks, [0, 2, 4])  # 1.5 -> 2, 2.5 -> 2, 3.5 -> 4, 4.49999 -> 4


def test_recordid_lines_make_unlabelled_rows():
    lines = [f"A01,{TAG_IDS[0]},0,d,1,1,1,walking", "A01,RecordID,300000,d,0,0,0,walking"]
    (rec,) = parse_lines(lines)
    np.testing.assert_array_equal(rec.ticks, [0, 3])
    assert rec.labels[1].sum() == 0 and rec.mask[1].sum() == 0
    with pytest.raises(CorruptDataError, match="unexpected tag id"):
        parse_lines([f"A01,999-000-000-000,0,d,1,1,1,walking"])


def test_records_and_windows_match_latent_ode():
    ref = reference_windows()
    records = parse_lines(fixture_text().splitlines())
    assert [r.record_id for r in records] == [name for name, _ in RECORDS]
    windows = cut_windows(records)
    assert len(windows["ticks"]) == len(ref)
    for k, (rid, tt, vals, mask, labels) in enumerate(ref):
        assert records[windows["record"][k]].record_id == rid
        np.testing.assert_array_equal(windows["ticks"][k], tt.numpy())
        np.testing.assert_array_equal(windows["values"][k], vals.numpy())  # float32 running means, bit for bit
        np.testing.assert_array_equal(windows["mask"][k], mask.numpy())
        np.testing.assert_array_equal(windows["labels"][k], labels.numpy())
    # windows of 50 with slide 25 while offset + 50 < rows; B01 (< 51 rows) has none
    for r_index, r in enumerate(records):
        expected = len(range(0, len(r.ticks) - 50, 25)) if len(r.ticks) > 50 else 0
        assert (windows["record"] == r_index).sum() == expected
    assert (windows["ticks"][:, 0] == 0).all()  # re-based to the window start
    b01 = [i for i, r in enumerate(records) if r.record_id == "B01"][0]
    assert not (windows["record"] == b01).any()
    # the fixture really has same-tick averaging and two-label rows
    assert any((r.mask.reshape(-1, 4, 3)[:, :, 0].sum(1) > 1).any() for r in records)
    assert any((r.labels.sum(1) > 1).any() for r in records)
    assert {int(c) for r in records for c in r.labels.argmax(1)} == set(range(7))


@pytest.mark.parametrize("protocol", ["paper", "clean"])
def test_splits_match_authors_loader(pa_dir, protocol):
    dm = make_dm(pa_dir, protocol=protocol)
    dm.setup()
    got = arrays_of(dm)
    if protocol == "paper":
        train, test = reference_splits(seed=1991, bootstrap=True)
        assert set(got) == {"train", "test"}
    else:
        train, test = reference_splits(bootstrap=False)
        keep, val = model_selection.train_test_split(train, test_size=0.1, random_state=11, shuffle=True)
        train = keep
        for k, a in as_fields(val).items():
            np.testing.assert_array_equal(got["val"][k], a)
    for split, windows in (("train", train), ("test", test)):
        for k, a in as_fields(windows).items():
            assert got[split][k].dtype == a.dtype if k != "y" else got[split][k].dtype == np.int64
            np.testing.assert_array_equal(got[split][k], a, err_msg=f"{split}.{k}")
    assert dm.fingerprint == fingerprint(flatten_splits(got))


def test_split_sizes_equal_sklearn(pa_dir):
    n = len(reference_windows())
    train, test = model_selection.train_test_split(list(range(n)), train_size=0.8, random_state=42, shuffle=True)
    ti, si = split_indices(n)
    assert ti.tolist() == train and si.tolist() == test
    assert (len(ti), len(si)) == (int(0.8 * n), n - int(0.8 * n))
    dm = make_dm(pa_dir)
    assert dm.split_sizes() == {"train": len(train), "test": len(test)}
    clean = make_dm(pa_dir, protocol="clean")
    keep, val = model_selection.train_test_split(train, test_size=0.1, random_state=11)
    assert clean.split_sizes() == {"train": len(keep), "val": len(val), "test": len(test)}
    # 6,554 windows (Rubanova) would give 5,243 / 1,311, and clean 4,718 / 525
    t, s = split_indices(6554)
    assert (len(t), len(s)) == (5243, 1311)
    assert [len(p) for p in model_selection.train_test_split(t, test_size=0.1, random_state=11)] == [4718, 525]


def test_bootstrap_is_seeded_and_reproducible(pa_dir):
    a, b = make_dm(pa_dir), make_dm(pa_dir)
    a.setup()
    b.setup()
    assert a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(a.splits["train"].tensors["x"].numpy(), b.splits["train"].tensors["x"].numpy())
    c = make_dm(pa_dir, bootstrap_seed=7)
    c.setup()
    assert c.fingerprint != a.fingerprint
    # RandomState(seed): train draw first, then test, as np.random.seed(seed) + np.random.choice
    np.random.seed(1991)
    want_train, want_test = np.random.choice(40, 40), np.random.choice(10, 10)
    got_train, got_test = bootstrap_indices(40, 10, 1991)
    np.testing.assert_array_equal(got_train, want_train)
    np.testing.assert_array_equal(got_test, want_test)
    # resampled with replacement: duplicates in train, and test windows come from the test split
    x = a.splits["train"].tensors["x"].numpy().reshape(len(a.splits["train"]), -1)
    assert len(np.unique(x, axis=0)) < len(x)
    unboot = make_dm(pa_dir, bootstrap=False)
    unboot.setup()
    plain_test = {w.tobytes() for w in unboot.splits["test"].tensors["x"].numpy()}
    assert {w.tobytes() for w in a.splits["test"].tensors["x"].numpy()} <= plain_test
    assert unboot.split_sizes() == a.split_sizes()


def test_batch_fields(pa_dir):
    dm = make_dm(pa_dir, batch_size=8)
    batch = next(iter(dm.train_dataloader()))
    assert batch.x.shape == (8, 50, 12) and batch.x.dtype == torch.float32
    assert batch.obs_mask.shape == (8, 50, 12) and batch.obs_mask.dtype == torch.bool
    # dt: whole ticks, 0 first; a reading stamped before the previous line's tick opens a new row
    # with an earlier tick (latent_ode does not sort), so a step can go back in time (negative dt)
    assert batch.dt.shape == (8, 50) and (batch.dt[:, 0] == 0).all() and (batch.dt == batch.dt.round()).all()
    assert batch.y.shape == (8, 50) and batch.y.dtype == torch.int64 and int(batch.y.max()) <= 6
    assert batch.y_mask.shape == (8, 50) and batch.y_mask.dtype == torch.bool
    assert batch.step_mask is None
    assert (batch.x[~batch.obs_mask] == 0).all()
    assert batch.obs_mask.any(-1).all()  # every row of the real format has a reading


# -- files ---------------------------------------------------------------------------------
def test_missing_file_names_uci_url(tmp_path):
    with pytest.raises(MissingDataError) as err:
        make_dm(tmp_path / "data").setup()
    msg = str(err.value)
    assert UCI_URL in msg and "ConfLongDemo_JSI.txt" in msg
    assert str((tmp_path / "data" / "person_activity").resolve()) in msg
    assert PersonActivityDataModule.check(str(tmp_path / "data"), None)[0] == "missing"


def test_content_check(tmp_path):
    write_file(tmp_path / "data" / "person_activity")
    state, msg = PersonActivityDataModule.check(str(tmp_path / "data"), None)
    assert state == "ready" and "present" not in msg and "content check ok" in msg
    bad = {
        "7 comma-separated fields": fixture_text().replace(",walking\n", "\n", 1),
        "unexpected tag id": fixture_text().replace(TAG_IDS[2], "030-000-000-000", 1),
        "unknown activity label": fixture_text().replace(",walking\n", ",jogging\n", 1),
    }
    for what, text in bad.items():
        write_file(tmp_path / "data" / "person_activity", text)
        state, msg = PersonActivityDataModule.check(str(tmp_path / "data"), None)
        assert state == "corrupt" and what in msg, what


def test_crlf_file_reads_the_same(tmp_path):
    lf = make_dm(tmp_path / "lf" / "data", mirror=str(write_file(tmp_path / "lf" / "mirror" / "person_activity").parents[1]))
    lf.setup()
    folder = tmp_path / "crlf" / "person_activity"
    folder.mkdir(parents=True)
    (folder / "ConfLongDemo_JSI.txt").write_bytes(fixture_text().replace("\n", "\r\n").encode())
    crlf = make_dm(tmp_path / "crlf")
    crlf.setup()
    assert crlf.fingerprint == lf.fingerprint


def test_sha256_recorded_in_sidecar(pa_dir):
    dm = make_dm(pa_dir)
    dm.setup()
    digest = sha256_file(pa_dir / "person_activity" / "ConfLongDemo_JSI.txt")
    assert dm.source_sha256 == digest
    meta = json.loads((pa_dir / "person_activity" / "processed" / "person_activity_windows.npz.json").read_text())
    assert meta["key"]["source_sha256"] == digest and meta["key"]["max_seq_length"] == 50


def test_cache_reused(pa_dir, monkeypatch):
    import ctbench.data.person_activity as pa

    calls = []
    real = pa.read_records
    monkeypatch.setattr(pa, "read_records", lambda *a, **k: calls.append(1) or real(*a, **k))
    for protocol in ("paper", "clean", "paper"):
        make_dm(pa_dir, protocol=protocol).setup()
    assert len(calls) == 1  # the windows are cached; split and bootstrap are redone in memory


# -- configs -------------------------------------------------------------------------------
def test_conf_file_matches_module():
    import yaml

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "conf" / "data" / "person_activity.yaml").read_text())
    assert cfg["_target_"] == "ctbench.data.person_activity.PersonActivityDataModule"
    assert cfg["name"] == "person_activity" and cfg["batch_size"] == 64
    assert cfg["data_dir"] == "${paths.data_dir}" and cfg["protocol"] == "${protocol.name}"
    assert (cfg["max_seq_length"], cfg["max_windows"], cfg["train_size"], cfg["split_seed"]) == (50, 10000, 0.8, 42)
    assert (cfg["bootstrap"], cfg["bootstrap_seed"], cfg["val_fraction"], cfg["val_seed"]) == (None, 1991, 0.1, 11)


def _reference_s116() -> dict:
    return hyperparameter_rows("### 11.6 Human activity", 4, section_end="\n## ")


EXPERIMENT_COLUMN = {"cfs": 0, "cfc": 1, "cfc_nogate": 2, "cfc_mmrnn": 3}


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared reference not available")
@pytest.mark.parametrize("model", list(EXPERIMENT_COLUMN))
def test_experiments_equal_code_values(model):
    from ctbench.config import compose

    ref = {k: v[EXPERIMENT_COLUMN[model]] for k, v in _reference_s116().items()}
    cfg = compose(["data=person_activity", f"model={model}"])
    num = lambda s: float(re.match(r"[\d.e-]+", s).group(0))  # noqa: E731
    assert cfg.experiment.name == f"person_activity_{model}" and list(cfg.experiment.tables) == ["table2"]
    assert cfg.train.epochs == num(ref["epochs"]) == 100
    assert cfg.model.cell.hidden_size == num(ref["hidden size"])
    assert cfg.optim.lr == num(ref["base_lr"]) and cfg.optim.decay_lr == num(ref["decay_lr"])
    assert cfg.model.cell.backbone_activation == ref["backbone activation"].lower()
    assert cfg.model.cell.backbone_units == num(ref["backbone units"])
    assert cfg.model.cell.backbone_layers == num(ref["backbone layers"])
    assert cfg.model.cell.backbone_dropout == num(ref["backbone dropout"])
    assert cfg.optim.weight_decay == num(ref["weight decay"])
    assert cfg.sequence.tau == num(ref["tau (Δt multiplier)"])
    assert cfg.data.batch_size == num(ref["batch size"]) == 64
    assert cfg.model.cell.init_gain == num(ref["init (Xavier gain)"])
    assert cfg.optim.clipnorm == num(ref["clipnorm"]) == 0
    assert ref["optimizer"].startswith("Adam") or ref["optimizer"] == "same"
    # the torch recipe: Adam with coupled weight decay, per-epoch LambdaLR, torch eps
    assert (cfg.optim.name, cfg.optim.weight_decay_mode, cfg.optim.decay_every, cfg.optim.eps) == ("adam", "coupled", "epoch", 1e-8)
    assert cfg.model.cell.impl == "authors_torch"


@pytest.mark.parametrize("model_name, tau", [("cfs", 0.1), ("cfc_nogate", 0.5), ("cfc", 10.0), ("cfc_mmrnn", 10.0)])
def test_model_sees_24_inputs_and_11_logits(pa_dir, model_name, tau, one_thread):
    from ctbench.config import compose
    from ctbench.train import build_datamodule, build_model

    cfg = compose(["data=person_activity", f"model={model_name}", f"paths.data_dir={pa_dir}", "data.mirror=null"])
    dm = build_datamodule(cfg)
    dm.setup()
    model = build_model(cfg, dm)
    assert model.cell.input_size == 24 and model.readout == "sequence" and model.head.out_features == 11
    assert model.append_mask and model.tau == tau
    out = model.eval()(dm.splits["test"][list(range(3))])
    assert out.shape == (3, 50, 11) and torch.isfinite(out).all()


@pytest.mark.parametrize("protocol", ["paper", "clean"])
def test_smoke_run_on_fixture(tmp_path, protocol):
    from ctbench.config import compose
    from ctbench.train import run

    mirror = tmp_path / "mirror"
    write_file(mirror / "person_activity")
    cfg = compose([
        "data=person_activity", "model=cfc", "budget=smoke", "logger=none", "trainer=cpu", f"protocol={protocol}",
        f"paths.data_dir={tmp_path / 'data'}", f"paths.runs_dir={tmp_path / 'runs'}", f"paths.logs_dir={tmp_path / 'logs'}",
        f"data.mirror={mirror}", "runtime.progress_bar=false", "runtime.save_checkpoint=false", "runtime.num_threads=1", "model.cell.hidden_size=8",
        "data.batch_size=8",
    ])
    record = run(cfg)
    n = len(reference_windows())
    n_train = int(0.8 * n)
    assert record["metric"] == "accuracy" and 0.0 <= record["test_metric"] <= 100.0
    assert record["experiment"] == "person_activity_cfc" and record["data_fingerprint"]
    if protocol == "paper":
        assert record["split_sizes"] == {"train": n_train, "test": n - n_train}
    else:
        n_val = int(np.ceil(0.1 * n_train))
        assert record["split_sizes"] == {"train": n_train - n_val, "val": n_val, "test": n - n_train}


def test_table2_is_unknown():
    from ctbench.published import load_table

    t = load_table("table2")
    assert (t.id, t.status, t.metric, t.direction, t.data) == ("table2", "unknown", "accuracy", "higher", "person_activity")
    assert load_table("2").id == "table2"
    assert [r.name for r in t.rows] == ["Cf-S (ours)", "CfC-noGate (ours)", "CfC (ours)", "CfC-mmRNN (ours)"]
    assert [r.model for r in t.rows] == ["cfs", "cfc_nogate", "cfc", "cfc_mmrnn"]
    for r in t.rows:  # nothing invented
        assert (r.mean, r.std, r.time_min, r.code_comment, r.source) == (None, None, None, None, "self")
    assert t.pm_kind == "unknown"
    notes = " ".join(t.notes)
    assert "Rubanova" in notes and "mTAN" in notes and "8,752%" in notes


# -- the real file (not in ../shared/data; used when a copy is present) --------------------
def real_file() -> Path | None:
    candidates = [
        Path(os.environ.get("CTBENCH_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "data"),
        Path(__file__).resolve().parents[1] / "data",
    ]
    for c in candidates:
        if (c / "person_activity" / "ConfLongDemo_JSI.txt").is_file():
            return c / "person_activity" / "ConfLongDemo_JSI.txt"
    return None


@pytest.mark.slow
def test_real_person_activity(tmp_path):
    path = real_file()
    if path is None:
        pytest.skip("no ConfLongDemo_JSI.txt available (not in ../shared/data; download it from UCI)")
    dm = PersonActivityDataModule(data_dir=str(tmp_path), mirror=str(path.parents[1]), download=False)
    dm.setup()
    assert dm.n_windows == 6554  # Rubanova et al.
    assert dm.split_sizes() == {"train": 5243, "test": 1311}
    records = parse_lines(path.read_text().splitlines())
    assert len(records) == 25 and sorted({r.record_id for r in records}) == [f"{p}0{i}" for p in "ABCDE" for i in range(1, 6)]
    y_mask = dm.splits["train"].tensors["y_mask"]
    assert y_mask.all()
