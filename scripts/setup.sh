#!/usr/bin/env bash
# Create .venv with masklab and its test dependencies, from nothing.
# torch: on a machine without an NVIDIA GPU take the CPU build (a plain `pip install torch` on Linux
# pulls a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>/dev/null || true
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    .venv/bin/pip install -q "torch==${TORCH_VERSION}"
  else
    # "+cpu" builds live on PyTorch's CPU index (or a local wheel directory pip is pointed at).
    .venv/bin/pip install -q "torch==${TORCH_VERSION}+cpu" 2>/dev/null \
      || .venv/bin/pip install -q "torch==${TORCH_VERSION}" --index-url https://download.pytorch.org/whl/cpu \
           --extra-index-url https://pypi.org/simple
  fi
fi
.venv/bin/pip install -q -e ".[dev]"
echo "masklab set up in .venv (torch $(.venv/bin/python -c 'import torch; print(torch.__version__)'))"
