"""Time in a question -> the dates to search: `timeframe(question, reference)`.

"in October 2023", "2023", "before/after/since/until <date>", "between X and Y",
"today / yesterday / this week / last month / past 3 days" become a date range;
"latest / most recent / newest" a preference for the newest articles. Relative
words count from `reference`: the newest article's day in the index (a news
archive's "this week" is its last week), or today (setting `time_reference`).

Pure: text and a date in, a `Timeframe` (or None) out. A day named on its own
("on October 31, 2023") is not a range: retrieval already lifts that day's
articles (rag/retrieve.py), and a multi-part question often names several.

Words that only look like time do not count: month names that are also verbs or
names ("may", "March") count only capitalised, after a preposition or before a
year; a year only as a whole number of 1900-2099 not inside another number,
amount or date ("$2023", "2023-24", "12,2023").
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace
from datetime import date, timedelta

MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip

# A month as written before a day or a year: full name or abbreviation ("Oct.", "Sept").
# "may" and "march" are verbs too: as months they are written capitalised.
_MONTH = (
    r"(?:"
    + "|".join(f"{m[:3]}(?:{m[3:]}|\\.)?" for m in MONTHS if m not in ("may", "march"))
    + r"|sept\.?|(?-i:May|Mar(?:ch|\.)?))"
)
# A month on its own: the full name, capitalised ("in May", never "may").
_BARE_MONTH = r"(?-i:" + "|".join(m.capitalize() for m in MONTHS) + r")"
_YEAR = r"(?<![\w$£€.,/-])(?:19|20)\d\d(?![\w%]|[.,/-]\d|\s*(?:%|percent|per\s+cent))"
_ORD = r"(?:st|nd|rd|th)?"
_DAY_FORMS = (
    _MONTH + r"\s+\d{1,2}" + _ORD + r",?\s+\d{4}\b",  # October 31, 2023
    r"\b\d{1,2}" + _ORD + r"\s+(?:of\s+)?" + _MONTH + r",?\s+\d{4}\b",  # 31 October 2023
    r"\b\d{4}-\d{2}-\d{2}\b",  # 2023-10-31
)
_DAY = r"(?:" + "|".join(_DAY_FORMS) + r")"
_MONTH_YEAR = r"(?:" + _MONTH + r",?\s+(?:of\s+)?\d{4}\b|\b\d{4}-\d{2}(?![-\d]))"
# A point in time, most specific first: a day, a month of a year, a month, a year.
_POINT = rf"(?:{_DAY}|{_MONTH_YEAR}|{_YEAR}|\b{_BARE_MONTH}\b)"

_RANGE = re.compile(
    rf"\b(?:between|from)\s+(?:the\s+start\s+of\s+)?(?P<a>{_POINT})\s+(?:and|to|until|till|through)\s+(?:the\s+end\s+of\s+)?(?P<b>{_POINT})",
    re.I,
)
_BOUND = re.compile(
    rf"\b(?P<word>before|prior\s+to|earlier\s+than|until|till|up\s+to|through|after|later\s+than|since)\s+(?:the\s+(?:start|end)\s+of\s+)?(?P<a>{_POINT})",
    re.I,
)
# A span named with a preposition ("in May", "during 2023") or, for a month of a
# year or a year, without one ("October 2023 news", "2023").
_SPAN = re.compile(rf"\b(?:in|during|throughout|within|of)\s+(?P<a>{_POINT})|(?P<b>{_MONTH_YEAR}|{_YEAR})", re.I)
_DAY_ONLY = re.compile(_DAY, re.I)

_UNITS = {"day": 1, "week": 7, "month": 30, "year": 365}
_RELATIVE = re.compile(
    r"\b(?P<word>today|yesterday|(?:this|last|past|previous)\s+(?:week|month|year)"
    r"|(?:last|past|previous)\s+(?P<n>\d{1,3}|two|three|four|five|six|seven|ten)\s+(?P<unit>day|week|month|year)s)\b",
    re.I,
)
RECENT_DAYS = 7
""""The latest on X" searches the week up to the newest article about X."""
_NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "ten": 10}
# Only words that ask for the newest: "recently covered by TechCrunch" names no time to search.
_RECENT = re.compile(r"\b(?:latest|most\s+recent(?:ly)?|newest)\b", re.I)


@dataclass(frozen=True)
class Timeframe:
    """The dates a question asks about."""

    date_from: str = ""
    date_to: str = ""
    """ISO days, inclusive; '' for no bound."""
    recent: bool = False
    """The question wants the newest articles first ("latest")."""
    phrase: str = ""
    """The words of the question that said so, as written."""
    outside: bool = False
    """The dates lie outside the index's articles, so all dates were searched
    ("spent in 2021" asked of 2023 news names the time of a fact, not of the news)."""
    parts: int = 0
    """Separate dates or ranges named, days on their own included ("after May 2023,
    before July 2023": 2; "in October 2023, and on December 15, 2023": 2)."""

    def __bool__(self) -> bool:
        return bool(self.date_from or self.date_to or self.recent)

    def describe(self) -> str:
        """What was searched, for the user: 'searched articles from 2023-10-01 to 2023-10-31'."""
        if self.date_from and self.date_to:
            dates = f"from {self.date_from} to {self.date_to}" if self.date_from != self.date_to else f"of {self.date_from}"
        elif self.date_from:
            dates = f"from {self.date_from} on"
        elif self.date_to:
            dates = f"up to {self.date_to}"
        else:
            dates = ""
        what = "searched articles " + dates if dates else "searched all articles"
        if self.outside:
            what = f"no articles {dates} in the index; searched all dates"
        if self.recent:
            what += ", newest first"
        return f'{what} ("{self.phrase}")' if self.phrase else what


def timeframe(question: str, reference: date) -> Timeframe | None:
    """The time a question asks about, or None. `reference` is the day relative
    words ("today", "last month") count from."""
    lower: date | None = None  # bounds ("after", "before") intersect ...
    upper: date | None = None
    spans: list[tuple[date, date]] = []  # ... and spans ("in May", "between X and Y") add up
    phrases: list[tuple[int, str]] = []
    text = question

    def take(match: re.Match) -> None:
        # Blank out what was used, so "October 2023" in "before October 2023" is not a span too.
        nonlocal text
        phrases.append((match.start(), question[match.start() : match.end()].strip()))
        text = text[: match.start()] + " " * (match.end() - match.start()) + text[match.end() :]

    for m in list(_RANGE.finditer(text)):
        a, b = _point(m["a"], reference), _point(m["b"], reference)
        if a and b:
            if _is_bare_month(m["a"]) and a[0] > b[1]:  # "between November and February"
                a = (a[0].replace(year=a[0].year - 1), a[1].replace(year=a[1].year - 1))
            spans.append((min(a[0], b[0]), max(a[1], b[1])))
            take(m)
    bounds = 0
    for m in list(_BOUND.finditer(text)):
        point = _point(m["a"], reference)
        if point is None:
            continue
        bounds += 1
        word = " ".join(m["word"].lower().split())
        if word in ("before", "prior to", "earlier than"):
            upper = min(upper or date.max, point[0] - timedelta(days=1))
        elif word in ("until", "till", "up to", "through"):
            upper = min(upper or date.max, point[1])
        elif word == "since":
            lower = max(lower or date.min, point[0])
        else:  # after, later than
            lower = max(lower or date.min, point[1] + timedelta(days=1))
        take(m)
    for m in list(_RELATIVE.finditer(text)):
        spans.append(_relative(m, reference))
        take(m)
    # A day on its own is not a range (see the module docstring); hide it from the year pattern.
    lone_days = 0
    for m in list(_DAY_ONLY.finditer(text)):
        text = text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]
        lone_days += 1
    for m in list(_SPAN.finditer(text)):
        written = m["a"] or m["b"]
        if _DAY_ONLY.fullmatch(written):
            continue
        point = _point(written, reference)
        if point:
            spans.append(point)
            take(m)
    # "after X and before Y" is one range; "after X ... after Y" two times.
    parts = len(spans) + (1 if bounds == 2 and lower and upper else bounds) + lone_days
    recent = _RECENT.search(text)
    if recent:
        take(recent)
    if not phrases:
        return None
    start = min((s for s, _ in spans), default=None)
    end = max((e for _, e in spans), default=None)
    if (lower and end and end < lower) or (upper and start and start > upper):
        start = end = None  # "before November 2023, the 2030 target": the bound is the time asked about
    if lower:
        start = max(start or lower, lower)
    if upper:
        end = min(end or upper, upper)
    phrase = ", ".join(p for _, p in sorted(phrases))
    return Timeframe(
        date_from=start.isoformat() if start else "",
        date_to=end.isoformat() if end else "",
        recent=recent is not None,
        phrase=phrase,
        parts=parts,
    )


