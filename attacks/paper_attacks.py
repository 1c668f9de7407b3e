"""The papers' own PGD / BIM loops, for the paper-protocol presets (issue 13): the *last* iterate.

The gauntlet's :class:`attacks.algorithms.PGD` keeps, per point, the first iterate that its forward
misclassifies (best iterate). The seed papers' code returns the last iterate instead: torchattacks' PGD
(SR code, ``snn_main_test.py``; RSSNN code, ``attack/pgd.py``) and Luu's ``source/attacks.py::pgd_attack``::

    x0 = clamp(x + U(-eps, eps), 0, 1)          (random start; BIM: x0 = x)
    x_{k+1} = clamp(x + clamp(x_k + a * sign(grad CE(x_k)) - x, -eps, eps), 0, 1)

and the score is taken at ``x_K``. ``pgd-last`` is that loop with ``a = step_size_ratio * eps``
(``random_start = false`` gives BIM, the MPD-SGR paper's third attack). With a deterministic model scored
in the mode it is crafted in, best iterate is at least as strong; the two differ when crafting and scoring
forwards differ (Luu's spike-domain protocol crafts with BatchNorm batch statistics and scores in eval mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attacks.base import Attack, project, register_attack


@register_attack("pgd-last")
@dataclass
class LastIteratePGD(Attack):
    """L-inf PGD (Madry et al. 2018) / BIM (Kurakin et al. 2017) that returns the last iterate, as the papers' code."""

    steps: int = 7
    step_size_ratio: float = 0.25
    random_start: bool = True
    name: str = "pgd-last"

    def _perturb(self, model, x, y, eps, generator):
        if eps == 0:
            return x.clone()
        step = self.step_size_ratio * eps
        if self.random_start:
            noise = torch.rand(x.shape, generator=generator, device="cpu").to(x.device)
            x_adv = project(x + (2 * noise - 1) * eps, x, eps)
        else:
            x_adv = x.clone()
        for _ in range(self.steps):
            _, grad = self.loss_and_grad(model, x_adv, y)
            x_adv = project(x_adv + step * grad.sign(), x, eps)
        return x_adv
