"""The answers page: answers.md and one self-contained answers.html (inline CSS and SVG, nothing fetched),
in English or Persian (answers.fa.md / answers.fa.html: right to left, left-to-right values isolated).

Per question: the question; per study that answers it, the measured answer, the key plot, the table of
paired differences within blocks, the published finding with its citation and the verdict, the published
figures where a paper gives some (reference.yaml), the command that reproduces it and the minutes it took.
A study that has not run shows its command and "not run yet".
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from masklab.fsutil import write_text_atomic
from masklab.study.answers.measure import StudyAnswer, TableRow
from masklab.study.answers.sentences import answer_sentences, effect, interval, pm, verdict_line
from masklab.study.answers.text import QUESTIONS, TEXT, fill, ltr, reference, word
from masklab.study.finding import blocked_compare, fmt, label
from masklab.study.spec import load_spec, seeds_text

# Fonts every system has or falls back from: nothing is downloaded (the page works offline)
FONTS = {
    "en": 'system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",sans-serif',
    "fa": 'Vazirmatn,"Noto Naskh Arabic","Noto Sans Arabic",Tahoma,"DejaVu Sans",sans-serif',
}
STYLE = (
    "body{{font-family:{font};margin:2em auto;max-width:1100px;padding:0 1em;line-height:1.55}}"
    "table{{border-collapse:collapse;margin:.8em 0;display:block;overflow-x:auto;max-width:100%}}"
    "td,th{{border:1px solid #ccc;padding:3px 8px;text-align:start;vertical-align:top}}"
    "table.data td,td bdi{{white-space:nowrap}}"
    "code{{font-family:ui-monospace,'DejaVu Sans Mono',monospace;background:#f3f3f3;padding:0 .25em}}"
    "svg{{max-width:100%;height:auto}}figure{{margin:.8em 0}}.dim{{color:#666}}"
    ".agrees{{color:#17612a}}.disagrees{{color:#a11d1d}}.inconclusive,.untested{{color:#8a5a00}}"
    "h2{{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}}section{{margin-bottom:1.5em}}"
)


def page_names(lang: str) -> tuple[str, str]:
    suffix = "" if lang == "en" else f".{lang}"
    return f"answers{suffix}.md", f"answers{suffix}.html"


def write_pages(answers: dict[str, StudyAnswer], out: Path, lang: str, sources: list[Path]) -> list[Path]:
    """answers[.LANG].md and answers[.LANG].html in `out`, each written whole or not at all."""
    out.mkdir(parents=True, exist_ok=True)
    stated = {name: load_spec(f"builtin:{name}", "quick").minutes for _, names in QUESTIONS for name in names}
    where = ", ".join(_rel(s, out) for s in sources)
    md_name, html_name = page_names(lang)
    write_text_atomic(out / md_name, markdown(answers, stated, lang, out, where))
    write_text_atomic(out / html_name, html_page(answers, stated, lang, where))
    return [out / md_name, out / html_name]


def _rel(path: Path, out: Path) -> str:
    return Path(os.path.relpath(path.resolve(), out.resolve())).as_posix()


def _command(answer: StudyAnswer | None, name: str) -> str:
    """The command that reproduces the shipped answer: with --seeds where it grew beyond its scale's seeds."""
    scale = answer.spec.scale if answer is not None and answer.spec.scale else "quick"
    command = f"masklab study builtin:{name} --scale {scale}"
    if answer is None:
        return command
    have = answer.spec.confirm_seeds if answer.spec.is_search else answer.spec.seeds
    if set(answer.seeds) - set(have):
        command += f" --seeds {seeds_text(sorted(set(have) | set(answer.seeds)))}"
    return command


def _minutes(answer: StudyAnswer, stated: float, lang: str, out: str) -> str:
    if answer.timed_trials:
        line = fill(
            "minutes_measured", lang, out, minutes=f"{answer.trial_seconds / 60:.1f}", trials=answer.timed_trials
        )
        if answer.spec.needs and stated:
            return line + fill("minutes_needs", lang, out, stated=f"{stated:g}", needs=len(answer.spec.needs))
        return line + (fill("minutes_both", lang, out, stated=f"{stated:g}") if stated else "")
    return fill("minutes_stated", lang, out, minutes=f"{stated:g}")


