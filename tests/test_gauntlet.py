"""The full gauntlet: new attack algorithms' invariants, the engine's families / unbroken_by / subsets,
stochastic scoring, the twelve flags' new members, presets, and one end-to-end evaluation with tuning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from attacks.algorithms import make_attack
from attacks.gauntlet_attacks import APGDCE, APGDT, SAPGD, SPSA, AutoAttackStandard, Square, UniformNoise
from attacks.transfer import Transfer, resolve_source
from bench import flags as F
from bench.adapter import SNNAdapter
from bench.config import load_config, resolve_preset
from bench.engine import BROKE, NOT_RUN, ChunkOutcome, mask_accuracy, run_chunk
from bench.errors import BenchError
from bench.evaluate import prior_attacks, summarise, validate_attacks

NEW_ATTACKS = [
    lambda: APGDCE(steps=10),
    lambda: APGDCE(steps=8, loss="dlr", rule="atan:alpha=4"),
    lambda: APGDT(steps=4, targets=3),
    lambda: SAPGD(steps=10, rule="assg"),
    lambda: SAPGD(steps=6, rule="hart:gamma=0.5"),
    lambda: Square(queries=40),
    lambda: SPSA(steps=3, samples=8),
    lambda: UniformNoise(draws=3),
    lambda: Transfer(source="ann-twin", steps=3),
]


@pytest.fixture()
def batch(digits_data):
    return digits_data.test.x[:48], digits_data.test.y[:48]


@pytest.mark.parametrize("make", NEW_ATTACKS)
def test_new_attacks_ball_box_restore_and_identity_at_eps0(make, digits_model, batch):
    x, y = batch
    before = digits_model.state_snapshot()
    rng = torch.get_rng_state()
    a = make()
    x_adv = a.perturb(digits_model, x, y, 0.15, torch.Generator().manual_seed(0))
    assert digits_model.state_snapshot() == before, "mode or neuron rules not restored"
    assert torch.equal(torch.get_rng_state(), rng), "the global RNG must be left as it was (pyautoattack reseeds it)"
    assert (x_adv - x).abs().max() <= 0.15 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert torch.equal(make().perturb(digits_model, x, y, 0.0, torch.Generator().manual_seed(0)), x)
    again = make().perturb(digits_model, x, y, 0.15, torch.Generator().manual_seed(0))
    assert torch.equal(again, x_adv), "same seed, same examples"


def test_gradient_attacks_break_points_and_keep_the_best_iterate(digits_model, batch):
    x, y = batch
    with torch.no_grad():
        clean = digits_model(x).argmax(1) == y
    for a in (APGDCE(steps=20), SAPGD(steps=20, rule="assg"), APGDT(steps=10, targets=2)):
        x_adv = a.perturb(digits_model, x, y, 0.3, torch.Generator().manual_seed(1))
        with torch.no_grad():
            adv = digits_model(x_adv).argmax(1) == y
        assert (clean & adv).float().mean() < clean.float().mean() - 0.3, type(a).__name__


def test_autoattack_reference_runs_unchanged(digits_model, batch):
    x, y = batch[0][:12], batch[1][:12]
    a = AutoAttackStandard()
    x_adv = a.perturb(digits_model, x, y, 0.3, torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() <= 0.3 + 1e-6
    assert a.info["version"] == "standard" and "apgd-t" in a.info["attacks"] and "square" in a.info["attacks"]


def test_transfer_source_resolution(digits_model, batch):
    from models_zoo.zoo import list_cards

    cards = list_cards()
    ids = [c.id for c in cards]
    mnist = [c for c in cards if c.dataset == "mnist5k"]
    chosen = resolve_source("auto", "someone-else", "mnist5k")
    if mnist:
        assert chosen in ids and next(c for c in cards if c.id == chosen).dataset == "mnist5k"
    assert resolve_source("auto", None, "no-such-dataset") is None
    assert resolve_source(ids, ids[0], None) == (ids[1] if len(ids) > 1 else None)
    with pytest.raises(BenchError, match="not in the zoo"):
        resolve_source(["nope-1"], None, None)
    # no zoo model of the digits data set: the attack is a recorded no-op
    t = make_attack({"name": "tz", "attack": "transfer", "source": "auto"}, {"model_id": "x", "dataset": "digits"})
    x, y = batch
    assert torch.equal(t.perturb(digits_model, x, y, 0.1, torch.Generator()), x)
    assert t.info["source"].startswith("none")


# -- engine: unbroken_by, subsets, families, worst case -----------------------------------------------------
PRESET = {
    "name": "t",
    "version": 1,
    "own_sg_attack": "pgd-own",
    "attacks": [
        {"name": "fgsm-own", "attack": "fgsm", "rule": "own", "on": "all", "family": "own"},
        {"name": "pgd-own", "attack": "pgd", "rule": "own", "on": "all", "steps": 3, "family": "own"},
        {"name": "pgd-atan", "attack": "pgd", "rule": "atan:alpha=4", "on": "unbroken", "unbroken_by": ["fgsm-own", "pgd-own"], "steps": 3, "family": "sweep"},
        {"name": "pgd-rect", "attack": "pgd", "rule": "rectangle:gamma=1", "on": "unbroken", "unbroken_by": ["fgsm-own", "pgd-own"], "steps": 3, "family": "sweep"},
        {"name": "square", "attack": "square", "rule": "own", "on": "unbroken", "queries": 20},
        {"name": "spsa", "attack": "spsa", "rule": "own", "on": "unbroken", "subset_every": 4, "steps": 2, "samples": 4},
        {"name": "noise", "attack": "noise", "rule": "own", "on": "all", "draws": 2},
    ],
}


def test_worst_case_never_above_any_attack_or_family(digits_model, digits_data):
    x, y = digits_data.test.x[:100], digits_data.test.y[:100]
    o = run_chunk(digits_model, x, y, 0.08, PRESET["attacks"], batch_size=40, seed=0, chunk=0)
    s = summarise(o, PRESET)
    worst = s["robust_acc"]
    assert worst <= s["clean_acc"]
    for name, v in s["per_attack"].items():
        for key in ("robust_acc", "cumulative_robust_acc", "robust_acc_given"):
            if v[key] is not None:
                assert worst <= v[key] + 1e-9, (name, key)
    for fam in s["families"].values():
        assert worst <= fam["robust_acc_given"] + 1e-9
    # unbroken_by: the sweep ran on exactly the points the own-SG attacks left, both members alike
    base_broken = (o.per_attack["fgsm-own"] == BROKE) | (o.per_attack["pgd-own"] == BROKE)
    for name in ("pgd-atan", "pgd-rect"):
        assert np.array_equal(o.per_attack[name] != NOT_RUN, o.clean_correct & ~base_broken), name
    # subset_every: only every 4th point of the chunk
    assert np.all(np.flatnonzero(o.per_attack["spsa"] != NOT_RUN) % 4 == 0)
    assert s["per_attack"]["pgd-atan"]["given"] == ["fgsm-own", "pgd-own"]
    assert prior_attacks(PRESET, 4) == ["fgsm-own", "pgd-own", "pgd-atan", "pgd-rect"]
    assert s["top_attack"] in s["per_attack"]


def test_unbroken_by_must_name_earlier_attacks(digits_model, digits_data):
    bad = [PRESET["attacks"][2], PRESET["attacks"][0]]
    with pytest.raises(BenchError, match="not earlier attacks"):
        run_chunk(digits_model, digits_data.test.x[:10], digits_data.test.y[:10], 0.1, bad, 10, 0, 0)
    with pytest.raises(BenchError, match="not an earlier attack"):
        validate_attacks({"name": "t", "attacks": bad})


def test_stochastic_model_scored_over_passes_with_common_random_numbers(digits_model, digits_data):
    noisy = SNNAdapter(digits_model.net, time_steps=digits_model.time_steps, encoder="poisson", own_rule=digits_model.own_rule, seed=3)
    noisy.eval()
    assert noisy.is_stochastic
    x, y = digits_data.test.x[:60], digits_data.test.y[:60]
    attacks = [{"name": "fgsm", "attack": "fgsm", "rule": "own", "on": "all"}, {"name": "noise", "attack": "noise", "rule": "own", "on": "unbroken", "draws": 2}]
    zero = run_chunk(noisy, x, y, 0.0, attacks, batch_size=25, seed=0, chunk=0)
    assert zero.passes == 10
    for name in ("fgsm", "noise"):  # every attack's eps = 0 example reproduces the clean passes exactly
        assert np.array_equal(zero.attack_masks[name] & zero.clean_mask, zero.clean_mask)
    # the worst case commits one example per point (at eps = 0 the clean image itself) and scores it over
    # fresh passes: the same accuracy up to the passes' spread (bench/stochastic.py)
    assert set(zero.committed_by) == {""}
    from bench.stochastic import pass_accuracies, spread_tolerance

    pc, pr = pass_accuracies(zero.clean_mask, 10), pass_accuracies(zero.robust_mask, 10)
    assert abs(np.mean(pc) - np.mean(pr)) <= spread_tolerance(pc, pr)
    o = run_chunk(noisy, x, y, 0.2, attacks, batch_size=25, seed=0, chunk=0)
    s = summarise(o, {"name": "t", "version": 1, "attacks": attacks})
    assert s["scoring_passes"] == 10 and s["robust_acc_worst_pass"] <= s["robust_acc"] <= s["clean_acc"]
    assert s["clean_acc_worst_pass"] <= s["clean_acc"]
    assert 0 < s["clean_acc"] < 100  # Poisson noise makes some passes wrong
    mean, worst = mask_accuracy(np.array([0b11, 0b01, 0b00]), 2)
    assert (mean, worst) == (50.0, round(100 / 3, 4))


# -- the new flags on synthetic outcomes ---------------------------------------------------------------------
def _outcome(columns: dict[str, list[int]], clean: list[int]) -> ChunkOutcome:
    c = np.array(clean, dtype=bool)
    per = {k: np.array(v, dtype=np.int8) for k, v in columns.items()}
    return ChunkOutcome(clean_pred=np.zeros(len(c)), clean_correct=c, robust=c.copy(), broken_by=np.array([""] * len(c), dtype=object), per_attack=per)


def _preset(*specs):
    return {"name": "t", "version": 1, "attacks": [{"on": "unbroken", "rule": "own", **s} for s in specs]}


def test_flag_9_blackbox_beats_whitebox():
    S, B, N = 0, BROKE, NOT_RUN
    preset = _preset({"name": "pgd", "attack": "pgd", "on": "all"}, {"name": "sq", "attack": "square"}, {"name": "tr", "attack": "transfer"})
    o = _outcome({"pgd": [B, S, S, S, S], "sq": [N, B, S, S, S], "tr": [N, N, S, S, S]}, [1, 1, 1, 1, 1])
    f = F.blackbox_beats_whitebox(o, preset)
    assert f is not None and f.id == 9 and f.values["whitebox_acc"] == 80.0 and f.values["with_blackbox_acc"] == 60.0
    o2 = _outcome({"pgd": [B, S, S, S, S], "sq": [N, S, S, S, S], "tr": [N, S, S, S, S]}, [1, 1, 1, 1, 1])
    assert F.blackbox_beats_whitebox(o2, preset) is None


def test_flag_11_pairs_each_rule_with_its_own_sg_twin_and_needs_significance_and_live_gradients():
    S, B, N = 0, BROKE, NOT_RUN
    preset = _preset(
        {"name": "pgd-own", "attack": "pgd", "on": "all", "steps": 20},
        {"name": "atan", "attack": "pgd", "rule": "atan:alpha=2", "unbroken_by": ["pgd-own"], "steps": 20},
        {"name": "twin", "attack": "pgd", "unbroken_by": ["pgd-own"], "steps": 20},
        {"name": "long", "attack": "sapgd", "rule": "assg", "unbroken_by": ["pgd-own"], "steps": 100},
    )
    n = 40
    own = [B] * 4 + [S] * (n - 4)
    atan = [N] * 4 + [B] * 12 + [S] * (n - 16)  # 12 breaks on the own-SG survivors
    twin = [N] * 4 + [B] * 1 + [S] * (n - 5)    # the own SG at the same budget: 1
    long = [N] * 4 + [B] * 20 + [S] * (n - 24)  # no own-SG SA-PGD twin: never compared
    o = _outcome({"pgd-own": own, "atan": atan, "twin": twin, "long": long}, [1] * n)
    live = np.ones(n, dtype=bool)
    o.alive = {"atan": live, "twin": live, "long": live}
    f = F.sg_sensitivity(o, preset)
    pair = f.values["pairs"]["atan"]
    assert f.id == 11 and f.values["best_attack"] == "atan" and set(f.values["pairs"]) == {"atan"}
    assert pair["twin"] == "twin" and (pair["rule_only"], pair["twin_only"]) == (11, 0) and pair["gain"] == 27.5
    assert pair["p"] == pytest.approx(2 * 0.5**11)
    # the same breaks through dead gradients count for nobody
    o.alive = {"atan": np.zeros(n, dtype=bool), "twin": live}
    assert F.sg_sensitivity(o, preset) is None
    # a gain the twin matches is no signal
    o2 = _outcome({"pgd-own": own, "atan": atan, "twin": atan, "long": long}, [1] * n)
    o2.alive = {"atan": live, "twin": live}
    assert F.sg_sensitivity(o2, preset) is None
    # few discordant points: above 2 points of gain but not significant
    small = [N] * 4 + [B] * 3 + [S] * (n - 7)
    o3 = _outcome({"pgd-own": own, "atan": small, "twin": [N] * 4 + [S] * (n - 4), "long": long}, [1] * n)
    o3.alive = {"atan": live, "twin": live}
    assert F.sg_sensitivity(o3, preset) is None


def test_flag_12_noise_and_flag_2_eps0():
    S, B = 0, BROKE
    preset = _preset({"name": "pgd", "attack": "pgd", "on": "all"}, {"name": "noise", "attack": "noise", "on": "all"})
    weak = _outcome({"pgd": [B, S, S, S], "noise": [B, S, S, S]}, [1, 1, 1, 1])
    assert F.noise_as_strong(weak, preset).id == 12
    strong = _outcome({"pgd": [B, B, B, S], "noise": [B, S, S, S]}, [1, 1, 1, 1])
    assert F.noise_as_strong(strong, preset) is None
    assert F.eps0_mismatch({"points": 8, "clean_acc": 100.0, "robust_acc": 100.0, "changed_by": {}}) is None
    assert F.eps0_mismatch({"points": 8, "clean_acc": 100.0, "robust_acc": 87.5, "changed_by": {"pgd": 1}}).id == 2


def test_flag_10_eps_monotonicity():
    ok = {"robust_acc": {"0.1": 50.0, "0.2": 20.0, "0.5": 5.0}, "majority_class_pct": 10.0, "points": 100}
    assert F.eps_monotonicity(ok, 0.2, 20.0) is None
    rising = dict(ok, robust_acc={"0.1": 50.0, "0.2": 60.0, "0.5": 5.0})
    assert F.eps_monotonicity(rising, 0.2, 60.0).id == 10
    stuck = dict(ok, robust_acc={"0.1": 50.0, "0.2": 40.0, "0.5": 30.0})
    assert "majority-class" in F.eps_monotonicity(stuck, 0.2, 40.0).message
    assert F.eps_monotonicity(None, 0.2, 1.0) is None


# -- presets -----------------------------------------------------------------------------------------------
def test_standard_and_full_presets_contain_the_spec_gauntlet():
    std = resolve_preset("standard")
    full = resolve_preset("full")
    for p in (std, full):
        validate_attacks(p)
        by = {a["name"]: a for a in p["attacks"]}
        assert by["apgd-ce-own"]["attack"] == "apgd-ce" and by["apgd-ce-own"]["steps"] == 100
        # standard v4: the runner-up target only (docs/presets.md); full keeps 3
        assert by["apgd-t-own"]["targets"] == (1 if p is std else 3) and by["apgd-t-own"]["steps"] == 100
        rules = {a["rule"] for a in p["attacks"]}
        sweep = {f"atan:alpha={a}" for a in (2, 4, 8, 16)} | {f"triangle:gamma={g}" for g in (0.25, 0.5, 1, 2)}
        sweep |= {f"rectangle:gamma={g}" for g in (0.5, 1, 2)} | {"sigmoid:alpha=4", "straight-through"}
        assert sweep <= rules
        assert {"bptr", "rga", "hart", "pdsg", "assg"} <= rules
        assert by["sapgd100-assg"]["attack"] == "sapgd" and by["sapgd100-assg"]["tune"]["param"] == "A"
        assert by["pgd20-hart"]["tune"]["grid"][0] == 0.1 and by["pgd20-hart"]["tune"]["grid"][-1] == 2.5
        kinds = {a["attack"] for a in p["attacks"]}
        assert {"square", "transfer", "noise"} <= kinds
        assert {a.get("source") for a in p["attacks"] if a["attack"] == "transfer"} == {"ann-twin", "auto"}
    # v4: every attacker rule is probed, the best 3 run on every point, the rest on every 10th
    probe = std["probe"]
    assert set(probe["attacks"]) == {a["name"] for a in std["attacks"] if a["rule"] not in ("own", "assg") and a["attack"] == "pgd"}
    assert probe["keep"] == 3 and probe["others_subset_every"] == 10
    names_std = [a["name"] for a in std["attacks"]]
    assert set(names_std) - {"square500"} <= {a["name"] for a in full["attacks"]}
    assert {"autoattack", "spsa"} <= {a["attack"] for a in full["attacks"]}
    assert load_config()["presets"]["full"]["eps_sweep"]["attacks"]
    aa = resolve_preset("autoattack-standard")
    assert [a["attack"] for a in aa["attacks"]] == ["autoattack"] and aa["attacks"][0]["version"] == "standard"


# -- end to end: tuning, eps sweep, eps-0 check, flags, result keys ---------------------------------------------
def test_evaluate_end_to_end_with_tuning_and_sweep(digits_card, tmp_path, monkeypatch):
    import bench.evaluate as E

    cfg = load_config()
    cfg["presets"]["tiny"] = {
        "version": 1,
        "own_sg_attack": "pgd-own",
        "attacks": [
            {"name": "fgsm-own", "attack": "fgsm", "rule": "own", "on": "all"},
            {"name": "pgd-own", "attack": "pgd", "rule": "own", "on": "all", "steps": 3},
            {"name": "pgd-hart", "attack": "pgd", "rule": "hart", "unbroken_by": ["fgsm-own", "pgd-own"], "steps": 3,
             "tune": {"param": "gamma", "grid": [0.5, 1.0], "points": 16, "steps": 2}},
            {"name": "sapgd-assg", "attack": "sapgd", "rule": "assg", "unbroken_by": ["fgsm-own", "pgd-own"], "steps": 4,
             "tune": {"param": "A", "range": [0.35, 0.49], "iterations": 1, "points": 16, "steps": 2}},
            {"name": "square", "attack": "square", "on": "unbroken", "queries": 10},
            {"name": "noise", "attack": "noise", "on": "all", "draws": 2},
        ],
        "eps_sweep": {"attacks": ["pgd-own"], "points": 30, "extra_eps": [0.5]},
    }
    monkeypatch.setattr(E, "load_config", lambda *a, **k: cfg)
    r, path, reused = E.evaluate(digits_card, preset="tiny", eps=0.1, limit=50, results_root=tmp_path, progress=False)
    assert not reused
    stored = json.loads(path.read_text())
    assert set(stored["tuning"]) == {"pgd-hart", "sapgd-assg"}
    assert stored["tuning"]["pgd-hart"]["value"] in (0.5, 1.0)
    assert 0.35 <= stored["tuning"]["sapgd-assg"]["value"] <= 0.49
    assert stored["per_attack"]["pgd-hart"]["rule_used"].startswith("hart:gamma=")
    assert set(stored["eps_sweep"]["robust_acc"]) == {"0.05", "0.1", "0.15", "0.2", "0.3", "0.5"}
    assert stored["eps0_check"]["robust_acc"] == stored["eps0_check"]["clean_acc"]
    assert stored["config"]["engine_version"] == E.ENGINE_VERSION == 2
    assert stored["robust_acc"] <= min(v["robust_acc_given"] for v in stored["per_attack"].values())
    assert all(isinstance(f["id"], int) and f["values"] is not None for f in stored["flags"])
    assert not any(f["id"] == 2 for f in stored["flags"])
