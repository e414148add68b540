"""Writing files and directories so that a crash never leaves a half-written one under the final name."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file


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


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary name beside `path` to write the whole file to; on success it replaces `path` in
    one step, on any failure (a full disk, an interrupt) it is removed. The name carries the pid, so
    concurrent writers (a study's workers rewriting its report) never share one, and readers see the old
    file or the new one, whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def replace_directory(new: Path, final: Path, old: Path) -> None:
    """Put the filled directory `new` in place of `final`. The previous `final` is set aside as `old` (not
    deleted) until the new one is in place, so a crash at any moment leaves one whole copy under `final`
    or `old`; readers that know `old` (find_checkpoint) fall back to it."""
    if final.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    try:
        os.replace(new, final)
    except OSError:
        if old.exists() and not final.exists():
            os.replace(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)


def save_pretrained_directory(final: Path, *parts) -> None:
    """Each of `parts` (a model, its tokenizer) saved with save_pretrained into the directory `final`, which is
    replaced whole (see replace_directory): a reader never finds a model without its tokenizer."""
    with staged_directory(final.parent, f".{final.name}-") as tmp:
        for part in parts:
            part.save_pretrained(tmp)
        replace_directory(tmp, final, final.with_name(f"{final.name}.old"))


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step (see atomic_path)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _plain(value):
    """JSON for numpy scalars and arrays (a metric computed with numpy is an int64 or float32, not an int)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def write_json_atomic(path: Path, payload) -> None:
    """Replace `path` with `payload` as indented JSON in one step; numpy numbers are written as numbers."""
    write_text_atomic(path, json.dumps(payload, indent=2, default=_plain))


def write_tree_atomic(path: Path, tree) -> None:
    """Save nested dicts / lists / tuples of numbers, strings and tensors as one safetensors file:
    the tensors as tensors, the structure as JSON in its metadata. Loading it runs no code (unlike an
    unpickled file, which can execute anything), and it is replaced in one step."""
    tensors: dict = {}
    structure = json.dumps(_encode(tree, tensors), allow_nan=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"tree": structure})


def read_tree(path: Path):
    """The tree `write_tree_atomic` saved (tuples, int keys and tensors come back as they went in)."""
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        structure = json.loads(f.metadata()["tree"])
    return _decode(structure, tensors)


def _encode(node, tensors: dict):
    if isinstance(node, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = node.detach().cpu().contiguous().clone()  # safetensors refuses shared storage
        return {"__tensor__": key}
    if isinstance(node, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in node):
            return {k: _encode(v, tensors) for k, v in node.items()}
        return {"__items__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in node.items()]}
    if isinstance(node, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in node]}
    if isinstance(node, list):
        return [_encode(v, tensors) for v in node]
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    raise TypeError(f"write_tree_atomic cannot store a {type(node).__name__}")


def _decode(node, tensors: dict):
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if isinstance(node, dict):
        if "__tensor__" in node:
            return tensors[node["__tensor__"]]
        if "__tuple__" in node:
            return tuple(_decode(v, tensors) for v in node["__tuple__"])
        if "__items__" in node:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in node["__items__"]}
        return {k: _decode(v, tensors) for k, v in node.items()}
    return node
