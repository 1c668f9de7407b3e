"""The gauntlet's further algorithms: APGD-CE, APGD-T, Square and AutoAttack through pyautoattack;
SA-PGD; SPSA; uniform noise.

pyautoattack's classes (``APGDAttack``, ``APGDAttack_targeted``, ``SquareAttack``, ``AutoAttack``) take any
callable model, so they run unchanged on :class:`RuleModel`, a thin module whose forward is the adapter's
(state reset, encoding, time average) under the attacker's backward rule (the rule is installed by
:meth:`attacks.algorithms.Attack.perturb` around the call). Library pitfalls handled here
(``shared/spec/libraries.md``): APGD is constructed directly with the wanted ``n_iter`` (changing
``n_iter`` afterwards leaves stale step checkpoints); pyautoattack reseeds the global RNG on every run,
so each call runs inside ``torch.random.fork_rng`` with a seed drawn from the engine's generator; its
``state_path`` resume is never used (the engine resumes by chunks).

Every algorithm returns the identity at eps = 0, keeps the best iterate (a point misclassified at any
iterate is returned there) and is projected onto the eps-ball and the box before returning.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from attacks.base import Attack, AttackStats, loss_values, project, register_attack
from bench.adapter import SNNAdapter
from bench.errors import BenchError


class RuleModel(nn.Module):
    """A callable model for pyautoattack: the adapter's logits, averaged over ``draws`` passes.

    ``draws > 1`` (stochastic models, score-based attacks) averages the logits of fresh passes, so a
    random-search step is accepted only when the loss averaged over several passes improves. With
    ``no_grad`` the forward builds no graph (score-based attacks). Counts forwards into ``stats``.
    """

    def __init__(self, adapter: SNNAdapter, stats: AttackStats, draws: int = 1, no_grad: bool = False) -> None:
        super().__init__()
        self.adapter = adapter
        self.stats = stats
        self.draws = max(1, int(draws))
        self.no_grad = no_grad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 0:  # pyautoattack may ask for an empty batch once every point is fooled
            return torch.zeros(0, self._num_classes(x), device=x.device, dtype=x.dtype)
        self.stats.forwards += self.draws * x.shape[0]
        with torch.no_grad() if self.no_grad else torch.enable_grad():
            out = self.adapter(x)
            for _ in range(self.draws - 1):
                out = out + self.adapter(x)
        out = out / self.draws if self.draws > 1 else out
        if not self.no_grad and x.requires_grad:
            out = out + 0.0 * x.sum()  # a forward that detaches its input: a zero gradient, not a crash
        return out

    def _num_classes(self, x: torch.Tensor) -> int:
        if not hasattr(self, "_k"):
            with torch.no_grad():
                self._k = int(self.adapter(torch.zeros(1, *x.shape[1:], device=x.device, dtype=x.dtype)).shape[1])
        return self._k


def draw_seed(generator: torch.Generator) -> int:
    """A seed for a library that seeds the global RNG, drawn from the engine's generator (reproducible)."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


