"""A run as a Hugging Face GPT-2 directory: `scratchgpt export --run RUN --format hf OUT`.

OUT holds what `transformers.GPT2LMHeadModel.from_pretrained(OUT)` and
`AutoTokenizer.from_pretrained(OUT)` load, offline:

    config.json            GPT-2's settings for our ModelConfig (models/gpt2.py maps them)
    model.safetensors      every weight in GPT-2's layout (models/gpt2.py: Conv1D matrices
                           transposed, zero query/key/value biases where ours have none)
    tokenizer.json         a character run: a `tokenizers` WordLevel model over single characters,
                           each mapped to our id, a pre-tokenizer that splits every character, a
                           decoder that joins them without spaces; a BPE run: its own tokenizer.json
    tokenizer_config.json  PreTrainedTokenizerFast, no clean-up of spaces (decode(encode(t)) == t)
    README.md              the model card: settings, data sha256, val loss, how to load it

Which weights: the run's kept model, model.safetensors (the lowest estimated val loss, what
`sample` and `eval` use), which training replaces by an atomic rename, so a run still training
exports a complete model; a run with no kept model yet exports its latest complete checkpoint,
named by checkpoint.json and checked against its sha256. Nothing is written until everything is
checked: OUT is built in a temporary directory beside it and renamed into place; an existing OUT
is refused unless force=True, and replaced only once the new one is complete. OUT and its files
get the permissions mkdir and open give (not the temporary directory's private 0700).
"""

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import safetensors.torch

from .. import config as cfg
from ..errors import CheckpointError, ConfigError, MissingExtra
from ..files import usual_mode
from ..models.convert import convert
from ..models.gpt2 import gpt2_config, gpt2_obstacle, to_gpt2_state
from ..rundir import load_run, read_config, read_metrics

HF_EXTRA = "pip install 'scratchgpt[hf]'"


@dataclass(frozen=True)
class Exported:
    out: Path
    source: str  # which weights: "the kept model (model.safetensors)" or "the checkpoint of step N"
    finished: bool  # the run had finished training (metrics.jsonl has its final record)


def require_tokenizers(what):
    """Hugging Face's `tokenizers`, or a one-line error naming the extra that brings it."""
    try:
        import tokenizers
    except ImportError:
        raise MissingExtra(f"{what} needs Hugging Face tokenizers (not installed): {HF_EXTRA}") from None
    return tokenizers


def export_hf(run_dir, out, force=False):
    """Write the GPT of `run_dir` as a Hugging Face GPT-2 directory `out` (see the module's doc)."""
    require_tokenizers("export --format hf")
    run_dir, out = Path(run_dir), Path(out)
    model_config, _, _ = read_config(run_dir)
    why = gpt2_obstacle(model_config)
    if why:
        raise ConfigError(f"cannot export {run_dir}: {why}")
    if out.exists() and not force:
        raise ConfigError(f"{out} already exists; pass --force to replace it, or choose another directory")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory; remove it first")
    if out.resolve() == run_dir.resolve() or run_dir.resolve() in out.resolve().parents:
        raise ConfigError(f"{out} is inside the run directory {run_dir}; export to another directory")
    run = load_run(run_dir, or_checkpoint=True)
    model = run.model if model_config.attention == "fast" else convert(run.model, "fast")  # one layout to map
    try:
        state = to_gpt2_state(model.state_dict(), model.config)
    except ConfigError as e:
        raise ConfigError(f"cannot export {run_dir}: {e}") from None
    hf_config = gpt2_config(model.config)
    tokenizer_json = _tokenizer_json(run_dir, run.tokenizer)
    records = read_metrics(run_dir)
    finished = any(r.get("kind") == "final" for r in records)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".export"))
    try:
        _write_json(tmp / "config.json", hf_config)
        safetensors.torch.save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
        _write_json(
            tmp / "tokenizer_config.json",
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "clean_up_tokenization_spaces": False,
                "model_max_length": model_config.block_size,
            },
        )
        card = model_card(run, out, records)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        for path in [tmp, *tmp.iterdir()]:
            usual_mode(path)  # not mkdtemp's 0700, nor 0600 for the files written inside it
        _replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Exported(out, run.source, finished)


def _tokenizer_json(run_dir, tokenizer):
    """The HF tokenizer.json text for the run's tokenizer: built for characters, copied for BPE."""
    if tokenizer.kind == "char":
        return char_tokenizer_json(tokenizer)
    text = (run_dir / "tokenizer.json").read_text(encoding="utf-8")
    if not isinstance(json.loads(text), dict) or "model" not in json.loads(text):
        raise CheckpointError(f"{run_dir}: a {tokenizer.kind} tokenizer without a Hugging Face tokenizer.json")
    return text  # a sub-word run keeps Hugging Face's own tokenizer.json


