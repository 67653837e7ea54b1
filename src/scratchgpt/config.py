"""Settings: the one source of truth for every knob, and the named presets.

Frozen dataclasses hold every setting: one per model family for the shape of the network, saved
with the weights (`ModelConfig` for the GPT, `BigramConfig` for the lecture's bigram model,
`EncoderConfig` for the BERT-like encoder and `Seq2SeqConfig` for the encoder-decoder; the family
is the config's `kind`), and `TrainConfig` for how to train any of them. The CLI derives one
`--flag` per field from them, a TOML file may set any of them, and `config.json` in every run
directory records them, with the model's kind.

Precedence, lowest first: preset < TOML file < command-line flags.
"""

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .device import check_device_name
from .errors import ConfigError


def _setting(default, help, choices=None, cli=True, name=None):
    """A dataclass field carrying its help text (shown by `--help`) and allowed values; `name` is the
    setting's name for the user (its flag, its TOML key) where it is not the field's."""
    return field(default=default, metadata={"help": help, "choices": choices, "cli": cli, "name": name})


def setting_name(f):
    """The name the user gives a dataclass field: its flag (`--vocab-size`) and TOML key."""
    return f.metadata.get("name") or f.name


def flag(name):
    """The command-line flag of the setting `name`: `max_time` -> `--max-time`."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class BigramConfig:
    """The lecture's first model: each token looks up the logits of the next in a (V, V) table."""

    kind: ClassVar[str] = "bigram"
    vocab_size: int = _setting(65, "vocabulary size V (set from the tokenizer)", cli=False)
    block_size: int = _setting(8, "context length T of the training windows (the bigram itself looks at one token)")

    def __post_init__(self):
        _check_types(self)
        _require(self.vocab_size >= 1, "vocab_size must be at least 1")
        _require(self.block_size >= 1, f"block_size must be at least 1, got {self.block_size}")


@dataclass(frozen=True)
class TransformerConfig:
    """The shape every transformer family shares (the GPT's, the encoder's, the encoder-decoder's),
    with the GPT's defaults and choices: a family restates a default (or choices) with `_family`."""

    vocab_size: int = _setting(65, "vocabulary size V (set from the tokenizer)", cli=False)
    block_size: int = _setting(256, "context length T: the most tokens the model attends over")
    n_embd: int = _setting(384, "embedding width C")
    n_head: int = _setting(6, "attention heads per block (head size hs = n_embd / n_head)")
    n_layer: int = _setting(6, "number of transformer blocks")
    dropout: float = _setting(0.2, "dropout probability (attention weights and residual branches)")
    attention: str = _setting(
        "fast", "attention implementation: the lecture's per-head code or the fused one", choices=("fast", "readable")
    )
    # Speedrun options (BENCHMARKS.md measures each); the defaults are the lecture's GPT.
    position: str = _setting(
        "learned", "positions: a learned embedding table, or rotary (RoPE) on q and k", choices=("learned", "rotary")
    )
    qk_norm: bool = _setting(False, "RMS-normalise each head's queries and keys before attending")
    activation: str = _setting(
        "relu",
        "feed-forward non-linearity (relu2 is ReLU squared; gelu_tanh is GPT-2's tanh approximation of GELU)",
        choices=("relu", "gelu", "relu2", "gelu_tanh"),
    )


def _family(name, default, choices=None):
    """The field `name` of TransformerConfig with a family's own default (and choices)."""
    shared = TransformerConfig.__dataclass_fields__[name].metadata
    return field(default=default, metadata={**shared, "choices": choices or shared["choices"]})


@dataclass(frozen=True)
class ModelConfig(TransformerConfig):
    """The shape of the GPT. Changing any of these makes a different network."""

    kind: ClassVar[str] = "gpt"
    zero_init: bool = _setting(False, "start the output projections of attention and feed-forward at 0")
    tie_embeddings: bool = _setting(False, "lm_head shares its weight with the token embedding table")
    # GPT-2's biases differ from the lecture's: its lm_head has none, its queries, keys and values
    # have one. Both settings default to the lecture's; `train --init-from` a GPT-2 sets GPT-2's.
    lm_head_bias: bool = _setting(
        True, "lm_head adds a bias to the logits (GPT-2's has none: false exports to Hugging Face)"
    )
    qkv_bias: bool = _setting(False, "queries, keys and values add a bias (GPT-2's do; the lecture's do not)")

    def __post_init__(self):
        _check_types(self)
        _require(self.vocab_size >= 1, "vocab_size must be at least 1")
        _require(self.block_size >= 1, f"block_size must be at least 1, got {self.block_size}")
        _check_transformer(self)


