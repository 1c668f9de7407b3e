"""Paper presets for GPUs (CIFAR-10/100, spiking VGG-11 and WRN-16): tested on a tiny generated CIFAR root."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.errors import BenchError
from models_zoo.paper_presets import PRESETS
from models_zoo.recipes import get_recipe

#: reduced sizes for the tiny fixture (the presets' own sizes are checked in test_full_size_models_build)
SMALL = {
    "svgg11": {"width": 0.0625, "hidden": 32},
    "swrn16": {"widen_factor": 1, "base": 4},
}


def _write_fake_cifar(root: Path, kind: str, n_train: int = 4, n_test: int = 4) -> None:
    """Files in torchvision's CIFAR layout, random pixels (the md5 check is bypassed by the caller)."""
    rng = np.random.default_rng(0)
    k = 10 if kind == "cifar10" else 100
    label_key = "labels" if kind == "cifar10" else "fine_labels"

    def batch(n: int) -> dict:
        return {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), label_key: rng.integers(0, k, n).tolist()}

    if kind == "cifar10":
        d = root / "cifar-10-batches-py"
        d.mkdir(parents=True)
        for i in range(1, 6):
            (d / f"data_batch_{i}").write_bytes(pickle.dumps(batch(n_train if i == 1 else 0)))
        (d / "test_batch").write_bytes(pickle.dumps(batch(n_test)))
        (d / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    else:
        d = root / "cifar-100-python"
        d.mkdir(parents=True)
        (d / "train").write_bytes(pickle.dumps(batch(n_train)))
        (d / "test").write_bytes(pickle.dumps(batch(n_test)))
        (d / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}))


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    root = tmp_path / "data"
    _write_fake_cifar(root, "cifar10")
    _write_fake_cifar(root, "cifar100")
    return root


def _small(name: str) -> dict:
    cfg = get_recipe(name).config()
    args = {**cfg["architecture_args"], **SMALL[cfg["architecture"]]}
    return {"architecture_args": args, "time_steps": 2, "epochs": 1, "batch_size": 4}


def test_presets_cover_the_papers():
    assert len(PRESETS) == len(set(PRESETS)) == 18
    for method in ("baseline", "sr", "mpd-sgr", "rssnn", "pgd-at", "pgd-at+sr", "pgd-at+mpd-sgr", "pgd-at+rssnn"):
        for arch in ("vgg11", "wrn16"):
            assert f"{method}-cifar-{arch}" in PRESETS
    sr = get_recipe("sr-cifar-vgg11").config_for("cifar100")
    assert (sr["time_steps"], sr["optimizer"], sr["lr"], sr["weight_decay"], sr["epochs"]) == (8, "sgd", 0.1, 5e-4, 200)
    assert sr["neuron"]["type"] == "IF" and sr["augment"] == "crop-flip"
    assert sr["architecture_args"]["normalize"] == "cifar100"  # the statistics of the data set trained on
    rs = get_recipe("rssnn-cifar-wrn16").config_for("cifar10")
    assert rs["neuron"]["type"] == "DLIF" and rs["architecture"] == "swrn16"
    assert get_recipe("pgd-at+rssnn-cifar-vgg11").config()["at_eps"] == pytest.approx(4 / 255)
    assert get_recipe("sparse-arch-max-cifar-vgg11").config()["architecture_args"]["pooling"] == "max"
    assert not any(get_recipe(p).zoo for p in PRESETS)
    with pytest.raises(BenchError):
        get_recipe("sr-cifar-vgg11").config_for("mnist5k")


def test_full_size_models_build():
    from attacks.backward_rules import make_rule
    from models_zoo.architectures import build_architecture

    neuron = {"type": "IF", "tau": 1.0, "v_threshold": 1.0, "v_reset": 0.0}
    vgg = build_architecture("svgg11", neuron=neuron, surrogate=make_rule("triangle"), num_classes=10, in_shape=(3, 32, 32))
    wrn = build_architecture("swrn16", neuron=neuron, surrogate=make_rule("triangle"), num_classes=100, in_shape=(3, 32, 32))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert 60e6 < count(vgg) < 62e6  # 8 convs + 4096-4096 classifier on a 512x4x4 map
    assert 2.7e6 < count(wrn) < 2.8e6  # WRN-16-4
    with torch.no_grad():  # one full-size forward, T = 1
        from spikingjelly.activation_based import functional

        out = wrn(torch.rand(1, 2, 3, 32, 32))
        functional.reset_net(wrn)
    assert out.shape == (1, 2, 100)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_takes_one_training_step(name):
    from models_zoo.cards import ModelCard, validate_card_data
    from models_zoo.training import card_data
    from models_zoo.zoo import build_net, wrap

    recipe = get_recipe(name)
    cfg = recipe.config_for("cifar10", **_small(name))
    data = card_data(name, "cifar10", 0, cfg, 10)
    validate_card_data({**data, "sha256": "0" * 64}, where=name)
    torch.manual_seed(0)
    model = wrap(build_net(ModelCard(data)), ModelCard(data)).train()
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 32, 32, generator=g), torch.randint(0, 10, (2,), generator=g)
    loss, _ = recipe.loss(model, x, y, cfg)
    assert torch.isfinite(loss)
    loss.backward()
    assert model.training


@pytest.mark.parametrize("name,dataset", [("sr-cifar-vgg11", "cifar10"), ("rssnn-cifar-wrn16", "cifar100"), ("sparse-arch-max-cifar-vgg11", "cifar10")])
def test_preset_trains_and_evaluates_on_a_local_cifar_root(fake_cifar, tmp_path, name, dataset):
    from bench.data import load_dataset
    from models_zoo.training import accuracy, train
    from models_zoo.zoo import load_model

    card = train(name, dataset, 0, out_dir=tmp_path / "zoo", overrides=_small(name), data_root=fake_cifar, progress=False)
    assert card.dataset == dataset and card.num_classes == (10 if dataset == "cifar10" else 100)
    assert card.training["augment"] == "crop-flip" and math.isfinite(card.claimed_clean_acc)
    model = load_model(card)  # weights round-trip through the card
    ds = load_dataset(dataset, root=fake_cifar)
    assert ds.train.x.shape == (4, 3, 32, 32) and ds.test.x.shape == (4, 3, 32, 32)
    assert accuracy(model, ds.test.x, ds.test.y) == pytest.approx(card.claimed_clean_acc)


def test_missing_cifar_root_is_a_one_line_error(tmp_path):
    from models_zoo.training import train

    with pytest.raises(BenchError, match="data-root"):
        train("baseline-cifar-vgg11", "cifar10", 0, out_dir=tmp_path, data_root=tmp_path / "nowhere", progress=False)


def test_crop_flip_augmentation_is_seeded():
    from models_zoo.training import augment_batch

    x = torch.rand(3, 3, 32, 32)
    a = augment_batch(x, "crop-flip", torch.Generator().manual_seed(5))
    b = augment_batch(x, "crop-flip", torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, x)
    with pytest.raises(BenchError):
        augment_batch(x, "mixup", torch.Generator())
