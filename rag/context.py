"""A picked sentence that cannot stand alone ("However, ...", "He said ...",
"... refused to apologize for the attack") comes with the sentence it leans on,
and the answer's sentences are put in reading order."""

from __future__ import annotations

from rag.chunk import Sentence
from rag.cues import leans_back
from rag.evidence import ScoredSentence
from rag.store import IndexStore


def with_context(
    picked: list[ScoredSentence], candidates: list[ScoredSentence], store: IndexStore, limit: int, lend: bool = True
) -> list[ScoredSentence]:
    """Each picked sentence that cannot stand alone comes with its antecedent
    (with `lend`), best picks first, up to `limit` sentences in all; then order
    by article (best first) and position."""
    by_key = {c.key: c for c in candidates}
    chosen: dict[tuple[str, int], ScoredSentence] = {}
    for c in picked:  # best first
        group = [c]
        if lend and leans_back(c.text):
            found = antecedent(c, by_key, store)
            if found is not None:
                group.insert(0, found)
        new = {g.key: g for g in group if g.key not in chosen}
        if chosen and len(chosen) + len(new) > limit:
            continue  # a later pick may still fit
        chosen.update(new)
    article_order: dict[str, int] = {}
    for c in picked:
        article_order.setdefault(c.sentence.article_id, len(article_order))
    return sorted(chosen.values(), key=lambda c: (article_order.get(c.sentence.article_id, 0), c.sentence.position))


def antecedent(c: ScoredSentence, by_key: dict, store: IndexStore) -> ScoredSentence | None:
    """The nearest earlier sentence (up to three back) that stands on its own:
    for 'Ties soured after Erdogan refused to apologize for the attack', past
    'A pilot lost his life in the attack', to 'Turkey shot down a Russian jet'. When
    all three lean back too, the nearest: "… the statement read." leans on "Meanwhile,
    the Turkish army confirmed in a statement …", not on a sentence three back."""
    nearest = None
    article_id, at = c.key
    for position in range(at - 1, max(at - 4, -1), -1):
        found = by_key.get((article_id, position)) or sentence_at(store, c, position)
        if found is None:
            break
        if not leans_back(found.text):
            return found
        nearest = nearest or found
    return nearest


def sentence_at(store: IndexStore, like: ScoredSentence, position: int) -> ScoredSentence | None:
    """Sentence `position` of `like`'s article, scored as `like` (it comes as its context)."""
    article_id = like.sentence.article_id
    rows = store.sentences(article_id, position, position)
    if not rows:
        return None
    row = rows[0]
    text = store.article_text(article_id)[row.start : row.end]
    return ScoredSentence(Sentence(article_id, position, row.start, row.end, text), like.hit, row.vector, score=like.score)