@dataclass(frozen=True)
class EncoderConfig(TransformerConfig):
    """The shape of the BERT-like encoder and of the head on top of it (set by the task)."""

    kind: ClassVar[str] = "encoder"
    vocab_size: int = _family("vocab_size", 70)  # special tokens included
    block_size: int = _family("block_size", 128)
    n_embd: int = _family("n_embd", 128)
    n_head: int = _family("n_head", 2)
    n_layer: int = _family("n_layer", 4)
    dropout: float = _family("dropout", 0.1)
    position: str = _family("position", "learned", ("learned", "sinusoidal", "rotary"))
    activation: str = _family("activation", "gelu", ("relu", "gelu", "relu2"))
    head: str = _setting(
        "mlm",
        "the head on the encoder: masked-LM, one output per sequence (from [CLS]), or one per token (set by the task)",
        choices=("mlm", "sequence", "token"),
        cli=False,
    )
    num_labels: int = _setting(0, "outputs of a sequence or token head; 1 is regression (set by the task)", cli=False)
    labels: tuple = _setting((), "the names of the classes, in output order (set by the task)", cli=False)
    label_words: bool = _setting(
        False,
        "a token head that tags words (the tag task: each word's label is read at its first piece) "
        "rather than every token (set by the task)",
        cli=False,
    )
    pooling: str = _setting(
        "cls",
        "what the sequence head reads: the [CLS] vector, or the mean of the real tokens' vectors",
        choices=("cls", "mean"),
    )

    def __post_init__(self):
        _check_types(self)
        _require(self.vocab_size >= 1, "vocab_size must be at least 1")
        _require(self.block_size >= 3, f"block_size must be at least 3 ([CLS], a token, [SEP]), got {self.block_size}")
        _check_transformer(self)
        _require(
            (self.head == "mlm") == (self.num_labels == 0),
            f"a {self.head} head needs num_labels {'0' if self.head == 'mlm' else '>= 1'}, got {self.num_labels}",
        )
        _require(
            not self.labels or len(self.labels) == self.num_labels,
            f"{len(self.labels)} label names for {self.num_labels} outputs",
        )
        _require(not self.label_words or self.head == "token", f"a {self.head} head does not label words")


