"""Where the tensors live, in which precision the fast path computes, and device speed settings."""

import contextlib
import os
import re
import sys

import torch

from .errors import ConfigError


def available_devices():
    """The devices this machine has, by name: cpu, cuda:0 .. cuda:N-1, mps."""
    cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return ["cpu", *cuda, *(["mps"] if torch.backends.mps.is_available() else [])]


def check_device_name(name):
    """Refuse a name that is no device at all (whether this machine has it is resolve_device's)."""
    if re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", name) is None:
        raise ConfigError(
            f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps "
            f"(this machine has: {', '.join(available_devices())})"
        )


def resolve_device(name="auto"):
    """`auto` picks cuda, then mps, then cpu; an explicit device must exist on this machine."""
    check_device_name(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    here = f"this machine has: {', '.join(available_devices())}"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but this machine has no CUDA GPU ({here})")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r} requested but there are {torch.cuda.device_count()} GPUs ({here})")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} requested but MPS is not available ({here})")
    return device


def configure(device):
    """Fast defaults for `device`: TF32 matmuls on CUDA. Returns the device."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 matmuls on tensor cores
        torch.backends.cudnn.allow_tf32 = True
    return device


def synchronize(device):
    """Wait for the work queued on `device` (a no-op on the CPU, which never runs ahead)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def has_gpu():
    return torch.cuda.is_available() or torch.backends.mps.is_available()


# bfloat16 on the CPU: where the CPU multiplies bf16 natively (Intel AMX tiles, or AVX-512 BF16
# dot products), bf16 autocast pays for large matmuls and loses for small ones, whose steps are
# dominated by the casts and the other ops. The size of a step's matmuls is the model's width
# (n_embd) times the tokens of a micro-batch (batch_size / grad_accum x block_size). Per kind of
# CPU, the (width, tokens) from which bf16 measured faster in every shape swept (BENCHMARKS.md,
# "bf16 where the CPU has it"): at width 128 it won with 2048 tokens (1.26x) but lost with nanoGPT's 768
# (0.91x), so the rule starts at 256, where it won (1.36x), as at 384 (1.62x) and the lecture's
# shape (2.25x). AMX was not swept; the two AMX points (a win at the lecture's shape, a
# loss at nanoGPT's) agree with the same rule.
BF16_CPU_MIN = {"amx": (256, 2048), "avx512_bf16": (256, 2048)}


def cpu_flags():
    """The CPU's feature flags (avx2, avx512_bf16, amx_bf16, ...), as torch or /proc/cpuinfo reports them."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is not None:
        return {name for name, present in capabilities().items() if present is True}
    if sys.platform == "linux":
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    return set()


# $SCRATCHGPT_CPU_BF16 overrides what the flags say: "none", "avx512_bf16" or "amx". The tests set
# it, so that every machine runs the same path whatever its CPU, and a user may force the choice.
CPU_BF16_ENV = "SCRATCHGPT_CPU_BF16"
CPU_BF16_KINDS = ("amx", "avx512_bf16")


def native_bf16(flags=None):
    """How this CPU multiplies bf16 natively: "amx", "avx512_bf16", or None (it converts to float32
    and back, far slower than float32). From `flags`, else $SCRATCHGPT_CPU_BF16, else the CPU's own."""
    if flags is None:
        forced = os.environ.get(CPU_BF16_ENV)
        if forced:
            if forced not in ("none", *CPU_BF16_KINDS):
                raise ConfigError(
                    f"{CPU_BF16_ENV}={forced!r}: use none, {' or '.join(CPU_BF16_KINDS)} "
                    f"(or unset it: read from the CPU)"
                )
            return None if forced == "none" else forced
        flags = cpu_flags()
    if "amx_bf16" in flags:
        return "amx"
    return "avx512_bf16" if "avx512_bf16" in flags else None


def compute_dtype(device, dtype="auto", width=None, tokens=None):
    """The dtype the fast path multiplies in: float32 or bfloat16 as asked; auto picks bfloat16 on
    CUDA GPUs that support it, and on CPUs with native bf16 for models at least as wide as
    BF16_CPU_MIN says (`width`: n_embd) trained on micro-batches of at least its tokens (`tokens`);
    unknown sizes count as small. float32 elsewhere."""
    if dtype != "auto":
        return torch.bfloat16 if dtype == "bfloat16" else torch.float32
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    kind = native_bf16() if device.type == "cpu" else None
    if kind is not None and width is not None and tokens is not None:
        min_width, min_tokens = BF16_CPU_MIN[kind]
        if width >= min_width and tokens >= min_tokens:
            return torch.bfloat16
    return torch.float32


def training_dtype(device, model_config, train_config):
    """The name of the dtype ("float32" or "bfloat16") that training `model_config` with
    `train_config` multiplies in: compute_dtype for its width and the tokens of a micro-batch (a
    bigram has no width: no matmuls to speak of)."""
    tokens = train_config.batch_size // train_config.grad_accum * model_config.block_size
    width = getattr(model_config, "n_embd", None)
    return str(compute_dtype(device, train_config.dtype, width, tokens)).removeprefix("torch.")


def autocast(device, dtype="auto", width=None, tokens=None):
    """bfloat16 autocast where compute_dtype says so, else a no-op."""
    if compute_dtype(device, dtype, width, tokens) == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def device_name(device):
    """A readable name of the device, for benchmark reports."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu" and sys.platform == "linux":
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        return names[0] if names else "cpu"
    return device.type
