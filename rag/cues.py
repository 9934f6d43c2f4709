"""Cues read from the words, without a model: what a question asks for (a name, a
date, a number), its words, and whether a sentence can stand alone.

"Who ...", "Which company ..." want a name, "When ..." a date, "How many ..." a
number. A sentence that holds nothing of the kind asked for cannot be the one
that answers, so it scores lower (`Answerer`); and when one sentence clearly
holds the thing asked for, it is shown first, short and bold (`direct_answer`).
A sentence that leans on the one before it ("However, ...") brings it along
(`leans_back`).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import Stemmer

from rag.sources import Candidate, best_per_article

if TYPE_CHECKING:
    from rag.evidence import Evidence

NAME, DATE, NUMBER = "name", "date", "number"

WORD = re.compile(r"[A-Za-z0-9]+")
"""A word, for matching a question's words with a sentence's."""
STOPWORDS = frozenset(
    "a an and are as at be been being but by did do does for from had has have how in is it its of on or "
    "said says that the their there these they this to was were what when where which who whom whose why "
    "will with would about after also into than then can could may might should".split()
)

# A sentence that starts like this leans on the one before it ...
DEPENDENT_START = re.compile(
    r"^(however|but|and|yet|so|still|meanwhile|moreover|instead|therefore|thus|also|then|later|"
    r"he|she|it|they|him|her|them|his|its|their|this|that|these|those|such)\b",
    re.I,
)
# ... and so does one that refers back to an event it does not name.
BACK_REFERENCE = re.compile(
    r"\b(the|this|that) (attack|attacks|incident|accident|crash|move|deal|decision|statement|announcement|"
    r"report|ruling|vote|agreement|proposal|plan|strike|shooting|killing|operation|meeting|talks|case)\b",
    re.I,
)


def leans_back(sentence: str) -> bool:
    """True when a sentence cannot stand alone: 'However, ...', 'He said ...',
    '... after Erdogan refused to apologize for the attack'."""
    return bool(DEPENDENT_START.match(sentence) or BACK_REFERENCE.search(sentence))


_PERSON_NOUNS = (
    "individual|person|people|player|athlete|executive|ceo|founder|artist|author|leader|official|politician|figure|"
    "singer|actor|actress|coach|quarterback|receiver|star|celebrity|filmmaker|director|musician|rapper|entrepreneur|"
    "billionaire|investor|journalist|judge|senator|president|manager|comedian|footballer|golfer|driver|pitcher|boxer|fighter"
)
_NAMED_NOUNS = (
    "company|companies|organi[sz]ation|entity|entities|firm|group|team|country|city|state|nation|brand|platform|"
    "product|app|tool|chatbot|network|university|court|agency|body|party|league|club|outlet|publication|"
    "startup|band|institution|exchange|bank|regulator|government|" + _PERSON_NOUNS
)
NAME_KINDS = re.compile(r"(?:" + _NAMED_NOUNS + r")s?", re.I)
"""The nouns a question says the kind of name it asks for with ("Which company", "the individual")."""
# "Which NFL team", "What AI-powered chatbot": up to three words between the question word and its noun.
_WHICH_NOUN = (
    r"\b(which|what)\s+((?!(is|are|was|were|do|does|did|has|have|had|can|could|will|would|should|may|might)\b)"
    r"[\w'\u2019-]+\s+){0,3}?(%s)s?\b"
)
_WHO = r"(^|[,;:]\s*|\b(and|but)\s+)(who|whom|whose)\b|\bwho\b"
_ASKS = (
    # The first of these the question says decides: "Who ... when ..." asks for a name,
    # "What year ... who ..." for a date; "how many" is tried before "how".
    (re.compile(r"\b(how (many|much)|what (number|percentage|proportion|share|amount)|how (long|old|far|big|large|tall|high))\b", re.I), NUMBER),
    # "when" asks when it opens a clause or ends the question, not in "What is it called when ...".
    (re.compile(r"(^|[,;:]\s*|\b(and|but)\s+)when\b|\bwhen\s*\?|\b(what (year|years|day|date|month|time|century|decade)|which (year|day|date|month|century|decade)|in what year)\b", re.I), DATE),
    (re.compile(_WHO + "|" + _WHICH_NOUN % _NAMED_NOUNS + r"|\bwhat is the name\b|\bname of\b", re.I), NAME),
)

_MONTH = r"(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sept?(ember)?|oct(ober)?|nov(ember)?|dec(ember)?)"
_DATE = re.compile(
    r"\b(1[0-9]{3}|20[0-9]{2})s?\b|\b" + _MONTH + r"\b|\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"yesterday|today|tomorrow|century|centuries|decade|spring|summer|autumn|winter|weekend)\b|\b\d{1,2}(st|nd|rd|th)\b",
    re.I,
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"hundred|hundreds|thousand|thousands|million|millions|billion|billions|dozen|dozens|half|third|quarter|"
    r"percent|several|few|many|single|double|twice)\b",
    re.I,
)
# A name's words are on one line: a heading or a list item ends it ("Trump Park Avenue" / "Trump's ...").
_CAPITALISED = re.compile(r"\b[A-Z][\w&'\u2019-]*(?:[^\S\n]+(?:(?:of|de|du|van|von|&)[^\S\n]+)?[A-Z][\w&'\u2019-]*)*")
_DESCRIBING = re.compile(r"^[\w.]+-[a-z]")
"""A word that describes the name after it: "UK-listed HSF", "London-based Revolut"."""
_NOT_NAMES = frozenset(
    "a an the this that these those he she it they we i you his her its their our my your in on at for from by of "
    "to and but or so if as after before when while however meanwhile according also mr mrs ms dr".split()
)


_WHEN_WORD = re.compile(r"^(" + _MONTH + r"|monday|tuesday|wednesday|thursday|friday|saturday|sunday)$", re.I)


_LEADING = frozenset(
    "some no many most several both each every other another such following initially eventually originally "
    "currently recently later earlier now once since although though despite during unlike upon until because only "
    "even still yet thus hence therefore indeed instead finally traditionally historically similarly "
    "additionally furthermore moreover nevertheless nonetheless notably including without among between "
    "through within across against around onto toward towards whereas whether considering regarding concerning".split()
)
"""Words that start a sentence or a phrase, not a name: "Following BSkyB", "Some Huguenots" (not
"all", "just", "under", "via": "All Blacks", "Just Eat", "Under Armour", "Via Rail")."""
_NOT_ALONE = _LEADING | frozenset("all just under via over above below beyond inside outside amid per here there".split())
"""Words that may start a name ("Under Armour") but alone are none ("Under its delivery business, ...")."""
_COUNTS = frozenset("one two three four five six seven eight nine ten first second third fourth fifth last".split())
"""Alone, a number or a place in order is not a name ("One", "Fourth")."""


def _glued(word: str) -> bool:
    """A capitalised word that starts a run of them but is not part of the name after it: a
    sentence's first word ("Could Altman", "Didn't Bankman-Fried", "Initially BSkyB") or a
    month ("September Fed")."""
    plain = word.lower().strip(".'\u2019")
    return plain in STOPWORDS or plain in _LEADING or bool(_WHEN_WORD.match(plain)) or plain.endswith(("n't", "n\u2019t"))


def asks_for(question: str) -> str | None:
    """NAME, DATE, NUMBER, or None when the question asks for something else
    (why, how, yes or no)."""
    head = question.strip()
    # Yes/no questions ("Does ...", "Did ...", "Is ...") name things but ask for none.
    if re.match(r"^(does|did|do|is|are|was|were|has|have|had|can|could|will|would|should)\b", head, re.I) and not re.search(
        r"\b(who|which|what|when|how many|how much)\b", head, re.I
    ):
        return None
    found = [(m.start(), kind) for pattern, kind in _ASKS if (m := pattern.search(head))]
    return min(found)[1] if found else None


def names_in(text: str, question_words: set[str], common: frozenset[str] = frozenset()) -> list[str]:
    """Capitalised names in `text` that the question does not already say
    ("Sam Bankman-Fried", "Google"), in order of appearance. A sentence's first word
    that is one of the `common` words (`common_words` of the sentences around:
    "Though", "Using") is not part of the name after it; a day or month alone is not
    a name."""
    out = []
    for m in _CAPITALISED.finditer(text):
        words = m.group(0).split()
        while words and (
            words[0].lower().strip(".'") in _NOT_NAMES
            or (len(words) > 1 and (_glued(words[0]) or _DESCRIBING.match(words[0]) or (words[0].lower() in common and _starts(text, m.start()))))
        ):
            words.pop(0)
        name = " ".join(words).strip(".'\u2019-")
        # "CEO Caroline Ellison" is said by a question that says "Caroline Ellison".
        if not name or _WHEN_WORD.match(name) or name.lower() in _NOT_ALONE or name.lower() in _COUNTS or name.split()[-1].lower().strip(".'\u2019s") in question_words:
            continue
        out.append(name.removesuffix("'s").removesuffix("\u2019s"))
    return out


def _starts(text: str, at: int) -> bool:
    """`at` is where a sentence of `text` starts (after any opening quotes)."""
    return not text[:at].strip(" \"'\u201c\u2018(")


@functools.lru_cache(maxsize=16)
def common_words(texts: tuple[str, ...]) -> frozenset[str]:
    """The words `texts` write in lower case somewhere ("though", "using"): capitalised
    at a sentence's start, such a word is not a name."""
    return frozenset(re.findall(r"(?<![\w'\u2019-])[a-z][a-z'\u2019-]*", " ".join(texts)))


