"""Data: the embedded MNIST-5k split, digits, and the torchvision path on a generated fixture."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from bench.data import load_dataset
from bench.errors import BenchError


def test_mnist5k_split_is_stratified_fixed_and_in_unit_range():
    ds = load_dataset("mnist5k")
    assert len(ds.train) == 4000 and len(ds.test) == 1000
    assert ds.train.x.shape[1:] == (1, 28, 28)
    assert float(ds.test.x.min()) >= 0 and float(ds.test.x.max()) <= 1
    assert np.bincount(ds.test.y.numpy(), minlength=10).tolist() == [100] * 10
    assert not set(ds.train.indices) & set(ds.test.indices)
    h = ds.test.index_hash
    from bench.data import _load_cached

    _load_cached.cache_clear()
    assert load_dataset("mnist5k").test.index_hash == h


def test_head_and_limit_errors():
    ds = load_dataset("digits")
    assert len(ds.test.head(10)) == 10 and ds.test.head(10).index_hash != ds.test.index_hash
    with pytest.raises(BenchError, match="positive"):
        ds.test.head(0)


def _write_idx(path, arr: np.ndarray, kind: int) -> None:
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_torchvision_mnist_from_a_local_root(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in [("train", 12), ("t10k", 5)]:
        _write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), 3)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, (n,)), 1)
        for f in raw.glob(f"{prefix}*.gz"):  # torchvision reads the unpacked files
            (raw / f.name[:-3]).write_bytes(gzip.decompress(f.read_bytes()))
    ds = load_dataset("mnist", root=tmp_path)
    assert len(ds.train) == 12 and len(ds.test) == 5
    assert ds.test.x.shape == (5, 1, 28, 28) and ds.test.x.dtype == torch.float32
    assert 0 <= float(ds.test.x.min()) and float(ds.test.x.max()) <= 1


def test_absent_torchvision_root_gives_one_clear_error(tmp_path):
    with pytest.raises(BenchError, match="not found under .*--data-root"):
        load_dataset("cifar10", root=tmp_path / "empty")


def test_unknown_dataset():
    with pytest.raises(BenchError, match="did you mean 'mnist5k'"):
        load_dataset("mnist5")


def test_limit_takes_a_class_balanced_subset_of_a_class_sorted_split():
    from bench.data import Split, class_balanced_order, load_dataset

    y = torch.tensor([0] * 5 + [1] * 3 + [2] * 4)
    split = Split(torch.arange(12.0).view(12, 1, 1, 1), y, np.arange(100, 112), "test")
    assert class_balanced_order(y.numpy()).tolist() == [0, 5, 8, 1, 6, 9, 2, 7, 10, 3, 11, 4]
    head = split.head(7)
    assert head.y.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert head.indices.tolist() == [100, 105, 108, 101, 106, 109, 102]
    assert torch.equal(head.x.flatten(), torch.tensor([0.0, 5, 8, 1, 6, 9, 2]))
    full = split.head(None)  # the full split is dealt out the same way (single-class batches weaken attacks)
    assert full.y.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 2, 0] and full.indices.tolist()[:3] == [100, 105, 108]
    assert split.head(12).indices.tolist() == split.head(99).indices.tolist() == full.indices.tolist()
    assert sorted(full.indices.tolist()) == split.indices.tolist() and full.index_hash != split.index_hash
    test = load_dataset("mnist5k").test
    assert test.y[:200].unique().numel() == 2  # stored class by class ...
    assert torch.bincount(test.head(200).y, minlength=10).tolist() == [20] * 10  # ... so --limit deals them out
    assert test.head(200).index_hash != test.head(300).index_hash
    assert torch.bincount(test.head(None).y[:100], minlength=10).tolist() == [10] * 10  # every batch of 100 too
