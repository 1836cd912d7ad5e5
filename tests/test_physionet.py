"""PhysioNet 2012: the latent-ODE parser, the authors' split / normalisation / elapsed-time quirks
on a small set-a.tar.gz + Outcomes-a.txt in the real format, against the authors' loader written
out literally in torch; archive checks; configs and the published table; and (slow) the real
files from ../shared/data."""

from __future__ import annotations

import functools
import io
import json
import os
import re
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn.model_selection import train_test_split

from ctbench.data import physionet as P
from ctbench.data.archive import CorruptDataError, MissingDataError, fingerprint, flatten_splits
from ctbench.data.batch import TaskKind
from ctbench.data.physionet import PARAMS, PhysioNet2012DataModule

REPO = Path(__file__).resolve().parents[1]
from reference import REFERENCE, hyperparameter_rows

# The loader's params list (latent_ode lib/physionet.py = raminmh/CfC duv_physionet.py), verbatim.
LOADER_PARAMS = [
    "Age", "Gender", "Height", "ICUType", "Weight", "Albumin", "ALP", "ALT", "AST", "Bilirubin",
    "BUN", "Cholesterol", "Creatinine", "DiasABP", "FiO2", "GCS", "Glucose", "HCO3", "HCT", "HR",
    "K", "Lactate", "Mg", "MAP", "MechVent", "Na", "NIDiasABP", "NIMAP", "NISysABP", "PaCO2",
    "PaO2", "pH", "Platelets", "RespRate", "SaO2", "SysABP", "Temp", "TroponinI", "TroponinT",
    "Urine", "WBC",
]
DESCRIPTORS = ["Age", "Gender", "Height", "ICUType", "Weight"]
SERIES = [p for p in LOADER_PARAMS if p not in DESCRIPTORS]

# hand-made records (RecordID -> lines); the rest of the fixture is random
REC_A = 132539  # repeated times, 00:00 series value, quantisation ties, Weight as a series
REC_DESC = 140501  # descriptors only: one row
REC_A_LINES = [
    ("00:00", "RecordID", "132539"), ("00:00", "Age", "54"), ("00:00", "Gender", "0"),
    ("00:00", "Height", "-1"), ("00:00", "ICUType", "4"), ("00:00", "Weight", "70.5"),
    ("00:00", "HR", "80"),
    ("00:07", "HR", "73"), ("00:07", "NIDiasABP", "65"), ("00:07", "HR", "75"),
    ("00:07", "Temp", "35.1"), ("00:07", "HR", "0.1"),
    ("00:12", "GCS", "15"),          # 0.2 h / 0.016 = 12.5 -> 12 (half to even) -> 0.192 h
    ("00:36", "Urine", "900"),
    ("00:37", "Urine", "100"), ("00:37", "MechVent", "1"), ("00:37", "Urine", "50.5"),
    ("01:05", "Weight", "71.2"),
    ("47:59", "HR", "90"), ("47:59", "Cholesterol", "0"),
]
REC_DESC_LINES = [
    ("00:00", "RecordID", "140501"), ("00:00", "Age", "77"), ("00:00", "Gender", "1"),
    ("00:00", "Height", "170.2"), ("00:00", "ICUType", "2"), ("00:00", "Weight", "-1"),
]


def make_records(n: int = 50, seed: int = 0):
    """{RecordID: [(time, param, value), ...]} and {RecordID: death} in the set-a format."""
    rng = np.random.RandomState(seed)
    records = {REC_A: list(REC_A_LINES), REC_DESC: list(REC_DESC_LINES)}
    ids = rng.choice(np.arange(132541, 142674), size=n - 2, replace=False)
    for k, rid in enumerate(sorted(int(i) for i in ids if i not in records)):
        lines = [("00:00", "RecordID", str(rid))]
        for p in DESCRIPTORS:
            lines.append(("00:00", p, f"{rng.uniform(-1, 200):.1f}"))
        if rng.rand() < 0.5:
            lines.append(("00:00", "HR", f"{rng.uniform(40, 150):.0f}"))
        minutes = np.unique(rng.randint(1, 48 * 60 + 1, size=rng.randint(2, 25)))
        panel_at = rng.choice(minutes)  # one time with every series (all 41 observed in any subset)
        for m in minutes:
            stamp = f"{m // 60:02d}:{m % 60:02d}"
            names = SERIES if m == panel_at else list(rng.choice(SERIES, size=rng.randint(1, 5), replace=False))
            for p in names:
                value = f"{-(k % 3) * 1.5:.1f}" if p == "Cholesterol" else f"{rng.uniform(0, 300):.2f}"
                lines.append((stamp, p, value))
                if rng.rand() < 0.15:  # a repeated measurement at the same time
                    value = "0.0" if p == "Cholesterol" else f"{rng.uniform(0, 300):.2f}"
                    lines.append((stamp, p, value))
        records[rid] = lines
    deaths = {rid: int(rng.rand() < 0.3) for rid in records}
    deaths[REC_A], deaths[REC_DESC] = 1, 0
    return records, deaths