def holds(text: str, kind: str | None, question_words: set[str]) -> bool:
    """True when `text` holds something of the kind asked for (always, for None)."""
    if kind is None:
        return True
    if kind == DATE:
        return bool(_DATE.search(text))
    if kind == NUMBER:
        return bool(_NUMBER.search(text))
    # A name that is not just the sentence's first word, or a capitalised word inside.
    return bool(names_in(text[1:] if text[:1].isupper() else text, question_words))


def question_words(question: str) -> set[str]:
    """Lower-cased words of the question, for telling a new name from one it says."""
    return {w.lower().strip(".'\u2019s") for w in re.findall(r"[\w'\u2019.-]+", question)}


_PERSON = re.compile(_WHO + "|" + _WHICH_NOUN % _PERSON_NOUNS, re.I)
_ACRONYM = re.compile(r"^[A-Z0-9&.-]+$")
_TITLES = frozenset("CEO CTO CFO COO CIO CMO CSO EVP SVP VP GM MP Dr Dr. Mr Mr. Ms Ms. Mrs Mrs. Sir Dame".split())
"""Words before a name that are a title, not part of it ("FTX Trading" keeps its first word)."""


def asks_for_person(question: str) -> bool:
    """"Who ...", "Which individual ...": the name asked for is a person's."""
    return bool(_PERSON.search(question))


