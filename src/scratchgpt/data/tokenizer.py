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

Sub-word tokens (byte-level BPE, `--tokenizer bpe`) are `HFTokenizer`s (data/bpe.py) with the same
interface, saved as Hugging Face's own tokenizer.json; `load_tokenizer` reads either format, telling
them apart by their content.
"""

import json
import re
from pathlib import Path

import numpy as np

from ..errors import TokenizerError
from .bpe import HFTokenizer, is_hf_tokenizer, train_bpe

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

    @property
    def text_vocab_size(self):
        """Ids below it are text (characters); the special tokens follow."""
        return len(self.chars)

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

    def pieces(self, ids):
        """One string per id (for labels): its character or its special token."""
        return [self.itos[int(i)] for i in ids]

    def char_counts(self):
        """(V,) the characters each token adds to a text: 1, and 0 for a special token."""
        return np.array([1] * len(self.chars) + [0] * len(self.specials), dtype=np.int64)

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
    def from_pairs(cls, sources, targets, shared=False, vocab_size=None):
        """Vocabularies of the characters of `sources` and `targets` (texts), or one of both if
        `shared`; with `vocab_size`, byte-level BPEs of that many tokens (specials included)."""
        if vocab_size is not None:
            if shared:
                both = train_bpe([*sources, *targets], vocab_size, TRANSLATION_SPECIALS)
                return cls(both, both)
            return cls(
                train_bpe(sources, vocab_size, TRANSLATION_SPECIALS),
                train_bpe(targets, vocab_size, TRANSLATION_SPECIALS),
            )
        if shared:
            both = CharTokenizer(sorted(set("".join(sources)) | set("".join(targets))), TRANSLATION_SPECIALS)
            return cls(both, both)
        return cls(
            CharTokenizer.from_text("".join(sources)).with_specials(TRANSLATION_SPECIALS),
            CharTokenizer.from_text("".join(targets)).with_specials(TRANSLATION_SPECIALS),
        )

    @property
    def shared(self):
        return self.source is self.target

    @property
    def vocab_size(self):
        return self.target.vocab_size

    def to_dict(self):
        return {
            "kind": self.kind,
            "source": self.source.to_dict(),
            "target": self.target.to_dict(),
            "shared": self.shared,
        }


class TextStream:
    """Ids in, text out, for text shown as it is generated: never a broken character.

    A byte-level BPE token may end inside a multi-byte UTF-8 character (an emoji is four bytes,
    often two or more tokens), so decoding token by token would show "\ufffd" where the character
    belongs. The stream decodes the running ids instead and holds back a tail that ends in an
    incomplete character until a later token completes it (Hugging Face's TextStreamer and
    text-generation-inference do the same). Only the ids since the last complete text are decoded
    again, so a long stream costs no more per token than a short one.
    """

    def __init__(self, tokenizer):
        self.tokenizer, self.ids = tokenizer, []
        self.start = self.read = 0  # ids[start:read] decode to text already given out

    def add(self, ids):
        """The text that `ids` (the next tokens) complete: possibly "" while a character is cut."""
        self.ids += [int(i) for i in ids]
        before = self.tokenizer.decode(self.ids[self.start : self.read])
        now = self.tokenizer.decode(self.ids[self.start :])
        if len(now) <= len(before) or now.endswith("\ufffd"):
            return ""  # nothing new, or a character still cut: wait for the next token
        self.start, self.read = self.read, len(self.ids)
        return now[len(before) :]

    def flush(self):
        """What is held back at the end of the stream (a character that was never completed)."""
        before = self.tokenizer.decode(self.ids[self.start : self.read])
        now = self.tokenizer.decode(self.ids[self.start :])
        self.start = self.read = len(self.ids)
        return now[len(before) :]


def tokenizer_from_dict(d):
    if is_hf_tokenizer(d):
        return HFTokenizer.from_dict(d)
    if isinstance(d, dict) and d.get("kind") == "pair":
        if not isinstance(d.get("source"), dict) or not isinstance(d.get("target"), dict):
            raise TokenizerError("a pair tokenizer needs 'source' and 'target' descriptions")
        source = tokenizer_from_dict(d["source"])
        return PairTokenizer(source, source if d.get("shared") else tokenizer_from_dict(d["target"]))
    if not isinstance(d, dict) or d.get("kind") != "char" or not isinstance(d.get("chars"), list):
        raise TokenizerError(
            "unsupported tokenizer description (expected kind 'char' with 'chars', or a Hugging Face tokenizer.json)"
        )
    if not all(isinstance(ch, str) and len(ch) == 1 for ch in d["chars"]):
        raise TokenizerError("a character tokenizer's 'chars' must be single characters")
    specials = d.get("specials", [])
    if specials and list(specials) not in (list(SPECIALS), list(TRANSLATION_SPECIALS)):
        raise TokenizerError(
            f"unsupported special tokens {specials} (expected {list(SPECIALS)} or {list(TRANSLATION_SPECIALS)})"
        )
    return CharTokenizer(d["chars"], specials)


def save_tokenizer(tokenizer, path):
    """Ours as {"kind": ...} JSON; a Hugging Face tokenizer as its standard tokenizer.json."""
    if isinstance(tokenizer, HFTokenizer):
        tokenizer.save(path)
    else:
        Path(path).write_text(json.dumps(tokenizer.to_dict(), ensure_ascii=False), encoding="utf-8")


def load_tokenizer(path):
    """A tokenizer.json of ours (a character or a pair tokenizer) or of Hugging Face (any, GPT-2's
    included), told apart by its content."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TokenizerError(f"cannot read tokenizer {path}: {e}") from None
    if is_hf_tokenizer(d):
        return HFTokenizer.from_file(path)
    return tokenizer_from_dict(d)
