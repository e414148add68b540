"""Fill-mask in the page: the words of a text a click can mask (the proposals themselves come from
`masklab.generate.fillmask.fill_mask`, in the model hub's fill-mask schema)."""

from __future__ import annotations

import re


def words(text: str, mask_token: str = "[MASK]") -> list[tuple[str, int, int]]:
    """(word, start, end) of every clickable piece of a text: the mask token, a word (any script: \\w is
    Unicode) or a run of punctuation."""
    pattern = re.compile(re.escape(mask_token) + r"|\w+|[^\w\s]+")
    return [(m.group(), m.start(), m.end()) for m in pattern.finditer(text)]


def toggle_word(text: str, index: int, mask_token: str = "[MASK]") -> str:
    """The text with its `index`-th word replaced by [MASK] (a [MASK] clicked stays: there is nothing to restore)."""
    found = words(text, mask_token)
    if not 0 <= index < len(found):
        return text
    word, start, end = found[index]
    return text if word == mask_token else text[:start] + mask_token + text[end:]
