"""`scratchgpt` as torchrun starts it, with two hooks for tests/test_distributed.py (off unless their
environment variables are set), then the real command line:

    SCRATCHGPT_TEST_WRITES=FILE   append "RANK WHAT" to FILE for every file this process writes into a
                                  run (an atomic rename, a metrics line, a checkpoint)
    SCRATCHGPT_TEST_AT=R:N:ACTION on rank R, right after its N-th training step: "kill" (SIGKILL
                                  itself, as a crash would), "term-torchrun" (SIGTERM to torchrun, as a
                                  scheduler would; torchrun passes it on to every rank) or "int" (SIGINT
                                  to itself, as Ctrl-C does to a run without torchrun)

Usage: python -m torch.distributed.run ... tests/ddp_worker.py train ...
"""

import itertools
import os
import signal
import sys
import time

from scratchgpt import rundir
from scratchgpt.cli import main
from scratchgpt.training import loop

RANK = os.environ.get("RANK", "0")


def log_writes(path):
    def note(what):
        with open(path, "a", encoding="utf-8") as f:  # one short line: O_APPEND keeps lines whole
            f.write(f"{RANK} {what}\n")

    replace, append, save_checkpoint = os.replace, rundir.append_metrics, rundir.save_checkpoint

    def replacing(src, dst, *args, **kwargs):
        note(f"rename {dst}")
        return replace(src, dst, *args, **kwargs)

    def appending(run_dir, record):
        note(f"metrics {record.get('kind')} {record.get('step')}")
        return append(run_dir, record)

    def saving(run_dir, model, state):
        note(f"checkpoint {state['step']}")
        return save_checkpoint(run_dir, model, state)

    os.replace, rundir.append_metrics, rundir.save_checkpoint = replacing, appending, saving


def act_at(spec):
    rank, n, action = spec.split(":")
    if rank != RANK:
        return
    calls, step = itertools.count(1), loop.training_step

    def stepping(*args, **kwargs):
        result = step(*args, **kwargs)
        if next(calls) == int(n):
            if action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif action == "term-torchrun":
                os.kill(os.getppid(), signal.SIGTERM)
                time.sleep(1.0)  # torchrun passes it on to every rank before this one goes on
            elif action == "int":
                signal.raise_signal(signal.SIGINT)
            else:
                raise ValueError(action)
        return result

    loop.training_step = stepping


if os.environ.get("SCRATCHGPT_TEST_WRITES"):
    log_writes(os.environ["SCRATCHGPT_TEST_WRITES"])
if os.environ.get("SCRATCHGPT_TEST_AT"):
    act_at(os.environ["SCRATCHGPT_TEST_AT"])
sys.exit(main(sys.argv[1:]))