@dataclass(frozen=True)
class Seq2SeqConfig(TransformerConfig):
    """The shape of the encoder-decoder: an encoder and a decoder of n_layer blocks each.
    vocab_size is the target's; block_size the most tokens of a source, and of a target with its
    [BOS] or [EOS]."""

    kind: ClassVar[str] = "seq2seq"
    vocab_size: int = _family("vocab_size", 70)  # special tokens included
    block_size: int = _family("block_size", 64)
    n_embd: int = _family("n_embd", 128)
    n_head: int = _family("n_head", 2)
    n_layer: int = _family("n_layer", 2)
    dropout: float = _family("dropout", 0.1)
    position: str = _family("position", "sinusoidal", ("sinusoidal", "learned", "rotary"))
    activation: str = _family("activation", "relu", ("relu", "gelu", "relu2"))
    src_vocab_size: int = _setting(
        70, "source vocabulary size, special tokens included (set from the tokenizer)", cli=False
    )
    shared_vocab: bool = _setting(False, "one vocabulary and one embedding table for source and target")
    tie_embeddings: bool = _setting(False, "lm_head shares its weight with the (target) token embedding table")
    label_smoothing: float = _setting(
        0.0, "the share of each target's probability spread over the other tokens in the training loss"
    )

    def __post_init__(self):
        _check_types(self)
        _require(self.src_vocab_size >= 1 and self.vocab_size >= 1, "vocabulary sizes must be at least 1")
        _require(
            not self.shared_vocab or self.src_vocab_size == self.vocab_size,
            f"a shared vocabulary has one size, got {self.src_vocab_size} and {self.vocab_size}",
        )
        _require(self.block_size >= 2, f"block_size must be at least 2 ([BOS] and a token), got {self.block_size}")
        _check_transformer(self)
        _require(0.0 <= self.label_smoothing < 1.0, f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimiser, schedule, evaluation, device. May change between runs of one model."""

    task: str = _setting(
        "next-token",
        "what to train for: next-token (the GPT's and the bigram's), mlm "
        "(masked tokens: the encoder's pretraining), speakers, names, "
        "classify, regress or tag (the encoder's fine-tuning tasks), dates, "
        "numbers, copy, reverse or pairs (the encoder-decoder's translations)",
        choices=(
            "next-token",
            "mlm",
            "speakers",
            "names",
            "classify",
            "regress",
            "tag",
            "dates",
            "numbers",
            "copy",
            "reverse",
            "pairs",
        ),
    )
    strict: bool = _setting(False, "pairs: a malformed line of --data is an error (default: skipped and counted)")
    tokenizer: str = _setting(
        "char",
        "the tokens: char (one per character, the lecture's), bpe (byte-level BPE "
        "trained on the training split; pip install 'scratchgpt[hf]'), or the path "
        "of a Hugging Face tokenizer.json (e.g. GPT-2's), used as it is",
    )
    bpe_vocab_size: int = _setting(
        0,
        "with --tokenizer bpe: the vocabulary size V, special tokens included, at "
        "least 256 + the family's special tokens (0: 1024)",
        name="vocab_size",
    )
    batch_size: int = _setting(64, "sequences per training step B")
    grad_accum: int = _setting(1, "split each batch into this many micro-batches (same result, less memory)")
    max_iters: int = _setting(5000, "training steps")
    max_time: float = _setting(
        0.0, "stop after this many seconds of training steps (0: no limit); the schedule then runs on time"
    )
    lr: float = _setting(3e-4, "peak learning rate of AdamW")
    schedule: str = _setting(
        "constant",
        "learning-rate schedule after warm-up: constant, cosine, or wsd (constant, then a linear cool-down)",
        choices=("constant", "cosine", "wsd"),
    )
    warmup_iters: int = _setting(0, "steps of linear learning-rate warm-up")
    cooldown_frac: float = _setting(0.4, "wsd: the share of training spent cooling down")
    min_lr_ratio: float = _setting(0.1, "the decay ends at lr * min_lr_ratio")
    optimizer: str = _setting(
        "adamw",
        "adamw for everything, or muon for the blocks' weight matrices (AdamW for the rest)",
        choices=("adamw", "muon"),
    )
    muon_lr: float = _setting(0.02, "peak learning rate of Muon")
    muon_momentum: float = _setting(0.95, "Muon's Nesterov momentum")
    weight_decay: float = _setting(0.01, "AdamW weight decay, on matrices and embeddings only")
    beta1: float = _setting(0.9, "AdamW beta1")
    beta2: float = _setting(0.999, "AdamW beta2")
    grad_clip: float = _setting(0.0, "clip the gradient norm to this value (0: no clipping)")
    eval_interval: int = _setting(500, "estimate train/val loss every this many steps")
    eval_iters: int = _setting(200, "batches per loss estimate")
    log_interval: int = _setting(10, "update the progress bar and metrics.jsonl every this many steps")
    seed: int = _setting(1337, "random seed (initialisation, batches, dropout)")
    device: str = _setting("auto", "cpu, cuda, cuda:N, mps, or auto (cuda, then mps, then cpu)")
    dtype: str = _setting(
        "auto",
        "compute dtype: bfloat16 autocast or float32 (auto: bf16 on CUDA, and on "
        "CPUs with native bf16 from n_embd 256 and 2048 tokens a micro-batch)",
        choices=("auto", "float32", "bfloat16"),
    )
    compile: bool = _setting(
        False, "torch.compile the model for training (pays on GPUs; slower on the CPUs we measured)"
    )
    sample_tokens: int = _setting(
        500,
        "tokens (characters, with --tokenizer char) of the sample written when "
        "training ends (translations "
        "of the test split, for a translation task)",
    )
    tensorboard: bool = _setting(
        False,
        "also write TensorBoard event files beside metrics.jsonl (pip install "
        "tensorboard; view with tensorboard --logdir runs)",
    )

    def __post_init__(self):
        _check_types(self)
        _require(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        _require(self.grad_accum >= 1, f"grad_accum must be at least 1, got {self.grad_accum}")
        _require(
            self.batch_size % self.grad_accum == 0,
            f"batch_size ({self.batch_size}) must be divisible by grad_accum ({self.grad_accum})",
        )
        _require(self.tokenizer != "", "tokenizer must be char, bpe or the path of a tokenizer.json")
        _require(self.bpe_vocab_size >= 0, f"vocab_size must be at least 0, got {self.bpe_vocab_size}")
        _require(
            self.bpe_vocab_size == 0 or self.tokenizer == "bpe",
            "--vocab-size is for --tokenizer bpe (a character vocabulary is the text's characters; "
            "a tokenizer.json has its own size)",
        )
        _require(self.max_iters >= 0, f"max_iters must be at least 0, got {self.max_iters}")
        _require(self.max_time >= 0, f"max_time must be at least 0, got {self.max_time}")
        _require(self.lr > 0, f"lr must be positive, got {self.lr}")
        _require(self.muon_lr > 0, f"muon_lr must be positive, got {self.muon_lr}")
        _require(0 <= self.muon_momentum < 1, f"muon_momentum must be in [0, 1), got {self.muon_momentum}")
        _require(0 < self.cooldown_frac <= 1, f"cooldown_frac must be in (0, 1], got {self.cooldown_frac}")
        _require(self.warmup_iters >= 0, f"warmup_iters must be at least 0, got {self.warmup_iters}")
        _require(0 <= self.min_lr_ratio <= 1, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        _require(self.weight_decay >= 0, f"weight_decay must be at least 0, got {self.weight_decay}")
        _require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "beta1 and beta2 must be in [0, 1)")
        _require(self.grad_clip >= 0, f"grad_clip must be at least 0, got {self.grad_clip}")
        _require(self.eval_interval >= 1, f"eval_interval must be at least 1, got {self.eval_interval}")
        _require(self.eval_iters >= 1, f"eval_iters must be at least 1, got {self.eval_iters}")
        _require(self.log_interval >= 1, f"log_interval must be at least 1, got {self.log_interval}")
        _require(self.sample_tokens >= 0, f"sample_tokens must be at least 0, got {self.sample_tokens}")
        check_device_name(self.device)


def _check_transformer(c):
    """The checks every transformer family's shape shares: widths, heads, layers, dropout, rotary."""
    _require(c.n_embd >= 1, f"n_embd must be at least 1, got {c.n_embd}")
    _require(c.n_head >= 1, f"n_head must be at least 1, got {c.n_head}")
    _require(c.n_layer >= 0, f"n_layer must be at least 0, got {c.n_layer}")
    _require(c.n_embd % c.n_head == 0, f"n_embd ({c.n_embd}) must be divisible by n_head ({c.n_head})")
    _require(0.0 <= c.dropout < 1.0, f"dropout must be in [0, 1), got {c.dropout}")
    _require(
        c.position != "rotary" or (c.n_embd // c.n_head) % 2 == 0,
        f"rotary positions need an even head size, got {c.n_embd // c.n_head}",
    )


def _require(condition, message):
    if not condition:
        raise ConfigError(message)


def _check_types(config):
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.type is float and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(config, f.name, float(value))  # TOML/JSON may write 1 for 1.0
            value = float(value)
        if f.type is tuple and isinstance(value, list):
            object.__setattr__(config, f.name, tuple(value))  # JSON writes a tuple as a list
            value = tuple(value)
        if not isinstance(value, f.type) or (f.type is int and isinstance(value, bool)):
            raise ConfigError(f"{setting_name(f)} must be {f.type.__name__}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{setting_name(f)} must be a finite number, got {value!r}")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(f"{setting_name(f)} must be one of {', '.join(choices)}; got {value!r}")


# ---------------------------------------------------------------------------------------------
# Presets. `lecture` is the lecture's gpt.py exactly; `cpu` trains in about three minutes on a
# two-core laptop CPU; `speedrun-cpu` and `speedrun-gpu` buy the most quality per second with every
# speedrun option; `tiny` trains in seconds for tests. `auto` means lecture on a GPU, else cpu.

ENCODER_CPU = EncoderConfig(
    block_size=64, n_embd=128, n_head=2, n_layer=4, dropout=0.0, position="rotary", qk_norm=True
)

CPU = (
    ModelConfig(block_size=64, n_embd=128, n_head=2, n_layer=4, dropout=0.0),
    TrainConfig(
        batch_size=24,
        max_iters=1500,
        lr=3e-3,
        schedule="cosine",
        warmup_iters=100,
        weight_decay=0.1,
        beta2=0.99,
        grad_clip=1.0,
        eval_interval=500,
        eval_iters=20,
    ),
)
# every speedrun option of the GPT, and speedrun-cpu's training
SPEEDRUN = {"position": "rotary", "qk_norm": True, "activation": "relu", "zero_init": True, "tie_embeddings": True}
SPEEDRUN_CPU_TRAIN = TrainConfig(
    batch_size=32,
    max_iters=1_000_000,
    max_time=99.0,
    lr=3e-3,
    schedule="wsd",
    warmup_iters=50,
    cooldown_frac=0.4,
    min_lr_ratio=0.0,
    optimizer="muon",
    muon_lr=0.04,
    weight_decay=0.1,
    beta2=0.99,
    grad_clip=1.0,
    eval_interval=500,
    eval_iters=20,
)

# Fine-tuning budgets (about three minutes a task on a 2-core CPU). The model is the pretrained
# run's (with this dropout and block_size), or this shape with `finetune --from scratch`: the
# same encoder as the pretraining preset's. No dropout: on a CPU, attention dropout halves the
# speed, and for names and reviews more steps paid more than the regularisation (BENCHMARKS.md).
FINETUNE_CPU = (
    dataclasses.replace(ENCODER_CPU, block_size=128),
    TrainConfig(
        task="names",
        batch_size=32,
        max_iters=800,
        lr=2e-3,
        schedule="cosine",
        warmup_iters=80,
        weight_decay=0.01,
        grad_clip=1.0,
        eval_interval=100,
        eval_iters=10,
    ),
)

# The encoder-decoder on a 2-core CPU: seq2seq-cpu (its reasons at its entry in PRESETS), which pairs-cpu builds on.
SEQ2SEQ_CPU = (
    Seq2SeqConfig(block_size=96, n_embd=64, n_head=2, n_layer=2, dropout=0.0),
    TrainConfig(
        task="dates",
        batch_size=128,
        max_iters=1_000_000,
        max_time=180.0,
        lr=2e-3,
        schedule="wsd",
        warmup_iters=50,
        cooldown_frac=0.4,
        min_lr_ratio=0.0,
        weight_decay=0.01,
        beta2=0.98,
        grad_clip=1.0,
        eval_interval=100,
        eval_iters=5,
        sample_tokens=8,
    ),
)

PRESETS = {
    "lecture": (
        ModelConfig(block_size=256, n_embd=384, n_head=6, n_layer=6, dropout=0.2),
        TrainConfig(
            batch_size=64,
            max_iters=5000,
            lr=3e-4,
            schedule="constant",
            warmup_iters=0,
            grad_clip=0.0,
            eval_interval=500,
            eval_iters=200,
        ),
    ),
    # nanoGPT's CPU recipe (4 layers, 4 heads, width 128, block 64, batch 12, lr 1e-3), improved by
    # a sweep at a fixed time budget (BENCHMARKS.md): 2 heads of 64 channels run faster than 4 of
    # 32 on a CPU, and batch 24 at lr 3e-3 learns more per second than batch 12 at 1e-3.
    "cpu": CPU,
    # The best model per second of training: every speedrun option that measured as a gain in the
    # ablations of BENCHMARKS.md. Time-budgeted: the schedule follows the clock, so the recipe
    # means "the best model in 99 s" on any machine.
    "speedrun-cpu": (dataclasses.replace(CPU[0], **SPEEDRUN), SPEEDRUN_CPU_TRAIN),
    # The lecture's model size with the speedrun options, bf16 and torch.compile, on a 30 s budget.
    "speedrun-gpu": (
        ModelConfig(block_size=256, n_embd=384, n_head=6, n_layer=6, dropout=0.2, **SPEEDRUN),
        dataclasses.replace(
            SPEEDRUN_CPU_TRAIN, batch_size=64, max_time=30.0, muon_lr=0.02, eval_interval=250, compile=True
        ),
    ),
    # The cpu preset's shape and budget with GPT-2's pieces only, so that `scratchgpt export
    # --format hf` writes a GPT2LMHeadModel: learned positions, tanh GELU, tied embeddings, no
    # lm_head bias (and no rotary, QK-norm or ReLU², which GPT-2 cannot express).
    "gpt2-compatible": (
        dataclasses.replace(CPU[0], activation="gelu_tanh", tie_embeddings=True, lm_head_bias=False),
        CPU[1],
    ),
    # `train --init-from GPT2_DIR`'s default: nanoGPT's finetune_shakespeare (20 steps of 32
    # sequences, one at a time, at a constant 3e-5). The model half is GPT-2 small's shape, for
    # the record: the weights and shape come from the directory.
    "gpt2-finetune": (
        ModelConfig(
            vocab_size=50257,
            block_size=1024,
            n_embd=768,
            n_head=12,
            n_layer=12,
            dropout=0.0,
            activation="gelu_tanh",
            tie_embeddings=True,
            lm_head_bias=False,
            qkv_bias=True,
        ),
        TrainConfig(
            batch_size=32,
            grad_accum=32,
            max_iters=20,
            lr=3e-5,
            schedule="constant",
            weight_decay=0.1,
            beta2=0.95,
            grad_clip=1.0,
            eval_interval=5,
            eval_iters=40,
            log_interval=1,
        ),
    ),
    "tiny": (
        ModelConfig(block_size=32, n_embd=32, n_head=2, n_layer=2, dropout=0.0),
        TrainConfig(
            batch_size=8,
            max_iters=60,
            lr=1e-3,
            schedule="cosine",
            warmup_iters=10,
            eval_interval=30,
            eval_iters=4,
            log_interval=5,
            sample_tokens=100,
        ),
    ),
    # The lecture's bigram.py: the baseline every later loss is compared with.
    "bigram": (
        BigramConfig(block_size=8),
        TrainConfig(
            batch_size=32,
            max_iters=3000,
            lr=1e-2,
            schedule="constant",
            warmup_iters=0,
            eval_interval=300,
            eval_iters=200,
        ),
    ),
    # The BERT-like encoder's masked-character pretraining in five minutes of a 2-core CPU, and at
    # about BERT-small's width on a GPU. Rotary positions, and Muon with QK-norm (neither helped
    # alone), measured as gains at a fixed time budget (BENCHMARKS.md); block 64 to pretrain (twice
    # the steps of 128 in the same time), block 128 to fine-tune (rotary has no table to outgrow).
    "encoder-cpu": (
        ENCODER_CPU,
        dataclasses.replace(
            SPEEDRUN_CPU_TRAIN,
            task="mlm",
            max_time=290.0,
            warmup_iters=100,
            cooldown_frac=0.3,
            eval_interval=250,
            sample_tokens=80,
        ),
    ),
    "encoder-gpu": (
        EncoderConfig(block_size=256, n_embd=384, n_head=6, n_layer=6, dropout=0.1, position="rotary", qk_norm=True),
        TrainConfig(
            task="mlm",
            batch_size=64,
            max_iters=5000,
            lr=1e-3,
            schedule="cosine",
            warmup_iters=200,
            optimizer="muon",
            muon_lr=0.02,
            weight_decay=0.1,
            beta2=0.99,
            grad_clip=1.0,
            eval_interval=500,
            eval_iters=50,
            sample_tokens=80,
        ),
    ),
    "tiny-encoder": (
        EncoderConfig(block_size=32, n_embd=32, n_head=2, n_layer=2, dropout=0.0, position="rotary", qk_norm=True),
        TrainConfig(
            task="mlm",
            batch_size=8,
            max_iters=60,
            lr=3e-3,
            schedule="cosine",
            warmup_iters=10,
            eval_interval=30,
            eval_iters=4,
            log_interval=5,
            sample_tokens=0,
        ),
    ),
    "finetune-cpu": FINETUNE_CPU,
    # Who speaks? has 1,043 training speeches: half the steps, a gentler rate and dropout, so that a
    # pretrained encoder is adapted rather than overwritten (BENCHMARKS.md compares both budgets).
    "speakers-cpu": (
        dataclasses.replace(FINETUNE_CPU[0], dropout=0.1, pooling="mean"),
        dataclasses.replace(
            FINETUNE_CPU[1], task="speakers", max_iters=400, lr=1e-3, warmup_iters=40, eval_interval=50
        ),
    ),
    # A label per word (`finetune --task tag`; Brown's tagged sentences: 930K training words):
    # finetune-cpu's model and budget, its scores tracked on 500 val sentences every 200 steps (the
    # whole val and test splits, read at the end, take about as long as 150 steps). Untuned: from a
    # BPE encoder pretrained on Brown's words, 93.0% test word accuracy (BENCHMARKS.md, "Real data").
    "tag-cpu": (FINETUNE_CPU[0], dataclasses.replace(FINETUNE_CPU[1], task="tag", eval_interval=200)),
    "finetune-tiny": (
        EncoderConfig(block_size=48, n_embd=32, n_head=2, n_layer=2, dropout=0.0, position="rotary", qk_norm=True),
        TrainConfig(
            task="speakers",
            batch_size=8,
            max_iters=20,
            lr=3e-3,
            schedule="cosine",
            warmup_iters=2,
            eval_interval=10,
            eval_iters=2,
            log_interval=5,
            sample_tokens=0,
        ),
    ),
    # The encoder-decoder on a 2-core CPU. On a CPU the steps a budget buys limit learning more than
    # width does: at 60 s on dates width 64 ran about 1,000 steps to 99.95% exact match, 96 about
    # 600 (99.2-99.9%), 128 about 400 (99.4%); on 24,807 real lines (words reversed) in 10 minutes,
    # width 64 reached 97.1% exact match, 128 92.9% (BENCHMARKS.md). On a GPU, the base
    # Transformer's shape.
    "seq2seq-cpu": SEQ2SEQ_CPU,
    # Real translation on a 2-core CPU: sentences and verses of hundreds of characters, in sub-words.
    # The bible's 31,084 English-Spanish verse pairs (../shared/data/real/bible_en_es.tsv) need a
    # block of up to 576 characters (99% within 298): seq2seq-cpu's 96 keeps 29.5% of them, 256 keeps
    # 96.7%. In byte-level BPE tokens of 2,000 a side (separate vocabularies, trained on the training
    # split) the longest needs 189 and 99% need 84, so block 192 keeps every pair, and a training step
    # of 128 pairs took half the time of one in characters at block 256 (1.4 s against 2.6 s on one
    # core; 2.1-2.2x in every turn of a second run). 4,000 and 8,000 tokens a side save 11% and 18% of
    # a pair's tokens but cost up to 1.2x and 2.1x a step (the output layer and softmax over V), width
    # 128 1.8x; a block larger than the pairs costs only the padding of the rare batch holding a long
    # one (BENCHMARKS.md, "Long pairs"). seq2seq-cpu's shape and optimiser otherwise, on a 15-minute clock.
    "pairs-cpu": (
        dataclasses.replace(SEQ2SEQ_CPU[0], block_size=192),
        dataclasses.replace(SEQ2SEQ_CPU[1], task="pairs", tokenizer="bpe", bpe_vocab_size=2000, max_time=900.0),
    ),
    "seq2seq-gpu": (
        Seq2SeqConfig(block_size=128, n_embd=512, n_head=8, n_layer=6, dropout=0.1, label_smoothing=0.1),
        TrainConfig(
            task="pairs",
            batch_size=128,
            max_iters=20_000,
            lr=5e-4,
            schedule="cosine",
            warmup_iters=1000,
            weight_decay=0.01,
            beta2=0.98,
            grad_clip=1.0,
            eval_interval=1000,
            eval_iters=20,
            sample_tokens=8,
        ),
    ),
    "tiny-seq2seq": (
        Seq2SeqConfig(block_size=24, n_embd=32, n_head=2, n_layer=1, dropout=0.0),
        TrainConfig(
            task="copy",
            batch_size=16,
            max_iters=40,
            lr=3e-3,
            schedule="cosine",
            warmup_iters=5,
            eval_interval=20,
            eval_iters=2,
            log_interval=5,
            sample_tokens=3,
        ),
    ),
}
PRESET_NAMES = ("auto", *PRESETS)
MODEL_KINDS = {cls.kind: cls for cls in (ModelConfig, BigramConfig, EncoderConfig, Seq2SeqConfig)}
# The preset a bare --model KIND starts from: one name, or (on a GPU, else) for `auto`.
DEFAULT_PRESET = {
    "gpt": ("lecture", "cpu"),
    "bigram": ("bigram", "bigram"),
    "encoder": ("encoder-gpu", "encoder-cpu"),
    "seq2seq": ("seq2seq-gpu", "seq2seq-cpu"),
}
# `finetune --task T` without --preset; else finetune-cpu
FINETUNE_PRESET = {"speakers": "speakers-cpu", "tag": "tag-cpu"}


def preset_name(name=None, has_gpu=False, kind=None):
    """The preset meant by `name`: `auto` picks by the hardware, None the default of the model
    family `kind` (the GPT's when None)."""
    if kind is not None and kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    if name in (None, "auto"):
        on_gpu, on_cpu = DEFAULT_PRESET[kind or "gpt"]
        name = on_gpu if has_gpu else on_cpu
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
    return name


def preset(name=None, has_gpu=False, kind=None):
    """The (model config, TrainConfig) of a named preset (see preset_name); a preset of another
    model family than `kind` is refused."""
    name = preset_name(name, has_gpu, kind)
    model, train = PRESETS[name]
    if kind is not None and model.kind != kind:
        presets = ", ".join(n for n, (m, _) in PRESETS.items() if m.kind == kind)
        raise ConfigError(f"preset {name!r} is for the {model.kind} model, not {kind}; {kind} presets: {presets}")
    return model, train


# ---------------------------------------------------------------------------------------------
# Overrides from a TOML file or the command line, by field name.


def _user_fields(cls):
    return [f for f in dataclasses.fields(cls) if f.metadata.get("cli", True)]


@dataclass(frozen=True)
class Setting:
    """One setting as the command line shows it: a model setting may belong to several families
    (its help text is the first family's, its choices those of them all)."""

    name: str
    type: type
    help: str
    choices: tuple | None
    section: str  # "train", or the model families that have it, e.g. "gpt, encoder"


def setting_fields():
    """Every setting a user may set, in declaration order (models first, then training). The help
    of a model setting names the families of each choice that only some of them take
    ("sinusoidal: encoder, seq2seq only")."""
    merged = {}  # name: (the first family's field, {family: its choices})
    for kind, cls in MODEL_KINDS.items():
        for f in _user_fields(cls):
            merged.setdefault(f.name, (f, {}))[1][kind] = f.metadata["choices"] or ()
    model = []
    for f, by_kind in merged.values():
        choices = tuple(dict.fromkeys(c for kind_choices in by_kind.values() for c in kind_choices))
        some = [
            f"{c}: {', '.join(k for k, kind_choices in by_kind.items() if c in kind_choices)} only"
            for c in choices
            if not all(c in kind_choices for kind_choices in by_kind.values())
        ]
        model.append(
            Setting(f.name, f.type, "; ".join([f.metadata["help"], *some]), choices or None, ", ".join(by_kind))
        )
    return model + [
        Setting(setting_name(f), f.type, f.metadata["help"], f.metadata["choices"], "train")
        for f in _user_fields(TrainConfig)
    ]


def apply_overrides(model, train, overrides, source=None):
    """Return new configs with `overrides` ({field name: value}) applied; validates the result.
    `source` is where they come from, for the messages: "command line" (they name the settings
    as its flags), a TOML file's path, or None (from Python)."""
    model_names = {f.name for f in _user_fields(type(model))}
    train_names = {setting_name(f): f.name for f in _user_fields(TrainConfig)}
    other_models = {f.name for cls in MODEL_KINDS.values() for f in _user_fields(cls)}
    by_section = {"model": {}, "train": {}}
    try:
        for name, value in overrides.items():
            if name in model_names:
                by_section["model"][name] = value
            elif name in train_names:
                by_section["train"][train_names[name]] = value
            elif name in other_models:
                raise ConfigError(f"{name} is not a setting of the {model.kind} model")
            else:
                raise ConfigError(f"unknown setting {name!r}")
        chosen = by_section["train"]
        if chosen.get("tokenizer", "bpe") != "bpe" and "bpe_vocab_size" not in chosen:
            chosen["bpe_vocab_size"] = 0  # the size was the BPE's (pairs-cpu's); other tokens have their own
        return (dataclasses.replace(model, **by_section["model"]), dataclasses.replace(train, **chosen))
    except ConfigError as e:
        raise ConfigError(_as_given(str(e), overrides, source)) from None


def _as_given(message, names, source):
    """`message`, about settings of `names` from `source`, in the user's words: on the command line
    a setting is its flag (`max_time` -> `--max-time`); a TOML file's settings keep their names, and
    the message says which file."""
    if source is None:
        return message
    if source != "command line":
        return f"{message} (in {source})"
    # each name as a word of its own: not inside `--vocab-size` or `tokenizer.json`, nor naming a
    # value rather than the setting (`unknown device 'foo'`)
    for name in names:
        message = re.sub(rf"(?<![\w-]){name}(?![\w.-]| ')", flag(name), message)
    return message


def read_toml(path):
    """Settings from a TOML file: `[model]` (with `kind`, the model family) and `[train]` tables,
    or plain top-level keys."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    sections = {
        "model": {"kind", *(f.name for cls in MODEL_KINDS.values() for f in _user_fields(cls))},
        "train": {setting_name(f) for f in _user_fields(TrainConfig)},
    }
    settings = {}
    for key, value in doc.items():
        if key in sections and isinstance(value, dict):
            for name, v in value.items():
                if name not in sections[key]:
                    raise ConfigError(f"unknown setting '{key}.{name}' in {path}")
                settings[name] = v
        else:
            settings[key] = value
    return settings


def to_dict(config):
    return dataclasses.asdict(config)


def model_to_dict(config):
    """A model config as config.json records it: its kind, then its fields."""
    return {"kind": config.kind, **to_dict(config)}


def from_dict(cls, values):
    """Rebuild a config from `config.json`, refusing unknown keys (e.g. from another version). A
    field may be recorded by its setting name: train's `vocab_size`, before it was `bpe_vocab_size`."""
    fields = dataclasses.fields(cls)
    names = {**{setting_name(f): f.name for f in fields}, **{f.name: f.name for f in fields}}
    unknown = set(values) - set(names)
    if unknown:
        raise ConfigError(f"unknown settings {', '.join(sorted(unknown))} (written by another version?)")
    return cls(**{names[key]: value for key, value in values.items()})


def model_from_dict(values):
    """The model config recorded in `config.json`; runs written before model kinds were GPTs."""
    values = dict(values)
    kind = values.pop("kind", "gpt")
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model kind {kind!r} (written by another version?)")
    return from_dict(MODEL_KINDS[kind], values)


def fine_tuning_model(pretrained, chosen):
    """The model config of a fine-tuning of the encoder `pretrained`: its shape, with `chosen`'s
    dropout and pooling, and block_size where positions have no table to outgrow (not learned
    ones), and no head yet (the task gives one)."""
    block_size = pretrained.block_size if pretrained.position == "learned" else chosen.block_size
    return dataclasses.replace(
        pretrained,
        dropout=chosen.dropout,
        block_size=block_size,
        head="mlm",
        num_labels=0,
        labels=(),
        label_words=False,
        pooling=chosen.pooling,
    )
