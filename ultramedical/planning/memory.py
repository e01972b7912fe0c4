"""Memory each role needs, in bytes, per GPU and per process on the host.

Model states follow DeepSpeed's own accounting (mixed-precision AdamW: 16-bit weights and gradients, and
per parameter a 4-byte fp32 master copy, 8 bytes of Adam moments and a 4-byte fp32 gradient), split by
ZeRO stage and offload the way DeepSpeed partitions them. Activations assume SDPA/flash attention (no
sequence x sequence term), the attention transformers uses by default.
"""

from __future__ import annotations

from dataclasses import dataclass

from ultramedical.config import Config
from ultramedical.planning.architecture import ModelShape

CUDA_CONTEXT_BYTES = int(1.5 * 1024**3)  # CUDA context, cuBLAS workspaces and NCCL buffers of one process
PROCESS_HOST_BYTES = 4 * 1024**3  # a torch/Ray worker process's own host memory (libraries, CUDA host state)
FP32_STATE_BYTES = 16  # fp32 master weights 4 + Adam moments 8 + fp32 gradient 4 (DeepSpeed's accounting)
LOGIT_BYTES = 10  # per logit: the 16-bit output, its fp32 copy (log-softmax) and that copy's gradient
VLLM_BATCHED_TOKENS = 8192  # tokens vLLM's profiling run pushes through at once (chunked prefill)
CUDA_GRAPH_BYTES = 1024**3  # vLLM's captured CUDA graphs when enforce_eager is off


def dtype_bytes(config: Config) -> int:
    dtype = config.model.dtype
    if dtype == "auto":  # the project loads fp32 on CPU and bf16 on GPU
        return 2 if config.trainer.use_gpu else 4
    return 4 if dtype == "float32" else 2


