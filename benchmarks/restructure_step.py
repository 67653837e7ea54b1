"""Did the restructure into nn/ models/ data/ training/ (issue 11) slow the training step down?

Loads the tree from before it (commit a01f0f6, checked out with `git worktree add`) under another
package name beside this one, builds the `cpu` preset's model on each with the same seed, and times
their training steps alternately in one process, step by step, so that the machine's load falls on
both alike. Prints the median ms/step of each and their ratio, for the fast and the readable path.

    git worktree add /tmp/base a01f0f6
    python benchmarks/restructure_step.py /tmp/base/src --steps 120
"""

import argparse
import dataclasses
import functools
import importlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def load_base(src):
    """The base tree's package, imported as `scratchgpt_base` (it imports itself relatively)."""
    folder = Path(tempfile.mkdtemp())
    shutil.copytree(Path(src) / "scratchgpt", folder / "scratchgpt_base")
    sys.path.insert(0, str(folder))
    return {
        name: importlib.import_module(f"scratchgpt_base.{name}") for name in ("config", "data", "gpt", "optim", "train")
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_src", help="src folder of the tree from before the restructure")
    parser.add_argument("--steps", type=int, default=120, help="timed steps of each (after 10 untimed)")
    args = parser.parse_args()
    base = load_base(args.base_src)
    from scratchgpt import GPTLanguageModel, preset
    from scratchgpt.device import autocast
    from scratchgpt.training.loop import training_step
    from scratchgpt.training.optim import make_optimizer
    from scratchgpt.training.tasks import build_task, fit_model_config

    model_config, train_config = preset("cpu")
    task = build_task(model_config, train_config)
    model_config = fit_model_config(model_config, task)
    base_data, _ = base["data"].split(base["data"].prepare(base["data"].corpus_path()).tokens)
    base_train_config = base["config"].preset("cpu")[1]
    amp = autocast(torch.device("cpu"), "float32")
    report = {"device": "cpu", "threads": torch.get_num_threads(), "steps": args.steps, "paths": {}}
    for path in ("fast", "readable"):
        config = dataclasses.replace(model_config, attention=path)
        torch.manual_seed(0)
        base_model = base["gpt"].GPTLanguageModel(base["config"].ModelConfig(**dataclasses.asdict(config))).train()
        base_optimizer = base["optim"].make_optimizer(base_model, base_train_config)
        torch.manual_seed(0)
        head_model = GPTLanguageModel(config).train()
        head_optimizer = make_optimizer(head_model, train_config)
        steps = {
            "base": functools.partial(
                base["train"].training_step,
                base_model,
                base_model,
                base_optimizer,
                base_data,
                config.block_size,
                base_train_config,
            ),
            "head": functools.partial(training_step, head_model, head_model, head_optimizer, task, train_config),
        }
        generators = {name: torch.Generator().manual_seed(1) for name in steps}
        times = {name: [] for name in steps}
        for i in range(10 + args.steps):
            for name in ("base", "head") if i % 2 == 0 else ("head", "base"):
                start = time.perf_counter()
                steps[name](generators[name], "cpu", amp).item()
                if i >= 10:
                    times[name].append(time.perf_counter() - start)
        median = {name: 1000 * statistics.median(t) for name, t in times.items()}
        report["paths"][path] = {
            "base_ms": median["base"],
            "head_ms": median["head"],
            "head_over_base": median["head"] / median["base"],
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
