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


def write_tree_atomic(path: Path, tree) -> None:
    """Save nested dicts / lists / tuples of numbers, strings and tensors as one safetensors file:
    the tensors as tensors, the structure as JSON in its metadata. Loading it runs no code (unlike an
    unpickled file, which can execute anything), and `os.replace` makes it atomic."""
    import json

    from safetensors.torch import save_file

    tensors: dict = {}
    structure = json.dumps(_encode(tree, tensors), allow_nan=True)
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata={"tree": structure})
    os.replace(tmp, path)


def read_tree(path: Path):
    """The tree `write_tree_atomic` saved (tuples, int keys and tensors come back as they went in)."""
    import json

    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        structure = json.loads(f.metadata()["tree"])
    return _decode(structure, tensors)


def _encode(node, tensors: dict):
    import torch

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
