"""Which dtype `--dtype auto` picks: from the CPU's flags (mocked here, or said by
$SCRATCHGPT_CPU_BF16, which conftest sets to none for every other test) and the model's width."""

import dataclasses

import pytest
import torch
from helpers import fails

from scratchgpt import device as dev
from scratchgpt import preset, train

CPU = torch.device("cpu")


@pytest.fixture
def flags_of(monkeypatch):
    """flags_of(flags): this CPU reports `flags` (no $SCRATCHGPT_CPU_BF16 to override them)."""
    monkeypatch.delenv(dev.CPU_BF16_ENV)
    return lambda flags: monkeypatch.setattr(dev, "cpu_flags", lambda: flags)


@pytest.mark.parametrize(
    "flags, kind",
    [
        ({"avx2", "avx512f", "amx_bf16", "avx512_bf16", "amx_tile"}, "amx"),
        ({"avx2", "avx512f", "avx512_bf16"}, "avx512_bf16"),
        ({"avx2", "avx512f"}, None),
        ({"avx2"}, None),
        (set(), None),
    ],
)
def test_native_bf16_names_the_cpus_bf16_units(flags, kind):
    assert dev.native_bf16(flags) == kind


@pytest.mark.parametrize("flags", [{"avx2", "avx512_bf16"}, {"avx2", "amx_bf16", "avx512_bf16"}])
def test_auto_picks_bf16_on_a_native_bf16_cpu_for_large_enough_matmuls(flags_of, flags):
    flags_of(flags)
    width, tokens = dev.BF16_CPU_MIN[dev.native_bf16(flags)]
    assert dev.compute_dtype(CPU, "auto", width, tokens) == torch.bfloat16
    assert dev.compute_dtype(CPU, "auto", 384, 64 * 256) == torch.bfloat16  # the lecture's shape
    assert dev.compute_dtype(CPU, "auto", width - 1, 100 * tokens) == torch.float32  # too narrow
    assert dev.compute_dtype(CPU, "auto", 100 * width, tokens - 1) == torch.float32  # too few tokens
    assert dev.compute_dtype(CPU, "auto", 128, 12 * 64) == torch.float32  # nanoGPT's CPU shape
    assert dev.compute_dtype(CPU, "auto", None, None) == torch.float32  # sizes unknown: the safe choice
    assert dev.compute_dtype(CPU, "float32", 384, 64 * 256) == torch.float32  # asked for: obeyed
    assert isinstance(dev.autocast(CPU, "auto", width, tokens), torch.autocast)


def test_auto_stays_float32_on_a_cpu_without_native_bf16(flags_of):
    flags_of({"avx2", "fma"})
    assert dev.compute_dtype(CPU, "auto", 4096, 10**6) == torch.float32
    assert dev.compute_dtype(CPU, "bfloat16", 64, 64) == torch.bfloat16  # asked for: obeyed


def test_torch_and_proc_cpuinfo_agree_on_this_cpus_bf16(monkeypatch):
    """On any machine: where /proc/cpuinfo has no x86 flags (or no file), neither source finds bf16."""
    monkeypatch.delenv(dev.CPU_BF16_ENV)
    from_torch = dev.native_bf16()
    monkeypatch.delattr(torch.cpu, "get_capabilities")  # older torch: /proc/cpuinfo is read
    assert dev.native_bf16() == from_torch


def test_training_multiplies_in_the_dtype_auto_picks(flags_of, monkeypatch, tmp_path):
    """The loop asks with the model's width and a micro-batch's tokens (tiny: 32 wide, 8 x 32)."""
    flags_of({"avx512_bf16"})
    model_config, train_config = preset("tiny")
    for rule, expected in (((32, 256), "bfloat16"), ((64, 256), "float32"), ((32, 512), "float32")):
        monkeypatch.setitem(dev.BF16_CPU_MIN, "avx512_bf16", rule)
        lines = []
        train(
            model_config,
            dataclasses.replace(train_config, max_iters=2),
            tmp_path / "-".join(map(str, rule)),
            progress=False,
            log=lines.append,
        )
        assert any(f"({expected})" in line for line in lines), (rule, lines)


@pytest.mark.parametrize("said, kind", [("none", None), ("avx512_bf16", "avx512_bf16"), ("amx", "amx")])
def test_the_environment_says_which_bf16_the_cpu_has_whatever_its_flags(flags_of, monkeypatch, said, kind):
    flags_of({"avx2", "amx_bf16", "avx512_bf16"} if kind is None else {"avx2"})  # the other answer
    monkeypatch.setenv(dev.CPU_BF16_ENV, said)
    assert dev.native_bf16() == kind
    assert dev.compute_dtype(CPU, "auto", 384, 64 * 256) == (torch.float32 if kind is None else torch.bfloat16)


def test_a_bad_cpu_bf16_setting_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv(dev.CPU_BF16_ENV, "avx9")
    line = fails(capsys, "bench", "--preset", "tiny", "--steps", "1", "--warmup", "1")
    assert "SCRATCHGPT_CPU_BF16='avx9'" in line and "none, amx or avx512_bf16" in line
