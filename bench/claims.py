"""The claims audit (``reports/claims.md`` and a section of ``reports/index.html``): does each paper's
defense claim hold, under the paper's own protocol and under the benchmark's ``standard`` gauntlet?

Inputs (no model is run): ``claims.toml`` in the zoo folder (models_zoo/claims.toml: per defense recipe
the paper, the claim in one sentence, the paper-protocol preset and the matched-baseline recipe), the
model cards (each defense seed's ``matched_baseline``; see :mod:`bench.matched`) and the stored results.

For each claim and budget (threat model, eps), and for each protocol (the paper's preset, the reference
preset ``standard``), the seed pairs (defense seed k, its matched baseline) evaluated under the same
protocol on the same points are pooled (:func:`bench.matched.pooled`): worst-case robust accuracy of
both, the difference with its 95% Newcombe paired score interval, the discordant counts and the exact
McNemar p-value (:func:`bench.compare.mcnemar_exact`).

Verdict per budget (:func:`verdict`; alpha from claims.toml, default 0.05), in this order:

* **holds**: a significant improvement over the matched baseline under the reference preset
  (difference > 0 and McNemar p < alpha);
* **not measured**: a result needed to decide is missing (the reference preset, or the paper preset
  when the reference shows no significant gain);
* **holds only under the paper's protocol**: significant improvement under the paper preset, not under
  the reference preset;
* **does not hold**: no significant improvement under the paper preset either (or a loss).

Overstatement: robust accuracy under the paper's protocol minus robust accuracy under the reference
preset, for the defense and for its matched baseline (the two protocols may differ in eps, threat model
and point set: it is the difference of the two reported numbers, which is what a reader of the paper
compares).

A paper preset evaluated at budgets that do not coincide with the reference preset's (Luu et al.'s
spike-domain threat model, or a paper's own eps) is used for every reference budget, at the budget
claims.toml names (``paper_eps``, ``paper_threat_model``) or, when it was run at exactly one budget of another
threat model, at that one. A paper result at another eps of the same threat model is never shown as another
budget's: it gets its own row, and the budget without one says the paper protocol was not run there.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.matched import Paired, Stored, format_p, matched_baseline_id, pooled
from bench.report_tables import Table

CLAIMS_FILE = "claims.toml"
VERDICTS = ("holds", "holds only under the paper's protocol", "does not hold", "not measured")
_CLAIM_KEYS = {"recipe": str, "paper": str, "claim": str, "paper_preset": str, "matched_baseline": str,
               "paper_eps": (int, float), "paper_threat_model": str, "notes": str}


@dataclass(frozen=True)
class Claim:
    recipe: str
    paper: str
    claim: str
    paper_preset: str
    matched_baseline: str | None = None
    paper_eps: float | None = None
    paper_threat_model: str | None = None
    notes: str = ""


@dataclass(frozen=True)
class ClaimsFile:
    reference_preset: str
    alpha: float
    claims: list[Claim] = field(default_factory=list)

    def recipe_baselines(self) -> dict[str, str]:
        return {c.recipe: c.matched_baseline for c in self.claims if c.matched_baseline}


def claims_path() -> Path:
    from models_zoo.zoo import zoo_dir

    return zoo_dir() / CLAIMS_FILE


def load_claims(path: Path | None = None) -> ClaimsFile:
    """Read and validate claims.toml (a missing file is an empty audit)."""
    p = path or claims_path()
    if not p.is_file():
        return ClaimsFile("standard", 0.05, [])
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise BenchError(f"{p} is not valid TOML: {e}") from None
    alpha = data.get("alpha", 0.05)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise BenchError(f"{p}: alpha is a significance level in (0, 1), got {alpha!r}")
    ref = data.get("reference_preset", "standard")
    if not isinstance(ref, str):
        raise BenchError(f"{p}: reference_preset must be a preset name (string), got {ref!r}")
    claims, seen = [], set()
    for i, c in enumerate(data.get("claim", [])):
        where = f"{p.name} [[claim]] #{i + 1}"
        unknown = set(c) - set(_CLAIM_KEYS)
        if unknown:
            raise BenchError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_CLAIM_KEYS)}")
        for k in ("recipe", "paper", "claim", "paper_preset"):
            if k not in c:
                raise BenchError(f"{where}: missing '{k}'")
        for k, v in c.items():
            t = _CLAIM_KEYS[k]
            if isinstance(v, bool) or not isinstance(v, t):
                raise BenchError(f"{where}: '{k}' has the wrong type ({type(v).__name__})")
        if c["recipe"] in seen:
            raise BenchError(f"{where}: recipe '{c['recipe']}' has two claims: keep one per recipe")
        seen.add(c["recipe"])
        claims.append(Claim(c["recipe"], c["paper"], c["claim"], c["paper_preset"], c.get("matched_baseline"),
                            None if c.get("paper_eps") is None else float(c["paper_eps"]), c.get("paper_threat_model"),
                            c.get("notes", "")))
    return ClaimsFile(ref, float(alpha), claims)


def verdict(paper: Paired | None, reference: Paired | None, alpha: float) -> tuple[str, str]:
    """(verdict, reason) by the rule of the module docstring."""
    if reference is not None and reference.significant_gain(alpha):
        return VERDICTS[0], f"significant gain under the reference preset (p = {format_p(reference.p_value)} < {alpha:g})"
    if reference is None:
        return VERDICTS[3], "no paired result under the reference preset"
    ref = f"reference preset: Δ {reference.delta:+.2f}, p = {format_p(reference.p_value)}, no significant gain"
    if paper is None:
        return VERDICTS[3], f"{ref}; no paired result under the paper preset"
    pap = f"paper preset: Δ {paper.delta:+.2f}, p = {format_p(paper.p_value)}"
    if paper.significant_gain(alpha):
        return VERDICTS[1], f"{pap}, a significant gain; {ref}"
    return VERDICTS[2], f"{pap}, no significant gain; {ref}"


# -- pairing -------------------------------------------------------------------------------------
@dataclass
class Evidence:
    """Pooled paired statistics of one claim under one protocol at one budget (None: why not)."""

    preset: str
    threat_model: str
    eps: float
    paired: Paired | None
    pairs: list[tuple[str, str]]
    note: str = ""
    version: int | None = None


def _best_pair(head: list[Stored], base: list[Stored]) -> tuple[Stored, Stored] | None:
    """The paired results of one seed pair under one preset and budget: same protocol, per-point files
    present; the highest preset version, then the most points."""
    from bench.matched import align

    base_by_key = {b.key: b for b in base}
    cands = [(h, base_by_key[h.key]) for h in head if h.key in base_by_key]
    cands = [(h, b) for h, b in cands if not isinstance(align(h, b), str)]
    if not cands:
        return None
    return max(cands, key=lambda hb: (hb[0].result["preset_version"], hb[0].result["n_points"], hb[0].key[-1]))


def evidence(pairs: list[tuple[str, str]], stored: list[Stored], preset: str, tm: str, eps: float) -> Evidence:
    """Pool every seed pair that has paired results under ``preset`` at (``tm``, ``eps``); the pooled
    seed pairs share the preset version (the highest any pair has)."""
    idx: dict[str, list[Stored]] = {}
    for s in stored:
        r = s.result
        if r["preset"] == preset and r["threat_model"] == tm and abs(float(r["eps"]) - eps) < 1e-12:
            idx.setdefault(s.model_id, []).append(s)
    found = []
    for head, base in pairs:
        bp = _best_pair(idx.get(head, []), idx.get(base, []))
        if bp is not None:
            found.append(((head, base), bp))
    if not found:
        heads = sum(1 for h, _ in pairs if idx.get(h))
        why = "no defense result" if not heads else "no baseline result on the same points"
        return Evidence(preset, tm, eps, None, [], why)
    version = max(bp[0].result["preset_version"] for _, bp in found)
    found = [(ids, bp) for ids, bp in found if bp[0].result["preset_version"] == version]
    return Evidence(preset, tm, eps, pooled([bp for _, bp in found]), [ids for ids, _ in found], version=version)


def _budgets(models: set[str], stored: list[Stored], preset: str) -> list[tuple[str, float]]:
    return sorted({(s.result["threat_model"], float(s.result["eps"])) for s in stored
                   if s.result["preset"] == preset and s.model_id in models})


@dataclass
class AuditRow:
    claim: Claim
    threat_model: str
    eps: float
    paper: Evidence | None
    reference: Evidence | None
    verdict: str
    reason: str

    @property
    def overstatement(self) -> tuple[float | None, float | None]:
        """(defense, baseline): paper-protocol minus reference robust accuracy, in points."""
        if self.paper is None or self.reference is None or self.paper.paired is None or self.reference.paired is None:
            return None, None
        p, r = self.paper.paired, self.reference.paired
        return p.head_acc - r.head_acc, p.base_acc - r.base_acc


@dataclass
class ClaimAudit:
    claim: Claim
    pairs: list[tuple[str, str]]
    rows: list[AuditRow]
    problem: str = ""
    #: paper-protocol results at budgets of a threat model the reference preset never ran in (shown, no verdict)
    extra: list[Evidence] = field(default_factory=list)


def audit_claim(claim: Claim, stored: list[Stored], cards: dict[str, Any], reference_preset: str, alpha: float,
                recipe_baselines: dict[str, str]) -> ClaimAudit:
    """Every budget of one claim (see the module docstring)."""
    heads = sorted(cid for cid, c in cards.items() if c.data["training"]["recipe"] == claim.recipe)
    if not heads:
        return ClaimAudit(claim, [], [], f"no zoo entry of recipe '{claim.recipe}'")
    pairs: list[tuple[str, str]] = []
    absent: list[str] = []
    for h in heads:
        b = matched_baseline_id(cards[h], cards, recipe_baselines)
        if b is None:
            continue
        if b not in cards:  # named by the card but not (yet) in the zoo: nothing to compare with
            absent.append(b)
            continue
        want = claim.matched_baseline
        got = cards[b].data["training"]["recipe"]
        if want and got != want:
            raise BenchError(f"card {h} names matched_baseline '{b}' (recipe '{got}') but models_zoo/{CLAIMS_FILE} says recipe "
                             f"'{want}' for '{claim.recipe}': make them agree")
        pairs.append((h, b))
    if not pairs:
        if absent:
            return ClaimAudit(claim, [], [], f"the matched baseline {', '.join(sorted(set(absent)))} is no zoo entry yet")
        if claim.matched_baseline:
            why = f"no zoo entry of the matched-baseline recipe '{claim.matched_baseline}' with the defense's seed"
        else:
            why = "no matched baseline: no card names one and claims.toml gives no baseline recipe"
        return ClaimAudit(claim, [], [], why)
    models = {m for pr in pairs for m in pr}
    ref_budgets = _budgets(models, stored, reference_preset)
    paper_budgets = _budgets(models, stored, claim.paper_preset)

    def paper_budget_for(tm: str, eps: float) -> tuple[str, float] | None:
        if (tm, eps) in paper_budgets:
            return (tm, eps)
        if claim.paper_eps is not None:
            want_tm = claim.paper_threat_model or tm
            named = [b for b in paper_budgets if b[0] == want_tm and abs(b[1] - claim.paper_eps) < 1e-9]
            if named:
                return named[0]
        # a protocol run at one budget in another threat model (the spike domain) stands for every pixel
        # budget; one run at another eps of the same threat model is its own row, never this budget's
        lone = paper_budgets[0] if len(paper_budgets) == 1 else None
        return lone if lone is not None and lone[0] != tm else None

    rows: list[AuditRow] = []
    used_paper = set()
    for tm, eps in ref_budgets:
        ref = evidence(pairs, stored, reference_preset, tm, eps)
        pb = paper_budget_for(tm, eps)
        pap = evidence(pairs, stored, claim.paper_preset, *pb) if pb else None
        if pb:
            used_paper.add(pb)
        v, why = verdict(pap.paired if pap else None, ref.paired, alpha)
        rows.append(AuditRow(claim, tm, eps, pap, ref, v, why))
    extra: list[Evidence] = []
    ref_tms = {tm for tm, _ in ref_budgets}
    for tm, eps in paper_budgets:
        if (tm, eps) in used_paper:
            continue
        pap = evidence(pairs, stored, claim.paper_preset, tm, eps)
        if ref_budgets and tm not in ref_tms:  # e.g. a spike-domain budget beside the one the rows use
            extra.append(pap)
            continue
        v, why = verdict(pap.paired, None, alpha)
        rows.append(AuditRow(claim, tm, eps, pap, None, v, why))
    if not rows:
        return ClaimAudit(claim, pairs, [], f"no result under {claim.paper_preset} or {reference_preset}")
    return ClaimAudit(claim, pairs, rows, extra=extra)


def audit(stored: list[Stored], cards: dict[str, Any] | None = None, claims: ClaimsFile | None = None) -> tuple[ClaimsFile, list[ClaimAudit]]:
    from bench.matched import zoo_cards

    claims = claims or load_claims()
    cards = zoo_cards() if cards is None else cards
    rb = claims.recipe_baselines()
    return claims, [audit_claim(c, stored, cards, claims.reference_preset, claims.alpha, rb) for c in claims.claims]


# -- rendering ---------------------------------------------------------------------------------------
def _acc(p: Paired | None, which: str) -> tuple[str, Any]:
    if p is None:
        return ("-", None)
    v = p.head_acc if which == "head" else p.base_acc
    return (f"{v:.2f}", v)


def _delta(ev: Evidence | None) -> tuple[str, Any]:
    if ev is None:
        return ("not run", None)
    if ev.paired is None:
        return (f"not measured ({ev.note})", None)
    p = ev.paired
    return (f"{p.delta:+.2f} [{p.ci_low:+.1f}, {p.ci_high:+.1f}]", p.delta)


def _pair(ev: Evidence | None) -> tuple[str, Any]:
    """``"68.87 / 0.93"``: the defense's and its matched baseline's pooled worst-case robust accuracy."""
    if ev is None or ev.paired is None:
        return ("-", None)
    return (f"{ev.paired.head_acc:.2f} / {ev.paired.base_acc:.2f}", ev.paired.head_acc)


def _p(ev: Evidence | None) -> tuple[str, Any]:
    if ev is None or ev.paired is None:
        return ("-", None)
    return (f"{format_p(ev.paired.p_value)} ({ev.paired.base_only}/{ev.paired.head_only})", ev.paired.p_value)


def _budget(ev: Evidence | None) -> str:
    if ev is None:
        return "-"
    v = f" v{ev.version}" if ev.version is not None else ""
    n = f", {ev.paired.n // max(ev.paired.n_pairs, 1)} pts x {ev.paired.n_pairs}" if ev.paired else ""
    return f"{ev.preset}{v} {ev.threat_model} eps={ev.eps:g}{n}"


def _signed(v: float | None) -> tuple[str, Any]:
    return ("-", None) if v is None else (f"{v:+.2f}", v)


#: the zoo's matched-comparison rule (issue 13, item 4): a defense is compared with its matched baseline at a
#: clean accuracy within this many points of the baseline's; below it a robustness gain may be bought with
#: clean accuracy, and the strength sweep (models_zoo/claim_sweep.py) looks for an admissible strength
CLEAN_RULE_POINTS = 3.0

SUMMARY_HEADERS = ["defense", "paper", "eps", "paper protocol: defense / baseline", "Δ [95% CI]", "McNemar p (base/def)",
                   "standard: defense / baseline", "Δ [95% CI]", "McNemar p (base/def)", "clean Δ", "overstatement (def / base)",
                   "verdict"]
DETAIL_HEADERS = ["protocol", "budget (points x seed pairs)", "defense clean", "baseline clean", "defense robust",
                  "baseline robust", "Δ robust [95% CI]", "McNemar p (base-only/def-only)"]


def _verdict_cell(r: AuditRow, reference_preset: str) -> str:
    """The verdict, with what is missing when it is "not measured"."""
    if r.verdict != VERDICTS[3]:
        return r.verdict
    missing = [name for name, ev in ((reference_preset, r.reference), (r.claim.paper_preset, r.paper))
               if ev is None or ev.paired is None]
    return f"{r.verdict} (no paired {' or '.join(missing)} result)" if missing else r.verdict


def clean_cell(r: AuditRow) -> tuple[str, Any]:
    """Defense minus matched-baseline clean accuracy on the paired points (the reference preset's, else the
    paper's), marked when the defense is more than :data:`CLEAN_RULE_POINTS` below its baseline."""
    for ev in (r.reference, r.paper):
        d = None if ev is None or ev.paired is None else ev.paired.clean_delta
        if d is not None:
            return (f"{d:+.2f}" + (f" (outside -{CLEAN_RULE_POINTS:g})" if d < -CLEAN_RULE_POINTS else ""), d)
    return ("-", None)


def summary_table(audits: list[ClaimAudit], reference_preset: str) -> Table:
    headers = [h.replace("standard", reference_preset) for h in SUMMARY_HEADERS]
    t = Table(headers, ["str", "str", "num", "num", "num", "num", "num", "num", "num", "num", "str", "str"])
    from bench.leaderboard_table import short_paper

    for a in audits:
        if not a.rows:
            t.add(a.claim.recipe, short_paper(a.claim.paper), *[("-", None)] * 8, "-", f"not measured ({a.problem})")
            continue
        for r in a.rows:
            od, ob = r.overstatement
            over = "-" if od is None else f"{od:+.2f} / {ob:+.2f}"
            eps_cell = (f"{r.eps:g}" + ("" if r.threat_model == "Linf" else f" ({r.threat_model})"), r.eps)
            t.add(a.claim.recipe, short_paper(a.claim.paper), eps_cell, _pair(r.paper), _delta(r.paper), _p(r.paper),
                  _pair(r.reference), _delta(r.reference), _p(r.reference), clean_cell(r), (over, od),
                  _verdict_cell(r, reference_preset))
    return t


def detail_table(a: ClaimAudit, reference_preset: str) -> Table:
    t = Table(DETAIL_HEADERS, ["str", "str", "num", "num", "num", "num", "num", "num"])
    seen = set()
    for r in [*a.rows, *(AuditRow(a.claim, ev.threat_model, ev.eps, ev, None, "", "") for ev in a.extra)]:
        for role, ev in (("paper", r.paper), (reference_preset, r.reference)):
            if ev is None:
                continue
            key = (ev.preset, ev.threat_model, ev.eps)
            if key in seen:
                continue
            seen.add(key)
            p = ev.paired
            clean = lambda v: ("-", None) if v is None else (f"{v:.2f}", v)  # noqa: E731
            t.add(role, _budget(ev), clean(p.head_clean if p else None), clean(p.base_clean if p else None),
                  _acc(p, "head"), _acc(p, "base"), _delta(ev), _p(ev))
    return t


RULE = [
    "Verdict, per budget (alpha = {alpha:g}; Δ = defense minus its matched baseline, worst-case robust accuracy, "
    "paired on the same test points):",
    "",
    "* **holds**: Δ > 0 and McNemar p < alpha under `{ref}`;",
    "* **not measured**: a result needed to decide is missing (`{ref}`, or the paper preset when `{ref}` shows no significant gain);",
    "* **holds only under the paper's protocol**: Δ > 0 and p < alpha under the paper preset, not under `{ref}`;",
    "* **does not hold**: no significant gain under the paper preset either (p >= alpha, or Δ <= 0).",
    "",
    "Δ in points with its 95% Newcombe paired score interval (Newcombe 1998, method 10: Wilson intervals of both "
    "accuracies combined with the phi correlation of the paired table). McNemar p: exact two-sided test on the "
    "discordant points (`bench.compare.mcnemar_exact`, the one `snnbench compare` uses); base/def = points only the "
    "baseline / only the defense got right. Seed pairs (defense seed k vs its matched baseline, both evaluated under the "
    "same preset version, eps and points) are pooled: every (point, seed pair) is one paired observation.",
    "Overstatement: robust accuracy under the paper's protocol minus under `{ref}` (defense / matched baseline), "
    "at the budgets shown (the paper's own budget when its protocol runs elsewhere, e.g. in the spike domain).",
    "Clean Δ: clean accuracy of the defense minus its matched baseline's on the same points (under `{ref}`, else the "
    "paper preset). A defense more than {clean:g} points below its baseline is marked *outside*: the zoo compares "
    "defenses at clean accuracy within {clean:g} points of their baseline, so its verdict there may be a trade of clean "
    "accuracy for robustness; models_zoo/SWEEPS.md has the defense's strength swept to admissible values.",
]


def render_markdown(claims: ClaimsFile, audits: list[ClaimAudit]) -> str:
    lines = [
        "# Claims audit: does each paper's defense hold up?",
        "",
        "Generated by `snnbench leaderboard` from reports/results/, the model cards and models_zoo/claims.toml; "
        "do not edit by hand. No model is run.",
        "",
        *[ln.format(alpha=claims.alpha, ref=claims.reference_preset, clean=CLEAN_RULE_POINTS) for ln in RULE],
        "",
    ]
    if not audits:
        lines.append("_No claims listed: add them to models_zoo/claims.toml._")
        return "\n".join(lines) + "\n"
    lines += ["## Summary", "", *summary_table(audits, claims.reference_preset).markdown(), ""]
    from bench.leaderboard_table import short_paper

    for a in audits:
        c = a.claim
        lines += [f"## {c.recipe}: {short_paper(c.paper)}", "", f"Claim: {c.claim}", "",
                  f"Paper protocol: preset `{c.paper_preset}`. Matched baseline: "
                  + (", ".join(f"{h} vs {b}" for h, b in a.pairs) if a.pairs else "none") + ".", ""]
        if c.notes:
            lines += [c.notes, ""]
        if not a.rows:
            lines += [f"_Not measured: {a.problem}._", ""]
            continue
        lines += detail_table(a, claims.reference_preset).markdown()
        lines.append("")
        for r in a.rows:
            lines.append(f"- {r.threat_model} eps={r.eps:g}: **{r.verdict}** ({r.reason}).")
        lines.append("")
    return "\n".join(lines)


def render_html_section(claims: ClaimsFile, audits: list[ClaimAudit]) -> str:
    import html as _h

    e = lambda s: _h.escape(s, quote=True)  # noqa: E731
    rule = " ".join(ln.format(alpha=claims.alpha, ref=claims.reference_preset, clean=CLEAN_RULE_POINTS).lstrip("* ").replace("**", "").replace("`", "")
                    for ln in RULE if ln)
    parts = ['<section class="claims" id="claims">\n<h2>Claims audit</h2>\n',
             f'<p class="legend">{e(rule)} Details per defense: <a href="claims.md">claims.md</a>.</p>\n']
    if not audits:
        parts.append('<p class="empty">No claims listed in models_zoo/claims.toml.</p>\n')
    else:
        parts.append(summary_table(audits, claims.reference_preset).html())
    parts.append("</section>\n")
    return "".join(parts)


def render_all_claims(results_root: Path | None = None) -> tuple[str, str]:
    """(claims.md, the HTML section) from the stored results."""
    from bench.matched import load_stored

    claims, audits = audit(load_stored(results_root))
    return render_markdown(claims, audits), render_html_section(claims, audits)