def record_text(lines) -> str:
    return "Time,Parameter,Value\n" + "".join(f"{t},{p},{v}\n" for t, p, v in lines)


@functools.lru_cache(maxsize=None)
def set_a_bytes(n: int = 50, extra: tuple = ()) -> bytes:
    """set-a.tar.gz as upstream lays it out: a ``set-a`` folder entry and <RecordID>.txt members
    (in a shuffled order: the module must sort by RecordID)."""
    records, _ = make_records(n)
    for rid, lines in extra:
        records[rid] = list(lines)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("set-a")
        info.type = tarfile.DIRTYPE
        tf.addfile(info)
        for rid in np.random.RandomState(1).permutation(sorted(records)):
            data = record_text(records[int(rid)]).encode()
            info = tarfile.TarInfo(f"set-a/{int(rid)}.txt")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def outcomes_text(deaths: dict) -> str:
    rows = [P.OUTCOMES_HEADER]
    for rid in sorted(deaths):
        rows.append(f"{rid},{rid % 20},{rid % 7},{rid % 30 + 1},-1,{deaths[rid]}")
    return "\n".join(rows) + "\n"


def write_physionet(folder: Path, n: int = 50, deaths: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "set-a.tar.gz").write_bytes(set_a_bytes(n))
    (folder / "Outcomes-a.txt").write_text(outcomes_text(deaths if deaths is not None else make_records(n)[1]))
    return folder


# -- the authors' code, literally (duv_physionet.py + train_physio.py), in torch ------------------
PARAMS_DICT = {k: i for i, k in enumerate(LOADER_PARAMS)}


def authors_record(text: str, quantization: float = 0.016):
    """PhysioNet.download's per-file loop: (tt, vals, mask)."""
    lines = text.splitlines(keepends=True)
    prev_time = 0
    tt = [0.0]
    vals = [torch.zeros(len(LOADER_PARAMS))]
    mask = [torch.zeros(len(LOADER_PARAMS))]
    nobs = [torch.zeros(len(LOADER_PARAMS))]
    for line in lines[1:]:
        time_, param, val = line.split(",")
        time_ = float(time_.split(":")[0]) + float(time_.split(":")[1]) / 60.0
        time_ = round(time_ / quantization) * quantization
        if time_ != prev_time:
            tt.append(time_)
            vals.append(torch.zeros(len(LOADER_PARAMS)))
            mask.append(torch.zeros(len(LOADER_PARAMS)))
            nobs.append(torch.zeros(len(LOADER_PARAMS)))
            prev_time = time_
        if param in PARAMS_DICT:
            n_observations = nobs[-1][PARAMS_DICT[param]]
            if n_observations > 0:
                prev_val = vals[-1][PARAMS_DICT[param]]
                new_val = (prev_val * n_observations + float(val)) / (n_observations + 1)
                vals[-1][PARAMS_DICT[param]] = new_val
            else:
                vals[-1][PARAMS_DICT[param]] = float(val)
            mask[-1][PARAMS_DICT[param]] = 1
            nobs[-1][PARAMS_DICT[param]] += 1
        else:
            assert param == "RecordID"
    return torch.tensor(tt), torch.stack(vals), torch.stack(mask)


def authors_min_max(records):
    """get_data_min_max over (record_id, tt, vals, mask, label) tuples."""
    data_min, data_max = None, None
    inf = torch.Tensor([float("Inf")])[0]
    for record_id, tt, vals, mask, labels in records:
        batch_min, batch_max = [], []
        for i in range(vals.size(-1)):
            non_missing = vals[:, i][mask[:, i] == 1]
            if len(non_missing) == 0:
                batch_min.append(inf)
                batch_max.append(-inf)
            else:
                batch_min.append(torch.min(non_missing))
                batch_max.append(torch.max(non_missing))
        batch_min, batch_max = torch.stack(batch_min), torch.stack(batch_max)
        if data_min is None:
            data_min, data_max = batch_min, batch_max
        else:
            data_min, data_max = torch.min(data_min, batch_min), torch.max(data_max, batch_max)
    data_max[data_max == 0.0] = 1
    return data_min, data_max


def authors_collate(batch, data_min, data_max):
    """variable_time_collate_fn2 followed by PhysionetLearner._prepare_batch: (x, dt, mask, y)."""
    D = batch[0][2].shape[1]
    combined_seq_len = np.max([ex[1].size(0) for ex in batch])
    combined_inputs = torch.zeros([len(batch), combined_seq_len, D])
    combined_mask = torch.zeros([len(batch), combined_seq_len, D])
    combined_tt = torch.zeros([len(batch), combined_seq_len])
    combined_labels = torch.zeros(len(batch))
    for b, (record_id, tt, vals, mask, labels) in enumerate(batch):
        item_len = tt.size(0)
        normed_vals = (vals - data_min) / data_max
        combined_inputs[b, :item_len] = normed_vals
        combined_mask[b, :item_len] = mask
        combined_tt[b, 1:item_len] = tt[:1] - tt[:-1]
        combined_labels[b] = labels
    tt = combined_tt
    t_elapsed = tt[:, 1:] - tt[:, :-1]
    t_fill = torch.zeros(tt.size(0), 1)
    t = torch.cat((t_fill, t_elapsed), dim=1)
    return combined_inputs, t, combined_mask, combined_labels.long()


