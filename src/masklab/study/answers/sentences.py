"""A study's measured answer and verdict as sentences, from the templates of text.py, in either language.

Two or three sentences per study: the published claim's paired difference with its 95% interval, whether
that is beyond seed noise (and if not, what would settle it), and the best setting (within each block, or
in how many blocks the preferred setting won). A study without a claim (a search) gives its best
configuration and the spread of the rest.
"""

from __future__ import annotations

from masklab.study.answers.measure import StudyAnswer, blocks_won
from masklab.study.answers.text import Raw, fill, ltr
from masklab.study.finding import MAX_SEEDS, fmt
from masklab.study.stats import Spread


def pm(s: Spread) -> str:
    return f"{fmt(s.mean)} ± {fmt(s.sd)}"


def interval(low: float, high: float, lang: str = "en") -> str:
    """A 95% interval as one left-to-right value: "a to b" in English, [a, b] (no English word) in Persian."""
    return f"{fmt(low)} to {fmt(high)}" if lang == "en" else f"[{fmt(low)}, {fmt(high)}]"


def _unit(n: int) -> Raw:
    """English counts seeds in the plural from two on (the Persian templates need no word: a noun after a
    number stays singular)."""
    return Raw("seed" if n == 1 else "seeds")


def _better(answer: StudyAnswer, lang: str, fmt_: str) -> Raw:
    return Raw(fill("higher" if answer.spec.goal == "maximize" else "lower", lang, fmt_))


def answer_sentences(answer: StudyAnswer, lang: str, out: str = "md") -> list[str]:
    """The measured answer: 2-3 sentences (plus one on failed trials, if any)."""
    v = answer.verdict
    lines = []
    if answer.spec.is_search or v.kind == "no_claim":
        lines += _search(answer, lang, out)
        if v.pooled is not None:  # a search with a claim: its best confirmed against the baseline
            lines += [_claim(answer, lang, out), _noise(answer, lang, out)]
    elif v.pooled is None:
        lines.append(fill("untested", lang, out, prefer=v.prefer, over=v.over))
        lines += [_best(answer, b, lang, out) for b in answer.best[:2]]
    else:
        lines += [_claim(answer, lang, out), _noise(answer, lang, out)]
        if len(v.per_block) > 1:  # the blocks that hold both sides of the claim
            lines.append(_blocks_won(answer, lang, out))
        elif len(answer.best) == 1:
            lines.append(_best(answer, answer.best[0], lang, out))
    for more in answer.also:  # a further claim of the same finding: its difference and whether it is noise
        if more.verdict.pooled is not None:
            lines += [_claim(more, lang, out), _noise(more, lang, out)]
            if len(more.verdict.per_block) > 1:
                lines.append(_blocks_won(more, lang, out))
    if answer.failed:
        lines.append(fill("failed", lang, out, failed=answer.failed))
    return lines


def _blocks_won(answer: StudyAnswer, lang: str, out: str) -> str:
    v = answer.verdict
    won, beyond = blocks_won(answer)
    return fill("blocks_won", lang, out, nblocks=len(v.per_block), prefer=v.prefer, over=v.over, won=won, beyond=beyond)


def _claim(answer: StudyAnswer, lang: str, out: str) -> str:
    """The claim's paired difference with its interval (over the blocks that hold both sides)."""
    v, p = answer.verdict, answer.verdict.pooled
    blocks = (
        Raw(fill("claim_blocks", lang, out, nblocks=len(v.per_block), blocking=", ".join(answer.blocking)))
        if len(v.per_block) > 1
        else Raw("")
    )
    return fill(
        "claim" if p.n > 1 else "claim_one",
        lang,
        out,
        prefer=v.prefer,
        over=v.over,
        metric=answer.spec.metric,
        better=_better(answer, lang, out),
        diff=fmt(p.diff.mean),
        low=fmt(p.diff.low),
        high=fmt(p.diff.high),
        n=p.n,
        wins=p.wins,
        blocks=blocks,
    )


