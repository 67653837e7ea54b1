"""Where the tensors live, in which precision the fast path computes, and device speed settings."""

import contextlib
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
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps "
                          f"(this machine has: {', '.join(available_devices())})")


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
        raise ConfigError(f"device {name!r} requested but there are {torch.cuda.device_count()} GPUs "
                          f"({here})")
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
