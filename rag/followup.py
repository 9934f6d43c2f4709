"""Follow-up questions: telling one from a question that stands on its own, what
it is searched with, and what the conversation's earlier answers already said.

"And what did he say about it?" names nothing it asks about: it is searched
together with the previous question and the names in the previous answer, and
its answer prefers sentences the conversation has not shown yet. A question that
names what it asks about is answered as if asked first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from rag.cues import STOPWORDS, WORD

ANAPHORA = re.compile(r"\b(it|its|this|that|these|those|they|them|their|he|him|his|she|her|there|then)\b", re.I)

FOLLOW_UP_MAX_WORDS = 6
"""A question of at most this many content words that refers back ("And what did
he say about it?") is a follow-up; a longer one names what it asks about."""
FOLLOW_UP_NAMES = 8
"""Names taken from the previous answer into a follow-up's query: enough for a
four-sentence answer's people and places, few enough not to drown the question."""


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation."""

    question: str
    answer: str = ""


class Said(Protocol):
    """What a scored sentence must offer (`rag.evidence.ScoredSentence`)."""

    score: float

    @property
    def text(self) -> str: ...


S = TypeVar("S", bound=Said)


def contextual_query(question: str, history: Sequence[Turn]) -> str:
    """A follow-up ("And what did Putin say about it?") is searched together with
    the previous question and the names in its answer; a question that stands on
    its own is searched as it is."""
    if not history or not is_follow_up(question):
        return question
    last = history[-1]
    names = re.findall(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*\b", last.answer)
    names = [n for n in dict.fromkeys(names) if n.lower() not in STOPWORDS][:FOLLOW_UP_NAMES]
    return " ".join([last.question, question, *names])


def is_follow_up(question: str) -> bool:
    words = WORD.findall(question)
    content = [w for w in words if w.lower() not in STOPWORDS]
    starts_like_one = re.match(r"^(and|but|also|what about|how about|so|then)\b", question, re.I)
    return len(content) <= FOLLOW_UP_MAX_WORDS and bool(ANAPHORA.search(question) or starts_like_one)


def not_repeated(ranked: list[S], history: Sequence[Turn], keep_ratio: float) -> list[S]:
    """A follow-up wants something new: what was already said is not repeated,
    unless nothing new comes close to it (`keep_ratio` x the best); then the
    answer says it again. `ranked` is best first."""
    fresh = [c for c in ranked if not any(c.text in turn.answer for turn in history)]
    if fresh and fresh[0].score >= ranked[0].score * keep_ratio:
        return fresh
    return ranked
