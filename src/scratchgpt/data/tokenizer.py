"""Tokenizers: text <-> integer ids, saved beside the model as `tokenizer.json`.

The lecture's tokenizer is the sorted set of characters of the corpus: `stoi` maps a character to
its index, `itos` maps back. Every tokenizer offers the same small interface, so the data pipeline,
sampling and the run directory do not care which one they hold:

    vocab_size, encode(text) -> list[int], decode(ids) -> str, to_dict(), and
    tokenizer_from_dict(d) to read one back.

An encoder's tokenizer also has BERT's special tokens, `with_specials()`: ids after the
characters' (so a character has the same id for the GPT and the encoder of one corpus), written
`[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]` in text. With them, a character outside the
vocabulary becomes `[UNK]` instead of an error, and "[MASK]" in a prompt is the mask token.

The encoder-decoder reads one vocabulary and writes another: a `PairTokenizer` holds a source and
a target tokenizer (one and the same with a shared vocabulary), each with the specials of
translation, `[PAD]`, `[UNK]`, `[BOS]` (a target starts with it) and `[EOS]` (and ends with it).
"""

import json
import re
from pathlib import Path

import numpy as np

from ..errors import TokenizerError

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TRANSLATION_SPECIALS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")


class CharTokenizer:
    """One token per Unicode character of the training corpus, then any special tokens."""

    kind = "char"

    def __init__(self, chars, specials=()):
        self.chars = list(chars)
        self.specials = list(specials)
        tokens = self.chars + self.specials
        self.stoi = {token: i for i, token in enumerate(tokens)}
        self.itos = dict(enumerate(tokens))
        if len(self.stoi) != len(tokens):
            raise TokenizerError("the vocabulary has duplicate entries")
        self._special_pattern = re.compile("(" + "|".join(map(re.escape, self.specials)) + ")") if specials else None

    @classmethod
    def from_text(cls, text):
        return cls(sorted(set(text)))

    def with_specials(self, specials=SPECIALS):
        """This vocabulary with special tokens (BERT's by default) added after the characters."""
        return self if self.specials else CharTokenizer(self.chars, specials)

    @property
    def vocab_size(self):
        return len(self.chars) + len(self.specials)

    def special_id(self, token):
        """The id of a special token such as "[MASK]"."""
        if token not in self.specials:
            raise TokenizerError(f"this tokenizer has no {token} token")
        return self.stoi[token]

    def encode(self, text):
        if not self.specials:
            missing = sorted({ch for ch in text if ch not in self.stoi})
            if missing:
                raise TokenizerError(f"text has characters outside the vocabulary: {_show(missing)}")
            return [self.stoi[ch] for ch in text]
        unk = self.stoi["[UNK]"]
        ids = []
        for piece in self._special_pattern.split(text):  # special tokens are odd pieces
            if piece in self.specials:
                ids.append(self.stoi[piece])
            else:
                ids += [self.stoi.get(ch, unk) for ch in piece]
        return ids

    def decode(self, ids):
        return "".join(self.itos[int(i)] for i in ids)

    def encode_array(self, codepoints):
        """Vectorised encode of a uint32 array of code points (characters only) to ids."""
        fill = self.stoi["[UNK]"] if self.specials else 0  # without specials every character is known
        table = np.full(0x110000, fill, dtype=np.uint32)  # code point -> id, for every code point
        table[[ord(ch) for ch in self.chars]] = np.arange(len(self.chars), dtype=np.uint32)
        return table[codepoints]

    def to_dict(self):
        return {"kind": self.kind, "chars": self.chars, **({"specials": self.specials} if self.specials else {})}


def _show(chars, limit=10):
    shown = ", ".join(repr(ch) for ch in chars[:limit])
    return shown + (f" and {len(chars) - limit} more" if len(chars) > limit else "")


class PairTokenizer:
    """The source and the target vocabulary of a translation model; `vocab_size` is the target's."""

    kind = "pair"

    def __init__(self, source, target):
        self.source, self.target = source, target

    @classmethod
    def from_pairs(cls, sources, targets, shared=False):
        """Vocabularies of the characters of `sources` and `targets` (texts), or one of both if `shared`."""
        if shared:
            both = CharTokenizer(sorted(set("".join(sources)) | set("".join(targets))), TRANSLATION_SPECIALS)
            return cls(both, both)
        return cls(CharTokenizer.from_text("".join(sources)).with_specials(TRANSLATION_SPECIALS),
                   CharTokenizer.from_text("".join(targets)).with_specials(TRANSLATION_SPECIALS))

    @property
    def shared(self):
        return self.source is self.target

    @property
    def vocab_size(self):
        return self.target.vocab_size

    def to_dict(self):
        return {"kind": self.kind, "source": self.source.to_dict(), "target": self.target.to_dict(),
                "shared": self.shared}


def tokenizer_from_dict(d):
    if isinstance(d, dict) and d.get("kind") == "pair":
        if not isinstance(d.get("source"), dict) or not isinstance(d.get("target"), dict):
            raise TokenizerError("a pair tokenizer needs 'source' and 'target' descriptions")
        source = tokenizer_from_dict(d["source"])
        return PairTokenizer(source, source if d.get("shared") else tokenizer_from_dict(d["target"]))
    if not isinstance(d, dict) or d.get("kind") != "char" or not isinstance(d.get("chars"), list):
        raise TokenizerError("unsupported tokenizer description (expected kind 'char' with 'chars')")
    if not all(isinstance(ch, str) and len(ch) == 1 for ch in d["chars"]):
        raise TokenizerError("a character tokenizer's 'chars' must be single characters")
    specials = d.get("specials", [])
    if specials and list(specials) not in (list(SPECIALS), list(TRANSLATION_SPECIALS)):
        raise TokenizerError(f"unsupported special tokens {specials} (expected {list(SPECIALS)} or "
                             f"{list(TRANSLATION_SPECIALS)})")
    return CharTokenizer(d["chars"], specials)


def save_tokenizer(tokenizer, path):
    Path(path).write_text(json.dumps(tokenizer.to_dict(), ensure_ascii=False), encoding="utf-8")


def load_tokenizer(path):
    try:
        return tokenizer_from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise TokenizerError(f"cannot read tokenizer {path}: {e}") from None
