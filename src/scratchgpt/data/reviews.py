"""Synthetic restaurant reviews, made up by a seeded generator: data for the lecture's "review
prediction" slide that runs offline. They are not real reviews, and a model that scores them well
has learned this generator's phrasing, not the world's.

A review talks about two to four aspects (food, service, price, the room, the wait), each with a
sentiment from -2 to +2 written as one of a few phrases, between neutral sentences. Its score, 1 to
5 stars, is 3 plus the mean sentiment (rounded, with a little noise); its class is negative (1-2
stars), neutral (3) or positive (4-5).
"""

import random
from pathlib import Path

from ..errors import DataError
from ..files import atomic_write
from .corpus import cache_dir

PHRASES = {
    "food": {
        2: ["the food was outstanding", "every dish was delicious", "the {dish} was the best I have had"],
        1: ["the food was good", "the {dish} was tasty", "the {dish} was nicely done"],
        0: ["the food was fine", "the {dish} was okay", "the food was nothing special"],
        -1: ["the food was bland", "the {dish} was a bit dry", "the {dish} was underseasoned"],
        -2: ["the food was inedible", "the {dish} was awful", "the {dish} was cold and tasteless"],
    },
    "service": {
        2: ["the staff were wonderful", "our waiter was attentive and kind"],
        1: ["the service was friendly", "the staff were helpful"],
        0: ["the service was acceptable", "the staff did their job"],
        -1: ["the service was slow", "our waiter seemed distracted"],
        -2: ["the staff were rude", "the service was a disaster"],
    },
    "price": {
        2: ["it was a bargain", "great value for the money"],
        1: ["prices were fair", "reasonably priced"],
        0: ["prices were what you would expect", "the bill was average"],
        -1: ["a little overpriced", "the bill was steep"],
        -2: ["a total rip-off", "absurdly expensive for what you get"],
    },
    "room": {
        2: ["the room was beautiful", "a lovely, cosy room"],
        1: ["the room was pleasant", "nice decor"],
        0: ["the room was plain", "the decor was ordinary"],
        -1: ["the room was noisy", "the tables were cramped"],
        -2: ["the room was filthy", "it smelled bad inside"],
    },
    "wait": {
        2: ["we were seated at once", "no wait at all"],
        1: ["the wait was short", "we got a table quickly"],
        0: ["we waited a while", "the wait was normal"],
        -1: ["we waited too long", "the wait was annoying"],
        -2: ["we waited over an hour", "the wait was endless"],
    },
}
DISHES = ["pasta", "soup", "steak", "curry", "pizza", "salad", "risotto", "burger", "fish", "dessert"]
FILLER = [
    "We went on a Friday.",
    "We came for a birthday.",
    "It was our first visit.",
    "We had lunch there.",
    "I went with friends.",
    "We were a group of four.",
]
CLASSES = ("negative", "neutral", "positive")


def review(rng):
    """(text, stars 1-5) of one made-up review."""
    aspects = rng.sample(sorted(PHRASES), rng.randint(2, 4))
    sentiments = [rng.randint(-2, 2) for _ in aspects]
    clauses = [rng.choice(PHRASES[a][s]).format(dish=rng.choice(DISHES)) for a, s in zip(aspects, sentiments)]
    sentences = [c[0].upper() + c[1:] + "." for c in clauses]
    if rng.random() < 0.5:
        sentences.insert(0, rng.choice(FILLER))
    stars = round(3 + sum(sentiments) / len(sentiments) + rng.gauss(0, 0.3))
    return " ".join(sentences), min(5, max(1, stars))


def star_class(stars):
    return CLASSES[0] if stars <= 2 else CLASSES[1] if stars == 3 else CLASSES[2]


def write_reviews(path, n=2000, seed=0, classes=False):
    """Write n synthetic reviews as a TSV, `text<TAB>stars` (or `text<TAB>class` with classes=True)."""
    rng = random.Random(seed)
    lines = ["text\tclass" if classes else "text\tstars"]
    for _ in range(n):
        text, stars = review(rng)
        lines.append(f"{text}\t{star_class(stars) if classes else stars}")
    atomic_write(path, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8"))
    return path


def default_reviews(classes):
    """The path of the built-in synthetic reviews (2,000, seed 0), written once into the cache."""
    dest = cache_dir() / "reviews" / f"synthetic-{'classes' if classes else 'stars'}.tsv"
    if not dest.is_file():
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_reviews(dest, classes=classes)
        except OSError as e:
            raise DataError(f"cannot write {dest} ({e.strerror}); set SCRATCHGPT_CACHE to a writable folder") from None
    return dest
