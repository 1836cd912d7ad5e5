"""Lane keeping from camera frames (CfC paper, Extended Data Figs 9 and 10): per-step steering regression.

The paper's data (3 h of front-camera driving, ~200 GB) are not public (``protocols.md`` §2.7),
so this module offers two sources, chosen by ``source``:

``folder`` (default): user-supplied recordings, one folder per episode::

    <root>/<episode>/frames/<name>.png | <name>.npy    one frame per step, in file-name order
    <root>/<episode>/steering.csv                      header "timestamp,steering", one row per
                                                       frame, in the same order (seconds; any unit)

``.png`` frames are read as RGB; ``.npy`` frames hold (H, W, 3) or (H, W) arrays (uint8 0..255 or
float 0..1). Frames are resized to ``image_size`` (bilinear) and scaled to [0, 1]. The elapsed
time before step k is ``timestamp[k] − timestamp[k−1]``; the first step of an episode gets the
episode's median interval. Episodes (never windows) are split into train / val / test with a
seeded permutation (``val_fraction``, ``test_fraction``), then cut into windows of ``seq_len``
steps with ``stride``.

``highway_env``: **simulated, not comparable to the paper.** Demonstrations generated in
highway-env ``lane-keeping-v0`` (optional dependency: ``pip install highway-env``; tested with
highway-env 1.12.1, gymnasium 1.4.0, pygame-ce 2.5.8) by an expert proportional controller on the
lane-frame lateral offset and heading error, ``steering = clip(−(k_lat·lateral + k_head·heading
error), −1, 1)``, rendered offscreen as in ``protocols.md`` §2.7: the config passes
``{"offscreen_rendering": True}``, ``env.unwrapped.render_mode = "rgb_array"`` is set after
``gym.make`` (``gym.make(..., render_mode=...)`` raises a TypeError), and ``SDL_VIDEODRIVER`` is
never set to ``dummy`` (that silently yields all-zero frames; this module refuses to run with it).
Its frames are top-down views of a synthetic road, not front-camera images; dt = 1/policy
frequency. Generated episodes are cached under ``<data_dir>/lane_keeping/processed/``.

Batches: ``x`` is (B, T, C, H, W) float32 frames (``layout: frames``, what
``ctbench.models.lane_keeping.LaneKeepingNet`` takes) or (B, T, C·H·W) (``layout: flat``, the
generic (B, T, F) contract); ``dt`` (B, T); ``y`` (B, T, 1) steering. Task: per-step regression,
metric MSE. ``protocol`` does not change the data (a validation split always exists).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ctbench.data.archive import MissingDataError, CorruptDataError, flatten_splits, load_or_build_fingerprinted, unflatten_splits
from ctbench.data.base import Arrays, SequenceDataModule
from ctbench.data.batch import TaskKind

SOURCES = ("folder", "highway_env")
LAYOUTS = ("frames", "flat")
FRAME_SUFFIXES = (".png", ".npy")
#: bump whenever the processing below changes: it invalidates every cache
PROCESSING_VERSION = 1
SIMULATED_LABEL = "simulated (highway-env lane-keeping-v0), not comparable to the paper"
INSTALL_HINT = "pip install highway-env  (pulls gymnasium and pygame-ce)"

FOLDER_FORMAT = (
    "<root>/<episode>/frames/*.png|*.npy (one frame per step, file-name order) and "
    "<root>/<episode>/steering.csv with header 'timestamp,steering' (one row per frame)"
)

Episode = Tuple[np.ndarray, np.ndarray, np.ndarray]  # frames (N, C, H, W) float32, dt (N,), steering (N,)


# -- reading user recordings -------------------------------------------------------------
def _resize(img: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """(H, W, C) uint8/float → (C, h, w) float32 in [0, 1]."""
    from PIL import Image

    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.shape[-1] == 4:
        img = img[..., :3]
    if np.issubdtype(img.dtype, np.floating):
        img = np.clip(img * 255.0, 0, 255).astype(np.uint8)
    pil = Image.fromarray(img.astype(np.uint8))
    if pil.size != (size[1], size[0]):
        pil = pil.resize((size[1], size[0]), Image.BILINEAR)
    return (np.asarray(pil, dtype=np.float32) / 255.0).transpose(2, 0, 1)


def _read_frame(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            from PIL import Image

            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
    except Exception as err:  # noqa: BLE001 - any unreadable frame is corrupt data
        raise CorruptDataError(f"{path}: unreadable frame ({err})") from err
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4)):
        raise CorruptDataError(f"{path}: frame has shape {arr.shape}, expected (H, W), (H, W, 3) or (H, W, 4)")
    return arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr


def _read_steering(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"timestamp", "steering"} <= set(reader.fieldnames):
            raise CorruptDataError(f"{path}: expected a header with 'timestamp' and 'steering', got {reader.fieldnames}")
        try:
            rows = [(float(r["timestamp"]), float(r["steering"])) for r in reader]
        except (TypeError, ValueError) as err:
            raise CorruptDataError(f"{path}: non-numeric timestamp or steering ({err})") from err
    if not rows:
        raise CorruptDataError(f"{path}: no rows")
    ts, steer = (np.asarray(c, dtype=np.float64) for c in zip(*rows))
    if np.any(np.diff(ts) <= 0):
        raise CorruptDataError(f"{path}: timestamps must increase strictly")
    return ts, steer.astype(np.float32)


def elapsed_times(timestamps: np.ndarray) -> np.ndarray:
    """dt before each step: differences of the timestamps; the first step gets the median interval."""
    diffs = np.diff(timestamps)
    first = float(np.median(diffs)) if len(diffs) else 1.0
    return np.concatenate([[first], diffs]).astype(np.float32)


def read_episode(folder: Path, image_size: Tuple[int, int]) -> Episode:
    frames_dir, csv_path = folder / "frames", folder / "steering.csv"
    files = sorted(p for p in frames_dir.iterdir() if p.suffix in FRAME_SUFFIXES) if frames_dir.is_dir() else []
    if not files or not csv_path.is_file():
        raise MissingDataError(f"{folder}: episode lacks frames/ or steering.csv; expected {FOLDER_FORMAT}")
    ts, steer = _read_steering(csv_path)
    if len(ts) != len(files):
        raise CorruptDataError(f"{folder}: {len(files)} frames but {len(ts)} rows in steering.csv (one row per frame)")
    frames = np.stack([_resize(_read_frame(p), image_size) for p in files])
    return frames, elapsed_times(ts), steer


def find_episodes(root: Path) -> List[Path]:
    """Episode folders under ``root`` (those with a ``steering.csv``), sorted by name."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "steering.csv").is_file())