def _took(answer: StudyAnswer, said: str, lang: str, out: str) -> str:
    """The summary's minutes: the trials' own seconds, unless the study first makes shared runs (needs), whose
    time results.csv does not hold; then the study file's measured total, marked as stated (Q6: its trials
    take 4 of its 45 minutes)."""
    if not answer.timed_trials or answer.spec.needs:
        return said
    return ltr(f"{answer.trial_seconds / 60:.1f}", lang, out)


def _summary_rows(answers, stated, lang: str, out: str) -> list[list[str]]:
    """One row per study: its question, the claim's effect with its CI, the verdict and the minutes."""
    rows = []
    for q, names in QUESTIONS:
        for name in names:
            a = answers.get(name)
            said = ltr(f"~{stated[name]:g}", lang, out) + " " + word("stated", lang, out)
            if a is None:
                cells = ["–", word("not_run", lang, out), said]
            else:
                cells = [effect(a, lang, out), word(f"word_{a.verdict.kind}", lang, out), _took(a, said, lang, out)]
            rows.append([ltr(q, lang, out), ltr(name, lang, out), *cells])
    return rows


def _summary_columns(lang: str, out: str) -> list[str]:
    return [word(k, lang, out) for k in ("col_question", "col_study", "col_effect", "col_verdict", "col_minutes")]


def _table(answer: StudyAnswer, lang: str, out: str) -> tuple[list[str], list[list[str]]]:
    """The study's table: block, setting, seeds, mean ± sd, its CI and, against the block's baseline, the paired
    difference, its CI and the seeds won."""
    blocked = any(r.block for r in answer.table)
    with_base = bool(answer.spec.baseline) and not answer.spec.is_search
    columns = ([word("col_block", lang, out)] if blocked else []) + [
        word("col_setting", lang, out),
        word("col_n", lang, out),
        fill("col_mean", lang, out, metric=answer.spec.metric),
        word("col_ci", lang, out),
    ]
    if with_base:
        columns += [word(k, lang, out) for k in ("col_diff", "col_diff_ci", "col_wins")]
    rows = []
    for r in answer.table:
        cells = ([ltr(r.block, lang, out)] if blocked else []) + [
            ltr(r.setting, lang, out),
            ltr(str(r.spread.n), lang, out),
            ltr(pm(r.spread), lang, out),
            ltr(interval(r.spread.low, r.spread.high, lang), lang, out) if r.spread.n > 1 else "–",
        ]
        if with_base:
            cells += _versus(r, lang, out)
        rows.append(cells)
    return columns, rows


def _versus(r: TableRow, lang: str, out: str) -> list[str]:
    if r.baseline:
        return [word("baseline", lang, out), "", ""]
    if r.vs is None:
        return ["–", "", ""]
    ci = ltr(interval(r.vs.diff.low, r.vs.diff.high, lang), lang, out) if r.vs.n > 1 else "–"
    return [ltr(fmt(r.vs.diff.mean), lang, out), ci, ltr(f"{r.vs.wins}/{r.vs.n}", lang, out)]


def _table_note(answer: StudyAnswer, lang: str, out: str) -> str:
    if answer.spec.is_search:
        return fill("table_note_search", lang, out, shown=len(answer.table), configs=answer.configs)
    if answer.blocking:
        return fill("table_note", lang, out, blocking=", ".join(answer.blocking))
    return word("table_note_single", lang, out)


