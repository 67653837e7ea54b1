"""Tokenizers: text <-> integer ids, saved beside the model as `tokenizer.json`.

The lecture's tokenizer is the sorted set of characters of the corpus: `stoi` maps a character to
its index, `itos` maps back. Every tokenizer offers the same small interface, so the data pipeline,
sampling and the run directory do not care which one they hold:

    vocab_size, encode(text) -> list[int], decode(ids) -> str, to_dict(), and
    tokenizer_from_dict(d) to read one back.
"""

import json
from pathlib import Path

import numpy as np

from ..errors import TokenizerError


class CharTokenizer:
    """One token per Unicode character of the training corpus."""

    kind = "char"

    def __init__(self, chars):
        self.chars = list(chars)
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}
        self.itos = dict(enumerate(self.chars))
        if len(self.stoi) != len(self.chars):
            raise TokenizerError("character vocabulary has duplicate entries")

    @classmethod
    def from_text(cls, text):
        return cls(sorted(set(text)))

    @property
    def vocab_size(self):
        return len(self.chars)

    def encode(self, text):
        missing = sorted({ch for ch in text if ch not in self.stoi})
        if missing:
            raise TokenizerError(f"text has characters outside the vocabulary: {_show(missing)}")
        return [self.stoi[ch] for ch in text]

    def decode(self, ids):
        return "".join(self.itos[int(i)] for i in ids)

    def encode_array(self, codepoints):
        """Vectorised encode of a uint32 array of code points (all in the vocabulary) to ids."""
        table = np.zeros(0x110000, dtype=np.uint32)  # code point -> id, for every code point
        table[[ord(ch) for ch in self.chars]] = np.arange(len(self.chars), dtype=np.uint32)
        return table[codepoints]

    def to_dict(self):
        return {"kind": self.kind, "chars": self.chars}


def _show(chars, limit=10):
    shown = ", ".join(repr(ch) for ch in chars[:limit])
    return shown + (f" and {len(chars) - limit} more" if len(chars) > limit else "")


def tokenizer_from_dict(d):
    if not isinstance(d, dict) or d.get("kind") != "char" or not isinstance(d.get("chars"), list):
        raise TokenizerError("unsupported tokenizer description (expected kind 'char' with 'chars')")
    if not all(isinstance(ch, str) and len(ch) == 1 for ch in d["chars"]):
        raise TokenizerError("a character tokenizer's 'chars' must be single characters")
    return CharTokenizer(d["chars"])


def save_tokenizer(tokenizer, path):
    Path(path).write_text(json.dumps(tokenizer.to_dict(), ensure_ascii=False), encoding="utf-8")


def load_tokenizer(path):
    try:
        return tokenizer_from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise TokenizerError(f"cannot read tokenizer {path}: {e}") from None