@functools.lru_cache(maxsize=None)
def authors_dataset(n: int = 50):
    """{RecordID: (record_id, tt, vals, mask, label)} by the authors' loader on the fixture."""
    records, deaths = make_records(n)
    out = {}
    for rid, lines in records.items():
        tt, vals, mask = authors_record(record_text(lines))
        out[rid] = (str(rid), tt, vals, mask, torch.tensor(float(deaths[rid])))
    return out


def bits(a) -> np.ndarray:
    a = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture()
def physio_dir(tmp_path):
    """A data folder holding physionet2012/set-a.tar.gz and Outcomes-a.txt (50 records)."""
    write_physionet(tmp_path / "data" / "physionet2012")
    return tmp_path / "data"


def module(data_dir, protocol="paper", **kwargs):
    kwargs.setdefault("expected_records", None)
    return PhysioNet2012DataModule(data_dir=str(data_dir), mirror=None, download=False, protocol=protocol, **kwargs)


def arrays_of(dm) -> dict:
    return {s: {k: t.numpy() for k, t in ds.tensors.items()} for s, ds in dm.splits.items()}


# -- declarations ----------------------------------------------------------------------------
def test_declares_task():
    dm = PhysioNet2012DataModule
    assert dm.task_kind is TaskKind.SEQUENCE_CLASSIFICATION and dm.metric == "auroc"
    assert (dm.n_features, dm.n_outputs, dm.append_mask, dm.readout) == (41, 2, True, "last_observed")
    assert dm.SET_A.urls == ("https://physionet.org/files/challenge-2012/1.0.0/set-a.tar.gz?download",)
    assert dm.OUTCOMES_A.urls == ("https://physionet.org/files/challenge-2012/1.0.0/Outcomes-a.txt",)
    assert dm.SET_A.sha256 == ("abcd119bae0f9f98d5e63b7bce5b2d37c64328e7c1acacab3836d17787d841df",)
    assert dm.OUTCOMES_A.sha256 == ("2613ea60ccda29f87571a7d6b09ad130858a8ccd66325bd073365925026883c2",)
    assert {r.subdir for r in dm.REMOTES} == {"physionet2012"}


def test_params_in_latent_ode_order():
    assert list(PARAMS) == LOADER_PARAMS and len(PARAMS) == 41 == len(set(PARAMS))
    assert PARAMS[:5] == tuple(DESCRIPTORS) and PARAMS.index("MechVent") == 24 and "RecordID" not in PARAMS


# -- parsing: the authors' loader, bit for bit ---------------------------------------------------
def test_records_match_authors_loader(tmp_path):
    path = tmp_path / "set-a.tar.gz"
    path.write_bytes(set_a_bytes())
    rec = P.build_records(path)
    ref = authors_dataset()
    assert list(rec.record_ids) == sorted(ref)  # sorted by RecordID, whatever the member order
    assert rec.tt.shape[1] == max(int(r[1].shape[0]) for r in ref.values())
    for i, rid in enumerate(rec.record_ids):
        _, tt, vals, mask, _ = ref[int(rid)]
        n = int(rec.lengths[i])
        assert n == tt.shape[0], rid
        np.testing.assert_array_equal(bits(rec.tt[i, :n]), bits(tt))
        np.testing.assert_array_equal(bits(rec.vals[i, :n]), bits(vals))  # sign bits and all
        np.testing.assert_array_equal(rec.mask[i, :n], mask.numpy().astype(bool))
        assert not rec.mask[i, n:].any() and not rec.vals[i, n:].any() and not rec.tt[i, n:].any()


