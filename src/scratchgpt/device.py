"""Where the tensors live, in which precision the fast path computes, and device speed settings."""

import contextlib
import sys

import torch

from .errors import ConfigError


def resolve_device(name="auto"):
    """`auto` picks cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but this machine has no CUDA GPU")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r} requested but there are {torch.cuda.device_count()} GPUs")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} requested but MPS is not available")
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


def compute_dtype(device, dtype="auto"):
    """The dtype the fast path multiplies in: bfloat16 when asked for (auto: on CUDA GPUs that
    support it), else float32."""
    use_bf16 = dtype == "bfloat16" or (
        dtype == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    return torch.bfloat16 if use_bf16 else torch.float32


def autocast(device, dtype="auto"):
    """bfloat16 autocast where compute_dtype says so, else a no-op."""
    if compute_dtype(device, dtype) == torch.float32:
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
