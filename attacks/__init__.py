"""The attack gauntlet: backward rules (surrogate-gradient-aware BPTT), attack algorithms, presets.

A white-box attack on an SNN needs a gradient through the Heaviside spike function; the attacker, not
the model, chooses that backward rule (:mod:`attacks.backward_rules`). Attack algorithms live in
:mod:`attacks.algorithms`; presets are data in bench.toml and resolved by :mod:`attacks.gauntlet`.
"""
