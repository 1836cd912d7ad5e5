"""IMDB sentiment, Keras' word-level encoding (CfC paper Extended Data Fig. 8 = arXiv v2 Table 6).

The authors' ``train_imdb.py`` calls ``tf.keras.datasets.imdb.load_data(num_words=20000)`` and
``pad_sequences(maxlen=200)``. Keras' prebuilt ``imdb.npz`` is not available, so this module
rebuilds it from the raw Large Movie Review Dataset (Maas et al. 2011) and Keras'
``imdb_word_index.json`` (see ``../shared/reference/protocols.md`` §2.3):

- every labelled review ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` (12,500 per folder;
  ``train/unsup`` and the other members are ignored) is read from the ``.tar.gz`` in memory,
  decoded as UTF-8, in **sorted member-name order** (string order). Keras' own sample order (the
  order inside ``imdb.npz``, then a ``seed=113`` shuffle) cannot be replayed: only the order of
  the samples differs, the train/test membership is exact;
- tokenisation = Keras ``text_to_word_sequence`` with its defaults: lowercase, every character
  of ``!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~`` plus tab and newline replaced by a space, split on
  the space character only, empty strings dropped. Apostrophes are kept (``don't``), ``<br />``
  becomes the word ``br``. **Lowercasing is ASCII-only** (``lowercase="ascii"``, Python 2's
  ``str.lower`` on bytes, which is how Keras' index was built): with it, the 25,000 training
  reviews yield exactly the 88,584 words of ``imdb_word_index.json``, and the index ranks are
  in non-increasing order of their training-set counts (no exception). Unicode lowercasing
  (Python 3's ``str.lower``, ``lowercase="unicode"``) would turn e.g. ``Álex`` into ``álex``,
  which the index does not hold (19 training words, 24 occurrences, would be lost);
- a word's id is its index rank + ``index_from`` (3); ids >= ``num_words`` (20,000) become
  ``oov_char`` (2); words absent from the index (test only) are **dropped**; every review
  starts with ``start_char`` (1);
- ``pad_sequences(maxlen=200)`` with Keras defaults: **pre-truncation** (the last 200 tokens are
  kept) and **pre-padding** with 0.

Measured on the real files (with the start token, before padding): train mean length 238.71,
std 176.49, max 2494, every word in the index; test mean 230.80, max 2315, 98.9% of the words
in the index.

Batches: ``x`` (N, 200) int64 token ids, ``dt`` (N, 200) ones (no time input: the TF CfC uses
t = 1), no step mask (Keras' RNN without masking runs over the zero pads), ``y`` (N,) int64.
``protocol=paper`` has train and test only (the authors pass the test set as validation data,
for monitoring); ``protocol=clean`` holds out a seeded 10% of train as validation.
"""

from __future__ import annotations

import json
import re
import tarfile
import zlib
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from sklearn.model_selection import train_test_split

from ctbench.data.archive import (
    CorruptDataError,
    RemoteFile,
    check_remotes,
    fingerprint,
    flatten_splits,
    load_or_build_fingerprinted,
    sha256_file,
    unflatten_splits,
)
from ctbench.data.base import Arrays, SequenceDataModule
from ctbench.data.batch import TaskKind

