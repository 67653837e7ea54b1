"""A parallel corpus of real text that needs no download, to try `--task pairs` at the scale of a
Tatoeba export: each line of Tiny Shakespeare's verse (speaker lines such as "ROMEO:" left out)
paired with the same words in reverse order.

    python benchmarks/shakespeare_pairs.py ../shared/data/tinyshakespeare/input.txt reversed.tsv
    scratchgpt train --model seq2seq --task pairs --data reversed.tsv --max-time 600

"To be, or not to be" -> "be to not or be, To": the model must find each word of the source and
write them back to front, over tens of thousands of lines of real English, so the scores say how
the pairs path (reading, splitting, length filter, training, chrF beside copying the source)
behaves at that size. It is not a translation between languages.
"""

import re
import sys
from pathlib import Path

SPEAKER = re.compile(r"^[A-Z][A-Za-z .']*:$")


def pairs(text):
    for line in text.splitlines():
        line = line.strip()
        if line and not SPEAKER.match(line):
            yield line, " ".join(reversed(line.split()))


def main(source, out):
    lines = [f"{s}\t{t}" for s, t in pairs(Path(source).read_text(encoding="utf-8"))]
    Path(out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines):,} pairs written to {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
