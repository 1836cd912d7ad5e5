"""The shared download / verify / cache code: hashes, fingerprints, locate() order, real HTTP
downloads from a local server, and the processed-array cache."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from ctbench.data import archive
from ctbench.data.archive import (
    CorruptDataError,
    DataError,
    MissingDataError,
    RemoteFile,
    check_remotes,
    fingerprint,
    flatten_splits,
    load_or_build,
    locate,
    sha256_file,
    unflatten_splits,
)
from ctbench.data.walker2d import Walker2dDataModule, check_archive
from test_walker2d import walker_zip_bytes

WALKER = Walker2dDataModule.REMOTE


# -- a local HTTP server -----------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        body, kind = route
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        if kind == "truncated":  # announce the full size, send half, hang up
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    """(base url, routes dict) of a threaded HTTP server on 127.0.0.1; routes: path -> (bytes, kind)."""
    routes: dict = {}
    handler = type("Handler", (_Handler,), {"routes": routes})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def walker_remote(*urls: str) -> RemoteFile:
    return RemoteFile(WALKER.name, WALKER.subdir, urls=urls, sha256=WALKER.sha256)


def leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# -- hashes and fingerprints -------------------------------------------------------------
def test_sha256_file(tmp_path):
    data = np.random.RandomState(0).bytes(3 * 2**20 + 17)  # spans several read chunks
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_fingerprint_sees_names_dtypes_shapes_and_bytes():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    base = fingerprint({"a": a, "b": np.ones(2)})
    assert base == fingerprint({"b": np.ones(2), "a": a.copy()})  # insertion order irrelevant
    assert base == fingerprint({"b": np.ones(2), "a": np.asfortranarray(a)})  # memory layout irrelevant
    variants = [
        {"c": a, "b": np.ones(2)},
        {"a": a.astype(np.float64), "b": np.ones(2)},
        {"a": a.reshape(4, 3), "b": np.ones(2)},
        {"a": a + np.float32(1e-6) * (np.arange(12).reshape(3, 4) == 5), "b": np.ones(2)},
        {"a": a},
    ]
    fps = {fingerprint(v) for v in variants}
    assert base not in fps and len(fps) == len(variants)


def test_flatten_roundtrip():
    splits = {"train": {"x": np.zeros(2), "dt": np.ones(2)}, "test": {"x": np.ones(1)}}
    flat = flatten_splits(splits)
    assert set(flat) == {"train.x", "train.dt", "test.x"}
    assert unflatten_splits(flat).keys() == splits.keys()


def test_error_hierarchy():
    assert issubclass(MissingDataError, DataError) and issubclass(CorruptDataError, DataError)


# -- locate: mirror, data folder, checks -------------------------------------------------
def test_known_hash_accepted_without_content_check(tmp_path):
    payload = b"hello"
    remote = RemoteFile("f.bin", "ds", urls=("https://example.invalid/f.bin",), sha256=(hashlib.sha256(payload).hexdigest(),))
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "f.bin").write_bytes(payload)
    assert locate(remote, tmp_path, download=False) == tmp_path / "ds" / "f.bin"
    (tmp_path / "ds" / "f.bin").write_bytes(b"hellO")
    with pytest.raises(CorruptDataError, match="hash mismatch"):
        locate(remote, tmp_path, download=False)


def test_mirror_before_data_folder(tmp_path):
    for root in ("mirror", "data"):
        (tmp_path / root / "walker2d").mkdir(parents=True)
        (tmp_path / root / "walker2d" / "walker.zip").write_bytes(walker_zip_bytes())
    got = locate(WALKER, tmp_path / "data", mirror=tmp_path / "mirror", download=False, content_check=check_archive)
    assert got == tmp_path / "mirror" / "walker2d" / "walker.zip"
    got = locate(WALKER, tmp_path / "data", mirror=None, download=False, content_check=check_archive)
    assert got == tmp_path / "data" / "walker2d" / "walker.zip"


def test_missing_without_download(tmp_path):
    with pytest.raises(MissingDataError) as err:
        locate(WALKER, tmp_path / "data", mirror=tmp_path / "mirror", download=False)
    msg = str(err.value)
    assert all(u in msg for u in WALKER.urls)
    assert str((tmp_path / "data" / "walker2d").resolve()) in msg
    assert str(tmp_path / "mirror" / "walker2d" / "walker.zip") in msg and "CTBENCH_DATA_MIRROR" in msg
    assert "downloads are disabled" in msg


def test_corrupt_local_file_names_the_failed_check(tmp_path):
    (tmp_path / "walker2d").mkdir()
    (tmp_path / "walker2d" / "walker.zip").write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(CorruptDataError) as err:
        locate(WALKER, tmp_path, download=True, content_check=check_archive)
    msg = str(err.value)
    assert "matches none of the known hashes" in msg and "truncated or unreadable zip" in msg


def test_check_remotes_states(tmp_path):
    assert check_remotes((), tmp_path) == ("ready", "(generated)")
    state, msg = check_remotes((WALKER,), tmp_path, content_check=lambda r, p: check_archive(p))
    assert state == "missing" and WALKER.urls[0] in msg


# -- downloads through a real HTTP server ------------------------------------------------
def test_download_falls_through_404_and_lands_atomically(tmp_path, server, monkeypatch):
    base, routes = server
    routes["/good/walker.zip"] = (walker_zip_bytes(), "ok")
    renames = []
    real_replace = archive.os.replace
    monkeypatch.setattr(archive.os, "replace", lambda a, b: renames.append((Path(a), Path(b))) or real_replace(a, b))
    remote = walker_remote(f"{base}/missing/walker.zip", f"{base}/good/walker.zip")
    got = locate(remote, tmp_path / "data", content_check=check_archive)
    target = tmp_path / "data" / "walker2d" / "walker.zip"
    assert got == target and target.read_bytes() == walker_zip_bytes()
    assert leftovers(target.parent) == ["walker.zip"]  # no temporary file left behind
    (src, dst), = renames  # one rename, from a temporary file in the same folder
    assert dst == target and src.parent == target.parent and src.name != target.name
    # now present: found locally, no second download
    routes.clear()
    assert locate(remote, tmp_path / "data", content_check=check_archive) == target


def test_all_urls_fail_names_each_attempt(tmp_path, server):
    base, _ = server
    remote = walker_remote(f"{base}/a/walker.zip", "http://127.0.0.1:9/walker.zip")
    with pytest.raises(MissingDataError) as err:
        locate(remote, tmp_path / "data", content_check=check_archive, timeout=5)
    msg = str(err.value)
    assert f"{base}/a/walker.zip: HTTP 404" in msg and "http://127.0.0.1:9/walker.zip: cannot connect" in msg
    assert str((tmp_path / "data" / "walker2d").resolve()) in msg
    assert leftovers(tmp_path / "data" / "walker2d") == []


def test_cut_download_leaves_nothing(tmp_path, server):
    base, routes = server
    routes["/walker.zip"] = (walker_zip_bytes(), "truncated")
    with pytest.raises(DataError):
        locate(walker_remote(f"{base}/walker.zip"), tmp_path / "data", content_check=check_archive, timeout=10)
    assert leftovers(tmp_path / "data" / "walker2d") == []


def test_bad_download_rejected_and_removed(tmp_path, server):
    base, routes = server
    data = walker_zip_bytes()
    routes["/walker.zip"] = (data[: len(data) // 2], "ok")  # consistent length, broken content
    with pytest.raises(CorruptDataError) as err:
        locate(walker_remote(f"{base}/walker.zip"), tmp_path / "data", content_check=check_archive)
    assert "downloaded but rejected" in str(err.value) and "truncated or unreadable zip" in str(err.value)
    assert leftovers(tmp_path / "data" / "walker2d") == []


def test_data_module_downloads(tmp_path, server, monkeypatch):
    base, routes = server
    routes["/walker.zip"] = (walker_zip_bytes(), "ok")
    monkeypatch.setattr(Walker2dDataModule, "REMOTE", walker_remote(f"{base}/nothing.zip", f"{base}/walker.zip"))
    monkeypatch.setattr(Walker2dDataModule, "REMOTES", (Walker2dDataModule.REMOTE,))
    dm = Walker2dDataModule(data_dir=str(tmp_path / "data"), mirror=None)
    dm.prepare_data()
    dm.setup()
    assert (tmp_path / "data" / "walker2d" / "walker.zip").is_file()
    assert dm.split_sizes()["test"] > 0


# -- processed-array cache ---------------------------------------------------------------
def test_cache_reuse_rebuild_and_tamper(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"train.x": np.arange(6, dtype=np.float32).reshape(2, 3) * len(calls), "train.dt": np.ones(2, np.float32)}

    path = tmp_path / "cache" / "ds.npz"
    key = {"version": 1, "source_sha256": "ab" * 32, "seq_len": 64}
    first = load_or_build(path, key, build)
    assert len(calls) == 1 and path.is_file()
    meta = json.loads(archive.sidecar_path(path).read_text())
    assert meta["key"] == key and meta["fingerprint"] == fingerprint(first)
    assert leftovers(path.parent) == ["ds.npz", "ds.npz.json"]

    again = load_or_build(path, dict(reversed(list(key.items()))), build)  # same key, other order
    assert len(calls) == 1 and fingerprint(again) == fingerprint(first)

    changed = load_or_build(path, {**key, "seq_len": 32}, build)
    assert len(calls) == 2 and not np.array_equal(changed["train.x"], first["train.x"])
    assert json.loads(archive.sidecar_path(path).read_text())["key"]["seq_len"] == 32

    # arrays that no longer match the recorded fingerprint are rebuilt
    np.savez(path, **{"train.x": np.zeros((2, 3), np.float32), "train.dt": np.ones(2, np.float32)})
    load_or_build(path, {**key, "seq_len": 32}, build)
    assert len(calls) == 3
    # an unreadable cache is rebuilt, not fatal
    path.write_bytes(b"garbage")
    load_or_build(path, {**key, "seq_len": 32}, build)
    assert len(calls) == 4
    # a missing sidecar means unknown provenance: rebuilt
    archive.sidecar_path(path).unlink()
    load_or_build(path, {**key, "seq_len": 32}, build)
    assert len(calls) == 5


def test_cache_failed_build_leaves_nothing(tmp_path):
    def build():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        load_or_build(tmp_path / "ds.npz", {"v": 1}, build)
    assert leftovers(tmp_path) == []
