"""The synthetic translation tasks: dates in many forms -> ISO, numbers in digits -> words."""

import datetime
import random
import re
from collections import Counter

import pytest

from scratchgpt.data.dates import FIRST, FORMS, LAST, date_pair
from scratchgpt.data.number_words import number_pair, number_to_words

ALL_DATES = [FIRST + datetime.timedelta(days=i) for i in range((LAST - FIRST).days + 1)]


def window(two_digits):
    """The year of the window 1950..2049 that ends in these two digits."""
    return 1900 + two_digits if two_digits >= 50 else 2000 + two_digits


# ---------------------------------------------------------------------------------------------
# Dates


def test_the_window_is_1950_to_2049():
    assert (FIRST, LAST) == (datetime.date(1950, 1, 1), datetime.date(2049, 12, 31))
    assert len(ALL_DATES) == 36_525


def test_every_form_writes_29_august_1958_as_expected():
    expected = {
        "day_month_year": "29 August 1958",
        "day_mon_year": "29 Aug 1958",
        "month_day_year": "August 29, 1958",
        "mon_day_yy": "Aug 29, 58",
        "mon_day_apostrophe_yy": "Aug 29 '58",
        "weekday_day_month_year": "Friday, 29 August 1958",
        "ordinal_words": "the twenty-ninth of August, 1958",
        "ordinal_month_year": "29th August 1958",
        "month_ordinal_year": "August 29th, 1958",
        "dd/mm/yyyy": "29/08/1958",
        "d/m/yy": "29/8/58",
        "dd.mm.yy": "29.08.58",
        "dd-mm-yyyy": "29-08-1958",
        "d m yyyy": "29 8 1958",
        "dd-mon-yyyy": "29-Aug-1958",
        "iso": "1958-08-29",
    }
    assert {name: form(datetime.date(1958, 8, 29)) for name, form in FORMS.items()} == expected


def test_there_are_at_least_12_forms():
    assert len(FORMS) >= 12


def test_every_string_of_every_form_names_one_date():
    meaning = {}
    for d in ALL_DATES:
        for name, form in FORMS.items():
            source = form(d)
            assert meaning.setdefault(source, d) == d, f"{source!r} ({name}) means {meaning[source]} and {d}"


@pytest.mark.parametrize("name", FORMS)
def test_no_form_puts_a_numeric_month_before_the_day(name):
    """13 February 2031: day 13, month 2, year 2031 or 31 are told apart. Wherever the month is a
    number, the day comes before it, unless a four-digit year leads (ISO)."""
    numbers = [int(x) for x in re.findall(r"\d+", FORMS[name](datetime.date(2031, 2, 13)))]
    if 2 in numbers and numbers[0] != 2031:
        assert 13 in numbers and numbers.index(13) < numbers.index(2), FORMS[name](datetime.date(2031, 2, 13))


@pytest.mark.parametrize("name", FORMS)
def test_a_form_writes_the_year_in_four_digits_or_in_two_of_the_window(name):
    for d in ALL_DATES[::97] + [FIRST, LAST, datetime.date(1999, 12, 31), datetime.date(2000, 1, 1)]:
        source = FORMS[name](d)
        if str(d.year) not in source:
            assert window(int(re.findall(r"\d+", source)[-1])) == d.year, source


@pytest.mark.parametrize(
    "year, two_digits", [(1958, "58"), (2049, "49"), (1950, "50"), (1999, "99"), (2000, "00"), (2007, "07")]
)
def test_two_digit_years_round_trip_through_the_window(year, two_digits):
    assert FORMS["dd.mm.yy"](datetime.date(year, 3, 14)) == f"14.03.{two_digits}"
    assert FORMS["mon_day_apostrophe_yy"](datetime.date(year, 3, 14)) == f"Mar 14 '{two_digits}"
    assert window(int(two_digits)) == year


@pytest.mark.parametrize(
    "day, words, short",
    [
        (1, "first", "1st"),
        (2, "second", "2nd"),
        (3, "third", "3rd"),
        (4, "fourth", "4th"),
        (11, "eleventh", "11th"),
        (12, "twelfth", "12th"),
        (13, "thirteenth", "13th"),
        (20, "twentieth", "20th"),
        (21, "twenty-first", "21st"),
        (22, "twenty-second", "22nd"),
        (23, "twenty-third", "23rd"),
        (30, "thirtieth", "30th"),
        (31, "thirty-first", "31st"),
    ],
)
def test_ordinal_days(day, words, short):
    d = datetime.date(2001, 1, day)
    assert FORMS["ordinal_words"](d) == f"the {words} of January, 2001"
    assert FORMS["ordinal_month_year"](d) == f"{short} January 2001"


