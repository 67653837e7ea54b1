"""Text labelled word by word (a part of speech, a named entity): the `tag` task's data.

Two formats, one sentence a TaggedSentence:

    TSV     one sentence a line: `words<TAB>tags`, each side split on spaces, one tag per word
            (the Brown corpus: `The jury said .<TAB>at nn vbd .`); blank lines are skipped
    CoNLL   one word a line: the word first, its tag in the LAST column (columns split on tabs if
            the line has one, else on whitespace: CoNLL-2003's `EU NNP B-NP B-ORG` is `EU`, `B-ORG`),
            a blank line between sentences, `-DOCSTART-` lines skipped

Which one: a .conll, .bio or .iob file is CoNLL; any other is TSV if one of its first 100
non-blank lines has a tab with two or more words before it (a CoNLL line holds one word), else
CoNLL. CoNLL-U (.conllu: an id first, the tags in the middle) is refused rather than misread.
Every problem is a DataError naming the file and the line, and is raised before anything trains.

Sentences are split 80/10/10 into train/val/test by data/labelled.py's seeded shuffle
(SPLIT_SEED), not stratified: `split_tagged` is what the task and any baseline read (the same
file gives the same split on every machine).

A model reads pieces (characters, sub-words), not words: `word_pieces` encodes a sentence word by
word and says which piece stands for each word (its first that is not just a space). `chunks`
reads the entities of BIO/IOB tags (`B-PER I-PER O`) by conlleval's rules.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .labelled import split_groups

CONLL_SUFFIXES = (".conll", ".bio", ".iob")
SNIFF_LINES = 100  # non-blank lines read to tell TSV from CoNLL
_CHUNK_TAG = re.compile(r"[BIES]-.+")


@dataclass(frozen=True)
class TaggedSentence:
    words: tuple  # of str, none empty, none with whitespace inside
    tags: tuple  # of str, one per word
    line: int  # the line of the file it starts on, from 1


def read_tagged(path):
    """The sentences of a TSV or CoNLL file (see the module docstring for which is which)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    if path.suffix.lower() == ".conllu":
        raise DataError(f"{path}: CoNLL-U is not read; write word<TAB>tag lines (the tag you want last)")
    raw = path.read_bytes()
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text") from None
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]  # a byte-order mark
    conll = path.suffix.lower() in CONLL_SUFFIXES or not _looks_like_tsv(lines)
    sentences = _read_conll(path, lines) if conll else _read_tsv(path, lines)
    if not sentences:
        raise DataError(
            f"{path} holds no sentences (expected words<TAB>tags lines, or word<TAB>tag lines "
            f"with a blank line between sentences)"
        )
    return sentences


def _looks_like_tsv(lines):
    seen = 0
    for line in lines:
        if not line.strip() or line.startswith("-DOCSTART-"):
            continue
        if "\t" in line and len(line.split("\t", 1)[0].split()) > 1:
            return True
        seen += 1
        if seen == SNIFF_LINES:
            break
    return False


def _read_tsv(path, lines):
    sentences = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) != 2:
            found = "one column" if len(columns) == 1 else f"{len(columns)} columns"
            raise DataError(f"{path}, line {number}: expected words<TAB>tags, found {found}")
        words, tags = columns[0].split(), columns[1].split()
        if len(words) != len(tags):
            raise DataError(f"{path}, line {number}: {_count(words, 'word')} but {_count(tags, 'tag')}")
        sentences.append(TaggedSentence(tuple(words), tuple(tags), number))
    return sentences


def _count(items, noun):
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _read_conll(path, lines):
    sentences, words, tags, first = [], [], [], 0
    for number, line in enumerate([*lines, ""], start=1):  # a blank line ends the last sentence
        if not line.strip() or line.startswith("-DOCSTART-"):
            if words:
                sentences.append(TaggedSentence(tuple(words), tuple(tags), first))
            words, tags = [], []
            continue
        columns = [c.strip() for c in line.split("\t")] if "\t" in line else line.split()
        if len(columns) < 2:
            raise DataError(
                f"{path}, line {number}: expected a word and its tag (word<TAB>tag, or columns with "
                f"the tag last), found one column"
            )
        word, tag = columns[0], columns[-1]
        if not word or not tag or len(word.split()) != 1 or len(tag.split()) != 1:
            raise DataError(f"{path}, line {number}: a CoNLL line holds one word and one tag, found {line.strip()!r}")
        if not words:
            first = number
        words.append(word)
        tags.append(tag)
    return sentences


def split_tagged(sentences, path):
    """{"train", "val", "test"} lists of sentences: 80/10/10, fixed by SPLIT_SEED (labelled.py)."""
    return split_groups({"all": sentences}, path, "sentences")


def word_pieces(tokenizer, words, cache=None):
    """(ids, firsts): the tokens of `words` joined by single spaces, and for each word the index in
    ids of its first piece that is not just whitespace (the piece that carries its tag).

    The sentence is encoded word by word, a word after the first with its space in front: for
    characters " word" is a space then w, o, r, d (the tag goes on w); a byte-level BPE's
    pre-tokenizer attaches the space to the word (" word" may be one piece). Either way the ids
    are those of encoding the joined text at once (tests/test_tagging.py checks both). `cache`, a
    dict, keeps each word's encoding across calls (a corpus repeats its words)."""
    ids, firsts = [], []
    for i, word in enumerate(words):
        text = word if i == 0 else " " + word
        encoded = cache.get(text) if cache is not None else None
        if encoded is None:
            pieces = tokenizer.encode(text)
            shown = tokenizer.pieces(pieces)
            encoded = pieces, next((k for k, piece in enumerate(shown) if piece.strip()), 0)
            if cache is not None:
                cache[text] = encoded
        firsts.append(len(ids) + encoded[1])
        ids += encoded[0]
    return ids, firsts


def is_chunk_tagging(tags):
    """Whether `tags` (a tag set) are BIO/IOB tags: each `O` or `B-X`, `I-X` (also `E-X`, `S-X`),
    with at least one that is not `O`."""
    return any(t != "O" for t in tags) and all(t == "O" or _CHUNK_TAG.fullmatch(t) for t in tags)


def chunks(tags):
    """[(start, end, type)]: the entities of a sentence's BIO/IOB tags by conlleval's rules (as
    seqeval's default mode), words start..end-1. A chunk starts at B-X or S-X, at I-X or E-X after O
    (or after E, S), and wherever the type changes; it ends before O, B, S or another type, and
    after E or S. A tag of another shape counts as O."""
    found, start, prev, prev_type = [], None, "O", ""
    for i, tag in enumerate([*tags, "O"]):  # the O after the last word ends an open chunk
        prefix, kind = (tag[0], tag[2:]) if _CHUNK_TAG.fullmatch(tag) else ("O", "")
        ends = prev in "ES" or (prev in "BI" and prefix in "BSO") or (prev != "O" and prev_type != kind)
        begins = prefix in "BS" or (prefix in "IE" and prev in "OES") or (prefix != "O" and prev_type != kind)
        if start is not None and ends:
            found.append((start, i, prev_type))
            start = None
        if begins:
            start = i
        prev, prev_type = prefix, kind
    return found
