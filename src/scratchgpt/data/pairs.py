"""Parallel text: pairs of a source and its target, the encoder-decoder's data.

The user's pairs come as a TSV file, `source<TAB>target` a line (further columns are ignored: the
Tatoeba and Anki exports have a licence column), or as two aligned files, line n of one
translating line n of the other. Files are read line by line, any UTF-8. A malformed line (no
tab, an empty side) is skipped and counted, or with `strict` is an error naming the file and line.

The built-in pairs are generated (GENERATORS): dates (dates.py), numbers (number_words.py), and the
sanity checks copy and reverse (a random lowercase string -> itself, or itself backwards). Each
generated pair has a key, what it is about (the date, the number, the string); a pair of the user's
is keyed by its source.

Splits are by key, so a source (or date, or number) never appears in two splits: a key hashes,
salted with SPLIT_SEED, to one of ten buckets: 0 is validation, 1 test, the rest training.
"""

import hashlib
import itertools
import random
from pathlib import Path

from ..errors import DataError
from .dates import date_pair
from .number_words import number_pair

SPLIT_SEED = 1234
SPLITS = ("train", "val", "test")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def split_of(key):
    """ "train", "val" or "test": where the pairs of `key` belong, the same on every machine."""
    bucket = hashlib.blake2b(f"{SPLIT_SEED}:{key}".encode(), digest_size=8).digest()[0] % 10
    return "val" if bucket == 0 else "test" if bucket == 1 else "train"


def copy_pair(rng, max_length=20):
    """(key, source, target): a random string of 1..max_length lowercase letters, and itself."""
    text = "".join(rng.choices(LETTERS, k=rng.randint(1, max_length)))
    return text, text, text


def reverse_pair(rng, max_length=20):
    """(key, source, target): a random string of 1..max_length lowercase letters, and itself reversed."""
    text = "".join(rng.choices(LETTERS, k=rng.randint(1, max_length)))
    return text, text, text[::-1]


GENERATORS = {"dates": date_pair, "numbers": number_pair, "copy": copy_pair, "reverse": reverse_pair}


def generate(name, split, n, rng):
    """n pairs (source, target) of generator `name` whose keys fall in `split`, drawn with rng (a
    random.Random); repeats allowed."""
    draw, pairs = GENERATORS[name], []
    while len(pairs) < n:
        key, source, target = draw(rng)
        if split_of(key) == split:
            pairs.append((source, target))
    return pairs


def generate_distinct(name, split, n, seed):
    """n pairs of `split` with n different sources, the same for a given seed: a fixed val or test set."""
    rng, seen, pairs = random.Random(seed), set(), []
    while len(pairs) < n:
        for source, target in generate(name, split, n - len(pairs), rng):
            if source not in seen:
                seen.add(source)
                pairs.append((source, target))
    return pairs


class Skipped:
    """The lines a reader skipped, by reason, with the first line of each (for the log)."""

    def __init__(self):
        self.counts, self.first = {}, {}

    def add(self, reason, where, strict):
        if strict:
            raise DataError(f"{where}: {reason} (without --strict such lines are skipped and counted)")
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.first.setdefault(reason, where)

    def __str__(self):  # a reason counts "lines ...": one is "1 line ..."
        return "; ".join(
            f"{n:,} {reason.replace('lines', 'line', 1) if n == 1 else reason} (first: {self.first[reason]})"
            for reason, n in self.counts.items()
        )


def read_pairs(paths, strict=False):
    """(pairs [(source, target)], Skipped) from a TSV file or two aligned files (a list of 1 or 2 paths)."""
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise DataError(f"data path is not a file: {path}" if path.exists() else f"data file not found: {path}")
    skipped, pairs = Skipped(), []
    try:
        if len(paths) == 1:
            _read_tsv(paths[0], pairs, skipped, strict)
        else:
            _read_aligned(*paths, pairs, skipped, strict)
    except UnicodeDecodeError as e:
        raise DataError(f"{' or '.join(map(str, paths))} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not pairs:
        raise DataError(
            f"{' and '.join(map(str, paths))}: no pairs to train on"
            + (f" ({skipped})" if skipped.counts else " (the file is empty)")
        )
    return pairs, skipped


def _read_tsv(path, pairs, skipped, strict):
    with open(path, encoding="utf-8", newline="") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue  # a blank line
            columns = line.split("\t")
            if len(columns) < 2:
                skipped.add("lines without a tab", f"{path}, line {number}", strict)
            elif not columns[0].strip() or not columns[1].strip():
                skipped.add("lines with an empty side", f"{path}, line {number}", strict)
            else:
                pairs.append((columns[0].strip(), columns[1].strip()))


def _read_aligned(source_path, target_path, pairs, skipped, strict):
    with open(source_path, encoding="utf-8") as sources, open(target_path, encoding="utf-8") as targets:
        for number, (source, target) in enumerate(itertools.zip_longest(sources, targets), start=1):
            if source is None or target is None:
                raise DataError(
                    f"{source_path} and {target_path} are not aligned: "
                    f"{target_path if source is None else source_path} has more lines (from line {number})"
                )
            source, target = source.strip(), target.strip()
            if not source and not target:
                continue  # a blank line on both sides
            if not source or not target:
                skipped.add("lines with an empty side", f"{source_path} and {target_path}, line {number}", strict)
            else:
                pairs.append((source, target))
