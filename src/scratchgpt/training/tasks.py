"""What a model is trained to do: the task says what a batch is, what its loss is, how the model
is scored at the end, and whether it writes a sample. The loop (loop.py) knows nothing else, so a
new task (masked tokens, sequence labels, translation) plugs in without touching it.

A task keeps the contract of `Task` below; its builder (in `TASKS`, here) reads its data and
chooses its tokens; `build_task` builds the one TrainConfig.task names, `fit_model_config` fits
the model config to it:

    next-token  NextTokenTask (here)          the GPT and the bigram
    mlm         MaskedTokenTask (masked.py)   the encoder's pretraining
    speakers, classify, regress
                SequenceTask (labelling.py)   a label or a score per text
    names       TokenTask (labelling.py)      a label per character
    tag         TagTask (tagging.py)          a label per word, from the user's TSV or CoNLL file
    dates, numbers, copy, reverse, pairs
                TranslationTask (translation.py)  a target text per source text
"""

import dataclasses
import hashlib
import random
from pathlib import Path
from typing import Protocol

from ..data.bpe import DEFAULT_VOCAB_SIZE, HFTokenizer, check_vocab_size, train_bpe
from ..data.corpus import check_long_enough, corpus_path, get_batch, prepare, read_text, tiny_shakespeare
from ..data.labelled import read_labelled, split_examples
from ..data.pairs import GENERATORS, SPLITS, generate, generate_distinct, read_pairs, split_of
from ..data.reviews import default_reviews
from ..data.speeches import SPEAKERS, name_examples, pretraining_corpus, speaker_examples, speeches
from ..data.tagged import read_tagged, split_tagged
from ..data.tokenizer import SPECIALS, TRANSLATION_SPECIALS, CharTokenizer, PairTokenizer
from ..errors import ConfigError, DataError
from ..files import sha256_file
from ..inference.generate import sample_text
from ..settings import FINE_TUNING, check_task
from .evaluate import evaluate_split
from .labelling import SequenceTask, TokenTask
from .masked import MaskedTokenTask
from .tagging import TagTask
from .translation import TranslationTask


class Task(Protocol):
    """What the loop needs to know about a task."""

    name: str  # its TrainConfig.task name
    tokenizer: object  # saved in the run directory
    data_info: dict  # the data's source path and sha256, saved in config.json
    model_settings: dict  # the model config's settings the data decides (fit_model_config)

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

    def track(self, model, device) -> dict:
        """Cheap scores logged with every estimate (a curve of more than the loss; may be empty)."""

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
        self.model_settings = {"vocab_size": corpus.tokenizer.vocab_size}
        self.data_info = {"source": str(Path(corpus.source).resolve()), "sha256": corpus.sha256}
        self.splits = dict(zip(("train", "val"), corpus.split()))
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
        val_loss, val_bpc = evaluate_split(
            model, self.splits["val"], self.block_size, device=device, char_counts=self.tokenizer.char_counts()
        )
        return {"val_loss": val_loss, "val_bpc": val_bpc}

    def track(self, model, device):
        return {}  # the estimate's val loss is the curve

    def report(self, scores):
        return f"full validation split: loss {scores['val_loss']:.4f} nats/token, {scores['val_bpc']:.4f} bits/char"

    def sample(self, model, max_tokens, seed):
        return sample_text(model, self.tokenizer, max_new_tokens=max_tokens, seed=seed)


# ---------------------------------------------------------------------------------------------
# The builders: (model_config, train_config, data: a path or None for the built-in data, tokenizer:
# a pretrained or resumed run's, else one is built from the data) -> the task train_config.task names.


def next_token_task(model_config, train_config, data, tokenizer):
    """The GPT's and the bigram's: `data` None is $SCRATCHGPT_DATA or Tiny Shakespeare."""
    return NextTokenTask(_corpus(corpus_path(data), train_config, tokenizer), model_config.block_size)


def masked_task(model_config, train_config, data, tokenizer):
    """The encoder's pretraining: `data` None is the play without its held-out speeches."""
    path = Path(data) if data is not None else pretraining_corpus()
    if tokenizer is None and train_config.tokenizer != "char":
        tokenizer = _chosen(train_config, SPECIALS, lambda size: _corpus(path, train_config, None, size).tokenizer)
    corpus = _corpus(path, train_config, tokenizer and _base(tokenizer))
    return MaskedTokenTask(corpus, tokenizer or corpus.tokenizer.with_specials(), model_config.block_size)