def full_name(name: str, texts: Sequence[str]) -> str:
    """The way `texts` most often write `name` whole. A last name grows to its
    full form: "Altman" -> "Sam Altman" when texts say "Sam Altman" (a reader, and a
    search for the name, want it whole), not "Jack Altman" when only one text speaks
    of him. A longer name loses a first word that only came with one sentence's start:
    "Confirmation Sam Altman" -> "Sam Altman" when texts say that more often."""
    texts = tuple(texts)
    forms = _forms(texts)
    if _ACRONYM.match(name) and len(name) >= 3:  # "SBF" -> "Sam Bankman-Fried", "HSF" -> "Hipgnosis Songs Fund"
        spelled = _whole_forms(texts)[1].get(name.replace(".", ""), [])
        return max(spelled, key=lambda form: (forms[form], len(form)), default=name)
    words = name.split()
    while len(words) > 2 and words[0] in _TITLES:  # "CTO Gary Wang" -> "Gary Wang"
        words = words[1:]
    name = " ".join(words)
    if len(words) > 2:
        shorter = [" ".join(words[i:]) for i in range(1, len(words) - 1)]  # two words or more
        return max([name, *shorter], key=lambda form: (forms[form], len(form)))
    if len(words) > 1:
        return name
    longer = _whole_forms(texts)[0].get(name, [])
    if not longer and len(name) <= 3:  # "Fed" -> "Federal Reserve": a body's name cut short (not "Ford")
        longer = [form for form in forms if _cut_short(name, form)]
    return max(longer, key=lambda form: (forms[form], len(form)), default=name)


