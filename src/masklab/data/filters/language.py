"""The language filter: keep documents in the languages the user names (`data.filters.languages`).

Why py3langid: `python benchmarks/language_id.py` (2-core AMD EPYC shared with other jobs, load average 5.5; up to
3,000 lines per group: builtin:en-chat, builtin:rt, builtin:sotu sentences, builtin:fa-chat, and spaCy's example
sentences of 66 other languages). With the rule below, on lines of 20+ characters (data.min_chars' default),
keeping fa keeps 99.2% of fa-chat lines and drops every English, Arabic, Urdu and other-language line; keeping en
keeps 98.8% / 99.3% / 99.9% of en-chat / rt / sotu lines and drops 98.6% of other-language lines and every
Persian one. lingua-language-detector (high accuracy) is no better (99.2% of fa-chat, 95.1% of en-chat) at 31x
fewer lines per second (90 against 2,806 under that load) and 1.44 GB of memory against 0.33 GB; its low-accuracy
mode keeps only 95.1% of fa-chat and 88.3% of en-chat. Top-1 guesses fail on short lines for both (py3langid 87.8%
of fa-chat, 83.2% of en-chat): "سلام علیکم" reads as Urdu, "Python." as Welsh; hence the probability rule.
"""

from __future__ import annotations

from collections import Counter

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from masklab.config import FilterConfig
from masklab.errors import UserError

# keep a document when its kept languages have at least this probability together: a short Persian line often
# scores Urdu or Pashto first with Persian close behind, which a top-1 rule would drop (benchmarks/language_id.py)
KEEP_MIN_PROB = 0.1
SAMPLE_CHARS = 2000  # the language of a long document shows in its first 2,000 characters; cost stays per document


class LanguageFilter:
    """Flags a document whose kept languages are unlikely; counts each document's most likely language."""

    def __init__(self, cfg: FilterConfig):
        # norm_probs: probabilities calibrated by text length (py3langid 0.4), so one threshold suits all lengths
        self.identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        unknown = sorted(set(cfg.languages) - set(self.identifier.labels))
        if unknown:
            raise UserError(
                f"data.filters.languages names {', '.join(unknown)}, which the language detector (py3langid) does "
                "not know; use ISO 639-1 codes (639-3 where a language has none) from: "
                + ", ".join(sorted(self.identifier.labels))
            )
        self.keep = set(cfg.languages)
        self.counts: Counter[str] = Counter()

    def flags(self, text: str) -> bool:
        ranked = self.identifier.rank(text[:SAMPLE_CHARS])
        self.counts[ranked[0][0]] += 1
        if not self.keep:  # report mode without languages: only the counts
            return False
        return sum(p for lang, p in ranked if lang in self.keep) < KEEP_MIN_PROB

    def detected(self) -> dict[str, int]:
        """Documents per most likely language, the ten most common (the rest summed as `other`)."""
        top = dict(self.counts.most_common(10))
        rest = sum(self.counts.values()) - sum(top.values())
        return {**top, "other": rest} if rest else top
