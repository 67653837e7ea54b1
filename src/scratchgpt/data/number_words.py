"""Synthetic data for the translation task "numbers": an integer 0 <= n < 1,000,000 in digits ->
the same number in English words, 40213 -> "forty thousand two hundred thirteen".

The words are American style: no "and", no commas, compounds from 21 to 99 hyphenated
("ninety-nine"). To give every length of number its share, a pair draws the number of digits
uniformly from 1 to 6, then the number uniformly among the numbers of that many digits (0 to 9 for
one digit): a uniform draw from 0..999,999 would be six digits nine times in ten.
"""

ONES = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")  # TENS[4] is 40
LIMIT = 1_000_000  # numbers are below it


def _below_hundred(n):
    """1 <= n < 100 in words: 'thirteen', 'forty', 'forty-two'."""
    if n < 20:
        return ONES[n]
    tens, unit = divmod(n, 10)
    return TENS[tens] + (f"-{ONES[unit]}" if unit else "")


def _below_thousand(n):
    """1 <= n < 1000 in words: 'two hundred thirteen'."""
    hundreds, rest = divmod(n, 100)
    words = [f"{ONES[hundreds]} hundred"] if hundreds else []
    if rest:
        words.append(_below_hundred(rest))
    return " ".join(words)


def number_to_words(n):
    """0 <= n < 1,000,000 in English words; ValueError for anything else."""
    if not 0 <= n < LIMIT:
        raise ValueError(f"number_to_words takes 0 <= n < {LIMIT:,}, not {n}")
    if n == 0:
        return "zero"
    thousands, rest = divmod(n, 1000)
    words = [f"{_below_thousand(thousands)} thousand"] if thousands else []
    if rest:
        words.append(_below_thousand(rest))
    return " ".join(words)


def number_pair(rng):
    """(key, source, target) of a random number: key and source are its digits, target its words.
    `rng` is a random.Random."""
    digits = rng.randint(1, 6)
    n = rng.randrange(10 ** (digits - 1) if digits > 1 else 0, 10**digits)
    return str(n), str(n), number_to_words(n)
