"""Everything the answers page says, in both languages: the seven questions, labels and sentence templates.

A template is plain text with `{name}` placeholders. The filled-in values (numbers, settings, metric names),
the template's own `code` runs (commands, file names) and its [[...]] runs (Latin text such as 95% or CLM) are
left-to-right material: on the Persian page they are isolated (`<bdi dir="ltr">` or `<code dir="ltr">` in HTML,
backticks in markdown) so a minus sign, a decimal point or a `--flag` keeps its place inside right-to-left
text. A number with its sign or spread ("0.35 ± 0.02", "±0.1") is one value, so it stays in one piece.
Persian strings spell their zero-width non-joiners (U+200C) as \\u200c escapes, so a reader sees where
each one is (می\\u200cشود is one word, not two).

This module imports nothing heavy: the CLI reads `quick_minutes()` when it prints --help.
"""

from __future__ import annotations

import html
import re
from importlib import resources

import yaml

from masklab.errors import UserError

LANGS = ("en", "fa")

# Which ready-made studies answer which question (DESIGN.md §1), in the order --run runs them
QUESTIONS: list[tuple[str, list[str]]] = [
    ("Q1", ["q1-init"]),
    ("Q2", ["q2-forgetting"]),
    ("Q3", ["q3-transfer"]),
    ("Q4", ["q4-masking-rate", "q4-masking-strategy"]),
    ("Q5", ["q5-objectives"]),
    ("Q6", ["q6-generation"]),
    ("Q7", ["q7-recipe", "q7-search"]),
]
STUDY_ORDER = [name for _, names in QUESTIONS for name in names]

# The plot that shows a study's answer: the learning-vs-forgetting trade-off for the cures, the search's
# progress for a search, the metric per point for everything else
KEY_PLOT = {"q2-forgetting": "tradeoff", "q7-search": "search"}


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise UserError(f"unknown --lang {lang!r}; choose one of: {', '.join(LANGS)}")
    return lang


def quick_minutes() -> float:
    """The stated quick-scale minutes of every ready-made study, summed from the study files themselves
    (read as plain YAML: no study machinery, so --help stays instant)."""
    total = 0.0
    for name in STUDY_ORDER:
        text = resources.files("masklab.study").joinpath("builtin", f"{name}.yaml").read_text(encoding="utf-8")
        raw = yaml.safe_load(text) or {}
        quick = (raw.get("scales") or {}).get("quick") or {}
        total += float(quick.get("minutes", raw.get("minutes", 0)) or 0)
    return total


