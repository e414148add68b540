"""Language identification on short Persian and English lines: which detector should the language filter use?

Lines come from what is shipped, so the figures need no download:
  - en: builtin:en-chat utterances, Rotten Tomatoes snippets (builtin:rt) and State of the Union sentences
    (builtin:sotu, cut at sentence ends);
  - fa: builtin:fa-chat utterances and spaCy's Persian example sentences;
  - other: spaCy's example sentences of every other language it ships (Arabic and Urdu, Persian's neighbours
    in script, are also shown alone as ar+ur);
  - mixed: a Persian line of 6+ words followed by two English words, and an English line of 6-20 words with
    one Persian word (the answer counted right is the language of most of the words).
Two scores per detector: (1) top-1: the detector's best guess names the line's language (for `other` lines: names
neither en nor fa); (2) the filter's rule, on lines of 20+ characters (data.min_chars' default): keep a line when
the kept language's probability is at least 0.1, scored as keep-fa and keep-en (a line is right when it is kept
exactly if it is in the kept language). Each detector runs in a fresh process, one line per call on one thread:
lines per second (with the full probability vector), the first call's seconds (model load), peak resident memory.

Detectors: py3langid (a naive Bayes over byte n-grams, 97 languages, probabilities calibrated by length) and
lingua-language-detector in its high- and low-accuracy modes (n-gram models of 75 languages) where installed, and
a script rule (Arabic letters -> fa, Latin -> en) as the baseline any detector must beat on other languages.

    python benchmarks/language_id.py               # up to 3,000 lines per group (about 18,000)
    python benchmarks/language_id.py --per-group 0  # every line (sotu alone has 40,000 sentences)
    python benchmarks/language_id.py --smoke       # seconds: does it still run?
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

from machine import machine, parse_args, ratio_line
from masklab.data.sources import BUILTIN_CORPORA, iter_documents, resource_path

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
ARABIC = re.compile(r"[\u0600-\u06ff]")
LATIN = re.compile(r"[A-Za-z]")
DETECTORS = ["py3langid", "lingua-high", "lingua-low", "script-rule"]
PACKAGES = {"py3langid": "py3langid", "lingua-high": "lingua", "lingua-low": "lingua", "script-rule": None}


def spacy_examples() -> dict[str, list[str]]:
    """spaCy's example sentences per language code (read from its package files, without importing spaCy)."""
    spec = importlib.util.find_spec("spacy")
    if spec is None or spec.origin is None:
        return {}
    out = {}
    for path in sorted((Path(spec.origin).parent / "lang").glob("*/examples.py")):
        scope: dict = {}
        try:
            exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), scope)  # a list literal, no imports
        except Exception:  # an examples module that imports something: skip that language
            continue
        if isinstance(scope.get("sentences"), list):
            out[path.parent.name] = [s.strip() for s in scope["sentences"] if isinstance(s, str) and s.strip()]
    return out


