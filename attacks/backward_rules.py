"""Backward rules for the Heaviside spike, chosen by the attacker: the full catalogue.

Every rule changes only the backward pass. The forward spike is always ``S = 1[x >= 0]`` with
``x = H - theta`` (spikingjelly's ``surrogate.heaviside``), so a model's outputs are identical under any
rule. A rule takes over a neuron layer's whole temporal loop (:meth:`BackwardRule.run`): the rules that
reshape the temporal graph (BPTR, RGA, HART, PDSG, ASSG; :mod:`attacks.temporal_rules`) override ``run``,
the per-element surrogate families (atan, triangle, rectangle, sigmoid, straight-through;
:mod:`attacks.surrogates`) only override :meth:`BackwardRule.surrogate_grad`.

This module is the one to import: it loads both, so :func:`make_rule` and :func:`parse_rule` know every
rule. The base lives in :mod:`attacks.surrogates` and the temporal rules register into its registry, so
imports point one way (tests/test_layers.py).
"""

from __future__ import annotations

from attacks import temporal_rules as _temporal_rules  # noqa: F401  (registers bptr, rga, hart, pdsg, assg)
from attacks.surrogates import (  # noqa: F401  (the catalogue's API)
    RULE_FACTORIES,
    SURROGATE_FAMILIES,
    BackwardRule,
    SurrogateRule,
    heaviside,
    known_rules,
    make_rule,
    parse_rule,
    register_rule,
    support_halfwidth,
    training_rule,
)
