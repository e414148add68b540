"""A strategy's own settings as people type them: KEY=VALUE pairs (`--setting k=2`, or "k=2, burn_in=0.5"
in the playground), values read as YAML scalars so numbers and booleans arrive typed."""

from __future__ import annotations

import yaml

from masklab.errors import UserError


def parse_settings(items: list[str] | str) -> dict:
    """KEY=VALUE items (or one comma-separated string of them) -> {KEY: number, bool or string}."""

    if isinstance(items, str):
        items = [part for part in items.replace("\n", ",").split(",") if part.strip()]
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(
                f"setting {item.strip()!r} is not KEY=VALUE, e.g. k=2 (gibbs) or block_length=8 (diffusion)"
            )
        out[key.strip()] = yaml.safe_load(value)
    return out