def _cut_short(name: str, form: str) -> bool:
    """`name` is the start of `form`'s first word, and `form` names a body ("Fed", "Federal Reserve")."""
    words = form.split()
    return len(words) > 1 and words[0].startswith(name) and words[0] != name and words[-1].lower() in _ORGANISATION


@functools.lru_cache(maxsize=1024)  # the articles of some hundred questions (~11 kB of text each)
def first_mentions(article: str, head: int = 2000) -> tuple[str, ...]:
    """Each name of `article`'s first `head` characters as it is first written: news names a
    person or a body in full once, early ("Sam Bankman-Fried", "Hipgnosis Songs Fund"), then
    by last name or initials ("Bankman-Fried", "SBF"). Later longer forms ("Android ChatGPT")
    are not the name."""
    article = article[:head]
    common = common_words((article,))
    first: dict[str, str] = {}
    met: set[str] = set()
    for m in _CAPITALISED.finditer(article):
        if m.group(0) in met or all(word in first for word in m.group(0).split()):
            continue  # most capitalised words are names (or "The", "He") already met: skip them cheaply
        met.add(m.group(0))
        # A sentence's first word may be a common word, not part of the name ("Leading Everton").
        for name in names_in(m.group(0), set(), common if _opens_sentence(article, m.start()) else frozenset()):
            if not any(word in first for word in name.split()):  # "Framing Britney" after "Britney Spears"
                first.update(dict.fromkeys(name.split(), name))
    return tuple(dict.fromkeys(first.values()))


def _opens_sentence(text: str, at: int) -> bool:
    """`at` starts a sentence of `text`: after its start, a line break or a full stop (opening quotes aside)."""
    before = text[max(0, at - 8) : at].rstrip("\"'\u201c\u2018(")
    if not before.strip():
        return at <= 8 or "\n" in before
    return "\n" in before[len(before.rstrip()) :] or (before[-1].isspace() and before.rstrip()[-1] in ".!?\"\u201d")


def _initials(name: str) -> str:
    """The capital letters a name's words start with: "Sam Bankman-Fried" -> "SBF"."""
    return "".join(w[0] for w in re.split(r"[\s-]+", name) if w[:1].isupper())


def mentions(text: str, name: str) -> bool:
    """`text` speaks of `name`: says it, or its last word ("Bankman-Fried" for "Sam Bankman-Fried")."""
    return bool(re.search(r"(?<![\w-])" + re.escape(name.split()[-1]) + r"(?![\w-])", text))


@functools.lru_cache(maxsize=16)
def _forms(texts: tuple[str, ...]) -> Counter[str]:
    """How often `texts` write each name (`names_in` with no question), kept: the same
    sentences are searched for the full form of each name of an answer."""
    forms: Counter[str] = Counter()
    common = common_words(texts)
    for text in texts:
        forms.update(re.split(r"['\u2019]s\s+", found)[-1] for found in names_in(text, set(), common))  # "OpenAI's Sam Altman"
    return forms