EN = {
    "title": "Answers: seven questions about masked language models, measured",
    "intro": "Each answer below is recomputed from its study's results.csv with masklab's own statistics "
    "(comparisons within blocks, paired by seed, Student-t 95% intervals), so the page always agrees with the "
    "numbers. Regenerate it with `masklab answers`; run the studies that are missing with `masklab answers --run`.",
    "sources": "Studies read from {where}.",
    "summary": "Summary",
    "Q1": "How does training from pretrained weights differ from random initialisation, during training and after?",
    "Q2": "What is catastrophic forgetting, how big is it, and what reduces it?",
    "Q3": "Transfer learning (a frozen encoder and a new head) or fine-tuning (some or all layers)?",
    "Q4": "How do the masking method and the masking amount change training and results?",
    "Q5": "Causal LM vs masked LM vs sequence-to-sequence pretraining?",
    "Q6": "How can a masked LM generate text?",
    "Q7": "Why 80/10/10, and how do I make a from-scratch masked LM good?",
    "col_question": "question",
    "col_study": "study",
    "col_effect": "effect (95% CI)",
    "col_verdict": "verdict vs the published finding",
    "col_minutes": "minutes",
    "not_run": "not run yet",
    "stated": "(stated)",
    "answer": "Measured answer",
    "plot": "Key plot",
    "table": "Paired differences within blocks",
    "table_note": "Mean ± sd over seeds and the 95% CI of the mean; each setting is compared, paired by seed, with the "
    "baseline of its own block ({blocking}); settings in different blocks are never compared.",
    "table_note_single": "Mean ± sd over seeds and the 95% CI of the mean; each setting is compared with the baseline, "
    "paired by seed.",
    "table_note_search": "The {shown} best of {configs} configurations by mean; the confirmed ones ran with more "
    "seeds.",
    "published": "Published finding",
    "verdict": "Verdict",
    "reference": "Beside the published figures",
    "reproduce": "Reproduce",
    "time": "Time",
    "minutes_measured": "{minutes} min: the sum of the {trials} trials' wall seconds in results.csv (shared runs "
    "and the report not counted; with several workers the wall clock is shorter)",
    "minutes_stated": "{minutes} min: the study file's stated time for this scale (not measured here)",
    "minutes_both": "; the study file states {stated} min",
    "minutes_needs": "; the study file states {stated} min, which counts the {needs} shared runs it makes first "
    "(their time is not in results.csv)",
    "not_run_line": "Not run yet. Its quick scale is stated to take about {minutes} min.",
    "col_block": "block",
    "col_setting": "setting",
    "col_n": "seeds",
    "col_mean": "{metric} mean ± sd",
    "col_ci": "95% CI",
    "col_diff": "vs baseline",
    "col_diff_ci": "its 95% CI",
    "col_wins": "wins",
    "baseline": "baseline",
    "col_split": "split (MASK/SAME/RND)",
    "col_ours": "here: {metric}",
    "col_ours_diff": "here: vs 80/10/10",
    "absent": "not in this scale",
    "here": "Here",
    "higher": "higher is better",
    "lower": "lower is better",
    "word_agrees": "agrees",
    "word_disagrees": "disagrees",
    "word_inconclusive": "inconclusive",
    "word_untested": "not tested yet",
    "word_no_claim": "no claim to test",
    "failed": "{failed} trial(s) failed; the study's report lists them.",
    # the measured answer
    "claim": "{prefer} against {over} on {metric} ({better}): a paired difference of {diff} (95% CI {low} to {high}) "
    "over {n} seeds{blocks}; {prefer} did better on {wins} of them.",
    "claim_one": "{prefer} against {over} on {metric} ({better}): a difference of {diff} on the one common seed"
    "{blocks}.",
    "claim_blocks": ", the mean of the differences within its {nblocks} blocks ({blocking})",
    "noise_beyond": "That gap is beyond seed noise.",
    "noise_seeds": "That gap is within seed noise: about {seeds} seeds would settle a gap this size (paired sd {sd}).",
    "noise_equivalent": "That gap is within seed noise at any practical number of seeds; the run bounds the "
    "difference within {bound}.",
    "noise_one_seed": "There is one common seed only, so seed noise is not estimated; a second seed would.",
    "untested": "The published claim ({prefer} against {over}) is not testable yet: both need finished trials "
    "with a common seed.",
    "best": "The best {metric} ({better}) came from {best}: {pm} over {n} {unit}.",
    "best_block": "In {block}, the best {metric} ({better}) came from {best}: {pm} over {n} {unit}.",
    "blocks_won": "Within the {nblocks} blocks, {prefer} did better than {over} in {won}, beyond seed noise in "
    "{beyond}.",
    "search_best": "The best of {configs} configurations, {best}, reached {metric} {pm} over {n} {unit} ({better}).",
    "search_range": "The configurations' means ranged from {low} to {high}.",
    # the verdict
    "verdict_agrees": "Agrees: {prefer} is better than {over} beyond seed noise (95% CI {low} to {high}).",
    "verdict_disagrees": "Disagrees: {over} is better than {prefer} beyond seed noise (95% CI {low} to {high}).",
    "verdict_seeds": "Inconclusive: the gap between {prefer} and {over} is within seed noise (95% CI {low} to "
    "{high}); about {seeds} seeds would settle it at the observed paired sd ({sd}).",
    "verdict_equivalent": "Inconclusive on the direction of {prefer} against {over}; as an equivalence verdict: "
    "at 95% the two differ by no "
    "more than {bound} (the margin this run can promise), and a gap as small as the observed one would need more "
    "than {max} seeds to resolve.",
    "verdict_one_seed": "Inconclusive: {prefer} and {over} share one seed; a second seed would estimate the noise.",
    "verdict_margin_equivalent": "Disagrees: the two are equivalent, as the 95% CI ({low} to {high}) lies inside the "
    "study's margin of {margin}, so {prefer} is not better than {over}.",
    "verdict_margin_noninferior": "Agrees: {prefer} is at least as good as {over}, as the 95% CI ({low} to {high}) "
    "stays above minus the study's margin of {margin}.",
    "verdict_untested": "Not tested yet: {prefer} and {over} need finished trials with a common seed.",
    "verdict_no_claim": "No verdict: the published finding is not stated as a comparison of two of this study's "
    "settings.",
    "consistent": "No shortfall beyond seed noise, so the run does not contradict “at least as good”.",
    "effect": "{prefer} vs {over}: {diff}",
    "reference_claim": "Here ({prefer} against {over}): {diff} (95% CI {low} to {high}) on {metric}.",
}