# "a subsequent report", "the earlier article": a question about several reports.
SEVERAL_REPORTS = re.compile(
    r"\b(?:subsequent|later|earlier|previous|prior|following|other|another|second|first)\s+"
    r"(?:reports?|articles?|coverage|stor(?:y|ies)|pieces?|posts?|reviews?)\b",
    re.I,
)


def of_one_report(frame: Timeframe, question: str, outlets: int) -> bool:
    """True when the time named is that of one of several reports a question
    compares ("the report by The Age before October 22, 2023 and TechCrunch's of
    December 15"): filtering by it would lose the others. Several outlets or
    times named, or "a subsequent report", say so. On the MultiHop-RAG dev
    temporal questions, filtering by these lost 0.033 Hits@10, lifting them 0.008."""
    return outlets > 1 or frame.parts > 1 or bool(SEVERAL_REPORTS.search(question))


def within(frame: Timeframe, oldest: str, newest: str) -> Timeframe:
    """`frame`, marked `outside` when no article of the index (published `oldest`
    to `newest`, ISO days) can fall in its dates."""
    if not (frame.date_from or frame.date_to) or not (oldest and newest):
        return frame
    if (frame.date_from and frame.date_from > newest) or (frame.date_to and frame.date_to < oldest):
        return replace(frame, outside=True)
    return frame