@functools.lru_cache(maxsize=16)
def _whole_forms(texts: tuple[str, ...]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The names of two words or more that `texts` write, by their last word ("Altman": ["Sam
    Altman"]) and by their initials ("SBF": ["Sam Bankman-Fried"])."""
    by_last: dict[str, list[str]] = {}
    by_initials: dict[str, list[str]] = {}
    for form in _forms(texts):
        if " " in form:
            by_last.setdefault(form.split()[-1], []).append(form)
            by_initials.setdefault(_initials(form), []).append(form)
    return by_last, by_initials


# Words that make a name an organisation's, not a person's.
_ORGANISATION = frozenset(
    "commission exchange securities inc corp corporation company co ltd llc plc group bank fund association "
    "university department agency committee court council reserve board authority ministry foundation institute "
    "capital partners holdings research media news times post journal club team league party government office "
    "services network systems technologies labs state republic center centre fort".split()
)

_NOT_IN_PERSONS = _ORGANISATION | _COUNTS
_CAPITALS = re.compile(r"^(?!(II|III|IV)$)[A-Z]+$")
"""A word in capitals (no full stop) is not part of a person's name: "Open AI", "Gen Z" (but "Trey
Murphy III", "J. R. Smith")."""


def looks_like_person(name: str, texts: Sequence[str]) -> bool:
    """A person's name, as far as the words tell: written in full somewhere in `texts` as
    two words or more ("Bankman-Fried" or "SBF" -> "Sam Bankman-Fried"), none of them an
    organisation's ("Exchange Commission"), a number ("Big Ten"), in capitals ("Open AI") or
    "of" ("CEO of Alameda" is a post), and not an acronym ("FTX")."""
    whole = full_name(name, texts)
    words = whole.split()
    return (
        len(words) >= 2
        and not _ACRONYM.match(whole)
        and not any(w.lower().strip(".,") in _NOT_IN_PERSONS or w == "of" or _CAPITALS.match(w) for w in words)
    )


def common_name(texts: Sequence[str], question: str, read: Sequence[str] = ()) -> str | None:
    """The name most of `texts` share that the question does not say, when more
    than one of them holds it and no other name is as common: the thing several
    articles agree on ("Which company ... according to Engadget and Wired?").
    A text that writes the name in full ("Sam Bankman-Fried") and one that writes
    the last name only ("Bankman-Fried") agree. For a person ("Who ...") an acronym
    ("FTX") does not count, and when any name `looks_like_person` in `read` (all the
    sentences read, `texts` among them), only such names count."""
    said = question_words(question)
    person = asks_for_person(question)
    known = read or texts
    common = common_words(tuple(known))
    holders: dict[str, set[int]] = {}
    for i, text in enumerate(texts):
        for name in set(names_in(text, said, common)):
            whole = full_name(name, known) if _ACRONYM.match(name) else name  # "SBF" is "Sam Bankman-Fried"
            if not (person and _ACRONYM.match(whole)):
                holders.setdefault(whole, set()).add(i)
    if person:  # a person's name if any is one ("Bankman-Fried", not "Exchange Commission")
        people = {name: where for name, where in holders.items() if looks_like_person(name, known)}
        holders = people or holders
    # A short name counts for the longest full form of it that some text holds.
    merged: dict[str, set[int]] = {}
    for name, where in holders.items():
        whole = max((n for n in holders if n.endswith(" " + name)), key=len, default=name)
        merged.setdefault(whole, set()).update(where)
    ranked = Counter({name: len(where) for name, where in merged.items()}).most_common(2)
    if not ranked or ranked[0][1] < 2 or (len(ranked) > 1 and ranked[1][1] == ranked[0][1]):
        return None
    return ranked[0][0]


def most_named_person(texts: Sequence[str], question: str, read: Sequence[str] = ()) -> str | None:
    """The person `texts` name most often, in their full form, when they name that person in
    two of them or more and at least twice as often as anyone else: "Who is the individual
    ... according to Fortune, The Verge and TechCrunch?" is about the person the sentences
    read keep naming, even when no one sentence or article says the name alone."""
    found = most_named_people(texts, question, read, 1)
    return found[0] if found else None


def most_named_people(texts: Sequence[str], question: str, read: Sequence[str] = (), count: int = 1) -> list[str]:
    """The `count` people `texts` name most often (`most_named_person`), each in two texts
    or more and at least twice as often as anyone after them; [] when not that clear."""
    known = read or texts
    said = question_words(question)
    common = common_words(tuple(known))
    counts: Counter[str] = Counter()
    for text in texts:
        # Once per text, in the order said: a tie goes to the one named first.
        people = [full_name(n, known) for n in names_in(text, said, common) if looks_like_person(n, known)]
        # "SBF" grows to the "Sam Bankman-Fried" a question may already say.
        counts.update([p for p in dict.fromkeys(people) if p.split()[-1].lower().strip(".'\u2019s") not in said])
    ranked = counts.most_common(count + 1)
    top, rest = ranked[:count], ranked[count:]
    if len(top) < count or top[-1][1] < 2 or (rest and top[-1][1] < 2 * rest[0][1]):
        return []
    return [name for name, _ in top]


_TWO = re.compile(r"\b(which|what|who are the)\s+two\b", re.I)
"""A question that asks for two names at once: "Which two individuals ..."."""


_DATE_SPAN = re.compile(
    r"\b" + _MONTH + r"\.?\s+\d{1,2}(st|nd|rd|th)?,?\s+\d{4}\b|\b\d{1,2}(st|nd|rd|th)?\s+(of\s+)?" + _MONTH + r",?\s+\d{4}\b|"
    r"\b" + _MONTH + r"\.?\s+\d{1,2}(st|nd|rd|th)?\b|\b" + _MONTH + r",?\s+\d{4}\b|"
    r"\b(the\s+)?\d{1,2}(st|nd|rd|th)\s+century\b|\b(1[0-9]{3}|20[0-9]{2})s?\b",
    re.I,
)
_NUMBER_SPAN = re.compile(
    r"(\$|£|€)?\d[\d,.]*(\s*(%|percent|per cent|million|billion|trillion|thousand|hundred))?|"
    # "one of the witnesses" picks one out; it does not count them.
    r"\b(one(?!\s+of\b)|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"a hundred|hundreds|a thousand|thousands|dozens|a dozen|half)\b(\s+(million|billion|thousand|hundred))?",
    re.I,
)


def spans(text: str, kind: str, said: set[str]) -> list[str]:
    """The names, dates or numbers in `text` that the question does not already say."""
    if kind == NAME:
        return names_in(text, said)
    return [_value(m) for m in _quantities(text, kind, said)]


def _quantities(text: str, kind: str, said: set[str]) -> list[re.Match]:
    """The dates or numbers in `text` that the question does not already say."""
    pattern = _DATE_SPAN if kind == DATE else _NUMBER_SPAN
    return [
        m for m in pattern.finditer(text)
        if (v := _value(m)) and v.lower() not in said and not all(w.lower() in said for w in v.split())
    ]


def _value(m: re.Match) -> str:
    return m.group(0).strip(" ,.")


_YEAR = re.compile(r"1[0-9]{3}|20[0-9]{2}")


def _near_question(
    text: str, found: Sequence[re.Match], kind: str, question: str, said: set[str], read: Sequence[str], window: int = 3
) -> str | None:
    """Of several numbers (or dates) in `text`, the one the question's words stand next to:
    the words within `window` of each, weighted by how rare they are in `read`, must favour
    one by half again as much as any other ("How many Turkish soldiers were killed?" ->
    "killing three soldiers and wounding 11 others" -> "three"). For a number, a year or a
    piece of a word the question says ("AS-206") is none. SQuAD dev: 146 more bold numbers
    and dates, 109 of them right (75 %; those shown before: 90 %)."""
    if kind == NUMBER:
        found = [m for m in found if not _YEAR.fullmatch(_value(m)) and not any(_value(m) in w for w in said)]
    values = list(dict.fromkeys(_value(m) for m in found))
    if len(values) < 2:
        return values[0] if values else None
    stem = Stemmer.Stemmer("english").stemWord  # one per call: a stemmer is not thread-safe
    asked = {stem(w.lower()) for w in WORD.findall(question) if w.lower() not in STOPWORDS and len(w) > 2}
    sentences = [{stem(w.lower()) for w in WORD.findall(t)} for t in (read or [text])]
    rarity = {w: math.log((len(sentences) + 1) / (1 + sum(w in s for s in sentences))) + 1 for w in asked}
    scores: dict[str, float] = {}
    for m in found:
        before, after = WORD.findall(text[: m.start()])[-window:][::-1], WORD.findall(text[m.end() :])[:window]
        near: dict[str, float] = {}  # each question word by its nearest distance: 1, 1/2, 1/3
        for distance, word in itertools.chain(enumerate(before, 1), enumerate(after, 1)):
            w = stem(word.lower())
            if w in asked:
                near[w] = max(near.get(w, 0.0), 1 / distance)
        score = sum(rarity[w] * closeness for w, closeness in near.items())
        scores[_value(m)] = max(scores.get(_value(m), 0.0), score)
    (best, top), (_, second) = sorted(scores.items(), key=lambda kv: -kv[1])[:2]
    return best if top > 0 and top >= 1.5 * second else None


def direct_answer(text: str, kind: str | None, question: str, read: Sequence[str] = ()) -> str | None:
    """The one name, date or number `text` holds of the kind asked for; None when
    it holds none or several different ones (then no single one clearly answers;
    of several dates or numbers, the one the question's words stand next to, `_near_question`).
    A name's first word is checked against the `common_words` of `read` (the
    sentences around), and for "Who ...?" the name must `looks_like_person` there:
    not "Microsoft"."""
    if kind is None:
        return None
    said = question_words(question)
    if kind != NAME:
        found = _quantities(text, kind, said)
        if len({_value(m) for m in found}) == 1:
            return _value(found[0])
        return _near_question(text, found, kind, question, said, read)
    read = read or [text]
    found = list(dict.fromkeys(names_in(text, said, common_words(tuple(read)))))
    # A longer name holds the shorter ones ("Sam Bankman-Fried" and "Bankman-Fried").
    found = [f for f in found if not any(f != g and f in g for g in found)]
    if len(found) > 1:  # "Kremlin spokesman, Dmitry Peskov, said Vladimir Putin ...": the one the question describes
        described = _described(question)
        found = [f for f in found if _named_by(text, f, described)] or found
    if len(found) != 1 or (asks_for_person(question) and not looks_like_person(found[0], read)):
        return None
    return found[0]


_DESCRIBED = re.compile(
    r"\bwho\s+(?:is|was|are|were)\s+(?:the\s+)?(?:[\w'\u2019-]+\s*){1,4}?(?:[?,]|\b(?:that|who|which|when|in|of|for|at|on)\b|$)|"
    + _WHICH_NOUN % _NAMED_NOUNS,
    re.I,
)


def _described(question: str) -> set[str]:
    """The words the question describes its answer by: "Who is the Kremlin spokesman?" ->
    {"kremlin", "spokesman"}; "Which NFL team ...?" -> {"nfl", "team"}."""
    m = _DESCRIBED.search(question)
    words = {w.lower() for w in re.findall(r"[\w\u2019'-]+", m.group(0))[1:]} if m else set()
    return words - STOPWORDS


def _named_by(text: str, name: str, described: set[str]) -> bool:
    """`text` puts `name` right after a word the question describes its answer by ("spokesman, Dmitry Peskov")."""
    before = re.findall(r"[\w'\u2019-]+", text[: text.find(name)])
    return bool(before) and before[-1].lower() in described


def short_answer(
    evidence: Evidence, cited: Sequence[str], cites_best: bool, vote_articles: int = 6, read_for_person: int = 20,
    articles: Sequence[str] = (),
) -> str:
    """The name, date or number asked for, shown first in bold. For "Who ...?" about what
    sources report (several sources or an outlet named), the person the best
    `read_for_person` sentences name most (`most_named_person`: the reports' "Sam
    Bankman-Fried", not a lone "Gary Wang" nor the "Trump Park Avenue" two cited sentences
    share); else, for a name the question's articles should share, the one the cited
    sentences agree on; else the one the best sentence holds, when it is among the `cited`
    ones (`cites_best`) and holds exactly one of that kind; else, for a question about what
    sources report, the one the best `vote_articles` articles share (for one text, what its
    paragraphs share is its topic: SQuAD dev, 25 of 116 such names were right). A body's
    name comes with the "The" the texts give it (`with_the`). A name is as whole as the
    sentences read write it, or as the `articles` read first name it (`first_mentions`:
    "Sam Altman", not "Altman"); "Who ...?" wants a person's.
    "" when none clearly answers."""
    if evidence.asks is None or not cited:
        return ""
    read = [c.text for c in evidence.sentences]
    # The articles' first mentions of two words or more (the others grow no name), as one text, a
    # name a line: a name does not run over a line break.
    in_full = (name for article in articles for name in first_mentions(article) if " " in name)
    known = [*read, "\n".join(in_full)]
    name = evidence.asks == NAME
    if name and evidence.several and _TWO.search(evidence.question):  # "Taylor Swift and Travis Kelce"
        return " and ".join(most_named_people(read[:read_for_person], evidence.question, known, 2))
    reported = evidence.several or bool(evidence.outlets)
    person = name and reported and asks_for_person(evidence.question)
    found = ""
    if person:
        found = most_named_person(read[:read_for_person], evidence.question, known) or ""
    if not found and name and evidence.several:
        found = common_name(cited, evidence.question, known) or ""
    if not found and cites_best:
        found = direct_answer(evidence.sentences[0].text, evidence.asks, evidence.question, known) or ""
    if not found and name and reported and vote_articles:
        tops = best_per_article(evidence.sentences)[:vote_articles]
        found = common_name([c.text for c in tops], evidence.question, known) or ""
    if not (found and name):
        return found
    whole = full_name(found, known)
    return whole if asks_for_person(evidence.question) else with_the(whole, read, also=found)


def with_the(name: str, texts: Sequence[str], also: str = "") -> str:
    """`name` as the answer's first words: "The Federal Reserve" when `texts` write it (or its
    short form `also`, "the Fed") after "the" two times of three or more, as a body's name is."""
    names = "|".join(re.escape(n) for n in dict.fromkeys([name, also or name]))
    pattern = r"\b((?i:the)\s+)?(" + names + r")(?![\w-])"
    said = [m.group(1) is not None for text in texts for m in re.finditer(pattern, text)]
    return f"The {name}" if len(said) >= 2 and 3 * sum(said) >= 2 * len(said) else name


def previous_key(key: tuple[str, int]) -> tuple[str, int]:
    """The key of the sentence before."""
    return key[0], key[1] - 1


def coverage(asked: set[str], candidates: Sequence[Candidate], words: dict[tuple[str, int], set[str]]) -> float:
    """The largest share of the question's words (`asked`) found in one sentence
    together with the sentence before it (unweighted: a question's rare words are
    not rare in the sentences retrieval picked for them)."""
    if not asked or not candidates:
        return 0.0
    return max(
        len(asked & (words[c.key] | words.get(previous_key(c.key), set())))
        for c in candidates
    ) / len(asked)


def weighted_overlap(
    question: set[str], sentences: list[set[str]], before: list[set[str]], context_weight: float = 0.5
) -> list[float]:
    """How much of the question each sentence holds, from 0 to 1, rare words weighing more.

    A question word found in every sentence (the topic) says little about which
    one answers, a rare one says much: words weigh log(1 + n / df) over the n
    sentences. Words found only in the sentence before count `context_weight` as
    much: "They settled in Normandy" answers a question that names the Normans a
    sentence earlier."""
    weight = {t: math.log(1 + len(sentences) / max(1, sum(t in s for s in sentences))) for t in question}
    total = sum(weight.values())
    if not total:
        return [0.0] * len(sentences)
    return [
        (sum(weight[t] for t in question & own) + context_weight * sum(weight[t] for t in question & (prior - own))) / total
        for own, prior in zip(sentences, before)
    ]
