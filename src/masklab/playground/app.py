"""The playground page: five tabs over one or two runs, and an API named after the views.

API (gradio_client: `Client(url).predict(..., api_name="/fill_mask")`), each with `run` = 0 or 1:
    fill_mask(text, top_k)        -> the fill-mask pipeline's schema: [{"score", "token", "token_str", "sequence"}]
    mask_preview(text, strategy, rate, seed, tagger) -> {"pieces": [{"text", "kind", "original"}], "stats", "targets"}
    generate(text, mode, strategy, steps, ...)        -> streams {"step", "steps", "texts"}, then {"samples", ...}
    score(sentences, kind)        -> [{"sentence", "score", "tokens", "per_token", "rank", "kind"}]
                                     (a string is one sentence)
A bad input is a gr.Error with one line saying what to change; in the page it is a red box, never a trace.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import asdict
from typing import Iterator

import gradio as gr

from masklab.errors import UserError
from masklab.generate.fillmask import fill_mask
from masklab.generate.run import GenerateConfig
from masklab.generate.settings import parse_settings
from masklab.playground import render
from masklab.playground.fillmask import toggle_word, words
from masklab.playground.maskview import TAGGER_SCRIPTS, preview_text
from masklab.playground.models import LoadedRun
from masklab.playground.runs import run_page
from masklab.playground.scores import score_kinds, score_sentences
from masklab.playground.stream import Step, stream_generate
from masklab.registry import lookup, names

log = logging.getLogger("masklab.playground")
MODES = {
    "template": "fill a template ([MASK], [MASK]*3, [MASK]*2-6)",
    "prompt": "continue a prompt",
    "unconditional": "unconditional",
}
MAX_SAMPLES = 4  # samples per request in the page: each one streams


def _answer(run: LoadedRun, fn, *args) -> str:
    """One run's answer as HTML; a UserError becomes a red box, anything else a one-line box (and one line
    in the terminal), never a trace in the page."""
    try:
        return fn(run, *args)
    except UserError as exc:
        return render.error(str(exc))
    except Exception as exc:  # a bug: say what happened in one line; the terminal keeps the cause
        log.warning("playground: %s: %s", type(exc).__name__, exc)
        return render.error(f"internal error ({type(exc).__name__}: {exc}); the terminal has the details")


def _pick(runs: list[LoadedRun], run: int) -> LoadedRun:
    if not 0 <= int(run) < len(runs):
        raise gr.Error(
            print_exception=False,
            message=(
                f"run must be 0{' or 1' if len(runs) > 1 else ''} (got {run}): this playground has {len(runs)} run(s)"
            ),
        )
    return runs[int(run)]


def _api(fn):
    """An API endpoint: UserErrors become gr.Error (the client sees the one line, the terminal nothing);
    a generator stays one, so gradio streams it."""
    if inspect.isgeneratorfunction(fn):

        def call(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except UserError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
    else:

        def call(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except UserError as exc:
                raise gr.Error(str(exc), print_exception=False) from None

    call.__signature__ = inspect.signature(fn)
    call.__name__, call.__doc__, call.__annotations__ = fn.__name__, fn.__doc__, fn.__annotations__
    return call


def strategy_defaults(strategy: str) -> str:
    """The strategy's settings with their defaults, as the settings box shows them."""

    cls = lookup("unmask", strategy)
    params = [
        p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self" and p.default is not p.empty
    ]
    return ", ".join(f"{p.name}={p.default}" for p in params)


def generate_config(
    strategy: str,
    steps: int,
    temperature: float,
    top_p: float,
    top_k: int,
    length: int,
    n: int,
    seed: int,
    settings: str,
    banned: str = "",
):

    if not 1 <= int(n) <= MAX_SAMPLES:
        raise UserError(
            f"the page writes 1 to {MAX_SAMPLES} samples at once (got {n}); `masklab generate --n` writes more"
        )
    if not 1 <= int(length) <= 256:
        raise UserError(f"length must be between 1 and 256 tokens (got {length})")
    return GenerateConfig(
        strategy=strategy,
        steps=int(steps),
        temperature=float(temperature),
        top_p=float(top_p),
        top_k=int(top_k),
        length=int(length),
        n=int(n),
        seed=int(seed),
        batch_size=MAX_SAMPLES,
        settings=parse_settings(settings),
        banned=[w.strip() for w in (banned or "").split(",") if w.strip()],
    )