def char_tokenizer_json(tokenizer):
    """Hugging Face's tokenizer.json for our character tokenizer: every character its own token,
    with our id, and decoding joins them with nothing between."""
    tokenizers = require_tokenizers("a character tokenizer for Hugging Face")
    from tokenizers import Regex, decoders, models, pre_tokenizers

    if tokenizer.specials:
        raise ConfigError("a character tokenizer with special tokens (an encoder's) has no GPT-2 form")
    vocab = {ch: i for i, ch in enumerate(tokenizer.chars)}
    hf = tokenizers.Tokenizer(models.WordLevel(vocab))
    hf.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # each code point
    hf.decoder = decoders.Fuse()  # "".join(tokens)
    return hf.to_str(pretty=True)


def _write_json(path, obj):
    Path(path).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _replace_dir(new, out):
    """Rename the complete directory `new` to `out`; an existing `out` is moved aside first and
    deleted only after the rename, so a failure leaves the old one (or its moved-aside copy)."""
    if not out.exists():
        os.replace(new, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
    os.replace(out, old / out.name)
    try:
        os.replace(new, out)
    except OSError:
        os.replace(old / out.name, out)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The model card


def model_card(run, out, records):
    """README.md for the exported directory: what it is, how to load it, its score, its data and
    its settings."""
    final = next((r for r in reversed(records) if r.get("kind") == "final"), None)
    evals = [r for r in records if r.get("kind") == "eval" and "val_loss" in r]
    if final is not None:
        bpc = f" ({final['val_bpc']:.4f} bits per character)" if "val_bpc" in final else ""
        score = (
            f"Validation loss **{final['val_loss']:.4f}** nats per token{bpc}, on the whole "
            f"validation split, after {final['step']} steps."
        )
    elif evals:
        best = min(evals, key=lambda r: r["val_loss"])
        score = (
            f"Training had not finished when this was exported. Best estimated validation loss "
            f"so far: {best['val_loss']:.4f} nats per token, at step {best['step']}."
        )
    else:
        score = "Training had not finished when this was exported, and had no estimate yet."
    run_dir, model_config, tokenizer = run.path, run.model_config, run.tokenizer
    chars = tokenizer.kind == "char"
    token = "one token per character" if chars else "sub-word tokens"
    unknown = " A character outside the vocabulary cannot be encoded." if chars else ""
    # a prompt the tokenizer encodes: a character run's text may lack some of "ROMEO:"
    prompt = "ROMEO:" if not chars or set("ROMEO:") <= set(tokenizer.chars) else tokenizer.chars[0]
    model_rows = "\n".join(f"| {k} | {v} |" for k, v in cfg.model_to_dict(model_config).items())
    train_rows = "\n".join(f"| {k} | {v} |" for k, v in dataclasses.asdict(run.train_config).items())
    data = "\n".join(f"- {k}: `{v}`" for k, v in run.data_info.items()) or "- (not recorded)"
    return f"""---
library_name: transformers
pipeline_tag: text-generation
tags:
- scratchgpt
- gpt2
---

# {run_dir.name}

A GPT trained with scratchgpt (the transformers of the lecture, built from scratch) and exported
as a Hugging Face GPT-2 (`GPT2LMHeadModel`), with {token} ({model_config.vocab_size} in the
vocabulary). Exported from `{run_dir}`: {run.source}.

```python
from transformers import AutoTokenizer, GPT2LMHeadModel

path = {json.dumps(str(out), ensure_ascii=False)}  # this directory
tokenizer = AutoTokenizer.from_pretrained(path)
model = GPT2LMHeadModel.from_pretrained(path)
ids = tokenizer({json.dumps(prompt, ensure_ascii=False)}, return_tensors="pt").input_ids
new = model.config.n_positions - ids.shape[1]  # up to the last position the model has
print(tokenizer.decode(model.generate(ids, max_new_tokens=new, do_sample=True)[0]))
```

The model reads at most {model_config.block_size} tokens (`n_positions`, its block size): its
position table has no row past them, so `generate` fails (`IndexError`) on a longer text. To write
more, crop the context to its last `n_positions` tokens at every step, as scratchgpt's `sample`
does:

```python
import torch

with torch.no_grad():
    for _ in range(500):
        logits = model(ids[:, -model.config.n_positions:]).logits[:, -1]  # the last token's
        ids = torch.cat([ids, torch.multinomial(logits.softmax(-1), 1)], dim=1)
print(tokenizer.decode(ids[0]))
```

It has no end-of-text token: generation stops after the number of tokens asked for.{unknown}

## Evaluation

{score}

## Training data

{data}

## Settings

| model | value |
|---|---|
{model_rows}

| training | value |
|---|---|
{train_rows}
"""