def _reference(answer: StudyAnswer, lang: str, out: str) -> tuple[str, list[str], list[list[str]], list[str]]:
    """(citation, columns, rows, paragraphs: the paper's note or statements, and this run's figure beside them)
    of the published figures beside this study."""
    ref = reference().get(answer.name)
    if not ref:
        return "", [], [], []
    cite = ltr(ref["citation"], lang, out)
    if "rows" in ref:  # a paper's table, row by row beside the same settings here
        columns = [
            word("col_split", lang, out),
            *(ltr(c, lang, out) for c in ref["columns"]),
            fill("col_ours", lang, out, metric=answer.spec.metric),
            word("col_ours_diff", lang, out),
        ]
        by_setting = {r.setting: r for r in answer.table}
        rows = []
        for row in ref["rows"]:
            ours = by_setting.get(str(row["point"].get("_label", "")))
            here = (
                [ltr(pm(ours.spread), lang, out), _versus(ours, lang, out)[0]]
                if ours
                else [word("absent", lang, out), ""]
            )
            if ours is not None and ours.vs is not None and ours.vs.n > 1:
                here[1] += " (" + ltr(interval(ours.vs.diff.low, ours.vs.diff.high, lang), lang, out) + ")"
            rows.append([ltr(row["split"], lang, out), *(ltr(f"{x:.1f}", lang, out) for x in row["figures"]), *here])
        return cite, columns, rows, [ltr(ref["note"], lang, out)] if ref.get("note") else []
    notes = [ltr(" ".join(ref.get("statements", [])), lang, out)]
    pair = ref.get("compare")
    if pair:
        p, _ = blocked_compare(answer.spec, answer.groups, answer.keys, pair["prefer"], pair["over"])
        if p is not None:
            notes.append(
                fill(
                    "reference_claim",
                    lang,
                    out,
                    prefer=label(pair["prefer"], list(pair["prefer"])),
                    over=label(pair["over"], list(pair["over"])),
                    diff=fmt(p.diff.mean),
                    low=fmt(p.diff.low),
                    high=fmt(p.diff.high),
                    metric=answer.spec.metric,
                )
            )
    return cite, [], [], notes


# --------------------------------------------------------------------------------------------- markdown


def _md_table(columns: list[str], rows: list[list[str]]) -> str:
    cell = lambda v: v.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(cell, columns)) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(map(cell, r)) + " |" for r in rows])


def markdown(answers, stated, lang: str, out_dir: Path, where: str) -> str:
    t, out = TEXT[lang], "md"
    parts = [f"# {t['title']}", word("intro", lang, out), fill("sources", lang, out, where=where)]
    parts += [f"## {t['summary']}", _md_table(_summary_columns(lang, out), _summary_rows(answers, stated, lang, out))]
    for q, names in QUESTIONS:
        parts.append(f"## {ltr(q, lang, out)}. {word(q, lang, out)}")
        for name in names:
            a = answers.get(name)
            command = ltr(_command(a, name), lang, out, code=True)
            if a is None:
                parts += [
                    f"### {ltr(name, lang, out)} — {t['not_run']}",
                    fill("not_run_line", lang, out, minutes=f"{stated[name]:g}"),
                    f"**{t['reproduce']}:** {command}",
                ]
                continue
            parts.append(f"### {ltr(name, lang, out)}")
            if lang == "en" and a.spec.question:
                parts.append(f"*{a.spec.question}*")
            parts.append(f"**{t['answer']}.** " + " ".join(answer_sentences(a, lang, out)))
            if a.plot is not None:
                parts.append(f"![{t['plot']}]({_rel(a.plot, out_dir)})")
            columns, rows = _table(a, lang, out)
            if rows:
                parts += [f"**{t['table']}.** {_table_note(a, lang, out)}", _md_table(columns, rows)]
            if a.spec.published:
                finding = ltr(a.spec.published.finding, lang, out)
                citation = ltr(a.spec.published.citation, lang, out)
                parts.append(f"**{t['published']}:** {finding} ({citation})")
            parts.append(f"**{t['verdict']}:** {verdict_line(a, lang, out)}")
            cite, ref_columns, ref_rows, note = _reference(a, lang, out)
            if cite:
                parts.append(f"**{t['reference']}:** {cite}")
                if ref_rows:
                    parts.append(_md_table(ref_columns, ref_rows))
                parts += note
            parts += [f"**{t['reproduce']}:** {command}", f"**{t['time']}:** {_minutes(a, stated[name], lang, out)}"]
    body = "\n\n".join(parts) + "\n"
    # GitHub and most viewers honour an HTML block's direction; markdown inside it needs the blank lines
    return f'<div dir="rtl" lang="fa">\n\n{body}\n</div>\n' if lang == "fa" else body


# ------------------------------------------------------------------------------------------------- HTML


