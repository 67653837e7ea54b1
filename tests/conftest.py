"""Shared fixtures. Tests never touch the network: Tiny Shakespeare comes from $SCRATCHGPT_DATA or
the copy in ../shared, and every test gets its own empty dataset cache."""

import importlib
import itertools
import os
import signal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_COPY = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCHGPT_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def shakespeare():
    """Path of a local copy of Tiny Shakespeare."""
    path = Path(os.environ.get("SCRATCHGPT_DATA") or SHARED_COPY)
    if not path.is_file():
        pytest.fail(f"Tiny Shakespeare not found at {path}; set SCRATCHGPT_DATA to a local copy")
    return path


@pytest.fixture
def small_corpus(tmp_path):
    """A small text file in a few thousand characters of verse, quick to train on."""
    lines = ["First Citizen:", "Before we proceed any further, hear me speak.", "",
             "All:", "Speak, speak.", "", "First Citizen:",
             "You are all resolved rather to die than to famish?", ""]
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
