"""The attack gauntlet: backward rules (surrogate-gradient-aware BPTT), attack algorithms, tuning.

A white-box attack on an SNN needs a gradient through the Heaviside spike function; the attacker, not
the model, chooses that backward rule: surrogate families in :mod:`attacks.backward_rules`, the rate- and
time-based rules (BPTR, RGA, HART, PDSG, ASSG) in :mod:`attacks.temporal_rules`. Algorithms: FGSM and PGD
in :mod:`attacks.algorithms`; APGD-CE/T, Square and AutoAttack (pyautoattack's classes), SA-PGD, SPSA and
uniform noise in :mod:`attacks.gauntlet_attacks`; transfer attacks in :mod:`attacks.transfer`; per-model
tuning of a rule's parameter (HART's width grid, ASSG's ternary search) in :mod:`attacks.tuning`.
Presets are data in bench.toml, resolved by :func:`bench.config.resolve_preset`.
"""
