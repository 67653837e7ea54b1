"""Synthetic data for the translation task "dates": a date written in one of many surface forms
("29 August 1958", "Aug 29 '58", "29.08.58", "the twenty-ninth of August, 1958", ...) -> the same
date in ISO form, 1958-08-29.

Dates are drawn uniformly from FIRST to LAST, 1950-01-01 to 2049-12-31. A two-digit year means the
year of that window: 50..99 are 1950..1999 and 00..49 are 2000..2049.

Every form writes the day, the month and the year, so each of its strings names exactly one date.
Numeric forms put the day first (29/08/1958), never the month (no 08/29/1958), and the one form
that leads with the year, ISO, writes all four of its digits. No two forms write the same string
for two different dates either, so every source has one right answer.
"""

import datetime

FIRST = datetime.date(1950, 1, 1)
LAST = datetime.date(2049, 12, 31)

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")  # date.weekday() order
_FIRST_NINETEEN = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
)
ORDINAL_WORDS = (
    *_FIRST_NINETEEN,
    "twentieth",
    *(f"twenty-{w}" for w in _FIRST_NINETEEN[:9]),
    "thirtieth",
    "thirty-first",
)  # ORDINAL_WORDS[d - 1] is day d written out


def month_name(d):
    """'August'."""
    return MONTHS[d.month - 1]


def month_abbr(d):
    """'Aug'."""
    return MONTHS[d.month - 1][:3]


def short_year(d):
    """The year's last two digits, '58' for 1958 and '07' for 2007 (the window makes them unique)."""
    return f"{d.year % 100:02d}"


def ordinal(day):
    """'1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', ..."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


# Each form with what it makes of Friday 29 August 1958.
FORMS = {
    "day_month_year": lambda d: f"{d.day} {month_name(d)} {d.year}",  # 29 August 1958
    "day_mon_year": lambda d: f"{d.day} {month_abbr(d)} {d.year}",  # 29 Aug 1958
    "month_day_year": lambda d: f"{month_name(d)} {d.day}, {d.year}",  # August 29, 1958
    "mon_day_yy": lambda d: f"{month_abbr(d)} {d.day}, {short_year(d)}",  # Aug 29, 58
    "mon_day_apostrophe_yy": lambda d: f"{month_abbr(d)} {d.day} '{short_year(d)}",  # Aug 29 '58
    "weekday_day_month_year": lambda d: f"{WEEKDAYS[d.weekday()]}, {d.day} {month_name(d)} {d.year}",
    "ordinal_words": lambda d: f"the {ORDINAL_WORDS[d.day - 1]} of {month_name(d)}, {d.year}",
    "ordinal_month_year": lambda d: f"{ordinal(d.day)} {month_name(d)} {d.year}",  # 29th August 1958
    "month_ordinal_year": lambda d: f"{month_name(d)} {ordinal(d.day)}, {d.year}",  # August 29th, 1958
    "dd/mm/yyyy": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",  # 29/08/1958
    "d/m/yy": lambda d: f"{d.day}/{d.month}/{short_year(d)}",  # 29/8/58
    "dd.mm.yy": lambda d: f"{d.day:02d}.{d.month:02d}.{short_year(d)}",  # 29.08.58
    "dd-mm-yyyy": lambda d: f"{d.day:02d}-{d.month:02d}-{d.year}",  # 29-08-1958
    "d m yyyy": lambda d: f"{d.day} {d.month} {d.year}",  # 29 8 1958
    "dd-mon-yyyy": lambda d: f"{d.day:02d}-{month_abbr(d)}-{d.year}",  # 29-Aug-1958
    "iso": lambda d: d.isoformat(),  # 1958-08-29
}


def date_pair(rng):
    """(key, source, target) of a random date: key and target are its ISO form, source is the date
    written in a form chosen uniformly from FORMS. `rng` is a random.Random."""
    d = FIRST + datetime.timedelta(days=rng.randrange((LAST - FIRST).days + 1))
    source = FORMS[rng.choice(list(FORMS))](d)
    return d.isoformat(), source, d.isoformat()