@dataclass
class TrainerMemory:
    """Per trainer GPU (bytes), and the host memory the trainers' model states take on each node."""

    weights: int
    gradients: int
    optimizer: int
    zero3_buffers: int
    reference: int
    activations: int
    logits: int
    context: int
    host_offload_per_rank: int  # optimizer, parameter and reference partitions offloaded to host memory
    host_load_per_rank: int  # host memory while the model loads: its partition under ZeRO-3, else all of it
    reference_on_host: int = 0  # the part of host_offload_per_rank that is the offloaded reference

    @property
    def model_states(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.zero3_buffers

    @property
    def total(self) -> int:
        return self.model_states + self.reference + self.activations + self.logits + self.context


def trainable_params(shape: ModelShape, config: Config, reward: bool = False) -> int:
    """What the optimizer holds: every parameter, or with model.lora the adapter (and a reward model's
    score head, trained whole)."""
    lora = config.model.lora
    if lora is None:
        return shape.reward_params if reward else shape.params
    return shape.lora_params(lora.target_modules, lora.rank) + (shape.hidden_size if reward else 0)


def trainer_memory(
    shape: ModelShape, config: Config, online_reference: bool, reward: bool = False
) -> TrainerMemory:
    t = config.trainer
    p, n, stage, width = shape.params, t.num_workers, t.zero_stage, dtype_bytes(config)
    trained = trainable_params(shape, config, reward) if config.model.lora else p
    mixed = width < 4
    # fp32 master weights and the fp32 gradient exist only under mixed precision
    state_bytes = FP32_STATE_BYTES if mixed else 8

    # With LoRA the frozen base has weights only; gradients and optimizer states are the adapter's.
    weights = 0 if t.offload_params else (width * p // n if stage == 3 else width * p)
    # With the optimizer offloaded, reduced gradients go straight into host buffers.
    gradients = 0 if t.offload_optimizer else (width * trained // n if stage >= 2 else width * trained)
    optimizer = (
        0 if t.offload_optimizer else (state_bytes * trained // n if stage >= 1 else state_bytes * trained)
    )
    zero3_buffers = 4 * shape.largest_layer_params if stage == 3 else 0  # DeepSpeed's gather buffer

    shards = n if stage >= 1 else 1  # below ZeRO-1 nothing is partitioned
    host_offload = (state_bytes * trained // shards if t.offload_optimizer else 0) + (
        width * p // n if t.offload_params else 0
    )
    # Online DPO/KTO keeps the initial policy as reference: under ZeRO-3 a DeepSpeed inference engine
    # sharded like the policy, whose partitions trainer.offload_reference keeps in host memory
    # (deepspeed_setup.reference_config); below ZeRO-3 a plain copy on each GPU, whatever the setting.
    # With LoRA the reference is the base with the adapter disabled: no second model.
    reference = reference_on_host = 0
    if online_reference and config.model.lora is None:
        reference = width * p // n if stage == 3 else width * p
        if stage == 3 and t.offload_reference:
            reference_on_host, reference = reference, 0
            host_offload += reference_on_host
    # Under ZeRO-3 models load inside zero.Init (deepspeed_setup.partitioned_loading): each rank keeps
    # only its 1/world partition while the checkpoint streams through. Below it every rank builds the
    # whole model in host memory before moving it to its GPU.
    host_load = width * p // n if stage == 3 else width * p

    # A micro-batch holds up to 2 x micro_batch_size sequences (a preference pair's chosen and rejected).
    rows, seq = 2 * t.micro_batch_size, config.model.max_seq_len
    tokens = rows * seq
    h, inter = shape.hidden_size, shape.intermediate_size
    # Saved for backward per layer and token: norm inputs, q/k/v, attention output and o-proj input,
    # gate/up outputs, their product and the activation (16-bit each).
    layer = tokens * width * (6 * h + 2 * shape.kv_dim + 4 * inter)
    if config.model.gradient_checkpointing:  # each layer's input kept, one layer recomputed at a time
        activations = shape.num_layers * tokens * width * h + layer
    else:
        activations = shape.num_layers * layer
    logits = tokens * shape.vocab_size * LOGIT_BYTES
    return TrainerMemory(
        weights=weights,
        gradients=gradients,
        optimizer=optimizer,
        zero3_buffers=zero3_buffers,
        reference=reference,
        activations=activations,
        logits=logits,
        context=CUDA_CONTEXT_BYTES if t.use_gpu else 0,
        host_offload_per_rank=host_offload,
        host_load_per_rank=host_load,
        reference_on_host=reference_on_host,
    )


@dataclass
class EngineMemory:
    """Per engine GPU (bytes): vLLM claims `budget` and gives the KV cache whatever the rest leaves."""

    budget: int
    weights: int
    activations: int
    graphs: int
    context: int
    kv_bytes_per_token: int
    min_kv: int  # one sequence of max_model_len: vLLM refuses to start with less

    @property
    def kv_cache(self) -> int:
        return self.budget - self.weights - self.activations - self.graphs - self.context

    @property
    def concurrent_sequences(self) -> int:
        return max(0, self.kv_cache) // max(1, self.min_kv)


def engine_memory(shape: ModelShape, config: Config, gpu_bytes: int) -> EngineMemory:
    g = config.generation
    tp, width = g.tensor_parallel_size, dtype_bytes(config)
    kv_heads = -(-shape.num_kv_heads // tp)  # replicated when tensor parallelism exceeds the kv heads
    kv_per_token = 2 * shape.num_layers * kv_heads * shape.head_dim * width
    h, inter = shape.hidden_size, shape.intermediate_size
    tokens = max(VLLM_BATCHED_TOKENS, g.max_model_len)
    # One layer's transient tensors over the profiled tokens, and the sampler's fp32 logits and probs.
    activations = tokens * width * (4 * h + 3 * inter // tp) + g.max_num_seqs * shape.vocab_size * 8
    return EngineMemory(
        budget=int(g.gpu_memory_utilization * gpu_bytes),
        # With LoRA, one adapter slot (max_loras 1) beside the base.
        weights=width
        * (shape.params + trainable_params(shape, config) * (config.model.lora is not None))
        // tp,
        activations=activations,
        graphs=0 if g.enforce_eager else CUDA_GRAPH_BYTES,
        context=CUDA_CONTEXT_BYTES,
        kv_bytes_per_token=kv_per_token,
        min_kv=kv_per_token * g.max_model_len,
    )


@dataclass
class ScorerMemory:
    weights: int
    activations: int
    context: int

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.context


def scorer_memory(shape: ModelShape, config: Config) -> ScorerMemory:
    r, width = config.reward, dtype_bytes(config)
    tokens = r.batch_size * r.max_length
    h, inter = shape.hidden_size, shape.intermediate_size
    # Forward only: the residual stream plus one layer's transient q/k/v, attention and MLP tensors.
    activations = tokens * width * (4 * h + 2 * shape.kv_dim + 3 * inter)
    return ScorerMemory(width * shape.reward_params, activations, CUDA_CONTEXT_BYTES)
