"""Walker2d: the authors' split / thinning / windowing on a small walker.zip in the real format,
archive checks, the CLI, and (slow) the real archive from ../shared/data."""

from __future__ import annotations

import functools
import io
import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ctbench.data.archive import CorruptDataError, MissingDataError, fingerprint, flatten_splits
from ctbench.data.batch import TaskKind
from ctbench.data.walker2d import Walker2dDataModule

N_FILES = 400


# -- fixture: a walker.zip in the real layout -------------------------------------------
def make_rollouts(seed: int = 0, n: int = N_FILES) -> dict:
    """n rollouts (T, 17) float64 with T in [70, 200]; column 0 = file index, column 1 = row index."""
    rng = np.random.RandomState(seed)
    out = {}
    for i in range(n):
        t = rng.randint(70, 201)
        arr = rng.randn(t, 17)
        arr[:, 0] = i
        arr[:, 1] = np.arange(t)
        out[f"rollout_{i:03d}.npy"] = arr
    return out


@functools.lru_cache(maxsize=None)
def walker_zip_bytes(n: int = N_FILES, columns: int = 17) -> bytes:
    """The bytes of a walker.zip like upstream's: a ``walker/`` folder entry and n .npy members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("walker/", b"")
        names = sorted(make_rollouts(n=N_FILES))
        order = np.random.RandomState(1).permutation(len(names))  # member order must not matter
        rollouts = make_rollouts(n=N_FILES)
        for k in order[:n]:
            npy = io.BytesIO()
            np.save(npy, rollouts[names[k]][:, :columns])
            zf.writestr(f"walker/{names[k]}", npy.getvalue())
    return buf.getvalue()


def write_walker_zip(folder: Path, n: int = N_FILES, columns: int = 17) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "walker.zip"
    path.write_bytes(walker_zip_bytes(n, columns))
    return path


def reference_walker(rollouts: dict, seq_len: int = 64):
    """The authors' loader written out step by step (loops, one rng.rand() per raw step)."""
    files = sorted(rollouts)
    rng = np.random.RandomState(891374)
    np.random.RandomState(125487).shuffle(files)
    test_n, valid_n = int(0.15 * len(files)), int((0.15 + 0.1) * len(files))
    split_files = {"train": files[valid_n:], "val": files[test_n:valid_n], "test": files[:test_n]}
    out = {}
    for split in ("train", "val", "test"):
        xs, ts, ys = [], [], []
        for f in split_files[split]:
            arr = rollouts[f]
            x, y = arr[:-1].astype(np.float32), arr[1:].astype(np.float32)
            new_x, new_t, new_y, skip = [], [], [], 0
            for t in range(y.shape[0]):
                skip += 1
                if rng.rand() < 0.9:
                    new_x.append(x[t]); new_t.append(skip); new_y.append(y[t]); skip = 0  # noqa: E702
            new_x, new_t, new_y = np.stack(new_x), np.stack(new_t), np.stack(new_y)
            for t in range(0, new_y.shape[0] - seq_len, seq_len // 4):
                xs.append(new_x[t:t + seq_len]); ts.append(new_t[t:t + seq_len]); ys.append(new_y[t:t + seq_len])  # noqa: E702
        out[split] = (np.stack(xs), np.stack(ts).astype(np.float32), np.stack(ys))
    return split_files, out


@functools.lru_cache(maxsize=None)
def reference_on_fixture():
    return reference_walker(make_rollouts())


@pytest.fixture()
def walker_dir(tmp_path):
    """A data folder holding data/walker2d/walker.zip."""
    write_walker_zip(tmp_path / "data" / "walker2d")
    return tmp_path / "data"


def arrays_of(dm) -> dict:
    return {s: {k: t.numpy() for k, t in ds.tensors.items()} for s, ds in dm.splits.items()}


# -- the protocol on the fixture ---------------------------------------------------------
def test_declares_task():
    assert Walker2dDataModule.task_kind is TaskKind.PER_STEP_REGRESSION
    assert Walker2dDataModule.metric == "mse"
    assert (Walker2dDataModule.n_features, Walker2dDataModule.n_outputs) == (17, 17)
    urls = Walker2dDataModule.REMOTE.urls
    assert urls[0] == "https://people.csail.mit.edu/mlechner/datasets/walker.zip"
    assert urls[-1] == "https://pub.ist.ac.at/~mlechner/datasets/walker.zip"  # dead: last
    assert all(u.startswith("https://") for u in urls) and len(urls) == 3
    assert Walker2dDataModule.REMOTE.sha256 == ("3013485315ba26e9b061d4d600db087448a53c679f14f66cfab071d85b0629dd",)


@pytest.mark.parametrize("protocol", ["paper", "clean"])
def test_fixture_matches_authors_loader(walker_dir, protocol):
    dm = Walker2dDataModule(data_dir=str(walker_dir), mirror=None, download=False, protocol=protocol)
    dm.setup()
    _, ref = reference_on_fixture()
    got = arrays_of(dm)
    assert set(got) == {"train", "val", "test"}  # val under both protocols
    for split in ("train", "val", "test"):
        rx, rt, ry = ref[split]
        assert got[split]["x"].dtype == got[split]["dt"].dtype == got[split]["y"].dtype == np.float32
        np.testing.assert_array_equal(got[split]["x"], rx)
        np.testing.assert_array_equal(got[split]["dt"], rt)
        np.testing.assert_array_equal(got[split]["y"], ry)
    assert dm.split_sizes() == {s: len(ref[s][0]) for s in ("train", "val", "test")}
    assert dm.fingerprint == fingerprint(flatten_splits(got))


def test_fixture_split_windows_and_times(walker_dir):
    dm = Walker2dDataModule(data_dir=str(walker_dir), mirror=None, download=False)
    dm.setup()
    got = arrays_of(dm)
    rollouts = make_rollouts()

    # files: 300 / 40 / 60, disjoint, test first in the RandomState(125487) shuffle
    files = sorted(rollouts)
    np.random.RandomState(125487).shuffle(files)
    expected = {"test": set(files[:60]), "val": set(files[60:100]), "train": set(files[100:])}
    assert [len(expected[s]) for s in ("train", "val", "test")] == [300, 40, 60]
    for split, arrays in got.items():
        x, dt, y = arrays["x"], arrays["dt"], arrays["y"]
        n = len(x)
        assert x.shape == (n, 64, 17) and y.shape == (n, 64, 17) and dt.shape == (n, 64)
        assert n > 0
        file_ids = x[:, :, 0]
        assert (file_ids == file_ids[:, :1]).all(), "a window crosses files"
        names = {f"rollout_{int(i):03d}.npy" for i in file_ids[:, 0]}
        assert names <= expected[split], f"{split} windows come from files of another split"
        # times: integral, >= 1, and exactly the raw-step gap between kept steps
        assert (dt >= 1).all() and (dt == np.round(dt)).all()
        raw_step = x[:, :, 1]
        np.testing.assert_array_equal(dt[:, 1:], np.diff(raw_step, axis=1))
        # targets: the raw next row of each kept step
        np.testing.assert_array_equal(y[:, :, 1], raw_step + 1)
        np.testing.assert_array_equal(y[:, :, 0], file_ids)
        for w in (0, n // 2, n - 1):
            fid = int(file_ids[w, 0])
            raw = rollouts[f"rollout_{fid:03d}.npy"].astype(np.float32)
            rows = raw_step[w].astype(int)
            np.testing.assert_array_equal(x[w], raw[rows])
            np.testing.assert_array_equal(y[w], raw[rows + 1])
        # windows of one file: starts 0, 16, 32 ... of the thinned sequence (stride 16)
        for fid in np.unique(file_ids[:, 0])[:5]:
            w = np.flatnonzero(file_ids[:, 0] == fid)
            np.testing.assert_array_equal(x[w[1:], 0], x[w[:-1], 16])
    # about 10% of raw steps dropped
    all_dt = np.concatenate([a["dt"].ravel() for a in got.values()])
    assert 1.08 < all_dt.mean() < 1.14


def test_first_window_time_is_index_plus_one(walker_dir):
    dm = Walker2dDataModule(data_dir=str(walker_dir), mirror=None, download=False)
    dm.setup()
    x, dt = dm.splits["train"].tensors["x"].numpy(), dm.splits["train"].tensors["dt"].numpy()
    first = np.flatnonzero(np.r_[True, x[1:, 0, 0] != x[:-1, 0, 0]])  # first window of each file
    np.testing.assert_array_equal(dt[first, 0], x[first, 0, 1] + 1)
    assert (x[first, 0, 1] > 0).any()  # some file drops its first raw step(s)


def test_batches_from_loader(walker_dir):
    dm = Walker2dDataModule(data_dir=str(walker_dir), mirror=None, download=False, batch_size=32)
    batch = next(iter(dm.train_dataloader()))
    assert batch.x.shape == (32, 64, 17) and batch.dt.shape == (32, 64) and batch.y.shape == (32, 64, 17)
    assert batch.step_mask is None and batch.obs_mask is None


# -- archive checks ----------------------------------------------------------------------
def test_missing_archive_names_urls_and_folder(tmp_path):
    dm = Walker2dDataModule(data_dir=str(tmp_path / "data"), mirror=None, download=False)
    with pytest.raises(MissingDataError) as err:
        dm.setup()
    msg = str(err.value)
    for url in Walker2dDataModule.REMOTE.urls:
        assert url in msg
    assert str((tmp_path / "data" / "walker2d").resolve()) in msg
    assert "CTBENCH_DATA_MIRROR" in msg and "walker.zip" in msg


def test_truncated_zip_is_corrupt(tmp_path):
    data = walker_zip_bytes()
    (tmp_path / "walker2d").mkdir()
    (tmp_path / "walker2d" / "walker.zip").write_bytes(data[: len(data) // 2])
    dm = Walker2dDataModule(data_dir=str(tmp_path), mirror=None, download=False)
    with pytest.raises(CorruptDataError, match="truncated or unreadable zip"):
        dm.setup()


def test_damaged_member_is_corrupt(tmp_path):
    data = bytearray(walker_zip_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(64)  # inside some member's compressed data; the directory survives
    (tmp_path / "walker2d").mkdir()
    (tmp_path / "walker2d" / "walker.zip").write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="content check failed: member walker/rollout_"):
        Walker2dDataModule(data_dir=str(tmp_path), mirror=None, download=False).setup()


def test_399_members_rejected(tmp_path):
    write_walker_zip(tmp_path / "walker2d", n=399)
    with pytest.raises(CorruptDataError, match="wrong member count.*found 399"):
        Walker2dDataModule(data_dir=str(tmp_path), mirror=None, download=False).setup()


def test_wrong_width_rejected(tmp_path):
    write_walker_zip(tmp_path / "walker2d", columns=16)
    with pytest.raises(CorruptDataError, match=r"shape \(\d+, 16\), expected \(T, 17\)"):
        Walker2dDataModule(data_dir=str(tmp_path), mirror=None, download=False).setup()


def test_mirror_preferred(tmp_path, monkeypatch):
    import ctbench.data.archive as archive

    def no_download(*a, **k):
        raise AssertionError("downloaded although the mirror has the file")

    monkeypatch.setattr(archive, "_download", no_download)
    mirror = tmp_path / "mirror"
    write_walker_zip(mirror / "walker2d")
    (tmp_path / "data" / "walker2d").mkdir(parents=True)
    (tmp_path / "data" / "walker2d" / "walker.zip").write_bytes(b"not a zip")  # would fail if read
    dm = Walker2dDataModule(data_dir=str(tmp_path / "data"), mirror=str(mirror), download=True)
    assert dm.locate(dm.REMOTE) == mirror / "walker2d" / "walker.zip"
    dm.setup()
    assert dm.split_sizes()["val"] > 0
    # the processed cache goes to the data folder, never to the (maybe read-only) mirror
    assert (tmp_path / "data" / "walker2d" / "processed" / "walker2d.npz").is_file()
    assert sorted(p.name for p in (mirror / "walker2d").iterdir()) == ["walker.zip"]


def test_mirror_from_environment(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    write_walker_zip(mirror / "walker2d")
    monkeypatch.setenv("CTBENCH_DATA_MIRROR", str(mirror))
    dm = Walker2dDataModule(data_dir=str(tmp_path / "data"), download=False)
    assert dm.locate(dm.REMOTE) == mirror / "walker2d" / "walker.zip"


def test_check_states(tmp_path):
    state, msg = Walker2dDataModule.check(str(tmp_path / "data"), None)
    assert state == "missing" and Walker2dDataModule.REMOTE.urls[0] in msg
    write_walker_zip(tmp_path / "data" / "walker2d")
    state, msg = Walker2dDataModule.check(str(tmp_path / "data"), None)
    assert state == "ready" and "content check ok" in msg
    write_walker_zip(tmp_path / "data" / "walker2d", n=399)
    state, msg = Walker2dDataModule.check(str(tmp_path / "data"), None)
    assert state == "corrupt" and "wrong member count" in msg


def test_cache_reused_and_rebuilt(walker_dir, monkeypatch):
    import ctbench.data.walker2d as walker

    calls = []
    real = walker.process
    monkeypatch.setattr(walker, "process", lambda *a, **k: calls.append(k) or real(*a, **k))
    a = Walker2dDataModule(data_dir=str(walker_dir), mirror=None, download=False)
    a.setup()
    b = Walker2dDataModule(data_dir=str(walker_dir), mirror=None, download=False)
    b.setup()
    assert len(calls) == 1 and a.fingerprint == b.fingerprint
    meta = json.loads((walker_dir / "walker2d" / "processed" / "walker2d.npz.json").read_text())
    assert meta["fingerprint"] == a.fingerprint and meta["key"]["seq_len"] == 64
    c = Walker2dDataModule(data_dir=str(walker_dir), mirror=None, download=False, seq_len=32)
    c.setup()
    assert len(calls) == 2 and c.splits["train"].tensors["x"].shape[1:] == (32, 17)
    assert c.fingerprint != a.fingerprint


# -- CLI ---------------------------------------------------------------------------------
@pytest.fixture()
def conf(tmp_path, monkeypatch):
    conf = tmp_path / "conf" / "data"
    conf.mkdir(parents=True)
    repo_conf = Path(__file__).resolve().parents[1] / "conf" / "data" / "walker2d.yaml"
    (conf / "walker2d.yaml").write_text(repo_conf.read_text())
    (conf / "generated.yaml").write_text("_target_: ctbench.data.base.SequenceDataModule\nname: generated\n")
    monkeypatch.setenv("CTBENCH_CONF", str(tmp_path / "conf"))
    monkeypatch.delenv("CTBENCH_DATA_MIRROR", raising=False)
    return tmp_path


def test_cli_list(conf, capsys):
    from ctbench.cli import main

    data = conf / "data"
    assert main(["data", "list", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "generated  ready (generated)" in out
    assert "walker2d   missing" in out and Walker2dDataModule.REMOTE.urls[1] in out
    assert str((data / "walker2d").resolve()) in out

    write_walker_zip(data / "walker2d", n=399)
    assert main(["data", "list", "--data-dir", str(data)]) == 1
    assert "walker2d   corrupt" in capsys.readouterr().out

    mirror = conf / "mirror"
    write_walker_zip(mirror / "walker2d")
    assert main(["data", "list", "--data-dir", str(conf / "empty"), "--mirror", str(mirror)]) == 0
    assert "walker2d   ready" in capsys.readouterr().out


def test_cli_prepare(conf, capsys):
    from ctbench.cli import main

    mirror = conf / "mirror"
    write_walker_zip(mirror / "walker2d")
    assert main(["data", "prepare", "walker2d", "--data-dir", str(conf / "data"), "--mirror", str(mirror)]) == 0
    assert "[walker2d] ready: train" in capsys.readouterr().out
    assert (conf / "data" / "walker2d" / "processed" / "walker2d.npz").is_file()
    assert main(["data", "prepare", "nope", "--data-dir", str(conf / "data")]) == 2


def test_conf_file_matches_module():
    import yaml

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "conf" / "data" / "walker2d.yaml").read_text())
    assert cfg["_target_"] == "ctbench.data.walker2d.Walker2dDataModule"
    assert cfg["data_dir"] == "${paths.data_dir}" and cfg["protocol"] == "${protocol.name}"
    assert cfg["mirror"] == "${oc.env:CTBENCH_DATA_MIRROR,null}"
    assert (cfg["batch_size"], cfg["eval_batch_size"]) == (128, 1024)
    assert (cfg["split_seed"], cfg["sampling_seed"]) == (125487, 891374)


# -- the real archive --------------------------------------------------------------------
def shared_data() -> Path:
    return Path(os.environ.get("CTBENCH_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "data")  # <repo>/../shared/data


REAL_FINGERPRINT = "208e3e7b1a14c36ef2745c4bc47568e2e346b8bd68f027efe82758e846c6c88a"


@pytest.mark.slow
def test_real_walker(tmp_path):
    mirror = shared_data()
    if not (mirror / "walker2d" / "walker.zip").is_file():
        pytest.skip(f"no real walker.zip under {mirror}")
    assert Walker2dDataModule.check(str(tmp_path), str(mirror))[0] == "ready"
    start = time.perf_counter()
    dm = Walker2dDataModule(data_dir=str(tmp_path), mirror=str(mirror), download=False)
    dm.setup()
    print(f"real walker2d build: {time.perf_counter() - start:.2f} s")
    got = arrays_of(dm)
    assert got["train"]["x"].shape == (9684, 64, 17)
    assert got["val"]["x"].shape == (1272, 64, 17)
    assert got["test"]["x"].shape == (1937, 64, 17)
    for split in got:
        assert got[split]["y"].shape == got[split]["x"].shape
        assert got[split]["dt"].shape == got[split]["x"].shape[:2]
    assert dm.fingerprint == REAL_FINGERPRINT
    # golden statistics (total elapsed time = kept raw steps, per split)
    assert [float(got[s]["dt"].sum(dtype=np.float64)) for s in ("train", "val", "test")] == [689148.0, 90842.0, 137806.0]
    assert [float(got[s]["dt"].max()) for s in ("train", "val", "test")] == [5.0, 5.0, 6.0]
    assert min(float(got[s]["dt"].min()) for s in got) == 1.0
    np.testing.assert_allclose(got["train"]["x"].sum(dtype=np.float64), 1520128.524496567, rtol=1e-9)
    np.testing.assert_allclose(got["test"]["y"].sum(dtype=np.float64), 314148.68460457795, rtol=1e-9)
    assert np.abs(got["train"]["x"][..., 8:]).max() <= 10.0  # velocities clipped to +-10
    # second setup: from the cache, same fingerprint
    again = Walker2dDataModule(data_dir=str(tmp_path), mirror=str(mirror), download=False)
    again.setup()
    assert again.fingerprint == REAL_FINGERPRINT