def latest(frame: Timeframe, newest_relevant: str) -> Timeframe:
    """`frame` ("the latest on X") narrowed to the `RECENT_DAYS` up to the day of
    the newest article found about X, unless it has a start already."""
    if not frame.recent or frame.date_from or not newest_relevant:
        return frame
    start = date.fromisoformat(newest_relevant[:10]) - timedelta(days=RECENT_DAYS - 1)
    return replace(frame, date_from=start.isoformat(), date_to=frame.date_to or newest_relevant[:10])


def _point(written: str, reference: date) -> tuple[date, date] | None:
    """First and last day of a point in time as written: a day, a month, a year."""
    written = " ".join(written.split())
    if m := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", written):
        return _day(int(m[1]), int(m[2]), int(m[3]))
    if m := re.fullmatch(r"(\d{4})-(\d{2})", written):
        return _month(int(m[1]), int(m[2]))
    if m := re.fullmatch(r"([a-z.]+)\s+(\d{1,2})" + _ORD + r",?\s+(\d{4})", written, re.I):
        return _day(int(m[3]), _month_number(m[1]), int(m[2]))
    if m := re.fullmatch(r"(\d{1,2})" + _ORD + r"\s+(?:of\s+)?([a-z.]+),?\s+(\d{4})", written, re.I):
        return _day(int(m[3]), _month_number(m[2]), int(m[1]))
    if m := re.fullmatch(r"([a-z.]+),?\s+(?:of\s+)?(\d{4})", written, re.I):
        return _month(int(m[2]), _month_number(m[1]))
    if re.fullmatch(r"\d{4}", written):
        return date(int(written), 1, 1), date(int(written), 12, 31)
    if _is_bare_month(written):
        # The last such month up to the reference day: "in May" asked in 2023-10 is May 2023.
        number = _month_number(written)
        year = reference.year if number <= reference.month else reference.year - 1
        return _month(year, number)
    return None


def _is_bare_month(written: str) -> bool:
    return written.lower() in MONTHS


def _month_number(name: str) -> int:
    return [m[:3] for m in MONTHS].index(name.lower()[:3]) + 1


def _day(year: int, month: int, day: int) -> tuple[date, date] | None:
    try:
        found = date(year, month, day)
    except ValueError:  # "February 30"
        return None
    return found, found


def _month(year: int, month: int) -> tuple[date, date] | None:
    if not 1 <= month <= 12:
        return None
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _relative(m: re.Match, reference: date) -> tuple[date, date]:
    word = " ".join(m["word"].lower().split())
    if word == "today":
        return reference, reference
    if word == "yesterday":
        day = reference - timedelta(days=1)
        return day, day
    if m["unit"]:  # "past 3 days": the 3 days up to the reference day
        n = int(m["n"]) if m["n"].isdigit() else _NUMBERS[m["n"].lower()]
        return reference - timedelta(days=n * _UNITS[m["unit"].lower()] - 1), reference
    which, unit = word.split()
    if which == "past":  # "past week": the 7 days up to the reference day
        return reference - timedelta(days=_UNITS[unit] - 1), reference
    if unit == "week":
        monday = reference - timedelta(days=reference.weekday())
        if which == "this":
            return monday, reference
        return monday - timedelta(days=7), monday - timedelta(days=1)
    if unit == "month":
        first = reference.replace(day=1)
        if which == "this":
            return first, reference
        return _month((first - timedelta(days=1)).year, (first - timedelta(days=1)).month)  # type: ignore[return-value]
    if which == "this":
        return date(reference.year, 1, 1), reference
    return date(reference.year - 1, 1, 1), date(reference.year - 1, 12, 31)
