"""Cleaning filters for pretraining corpora, each off, on or report (count what it would drop or fix, keep the
text), configured under `data.filters` (masklab.config.FilterConfig).

`Filters.repair` runs on each raw document before normalisation (mojibake is a decoding error, best undone
first); `Filters.admit` runs after exact dedup and says whether a document is kept. `Filters.stats()` is what
each filter checked, flagged, dropped (or fixed) and the seconds it took: it goes into the prepared corpus's
stats and from there into a run's summary.json as `corpus.filters.NAME`.
"""

from __future__ import annotations

import time
from collections import Counter

from masklab.config import FilterConfig
from masklab.data.filters.heuristics import CharShare, Length, Mojibake, Repetition
from masklab.data.filters.language import LanguageFilter
from masklab.data.filters.near_dup import NearDup

# name -> class taking the FilterConfig, run in this order: cheap before costly, and near_dup last because it
# remembers every document it lets through (a later filter dropping one would leave a ghost in its index)
DROPPERS = {
    "length": Length,
    "char_share": CharShare,
    "repetition": Repetition,
    "language": LanguageFilter,
    "near_dup": NearDup,
}
REPAIRERS = {"mojibake": Mojibake}


class Filters:
    """The configured filters over one pass of a corpus (near_dup and the counts are per pass: build anew)."""

    def __init__(self, cfg: FilterConfig):
        self.cfg = cfg
        self.repairers = {name: cls(cfg) for name, cls in REPAIRERS.items() if getattr(cfg, name) != "off"}
        self.droppers = {name: cls(cfg) for name, cls in DROPPERS.items() if getattr(cfg, name) != "off"}
        self.counts = {name: Counter() for name in (*self.repairers, *self.droppers)}
        self.seconds = Counter()

    def repair(self, text: str) -> str:
        for name, repairer in self.repairers.items():
            start = time.perf_counter()
            fixed = repairer.fix(text)
            self.seconds[name] += time.perf_counter() - start
            count = self.counts[name]
            count["checked"] += 1
            if fixed != text:
                count["flagged"] += 1
                if getattr(self.cfg, name) == "on":
                    count["fixed"] += 1
                    text = fixed
        return text

    def admit(self, text: str) -> bool:
        """True to keep `text`; a report-mode filter only counts it."""
        for name, dropper in self.droppers.items():
            start = time.perf_counter()
            flagged = dropper.flags(text)
            self.seconds[name] += time.perf_counter() - start
            count = self.counts[name]
            count["checked"] += 1
            if flagged:
                count["flagged"] += 1
                if getattr(self.cfg, name) == "on":
                    count["dropped"] += 1
                    return False
        return True

    def stats(self) -> dict:
        """Per filter: mode, checked, flagged (would drop or fix), dropped or fixed, kept, flagged share, seconds."""
        out = {}
        for name in (*REPAIRERS, *DROPPERS):
            mode = getattr(self.cfg, name)
            if mode == "off":
                out[name] = {"mode": "off"}
                continue
            c = self.counts[name]
            entry = {"mode": mode, "checked": c["checked"], "flagged": c["flagged"]}
            if name in REPAIRERS:
                entry["fixed"] = c["fixed"]
            else:
                entry |= {"dropped": c["dropped"], "kept": c["checked"] - c["dropped"]}
            entry["share"] = round(c["flagged"] / c["checked"], 6) if c["checked"] else 0.0
            entry["seconds"] = round(self.seconds[name], 3)
            out[name] = entry
        if "language" in self.droppers:
            out["language"]["detected"] = self.droppers["language"].detected()
        return out
