#!/usr/bin/env bash
# Creates (once) and prints the path of the virtual environment that `make test-ref` runs the
# reference tests in: the real clients users pair ctrain with (torch, transformers, peft, trl,
# tokenizers, tiktoken, gguf, numpy), from PyPI. The reference checks run on the CPU, but PyPI's
# Linux torch links the CUDA libraries, so it comes with the nvidia-* and triton packages it needs
# to import at all (about 4 GB, unused here): dropping them breaks `import torch` with
# "libcufile.so.0: cannot open shared object file". PyPI is the only registry assumed reachable.
# The environment is cached in $CTRAIN_REF_VENV (default ~/.cache/ctrain/ref-venv); delete it to
# rebuild. Usage: scripts/ref_venv.sh [--print]   (creates it if missing, then prints its path)
set -euo pipefail
venv=${CTRAIN_REF_VENV:-$HOME/.cache/ctrain/ref-venv}
stamp=$venv/.ctrain-ref-ready
# Pinned to the versions the reference figures in docs/interop.md were measured with.
torch_pkg="torch==2.15.0"
clients="numpy transformers==5.23.0 peft==0.21.2 trl==1.16.0 tokenizers tiktoken==0.14.0 gguf==0.19.0 safetensors accelerate"
if [ ! -f "$stamp" ]; then
  python=${PYTHON:-$(command -v python3)}
  echo "ref-venv: creating $venv (torch for the CPU, transformers, peft, trl, tokenizers, tiktoken, gguf; a few minutes, once)" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  "$venv/bin/pip" install --quiet "$torch_pkg" >&2
  "$venv/bin/python" -c 'import torch; print("ref-venv: torch", torch.__version__)' >&2
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet $clients >&2
  # every client imports, and torch runs a backward pass on the CPU
  "$venv/bin/python" -c 'import transformers, peft, trl, tokenizers, tiktoken, gguf, numpy, torch
x = torch.randn(4, 4, requires_grad=True); (x @ x).sum().backward(); assert x.grad is not None' >&2
  touch "$stamp"
fi
echo "$venv"
