"""Issue 12, loss: results never overwrite or contradict each other, and stored files are verified before use.

Each test compares the store before and after (bytes of every file), or checks that a damaged or edited
file is one clear line (delete and rerun), never a number."""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
from pathlib import Path

import pytest

from bench.cli import main
from bench.config import PROJECT_ROOT, resolve_preset
from bench.errors import BenchError
from bench.evaluate import evaluate, result_stem
from bench.store import read_points, read_sealed, write_sealed
from models_zoo.cards import card_to_toml, sha256_file

KW = dict(limit=10, eps=0.05, device="cpu", progress=False)


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line(capsys, argv, status=2) -> str:
    assert main(argv) == status
    err = capsys.readouterr().err.strip().splitlines()
    err = [e for e in err if e.startswith("snnbench:")]
    assert len(err) == 1, err
    return err[0]


@pytest.fixture()
def store(isolated_outputs, monkeypatch):
    monkeypatch.setenv("SNNBENCH_SUBMISSIONS_DIR", str(isolated_outputs / "submissions"))
    return isolated_outputs / "results"


# -- 4. seed and exact eps ------------------------------------------------------------------------------------

def test_seed_and_exact_eps_never_share_a_file(digits_card, store):
    r0, p0, _ = evaluate(digits_card, **KW)
    before = snapshot(store)
    r7, p7, _ = evaluate(digits_card, **{**KW, "seed": 7})
    re, pe, _ = evaluate(digits_card, **{**KW, "eps": 0.0500001})
    assert len({p0, p7, pe}) == 3 and p7.name.endswith("_s7.json") and "eps0.0500001_" in pe.name
    assert p0.name == f"quick-v{resolve_preset('quick')['version']}_Linf_eps0.05_n10.json"  # the default configuration keeps today's name
    after = snapshot(store)
    assert {k: v for k, v in after.items() if k in before} == before, "the seed-0 / eps-0.05 files changed"
    assert r7["config"]["seed"] == 7 and re["eps"] == 0.0500001
    _, again, reused = evaluate(digits_card, **{**KW, "seed": 7})
    assert reused and again == p7


def test_a_file_holding_another_configuration_is_never_overwritten(digits_card, store):
    _, p7, _ = evaluate(digits_card, **{**KW, "seed": 7})
    p0 = p7.with_name(p7.name.replace("_s7", ""))
    shutil.copy(p7, p0)  # what the old naming did: a seed-7 result under the seed-0 name
    before = snapshot(store)
    with pytest.raises(BenchError, match=r"holds another configuration \(seed=7; this run has seed=0\): move or delete it"):
        evaluate(digits_card, **KW)
    with pytest.raises(BenchError, match="holds another configuration"):
        evaluate(digits_card, force=True, **KW)
    assert snapshot(store) == before


def test_committed_results_keep_their_names_and_pass_the_pair_check():
    """Every stored result is still found under the name its configuration gives, and its CSV agrees with it."""
    root = PROJECT_ROOT / "reports" / "results"
    n = 0
    for p in sorted(root.rglob("*.json")):
        r = json.loads(p.read_text())
        if "config_hash" not in r:
            continue
        c = r["config"]
        preset = dict(c["preset"])
        stem = result_stem(None, preset, c["threat_model"], c["eps"], c["n_points"], c["seed"], c.get("chunk_size", 250), c.get("batch_size"))
        assert p.name == stem + ".json", p
        assert read_points(r, p) is not None
        n += 1
    assert n >= 50


# -- 5. a card with a zoo id -----------------------------------------------------------------------------------

def test_a_card_with_a_zoo_id_cannot_overwrite_the_zoo_result(digits_card, store, capsys):
    zoo_id = "baseline-mnist5k-s0"
    src = PROJECT_ROOT / "reports" / "results" / "mnist5k" / zoo_id
    shutil.copytree(src, store / "mnist5k" / zoo_id)
    where = store.parent / "impostor"
    where.mkdir()
    shutil.copy(digits_card.checkpoint_path, where / "w.safetensors")
    data = tomllib.loads(digits_card.path.read_text())
    data.update(id=zoo_id, dataset="digits", checkpoint="w.safetensors")
    (where / "card.toml").write_text(card_to_toml(data))
    before = snapshot(store)
    for argv in (["eval", str(where / "card.toml"), "--device", "cpu"],
                 ["compare", zoo_id, str(where / "card.toml"), "--device", "cpu"]):
        err = one_line(capsys, argv)
        assert f"has id '{zoo_id}', which is a zoo entry's" in err, err
    assert snapshot(store) == before


# -- 6 and 7. the JSON/CSV pair and the partial chunks carry hashes that readers verify ---------------------------