def _html_table(columns: list[str], rows: list[list[str]], cls: str = "data") -> str:
    """Cells are already rendered; a data table keeps each number on one line (it scrolls when too wide)."""
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table class='{cls}'><tr>{head}</tr>{body}</table>"


def inline_svg(path: Path) -> str:
    """A study's plot for inlining: only the <svg> element, without scripts, metadata, namespace URIs or links
    to anything but its own elements, so the page fetches nothing."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^.*?(?=<svg)", "", text, flags=re.S)
    text = re.sub(r"<(script|metadata)\b.*?</\1>", "", text, flags=re.S | re.I)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    text = re.sub(r'\s+(xlink:)?href="(?!#)[^"]*"', "", text)
    return re.sub(r"\s+on\w+=\"[^\"]*\"", "", text)


def html_page(answers, stated, lang: str, where: str) -> str:
    t, out = TEXT[lang], "html"
    esc = html.escape
    parts = [
        f"<h1>{esc(t['title'])}</h1>",
        f"<p>{word('intro', lang, out)}</p>",
        f"<p class='dim'>{fill('sources', lang, out, where=where)}</p>",
    ]
    summary = _summary_rows(answers, stated, lang, out)
    for row, name in zip(summary, [n for _, names in QUESTIONS for n in names]):
        row[1] = f"<a href='#{name}'>{row[1]}</a>"
    parts += [f"<h2>{esc(t['summary'])}</h2>", _html_table(_summary_columns(lang, out), summary, "summary")]
    for q, names in QUESTIONS:
        parts.append(f"<h2 id='{q.lower()}'>{ltr(q, lang, out)}. {word(q, lang, out)}</h2>")
        for name in names:
            a = answers.get(name)
            command = ltr(_command(a, name), lang, out, code=True)
            if a is None:
                parts.append(
                    f"<section id='{name}'><h3>{ltr(name, lang, out)} — <span class='dim'>{esc(t['not_run'])}"
                    f"</span></h3><p>{fill('not_run_line', lang, out, minutes=f'{stated[name]:g}')}</p>"
                    f"<p><b>{esc(t['reproduce'])}:</b> {command}</p></section>"
                )
                continue
            s = [f"<section id='{name}'><h3>{ltr(name, lang, out)}</h3>"]
            if lang == "en" and a.spec.question:
                s.append(f"<p class='dim'><i>{esc(a.spec.question)}</i></p>")
            s.append(f"<p><b>{esc(t['answer'])}.</b> {' '.join(answer_sentences(a, lang, out))}</p>")
            if a.plot is not None:
                s.append(f"<figure dir='ltr'>{inline_svg(a.plot)}</figure>")
            columns, rows = _table(a, lang, out)
            if rows:
                s += [f"<p><b>{esc(t['table'])}.</b> {_table_note(a, lang, out)}</p>", _html_table(columns, rows)]
            if a.spec.published:
                p = a.spec.published
                s.append(
                    f"<p><b>{esc(t['published'])}:</b> <span dir='ltr' lang='en'>{esc(p.finding)} "
                    f"({esc(p.citation)})</span></p>"
                )
            s.append(f"<p class='{a.verdict.kind}'><b>{esc(t['verdict'])}:</b> {verdict_line(a, lang, out)}</p>")
            cite, ref_columns, ref_rows, note = _reference(a, lang, out)
            if cite:
                s.append(f"<p><b>{esc(t['reference'])}:</b> {cite}</p>")
                if ref_rows:
                    s.append(_html_table(ref_columns, ref_rows))
                s += [f"<p>{n}</p>" for n in note]
            s += [
                f"<p><b>{esc(t['reproduce'])}:</b> {command}</p>",
                f"<p><b>{esc(t['time'])}:</b> {_minutes(a, stated[name], lang, out)}</p></section>",
            ]
            parts.append("".join(s))
    direction = "rtl" if lang == "fa" else "ltr"
    return (
        f'<!doctype html><html lang="{lang}" dir="{direction}"><head><meta charset="utf-8">'
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{esc(t['title'])}</title>"
        f"<style>{STYLE.format(font=FONTS[lang])}</style></head><body>{''.join(parts)}</body></html>\n"
    )
