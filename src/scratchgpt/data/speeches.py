"""Tiny Shakespeare as speeches: the built-in fine-tuning data of the encoder, and the text it is
pretrained on without them.

The play's text is a sequence of speeches: a line `NAME:`, the lines spoken, a blank line. From
them come two tasks that need no download:

- **who speaks?** each speech of the 8 most frequent speakers (SPEAKERS, 1,288 speeches) labelled
  with its speaker;
- **names in speech**: every character of a speech marked 1 if it belongs to a word naming one of
  the play's speakers ("Romeo" in Juliet's lines), else 0.

Every speech belongs to one split, train, val or test, fixed by SPLIT_SEED and stratified by
speaker (10% val, 10% test of each speaker's speeches). The encoder's default pretraining text is
the play without its val and test speeches (`pretraining_text`), so that no speech a fine-tuned
model is scored on was seen in pretraining.
"""

import random
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..files import atomic_write
from .corpus import cache_dir, read_text, tiny_shakespeare

SPEAKERS = (
    "GLOUCESTER",
    "DUKE VINCENTIO",
    "MENENIUS",
    "ROMEO",
    "PETRUCHIO",
    "CORIOLANUS",
    "KING RICHARD III",
    "ISABELLA",
)
SPLIT_SEED = 1234
HELD_OUT = 0.1  # of each speaker's speeches, for val and for test each
# Words of the speakers' names that are titles, roles, numerals or everyday words, not names.
NOT_NAMES = {
    "ALL",
    "ANOTHER",
    "ARCHBISHOP",
    "BISHOP",
    "CARDINAL",
    "DUCHESS",
    "DUKE",
    "EARL",
    "FRIAR",
    "GARDENER",
    "GENTLEMEN",
    "II",
    "III",
    "IV",
    "VI",
    "XI",
    "KING",
    "LADY",
    "LORD",
    "LORDS",
    "MISTRESS",
    "NURSE",
    "OF",
    "PAGE",
    "PRINCE",
    "QUEEN",
    "SERVING-MEN",
    "SIR",
    "GREEN",
    "ELBOW",
    "FROTH",
    "SLY",
    "BLUNT",
    "RIVERS",
    "BUSHY",
    "OVERDONE",
    "GREY",
}
_SPEECH = re.compile(r"(?:^|\n\n)([A-Za-z][^\n]*):\n(.+?)(?=\n\n|\n*\Z)", re.S)
_WORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class Speech:
    speaker: str
    text: str  # the lines spoken, without the NAME: line
    start: int  # offset of `text` in the play
    split: str  # "train", "val" or "test"


def speeches(play):
    """Every speech of the play, in order, each with its split."""
    found = [(m.group(1), m.group(2), m.start(2)) for m in _SPEECH.finditer(play)]
    by_speaker = {}
    for i, (speaker, _, _) in enumerate(found):
        by_speaker.setdefault(speaker, []).append(i)
    split = ["train"] * len(found)
    for speaker, indices in sorted(by_speaker.items()):
        rng = random.Random(f"{SPLIT_SEED}-{speaker}")
        shuffled = indices[:]
        rng.shuffle(shuffled)
        n = round(HELD_OUT * len(shuffled))
        for i in shuffled[:n]:
            split[i] = "test"
        for i in shuffled[n : 2 * n]:
            split[i] = "val"
    return [Speech(speaker, text, start, split[i]) for i, (speaker, text, start) in enumerate(found)]


def speaker_examples(all_speeches, split):
    """[(text, label index in SPEAKERS)] of the split's speeches by SPEAKERS."""
    return [(s.text, SPEAKERS.index(s.speaker)) for s in all_speeches if s.split == split and s.speaker in SPEAKERS]


def name_words(all_speeches):
    """The words that name the play's speakers, as they are written in speech ("Romeo")."""
    return {
        w.capitalize()
        for s in all_speeches
        if s.speaker.isupper()
        for w in s.speaker.split()
        if w not in NOT_NAMES and len(w) > 2
    }


def name_labels(text, names):
    """One label per character of `text`: 1 inside a word of `names`, else 0."""
    labels = [0] * len(text)
    for m in _WORD.finditer(text):
        if m.group() in names:
            labels[m.start() : m.end()] = [1] * (m.end() - m.start())
    return labels


def name_examples(all_speeches, split):
    """[(text, per-character labels)] of the split's speeches."""
    names = name_words(all_speeches)
    return [(s.text, name_labels(s.text, names)) for s in all_speeches if s.split == split]


def pretraining_text(play):
    """The play without its val and test speeches (their NAME: lines and the blank line before go too)."""
    held_out = {s.start for s in speeches(play) if s.split != "train"}
    kept, last = [], 0
    for m in _SPEECH.finditer(play):
        if m.start(2) in held_out:
            kept.append(play[last : m.start()])
            last = m.end()
    kept.append(play[last:])
    return "".join(kept)


def pretraining_corpus():
    """The path of `pretraining_text` of Tiny Shakespeare, written once into the cache."""
    play, sha = read_text(tiny_shakespeare())
    dest = cache_dir() / "tinyshakespeare" / f"pretraining-{sha[:12]}.txt"
    if not dest.is_file():
        text = pretraining_text(play)
        try:
            atomic_write(dest, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        except OSError as e:
            raise DataError(f"cannot write {dest} ({e.strerror}); set SCRATCHGPT_CACHE to a writable folder") from None
    return dest