def labelled_task(model_config, train_config, data, tokenizer):
    """The encoder's fine-tuning: speakers and names on a play (`data` None: Tiny Shakespeare);
    classify and regress on labelled texts (None: synthetic reviews), with the labels of a
    classifier's model_config (a resumed or evaluated run's) instead of those found in the data."""
    name = train_config.task
    if name in ("speakers", "names"):
        if name == "names" and (tokenizer.kind if tokenizer is not None else train_config.tokenizer) != "char":
            raise ConfigError(
                "the names task labels characters; it needs --tokenizer char (and an encoder pretrained on characters)"
            )
        path = Path(data) if data is not None else tiny_shakespeare()
        play, sha = read_text(path)
        found = speeches(play)
        examples = {
            s: (speaker_examples if name == "speakers" else name_examples)(found, s) for s in ("train", "val", "test")
        }
        if not all(examples.values()):
            raise DataError(f"{path} has too few speeches (NAME: lines, then text) for the {name} task")
        labels = SPEAKERS if name == "speakers" else ("other", "name")
        texts, characters = [text for text, _ in examples["train"]], play
    else:  # classify, regress
        regression = name == "regress"
        path = Path(data) if data is not None else default_reviews(classes=not regression)
        splits = split_examples(read_labelled(path, regression), regression, path)
        labels = None if regression else model_config.labels or tuple(sorted({e.target for e in splits["train"]}))
        unknown = [e for split_ in splits.values() for e in split_ if not regression and e.target not in labels]
        if unknown:
            first = min(unknown, key=lambda e: e.line)
            raise DataError(
                f"{path}, line {first.line}: the label {first.target!r} is not one the model knows "
                f"({', '.join(labels)})"
            )
        examples = {s: [(e.text, e.target) for e in split_] for s, split_ in splits.items()}
        texts = [e.text for e in splits["train"]]
        characters, sha = "".join(texts), sha256_file(path)
    tokenizer = (
        tokenizer
        or _chosen(train_config, SPECIALS, lambda size: train_bpe(texts, size))
        or CharTokenizer.from_text(characters).with_specials()
    )
    task_class = TokenTask if name == "names" else SequenceTask
    return task_class(name, examples, tokenizer, model_config.block_size, labels, _info(path, sha))


def tagged_task(model_config, train_config, data, tokenizer):
    """The tag task: the words and tags of `data` (data/tagged.py: TSV or CoNLL; required), with the
    tags of the model_config (a resumed or evaluated run's) or else those of the train split."""
    if data is None:
        raise ConfigError(
            "the tag task needs --data: a file of words<TAB>tags lines (one sentence a line), "
            "or a CoNLL file (word<TAB>tag lines, a blank line between sentences)"
        )
    path = Path(data)
    splits = split_tagged(read_tagged(path), path)
    labels = model_config.labels or tuple(sorted({t for s in splits["train"] for t in s.tags}))
    texts = [" ".join(s.words) for s in splits["train"]]
    tokenizer = (
        tokenizer
        or _chosen(train_config, SPECIALS, lambda size: train_bpe(texts, size))
        or CharTokenizer.from_text(" ".join(texts)).with_specials()
    )
    examples = {split: [(s.words, s.tags) for s in sentences] for split, sentences in splits.items()}
    return TagTask("tag", examples, tokenizer, model_config.block_size, labels, _info(path, sha256_file(path)))


EVAL_PAIRS = {"val": 1000, "test": 2000}  # a generated translation task's fixed val and test sets
EVAL_SEEDS = {"val": 1, "test": 2}


def translation_task(model_config, train_config, data, tokenizer, eval_pairs=EVAL_PAIRS):
    """The encoder-decoder's: generated pairs (dates, numbers, copy, reverse: `eval_pairs` of val
    and test), or the user's (pairs: `data`, one TSV or a list of two aligned files)."""
    name = train_config.task
    if name in GENERATORS:
        if data is not None:
            raise ConfigError(f"the {name} task generates its pairs; --data is for the pairs task")
        if tokenizer is None:  # the characters (or a BPE) of plenty of pairs of every split
            rng = random.Random(0)
            seen = [p for split in SPLITS for p in generate(name, split, 2000, rng)]
            tokenizer = _pair_tokenizer(seen, model_config, train_config)
        pairs = {s: generate_distinct(name, s, n, EVAL_SEEDS[s]) for s, n in eval_pairs.items()}
        info = {"generated": name, "sha256": hashlib.sha256(name.encode()).hexdigest()}
        return TranslationTask(name, tokenizer, model_config.block_size, pairs, info)
    if data is None:
        raise ConfigError("the pairs task needs --data: a TSV of source<TAB>target lines, or two aligned files")
    paths = [Path(p) for p in (data if isinstance(data, (list, tuple)) else [data])]
    pairs, skipped = read_pairs(paths, train_config.strict)
    splits = {s: [p for p in pairs if split_of(p[0]) == s] for s in SPLITS}
    if tokenizer is None:
        tokenizer = _pair_tokenizer(splits["train"] or pairs, model_config, train_config)
    if len(paths) == 1:
        info = _info(paths[0], sha256_file(paths[0]))
    else:
        sha = hashlib.sha256("".join(sha256_file(p) for p in paths).encode()).hexdigest()
        info = {"source": [str(p.resolve()) for p in paths], "sha256": sha}
    return TranslationTask(name, tokenizer, model_config.block_size, splits, info, skipped)


