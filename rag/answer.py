"""Extractive answers: a few verbatim article sentences, each with its citation.

The sentences of the best retrieved chunks are scored against the question
(similarity of their build-time vectors to the question's plus word overlap,
rare words weighing more), a small set that does not repeat itself is picked
(maximal marginal relevance), a sentence that cannot stand alone ("However, ...",
"He said ...") brings its predecessor, and the result is put in reading order.
When no sentence is close enough to the question in meaning and words, the
answer abstains and lists the closest passages instead. The only text embedded
at answer time is the question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import Stemmer

from rag import cues
from rag.chunk import Sentence
from rag.context import with_context
from rag.cues import STOPWORDS, WORD, coverage, previous_key, weighted_overlap
from rag.embed import Embedder
from rag.evidence import Evidence, ScoredSentence, by_best_sentence, cited_first, lifted
from rag.followup import Turn, contextual_query, not_repeated
from rag.parts import parts, pick_per_part, with_outlets, with_parts
from rag.retrieve import Filters, Hit, Retriever, mentioned_dates, narrowed
from rag.settings import DEFAULT_K
from rag.sources import (
    SourceGroup,
    grouped_text,
    in_outlet_order,
    named_outlets,
    needs_several,
    pick_per_source,
    source_groups,
    unknown_outlets,
)
from rag.store import IndexStore

NOT_FOUND = "I could not find this in the indexed articles."


@dataclass(frozen=True)
class Citation:
    n: int
    sentence: str
    article_id: str
    title: str
    source: str
    published: str
    url: str
    path: str
    start: int
    end: int
    """Character offsets of the sentence in the article text."""
    score: float


@dataclass(frozen=True)
class Claim:
    """One sentence of a generated (LLM) answer and what backs it."""

    text: str
    citations: tuple[int, ...]
    """The [n] markers in the sentence that point at sources really given."""
    supported: bool
    """True when a cited source says what the sentence says (see llm.Verifier)."""
    support: float
    """Best similarity or word overlap with a cited source (0 when none is valid)."""


@dataclass(frozen=True, kw_only=True)
class Answer:
    """What `Answerer` and `LlmAnswerer` return; built once, never changed."""

    question: str
    text: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    passages: list[Hit] = field(default_factory=list)
    query: str = ""
    """What was searched for: the question, expanded with context for a follow-up."""
    confidence: float = 0.0
    """How well the best sentences match the question: the highest cosine
    similarity plus `Answerer.coverage_weight` times the largest share of the
    question's words one sentence (with the one before it) holds. The answer
    abstains below `Answerer.abstain_below`."""
    mode: str = "extractive"
    """'extractive' (verbatim sentences) or 'llm' (generated, then verified)."""
    claims: list[Claim] = field(default_factory=list)
    """For an LLM answer: its sentences, each marked supported or not."""
    notice: str = ""
    """Why the answer is not what was asked for, e.g. the LLM fallback."""
    searched: str = ""
    """The dates searched when the question named a time ("searched articles from
    2023-10-01 to 2023-10-31"); see rag/timeframe.py."""
    groups: list[SourceGroup] = field(default_factory=list)
    """For a question that needs several sources: the citations of each outlet, in
    the order the question names them; a named outlet that had nothing has none."""
    direct: str = ""
    """The short thing asked for (a name, a date, a number) when one cited
    sentence clearly holds it; shown first, in bold."""

    def to_dict(self) -> dict:
        """The `rag ask --json` object."""
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "confidence": round(self.confidence, 4),
            "mode": self.mode,
            **({"notice": self.notice} if self.notice else {}),
            **({"searched": self.searched} if self.searched else {}),
            **({"direct": self.direct} if self.direct else {}),
            **({"groups": [asdict(g) for g in self.groups]} if self.groups else {}),
            **({"sentences": [asdict(c) for c in self.claims]} if self.claims else {}),
            # "file", not "path": gradio_client takes any dict with a "path" key for a file to download.
            "citations": [{**_public(asdict(c)), "score": round(c.score, 4)} for c in self.citations],
            "passages": [
                {
                    "chunk_id": h.chunk_id,
                    "article_id": h.article_id,
                    "title": h.title,
                    "source": h.source,
                    "published": h.published,
                    "text": h.text,
                    "score": round(h.score, 6),
                }
                for h in self.passages
            ],
        }


def _public(fields: dict) -> dict:
    """A citation's fields as the JSON API names them: its `path` is called `file`."""
    return {("file" if key == "path" else key): value for key, value in fields.items()}