@contextmanager
def isolated_rng(device: torch.device) -> Iterator[None]:
    """Save the global RNG state(s) and restore them afterwards (pyautoattack calls manual_seed)."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


def _num_classes(model: SNNAdapter, x: torch.Tensor) -> int:
    with torch.no_grad():
        return int(model(x[:1]).shape[1])


# ---------------------------------------------------------------------------------------------------------
# APGD (Croce & Hein, ICML 2020) through pyautoattack
# ---------------------------------------------------------------------------------------------------------
@register_attack("apgd-ce")
@dataclass
class APGDCE(Attack):
    """APGD on the cross-entropy (Croce & Hein, ICML 2020), pyautoattack's ``APGDAttack`` unchanged.

    ``steps`` iterations (100 in the gauntlet): step 2*eps, momentum 0.75, step halved at checkpoints
    (0.22 N, shrinking by 0.03 N, at least 0.06 N) when fewer than ``rho`` = 75% of the steps raised the
    loss or the best loss stalled, then restart from the best point; random start. ``loss = "dlr"`` gives
    APGD-DLR. EOT: pyautoattack's ``eot_iter`` = the engine's draws for stochastic models.
    """

    steps: int = 100
    restarts: int = 1
    rho: float = 0.75
    loss: str = "ce"
    name: str = "apgd-ce"

    def _perturb(self, model, x, y, eps, generator):
        if eps == 0 or len(y) == 0:
            return x.clone()
        from pyautoattack.autopgd_base import APGDAttack

        if self.loss not in ("ce", "dlr"):
            raise BenchError(f"attack '{self.name}': apgd-ce takes loss 'ce' or 'dlr', got '{self.loss}'")
        draws = self.eot_draws if model.is_stochastic else 1
        wrapper = RuleModel(model, self.stats)
        seed = draw_seed(generator)
        with isolated_rng(x.device):
            atk = APGDAttack(
                wrapper, n_iter=int(self.steps), norm="Linf", n_restarts=int(self.restarts), eps=float(eps), seed=seed,
                loss=self.loss, eot_iter=draws, rho=float(self.rho), device=x.device,
            )
            adv = atk.perturb(x, y)
        return project(adv.to(x.dtype), x, eps)


@register_attack("apgd-t")
@dataclass
class APGDT(Attack):
    """APGD on the targeted DLR loss (Croce & Hein, ICML 2020), pyautoattack's ``APGDAttack_targeted``.

    ``targets`` = 9 target classes (the top non-true classes in turn, each with ``steps`` = 100 iterations,
    on the points not yet fooled); fewer only when the model has fewer than 10 classes.
    """

    steps: int = 100
    targets: int = 9
    restarts: int = 1
    rho: float = 0.75
    name: str = "apgd-t"

    def _perturb(self, model, x, y, eps, generator):
        if eps == 0 or len(y) == 0:
            return x.clone()
        from pyautoattack.autopgd_base import APGDAttack_targeted

        n_targets = min(int(self.targets), _num_classes(model, x) - 1)
        draws = self.eot_draws if model.is_stochastic else 1
        wrapper = RuleModel(model, self.stats)
        seed = draw_seed(generator)
        with isolated_rng(x.device):
            atk = APGDAttack_targeted(
                wrapper, n_iter=int(self.steps), norm="Linf", n_restarts=int(self.restarts), eps=float(eps), seed=seed,
                eot_iter=draws, rho=float(self.rho), n_target_classes=n_targets, device=x.device,
            )
            adv = atk.perturb(x, y)
        self.info["targets"] = n_targets
        return project(adv.to(x.dtype), x, eps)


# ---------------------------------------------------------------------------------------------------------
# SA-PGD (Wang et al., arXiv 2512.22522)
# ---------------------------------------------------------------------------------------------------------
@register_attack("sapgd")
@dataclass
class SAPGD(Attack):
    """Stable adaptive PGD (Wang, Zhao, Chen, Zhang, Zeng; arXiv 2512.22522), the partner of ASSG.

    ``m <- 0.5 m + g/mean|g|``, ``v <- 0.8 v + g^2/mean(g^2)`` (means per sample),
    ``step = clip(m/(sqrt(v) + 1e-12) * eta, -eta, eta)``, ``x <- proj(x + step)``; eta starts at eps and is
    halved unconditionally at APGD's checkpoints (first after 0.22 N steps, interval shrinking by 0.03 N,
    at least 0.06 N); ``steps`` = 100; random start ``x + eps * t / max|t|``, t uniform in [-1, 1]; best
    iterate kept. Code followed: ``ASSG_SAPGD.attack_single_run`` in
    craree/Towards-Reliable-Evaluation-of-Adversarial-Robustness-for-Spiking-Neural-Networks (``attack.py``);
    a zero gradient gives a zero step (the code would divide by zero).
    """

    steps: int = 100
    restarts: int = 1
    loss: str = "ce"
    name: str = "sapgd"

    def _perturb(self, model, x, y, eps, generator):
        if eps == 0 or len(y) == 0:
            return x.clone()
        dims = tuple(range(1, x.dim()))
        view = (-1, *[1] * (x.dim() - 1))
        best = x.clone()
        found = torch.zeros(len(y), dtype=torch.bool, device=x.device)
        k0, kmin, kdec = max(int(0.22 * self.steps), 1), max(int(0.06 * self.steps), 1), max(int(0.03 * self.steps), 1)
        for _ in range(int(self.restarts)):
            todo = (~found).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            xs, ys = x[todo], y[todo]
            t = 2 * torch.rand(xs.shape, generator=generator, device="cpu").to(xs.device) - 1
            t = t / t.abs().flatten(1).amax(1).clamp_min(1e-12).view(view)
            x_adv = (xs + eps * t).clamp(0.0, 1.0)
            logits, grad = self.loss_and_grad(model, x_adv, ys, self.loss)
            local_found = logits.argmax(1) != ys
            local_best = x_adv.clone()
            eta = torch.full((len(ys), *[1] * (x.dim() - 1)), float(eps), device=x.device, dtype=x.dtype)
            m = torch.zeros_like(x_adv)
            v = torch.zeros_like(x_adv)
            k, counter = k0, 0
            for i in range(int(self.steps)):
                g_abs = grad.abs().mean(dims, keepdim=True)
                g_sq = (grad * grad).mean(dims, keepdim=True)
                g1 = torch.where(g_abs > 0, grad / g_abs.clamp_min(1e-30), torch.zeros_like(grad))
                g2 = torch.where(g_sq > 0, grad * grad / g_sq.clamp_min(1e-30), torch.zeros_like(grad))
                m = 0.5 * m + g1 if i > 0 else g1
                v = 0.8 * v + g2 if i > 0 else g2
                step = torch.max(torch.min(m / (v.sqrt() + 1e-12) * eta, eta), -eta)
                x_adv = project(x_adv + step, xs, eps)
                logits, grad = self.loss_and_grad(model, x_adv, ys, self.loss)
                wrong = (logits.argmax(1) != ys) & ~local_found
                local_best[wrong] = x_adv[wrong]
                local_found |= wrong
                counter += 1
                if counter == k:
                    eta = eta / 2
                    counter = 0
                    k = max(k - kdec, kmin)
            best[todo] = torch.where(local_found.view(view), local_best, x_adv)
            found[todo] = local_found
        return best


# ---------------------------------------------------------------------------------------------------------
# Square (Andriushchenko et al., ECCV 2020) through pyautoattack
# ---------------------------------------------------------------------------------------------------------
@register_attack("square")
@dataclass
class Square(Attack):
    """Square attack (Andriushchenko, Croce, Flammarion, Hein; ECCV 2020), pyautoattack's ``SquareAttack``.

    Score-based random search on the margin loss, ``p_init`` = 0.8, up to ``queries`` queries (5000 in
    AutoAttack). ``rescale_schedule`` (pyautoattack's ``resc_schedule``) compresses the p schedule to the
    query budget. Stochastic models: every query is the logits averaged over ``eot_draws`` passes, so a
    step is accepted only when the loss averaged over several passes improves.
    """

    queries: int = 5000
    p_init: float = 0.8
    restarts: int = 1
    rescale_schedule: bool = True
    name: str = "square"
    category = "blackbox"

    def _perturb(self, model, x, y, eps, generator):
        if eps == 0 or len(y) == 0:
            return x.clone()
        from pyautoattack.square import SquareAttack

        draws = self.eot_draws if model.is_stochastic else 1
        wrapper = RuleModel(model, self.stats, draws=draws, no_grad=True)
        seed = draw_seed(generator)
        with isolated_rng(x.device), torch.no_grad():
            atk = SquareAttack(
                wrapper, norm="Linf", n_queries=int(self.queries), eps=float(eps), p_init=float(self.p_init),
                n_restarts=int(self.restarts), seed=seed, loss="margin", resc_schedule=bool(self.rescale_schedule),
                device=x.device,
            )
            adv = atk.perturb(x, y)
        return project(adv.to(x.dtype), x, eps)


# ---------------------------------------------------------------------------------------------------------
# SPSA (Uesato et al., ICML 2018)
# ---------------------------------------------------------------------------------------------------------
@register_attack("spsa")
@dataclass
class SPSA(Attack):
    """SPSA (Uesato, O'Donoghue, van den Oord, Kohli; ICML 2018): a gradient-free check.

    Each step estimates the gradient of the margin loss ``max_{i!=y} z_i - z_y`` from ``samples``
    antithetic Rademacher probes, ``g = mean_i (L(x + delta v_i) - L(x - delta v_i)) / (2 delta) * v_i``,
    and takes an Adam step (learning rate ``lr``) on the perturbation, projected onto the ball and box;
    ``steps`` iterations, best iterate kept (stops early for points already misclassified). The paper's
    settings: delta 0.01, lr 0.01, 100 iterations. Each probe costs one forward: run it on a subset.
    """

    steps: int = 100
    samples: int = 128
    delta: float = 0.01
    lr: float = 0.01
    max_batch: int = 2048
    name: str = "spsa"
    category = "blackbox"

    def _margin(self, model: SNNAdapter, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        out = []
        with torch.no_grad():
            for i in range(0, len(xs), self.max_batch):
                out.append(loss_values(model(xs[i : i + self.max_batch]), ys[i : i + self.max_batch], "margin"))
        self.stats.forwards += len(xs)
        return torch.cat(out)

    def _perturb(self, model, x, y, eps, generator):
        if eps == 0 or len(y) == 0:
            return x.clone()
        half = max(1, int(self.samples) // 2)
        n = len(y)
        shape = x.shape[1:]
        x_adv = x.clone()
        best = x.clone()
        found = torch.zeros(n, dtype=torch.bool, device=x.device)
        m1 = torch.zeros_like(x)
        m2 = torch.zeros_like(x)
        b1, b2, adam_eps = 0.9, 0.999, 1e-8
        for it in range(1, int(self.steps) + 1):
            active = (~found).nonzero().squeeze(1)
            if active.numel() == 0:
                break
            xa, ya = x_adv[active], y[active]
            v = torch.randint(0, 2, (len(active), half, *shape), generator=generator, device="cpu").to(x) * 2 - 1
            probes = torch.cat([xa[:, None] + self.delta * v, xa[:, None] - self.delta * v], 1)  # [A, 2h, ...]
            yy = ya[:, None].expand(-1, 2 * half).reshape(-1)
            f = self._margin(model, probes.reshape(-1, *shape), yy).view(len(active), 2 * half)
            df = (f[:, :half] - f[:, half:]) / (2 * self.delta)
            g = (df.view(len(active), half, *[1] * len(shape)) * v).mean(1)
            # Adam ascent on the margin loss (the loss increases towards misclassification)
            m1[active] = b1 * m1[active] + (1 - b1) * g
            m2[active] = b2 * m2[active] + (1 - b2) * g * g
            mh = m1[active] / (1 - b1**it)
            vh = m2[active] / (1 - b2**it)
            x_new = project(xa + self.lr * mh / (vh.sqrt() + adam_eps), x[active], eps)
            x_adv[active] = x_new
            with torch.no_grad():
                wrong = model(x_new).argmax(1) != ya
            self.stats.forwards += len(active)
            hit = active[wrong]
            best[hit] = x_new[wrong]
            found[hit] = True
        return torch.where(found.view(-1, *[1] * len(shape)), best, x_adv)


# ---------------------------------------------------------------------------------------------------------
# Uniform noise (sanity flag 12's reference)
# ---------------------------------------------------------------------------------------------------------
@register_attack("noise")
@dataclass
class UniformNoise(Attack):
    """Uniform random noise in the eps-ball: ``draws`` draws per point, the first misclassified kept.

    Not an attack anyone should rely on: it is the reference of sanity flag 12 (an attack that is barely
    stronger than noise is failing).
    """

    draws: int = 10
    name: str = "noise"
    category = "noise"

    def _perturb(self, model, x, y, eps, generator):
        if eps == 0 or len(y) == 0:
            return x.clone()
        best = x.clone()
        found = torch.zeros(len(y), dtype=torch.bool, device=x.device)
        last = x
        for _ in range(int(self.draws)):
            u = torch.rand(x.shape, generator=generator, device="cpu").to(x)
            last = project(x + (2 * u - 1) * eps, x, eps)
            with torch.no_grad():
                wrong = (model(last).argmax(1) != y) & ~found
            self.stats.forwards += len(y)
            best[wrong] = last[wrong]
            found |= wrong
        return torch.where(found.view(-1, *[1] * (x.dim() - 1)), best, last)


# ---------------------------------------------------------------------------------------------------------
# AutoAttack standard (Croce & Hein 2020) through pyautoattack: a reference, named as what it is
# ---------------------------------------------------------------------------------------------------------
@register_attack("autoattack")
@dataclass
class AutoAttackStandard(Attack):
    """AutoAttack ``version='standard'`` (APGD-CE, APGD-T, FAB-T, Square 5000) via ``pyautoattack.AutoAttack``.

    Runs ``run_standard_evaluation`` unchanged on the adapter under the attacker's rule (the model's own SG
    by default), so the number is comparable with RobustBench's "AutoAttack" on a differentiable model.
    For a stochastic model the APGD runs use the engine's EOT draws (AutoAttack's own advice for
    randomised defenses is ``version='rand'``); that is recorded in ``info``.
    """

    version: str = "standard"
    name: str = "autoattack"
    category = "reference"

    def _perturb(self, model, x, y, eps, generator):
        if eps == 0 or len(y) == 0:
            return x.clone()
        import logging

        from pyautoattack import AutoAttack

        wrapper = RuleModel(model, self.stats)
        seed = draw_seed(generator)
        with isolated_rng(x.device):
            aa = AutoAttack(wrapper, device=x.device, eps=float(eps), norm="Linf", seed=seed, version=self.version)
            aa.logger.setLevel(logging.WARNING)
            if model.is_stochastic:
                aa.apgd.eot_iter = self.eot_draws
                aa.apgd_targeted.eot_iter = self.eot_draws
                self.info["eot_iter"] = self.eot_draws
            adv, _ = aa.run_standard_evaluation(x, y, batch_size=max(1, len(y)))
        self.info["version"] = self.version
        self.info["attacks"] = ",".join(aa.attacks_to_run)
        return project(adv.to(x.dtype), x, eps)
