"""ET-sMNIST: the IDX parser on small files in the real format, the authors' event transform on
hand-built images, the data module (splits, cache, checks), and (slow) the real MNIST files
against the authors' cached arrays."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from ctbench.data.archive import CorruptDataError, MissingDataError, fingerprint, flatten_splits
from ctbench.data.batch import TaskKind
from ctbench.data.etsmnist import FILES, OFFICIAL, ETSMnistDataModule, check_file, read_idx, transform

ROOT = Path(__file__).resolve().parents[1]
N_TRAIN, N_TEST = 60, 20


# -- fixture: MNIST-format IDX files ------------------------------------------------------
def idx_images_bytes(images: np.ndarray, magic: int = 2051, count: int | None = None) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">IIII", magic, n if count is None else count, rows, cols) + images.astype(np.uint8).tobytes()


def idx_labels_bytes(labels: np.ndarray, magic: int = 2049, count: int | None = None) -> bytes:
    return struct.pack(">II", magic, len(labels) if count is None else count) + labels.astype(np.uint8).tobytes()


def hand_images() -> np.ndarray:
    """Images whose events are known by hand (see test_transform_hand_built)."""
    imgs = np.zeros((6, 28, 28), dtype=np.uint8)
    flat = imgs.reshape(6, -1)
    # 0: all zeros -> one event (0, 1); the final run is never emitted
    flat[1, :] = 255  # 1: all ones -> one event (1, 1)
    flat[2, 3:5] = 200  # 2: 0 0 0 1 1 0 ... -> (0,1) (1,3) (0,2)
    flat[3, 0] = 129  # 3: threshold: 129 -> 1, 128 -> 0 -> (1,1) (0,1)
    flat[3, 1] = 128
    flat[4, ::2] = 255  # 4: alternating 1 0 1 0 ... -> 784 changes, capped at 256 events
    flat[5, 783] = 255  # 5: only the last pixel set -> (0,1) (1,783)
    return imgs


@functools.lru_cache(maxsize=None)
def fixture_arrays():
    rng = np.random.RandomState(0)
    out = {}
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        imgs = np.zeros((n, 28, 28), dtype=np.uint8)
        for i in range(n):  # a few random strokes per image, like digits
            for _ in range(rng.randint(1, 5)):
                r, c = rng.randint(0, 24, size=2)
                imgs[i, r:r + rng.randint(2, 5), c:c + rng.randint(1, 8)] = rng.randint(100, 256)
        imgs[: len(hand_images())] = hand_images()
        out[split] = (imgs, rng.randint(0, 10, size=n).astype(np.uint8))
    return out


def write_mnist(folder: Path) -> dict:
    """The four .gz files under ``folder``; returns OFFICIAL-style {name: (count, md5)} for them."""
    folder.mkdir(parents=True, exist_ok=True)
    official = {}
    for split, (imgs, labels) in fixture_arrays().items():
        for kind, raw in (("images", idx_images_bytes(imgs)), ("labels", idx_labels_bytes(labels))):
            name = FILES[f"{split}_{kind}"]
            (folder / name).write_bytes(gzip.compress(raw, mtime=0))
            official[name] = (len(imgs), hashlib.md5(raw).hexdigest())
    return official


@pytest.fixture()
def mnist_dir(tmp_path, monkeypatch):
    """A data folder holding data/mnist/*.gz; the official counts/MD5s are the fixture's."""
    official = write_mnist(tmp_path / "data" / "mnist")
    monkeypatch.setattr(ETSMnistDataModule, "OFFICIAL", official)
    return tmp_path / "data"


def arrays_of(dm) -> dict:
    return {s: {k: t.numpy() for k, t in ds.tensors.items()} for s, ds in dm.splits.items()}


# -- the authors' transform, written out ------------------------------------------------------
def authors_transform_sample(x, pad_size=256, threshold=128):
    """``ETSMnistData.transform_sample`` (same control flow)."""
    x = x.flatten()
    events = np.zeros([pad_size, 1], dtype=np.float32)
    elapsed = np.zeros([pad_size, 1], dtype=np.float32)
    mask = np.zeros([pad_size], dtype=bool)
    last_char, write_index, elapsed_counter = -1, 0, 0
    for i in range(x.shape[0]):
        elapsed_counter += 1
        char = int(x[i] > threshold)
        if last_char != char:
            events[write_index] = char
            elapsed[write_index] = elapsed_counter
            mask[write_index] = True
            write_index += 1
            if write_index >= pad_size:
                break
            elapsed_counter = 0
        last_char = char
    return events[:, 0], elapsed[:, 0], mask


# -- parser -------------------------------------------------------------------------------
def test_idx_round_trip(tmp_path):
    write_mnist(tmp_path)
    imgs, labels = fixture_arrays()["train"]
    got = read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    assert got.shape == (N_TRAIN, 28, 28) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, imgs)
    np.testing.assert_array_equal(read_idx(tmp_path / "train-labels-idx1-ubyte.gz"), labels)


@pytest.mark.parametrize(
    "name, raw, match",
    [
        ("t10k-images-idx3-ubyte.gz", lambda i, l: idx_images_bytes(i, magic=2049), r"bad magic number 2049 \(0x00000801\), expected 2051"),
        ("t10k-labels-idx1-ubyte.gz", lambda i, l: idx_labels_bytes(l, magic=2051), r"bad magic number 2051 .*expected 2049"),
        ("t10k-images-idx3-ubyte.gz", lambda i, l: idx_images_bytes(i, count=len(i) + 1), "header announces 21 images"),
        ("t10k-labels-idx1-ubyte.gz", lambda i, l: idx_labels_bytes(l, count=len(l) - 1), "header announces 19 labels"),
        ("t10k-images-idx3-ubyte.gz", lambda i, l: idx_images_bytes(i)[:10], "IDX header truncated"),
        ("t10k-images-idx3-ubyte.gz", lambda i, l: idx_images_bytes(i[:, :27, :]), "images are 27x28, expected 28x28"),
        ("t10k-labels-idx1-ubyte.gz", lambda i, l: idx_labels_bytes(np.r_[l[:-1], 10]), "label 10 out of range"),
    ],
)
def test_corrupt_idx_rejected(tmp_path, name, raw, match):
    imgs, labels = fixture_arrays()["test"]
    path = tmp_path / name
    path.write_bytes(gzip.compress(raw(imgs, labels)))
    with pytest.raises(CorruptDataError, match=match):
        read_idx(path)


def test_truncated_gzip_rejected(tmp_path):
    imgs, _ = fixture_arrays()["test"]
    data = gzip.compress(idx_images_bytes(imgs))
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDataError, match="truncated or unreadable gzip"):
        read_idx(path)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(CorruptDataError, match="truncated or unreadable gzip"):
        read_idx(path)


def test_content_check_demands_official_count_and_md5(tmp_path):
    official = write_mnist(tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(CorruptDataError, match="wrong record count: 20, expected 10000"):
        check_file(path)  # the real OFFICIAL table
    check_file(path, official)
    wrong = dict(official, **{path.name: (N_TEST, "0" * 32)})
    with pytest.raises(CorruptDataError, match="MD5 .* expected the canonical 0000"):
        check_file(path, wrong)
    # re-compressing does not matter: the MD5 is of the uncompressed IDX bytes
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1, mtime=123))
    check_file(path, official)
    assert OFFICIAL["train-images-idx3-ubyte.gz"] == (60000, "6bbc9ace898e44ae57da46a324031adb")
    assert OFFICIAL["t10k-labels-idx1-ubyte.gz"] == (10000, "27ae3e4e09519cfbb04c329615203637")


# -- transform ----------------------------------------------------------------------------
def test_transform_hand_built():
    events, elapsed, mask = transform(hand_images())
    assert events.shape == elapsed.shape == mask.shape == (6, 256)

    def first(i, n):
        assert mask[i, :n].all() and not mask[i, n:].any(), i
        assert not events[i, n:].any() and not elapsed[i, n:].any()
        return events[i, :n].tolist(), elapsed[i, :n].tolist()

    assert first(0, 1) == ([0], [1])  # all zeros: the first pixel emits, the final run does not
    assert first(1, 1) == ([1], [1])
    assert first(2, 3) == ([0, 1, 0], [1, 3, 2])
    assert first(3, 2) == ([1, 0], [1, 1])  # 129 > 128 -> 1; 128 -> 0
    ev, el = first(4, 256)  # 784 alternations: stop at 256 events
    assert ev == [1, 0] * 128 and el == [1] * 256
    assert first(5, 2) == ([0, 1], [1, 783])


def test_transform_equals_authors_loop():
    imgs = np.concatenate([fixture_arrays()["train"][0], fixture_arrays()["test"][0]])
    for pad_size, threshold in ((256, 128), (16, 128), (256, 50)):
        events, elapsed, mask = transform(imgs, threshold=threshold, pad_size=pad_size, chunk=7)  # chunking must not matter
        for i in range(len(imgs)):
            e, t, m = authors_transform_sample(imgs[i], pad_size, threshold)
            np.testing.assert_array_equal(events[i], e, err_msg=f"image {i}")
            np.testing.assert_array_equal(elapsed[i], t, err_msg=f"image {i}")
            np.testing.assert_array_equal(mask[i], m, err_msg=f"image {i}")


def test_transform_is_vectorised_fast():
    imgs = np.random.RandomState(1).randint(0, 256, size=(20000, 28, 28)).astype(np.uint8)  # ~390 events each
    start = time.perf_counter()
    _, _, mask = transform(imgs)
    assert time.perf_counter() - start < 5.0  # the per-pixel loop takes minutes
    assert mask.sum(axis=1).max() == 256


# -- the data module ----------------------------------------------------------------------
def test_declares_task():
    assert ETSMnistDataModule.task_kind is TaskKind.SEQUENCE_CLASSIFICATION
    assert ETSMnistDataModule.metric == "accuracy"
    assert (ETSMnistDataModule.n_features, ETSMnistDataModule.n_outputs, ETSMnistDataModule.readout) == (1, 10, "last")
    remotes = {r.name: r for r in ETSMnistDataModule.REMOTES}
    assert set(remotes) == set(FILES.values()) and all(r.subdir == "mnist" for r in remotes.values())
    r = remotes["train-images-idx3-ubyte.gz"]
    assert r.urls == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
        "http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz",
    )
    assert r.sha256 == ("0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",)  # SOURCES.md
    assert remotes["t10k-labels-idx1-ubyte.gz"].sha256 == ("b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",)


def test_fixture_batches(mnist_dir):
    dm = ETSMnistDataModule(data_dir=str(mnist_dir), mirror=None, download=False)
    dm.setup()
    got = arrays_of(dm)
    assert set(got) == {"train", "test"}  # paper: no validation set
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        imgs, labels = fixture_arrays()[split]
        events, elapsed, mask = transform(imgs)
        a = got[split]
        assert a["x"].shape == (n, 256, 1) and a["x"].dtype == np.float32
        assert a["dt"].shape == (n, 256) and a["dt"].dtype == np.float32
        assert a["step_mask"].shape == (n, 256) and a["step_mask"].dtype == bool
        assert a["y"].shape == (n,) and a["y"].dtype == np.int64
        np.testing.assert_array_equal(a["x"][..., 0], events)
        np.testing.assert_array_equal(a["dt"] * 256, elapsed)  # elapsed / 256 after loading
        np.testing.assert_array_equal(a["step_mask"], mask)
        np.testing.assert_array_equal(a["y"], labels)
    assert dm.fingerprint == fingerprint(flatten_splits(got))
    batch = next(iter(dm.test_dataloader()))
    assert batch.x.shape == (N_TEST, 256, 1) and batch.step_mask is not None


def test_clean_protocol_holds_out_a_seeded_tenth(mnist_dir):
    paper = ETSMnistDataModule(data_dir=str(mnist_dir), mirror=None, download=False)
    clean = ETSMnistDataModule(data_dir=str(mnist_dir), mirror=None, download=False, protocol="clean")
    paper.setup()
    clean.setup()
    assert clean.split_sizes() == {"train": N_TRAIN - 6, "val": 6, "test": N_TEST}
    p, c = arrays_of(paper), arrays_of(clean)
    np.testing.assert_array_equal(p["test"]["x"], c["test"]["x"])
    perm = np.random.RandomState(clean.val_seed).permutation(N_TRAIN)
    np.testing.assert_array_equal(c["val"]["y"], p["train"]["y"][np.sort(perm[:6])])
    np.testing.assert_array_equal(c["train"]["x"], p["train"]["x"][np.sort(perm[6:])])
    again = ETSMnistDataModule(data_dir=str(mnist_dir), mirror=None, download=False, protocol="clean")
    again.setup()
    assert again.fingerprint == clean.fingerprint != paper.fingerprint


def test_cache_reused_and_keyed_on_transform(mnist_dir, monkeypatch):
    import ctbench.data.etsmnist as ets

    calls = []
    real = ets.transform
    monkeypatch.setattr(ets, "transform", lambda *a, **k: calls.append(a[1:]) or real(*a, **k))
    a = ETSMnistDataModule(data_dir=str(mnist_dir), mirror=None, download=False)
    a.setup()
    assert len(calls) == 2  # train and test
    b = ETSMnistDataModule(data_dir=str(mnist_dir), mirror=None, download=False)
    b.setup()
    assert len(calls) == 2 and b.fingerprint == a.fingerprint
    meta = json.loads((mnist_dir / "mnist" / "processed" / "etsmnist-thr128-pad256.npz.json").read_text())
    assert (meta["key"]["threshold"], meta["key"]["pad_size"]) == (128, 256)
    assert set(meta["key"]["source_sha256"]) == set(FILES.values())
    c = ETSMnistDataModule(data_dir=str(mnist_dir), mirror=None, download=False, pad_size=64)
    c.setup()
    assert len(calls) == 4 and c.splits["train"].tensors["x"].shape[1:] == (64, 1)
    d = ETSMnistDataModule(data_dir=str(mnist_dir), mirror=None, download=False, threshold=100)
    d.setup()
    assert len(calls) == 6 and d.fingerprint != a.fingerprint


def test_image_label_count_mismatch(mnist_dir, monkeypatch):
    labels = fixture_arrays()["test"][1][:-1]
    raw = idx_labels_bytes(labels)
    (mnist_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw))
    official = dict(ETSMnistDataModule.OFFICIAL, **{"t10k-labels-idx1-ubyte.gz": (N_TEST - 1, hashlib.md5(raw).hexdigest())})
    monkeypatch.setattr(ETSMnistDataModule, "OFFICIAL", official)
    with pytest.raises(CorruptDataError, match="holds 20 images but .* holds 19 labels"):
        ETSMnistDataModule(data_dir=str(mnist_dir), mirror=None, download=False).setup()


def test_corrupt_file_in_data_folder(mnist_dir):
    (mnist_dir / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_images_bytes(fixture_arrays()["test"][0], magic=7)))
    with pytest.raises(CorruptDataError, match="content check failed: bad magic number 7"):
        ETSMnistDataModule(data_dir=str(mnist_dir), mirror=None, download=False).setup()
    state, msg = ETSMnistDataModule.check(str(mnist_dir), None)
    assert state == "corrupt" and "bad magic number 7" in msg


def test_missing_file_names_urls_and_folder(tmp_path):
    dm = ETSMnistDataModule(data_dir=str(tmp_path / "data"), mirror=None, download=False)
    with pytest.raises(MissingDataError) as err:
        dm.setup()
    msg = str(err.value)
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in msg and "http://yann.lecun.com/exdb/mnist/" in msg
    assert str((tmp_path / "data" / "mnist").resolve()) in msg and "CTBENCH_DATA_MIRROR" in msg


def test_check_states_and_mirror(tmp_path, monkeypatch):
    state, msg = ETSMnistDataModule.check(str(tmp_path / "data"), None)
    assert state == "missing"
    official = write_mnist(tmp_path / "mirror" / "mnist")
    monkeypatch.setattr(ETSMnistDataModule, "OFFICIAL", official)
    state, msg = ETSMnistDataModule.check(str(tmp_path / "data"), str(tmp_path / "mirror"))
    assert state == "ready" and msg.count("content check ok") == 4
    dm = ETSMnistDataModule(data_dir=str(tmp_path / "data"), mirror=str(tmp_path / "mirror"), download=False)
    dm.setup()
    assert (tmp_path / "data" / "mnist" / "processed" / "etsmnist-thr128-pad256.npz").is_file()
    assert sorted(p.name for p in (tmp_path / "mirror" / "mnist").iterdir()) == sorted(FILES.values())


# -- configs ------------------------------------------------------------------------------
def test_conf_file_matches_module():
    cfg = yaml.safe_load((ROOT / "conf" / "data" / "etsmnist.yaml").read_text())
    assert cfg["_target_"] == "ctbench.data.etsmnist.ETSMnistDataModule"
    assert cfg["protocol"] == "${protocol.name}" and cfg["mirror"] == "${oc.env:CTBENCH_DATA_MIRROR,null}"
    assert (cfg["threshold"], cfg["pad_size"], cfg["batch_size"], cfg["val_fraction"]) == (128, 256, 128, 0.1)


@pytest.mark.parametrize("model", ["cfc", "cfc_nogate", "cfs", "cfc_mmrnn"])
def test_experiment_configs(model):
    """published_tables.md §11.2: one shared config from train_et_smnist.py."""
    from ctbench.config import compose

    cfg = compose(["data=etsmnist", f"model={model}"])
    assert cfg.experiment.name == f"etsmnist_{model}" and "table4" in cfg.experiment.tables
    c, o = cfg.model.cell, cfg.optim
    assert (c.hidden_size, c.backbone_units, c.backbone_layers, c.backbone_activation, c.backbone_dropout) == (64, 128, 1, "gelu", 0.0)
    assert (o.name, o.lr, o.decay_lr, o.clipnorm, o.weight_decay, o.eps, o.rho) == ("keras_rmsprop", 0.0005, 1.0, 0.0, 0.0, 1e-7, 0.9)
    assert cfg.data.batch_size == 128 and cfg.train.epochs == 200
    if model == "cfc_mmrnn":
        assert c.forget_bias == 3.0


def test_model_runs_one_batch(mnist_dir):
    import torch

    from ctbench.config import compose
    from ctbench.train import build_datamodule, build_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = compose(["data=etsmnist", "model=cfc", f"paths.data_dir={mnist_dir}", "data.mirror=null", "data.batch_size=8"])
        dm = build_datamodule(cfg)
        dm.setup()
        batch = next(iter(dm.train_dataloader()))
        with torch.no_grad():
            out = build_model(cfg, dm)(batch)
        assert out.shape == (8, 10) and torch.isfinite(out).all()
    finally:
        torch.set_num_threads(threads)


# -- the real files -----------------------------------------------------------------------
def shared_data() -> Path:
    return Path(os.environ.get("CTBENCH_DATA_MIRROR") or ROOT.parent / "shared" / "data")


#: fingerprint of the protocol=paper arrays (threshold 128, pad 256) the data module serves
ETSMNIST_PAPER_FINGERPRINT = "8dd1f140503289972a95063b9151c97a89e0183e5c3b5c2edb6afccaffac00db"


@pytest.mark.slow
def test_real_mnist_golden(tmp_path):
    from ctbench.data.reference_cache import REFERENCE_CACHE, load_reference

    mirror = shared_data()
    if not (mirror / "mnist" / FILES["test_images"]).is_file() or not REFERENCE_CACHE.in_mirror(mirror).is_file():
        pytest.skip(f"no real MNIST files or reference cache under {mirror}")
    state, msg = ETSMnistDataModule.check(str(tmp_path), str(mirror))
    assert state == "ready" and msg.count("sha256 ok") == 4
    for name in FILES.values():  # the repacked copies also pass the content check (count, canonical MD5)
        check_file(mirror / "mnist" / name)
    start = time.perf_counter()
    dm = ETSMnistDataModule(data_dir=str(tmp_path), mirror=str(mirror), download=False)
    dm.setup()
    print(f"real ET-sMNIST build (read + transform 70,000 images + cache): {time.perf_counter() - start:.2f} s")
    got = arrays_of(dm)
    ref = load_reference(mirror, ["test_mask", "test_y", "train_y"])
    assert got["train"]["x"].shape == (60000, 256, 1) and got["test"]["x"].shape == (10000, 256, 1)
    assert got["test"]["step_mask"].tobytes() == ref["test_mask"].tobytes()  # the authors' cache, exactly
    np.testing.assert_array_equal(got["test"]["y"], ref["test_y"])
    np.testing.assert_array_equal(got["train"]["y"], ref["train_y"])
    assert ref["test_y"].dtype == np.uint8 and got["test"]["y"].dtype == np.int64
    lengths = got["test"]["step_mask"].sum(axis=1)
    assert (lengths.min(), lengths.max()) == (21, 105)
    assert round(float(lengths.mean()), 1) == 52.9
    assert got["train"]["step_mask"].sum(axis=1).max() < 256  # no image reaches the cap
    assert float(got["test"]["dt"][got["test"]["step_mask"]].min()) == 1 / 256
    assert dm.fingerprint == ETSMNIST_PAPER_FINGERPRINT
    start = time.perf_counter()
    again = ETSMnistDataModule(data_dir=str(tmp_path), mirror=str(mirror), download=False)
    again.setup()
    print(f"real ET-sMNIST from the cache: {time.perf_counter() - start:.2f} s")
    assert again.fingerprint == ETSMNIST_PAPER_FINGERPRINT


# -- the published table (Nature Table 4, partially known) --------------------------------
def test_table4_only_known_cells():
    from ctbench.published import load_table, resolve_id

    t = load_table("table4")
    assert (t.id, t.alias, t.status, t.metric, t.direction, t.data) == ("table4", None, "partial", "accuracy", "higher", "etsmnist")
    assert t.pm_kind == "unknown" and resolve_id("4") == "table4"
    known = {r.name: r.mean for r in t.rows if r.mean is not None}
    assert known == {"CfC-mmRNN (ours)": 98.09, "CfC-noGate (ours)": 96.99, "ODE-LSTM": 95.73}  # published_tables.md §5
    assert all(r.std is None and r.time_min is None and not r.bold for r in t.rows)  # every ± and time unknown
    assert {r.name: r.model for r in t.rows if r.model} == {
        "Cf-S (ours)": "cfs", "CfC-noGate (ours)": "cfc_nogate", "CfC (ours)": "cfc", "CfC-mmRNN (ours)": "cfc_mmrnn",
    }
    assert t.row("ODE-LSTM").source == "borrowed" and t.row("CfC-mmRNN (ours)").source == "self"