#: Keras' ``text_to_word_sequence`` default filters (tab and newline included)
FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
LOWERCASE_MODES = ("ascii", "unicode", "none")
N_INDEX_WORDS = 88584
REVIEWS_PER_FOLDER = 12500
SPLITS = ("train", "test")
LABELS = {"neg": 0, "pos": 1}
#: ``aclImdb/<split>/<pos|neg>/<id>_<rating>.txt`` (a leading ``./`` is tolerated)
MEMBER_RE = re.compile(r"^(?:\./)?aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
#: bump whenever the processing below changes: it invalidates every cache
PROCESSING_VERSION = 1

_FILTER_TABLE = str.maketrans({c: " " for c in FILTERS})
_ASCII_LOWER = str.maketrans({chr(c): chr(c + 32) for c in range(ord("A"), ord("Z") + 1)})


# -- Keras semantics ----------------------------------------------------------------------
def text_to_word_sequence(text: str, lowercase: str = "ascii") -> List[str]:
    """Keras' ``text_to_word_sequence`` with its default filters and ``split=" "``.

    ``lowercase``: ``ascii`` (A–Z only: how Keras' IMDB index was built), ``unicode``
    (Python 3 ``str.lower``, what Keras does on a ``str`` today) or ``none``.
    """
    if lowercase == "ascii":
        text = text.translate(_ASCII_LOWER)
    elif lowercase == "unicode":
        text = text.lower()
    elif lowercase != "none":
        raise ValueError(f"lowercase must be one of {', '.join(LOWERCASE_MODES)}, got {lowercase!r}")
    return [w for w in text.translate(_FILTER_TABLE).split(" ") if w]


def encode(
    words: Iterable[str],
    word_index: Mapping[str, int],
    num_words: int = 20000,
    index_from: int = 3,
    start_char: int = 1,
    oov_char: int = 2,
) -> Tuple[List[int], int]:
    """``load_data`` ids of one review: [start_char] + (rank + index_from), ids >= num_words →
    oov_char, words absent from the index dropped. Returns (ids, number of words dropped)."""
    ids = [start_char]
    dropped = 0
    for w in words:
        rank = word_index.get(w)
        if rank is None:
            dropped += 1
            continue
        i = rank + index_from
        ids.append(i if i < num_words else oov_char)
    return ids, dropped


def pad_sequences(seqs: Sequence[Sequence[int]], maxlen: int = 200, value: int = 0) -> np.ndarray:
    """Keras ``pad_sequences`` defaults: pre-truncation (keep the last ``maxlen``) and pre-padding."""
    out = np.full((len(seqs), maxlen), value, dtype=np.int64)
    for i, s in enumerate(seqs):
        if len(s) == 0:
            continue
        trunc = np.asarray(s[-maxlen:], dtype=np.int64)
        out[i, maxlen - len(trunc):] = trunc
    return out


# -- reading the raw files ----------------------------------------------------------------
def read_word_index(path: Path) -> Dict[str, int]:
    """Keras' ``imdb_word_index.json``: word → rank (1 = most frequent), checked."""
    path = Path(path)
    try:
        index = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CorruptDataError(f"{path}: not a valid JSON word index ({err})") from err
    if not isinstance(index, dict) or not all(isinstance(k, str) and type(v) is int for k, v in index.items()):
        raise CorruptDataError(f"{path}: expected a JSON object of word -> integer rank")
    ranks = sorted(index.values())
    if ranks != list(range(1, len(index) + 1)):
        raise CorruptDataError(f"{path}: the ranks are not exactly 1 … {len(index)} (duplicates or gaps)")
    return index


def check_index_size(path: Path, index: Mapping[str, int], expected_words: Optional[int] = N_INDEX_WORDS) -> None:
    """Keras' index holds exactly 88,584 words (``None`` accepts any size: test fixtures)."""
    if expected_words is not None and len(index) != expected_words:
        raise CorruptDataError(f"{path}: wrong word count: expected {expected_words} words, found {len(index)}")


Reviews = Dict[str, Tuple[List[str], np.ndarray, List[str]]]  # split -> (texts, labels, member names)


def read_reviews(path: Path) -> Reviews:
    """Every labelled review of an aclImdb ``.tar.gz``, per split, in sorted member-name order.

    Accepts the official ``aclImdb_v1.tar.gz`` (which also holds ``train/unsup`` and the BoW
    features: skipped) and the repacked ``aclImdb_v1_labeled.tar.gz``. Read in memory.
    """
    path = Path(path)
    found: Dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tf:
            for member in tf:
                if not member.isfile() or MEMBER_RE.match(member.name) is None:
                    continue
                name = member.name[2:] if member.name.startswith("./") else member.name
                if name in found:
                    raise CorruptDataError(f"{path}: member {name} appears twice")
                f = tf.extractfile(member)
                found[name] = f.read() if f is not None else b""
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise CorruptDataError(f"{path}: truncated or unreadable tar.gz archive ({err})") from err
    out: Reviews = {}
    for split in SPLITS:
        names = sorted(n for n in found if n.split("/")[1] == split)
        texts = []
        for n in names:
            try:
                texts.append(found[n].decode("utf-8"))
            except UnicodeDecodeError as err:
                raise CorruptDataError(f"{path}: member {n} is not UTF-8 text ({err})") from err
        labels = np.array([LABELS[n.split("/")[2]] for n in names], dtype=np.int64)
        out[split] = (texts, labels, names)
    for split in SPLITS:
        labels = out[split][1]
        for folder, label in LABELS.items():
            if not (labels == label).any():
                raise CorruptDataError(
                    f"{path}: no aclImdb/{split}/{folder}/<id>_<rating>.txt reviews found "
                    "(expected the aclImdb layout: aclImdb/{train,test}/{pos,neg}/)"
                )
    return out


def check_counts(path: Path, reviews: Reviews, per_folder: Optional[int] = REVIEWS_PER_FOLDER) -> None:
    """Exactly ``per_folder`` reviews in each of train/pos, train/neg, test/pos, test/neg."""
    if per_folder is None:
        return
    for split in SPLITS:
        labels = reviews[split][1]
        for folder, label in LABELS.items():
            n = int((labels == label).sum())
            if n != per_folder:
                raise CorruptDataError(
                    f"{path}: wrong review count: expected {per_folder} reviews in aclImdb/{split}/{folder}/, found {n}"
                )


def encode_reviews(
    reviews: Reviews,
    word_index: Mapping[str, int],
    num_words: int = 20000,
    maxlen: int = 200,
    index_from: int = 3,
    start_char: int = 1,
    oov_char: int = 2,
    lowercase: str = "ascii",
) -> Arrays:
    """Flat arrays ``{split}.{x,y,length,n_words,n_dropped}`` (length: ids before padding)."""
    out: Arrays = {}
    for split in SPLITS:
        texts, labels, _ = reviews[split]
        seqs, n_words, n_dropped = [], [], []
        for text in texts:
            words = text_to_word_sequence(text, lowercase)
            ids, dropped = encode(words, word_index, num_words, index_from, start_char, oov_char)
            seqs.append(ids)
            n_words.append(len(words))
            n_dropped.append(dropped)
        out[f"{split}.x"] = pad_sequences(seqs, maxlen).astype(np.int32)  # ids < num_words: int32 on disk
        out[f"{split}.y"] = labels.astype(np.int64)
        out[f"{split}.length"] = np.array([len(s) for s in seqs], dtype=np.int32)
        out[f"{split}.n_words"] = np.array(n_words, dtype=np.int32)
        out[f"{split}.n_dropped"] = np.array(n_dropped, dtype=np.int32)
    return out


# -- the data module ---------------------------------------------------------------------
class IMDBDataModule(SequenceDataModule):
    """Sentiment classification of 200-token reviews (Keras' ``imdb.load_data`` encoding)."""

    task_kind = TaskKind.SEQUENCE_CLASSIFICATION
    metric = "accuracy"
    n_features = 1  # one token id per step (the model embeds it)
    n_outputs = 2  # the experiments set sequence.n_outputs: 10 (the authors' Dense(10))
    vocab_size = 20000
    readout = "last"

    STANFORD_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
    #: the official archive (also holds train/unsup); its upstream SHA-256
    ARCHIVE = RemoteFile(
        "aclImdb_v1.tar.gz",
        "imdb",
        urls=(STANFORD_URL,),
        sha256=("c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",),
    )
    #: the repacked labelled-only copy in ../shared/data (SOURCES.md); preferred when present
    LABELED_ARCHIVE = RemoteFile(
        "aclImdb_v1_labeled.tar.gz",
        "imdb",
        urls=(STANFORD_URL,),
        sha256=("fc132c2a23a4d23eec474b518907765dbc9c59e648c1e57ac8010670238ed697",),
    )
    #: byte-identical to Keras' file (MD5 bfafd718b763782e994055a2d397834f)
    WORD_INDEX = RemoteFile(
        "imdb_word_index.json",
        "imdb",
        urls=("https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb_word_index.json",),
        sha256=("027313fe9a320280f3bf0fac5baf58c4a683cf39a7ed9c3d3d3912bde4284cf6",),
    )
    REMOTES = (ARCHIVE, WORD_INDEX)

    def __init__(
        self,
        *args,
        num_words: int = 20000,
        maxlen: int = 200,
        index_from: int = 3,
        start_char: int = 1,
        oov_char: int = 2,
        lowercase: str = "ascii",
        val_fraction: float = 0.1,
        val_seed: int = 11,
        expected_per_folder: Optional[int] = REVIEWS_PER_FOLDER,
        expected_index_words: Optional[int] = N_INDEX_WORDS,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if lowercase not in LOWERCASE_MODES:
            raise ValueError(f"lowercase must be one of {', '.join(LOWERCASE_MODES)}, got {lowercase!r}")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.num_words = num_words
        self.vocab_size = num_words  # the embedding's rows: ids are < num_words
        self.maxlen = maxlen
        self.index_from = index_from
        self.start_char = start_char
        self.oov_char = oov_char
        self.lowercase = lowercase
        self.val_fraction = val_fraction
        self.val_seed = val_seed
        self.expected_per_folder = expected_per_folder
        self.expected_index_words = expected_index_words
        #: per split: token ids before padding, words tokenised, words dropped (not in the index)
        self.lengths: Dict[str, np.ndarray] = {}
        self.n_words: Dict[str, np.ndarray] = {}
        self.n_dropped: Dict[str, np.ndarray] = {}

    # -- files ---------------------------------------------------------------------------
    @classmethod
    def check_content(cls, remote: RemoteFile, path: Path) -> None:
        """Structure only (the counts depend on the config and are checked when building):
        the index is a JSON word -> rank map with ranks 1 … N; the archive is a readable
        tar.gz with UTF-8 reviews in aclImdb/{train,test}/{pos,neg}/."""
        if remote.name == cls.WORD_INDEX.name:
            read_word_index(path)
        else:
            read_reviews(path)

    @classmethod
    def _archive_remote(cls, data_dir, mirror) -> RemoteFile:
        """The labelled copy where one is present (mirror, data folder), else the official archive."""
        for where in ([Path(mirror)] if mirror else []) + [Path(data_dir)]:
            if cls.LABELED_ARCHIVE.in_mirror(where).is_file():
                return cls.LABELED_ARCHIVE
        return cls.ARCHIVE

    @classmethod
    def check(cls, data_dir: str = "data", mirror: Optional[str] = None) -> Tuple[str, str]:
        remotes = (cls._archive_remote(data_dir, mirror), cls.WORD_INDEX)
        return check_remotes(remotes, data_dir, mirror, content_check=cls.check_content)

    def locate(self, remote: RemoteFile) -> Path:
        """The reviews archive under either name (labelled copy first), or the word index."""
        if remote.name in (self.ARCHIVE.name, self.LABELED_ARCHIVE.name):
            remote = self._archive_remote(self.data_dir, self.mirror)
        return super().locate(remote)

    # -- processing ----------------------------------------------------------------------
    def cache_path(self) -> Path:
        return self.data_dir / "imdb" / "processed" / "imdb.npz"

    def cache_key(self, archive_sha256: str, index_sha256: str) -> dict:
        return {
            "dataset": "imdb",
            "processing_version": PROCESSING_VERSION,
            "archive_sha256": archive_sha256,
            "word_index_sha256": index_sha256,
            "num_words": self.num_words,
            "maxlen": self.maxlen,
            "index_from": self.index_from,
            "start_char": self.start_char,
            "oov_char": self.oov_char,
            "lowercase": self.lowercase,
            "order": "sorted member names",
        }

    def build_splits(self) -> Dict[str, Arrays]:
        archive = self.locate(self.ARCHIVE)
        index_path = self.locate(self.WORD_INDEX)
        key = self.cache_key(sha256_file(archive), sha256_file(index_path))

        def build() -> Arrays:
            reviews = read_reviews(archive)
            check_counts(archive, reviews, self.expected_per_folder)
            word_index = read_word_index(index_path)
            check_index_size(index_path, word_index, self.expected_index_words)
            return encode_reviews(
                reviews,
                word_index,
                num_words=self.num_words,
                maxlen=self.maxlen,
                index_from=self.index_from,
                start_char=self.start_char,
                oov_char=self.oov_char,
                lowercase=self.lowercase,
            )

        cached, _ = load_or_build_fingerprinted(self.cache_path(), key, build)
        raw = unflatten_splits(cached)
        for split in SPLITS:
            self.lengths[split] = raw[split]["length"]
            self.n_words[split] = raw[split]["n_words"]
            self.n_dropped[split] = raw[split]["n_dropped"]
        splits = {split: self._batch_fields(raw[split]["x"], raw[split]["y"]) for split in SPLITS}
        if self.protocol == "clean":
            splits["train"], splits["val"] = self.validation_split(splits["train"])
        self.fingerprint = fingerprint(flatten_splits(splits))
        return splits

    def _batch_fields(self, x: np.ndarray, y: np.ndarray) -> Arrays:
        x = x.astype(np.int64)
        return {"x": x, "dt": np.ones(x.shape, dtype=np.float32), "y": y.astype(np.int64)}

    def validation_split(self, train: Arrays) -> Tuple[Arrays, Arrays]:
        """Seeded hold-out of ``val_fraction`` of train (sklearn, ``random_state=val_seed``);
        both parts keep the member-name order."""
        n = len(train["y"])
        keep, val = train_test_split(np.arange(n), test_size=self.val_fraction, random_state=self.val_seed, shuffle=True)
        keep, val = np.sort(keep), np.sort(val)
        return {k: a[keep] for k, a in train.items()}, {k: a[val] for k, a in train.items()}


__all__ = [
    "FILTERS",
    "IMDBDataModule",
    "encode",
    "encode_reviews",
    "pad_sequences",
    "read_reviews",
    "read_word_index",
    "text_to_word_sequence",
]
