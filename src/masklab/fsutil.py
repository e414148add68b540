"""Writing files and directories so that a crash never leaves a half-written one under the final name."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_directory(parent: Path, prefix: str):
    """Yield a fresh temporary directory inside `parent`; it is removed if the block fails.

    Fill it, then `publish()` it: a rename is atomic, so readers see all of it or nothing.
    """
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # published directories are gone from here already


def publish(tmp: Path, final: Path, replace: bool = True) -> None:
    """Move a filled staging directory to `final`. Content-addressed caches pass replace=False: an
    existing directory of the same name already holds the same content, and may be in use."""
    if final.exists():
        if not replace:
            return
        shutil.rmtree(final)
    os.replace(tmp, final)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` in one step. The temporary name carries the pid, so concurrent writers (a study's
    workers rewriting its report) never share one, and readers see the old file or the new, whole."""
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