# Each task's builder (the model families each task trains are settings.FAMILIES).
TASKS = {
    "next-token": next_token_task,
    "mlm": masked_task,
    **{name: labelled_task for name in FINE_TUNING if name != "tag"},
    "tag": tagged_task,
    **{name: translation_task for name in (*GENERATORS, "pairs")},
}


def build_task(model_config, train_config, data=None, tokenizer=None):
    """The task train_config.task names, by its builder (above: what `data` None means for each);
    for pairs, `data` is a TSV or a list of two aligned files."""
    name = train_config.task
    check_task(model_config, train_config)
    if isinstance(data, (list, tuple)) and name != "pairs":
        raise ConfigError("two --data files (aligned source and target lines) are for the pairs task")
    return TASKS[name](model_config, train_config, data, tokenizer)


def fit_model_config(model_config, task):
    """The model config that trains `task`: model_config sized to the task's vocabulary (an
    encoder-decoder's two), with the head and labels an encoder needs for it."""
    return dataclasses.replace(model_config, **task.model_settings)


def _info(path, sha):
    return {"source": str(Path(path).resolve()), "sha256": sha}


# ---------------------------------------------------------------------------------------------
# Which tokens: TrainConfig.tokenizer is char, bpe (trained here, of vocab_size tokens) or the
# path of a Hugging Face tokenizer.json (used as it is). A given tokenizer (a resumed run's, a
# pretrained encoder's) always wins.


def _corpus(path, train_config, given, bpe_size=None):
    """The corpus of `path` in the tokens of `given` (a tokenizer, the run's), else as train_config
    says (`bpe_size`: the BPE's size without the family's special tokens)."""
    if isinstance(given, CharTokenizer):
        corpus = prepare(path)
        if given.chars != corpus.tokenizer.chars:
            raise DataError(f"the characters of {corpus.source} are not the vocabulary the model was trained with")
        return corpus
    if given is not None:
        return prepare(path, tokenizer=given)
    if train_config.tokenizer == "char":
        return prepare(path)
    if train_config.tokenizer == "bpe":
        size = bpe_size or _vocab_size(train_config)
        check_vocab_size(size)
        return prepare(path, vocab_size=size)
    return prepare(path, tokenizer=_tokenizer_file(train_config.tokenizer))


def _chosen(train_config, specials, train):
    """The tokenizer train_config asks for, with `specials` after its tokens: None for char (the
    caller builds that one), a BPE from `train(size without the specials)`, or the file's."""
    if train_config.tokenizer == "char":
        return None
    if train_config.tokenizer == "bpe":
        size = _vocab_size(train_config)
        check_vocab_size(size, specials)
        return train(size - len(specials)).with_specials(specials)
    return _tokenizer_file(train_config.tokenizer).with_specials(specials)


def _pair_tokenizer(pairs, model_config, train_config):
    """The source and target vocabularies of a translation task, from its training pairs."""
    sources, targets = zip(*pairs)
    if train_config.tokenizer == "char":
        return PairTokenizer.from_pairs(sources, targets, shared=model_config.shared_vocab)
    if train_config.tokenizer == "bpe":
        return PairTokenizer.from_pairs(
            sources, targets, shared=model_config.shared_vocab, vocab_size=_vocab_size(train_config)
        )
    source = _tokenizer_file(train_config.tokenizer).with_specials(TRANSLATION_SPECIALS)
    target = (
        source
        if model_config.shared_vocab
        else _tokenizer_file(train_config.tokenizer).with_specials(TRANSLATION_SPECIALS)
    )
    return PairTokenizer(source, target)


def _vocab_size(train_config):
    return train_config.bpe_vocab_size or DEFAULT_VOCAB_SIZE


def _tokenizer_file(path):
    if not Path(path).is_file():
        raise ConfigError(
            f"--tokenizer {path}: no such file (give char, bpe, or the path of a Hugging Face tokenizer.json)"
        )
    return HFTokenizer.from_file(path)


def _base(tokenizer):
    """A vocabulary without its special tokens: what the text of a corpus is encoded with."""
    return CharTokenizer(tokenizer.chars) if isinstance(tokenizer, CharTokenizer) else tokenizer.base()
