"""Sub-word tokens: byte-level BPE, trained and saved with Hugging Face `tokenizers`.

Characters are a poor unit for most text: a model of characters spends its context and its steps
on spelling. Byte-pair encoding (Sennrich et al. 2016; GPT-2's byte-level form) starts from the
256 byte values, so any text can be encoded and nothing is ever unknown, then merges the most
frequent adjacent pair into a new token, again and again, until the vocabulary has the size asked
for. "First Citizen" becomes a few tokens instead of thirteen.

We use the engine everybody uses, Hugging Face `tokenizers` (the optional `hf` extra), and its file
format: `tokenizer.json` in a run directory is the standard one that `tokenizers.Tokenizer.from_file`
and `transformers.PreTrainedTokenizerFast(tokenizer_file=...)` load, and any such file (GPT-2's
included) loads here with `HFTokenizer.from_file`.

`HFTokenizer` wraps a `tokenizers.Tokenizer` behind the interface of `CharTokenizer` (kind,
vocab_size, encode, decode, special_id, with_specials, to_dict, ...), so the data pipeline, the
tasks, sampling and the run directory do not care which one they hold. Special tokens (the
encoder's `[PAD] [UNK] [CLS] [SEP] [MASK]`, translation's `[PAD] [UNK] [BOS] [EOS]`) come after the
sub-words, as they come after the characters of a `CharTokenizer`.

`train_bpe(texts, vocab_size)` trains one: GPT-2's pre-tokenizer (words, numbers, punctuation and
runs of spaces are never merged across), the byte alphabet, merges of pairs seen at least twice.
`texts` is any iterable of strings, so a corpus streams through in pieces (data/corpus.py cuts
them where the pre-tokenizer cuts anyway, so the pieces train and encode exactly as the whole).
"""

import hashlib
import json
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import ConfigError, MissingExtra, TokenizerError

BYTES = 256  # the byte alphabet: every byte-level BPE vocabulary holds these tokens first
DEFAULT_VOCAB_SIZE = 1024  # --tokenizer bpe without --vocab-size
EXTRA = "pip install 'scratchgpt[hf]'"


def tokenizers():
    """The `tokenizers` package, or a one-line error naming the extra that installs it."""
    try:
        import tokenizers as tk
    except ImportError:
        raise MissingExtra(f"sub-word tokenizers need Hugging Face tokenizers: {EXTRA}") from None
    return tk


def check_vocab_size(vocab_size, specials=()):
    """A one-line error when `vocab_size` cannot hold the byte alphabet and the special tokens."""
    least = BYTES + len(specials)
    if vocab_size < least:
        extra = f" + {len(specials)} special tokens" if specials else ""
        raise ConfigError(
            f"--vocab-size {vocab_size} is smaller than the byte alphabet: byte-level BPE "
            f"needs at least {least} tokens ({BYTES} bytes{extra})"
        )


def train_bpe(texts, vocab_size, specials=(), min_frequency=2, length=None):
    """A byte-level BPE of `vocab_size` tokens in all, trained on `texts` (an iterable of strings),
    with `specials` as its last ids. Fewer tokens when the texts have too few pairs seen
    `min_frequency` times. `length` (the number of texts, if known) only feeds a progress estimate."""
    check_vocab_size(vocab_size, specials)
    tk = tokenizers()
    tokenizer = tk.Tokenizer(tk.models.BPE())
    tokenizer.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=vocab_size - len(specials),
        min_frequency=min_frequency,
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer, length=length)
    return HFTokenizer(tokenizer).with_specials(specials)