def test_month_and_weekday_names_are_english_whatever_the_locale():
    d = datetime.date(2024, 9, 1)  # a Sunday
    assert FORMS["weekday_day_month_year"](d) == "Sunday, 1 September 2024"
    assert FORMS["dd-mon-yyyy"](d) == "01-Sep-2024"


def test_date_pairs_draw_every_form_and_dates_of_the_whole_window():
    rng = random.Random(0)
    pairs = [date_pair(rng) for _ in range(3000)]
    used = Counter()
    for key, source, target in pairs:
        d = datetime.date.fromisoformat(key)
        assert FIRST <= d <= LAST
        assert target == key and re.fullmatch(r"\d{4}-\d{2}-\d{2}", target)
        forms = [name for name, form in FORMS.items() if form(d) == source]
        assert forms, source
        used.update(forms)
    assert set(used) == set(FORMS)
    years = [int(key[:4]) for key, _, _ in pairs]
    assert min(years) < 1955 and max(years) > 2044


def test_date_pairs_are_reproducible_by_seed():
    def draw(seed):
        rng = random.Random(seed)
        return [date_pair(rng) for _ in range(50)]

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)


# ---------------------------------------------------------------------------------------------
# Numbers


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (20, "twenty"),
        (21, "twenty-one"),
        (99, "ninety-nine"),
        (100, "one hundred"),
        (101, "one hundred one"),
        (110, "one hundred ten"),
        (999, "nine hundred ninety-nine"),
        (1000, "one thousand"),
        (1001, "one thousand one"),
        (40213, "forty thousand two hundred thirteen"),
        (100000, "one hundred thousand"),
        (999999, "nine hundred ninety-nine thousand nine hundred ninety-nine"),
    ],
)
def test_number_to_words_known_values(n, words):
    assert number_to_words(n) == words


@pytest.mark.parametrize("n", [-1, 1_000_000])
def test_number_to_words_rejects_numbers_out_of_range(n):
    with pytest.raises(ValueError):
        number_to_words(n)


SMALL = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen".split()
    )
}
DECADES = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)}


def words_to_number(text):
    """An independent reader of the words: strict about hyphens, knows no 'and' and no commas."""
    total = current = 0
    for word in text.split(" "):
        if word == "thousand":
            total, current = current * 1000, 0
        elif word == "hundred":
            current *= 100
        elif "-" in word:
            decade, unit = word.split("-")
            assert 1 <= SMALL[unit] <= 9, text
            current += DECADES[decade] + SMALL[unit]
        else:
            current += SMALL[word] if word in SMALL else DECADES[word]
    return total + current


def test_number_words_read_back_to_the_number():
    for n in [*range(0, 1_000_000, 997), *range(1201), 999_999]:
        assert words_to_number(number_to_words(n)) == n, (n, number_to_words(n))


def test_number_words_are_unique():
    sample = range(0, 1_000_000, 3)
    assert len({number_to_words(n) for n in sample}) == len(sample)


def test_number_pairs_give_every_length_its_share():
    rng = random.Random(0)
    pairs = [number_pair(rng) for _ in range(60_000)]
    lengths = Counter()
    for key, source, target in pairs:
        assert key == source and source.isdigit() and str(int(source)) == source
        assert target == number_to_words(int(source))
        lengths[len(source)] += 1
    assert sorted(lengths) == [1, 2, 3, 4, 5, 6]
    # 10,000 each, sd 91; drawing n from 0..10**d - 1 instead would give 9,000 six-digit and 11,111 one-digit
    assert all(9600 <= count <= 10_400 for count in lengths.values()), lengths
    assert {source for _, source, _ in pairs if len(source) == 1} == set("0123456789")


def test_number_pairs_are_reproducible_by_seed():
    def draw(seed):
        rng = random.Random(seed)
        return [number_pair(rng) for _ in range(50)]

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)
