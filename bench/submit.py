"""`snnbench submit CARD.toml`: validate a submitted checkpoint, accept it, run the gauntlet, rebuild the leaderboard.

A submission is a model card (the zoo's schema, :mod:`models_zoo.cards`) pointing at a checkpoint and an
architecture. The architecture is a registered name (``snnbench zoo list`` shows the ones in use) or
``path/to/file.py:factory``, a custom spikingjelly model: that imports and RUNS the submitter's Python
code (a trust boundary, see :mod:`bench.custom_arch`), so it is refused unless ``--trust-code`` is given,
and the card is marked ``custom_code`` on the leaderboard. Weights are loaded weights-only: safetensors,
or a ``.pt`` state_dict read by ``torch.load(weights_only=True)`` (a pickle that would run code is refused
before it runs).

Validation, before any attack; the first failure stops with one line (``BenchError``) naming the check:

1. ``schema``: the card validates, its id is not a zoo id;
2. ``checkpoint``: the file exists, its sha256 and size match the card;
3. ``architecture``: the architecture builds (custom code only with ``--trust-code``);
4. ``weights``: the weights load (weights-only) into it, missing/unexpected keys listed;
5. ``output``: the input contract fits (``io_contract``, declared or detected: :meth:`bench.adapter.SNNAdapter.check_contract`),
   logits ``[N, num_classes]``, all finite;
6. ``state``: no state leak (the same input, before and after another one, every random stream reseeded,
   gives the same logits);
7. ``stochastic``: a stochastic forward is detected and recorded (not a failure: the engine uses EOT);
8. ``clean accuracy``: on the full test split, within 0.5 points of ``claimed_clean_acc``; otherwise the
   submission is accepted but flagged (flag 3) and the gap reported.

An accepted submission is copied to ``submissions/<id>/`` (``card.toml``, the checkpoint, the custom code
file if any, and ``submission.json``, the validation record); its results go to ``reports/results/`` like
any zoo model's, and the leaderboard is regenerated.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench import flags as F
from bench.config import PROJECT_ROOT
from bench.custom_arch import code_path, code_sha256, is_custom, split_spec
from bench.errors import BenchError
from bench.io import atomic_write_json
from models_zoo.cards import ModelCard, card_to_toml, load_card, verify_checkpoint
from models_zoo.lookup import (  # noqa: F401  (re-exported: card lookup moved to models_zoo/lookup.py)
    CARD_NAME,
    SUBMISSIONS_ENV,
    check_not_shadowing,
    find_card,
    submission_cards,
    submissions_dir,
)

RECORD_NAME = "submission.json"

Report = Callable[[str], None]


@dataclass
class SubmissionCheck:
    """What validation found (written to ``submission.json`` when the submission is accepted)."""

    model_id: str
    dataset: str
    architecture: str
    custom_code: bool
    code_sha256: str | None
    checkpoint_sha256: str
    checkpoint_format: str
    n_parameters: int
    stochastic: bool
    clean_acc: float
    claimed_clean_acc: float
    n_test: int
    flags: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _refuse(step: str, message: str) -> BenchError:
    return BenchError(f"submission refused [{step}]: {message}")


def _step(step: str, fn: Callable[[], Any]) -> Any:
    """Run one check; turn its failure (a BenchError, or anything the submitter's code raises) into one line."""
    try:
        return fn()
    except BenchError as e:
        raise _refuse(step, str(e)) from None
    except SystemExit as e:  # custom code calling sys.exit() must not end the validation silently
        raise _refuse(step, f"the model's code called sys.exit({e.code!r}): custom code must not exit") from None
    except Exception as e:  # custom code may raise anything
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise _refuse(step, f"{type(e).__name__}: {first}") from None


def _nonfinite_tensors(state: dict[str, torch.Tensor]) -> list[str]:
    return [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


def validate_submission(
    card_path: str | Path,
    device: str = "cpu",
    trust_code: bool = False,
    report: Report | None = None,
    batch_size: int = 500,
) -> tuple[SubmissionCheck, ModelCard]:
    """Run every check on a submitted card (see the module docstring); raise one-line BenchErrors."""
    from bench.data import load_dataset
    from bench.device import resolve_device
    from models_zoo.checkpoints import load_state_dict, load_weights_into
    from models_zoo.zoo import build_net, list_cards, wrap

    say = report or (lambda _msg: None)
    # 1. schema
    card: ModelCard = _step("schema", lambda: load_card(card_path))
    if card.id in {c.id for c in list_cards()}:
        raise _refuse("schema", f"id '{card.id}' is a zoo entry's: give your model its own id in the card")
    custom = is_custom(card.architecture)
    code_file: Path | None = None
    if custom:
        _step("schema", lambda: split_spec(card.architecture))
        code_file = _step("schema", lambda: code_path(card.architecture, card.path))
        if not code_file.is_file():
            raise _refuse("schema", f"custom architecture file {code_file} not found: 'architecture' is relative to the card file")
    say(f"ok   schema: card {card.path.name if card.path else card.id} (id '{card.id}', dataset {card.dataset})")

    # 2. checkpoint exists, sha256 and size match
    ckpt: Path = _step("checkpoint", lambda: verify_checkpoint(card))
    say(f"ok   checkpoint: {ckpt.name} sha256 {card.sha256[:12]}... ({card.size_bytes} bytes)")

    # 3. architecture (custom code runs here, and only with trust_code)
    if custom and not trust_code:
        raise _refuse(
            "architecture",
            f"'{card.architecture}' is Python code that snnbench would import and run with your permissions: "
            f"read {code_file} first, then rerun with --trust-code",
        )
    from bench.custom_arch import trust_code as _trusting

    with _trusting(trust_code):
        net = _step("architecture", lambda: build_net(card))
    say(f"ok   architecture: {card.architecture}" + (" (custom code, trusted by --trust-code)" if custom else ""))

    # 4. weights: weights-only load, then strict key / shape match
    state = _step("weights", lambda: load_state_dict(ckpt))
    _step("weights", lambda: load_weights_into(net, state, card.id))  # also refuses NaN/inf parameters and buffers
    n_params = sum(p.numel() for p in net.parameters())
    say(f"ok   weights: {len(state)} tensors, {n_params} parameters, loaded weights-only")

    dev = resolve_device(device)
    adapter = _step("architecture", lambda: wrap(net, card).to(dev).eval())
    ds = _step("output", lambda: load_dataset(card.dataset))
    k = int(card.num_classes)
    if ds.num_classes != k:
        raise _refuse("schema", f"num_classes = {k} but data set '{card.dataset}' has {ds.num_classes} classes")

    # 5. output: the input contract (time-major or image, bench/adapter.py), logits of the right shape, finite
    probe = ds.test.x[:32].to(dev)
    contract = _step("output", lambda: adapter.check_contract(probe, leak=False))
    with torch.no_grad():
        logits = _step("output", lambda: adapter(probe))
    if tuple(logits.shape) != (len(probe), k):
        raise _refuse("output", f"the model returns shape {tuple(logits.shape)} for {len(probe)} images, expected [{len(probe)}, {k}] "
                      f"(num_classes = {k}): return one logit per class")
    bad_rows = int((~torch.isfinite(logits)).any(1).sum())
    if bad_rows:
        bad_w = _nonfinite_tensors(state)
        hint = f"the checkpoint holds NaN/inf in {', '.join(bad_w[:4])}" if bad_w else "check the model's arithmetic"
        raise _refuse("output", f"model '{card.id}' gives non-finite logits (NaN/inf) for {bad_rows} of {len(probe)} test images: {hint}")
    warnings: list[str] = []
    prob = F.probability_outputs(logits.cpu())
    if prob:
        warnings.append(prob.message)
    say(f"ok   output: logits [N, {k}], finite ({contract} input contract)")

    # 6. no state leak
    leak = _step("state", lambda: F.state_leak(adapter, probe[:8], probe[8:16]))
    if leak:
        raise _refuse(
            "state", f"model '{card.id}': {leak.message}: keep per-forward state in spikingjelly memories "
            "(reset by functional.reset_net) or reset it at the start of forward()"
        )
    say("ok   state: same input twice gives the same logits (no state leak)")

    # 7. stochastic forward: detected and recorded
    stochastic = bool(_step("stochastic", lambda: adapter.detect_stochastic(probe[:16])))
    stochastic = stochastic or adapter.declared_stochastic
    say(f"ok   stochastic: {'yes (recorded; attacks use >= 10 EOT draws)' if stochastic else 'no (deterministic forward)'}")

    # 8. clean accuracy on the full test split vs the claim (a gap is flagged, not refused)
    correct, nonfinite = 0, 0
    with torch.no_grad():
        for i in range(0, len(ds.test), batch_size):
            out = _step("output", lambda i=i: adapter(ds.test.x[i : i + batch_size].to(dev))).cpu()
            nonfinite += int((~torch.isfinite(out)).any(1).sum())
            correct += int((out.argmax(1) == ds.test.y[i : i + batch_size]).sum())
    if nonfinite:
        raise _refuse("output", f"model '{card.id}' gives non-finite logits (NaN/inf) for {nonfinite} of {len(ds.test)} test images")
    acc = round(100.0 * correct / len(ds.test), 4)
    claim = float(card.claimed_clean_acc)
    flag = F.clean_vs_claim(acc, claim, full_test_set=True)
    flags = [flag.to_dict()] if flag else []
    if flag:
        say(f"FLAG clean accuracy: {flag.message} (tolerance {F.CLAIM_TOL} points): flag F3 is recorded and shown on the leaderboard")
    else:
        say(f"ok   clean accuracy: {acc:.2f} on {len(ds.test)} test images (claimed {claim:.2f}, within {F.CLAIM_TOL} points)")
    for w in warnings:
        say(f"WARN {w}")

    check = SubmissionCheck(
        model_id=card.id,
        dataset=card.dataset,
        architecture=card.architecture,
        custom_code=custom,
        code_sha256=code_sha256(code_file) if code_file else None,
        checkpoint_sha256=card.sha256,
        checkpoint_format=ckpt.suffix.lstrip(".").lower(),
        n_parameters=n_params,
        stochastic=stochastic,
        clean_acc=acc,
        claimed_clean_acc=claim,
        n_test=len(ds.test),
        flags=flags,
        warnings=warnings,
    )
    return check, card


def accept(card: ModelCard, check: SubmissionCheck, replace: bool = False, directory: Path | None = None) -> ModelCard:
    """Copy card, checkpoint (and custom code) to ``submissions/<id>/``; return the card loaded from there."""
    root = directory or submissions_dir()
    dest = root / card.id
    if dest.exists() and not replace:
        raise _refuse("schema", f"a submission with id '{card.id}' was already accepted ({dest}): "
                      "pass --replace to overwrite it, or change the id")
    data = json.loads(json.dumps(card.data))  # deep copy of plain TOML data
    ckpt = card.checkpoint_path
    data["checkpoint"] = ckpt.name
    files = [ckpt]
    if check.custom_code:
        src = code_path(card.architecture, card.path)
        _, factory = split_spec(card.architecture)
        if src.name in (ckpt.name, CARD_NAME, RECORD_NAME):
            raise _refuse("schema", f"rename the custom architecture file {src.name}: the name is reserved")
        data["architecture"] = f"{src.name}:{factory}"
        files.append(src)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{card.id}.", dir=root))
    try:
        for f in files:
            shutil.copy2(f, tmp / f.name)
        (tmp / CARD_NAME).write_text(card_to_toml(data))
        atomic_write_json(tmp / RECORD_NAME, {"status": "validated", **check.to_dict()})
        accepted = load_card(tmp / CARD_NAME)
        verify_checkpoint(accepted)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.replace(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return load_card(dest / CARD_NAME)


@dataclass
class SubmitOutcome:
    check: SubmissionCheck
    card: ModelCard
    result: dict[str, Any] | None = None
    result_path: Path | None = None
    leaderboard: list[Path] = field(default_factory=list)


def submit(
    card_path: str | Path,
    preset: str | None = None,  # None: bench.toml [defaults]
    eps: float | None = None,
    threat_model: str | None = None,  # None: bench.toml [defaults]
    limit: int | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    seed: int | None = None,
    trust_code: bool = False,
    replace: bool = False,
    validate_only: bool = False,
    report: Report | None = None,
    progress: bool = False,
) -> SubmitOutcome:
    """Validate, accept (copy to ``submissions/<id>/``), run the gauntlet, regenerate the leaderboard."""
    from bench.evaluate import evaluate
    from bench.leaderboard import write_leaderboard

    from bench.custom_arch import trust_code as _trusting

    with _trusting(trust_code):
        return _submit(card_path, preset, eps, threat_model, limit, device, batch_size, seed, trust_code, replace,
                       validate_only, report, progress)


def _submit(card_path, preset, eps, threat_model, limit, device, batch_size, seed, trust_code, replace, validate_only,
            report, progress) -> SubmitOutcome:  # type: ignore[no-untyped-def]
    from bench.evaluate import evaluate
    from bench.leaderboard import write_leaderboard

    say = report or (lambda _msg: None)
    check, card = validate_submission(card_path, device=device, trust_code=trust_code, report=say)
    if validate_only:
        say(f"valid: '{card.id}' passed every check (nothing copied, no attack run: drop --validate-only to submit)")
        return SubmitOutcome(check, card)
    accepted = accept(card, check, replace=replace)
    say(f"accepted: {accepted.path.parent}")  # type: ignore[union-attr]
    result, path, _ = evaluate(
        accepted, preset=preset, eps=eps, threat_model=threat_model, limit=limit, device=device,
        batch_size=batch_size, seed=seed, force=True, progress=progress,
    )
    record_path = accepted.path.parent / RECORD_NAME  # type: ignore[union-attr]
    record = json.loads(record_path.read_text())
    record["status"] = "evaluated"
    record.setdefault("results", [])
    rel = os.path.relpath(path, PROJECT_ROOT)
    rel = str(path) if rel.startswith("..") else rel
    if rel not in record["results"]:
        record["results"].append(rel)
    record.setdefault("robust_acc", {})[path.stem] = result["robust_acc"]
    atomic_write_json(record_path, record)
    written = write_leaderboard()
    return SubmitOutcome(check, accepted, result, path, written)