FA = {
    "title": "پاسخ\u200cها: هفت پرسش دربارهٔ مدل\u200cهای زبانی ماسک\u200cدار، با اندازه\u200cگیری",
    "intro": "هر پاسخ در این صفحه از روی `results.csv` همان مطالعه و با آمار خود `masklab` دوباره حساب "
    "می\u200cشود (مقایسه درون هر بلوک، جفت\u200cشده بر پایهٔ بذر تصادفی، بازهٔ اطمینان [[95%]] با توزیع [[t]])، "
    "پس این صفحه همیشه با عددها هم\u200cخوان است. برای ساختن دوباره: `masklab answers --lang fa`؛ برای اجرای "
    "مطالعه\u200cهایی که هنوز اجرا نشده\u200cاند: `masklab answers --run`.",
    "sources": "مطالعه\u200cها از {where} خوانده شده\u200cاند.",
    "summary": "خلاصه",
    "Q1": "آموزش از وزن\u200cهای ازپیش\u200cآموخته با آغاز از وزن\u200cهای تصادفی، در طول آموزش و پس از آن، "
    "چه تفاوتی دارد؟",
    "Q2": "فراموشی فاجعه\u200cبار چیست، چقدر بزرگ است و چه چیزی آن را کم می\u200cکند؟",
    "Q3": "یادگیری انتقالی (رمزگذار منجمد و یک سر تازه) یا تنظیم دقیق (برخی لایه\u200cها یا همهٔ آن\u200cها)؟",
    "Q4": "روش ماسک\u200cکردن و میزان آن چگونه آموزش و نتیجه را تغییر می\u200cدهد؟",
    "Q5": "پیش\u200cآموزش علّی ([[CLM]]) یا ماسک\u200cدار ([[MLM]]) یا دنباله\u200cبه\u200cدنباله ([[Seq2Seq]])؟",
    "Q6": "یک مدل زبانی ماسک\u200cدار چگونه می\u200cتواند متن بنویسد؟",
    "Q7": "چرا [[80/10/10]]، و چگونه یک مدل ماسک\u200cدار را از صفر خوب آموزش دهیم؟",
    "col_question": "پرسش",
    "col_study": "مطالعه",
    "col_effect": "اثر (بازهٔ اطمینان [[95%]])",
    "col_verdict": "داوری در برابر یافتهٔ منتشرشده",
    "col_minutes": "دقیقه",
    "not_run": "هنوز اجرا نشده است",
    "stated": "(اعلام\u200cشده)",
    "answer": "پاسخ اندازه\u200cگیری\u200cشده",
    "plot": "نمودار اصلی",
    "table": "اختلاف\u200cهای جفت\u200cشده درون بلوک\u200cها",
    "table_note": "میانگین ± انحراف معیار روی بذرها و بازهٔ اطمینان [[95%]] میانگین؛ هر تنظیم، جفت\u200cشده بر پایهٔ "
    "بذر، با خط پایهٔ بلوک خودش ({blocking}) مقایسه می\u200cشود و تنظیم\u200cهای دو بلوک متفاوت هرگز با هم مقایسه "
    "نمی\u200cشوند.",
    "table_note_single": "میانگین ± انحراف معیار روی بذرها و بازهٔ اطمینان [[95%]] میانگین؛ هر تنظیم، جفت\u200cشده "
    "بر پایهٔ بذر، با خط پایه مقایسه می\u200cشود.",
    "table_note_search": "{shown} پیکربندی برتر از {configs} پیکربندی، به ترتیب میانگین؛ پیکربندی\u200cهای تأییدشده "
    "با بذرهای بیشتری اجرا شده\u200cاند.",
    "published": "یافتهٔ منتشرشده",
    "verdict": "داوری",
    "reference": "در کنار عددهای منتشرشده",
    "reproduce": "بازتولید",
    "time": "زمان",
    "minutes_measured": "{minutes} دقیقه: جمع ثانیه\u200cهای دیواری {trials} آزمایش در `results.csv` (اجراهای مشترک "
    "و گزارش حساب نشده\u200cاند؛ با چند کارگر، زمان واقعی کوتاه\u200cتر است)",
    "minutes_stated": "{minutes} دقیقه: زمانی که پروندهٔ مطالعه برای این مقیاس اعلام کرده است (این\u200cجا اندازه "
    "گرفته نشده)",
    "minutes_both": "؛ پروندهٔ مطالعه {stated} دقیقه اعلام کرده است",
    "minutes_needs": "؛ پروندهٔ مطالعه {stated} دقیقه اعلام کرده است که {needs} اجرای مشترکِ پیش از آزمایش\u200cها را "
    "هم در بر می\u200cگیرد (زمان آن\u200cها در `results.csv` نیست)",
    "not_run_line": "هنوز اجرا نشده است. مقیاس سریع آن بنا بر پروندهٔ مطالعه حدود {minutes} دقیقه طول می\u200cکشد.",
    "col_block": "بلوک",
    "col_setting": "تنظیم",
    "col_n": "بذرها",
    "col_mean": "میانگین ± انحراف معیار {metric}",
    "col_ci": "بازهٔ اطمینان [[95%]]",
    "col_diff": "در برابر خط پایه",
    "col_diff_ci": "بازهٔ اطمینان آن",
    "col_wins": "بردها",
    "baseline": "خط پایه",
    "col_split": "تقسیم ([[MASK/SAME/RND]])",
    "col_ours": "این\u200cجا: {metric}",
    "col_ours_diff": "این\u200cجا: در برابر [[80/10/10]]",
    "absent": "در این مقیاس نیست",
    "here": "این\u200cجا",
    "higher": "بیشتر بهتر است",
    "lower": "کمتر بهتر است",
    "word_agrees": "موافق",
    "word_disagrees": "مخالف",
    "word_inconclusive": "بی\u200cنتیجه",
    "word_untested": "هنوز آزموده نشده",
    "word_no_claim": "ادعایی برای آزمودن نیست",
    "failed": "{failed} آزمایش ناموفق بود؛ گزارش مطالعه آن\u200cها را فهرست می\u200cکند.",
    "claim": "{prefer} در برابر {over} روی {metric} ({better}): اختلاف جفت\u200cشده {diff} است (بازهٔ اطمینان "
    "[[95%]] از {low} تا {high}) روی {n} بذر{blocks}؛ {prefer} در {wins} بذر از آن\u200cها بهتر بود.",
    "claim_one": "{prefer} در برابر {over} روی {metric} ({better}): اختلاف روی تنها بذر مشترک {diff} است{blocks}.",
    "claim_blocks": "، میانگین اختلاف\u200cها درون {nblocks} بلوک آن ({blocking})",
    "noise_beyond": "این اختلاف فراتر از نوسان میان بذرهاست.",
    "noise_seeds": "این اختلاف در حد نوسان میان بذرهاست: حدود {seeds} بذر برای روشن\u200cکردن اختلافی به این "
    "اندازه بس است (انحراف معیار جفت\u200cشده {sd}).",
    "noise_equivalent": "این اختلاف با هر شمار عملی از بذرها در حد نوسان می\u200cماند؛ این اجرا اختلاف را به "
    "{bound} محدود می\u200cکند.",
    "noise_one_seed": "تنها یک بذر مشترک هست، پس نوسان میان بذرها برآورد نشده است؛ بذر دوم آن را برآورد می\u200cکند.",
    "untested": "ادعای منتشرشده ({prefer} در برابر {over}) هنوز آزمودنی نیست: هر دو به آزمایش\u200cهای تمام\u200cشده "
    "با بذر مشترک نیاز دارند.",
    "best": "بهترین {metric} ({better}) از {best} به دست آمد: {pm} روی {n} بذر.",
    "best_block": "در {block}، بهترین {metric} ({better}) از {best} به دست آمد: {pm} روی {n} بذر.",
    "blocks_won": "درون {nblocks} بلوک، {prefer} در {won} بلوک از {over} بهتر بود و در {beyond} بلوک فراتر از "
    "نوسان بذرها.",
    "search_best": "بهترین پیکربندی از {configs} پیکربندی، {best}، به {metric} برابر {pm} روی {n} بذر رسید ({better}).",
    "search_range": "میانگین پیکربندی\u200cها از {low} تا {high} بود.",
    "verdict_agrees": "موافق: {prefer} فراتر از نوسان بذرها از {over} بهتر است (بازهٔ اطمینان [[95%]] از {low} تا "
    "{high}).",
    "verdict_disagrees": "مخالف: {over} فراتر از نوسان بذرها از {prefer} بهتر است (بازهٔ اطمینان [[95%]] از {low} "
    "تا {high}).",
    "verdict_seeds": "بی\u200cنتیجه: اختلاف {prefer} و {over} در حد نوسان بذرهاست "
    "(بازهٔ اطمینان [[95%]] از {low} تا {high})؛ با "
    "انحراف معیار جفت\u200cشدهٔ مشاهده\u200cشده ({sd}) حدود {seeds} بذر آن را روشن می\u200cکند.",
    "verdict_equivalent": "دربارهٔ جهت {prefer} در برابر {over} بی\u200cنتیجه؛ "
    "به\u200cعنوان داوری هم\u200cارزی: با اطمینان [[95%]] "
    "اختلاف این دو بیش از {bound} نیست (حاشیه\u200cای که این اجرا می\u200cتواند تضمین کند)، و روشن\u200cکردن "
    "اختلافی به کوچکی اختلاف مشاهده\u200cشده به بیش از {max} بذر نیاز دارد.",
    "verdict_one_seed": "بی\u200cنتیجه: {prefer} و {over} تنها یک بذر مشترک دارند؛ بذر دوم نوسان را برآورد "
    "می\u200cکند.",
    "verdict_margin_equivalent": "مخالف: این دو هم\u200cارزند، چون بازهٔ اطمینان [[95%]] (از {low} تا {high}) درون "
    "حاشیهٔ {margin} این مطالعه است، پس {prefer} از {over} بهتر نیست.",
    "verdict_margin_noninferior": "موافق: {prefer} دست\u200cکم به خوبی {over} است، چون بازهٔ اطمینان [[95%]] (از {low} "
    "تا {high}) بالاتر از منفیِ حاشیهٔ {margin} این مطالعه می\u200cماند.",
    "verdict_untested": "هنوز آزموده نشده: {prefer} و {over} به آزمایش\u200cهای تمام\u200cشده با بذر مشترک نیاز دارند.",
    "verdict_no_claim": "بدون داوری: یافتهٔ منتشرشده به شکل مقایسهٔ دو تنظیم از این مطالعه بیان نشده است.",
    "consistent": "کمبودی فراتر از نوسان بذرها نیست، پس این اجرا با «دست\u200cکم به همان خوبی» تناقض ندارد.",
    "effect": "{prefer} در برابر {over}: {diff}",
    "reference_claim": "این\u200cجا ({prefer} در برابر {over}): {diff} (بازهٔ اطمینان [[95%]] از {low} تا {high}) روی "
    "{metric}.",
}

