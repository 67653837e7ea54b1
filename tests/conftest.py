"""Shared fixtures. Tests never touch the network: Tiny Shakespeare comes from $SCRATCHGPT_DATA, the
copy in ../shared, or else the one that ships in the package; every test gets its own empty dataset
cache; and every test sees a CPU without native bf16, whatever this one has (device.native_bf16:
the tests of the native path say which CPU they mock)."""

import bz2
import importlib
import itertools
import os
import signal
from pathlib import Path

import pytest
import torch

from scratchgpt.data.corpus import TINY_SHAKESPEARE
from scratchgpt.device import CPU_BF16_ENV

REPO = Path(__file__).resolve().parents[1]
SHARED_COPY = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
CPUS = len(os.sched_getaffinity(0))  # what `taskset` leaves this process, not the machine's count


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per CPU this process may run on."""
    return CPUS


# The files that take longest (`taskset -c 0 pytest --durations=40`), longest first. xdist hands out
# whole files in collection order (`--no-loadscope-reorder`): these go first, so that none of them
# is left running alone on one worker at the end while the others wait.
SLOWEST_FILES = (
    "test_notebooks.py",
    "test_resilience.py",
    "test_benchmarks.py",
    "test_dropout.py",
    "test_distributed.py",
    "test_seq2seq.py",
    "test_compiled_decode.py",
    "test_serve_load.py",
    "test_decode_floor.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its order


if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # a worker: its share of the CPUs, for torch here and
    # in the commands the tests start
    _threads = max(1, CPUS // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = str(_threads)
    torch.set_num_threads(_threads)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCHGPT_CACHE", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _no_native_bf16(monkeypatch):
    """The same path on every CI machine (AVX2 only, AVX-512 BF16, AMX): bf16 is emulated."""
    monkeypatch.setenv(CPU_BF16_ENV, "none")


@pytest.fixture(scope="session")
def shakespeare(tmp_path_factory):
    """Path of a local copy of Tiny Shakespeare: $SCRATCHGPT_DATA, else ../shared's, else the package's."""
    if os.environ.get("SCRATCHGPT_DATA"):
        path = Path(os.environ["SCRATCHGPT_DATA"])
        if not path.is_file():
            pytest.fail(f"SCRATCHGPT_DATA names no file: {path}")
        return path
    if SHARED_COPY.is_file():
        return SHARED_COPY
    path = tmp_path_factory.mktemp("tinyshakespeare") / "input.txt"
    path.write_bytes(bz2.decompress(TINY_SHAKESPEARE.read_bytes()))
    return path


@pytest.fixture
def small_corpus(tmp_path):
    """A small text file in a few thousand characters of verse, quick to train on."""
    lines = [
        "First Citizen:",
        "Before we proceed any further, hear me speak.",
        "",
        "All:",
        "Speak, speak.",
        "",
        "First Citizen:",
        "You are all resolved rather to die than to famish?",
        "",
    ]
    path = tmp_path / "corpus" / "small.txt"
    path.parent.mkdir()
    path.write_text("\n".join(lines * 60), encoding="utf-8")
    return path


@pytest.fixture
def interrupt_at(monkeypatch):
    """interrupt_at(n, signals=1): right after the n-th training step of this process, send it
    SIGINT `signals` times, as a user pressing Ctrl-C would (deterministic, unlike a timer)."""
    train_module = importlib.import_module("scratchgpt.training.loop")

    def arm(n, signals=1):
        calls = itertools.count(1)
        original = train_module.training_step

        def step(*args, **kwargs):
            loss = original(*args, **kwargs)
            if next(calls) == n:
                for _ in range(signals):
                    signal.raise_signal(signal.SIGINT)
            return loss

        monkeypatch.setattr(train_module, "training_step", step)

    return arm