def _byte_decoder():
    """GPT-2's byte-level alphabet, backwards: the printable character that stands for each byte
    in a token's string ('Ġ' for a space) -> that byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, n = list(printable), 0
    for b in range(BYTES):
        if b not in printable:
            printable.append(b)
            chars.append(BYTES + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


class HFTokenizer:
    """A Hugging Face `tokenizers.Tokenizer` with the interface of our CharTokenizer."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer  # a tokenizers.Tokenizer

    @property
    def kind(self):
        """ "bpe" (ours, GPT-2's), else the Hugging Face model's type: "wordpiece", "unigram", ..."""
        return str(self._json.get("model", {}).get("type", "bpe")).lower()

    @classmethod
    def from_file(cls, path):
        """Any Hugging Face tokenizer.json (GPT-2's, or one of ours)."""
        tk = tokenizers()
        try:
            return cls(tk.Tokenizer.from_file(str(path)))
        except Exception as e:  # noqa: BLE001 (tokenizers raises plain Exceptions for files it cannot parse)
            raise TokenizerError(f"cannot read the Hugging Face tokenizer {path}: {_first_line(e)}") from None

    @classmethod
    def from_dict(cls, d):
        tk = tokenizers()
        try:
            return cls(tk.Tokenizer.from_str(json.dumps(d)))
        except Exception as e:  # noqa: BLE001 (as above)
            raise TokenizerError(f"cannot read a Hugging Face tokenizer: {_first_line(e)}") from None

    # -- what the rest of scratchgpt asks of a tokenizer ------------------------------------------

    @cached_property
    def _json(self):
        return json.loads(self.tokenizer.to_str())

    @cached_property
    def _added(self):
        """{id: (content, special)} of the added tokens."""
        return {t["id"]: (t["content"], t.get("special", False)) for t in self._json.get("added_tokens", [])}

    @cached_property  # the wrapped tokenizer never changes: with_specials makes a new one
    def vocab_size(self):
        ids = [*self.tokenizer.get_vocab(with_added_tokens=True).values()]
        return max(ids) + 1 if ids else 0  # the rows of the embedding table (ids may have holes)

    @cached_property
    def specials(self):
        """The special tokens, in id order."""
        return [content for _, (content, special) in sorted(self._added.items()) if special]

    @cached_property
    def text_vocab_size(self):
        """Ids below it are text (sub-words); the special tokens at the end of the vocabulary follow."""
        special_ids = {i for i, (_, special) in self._added.items() if special}
        n = self.vocab_size
        while n - 1 in special_ids:
            n -= 1
        return n

    @cached_property
    def byte_level(self):
        """Whether tokens are strings of GPT-2's byte alphabet (and so may end inside a character)."""
        decoder = self._json.get("decoder") or {}
        kinds = [decoder.get("type")] + [d.get("type") for d in decoder.get("decoders", [])]
        return "ByteLevel" in kinds

    def special_id(self, token):
        """The id of a special token such as "[MASK]"."""
        if token not in self.specials:
            raise TokenizerError(f"this tokenizer has no {token} token")
        return self.tokenizer.token_to_id(token)

    def with_specials(self, specials):
        """This vocabulary with the special tokens it lacks added after the last id."""
        missing = [s for s in specials if s not in self.specials]
        if not missing:
            return self
        copy = tokenizers().Tokenizer.from_str(self.tokenizer.to_str())
        copy.add_special_tokens(missing)
        return HFTokenizer(copy)

    def base(self):
        """This vocabulary without the special tokens at its end: what a corpus is encoded with, so
        that the GPT and the encoder of one text share its token file."""
        n = self.text_vocab_size
        if n == self.vocab_size:
            return self
        d = dict(self._json)
        d["added_tokens"] = [t for t in d.get("added_tokens", []) if t["id"] < n]
        return HFTokenizer.from_dict(d)

    def encode(self, text):
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts):
        return [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids):
        """The text of `ids`, special tokens written out; a character cut by the ends of `ids` is "\ufffd"."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    def pieces(self, ids):
        """One readable string per id (for labels): its text, or, for a byte-level token that holds
        only part of a character, its bytes written as \\xNN."""
        out = []
        for i in ids:
            i = int(i)
            if i in self._added or not self.byte_level:
                out.append(self.decode([i]))
            else:
                raw = self._bytes(i)
                out.append(raw.decode("utf-8", errors="backslashreplace"))
        return out

    def _bytes(self, i):
        token = self.tokenizer.id_to_token(i)
        table = _BYTE_DECODER
        return bytes(table[c] for c in token) if all(c in table for c in token) else token.encode()

    def char_counts(self):
        """(V,) the characters each token adds to a text: for byte-level tokens the characters that
        begin in its bytes (so counts over any run of tokens add up exactly), 0 for special tokens."""
        counts = np.zeros(self.vocab_size, dtype=np.int64)
        for i in self.tokenizer.get_vocab(with_added_tokens=True).values():
            if i in self._added:
                content, special = self._added[i]
                counts[i] = 0 if special else len(content)
            elif self.byte_level:
                counts[i] = sum((b & 0xC0) != 0x80 for b in self._bytes(i))  # not a UTF-8 continuation byte
            else:
                counts[i] = len(self.decode([i]))
        return counts

    @property
    def identity(self):
        """A hash of the whole tokenizer: token files are cached by it."""
        return hashlib.sha256(self.tokenizer.to_str().encode()).hexdigest()

    def to_dict(self):
        return self._json

    def save(self, path):
        """The standard Hugging Face tokenizer.json."""
        Path(path).write_text(self.tokenizer.to_str(), encoding="utf-8")


_BYTE_DECODER = _byte_decoder()


def is_hf_tokenizer(d):
    """Whether a parsed tokenizer.json is a Hugging Face one (rather than one of ours, with a 'kind')."""
    return isinstance(d, dict) and "kind" not in d and isinstance(d.get("model"), dict)


def _first_line(e):
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
