#!/usr/bin/env bash
# Creates (once) and prints the path of the virtual environment that `make test-ref` runs the
# reference tests in: the real clients users pair ctrain with (torch, transformers, peft, trl,
# tokenizers, tiktoken, gguf, numpy), from PyPI. torch is installed without its CUDA library
# packages (nvidia-*, triton): the reference checks run on the CPU and do not need them.
# The environment is cached in $CTRAIN_REF_VENV (default ~/.cache/ctrain/ref-venv); delete it to
# rebuild. Usage: scripts/ref_venv.sh [--print]   (creates it if missing, then prints its path)
set -euo pipefail
venv=${CTRAIN_REF_VENV:-$HOME/.cache/ctrain/ref-venv}
stamp=$venv/.ctrain-ref-ready
# Pinned to the versions the reference figures in docs/interop.md were measured with.
torch_pkg="torch==2.15.0"
torch_deps="filelock typing-extensions sympy networkx jinja2 fsspec setuptools"
clients="numpy transformers==5.23.0 peft==0.21.2 trl==1.16.0 tokenizers tiktoken==0.14.0 gguf==0.19.0 safetensors accelerate"
if [ ! -f "$stamp" ]; then
  python=${PYTHON:-$(command -v python3)}
  echo "ref-venv: creating $venv (torch for the CPU, transformers, peft, trl, tokenizers, tiktoken, gguf; a few minutes, once)" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  "$venv/bin/pip" install --quiet --no-deps "$torch_pkg" >&2
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet $torch_deps $clients >&2
  # trl/accelerate may have pulled torch's CUDA packages back in through their dependency on torch: drop them
  "$venv/bin/pip" freeze | grep -E '^(nvidia-|triton)' | cut -d= -f1 | xargs -r "$venv/bin/pip" uninstall --quiet -y >&2 || true
  "$venv/bin/python" -c 'import torch, transformers, peft, trl, tokenizers, tiktoken, gguf, numpy' >&2
  touch "$stamp"
fi
echo "$venv"