def test_result_records_its_csv_hash_and_a_mismatched_pair_is_refused(digits_card, store, capsys, monkeypatch):
    import bench.evaluate as ev
    import bench.io as bio

    order: list[str] = []
    real_bytes, real_json = bio.atomic_write_bytes, ev.atomic_write_json
    monkeypatch.setattr(bio, "atomic_write_bytes", lambda p, d: (order.append(Path(p).name), real_bytes(p, d))[1])
    monkeypatch.setattr(ev, "atomic_write_json", lambda p, o: (order.append(Path(p).name), real_json(p, o))[1])
    r, p, _ = evaluate(digits_card, **KW)
    pair = [x for x in order if x in (p.with_suffix(".points.csv").name, p.name)]
    assert pair[:2] == [p.with_suffix(".points.csv").name, p.name], order  # CSV first, JSON last
    csv = p.with_suffix(".points.csv")
    assert r["points_sha256"] == sha256_file(csv)
    r5, p5, _ = evaluate(digits_card, **{**KW, "eps": 0.5})
    assert r5["points_sha256"] != r["points_sha256"]
    # another run's CSV beside this JSON (what a disk-full error between the two renames used to leave)
    shutil.copy(p5.with_suffix(".points.csv"), csv)
    before = snapshot(store)
    with pytest.raises(BenchError, match=r"does not match its result .* delete .* and rerun"):
        evaluate(digits_card, **KW)
    card = str(digits_card.path)
    err = one_line(capsys, ["compare", card, card, "--limit", "10", "--eps", "0.05", "--device", "cpu"])
    assert "does not match its result" in err, err
    for bad in (b"", b"\x00\xff garbage\n\x01", b"index,clean_correct,robust\n1,1,1\n"):
        csv.write_bytes(bad)
        r2 = dict(r)
        r2.pop("points_sha256")  # an old result without the hash: parse and shape checks still apply
        with pytest.raises(BenchError, match=r"points file .*(cannot be parsed|rows)"):
            read_points(r2, p)
    assert {k: v for k, v in snapshot(store).items() if not k.endswith(".points.csv")} == \
        {k: v for k, v in before.items() if not k.endswith(".points.csv")}


def test_edited_or_damaged_partial_chunks_are_refused(digits_card, store):
    kw = {**KW, "chunk_size": 5}
    info, partial, _ = evaluate(digits_card, chunks=[0], **kw)
    chunk = partial / "chunk_00000.json"
    good = chunk.read_bytes()
    sealed = json.loads(good)
    edited = json.loads(good)
    edited["payload"]["robust"] = [1] * len(edited["payload"]["robust"])  # "worst case 100%"
    short = json.loads(json.dumps(sealed["payload"]))
    short["robust"] = short["robust"][:2]
    cases = {
        "edited": json.dumps(edited).encode(),
        "truncated": good[: len(good) // 2],
        "binary": b"\xff\xfe\x00\x01",
        "empty object": b"{}",
        "empty file": b"",
        "a list": b"[1, 2]",
    }
    for name, data in cases.items():
        chunk.write_bytes(data)
        with pytest.raises(BenchError, match=r"delete the folder .* and rerun") as e:
            evaluate(digits_card, **kw)
        assert "\n" not in str(e.value), name
    write_sealed(chunk, short)  # a validly sealed chunk with short arrays
    with pytest.raises(BenchError, match=r"arrays of the wrong length"):
        evaluate(digits_card, **kw)
    chunk.write_bytes(good)
    assert read_sealed(chunk, "x") == sealed["payload"]
    resumed, _, _ = evaluate(digits_card, **kw)
    shutil.rmtree(store)
    fresh, _, _ = evaluate(digits_card, **kw)
    assert resumed["robust_acc"] == fresh["robust_acc"] and resumed["points_sha256"] == fresh["points_sha256"]


def test_unreadable_result_json_is_recomputed_or_one_line(digits_card, store, capsys):
    from bench.evaluate import _existing_result

    r, p, _ = evaluate(digits_card, **KW)
    for bad in (b"\xff\xfe not utf-8", b"[1, 2, 3]", json.dumps({"config_hash": r["config_hash"]}).encode()):
        p.write_bytes(bad)
        assert _existing_result(p, r["config"]) is None  # unreadable or incomplete: not reused, recomputed
    again, _, reused = evaluate(digits_card, **KW)  # (the last one: right hash, missing keys)
    assert not reused and again["robust_acc"] == r["robust_acc"]
    p.write_bytes(b"\xff\xfe not utf-8")
    err = one_line(capsys, ["leaderboard"])
    assert "not valid UTF-8 JSON" in err and str(p) in err


def test_a_result_lacking_keys_is_one_line_for_the_leaderboard(store, capsys):
    p = store / "digits" / "x" / "quick-v1_Linf_eps0.05_n10.json"
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps({"config_hash": "0" * 16, "robust_acc": 47.0, "model_id": "x"}))
    err = one_line(capsys, ["leaderboard"])
    assert "lacks the key(s) dataset" in err and str(p) in err, err