TEXT = {"en": EN, "fa": FA}
_MARKUP = re.compile(r"`([^`]*)`|\[\[(.*?)\]\]")  # `code` and [[left-to-right text]] in a template


def ltr(value: str, lang: str, fmt: str, code: bool = False) -> str:
    """A left-to-right fragment (a number, a setting, a command) ready for a page of `lang` in `fmt`."""
    if fmt == "md":
        return f"`{value}`" if lang == "fa" or code else value
    text = html.escape(value)
    if code:
        return f'<code dir="ltr">{text}</code>'
    return f'<bdi dir="ltr">{text}</bdi>' if lang == "fa" else text


def fill(key: str, lang: str, fmt: str = "md", **values) -> str:
    """The template `key` in `lang`, its placeholders filled with `values` as left-to-right fragments.
    A value that is already rendered (a nested template) is passed wrapped in Raw."""
    template = TEXT[lang][key]
    out, at = [], 0
    for m in _MARKUP.finditer(template):
        out.append(_plain(template[at : m.start()], fmt))
        out.append(ltr(m.group(1), lang, fmt, code=True) if m.group(1) is not None else ltr(m.group(2), lang, fmt))
        at = m.end()
    out.append(_plain(template[at:], fmt))
    filled = {k: v if isinstance(v, Raw) else ltr(str(v), lang, fmt) for k, v in values.items()}
    return "".join(out).format_map(filled)


def _plain(text: str, fmt: str) -> str:
    return html.escape(text, quote=False) if fmt == "html" else text


def word(key: str, lang: str, fmt: str = "md") -> str:
    """A fixed piece of text (a heading, a column name) with its backticked runs isolated."""
    return fill(key, lang, fmt)


class Raw(str):
    """Text already rendered for the page: `fill` inserts it as it is."""


def reference() -> dict:
    """The published figures shown beside the studies (reference.yaml, next to this module), by study name."""
    text = resources.files("masklab.study.answers").joinpath("reference.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}
