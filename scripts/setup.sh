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
# Debian packages some tests need, installed with apt as root on Debian/Ubuntu (elsewhere those tests skip).
apt_install() {  # PACKAGE WHAT-SKIPS-WITHOUT-IT
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null 2>&1; } \
      || echo "could not install $1: $2 will skip"
  fi
}
# The playground's browser test drives Debian's chromium through playwright (never `playwright install`,
# which downloads a browser).
command -v chromium >/dev/null 2>&1 || apt_install chromium "the browser test"
# The study storage tests start a throwaway PostgreSQL server of their own from its binaries (initdb, pg_ctl).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
  || apt_install postgresql "the PostgreSQL study tests"
echo "masklab set up in .venv (torch $(.venv/bin/python -c 'import torch; print(torch.__version__)'))"