def citation(n: int, scored: ScoredSentence) -> Citation:
    hit, sentence = scored.hit, scored.sentence
    return Citation(
        n=n,
        sentence=sentence.text,
        article_id=sentence.article_id,
        title=hit.title,
        source=hit.source,
        published=hit.published,
        url=hit.url,
        path=hit.path,
        start=sentence.start,
        end=sentence.end,
        score=scored.score,
    )


def refusal(evidence: Evidence, mode: str = "extractive") -> Answer:
    """The answer that says the indexed articles do not hold it (and, when the
    question cites an outlet the index lacks, says which)."""
    missing = " or ".join(evidence.unknown_outlets)
    return Answer(
        question=evidence.question,
        text=NOT_FOUND,
        abstained=True,
        passages=evidence.passages,
        query=evidence.query,
        confidence=evidence.confidence,
        mode=mode,
        notice=f"The index holds no article from {missing}, which the question cites." if missing else "",
    )


@dataclass(frozen=True)
class _Search:
    """One look at the index for a question, before its sentences are scored."""

    question: str
    query: str
    """The question as searched (a follow-up's expanded with the conversation)."""
    outlets: list[str]
    unknown: list[str]
    """Outlets the question cites that the index holds nothing from."""
    days: set[str]
    several: bool
    clauses: list[str]
    vector: np.ndarray
    expanded: np.ndarray
    part_vectors: np.ndarray
    hits: list[Hit]
    read: int
    """How many of `hits` are read for sentences."""