def _noise(answer: StudyAnswer, lang: str, out: str) -> str:
    v = answer.verdict
    p = v.pooled
    if p.n < 2:
        return fill("noise_one_seed", lang, out)
    if v.reason in ("agrees", "disagrees"):
        return fill("noise_beyond", lang, out)
    if v.seeds:
        return fill("noise_seeds", lang, out, seeds=v.seeds, sd=fmt(p.diff.sd))
    return fill("noise_equivalent", lang, out, bound=f"±{fmt(v.bound)}")


def _best(answer: StudyAnswer, best, lang: str, out: str) -> str:
    values = dict(
        metric=answer.spec.metric,
        better=_better(answer, lang, out),
        best=best.setting,
        pm=pm(best.spread),
        n=best.spread.n,
        unit=_unit(best.spread.n),
    )
    return (
        fill("best_block", lang, out, block=best.block, **values) if best.block else fill("best", lang, out, **values)
    )


def _search(answer: StudyAnswer, lang: str, out: str) -> list[str]:
    if not answer.best:
        return []
    best = answer.best[0]
    lines = [
        fill(
            "search_best",
            lang,
            out,
            configs=answer.configs,
            best=best.setting,
            metric=answer.spec.metric,
            pm=pm(best.spread),
            n=best.spread.n,
            unit=_unit(best.spread.n),
            better=_better(answer, lang, out),
        )
        if answer.spec.is_search
        else _best(answer, best, lang, out)
    ]
    means = [g.spread().mean for g in answer.groups]
    if len(means) > 1:
        lines.append(fill("search_range", lang, out, low=fmt(min(means)), high=fmt(max(means))))
    return lines


def verdict_line(answer: StudyAnswer, lang: str, out: str = "md") -> str:
    """The verdict on the published claim, and why; an inconclusive one says what would settle it. Further
    claims of the finding follow, each with its own verdict."""
    return " ".join([_verdict_line(answer, lang, out), *(_verdict_line(more, lang, out) for more in answer.also)])


def _verdict_line(answer: StudyAnswer, lang: str, out: str) -> str:
    v = answer.verdict
    if v.kind == "no_claim":
        return fill("verdict_no_claim", lang, out)
    if v.kind == "untested":
        return fill("verdict_untested", lang, out, prefer=v.prefer, over=v.over)
    p = v.pooled
    values = dict(prefer=v.prefer, over=v.over, low=fmt(p.diff.low), high=fmt(p.diff.high))
    if v.reason == "one_seed":
        return fill("verdict_one_seed", lang, out, prefer=v.prefer, over=v.over)
    if v.reason in ("agrees", "disagrees"):
        return fill(f"verdict_{v.reason}", lang, out, **values)
    if v.reason in ("margin_equivalent", "margin_noninferior"):
        return fill(f"verdict_{v.reason}", lang, out, margin=f"±{fmt(v.margin)}", **values)
    line = (
        fill("verdict_seeds", lang, out, seeds=v.seeds, sd=fmt(p.diff.sd), **values)
        if v.reason == "seeds"
        else fill(
            "verdict_equivalent", lang, out, bound=f"±{fmt(v.bound)}", max=MAX_SEEDS, prefer=v.prefer, over=v.over
        )
    )
    return line + (" " + fill("consistent", lang, out) if v.consistent else "")


def effect(answer: StudyAnswer, lang: str, out: str = "md") -> str:
    """The summary table's effect cell: the claim's paired difference and interval, or a search's best."""
    v = answer.verdict
    if v.pooled is not None:
        p = v.pooled
        ci = f" ({interval(p.diff.low, p.diff.high, lang)})" if p.n > 1 else ""
        return fill("effect", lang, out, prefer=v.prefer, over=v.over, diff=f"{fmt(p.diff.mean)}{ci}")
    if len(answer.best) == 1:  # a best over several blocks would rank across them
        return ltr(f"{answer.best[0].setting}: {pm(answer.best[0].spread)}", lang, out)
    return ""
