"""Scoring a saved run, for every family (`scratchgpt eval`): a GPT on every window of a text's
validation split; an encoder or an encoder-decoder by its task's `evaluate`."""

import numpy as np

from .data.corpus import TRAIN_FRACTION, check_long_enough, corpus_path, prepare, read_text
from .errors import ConfigError
from .training.evaluate import evaluate_split
from .training.tasks import build_task


def evaluate_run(run, data=None, beam=1):
    """(scores {name: value}, the scores in one line) of `run` (a rundir.Run) on `data`: a path (for
    pairs: a TSV, or a list of two aligned files), None for the run's own data. `beam`: an
    encoder-decoder's beam size (1: greedy)."""
    if run.model_config.kind in ("gpt", "bigram"):
        return _whole_text(run, data)
    task = build_task(run.model_config, run.train_config, data or run.data_info.get("source"), run.tokenizer)
    scores = task.evaluate(run.model, run.device, **({"beam": beam} if run.model_config.kind == "seq2seq" else {}))
    return scores, task.report(scores)


def _whole_text(run, data):
    """A GPT's loss over every window of the validation split of `data` (default: its training text)."""
    if isinstance(data, list):
        raise ConfigError("two --data files are for an encoder-decoder run's pairs")
    tokenizer, block_size = run.tokenizer, run.model_config.block_size
    path = corpus_path(data or run.data_info.get("source"))
    text, sha = read_text(path)
    if sha == run.data_info.get("sha256"):  # the cached token file of the training text
        _, val_data = prepare(path, tokenizer=None if tokenizer.kind == "char" else tokenizer).split()
    else:  # another text: its last 10% of characters in the model's own vocabulary
        val_data = np.array(tokenizer.encode(text[int(TRAIN_FRACTION * len(text)) :]), dtype=np.int64)
    check_long_enough({"validation": val_data}, block_size)
    loss, bpc = evaluate_split(run.model, val_data, block_size, device=run.device, char_counts=tokenizer.char_counts())
    windows = (len(val_data) - 1) // block_size
    scores = {"val_loss": loss, "val_bpc": bpc, "windows": windows, "tokens": windows * block_size}
    return scores, f"val loss {loss:.4f} nats/token, {bpc:.4f} bits/char ({windows} windows of {block_size} tokens)"