def build_lines(per_group: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(group, expected language, line) for every group; `per_group` = 0 keeps every line."""
    rng = random.Random(seed)

    def take(lines: list[str]) -> list[str]:
        lines = [" ".join(x.split()) for x in lines if x.strip()]
        return lines if not per_group or len(lines) <= per_group else rng.sample(lines, per_group)

    def corpus(name: str) -> list[str]:
        return list(iter_documents(f"builtin:{name}"))

    sotu = [s for doc in corpus("sotu") for s in SENTENCE_END.split(doc) if 3 <= len(s.split()) <= 30]
    examples = spacy_examples()
    fa_chat = corpus("fa-chat")
    fa_long = [x for x in fa_chat if len(x.split()) >= 6]
    en_long = [x for x in corpus("rt") if 6 <= len(x.split()) <= 20]
    groups = {
        "en-chat": ("en", take(corpus("en-chat"))),
        "en-rt": ("en", take(corpus("rt"))),
        "en-sotu": ("en", take(sotu)),
        "fa-chat": ("fa", take(fa_chat)),
        "fa-spacy": ("fa", take(examples.get("fa", []))),
        "other": ("other", take([s for code, ss in examples.items() if code not in ("en", "fa") for s in ss])),
        "ar+ur": ("other", take([s for code in ("ar", "ur") for s in examples.get(code, [])])),
        "mixed fa+en": ("fa", take([f"{fa} {' '.join(rng.choice(en_long).split()[:2])}" for fa in fa_long])),
        "mixed en+fa": ("en", take([f"{en} {rng.choice(fa_chat).split()[0]}" for en in en_long[:2000]])),
    }
    return [(group, lang, line) for group, (lang, lines) in groups.items() for line in lines]


KEEP_MIN_PROB = 0.1  # the filter's rule: keep a line whose kept language has at least this probability
MIN_CHARS = 20  # data.min_chars' default: shorter lines never reach the filter


def make_detector(name: str):
    """A function line -> (best language's ISO 639-1 code or '', probability of en, probability of fa)."""
    if name == "py3langid":
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

        def detect(text: str) -> tuple[str, float, float]:
            ranked = identifier.rank(text)
            probs = dict(ranked)
            return ranked[0][0], probs.get("en", 0.0), probs.get("fa", 0.0)

        return detect
    if name.startswith("lingua"):
        from lingua import LanguageDetectorBuilder

        builder = LanguageDetectorBuilder.from_all_languages()
        detector = (builder.with_low_accuracy_mode() if name == "lingua-low" else builder).build()

        def detect(text: str) -> tuple[str, float, float]:
            values = detector.compute_language_confidence_values(text)
            probs = {v.language.iso_code_639_1.name.lower(): v.value for v in values}
            best = values[0].language.iso_code_639_1.name.lower() if values and values[0].value > 0 else ""
            return best, probs.get("en", 0.0), probs.get("fa", 0.0)

        return detect

    def script_rule(text: str) -> tuple[str, float, float]:
        fa = len(ARABIC.findall(text)) > len(LATIN.findall(text))
        return ("fa", 0.0, 1.0) if fa else ("en", 1.0, 0.0)

    return script_rule


def run_worker(name: str, lines_file: Path) -> None:
    """In a fresh process: label every line, print the labels and timings as one JSON object."""
    rows = json.loads(gzip.decompress(lines_file.read_bytes()))
    start = time.perf_counter()
    detect = make_detector(name)
    first = detect(rows[0][2])
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    labels = [first] + [detect(line) for _, _, line in rows[1:]]
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps({"labels": labels, "load_s": load_s, "lines_per_s": (len(rows) - 1) / seconds, "peak_mb": peak_mb})
    )


def right(expected: str, label: str) -> bool:
    return label not in ("en", "fa") if expected == "other" else label == expected


def table(title: str, groups: list[str], scores: dict[str, dict[str, float]]) -> dict[str, float]:
    """Print one row per detector (a score per group and their mean over the en/fa/other groups); the means."""
    print(title)
    print(f"{'detector':<12} " + " ".join(f"{g:>12}" for g in groups) + "  mean en/fa/other")
    means = {}
    for name, cells in scores.items():
        core = [v for g, v in cells.items() if not g.startswith(("mixed", "ar+ur"))]
        means[name] = sum(core) / len(core)
        print(
            f"{name:<12} " + " ".join(f"{cells.get(g, float('nan')):>12.3f}" for g in groups) + f"  {means[name]:.3f}"
        )
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-group", type=int, default=3000, help="lines sampled per group; 0 = every line")
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    parser.add_argument("--lines-file", default="", help=argparse.SUPPRESS)
    args = parse_args(parser, {"per_group": 15})
    if args.worker:
        run_worker(args.worker, Path(args.lines_file))
        return
    print(machine())
    assert "fa-chat" in BUILTIN_CORPORA and resource_path(BUILTIN_CORPORA["fa-chat"][0]).exists()
    rows = build_lines(args.per_group)
    lines_file = Path(f"/tmp/masklab-langid-{time.time_ns()}.json.gz")
    lines_file.write_bytes(gzip.compress(json.dumps(rows).encode("utf-8")))
    groups = list(dict.fromkeys(g for g, _, _ in rows))
    results = {}
    try:
        for name in args.detectors.split(","):
            package = PACKAGES[name]
            if package and importlib.util.find_spec(package) is None:
                print(f"SKIP {name}: the package {package} is not installed")
                continue
            done = subprocess.run(
                [sys.executable, __file__, "--worker", name, "--lines-file", str(lines_file)],
                capture_output=True,
                text=True,
                check=True,
            )
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        lines_file.unlink(missing_ok=True)
    counts = {g: sum(1 for r in rows if r[0] == g) for g in groups}
    print(f"{len(rows)} lines: " + ", ".join(f"{g} {n}" for g, n in counts.items()))

    def share(hits: list[bool]) -> float:
        return sum(hits) / len(hits) if hits else float("nan")

    top1 = {
        name: {
            g: share([right(e, lab[0]) for (grp, e, _), lab in zip(rows, res["labels"]) if grp == g]) for g in groups
        }
        for name, res in results.items()
    }
    accuracy = table("top-1 accuracy per group:", groups, top1)
    rule = {}
    for keep, column in (("fa", 2), ("en", 1)):
        rule[keep] = {
            name: {
                g: share(
                    [
                        (lab[column] >= KEEP_MIN_PROB) == (e == keep)
                        for (grp, e, line), lab in zip(rows, res["labels"])
                        if grp == g and len(line) >= MIN_CHARS
                    ]
                )
                for g in groups
            }
            for name, res in results.items()
        }
        rule[keep] = table(
            f"the filter's rule, keep {keep} (p >= {KEEP_MIN_PROB}), lines of {MIN_CHARS}+ characters:",
            groups,
            rule[keep],
        )
    for name, res in results.items():
        print(
            f"{name:<12} {res['lines_per_s']:,.0f} lines/s, first call {res['load_s']:.2f} s, "
            f"peak memory {res['peak_mb']:,.0f} MB"
        )
    if "py3langid" in results:
        for other in ("script-rule", "lingua-high", "lingua-low"):
            if other not in results:
                continue
            for what, values in (("top-1", accuracy), ("keep-fa rule", rule["fa"]), ("keep-en rule", rule["en"])):
                ratio_line(
                    f"{what} mean accuracy vs {other}",
                    values["py3langid"],
                    values[other],
                    "",
                    masklab="py3langid",
                    baseline=other,
                )
            ratio_line(
                f"lines per second vs {other}",
                results["py3langid"]["lines_per_s"],
                results[other]["lines_per_s"],
                "lines/s",
                masklab="py3langid",
                baseline=other,
            )


if __name__ == "__main__":
    main()
