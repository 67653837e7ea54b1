"""Labelled text of the user's: a TSV or CSV file of `text<TAB>label` (classification) or
`text<TAB>score` (regression), one example a line.

The delimiter follows the file's suffix (.csv: a comma, anything else: a tab); quoting is CSV's, so
a comma inside a quoted text is fine. A first line whose first column is `text` is a header.
Columns after the second are ignored. Every problem is a DataError naming the file and the line.
Examples are split 80/10/10 into train/val/test, by a fixed seed, stratified by label when they
are classes (so every class of val and test is in train).
"""

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

SPLIT_SEED = 1234


@dataclass(frozen=True)
class Example:
    text: str
    target: object  # the label (a str) or the score (a float)
    line: int  # in the file, from 1


def read_labelled(path, regression):
    """The examples of a TSV/CSV file; scores are floats when `regression`, labels strings otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    examples = []
    try:
        with open(path, encoding="utf-8", newline="") as f:
            for line, row in enumerate(csv.reader(f, delimiter=delimiter), start=1):
                if line == 1 and row and row[0].strip().lower() == "text":
                    continue  # a header
                if not row or not "".join(row).strip():
                    continue  # a blank line
                examples.append(_example(path, line, row, regression, delimiter))
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text") from None
    except csv.Error as e:
        raise DataError(f"{path} is not a readable {'CSV' if delimiter == ',' else 'TSV'} file: {e}") from None
    if not examples:
        raise DataError(f"{path} holds no examples (expected text{_show(delimiter)}label lines)")
    return examples


def _show(delimiter):
    return "<TAB>" if delimiter == "\t" else ","


def _example(path, line, row, regression, delimiter):
    if len(row) < 2:
        raise DataError(
            f"{path}, line {line}: expected text{_show(delimiter)}"
            f"{'score' if regression else 'label'}, found one column"
        )
    text, target = row[0].strip(), row[1].strip()
    if not text:
        raise DataError(f"{path}, line {line}: the text is empty")
    if not target:
        raise DataError(f"{path}, line {line}: the {'score' if regression else 'label'} is empty")
    if regression:
        try:
            target = float(target)
        except ValueError:
            raise DataError(f"{path}, line {line}: the score {target!r} is not a number") from None
    return Example(text, target, line)


def split_examples(examples, regression, path):
    """{"train", "val", "test"} lists of examples, 80/10/10, fixed by SPLIT_SEED, stratified by label
    for classes; a classification needs two classes at least."""
    groups = {}
    for example in examples:
        groups.setdefault("all" if regression else example.target, []).append(example)
    if not regression and len(groups) < 2:
        raise DataError(f"{path} has one class only ({next(iter(groups))!r}); classification needs two or more")
    return split_groups(groups, path)


def split_groups(groups, path, what="examples"):
    """{"train", "val", "test"}: 10% of each group (by a shuffle fixed by SPLIT_SEED) to test, 10% to
    val, the rest to train, groups taken in sorted order; `what` names the items in the error."""
    rng = random.Random(SPLIT_SEED)
    splits = {"train": [], "val": [], "test": []}
    for key in sorted(groups):
        group = groups[key][:]
        rng.shuffle(group)
        n = round(0.1 * len(group))
        splits["test"] += group[:n]
        splits["val"] += group[n : 2 * n]
        splits["train"] += group[2 * n :]
    if not splits["val"] or not splits["test"]:
        total = sum(map(len, groups.values()))
        raise DataError(f"{path} has too few {what} ({total}) for a train/val/test split of 80/10/10")
    return splits