def test_quantisation_rows_and_averaging(tmp_path):
    path = tmp_path / "set-a.tar.gz"
    path.write_bytes(set_a_bytes())
    rec = P.build_records(path)
    i = list(rec.record_ids).index(REC_A)
    n = int(rec.lengths[i])
    # rows: 00:00, 00:07, 00:12, 00:36, 00:37, 01:05, 47:59 -> round(t / 0.016) * 0.016
    minutes = [0, 7, 12, 36, 37, 65, 47 * 60 + 59]
    expected = [np.float32(round((m // 60 + (m % 60) / 60.0) / 0.016) * 0.016) for m in minutes]
    assert n == 7
    np.testing.assert_array_equal(rec.tt[i, :n], np.array(expected, dtype=np.float32))
    assert rec.tt[i, 2] == np.float32(0.192)  # 12.5 rounds to even (12), not up (0.208)
    assert rec.tt[i, 1] == np.float32(0.112) and rec.tt[i, 6] == np.float32(47.984)
    col = {p: k for k, p in enumerate(PARAMS)}
    # row 0: the descriptors and the 00:00 HR
    assert rec.mask[i, 0].sum() == 6 and rec.vals[i, 0, col["Age"]] == 54 and rec.vals[i, 0, col["HR"]] == 80
    assert rec.vals[i, 0, col["Height"]] == -1  # -1 ("unknown") is an observed value, as in the loader
    # 00:07: HR 73, 75, 0.1 -> running mean in float32
    f = np.float32
    avg = (f(f(73) * f(1) + f(75)) / f(2))
    avg = (f(avg * f(2) + f(0.1)) / f(3))
    assert rec.vals[i, 1, col["HR"]] == avg and abs(float(avg) - 148.1 / 3) < 1e-4
    assert rec.vals[i, 4, col["Urine"]] == f(f(f(100) * f(1) + f(50.5)) / f(2))
    assert rec.vals[i, 4, col["MechVent"]] == 1 and rec.mask[i, 4, col["MechVent"]]
    assert rec.vals[i, 5, col["Weight"]] == f(71.2) and rec.mask[i, 5].sum() == 1
    # the descriptor-only record: one row, t = 0
    j = list(rec.record_ids).index(REC_DESC)
    assert rec.lengths[j] == 1 and rec.mask[j, 0].sum() == 5 and rec.tt[j, 0] == 0


def test_quantise_is_pythons_round():
    hours = np.array([m // 60 + (m % 60) / 60.0 for m in range(0, 48 * 60 + 1)])
    ours = P.quantise(hours, 0.016)
    assert all(o == round(h / 0.016) * 0.016 for o, h in zip(ours, hours))
    assert len(np.unique(ours)) == len(hours)  # finer than a minute: distinct minutes stay distinct


# -- splits -------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["paper", "clean"])
def test_split_sizes_and_members_vs_sklearn(physio_dir, protocol):
    dm = module(physio_dir, protocol)
    dm.setup()
    records, deaths = make_records()
    ids = np.array(sorted(records))
    train, test = train_test_split(ids, train_size=0.8, random_state=42, shuffle=True)
    expected = {"train": train, "test": test}
    if protocol == "clean":
        train, val = train_test_split(train, train_size=0.8, random_state=11, shuffle=True)
        expected = {"train": train, "val": val, "test": test}
    sizes = {"paper": {"train": 40, "test": 10}, "clean": {"train": 32, "val": 8, "test": 10}}[protocol]
    assert dm.split_sizes() == sizes
    for split, want in expected.items():
        np.testing.assert_array_equal(dm.record_ids[split], want)
        y = dm.splits[split].tensors["y"].numpy()
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, [deaths[int(r)] for r in want])


# -- normalisation ---------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["paper", "clean"])
def test_normalisation_formula(physio_dir, protocol):
    dm = module(physio_dir, protocol, trim_batches=False)
    dm.setup()
    ref = authors_dataset()
    stats_ids = sorted(ref) if protocol == "paper" else dm.record_ids["train"]
    lo, hi = authors_min_max([ref[int(r)] for r in stats_ids])
    assert torch.isfinite(lo).all() and torch.isfinite(hi).all()
    assert hi[PARAMS.index("Cholesterol")] == 1  # its max is 0 -> 1
    for split, ds in dm.splits.items():
        x = ds.tensors["x"].numpy()
        for b, rid in enumerate(dm.record_ids[split]):
            _, tt, vals, mask, _ = ref[int(rid)]
            n = tt.shape[0]
            want = (vals - lo) / hi  # unobserved entries inside the record too (-min/max)
            np.testing.assert_array_equal(bits(x[b, :n]), bits(want))
            assert not x[b, n:].any()  # padding stays 0
    # the two protocols use different statistics on this fixture
    all_lo, all_hi = authors_min_max(list(ref.values()))
    train_ids, _ = train_test_split(np.array(sorted(ref)), train_size=0.8, random_state=42, shuffle=True)
    train_ids, _ = train_test_split(train_ids, train_size=0.8, random_state=11, shuffle=True)
    train_lo, train_hi = authors_min_max([ref[int(r)] for r in train_ids])
    assert not (torch.equal(all_lo, train_lo) and torch.equal(all_hi, train_hi))


def test_min_max_of_unobserved_feature():
    vals = np.zeros((2, 3, 41), np.float32)
    mask = np.zeros((2, 3, 41), bool)
    vals[0, 1, 0], mask[0, 1, 0] = 5, True
    vals[1, 2, 0], mask[1, 2, 0] = 9, True
    vals[1, 0, 1], mask[1, 0, 1] = 0, True  # max 0 -> 1
    lo, hi = P.data_min_max(vals, mask)
    assert (lo[0], hi[0], lo[1], hi[1]) == (5, 9, 0, 1)
    assert lo[2] == 0 and hi[2] == 1  # never observed: 0 / 1 instead of the loader's NaN-making +-inf


# -- elapsed time ----------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["paper", "clean"])
def test_elapsed_time_direct(physio_dir, protocol):
    dm = module(physio_dir, protocol, trim_batches=False)
    dm.setup()
    ref = authors_dataset()
    for split, ds in dm.splits.items():
        dt = ds.tensors["dt"].numpy()
        t_max = dt.shape[1]
        for b, rid in enumerate(dm.record_ids[split]):
            t = ref[int(rid)][1].numpy()
            n = len(t)
            want = np.zeros(t_max, np.float32)
            if protocol == "paper":
                for k in range(2, n):
                    want[k] = -(t[k - 1] - t[k - 2])  # negated, lagged by one step
                if 2 <= n < t_max:
                    want[n] = t[n - 2]  # positive jump at the first padded step
            else:
                for k in range(1, n):
                    want[k] = t[k] - t[k - 1]
            np.testing.assert_array_equal(dt[b], want, err_msg=f"{split} {rid}")


def test_paper_batches_equal_authors_collate(physio_dir):
    """Whole split and random small batches: x, dt, mask, y bit-identical to the authors' collate."""
    dm = module(physio_dir, "paper")
    dm.setup()
    ref = authors_dataset()
    lo, hi = authors_min_max(list(ref.values()))
    rng = np.random.RandomState(0)
    for split in ("train", "test"):
        n = dm.split_sizes()[split]
        for index in [list(range(n))] + [list(rng.choice(n, size=6, replace=False)) for _ in range(5)]:
            batch = dm.splits[split][index]
            x, dt, mask, y = authors_collate([ref[int(dm.record_ids[split][i])] for i in index], lo, hi)
            assert batch.x.shape == x.shape and batch.dt.shape == dt.shape  # padded to the batch's longest
            np.testing.assert_array_equal(bits(batch.x), bits(x))
            np.testing.assert_array_equal(bits(batch.dt), bits(dt))
            np.testing.assert_array_equal(batch.obs_mask.numpy(), mask.numpy().astype(bool))
            np.testing.assert_array_equal(batch.y.numpy(), y.numpy())
            assert batch.obs_mask.dtype == torch.bool and batch.y.dtype == torch.int64


def test_global_padding_leaves_outputs_unchanged(physio_dir):
    """The same records padded to the batch's longest and to the data set's longest give the same logits."""
    from ctbench.cells.cfc import CfCCell
    from ctbench.sequence import SequenceModel

    trimmed, full = module(physio_dir, "paper"), module(physio_dir, "paper", trim_batches=False)
    trimmed.setup(), full.setup()
    lengths = trimmed.splits["train"].lengths.numpy()
    index = list(np.argsort(lengths)[:8])  # short records: lots of padding in the full grid
    a, b = trimmed.splits["train"][index], full.splits["train"][index]
    assert a.x.shape[1] == lengths[index].max() < b.x.shape[1]
    assert (b.dt[:, a.x.shape[1]:] != 0).any()  # the jump lands in the extra padding
    torch.manual_seed(0)
    cell = CfCCell(82, 16, impl="authors_torch", backbone_units=16, backbone_layers=2, init_gain=0.5)
    model = SequenceModel(cell, n_outputs=2, readout="last_observed", append_mask=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(a), model(b), rtol=0, atol=1e-6)
        # sanity: the readout does depend on the data
        assert not torch.allclose(model(a)[0], model(a)[-1])


def test_loader_batches(physio_dir):
    dm = module(physio_dir, "paper", batch_size=16)
    batch = next(iter(dm.train_dataloader()))
    assert batch.x.shape[0] == 16 and batch.x.shape[2] == 41 and batch.x.dtype == torch.float32
    assert batch.obs_mask.shape == batch.x.shape and batch.dt.shape == batch.x.shape[:2]
    assert batch.obs_mask[:, -1].any()  # trimmed: the last step belongs to the batch's longest record
    test = next(iter(dm.test_dataloader()))
    assert len(test) == 10  # the whole test split is one batch (eval_batch_size 1024)


# -- archive checks ------------------------------------------------------------------------------
def test_missing_files_name_urls_and_folder(tmp_path):
    dm = module(tmp_path / "data")
    with pytest.raises(MissingDataError) as err:
        dm.setup()
    msg = str(err.value)
    assert "set-a.tar.gz?download" in msg and "physionet.org/files/challenge-2012/1.0.0" in msg
    assert str((tmp_path / "data" / "physionet2012").resolve()) in msg and "CTBENCH_DATA_MIRROR" in msg


def test_truncated_archive_is_corrupt(tmp_path):
    folder = write_physionet(tmp_path / "physionet2012")
    data = set_a_bytes()
    (folder / "set-a.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDataError, match="truncated|corrupt"):
        module(tmp_path).setup()


def test_unknown_parameter_is_corrupt(tmp_path):
    folder = write_physionet(tmp_path / "physionet2012")
    bad = ((139999, (("00:00", "RecordID", "139999"), ("00:05", "Lactose", "1"))),)
    (folder / "set-a.tar.gz").write_bytes(set_a_bytes(50, bad))
    with pytest.raises(CorruptDataError, match="unknown parameter.*Lactose"):
        module(tmp_path).setup()


def test_record_without_outcome_is_corrupt(tmp_path):
    _, deaths = make_records()
    deaths.pop(REC_A)
    write_physionet(tmp_path / "physionet2012", deaths=deaths)
    with pytest.raises(CorruptDataError, match="no label for 1 set-a record"):
        module(tmp_path).setup()


def test_bad_outcomes_file_is_corrupt(tmp_path):
    folder = write_physionet(tmp_path / "physionet2012")
    (folder / "Outcomes-a.txt").write_text("RecordID,SAPS-I\n1,2\n")
    with pytest.raises(CorruptDataError, match="header"):
        module(tmp_path).setup()


def test_record_count_checked(physio_dir):
    with pytest.raises(CorruptDataError, match="wrong record count: expected 4000 set-a records, found 50"):
        module(physio_dir, expected_records=4000).setup()


def test_check_states(tmp_path):
    state, msg = PhysioNet2012DataModule.check(str(tmp_path / "data"), None)
    assert state == "missing" and "set-a.tar.gz?download" in msg
    write_physionet(tmp_path / "data" / "physionet2012")
    state, msg = PhysioNet2012DataModule.check(str(tmp_path / "data"), None)
    assert state == "ready" and msg.count("content check ok") == 2


def test_cache_reused_per_protocol(physio_dir, monkeypatch):
    calls = []
    real = P.build_records
    monkeypatch.setattr(P, "build_records", lambda *a, **k: calls.append(1) or real(*a, **k))
    a = module(physio_dir, "paper")
    a.setup()
    b = module(physio_dir, "paper")
    b.setup()
    assert len(calls) == 1 and a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(a.record_ids["test"], b.record_ids["test"])
    c = module(physio_dir, "clean")
    c.setup()
    assert len(calls) == 2 and c.fingerprint != a.fingerprint
    processed = physio_dir / "physionet2012" / "processed"
    assert sorted(p.name for p in processed.glob("*.npz")) == ["physionet2012_clean.npz", "physionet2012_paper.npz"]
    meta = json.loads((processed / "physionet2012_paper.npz.json").read_text())
    assert meta["key"]["protocol"] == "paper" and meta["key"]["quantization"] == 0.016
    want = {s: {k: v for k, v in f.items()} for s, f in arrays_of(a).items()}
    for s in want:
        want[s]["record_id"] = a.record_ids[s]
    assert a.fingerprint == fingerprint(flatten_splits(want))


# -- configs, model wiring, a run ------------------------------------------------------------------
def test_conf_file_matches_module():
    cfg = yaml.safe_load((REPO / "conf" / "data" / "physionet2012.yaml").read_text())
    assert cfg["_target_"] == "ctbench.data.physionet.PhysioNet2012DataModule" and cfg["name"] == "physionet2012"
    assert cfg["data_dir"] == "${paths.data_dir}" and cfg["protocol"] == "${protocol.name}"
    assert cfg["mirror"] == "${oc.env:CTBENCH_DATA_MIRROR,null}"
    assert (cfg["batch_size"], cfg["eval_batch_size"]) == (128, 1024)
    assert (cfg["quantization"], cfg["split_seed"], cfg["val_seed"], cfg["train_size"]) == (0.016, 42, 11, 0.8)
    assert cfg["expected_records"] == 4000 and cfg["trim_batches"] is True


def _reference_s113() -> dict:
    return hyperparameter_rows("### 11.3 PhysioNet 2012", 5)


EXPERIMENT_COLUMN = {"cfs": 0, "cfc": 1, "cfc_nogate": 2, "cfc_mmrnn": 3, "ltc": 4}
ACTIVATION = {"SiLU": "silu", "ReLU": "relu", "tanh": "tanh", "LeCun tanh": "lecun_tanh"}


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared reference not available")
@pytest.mark.parametrize("model", list(EXPERIMENT_COLUMN))
def test_experiments_equal_table_s2(model):
    from ctbench.config import compose

    ref = {k: v[EXPERIMENT_COLUMN[model]] for k, v in _reference_s113().items()}
    cfg = compose(["data=physionet2012", f"model={model}"])
    num = lambda s: float(re.match(r"[\d.e-]+", s).group(0))  # noqa: E731
    assert cfg.experiment.name == f"physionet2012_{model}" and list(cfg.experiment.tables) == ["ed6"]
    assert cfg.train.epochs == num(ref["epochs"])
    assert cfg.task.class_weight == num(ref["class_weight (positive class)"])
    assert cfg.optim.clipnorm == num(ref["clipnorm"]) == 0
    assert cfg.model.cell.hidden_size == num(ref["hidden size"])
    assert cfg.optim.lr == num(ref["base_lr"]) and cfg.optim.decay_lr == num(ref["decay_lr"])
    assert cfg.optim.weight_decay == num(ref["weight decay"])
    assert cfg.data.batch_size == num(ref["batch size"])
    assert ref["optimizer"].startswith("AdamW") and cfg.optim.name == "adamw"
    assert (cfg.optim.weight_decay_mode, cfg.optim.decay_every, cfg.optim.eps) == ("decoupled", "epoch", 1e-8)
    assert cfg.model.cell.impl == "authors_torch"
    if model == "ltc":
        assert cfg.model.cell.ode_unfolds == 6 and "init_gain" not in cfg.model.cell
        return
    assert cfg.model.cell.init_gain == num(ref["init (Xavier gain)"])
    assert cfg.model.cell.backbone_units == num(ref["backbone units"])
    assert cfg.model.cell.backbone_layers == num(ref["backbone layers"])
    assert cfg.model.cell.backbone_dropout == num(ref["backbone dropout"])
    assert cfg.model.cell.backbone_activation == ACTIVATION[ref["backbone activation"]]


def test_model_sees_82_inputs(physio_dir):
    from ctbench.config import compose
    from ctbench.train import build_datamodule, build_model

    cfg = compose(["data=physionet2012", "model=cfc", f"paths.data_dir={physio_dir}", "data.mirror=null",
                   "data.expected_records=null"])
    dm = build_datamodule(cfg)
    dm.setup()
    model = build_model(cfg, dm)
    assert model.cell.input_size == 82 and model.readout == "last_observed" and model.head.out_features == 2
    out = model.eval()(dm.splits["test"][list(range(4))])
    assert out.shape == (4, 2) and torch.isfinite(out).all()


@pytest.mark.parametrize("protocol", ["paper", "clean"])
def test_smoke_run_on_fixture(tmp_path, protocol):
    from ctbench.config import compose
    from ctbench.train import run

    mirror = tmp_path / "mirror"
    write_physionet(mirror / "physionet2012")
    cfg = compose([
        "data=physionet2012", "model=cfc", "budget=smoke", "logger=none", "trainer=cpu",
        f"protocol={protocol}", f"paths.data_dir={tmp_path / 'data'}", f"paths.runs_dir={tmp_path / 'runs'}",
        f"paths.logs_dir={tmp_path / 'logs'}", f"data.mirror={mirror}", "data.expected_records=null",
        "runtime.progress_bar=false", "runtime.save_checkpoint=false", "runtime.num_threads=1",
        "model.cell.hidden_size=16",
    ])
    record = run(cfg)
    assert record["metric"] == "auroc" and 0.0 <= record["test_metric"] <= 1.0
    assert record["split_sizes"] == ({"train": 40, "test": 10} if protocol == "paper" else {"train": 32, "val": 8, "test": 10})
    assert record["experiment"] == "physionet2012_cfc" and record["data_fingerprint"]


# -- the published table -------------------------------------------------------------------------
ED6_ORDER = [
    "RNN-Impute", "RNN-delta-t", "RNN-Decay", "GRU-D", "Phased-LSTM", "IP-Nets", "SeFT", "RNN-VAE",
    "ODE-RNN", "Latent-ODE-RNN", "Latent-ODE-ODE", "LTC", "Cf-S (ours)", "CfC-noGate (ours)",
    "CfC (ours)", "CfC-mmRNN (ours)",
]


def _reference_section7() -> dict:
    text = REFERENCE.read_text(encoding="utf-8")
    sec = text.split("## 7. Extended Data Fig. 6", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in sec.splitlines():
        m = re.match(r"\| (.+?) \| ([\d.]+) ± ([\d.]+)( \(bold\))?[^|]*\| ([\d.]+)[^|]*\| (†|\*|—) \|", line)
        if m:
            out[m.group(1)] = (float(m.group(2)), float(m.group(3)), float(m.group(5)), bool(m.group(4)), m.group(6))
    return out


def test_ed6_table():
    from ctbench.published import load_table

    t = load_table("ed6")
    assert load_table("arxiv-v2-table5").id == "ed6"
    assert (t.metric, t.direction, t.n, t.data, t.pm_kind, t.pm_ddof) == ("auroc", "higher", 5, "physionet2012", "population_std", 0)
    assert [r.name for r in t.rows] == ED6_ORDER
    models = {r.name: r.model for r in t.rows if r.model}
    rerun = {"RNN-Impute": "rnn_impute", "RNN-delta-t": "rnn_delta_t", "RNN-Decay": "rnn_decay",
             "GRU-D": "gru_d", "Phased-LSTM": "phased_lstm", "ODE-RNN": "ode_rnn"}
    # borrowed numbers that ctbench re-runs with its own recipe, and the CfC authors' own rows
    assert models == {**rerun, "LTC": "ltc", "Cf-S (ours)": "cfs", "CfC-noGate (ours)": "cfc_nogate",
                      "CfC (ours)": "cfc", "CfC-mmRNN (ours)": "cfc_mmrnn"}
    for r in t.rows:
        if r.source == "borrowed":
            assert r.calibration is None and "mTAN ICLR 2021 Table 2" in r.borrowed_from
            assert (r.model is not None) == (r.name in rerun), r.name
        else:
            assert r.source == "self" and r.calibration == 1.34
        if r.model is not None:
            assert (REPO / "conf" / "model" / f"{r.model}.yaml").is_file(), r.model
            assert (REPO / "conf" / "experiment" / f"physionet2012_{r.model}.yaml").is_file(), r.model
    assert t.row("LTC").code_comment_differs and t.row("CfC-mmRNN (ours)").code_comment_differs
    assert not t.row("CfC (ours)").code_comment_differs


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared reference not available")
def test_ed6_equals_reference_file():
    from ctbench.published import load_table

    ref = _reference_section7()
    assert list(ref) == ED6_ORDER
    for r in load_table("ed6").rows:
        mean, std, time_min, bold, marker = ref[r.name]
        assert (r.mean, r.std, r.time_min, r.bold) == (mean, std, time_min, bold), r.name
        assert (r.marker or "—") == marker, r.name


# -- the real files ------------------------------------------------------------------------------
def shared_data() -> Path:
    return Path(os.environ.get("CTBENCH_DATA_MIRROR") or REPO.parent / "shared" / "data")


REAL_FINGERPRINT = {
    "paper": "f7bef55191f76fe5b6971d6c4f840df3e1b2b581586257cf351b103915e0ba6b",
    "clean": "5793ccd748c37d42c017a74f42ded4fafaf2f461e8918363be115b881e21e7ab",
}


@pytest.fixture(scope="module")
def real_mirror():
    mirror = shared_data()
    if not (mirror / "physionet2012" / "set-a.tar.gz").is_file():
        pytest.skip(f"no real set-a.tar.gz under {mirror}")
    return mirror


@pytest.mark.slow
def test_real_records_match_authors_loader(real_mirror):
    path = real_mirror / "physionet2012" / "set-a.tar.gz"
    start = time.perf_counter()
    rec = P.build_records(path)
    print(f"real set-a parse: {time.perf_counter() - start:.2f} s")
    assert len(rec) == 4000 and rec.n_lines == 1757980 and rec.tt.shape == (4000, 203)
    assert int(rec.mask.sum()) == 1750236 and int(rec.lengths.sum()) == 299264
    assert list(rec.record_ids[rec.lengths == 1]) == [140501, 140936, 141264]  # descriptors only
    np.testing.assert_allclose(rec.tt.sum(dtype=np.float64), 6460612.528842278, rtol=1e-12)
    np.testing.assert_allclose(rec.vals.sum(dtype=np.float64), 131454683.10366529, rtol=1e-12)
    lo, hi = P.data_min_max(rec.vals, rec.mask)
    col = PARAMS.index
    assert (lo[col("Age")], hi[col("Age")]) == (15, 90) and (lo[col("MechVent")], hi[col("MechVent")]) == (1, 1)
    assert (lo[col("Height")], hi[col("Height")]) == (-1, np.float32(431.8))
    texts = P.read_member_texts(path)
    for i in range(0, 4000, 20):  # 200 records against the authors' loop, bit for bit
        tt, vals, mask = authors_record(texts[int(rec.record_ids[i])])
        n = int(rec.lengths[i])
        assert n == tt.shape[0]
        np.testing.assert_array_equal(bits(rec.tt[i, :n]), bits(tt))
        np.testing.assert_array_equal(bits(rec.vals[i, :n]), bits(vals))
        np.testing.assert_array_equal(rec.mask[i, :n], mask.numpy().astype(bool))


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["paper", "clean"])
def test_real_physionet(tmp_path, real_mirror, protocol):
    assert PhysioNet2012DataModule.check(str(tmp_path), str(real_mirror))[0] == "ready"
    start = time.perf_counter()
    dm = PhysioNet2012DataModule(data_dir=str(tmp_path), mirror=str(real_mirror), download=False, protocol=protocol)
    dm.setup()
    build = time.perf_counter() - start
    print(f"real physionet2012 ({protocol}) build: {build:.2f} s")
    assert build < 60
    got = arrays_of(dm)
    sizes = {"paper": {"train": 3200, "test": 800}, "clean": {"train": 2560, "val": 640, "test": 800}}[protocol]
    assert dm.split_sizes() == sizes
    for split, a in got.items():
        assert a["x"].shape == (sizes[split], 203, 41) and a["obs_mask"].shape == a["x"].shape
        assert a["dt"].shape == (sizes[split], 203) and a["y"].dtype == np.int64
    assert sum(int(a["y"].sum()) for a in got.values()) == 554
    assert int(got["test"]["y"].sum()) == 121
    ids = np.concatenate(list(dm.record_ids.values()))
    assert len(np.unique(ids)) == 4000
    assert dm.fingerprint == REAL_FINGERPRINT[protocol]
    train = got["train"]
    if protocol == "paper":
        np.testing.assert_allclose(train["x"].sum(dtype=np.float64), 16444.50443443653, rtol=1e-9)
        np.testing.assert_allclose(train["dt"].sum(dtype=np.float64), -46.09599353000522, rtol=1e-6)
        assert float(train["dt"].min()) == np.float32(-24.48) and float(train["dt"].max()) == np.float32(47.968)
        assert float(train["x"][train["obs_mask"]].max()) == 2.0  # (v - min) / max exceeds 1 when min < 0
    else:
        np.testing.assert_allclose(train["x"].sum(dtype=np.float64), -181566.6625801526, rtol=1e-9)
        np.testing.assert_allclose(train["dt"].sum(dtype=np.float64), 120919.2958974354, rtol=1e-9)
        assert float(train["dt"].min()) == 0.0
        assert int(got["val"]["y"].sum()) == 79
    again = PhysioNet2012DataModule(data_dir=str(tmp_path), mirror=str(real_mirror), download=False, protocol=protocol)
    again.setup()
    assert again.fingerprint == REAL_FINGERPRINT[protocol]