class Answerer:
    """`Answerer(store, embedder, retriever)(question, history=(), k=DEFAULT_K)` -> Answer."""

    def __init__(
        self,
        store: IndexStore,
        embedder: Embedder,
        retriever: Retriever,
        max_sentences: int = 3,
        max_with_context: int = 3,
        read_chunks: int = 12,
        abstain_below: float = 0.55,
        coverage_weight: float = 0.5,
        keep_ratio: float = 0.88,
        context_weight: float = 0.5,
        overlap_weight: float = 1.0,
        max_redundancy: float = 0.95,
        read_chunks_several: int = 10,
        max_articles: int = 4,
        several_keep: float = 0.65,
        min_named: float = 0.5,
        vote_articles: int = 6,
        show_direct: bool = True,
        lend_context: bool = True,
        part_chunks: int = 4,
        part_weight: float = 0.85,
        part_lead: int = 3,
        answer_bonus: float = 0.05,
    ):
        """Defaults measured on the SQuAD and MultiHop-RAG dev data (docs/evaluation.md):
        up to three sentences (with the ones they lean on), each scoring at least
        `keep_ratio` of the best one: fewer, better sentences (SQuAD: 2.74 cited,
        37 % of them holding the answer -> 1.58 and 58 %, for 0.889 -> 0.860 hit),
        chosen among the sentences of the best `read_chunks` chunks (5 -> 12, with
        `keep_ratio` 0.87 -> 0.88: hit 0.860 -> 0.865, 1.56 cited, 59 % holding it);
        question words in the sentence before count `context_weight` as much;
        a sentence whose vector is closer than `max_redundancy` to one already
        picked repeats it and is left out.

        A question that needs several sources (`rag.sources.needs_several`) reads
        `read_chunks_several` chunks and cites the best sentence of each named
        outlet's best article (kept if it scores `min_named` x the best), then of
        further articles scoring `several_keep` x the best, up to `max_articles`.
        Such a question is also searched part by part (`rag.parts`): each clause's
        `part_chunks` best chunks join the candidates, and each clause's best
        sentence (scored against the clause, blended `part_weight` with the whole
        question) comes from its own article (MultiHop-RAG dev, every needed article
        cited: comparison 0.703 -> 0.741, inference 0.225 -> 0.310; mostly the
        clause's own score, 0.85: cite-hit 0.759 -> 0.769, flat from 0.7 to 1). The passages
        shown are the whole question's best `part_lead`, then each part's best
        (all evidence in the top 10: 0.415 -> 0.454). The passages read are shown
        best sentence first (`rag.evidence.by_best_sentence`). When such a question
        asks for a name and the answer has one, the sentences that say it are lifted
        by `answer_bonus` and the sources picked again: its sources are the articles
        that speak of it (inference, every needed article cited 0.310 -> 0.339; flat
        from 0.05 to 0.2).
        A penalty for a sentence without the name, date or number asked for, and a
        bonus for the name the best articles share, each helped one data set and cost
        the other, so neither is applied (docs/evaluation.md).

        Abstention weighs meaning and wording together (`bench/abstain.py`): by
        similarity alone, an answer phrased unlike its question was refused, and
        at the threshold that refused 0.7 % of answerable dev questions, similarity
        plus half the word coverage refused 69 % of MultiHop-RAG null queries
        against 25 % by similarity alone."""
        self.store = store
        self.embedder = embedder
        self.retriever = retriever
        self.max_sentences = max_sentences
        self.max_with_context = max_with_context
        self.read_chunks = read_chunks
        self.abstain_below = abstain_below
        self.coverage_weight = coverage_weight
        self.overlap_weight = overlap_weight
        self.keep_ratio = keep_ratio
        self.context_weight = context_weight
        self.max_redundancy = max_redundancy
        self.read_chunks_several = read_chunks_several
        self.max_articles = max_articles
        self.several_keep = several_keep
        self.min_named = min_named
        self.vote_articles = vote_articles
        self.show_direct = show_direct
        self.lend_context = lend_context
        self.part_chunks = part_chunks
        self.part_weight = part_weight
        self.part_lead = part_lead
        self.answer_bonus = answer_bonus
        self._stem = Stemmer.Stemmer("english").stemWord

    def gather(
        self, question: str, history: Sequence[Turn] = (), k: int = DEFAULT_K, filters: Filters | None = None
    ) -> Evidence:
        """The sentences an answer can be made of (`evidence`). A question of
        several parts that asks for a name is looked into twice: the name the
        first look finds is searched with each part, so that each finds the
        article that says it of that name ("… is planning to enhance its
        capabilities with the release of GPT-4" finds what OpenAI plans, not what
        any company plans; MultiHop-RAG dev, inference questions: every needed
        article cited 0.415 -> 0.427, all evidence in the top 10 0.474 -> 0.494).
        The second look reuses the first's question vectors and search."""
        search = self._search(question, history, k, filters)
        evidence = self._evidence(search, history, k, filters)
        if not evidence.parts or evidence.asks != cues.NAME or evidence.abstain or not evidence.sentences:
            return evidence
        name = self._short(evidence, self._per_source(evidence)[1])
        return self._evidence(search, history, k, filters, hint=name) if name else evidence

    def evidence(
        self, question: str, history: Sequence[Turn] = (), k: int = DEFAULT_K, filters: Filters | None = None
    ) -> Evidence:
        """Retrieve and score the sentences an answer can be made of (one look)."""
        return self._evidence(self._search(question, history, k, filters), history, k, filters)

    def _search(self, question: str, history: Sequence[Turn], k: int, filters: Filters | None) -> _Search:
        """What the question names, its parts, its vectors and the chunks it finds."""
        question = " ".join(question.split())
        query = contextual_query(question, history)
        outlets = named_outlets(question, self.retriever.mentioned_sources(question))
        # A question that cites an outlet the index holds nothing from cannot be
        # answered from it (MultiHop-RAG dev: 97 of 126 null queries, no answerable one).
        unknown = unknown_outlets(question, self.retriever.sources)
        days = mentioned_dates(question)
        spans = parts(question, outlets)
        several = needs_several(question, outlets, days, len(spans))
        spans = spans if several and len(spans) > 1 else []
        # The only embedding at answer time: the question (and a follow-up's
        # expanded query; on a second look, each part with the name the first
        # found); sentence vectors were made by the build. A part's
        # vector is pooled from the question's own pass, so it keeps the
        # question's topic ("… before his company's downfall").
        texts = [question] if query == question else [question, query]
        if spans:
            vectors, span_vectors = self.embedder.embed(texts, [spans] + [[]] * (len(texts) - 1))
            part_vectors = span_vectors[0]
        else:
            vectors, part_vectors = self.embedder(texts), np.zeros((0, 0), np.float32)
        read = self.read_chunks_several if several else self.read_chunks
        hits = self.retriever(query, k=max(k, read), filters=filters, query_vector=vectors[-1][None])
        clauses = [question[start:end] for start, end in spans]
        return _Search(question, query, outlets, unknown, days, several, clauses, vectors[0], vectors[-1], part_vectors, hits, read)

    def _evidence(
        self, search: _Search, history: Sequence[Turn], k: int, filters: Filters | None, hint: str = ""
    ) -> Evidence:
        """The sentences `search` found, scored; `hint`, a name the answer is
        thought to be, is searched with each part."""
        question, query, outlets, days, clauses = search.question, search.query, search.outlets, search.days, search.clauses
        q, expanded, part_vectors, hits, read = search.vector, search.expanded, search.part_vectors, search.hits, search.read
        texts = [f"{clause} {hint}" if hint else clause for clause in clauses]
        if hint and clauses:
            part_vectors = self.embedder(texts)
        clause_outlets = [named_outlets(c, self.retriever.mentioned_sources(c)) for c in clauses]
        part_hits = [
            # A part that names its outlet (or its day) searches that outlet's (day's) articles only.
            self.retriever(
                with_outlets(text, outlets, own),
                k=self.part_chunks,
                filters=narrowed(filters, own, mentioned_dates(clause)),
                query_vector=vector[None],
            )
            for clause, text, own, vector in zip(clauses, texts, clause_outlets, part_vectors)
        ]
        found = hits[:read] + [hit for found_by_part in part_hits for hit in found_by_part]
        candidates = self._candidates(found)
        asked = self._terms(question)
        words = {c.key: self._terms(c.text) for c in candidates}
        asks = cues.asks_for(question)
        if candidates:
            self._score(question, query, q, expanded, candidates, asked, words)
        confidence = max((c.similarity for c in candidates), default=0.0)
        confidence += self.coverage_weight * coverage(asked, candidates, words)
        ranked = sorted(candidates, key=lambda c: -c.score)
        # A follow-up wants something new (`rag.followup.not_repeated`); a
        # question that stands on its own is answered as if asked first.
        if query != question:
            ranked = not_repeated(ranked, history, self.keep_ratio)
        abstain = confidence < self.abstain_below or bool(search.unknown)
        part_scores = eligible = None
        if clauses and ranked:
            part_scores = self._part_scores(clauses, part_vectors, ranked, words)
            eligible = np.array([[c.hit.source.lower() in {o.lower() for o in own} for c in ranked] for own in clause_outlets])
        hits = by_best_sentence(hits[:read], ranked) + hits[read:]
        passages = with_parts(hits, part_hits, k, self.part_lead) if part_hits else hits[:k]
        return Evidence(
            question, query, passages, ranked, confidence, abstain, outlets, days, search.several, asks, search.unknown, clauses, part_scores, eligible
        )

    def _part_scores(
        self, clauses: list[str], vectors: np.ndarray, ranked: list[ScoredSentence], words: dict
    ) -> np.ndarray:
        """(parts, sentences): each sentence's score against each part of the
        question (similarity + word overlap, as `_score`), blended with its score
        against the whole question by `part_weight`."""
        sentence_vectors = np.stack([c.vector for c in ranked])
        own = [words[c.key] for c in ranked]
        before = [words.get(previous_key(c.key), set()) for c in ranked]
        whole = np.array([c.score for c in ranked])
        rows = []
        for clause, vector in zip(clauses, vectors):
            overlap = np.array(weighted_overlap(self._terms(clause), own, before, self.context_weight))
            rows.append(self.part_weight * (sentence_vectors @ vector + self.overlap_weight * overlap) + (1 - self.part_weight) * whole)
        return np.stack(rows)

    def __call__(
        self, question: str, history: Sequence[Turn] = (), k: int = DEFAULT_K, filters: Filters | None = None
    ) -> Answer:
        return self.compose(self.gather(question, history, k, filters))

    def compose(self, evidence: Evidence) -> Answer:
        """The answer made of `evidence`: its best sentences, or by source, or a refusal."""
        if evidence.abstain:
            return refusal(evidence)
        groups: list[SourceGroup] = []
        if evidence.several:
            picked, citations, groups = self._per_source(evidence)
            direct = self._short(evidence, citations)
            if direct and evidence.asks == cues.NAME and self.answer_bonus:
                # The sources of a name are the articles that speak of it: sentences
                # that say it are lifted and the sources picked again.
                said = np.array([cues.mentions(c.text, direct) for c in evidence.sentences], float)
                picked, citations, groups = self._per_source(lifted(evidence, self.answer_bonus * said))
            text = grouped_text(citations, groups)
        else:
            picked = self._with_context(self._pick(evidence.sentences), evidence.sentences)
            citations = [citation(n, c) for n, c in enumerate(picked, start=1)]
            text = " ".join(f"{c.sentence} [{c.n}]" for c in citations)
            direct = self._short(evidence, citations)
        direct = direct if self.show_direct else ""
        if direct:
            text = f"**{direct}** — {text}"
        return Answer(
            question=evidence.question,
            text=text,
            abstained=False,
            citations=citations,
            passages=cited_first(evidence.passages, picked),
            query=evidence.query,
            confidence=evidence.confidence,
            groups=groups,
            direct=direct,
        )

    def _short(self, evidence: Evidence, citations: list[Citation]) -> str:
        """The name, date or number asked for (`rag.cues.short_answer`)."""
        best = evidence.sentences[0].sentence if evidence.sentences else None
        cites_best = best is not None and any(c.article_id == best.article_id and c.start == best.start for c in citations)
        # The articles read, for a name's full form: news writes it in full once, then by last name or initials.
        reads_names = evidence.asks == cues.NAME and self.store is not None  # composing alone (tests) reads no store
        ids = dict.fromkeys(c.sentence.article_id for c in evidence.sentences) if reads_names else {}
        articles = [self.store.article_text(i) for i in ids]
        return cues.short_answer(evidence, [c.sentence for c in citations], cites_best, self.vote_articles, articles=articles)

    def _per_source(self, evidence: Evidence) -> tuple[list[ScoredSentence], list[Citation], list[SourceGroup]]:
        """The best sentence of each needed article, grouped by outlet (`rag.sources`)."""
        ranked = evidence.sentences
        outlet_of = {c.sentence.article_id: c.hit.source for c in ranked}
        day_of = {c.sentence.article_id: c.hit.published for c in ranked}
        first = (
            pick_per_part(ranked, evidence.part_scores, evidence.part_eligible) if evidence.part_scores is not None else []
        )
        most = max(self.max_articles, len(first))
        picked, _ = pick_per_source(
            ranked, outlet_of, day_of, evidence.outlets, evidence.days, most, self.several_keep, self.min_named, first
        )
        picked, order = in_outlet_order(picked, outlet_of, evidence.outlets)
        citations = [citation(n, c) for n, c in enumerate(picked, start=1)]
        return picked, citations, source_groups(citations, order, evidence.outlets)

    def _candidates(self, hits: list[Hit]) -> list[ScoredSentence]:
        """Sentences of the given chunks, once each, in hit order."""
        seen: set[tuple[str, int]] = set()
        out = []
        texts: dict[str, str] = {}
        for hit in hits:
            if hit.article_id not in texts:
                texts[hit.article_id] = self.store.article_text(hit.article_id)
            for row in self.store.sentences(hit.article_id, hit.first_sentence, hit.last_sentence):
                if (hit.article_id, row.position) in seen:
                    continue
                seen.add((hit.article_id, row.position))
                # A chunk may hold only a piece of an over-long sentence: cite the piece.
                start, end = max(row.start, hit.start), min(row.end, hit.end)
                sentence = Sentence(hit.article_id, row.position, start, end, texts[hit.article_id][start:end])
                out.append(ScoredSentence(sentence, hit, row.vector))
        return out

    def _score(
        self,
        question: str,
        query: str,
        q: np.ndarray,
        expanded: np.ndarray,
        candidates: list[ScoredSentence],
        asked: set[str],
        words: dict[tuple[str, int], set[str]],
    ) -> None:
        """score = similarity + `overlap_weight` x word overlap. Sentence vectors pooled
        in their chunk's context (late chunking) tell a chunk's sentences apart less
        sharply than vectors of sentences read alone, so the question's words weigh
        more than they did then (0.5), and the chunk's retrieval rank, which the
        context already carries, no longer adds (it was 0.25 / (1 + rank)):
        MultiHop-RAG dev citation hit 0.575 -> 0.702, SQuAD answer-sentence hit
        0.893 -> 0.893 (docs/evaluation.md)."""
        sentence_vectors = np.stack([c.vector for c in candidates])
        own = [words[c.key] for c in candidates]
        before = [words.get(previous_key(c.key), set()) for c in candidates]
        overlaps = weighted_overlap(asked, own, before, self.context_weight)
        for c, v, overlap in zip(candidates, sentence_vectors, overlaps):
            c.similarity = float((v @ q + v @ expanded) / 2 if query != question else v @ q)
            c.score = c.similarity + self.overlap_weight * overlap

    def _terms(self, text: str) -> set[str]:
        return {self._stem(w.lower()) for w in WORD.findall(text) if w.lower() not in STOPWORDS}

    def _pick(self, ranked: list[ScoredSentence]) -> list[ScoredSentence]:
        """Maximal marginal relevance: good sentences that do not repeat each other."""
        best = ranked[0].score
        picked = [ranked[0]]
        for c in ranked[1:]:
            if len(picked) >= self.max_sentences or c.score < best * self.keep_ratio:
                break
            redundancy = max(float(c.vector @ p.vector) for p in picked)
            if redundancy < self.max_redundancy:
                picked.append(c)
        return picked

    def _with_context(self, picked: list[ScoredSentence], candidates: list[ScoredSentence]) -> list[ScoredSentence]:
        return with_context(picked, candidates, self.store, self.max_with_context, self.lend_context)