# -- highway-env demonstrations (simulated, not comparable to the paper) ------------------
def _import_highway_env():
    try:
        import gymnasium as gym
        import highway_env  # noqa: F401  (registers the environments)
    except ImportError as err:
        raise ImportError(f"source=highway_env needs the optional highway-env package: {INSTALL_HINT}") from err
    return gym


def expert_steering(env, k_lateral: float = 0.3, k_heading: float = 1.5) -> float:
    """Proportional controller on the lane-frame lateral offset and heading error, in [-1, 1]."""
    u = env.unwrapped
    lane, vehicle = u.lane, u.vehicle
    s, lateral = lane.local_coordinates(vehicle.position)
    heading_error = (vehicle.heading - lane.heading_at(s) + np.pi) % (2 * np.pi) - np.pi
    return float(np.clip(-(k_lateral * lateral + k_heading * heading_error), -1.0, 1.0))


def generate_highway_env(
    n_episodes: int,
    episode_steps: int,
    image_size: Tuple[int, int],
    seed: int = 0,
    k_lateral: float = 0.3,
    k_heading: float = 1.5,
) -> List[Episode]:
    """Expert demonstrations in ``lane-keeping-v0``, rendered offscreen (protocols.md §2.7)."""
    if os.environ.get("SDL_VIDEODRIVER") == "dummy":
        raise RuntimeError("SDL_VIDEODRIVER=dummy makes highway-env render all-zero frames: unset it "
                           "(offscreen rendering is requested through the env config)")
    gym = _import_highway_env()
    env = gym.make("lane-keeping-v0", config={"offscreen_rendering": True})
    env.unwrapped.render_mode = "rgb_array"  # gym.make(..., render_mode=...) raises a TypeError
    dt = 1.0 / float(env.unwrapped.config["policy_frequency"])
    episodes: List[Episode] = []
    try:
        for ep in range(n_episodes):
            env.reset(seed=seed + ep)
            frames, steer = [], []
            for _ in range(episode_steps):
                frame = env.render()
                a = expert_steering(env, k_lateral, k_heading)
                frames.append(_resize(np.asarray(frame), image_size))
                steer.append(a)
                _, _, terminated, truncated, _ = env.step(np.array([a], dtype=np.float32))
                if terminated or truncated:
                    break
            stack = np.stack(frames)
            if not stack.any():
                raise RuntimeError("highway-env rendered all-zero frames (is SDL_VIDEODRIVER=dummy set?)")
            episodes.append((stack, np.full(len(frames), dt, np.float32), np.asarray(steer, np.float32)))
    finally:
        env.close()
    return episodes


# -- windows and splits ------------------------------------------------------------------
def _windows(a: np.ndarray, seq_len: int, stride: int) -> np.ndarray:
    starts = np.arange(0, len(a) - seq_len + 1, stride)
    if len(starts) == 0:
        return np.zeros((0, seq_len) + a.shape[1:], a.dtype)
    return a[starts[:, None] + np.arange(seq_len)[None, :]]


