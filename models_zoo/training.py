"""The training loop shared by every recipe: deterministic for a seed, progress bar, card + checkpoint.

``train(recipe, dataset, seed)`` builds the recipe's model, trains it with the recipe's loss (BPTT
through the instrumented neurons, whose backward rule is the recipe's training surrogate), measures
clean accuracy on the data set's test split, writes a safetensors checkpoint and a validated card.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from bench.data import load_dataset
from bench.device import resolve_device
from bench.errors import BenchError
from bench.fused_neuron import plain_bptt
from models_zoo.cards import ModelCard, card_to_toml, load_card, sha256_file
from models_zoo.checkpoints import save_state_dict
from models_zoo.recipes import get_recipe
from models_zoo.zoo import build_net, wrap, zoo_dir


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Clean accuracy in percent (model in eval mode, restored afterwards)."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    correct = 0
    for i in range(0, len(y), batch_size):
        correct += int((model(x[i : i + batch_size].to(dev)).argmax(1).cpu() == y[i : i + batch_size]).sum())
    model.train(was)
    return 100.0 * correct / max(1, len(y))


def augment_batch(x: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    """Training-time augmentation of a batch [N, C, H, W] drawn from ``gen`` (deterministic for a seed).

    ``crop-flip``: random crop with 4-pixel zero padding and random horizontal flip (the CIFAR recipes of
    the SR and RSSNN code bases: ``RandomCrop(32, padding=4), RandomHorizontalFlip()``).
    """
    if kind == "none":
        return x
    if kind != "crop-flip":
        raise BenchError(f"unknown augmentation '{kind}': use 'none' or 'crop-flip'")
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=gen).tolist()
    dx = torch.randint(0, 9, (n,), generator=gen).tolist()
    flip = (torch.rand(n, generator=gen) < 0.5).tolist()
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    for i in range(n):
        if flip[i]:
            out[i] = out[i].flip(-1)
    return out


def _make_optimizer(params, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    if cfg["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=cfg["lr"], momentum=0.9, weight_decay=cfg["weight_decay"],
                               nesterov=bool(cfg.get("nesterov", True)))
    raise BenchError(f"unknown optimizer '{cfg['optimizer']}': use adam or sgd")


def card_data(recipe_name: str, dataset: str, seed: int, cfg: dict[str, Any], num_classes: int) -> dict[str, Any]:
    recipe = get_recipe(recipe_name)
    model_id = f"{recipe_name}-{dataset}-s{seed}"
    training = {"recipe": recipe_name, "seed": seed}
    for k, v in cfg.items():
        if k not in ("architecture", "architecture_args", "neuron", "surrogate", "time_steps", "encoder"):
            training[k] = v
    data = {
        "id": model_id,
        "family": recipe.family,
        "paper": recipe.paper,
        "dataset": dataset,
        "threat_model": "Linf",
        "architecture": cfg["architecture"],
        "num_classes": num_classes,
        "checkpoint": f"../checkpoints/{model_id}.safetensors",
        "sha256": "0" * 64,
        "size_bytes": 1,
        "time_steps": int(cfg["time_steps"]),
        "encoder": cfg["encoder"],
        "step_mode": "m",
        "claimed_clean_acc": 0.0,
        "notes": recipe.doc,
        "architecture_args": dict(cfg["architecture_args"]),
        "neuron": dict(cfg["neuron"]),
        "training_surrogate": {"family": cfg["surrogate"]["family"], "width": float(cfg["surrogate"]["width"])},
        "training": training,
    }
    if recipe.matched_baseline:
        data["matched_baseline"] = f"{recipe.matched_baseline}-{dataset}-s{seed}"
    return data


def train(
    recipe_name: str,
    dataset: str = "mnist5k",
    seed: int = 0,
    out_dir: str | Path | None = None,
    device: str = "auto",
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    data_root: str | Path | None = None,
) -> ModelCard:
    """Train ``recipe_name`` on ``dataset`` with ``seed``; write checkpoint + card under ``out_dir``.

    ``out_dir`` defaults to the zoo (models_zoo/): the card goes to ``cards/``, weights to ``checkpoints/``.
    """
    recipe = get_recipe(recipe_name)
    cfg = recipe.config_for(dataset, **(overrides or {}))
    dev = resolve_device(device)
    ds = load_dataset(dataset, root=data_root)
    data = card_data(recipe_name, dataset, seed, cfg, ds.num_classes)
    seed_everything(seed)
    card = ModelCard(data=data, path=None)
    model = wrap(build_net(card), card, seed=seed).to(dev)
    model.train()
    opt = _make_optimizer(model.parameters(), cfg)
    n, bs, epochs = len(ds.train), int(cfg["batch_size"]), int(cfg["epochs"])
    steps_per_epoch = math.ceil(n / bs)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)) if cfg["schedule"] == "cosine" else 1.0
    )
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    bar = tqdm(total=total, desc=f"train {data['id']}", disable=not progress, unit="step")
    # the zoo was trained through the plain autograd loop (bench.fused_neuron): keep reproducing it exactly
    with plain_bptt():
        for epoch in range(epochs):
            perm = torch.randperm(n, generator=gen)
            for i in range(steps_per_epoch):
                idx = perm[i * bs : (i + 1) * bs]
                x, y = ds.train.x[idx].to(dev), ds.train.y[idx].to(dev)
                if cfg.get("augment", "none") != "none":
                    x = augment_batch(x, cfg["augment"], gen)
                loss, metrics = recipe.loss(model, x, y, cfg)
                if not torch.isfinite(loss):
                    raise BenchError(f"training {data['id']}: loss became {float(loss)} at epoch {epoch}: lower the learning rate")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.update(1)
                bar.set_postfix(epoch=epoch, **{k: f"{v:.3f}" for k, v in metrics.items()})
        acc_time = time.time()
        acc = accuracy(model, ds.test.x, ds.test.y)
    bar.close()
    train_seconds = acc_time - t0

    root = Path(out_dir) if out_dir else zoo_dir()
    ckpt = root / "checkpoints" / f"{data['id']}.safetensors"
    save_state_dict(model.net, ckpt)
    data["claimed_clean_acc"] = round(acc, 2)
    data["sha256"] = sha256_file(ckpt)
    data["size_bytes"] = ckpt.stat().st_size
    data["training"]["train_seconds"] = round(train_seconds, 1)
    data["training"]["torch"] = torch.__version__
    card_path = root / "cards" / f"{data['id']}.toml"
    card_path.parent.mkdir(parents=True, exist_ok=True)
    card_path.write_text(card_to_toml(data))
    return load_card(card_path)


def zoo_entries(seeds: tuple[int, ...] | None = None, recipes: list[str] | None = None) -> list[tuple[str, int]]:
    """(recipe, seed) pairs of the committed zoo, seed-major: seed 0 of every recipe first, then seed 1..."""
    from models_zoo.recipes import RECIPES, ZOO_SEEDS

    names = recipes or [n for n, r in RECIPES.items() if r.zoo]
    return [(name, seed) for seed in (seeds or ZOO_SEEDS) for name in names]


def train_all(
    seeds: tuple[int, ...] | None = None,
    recipes: list[str] | None = None,
    force: bool = False,
    out_dir: str | Path | None = None,
    device: str = "auto",
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    log=print,
) -> list[ModelCard]:
    """Train every zoo recipe for the recorded seeds on MNIST-5k (``snnbench train --all``).

    An entry whose card and checkpoint both exist is skipped unless ``force``: rerunning resumes the zoo.
    """
    from models_zoo.recipes import ZOO_DATASET

    root = Path(out_dir) if out_dir else zoo_dir()
    entries = zoo_entries(seeds, recipes)
    cards = []
    for i, (name, seed) in enumerate(entries, 1):
        model_id = f"{name}-{ZOO_DATASET}-s{seed}"
        card_path, ckpt = root / "cards" / f"{model_id}.toml", root / "checkpoints" / f"{model_id}.safetensors"
        if not force and card_path.is_file() and ckpt.is_file():
            log(f"[{i}/{len(entries)}] {model_id}: card and checkpoint exist, skipped (use --force to retrain)")
            continue
        t0 = time.time()
        card = train(name, ZOO_DATASET, seed, out_dir=out_dir, device=device, overrides=overrides, progress=progress)
        log(f"[{i}/{len(entries)}] {card.id}: clean accuracy {card.claimed_clean_acc:.2f}% in {time.time() - t0:.0f}s")
        cards.append(card)
    return cards