def _generation_inputs(mode: str, text: str) -> tuple[str, str]:
    """(template, prompt) for a mode."""
    if mode not in MODES:
        raise UserError(f"mode must be one of {', '.join(MODES)} (got {mode!r})")
    if mode == "template":
        if "[MASK]" not in (text or ""):
            raise UserError(
                "a template needs at least one gap: [MASK] (one token), [MASK]*3 (three) or [MASK]*2-6 (two to six)"
            )
        return text, ""
    return "", (text if mode == "prompt" else "")


def build_app(runs: list[LoadedRun], example: str = "The state of the [MASK] is strong.") -> gr.Blocks:
    """The page for one or two loaded runs (two: every view shows both answers side by side)."""
    titles = " vs ".join(r.name for r in runs)
    plain = example.replace("[MASK]", "union")

    # ------------------------------------------------------------------ API: plain values in, plain values out
    def api_fill_mask(text: str, top_k: int = 5, run: int = 0) -> list:
        """Top-k fillers of every [MASK] in the model hub's fill-mask schema."""
        chosen = _pick(runs, run)
        chosen.require_masked("fill-mask")
        return fill_mask(chosen.model, chosen.tokenizer, text, int(top_k), chosen.max_tokens).hub()

    def api_mask_preview(
        text: str, strategy: str = "random", rate: float = 0.15, seed: int = 0, tagger: str = "", run: int = 0
    ) -> dict:
        """The text as the strategy masks it once, and the statistics measured over many maskings."""
        preview = preview_text(_pick(runs, run), text, strategy, float(rate), int(seed), tagger)
        return {
            "pieces": [asdict(p) for p in preview.pieces],
            "stats": preview.stats,
            "targets": preview.targets,
            "notice": preview.notice,
        }

    def api_generate(
        text: str = "",
        mode: str = "template",
        strategy: str = "maskgit",
        steps: int = 0,
        temperature: float = 1.0,
        top_p: float = 0.9,
        top_k: int = 0,
        length: int = 32,
        n: int = 1,
        seed: int = 0,
        settings: str = "",
        banned: str = "",
        run: int = 0,
    ) -> Iterator[dict]:
        """Streams {"step", "steps", "texts"} after every step, then the samples and their speed."""
        template, prompt = _generation_inputs(mode, text)
        cfg = generate_config(strategy, steps, temperature, top_p, top_k, length, n, seed, settings, banned)
        for event in stream_generate(_pick(runs, run), cfg, template, prompt):
            yield asdict(event) if isinstance(event, Step) else event

    def api_score(sentences: list[str] | str, kind: str = "", run: int = 0) -> list[dict]:
        """Sentence scores (pseudo-log-likelihood or log-likelihood), ranked: a minimal-pair explorer.
        A string is one sentence; a list is several."""
        return score_sentences(_pick(runs, run), sentences, kind)

    # ------------------------------------------------------------------ views: HTML for every run, side by side
    def view_fill(text, top_k):
        def one(run):
            run.require_masked("fill-mask")
            filled = fill_mask(run.model, run.tokenizer, text, int(top_k), run.max_tokens)
            return render.fill_bars(filled.proposals, filled.notice)

        return render.columns([(r.name, _answer(r, one)) for r in runs]), _segments(text)

    def _segments(text):
        """The text as clickable segments (the page always writes [MASK]; fill_mask maps it to the tokenizer's)."""
        out, last = [], 0
        for word, start, end in words(text or ""):
            if start > last:
                out.append((text[last:start], None))
            out.append((word, "mask" if word == "[MASK]" else None))
            last = end
        return out

    def view_click(text, top_k, evt: gr.SelectData):
        segments = _segments(text)
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not isinstance(index, int) or not 0 <= index < len(segments) or not segments[index][0].strip():
            return (text, *view_fill(text, top_k))
        new = toggle_word(text, sum(1 for word, _ in segments[:index] if word.strip()))
        return (new, *view_fill(new, top_k))

    def view_preview(text, strategy, rate, seed, tagger):
        def one(run):
            return render.masked_text(preview_text(run, text, strategy, float(rate), int(seed), tagger))

        return render.columns([(r.name, _answer(r, one)) for r in runs])

    def view_generate(mode, text, strategy, steps, temperature, top_p, top_k, length, n, seed, settings, banned):
        """Streams (html, slider, trajectories) as the runs' steps arrive; the runs take turns."""
        trajectories = [[] for _ in runs]
        shown = ["" for _ in runs]
        try:
            template, prompt = _generation_inputs(mode, text)
            cfg = generate_config(strategy, steps, temperature, top_p, top_k, length, n, seed, settings, banned)
        except UserError as exc:
            yield render.error(str(exc)), gr.update(), trajectories
            return
        for i, run in enumerate(runs):
            try:
                for event in stream_generate(run, cfg, template, prompt):
                    if isinstance(event, Step):
                        trajectories[i].append(event.texts)
                        shown[i] = render.step_texts(event.texts, event.step, event.steps, run.tokenizer.mask_token)
                    else:
                        shown[i] = (
                            render.notice(event["notice"])
                            + shown[i]
                            + f"<p>{event['generated_tokens']} tokens in {event['seconds']:.2f} s</p>"
                        )
                    yield render.columns(list(zip([r.name for r in runs], shown))), gr.update(), trajectories
            except UserError as exc:
                shown[i] = render.error(str(exc))
            except Exception as exc:  # a bug: one line in the page and in the terminal
                log.warning("playground: %s: %s", type(exc).__name__, exc)
                shown[i] = render.error(f"internal error ({type(exc).__name__}: {exc})")
        longest = max((len(t) for t in trajectories), default=0)
        yield (
            render.columns(list(zip([r.name for r in runs], shown))),
            gr.update(minimum=1, maximum=max(longest, 2), value=longest, step=1, interactive=longest > 1),
            trajectories,
        )

    def view_replay(step, trajectories):
        parts = []
        for run, steps in zip(runs, trajectories or [[] for _ in runs]):
            if not steps:
                parts.append((run.name, ""))
                continue
            k = min(max(int(step), 1), len(steps))
            parts.append((run.name, render.step_texts(steps[k - 1], k, len(steps), run.tokenizer.mask_token)))
        return render.columns(parts)

    def view_score(text, kind):
        sentences = [line for line in (text or "").splitlines() if line.strip()]

        def one(run):
            return render.score_table(score_sentences(run, sentences, kind if kind in score_kinds(run) else ""))

        return render.columns([(r.name, _answer(r, one)) for r in runs])

    def view_runs():

        return render.columns([(r.name, run_page(r)) for r in runs])

    # ------------------------------------------------------------------ the page
    kinds = list(dict.fromkeys(k for r in runs for k in score_kinds(r)))
    with gr.Blocks(title=f"masklab playground: {titles}", analytics_enabled=False) as app:
        gr.Markdown(f"## masklab playground · {titles}")
        for run in runs:
            if run.notice:
                gr.HTML(render.notice(run.notice))
        with gr.Tab("Fill-mask", id="fill"):
            fill_text = gr.Textbox(
                value=example, label="text (write [MASK] where a word is missing)", lines=3, elem_id="fill-text"
            )
            with gr.Row():
                fill_k = gr.Slider(1, 20, value=5, step=1, label="top-k", elem_id="fill-k")
                fill_go = gr.Button("Predict", variant="primary", elem_id="fill-go")
            fill_words = gr.HighlightedText(
                label="click a word to mask it",
                elem_id="fill-words",
                color_map={"mask": "#d62728"},
                show_legend=False,
                interactive=False,
            )
            fill_out = gr.HTML(elem_id="fill-out")
        with gr.Tab("Mask preview", id="preview"):
            preview_in = gr.Textbox(value=plain, label="text", lines=3, elem_id="preview-text")
            with gr.Row():
                preview_strategy = gr.Dropdown(
                    names("masker"), value="random", label="strategy", elem_id="preview-strategy"
                )
                preview_rate = gr.Slider(
                    0.05, 0.95, value=0.15, step=0.05, label="masking rate", elem_id="preview-rate"
                )
                preview_tagger = gr.Dropdown(
                    [("the run's", ""), *[(n, n) for n in TAGGER_SCRIPTS]], value="", label="tagger (pos, entity)"
                )
                preview_seed = gr.Number(0, precision=0, label="seed")
            preview_go = gr.Button("Mask", variant="primary", elem_id="preview-go")
            preview_out = gr.HTML(elem_id="preview-out")
        with gr.Tab("Generate", id="generate"):
            with gr.Row():
                gen_mode = gr.Radio([(label, key) for key, label in MODES.items()], value="template", label="mode")
                gen_strategy = gr.Dropdown(names("unmask"), value="maskgit", label="strategy", elem_id="gen-strategy")
            gen_text = gr.Textbox(
                value=example.replace("[MASK]", "[MASK]*2-4"), label="template or prompt", lines=2, elem_id="gen-text"
            )
            gr.Examples(
                [
                    ["template", "We will [MASK]*3 our schools and [MASK]*2-5 for every family."],  # inpainting
                    ["template", "[MASK]*6 . The state of the union is strong ."],
                    ["prompt", "Tonight I ask the Congress to"],
                    ["unconditional", ""],
                ],
                [gen_mode, gen_text],
                label="examples (a template's [MASK]*A-B gaps take A to B tokens)",
            )
            with gr.Row():
                gen_steps = gr.Number(0, precision=0, label="steps (0 = the strategy's default)")
                gen_temperature = gr.Slider(0, 2, value=1.0, step=0.05, label="temperature (0 = greedy)")
                gen_top_p = gr.Slider(0.05, 1, value=0.9, step=0.05, label="top-p")
                gen_top_k = gr.Number(0, precision=0, label="top-k (0 = off)")
            with gr.Row():
                gen_length = gr.Number(32, precision=0, label="length (prompt / unconditional)")
                gen_n = gr.Slider(1, MAX_SAMPLES, value=1, step=1, label="samples")
                gen_seed = gr.Number(0, precision=0, label="seed")
                gen_settings = gr.Textbox(strategy_defaults("maskgit"), label="strategy settings (key=value, ...)")
                gen_banned = gr.Textbox("", label="banned words (comma separated)")
            gen_go = gr.Button("Generate", variant="primary", elem_id="gen-go")
            gen_out = gr.HTML(elem_id="gen-out")
            gen_step = gr.Slider(0, 1, value=0, step=1, label="replay: step", interactive=False, elem_id="gen-step")
            gen_state = gr.State([])
        with gr.Tab("Score", id="score"):
            score_in = gr.Textbox(
                value=f"{plain}\n{plain.replace('union', 'the')}",
                lines=4,
                elem_id="score-text",
                label="sentences, one per line (a minimal pair: two that differ in one place)",
            )
            score_kind = gr.Dropdown([("each run's best", ""), *[(k, k) for k in kinds]], value="", label="score")
            score_go = gr.Button("Score", variant="primary", elem_id="score-go")
            score_out = gr.HTML(elem_id="score-out")
        with gr.Tab("Runs", id="runs"):
            runs_out = gr.HTML(elem_id="runs-out")

        private = {"api_visibility": "private"}
        for trigger in (fill_go.click, fill_text.submit):
            trigger(view_fill, [fill_text, fill_k], [fill_out, fill_words], **private)
        fill_words.select(view_click, [fill_text, fill_k], [fill_text, fill_out, fill_words], **private)
        preview_go.click(
            view_preview,
            [preview_in, preview_strategy, preview_rate, preview_seed, preview_tagger],
            preview_out,
            **private,
        )
        gen_strategy.change(strategy_defaults, gen_strategy, gen_settings, **private)
        gen_go.click(
            view_generate,
            [
                gen_mode,
                gen_text,
                gen_strategy,
                gen_steps,
                gen_temperature,
                gen_top_p,
                gen_top_k,
                gen_length,
                gen_n,
                gen_seed,
                gen_settings,
                gen_banned,
            ],
            [gen_out, gen_step, gen_state],
            **private,
        )
        gen_step.release(view_replay, [gen_step, gen_state], gen_out, **private)
        score_go.click(view_score, [score_in, score_kind], score_out, **private)
        app.load(view_runs, None, runs_out, **private)
        app.load(view_fill, [fill_text, fill_k], [fill_out, fill_words], **private)

        # Unqueued: a direct POST answers in one round trip (the queue's event stream costs ~140 ms per call);
        # generation streams, which needs the queue.
        gr.api(_api(api_fill_mask), api_name="fill_mask", queue=False)
        gr.api(_api(api_mask_preview), api_name="mask_preview", queue=False)
        gr.api(_api(api_generate), api_name="generate")
        gr.api(_api(api_score), api_name="score", queue=False)
    return app