def split_episodes(n: int, val_fraction: float, test_fraction: float, seed: int) -> Dict[str, np.ndarray]:
    """Seeded episode split; with at least 3 episodes every split gets at least one."""
    perm = np.random.RandomState(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction))) if n >= 3 else 0
    n_val = max(1, int(round(n * val_fraction))) if n >= 3 else 0
    return {"test": perm[:n_test], "val": perm[n_test:n_test + n_val], "train": perm[n_test + n_val:]}


def make_splits(episodes: Sequence[Episode], seq_len: int, stride: int, val_fraction: float,
                test_fraction: float, split_seed: int) -> Dict[str, Arrays]:
    idx = split_episodes(len(episodes), val_fraction, test_fraction, split_seed)
    out: Dict[str, Arrays] = {}
    for split, members in idx.items():
        xs, dts, ys = [], [], []
        for i in sorted(members):
            frames, dt, steer = episodes[i]
            xs.append(_windows(frames, seq_len, stride))
            dts.append(_windows(dt, seq_len, stride))
            ys.append(_windows(steer[:, None], seq_len, stride))
        if not xs or sum(len(x) for x in xs) == 0:
            continue
        out[split] = {"x": np.concatenate(xs), "dt": np.concatenate(dts), "y": np.concatenate(ys)}
    return out


# -- the data module ---------------------------------------------------------------------
class LaneKeepingDataModule(SequenceDataModule):
    """Per-step steering regression from frames; see the module docstring for the sources."""

    task_kind = TaskKind.PER_STEP_REGRESSION
    metric = "mse"
    n_outputs = 1

    def __init__(
        self,
        *args,
        source: str = "folder",
        root: Optional[str] = None,
        image_size: Sequence[int] = (72, 128),
        layout: str = "frames",
        seq_len: int = 16,
        stride: int = 8,
        val_fraction: float = 0.1,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        sim_episodes: int = 20,
        sim_steps: int = 200,
        sim_seed: int = 0,
        k_lateral: float = 0.3,
        k_heading: float = 1.5,
        **kwargs,
    ):
        kwargs.setdefault("download", False)
        super().__init__(*args, **kwargs)
        if source not in SOURCES:
            raise ValueError(f"unknown lane-keeping source {source!r}; known: {', '.join(SOURCES)}")
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
        self.source = source
        self.root = Path(root) if root else self.data_dir / "lane_keeping" / "recordings"
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.layout = layout
        self.seq_len, self.stride = seq_len, stride
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        self.sim_episodes, self.sim_steps, self.sim_seed = sim_episodes, sim_steps, sim_seed
        self.k_lateral, self.k_heading = k_lateral, k_heading
        self.n_channels = 3
        self.n_features = self.n_channels * self.image_size[0] * self.image_size[1]
        self.label = SIMULATED_LABEL if source == "highway_env" else "user-supplied recordings"

    def episodes(self) -> List[Episode]:
        if self.source == "highway_env":
            return generate_highway_env(self.sim_episodes, self.sim_steps, self.image_size, self.sim_seed,
                                        self.k_lateral, self.k_heading)
        folders = find_episodes(self.root)
        if not folders:
            raise MissingDataError(
                f"no lane-keeping recordings under {self.root}. The paper's driving data are not public "
                f"(available from the authors on request). Put your own recordings there as {FOLDER_FORMAT}, "
                "set data.root=<folder>, or use the simulated substitute data.source=highway_env "
                f"({INSTALL_HINT}; not comparable to the paper)."
            )
        return [read_episode(f, self.image_size) for f in folders]

    def cache_key(self) -> dict:
        return {
            "dataset": "lane_keeping_highway_env", "processing_version": PROCESSING_VERSION,
            "image_size": list(self.image_size), "seq_len": self.seq_len, "stride": self.stride,
            "val_fraction": self.val_fraction, "test_fraction": self.test_fraction, "split_seed": self.split_seed,
            "sim_episodes": self.sim_episodes, "sim_steps": self.sim_steps, "sim_seed": self.sim_seed,
            "k_lateral": self.k_lateral, "k_heading": self.k_heading,
        }

    def build_splits(self) -> Dict[str, Arrays]:
        def build() -> Arrays:
            return flatten_splits(make_splits(self.episodes(), self.seq_len, self.stride, self.val_fraction,
                                              self.test_fraction, self.split_seed))

        if self.source == "highway_env":  # generation is slow: cache it
            path = self.data_dir / "lane_keeping" / "processed" / "highway_env.npz"
            arrays, self.fingerprint = load_or_build_fingerprinted(path, self.cache_key(), build)
        else:
            from ctbench.data.archive import fingerprint

            arrays = build()
            self.fingerprint = fingerprint(arrays)
        splits = unflatten_splits(arrays)
        if self.layout == "flat":
            for arrs in splits.values():
                arrs["x"] = arrs["x"].reshape(arrs["x"].shape[:2] + (-1,))
        return splits
