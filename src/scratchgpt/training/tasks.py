"""What a model is trained to do: the task says what a batch is, what its loss is, how the model
is scored at the end, and whether it writes a sample. The loop (loop.py) knows nothing else, so a
new task (masked tokens, sequence labels, translation) plugs in without touching it.

A task keeps the contract of `Task` below; `make_task` builds the one TrainConfig.task names.
"""

import dataclasses
from pathlib import Path
from typing import Protocol

from ..data.corpus import check_long_enough, corpus_path, get_batch, prepare, split
from ..errors import ConfigError
from ..inference.generate import sample_text
from .evaluate import evaluate_split


class Task(Protocol):
    """What the loop needs to know about a task."""

    name: str  # its TrainConfig.task name
    tokenizer: object  # saved in the run directory
    data_info: dict  # the data's source path and sha256, saved in config.json

    def summary(self) -> str:
        """One line for the log, e.g. "1,003,854 training tokens"."""

    def batch(self, split, batch_size, generator, device):
        """A batch of split "train" or "val", drawn with `generator` only (an exact resume restores it)."""

    def loss(self, forward, batch):
        """The mean loss of `forward` (the model, or its compiled form) on `batch`: a scalar tensor."""

    def batch_tokens(self, batch_size) -> int:
        """Tokens in a batch of batch_size, for tokens/s."""

    def evaluate(self, model, device) -> dict:
        """The final, deterministic scores of `model`, with at least "val_loss"."""

    def report(self, scores) -> str:
        """The scores in one line of the log."""

    def sample(self, model, max_tokens, seed) -> str:
        """Text written to samples.txt when training ends ("" if the task writes none)."""


class NextTokenTask:
    """Predict every next token of random windows of a text: the GPT's task, and the bigram's.

    The lecture's data: the text encoded once, the first 90% to train on, the last 10% to validate
    on, batches of B windows of block_size tokens with the targets shifted by one.
    """

    name = "next-token"

    def __init__(self, corpus, block_size):
        self.tokenizer = corpus.tokenizer
        self.data_info = {"source": str(Path(corpus.source).resolve()), "sha256": corpus.sha256}
        self.splits = dict(zip(("train", "val"), split(corpus.tokens)))
        check_long_enough({"training": self.splits["train"], "validation": self.splits["val"]}, block_size)
        self.block_size = block_size

    def summary(self):
        return f"{len(self.splits['train']):,} training tokens"

    def batch(self, split_name, batch_size, generator, device):
        return get_batch(self.splits[split_name], self.block_size, batch_size, generator, device)  # X, Y (B, T)

    def loss(self, forward, batch):
        x, y = batch
        return forward(x, y)[1]

    def batch_tokens(self, batch_size):
        return batch_size * self.block_size

    def evaluate(self, model, device):
        val_loss, val_bpc = evaluate_split(model, self.splits["val"], self.block_size, device=device)
        return {"val_loss": val_loss, "val_bpc": val_bpc}

    def report(self, scores):
        return f"full validation split: loss {scores['val_loss']:.4f} nats/token, {scores['val_bpc']:.4f} bits/char"

    def sample(self, model, max_tokens, seed):
        return sample_text(model, self.tokenizer, max_new_tokens=max_tokens, seed=seed)


TASKS = {NextTokenTask.name: NextTokenTask}
FAMILIES = {"next-token": ("gpt", "bigram")}  # the model families each task trains


def make_task(model_config, train_config, data=None):
    """(the task train_config.task names, on the text `data` (a path, or None for the default
    corpus), model_config sized to its vocabulary)."""
    if model_config.kind not in FAMILIES[train_config.task]:
        raise ConfigError(f"the {train_config.task} task trains the {', '.join(FAMILIES[train_config.task])} "
                          f"models, not the {model_config.kind} model")
    corpus = prepare(corpus_path(data))
    model_config = dataclasses.replace(model_config, vocab_size=corpus.tokenizer.vocab_size)
    return TASKS[train_config.task](corpus, model_config.block_size), model_config
