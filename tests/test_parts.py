"""Question parts (rag/parts.py): a question that asks several things at once is
searched clause by clause, and the answer cites each clause's article."""

from __future__ import annotations

import numpy as np
import pytest

from rag.parts import parts, pick_per_part, with_parts
from rag.retrieve import Filters, narrowed

LONG = (
    "Which company, known for its Prime-themed sale day as reported by Wired and its dominance in the "
    "e-reader space according to The Verge, experienced a 4 percent stock drop after an antitrust lawsuit "
    "reported by The Sydney Morning Herald?"
)


def texts(question, outlets=()):
    return [question[a:b] for a, b in parts(question, outlets)]


@pytest.mark.parametrize(
    ("question", "outlets", "expected"),
    [
        # One clause: one part, the whole question.
        ("Why did Russia-Turkey ties sour?", (), ["Why did Russia-Turkey ties sour?"]),
        # Commas and "and" + a clause start split; each outlet ends its clause.
        (
            LONG,
            ("Wired", "The Verge", "The Sydney Morning Herald"),
            [
                "Which company, known for its Prime-themed sale day as reported by Wired",
                "its dominance in the e-reader space according to The Verge",
                "experienced a 4 percent stock drop after an antitrust lawsuit reported by The Sydney Morning Herald?",
            ],
        ),
        # The comma of a date and of a number does not split; a short piece joins its neighbour.
        (
            "After TechCrunch reported on October 31, 2023 about Google's search deals worth 26,000 million, "
            "and again on December 15, 2023, about an antitrust suit filed against Google, did its tone change?",
            ("TechCrunch",),
            [
                "After TechCrunch reported on October 31, 2023 about Google's search deals worth 26,000 million",
                "again on December 15, 2023, about an antitrust suit filed against Google, did its tone change?",
            ],
        ),
        # "the TechCrunch report on …": an outlet that names the report after it ends no clause.
        (
            "Was there a change in the portrayal of Google between the TechCrunch report on deepfake election "
            "safeguards and the Fortune article on the news publisher suing Google?",
            ("TechCrunch", "Fortune"),
            [
                "Was there a change in the portrayal of Google between the TechCrunch report on deepfake election safeguards",
                "the Fortune article on the news publisher suing Google?",
            ],
        ),
        # "and" before a modal verb starts a clause: what the subject may do is a second thing asked.
        (
            "Who is the player that, according to Sporting News, is the top wide receiver for Week 14 "
            "and may struggle to reach 2,000 receiving yards against strong pass defenses?",
            ("Sporting News",),
            [
                "Who is the player that, according to Sporting News, is the top wide receiver for Week 14",
                "may struggle to reach 2,000 receiving yards against strong pass defenses?",
            ],
        ),
        # An opening that only says what kind of name is asked for joins the clause after it.
        (
            "Which leading AI development company, founded in late 2015 in San Francisco, is expected to release GPT-4 with vision?",
            (),
            [
                "Which leading AI development company, founded in late 2015 in San Francisco",
                "is expected to release GPT-4 with vision?",
            ],
        ),
        # A short piece that says where the clause before it was reported belongs to that clause ...
        (
            "Which football club is the dream purchase for Sir Jim Ratcliffe, as discussed on TalkSport, that also "
            "recently faced elimination from European competitions after a loss at home to Bayern, as reported by "
            "Sporting News?",
            ("TalkSport", "Sporting News"),
            [
                "Which football club is the dream purchase for Sir Jim Ratcliffe, as discussed on TalkSport",
                "that also recently faced elimination from European competitions after a loss at home to Bayern, "
                "as reported by Sporting News?",
            ],
        ),
        # ... and one that opens the question, to the clause after it.
        (
            "According to TechCrunch, which company paid $26.3 billion to be the default search engine, "
            "as reported by The Verge?",
            ("TechCrunch", "The Verge"),
            [
                "According to TechCrunch, which company paid $26.3 billion to be the default search engine, "
                "as reported by The Verge?",
            ],
        ),
        # "X and Y" inside a clause is not a boundary, nor is a clause start inside a word ("in-app").
        (
            "Which company is implicated in releasing a limited AI model, and has the capability to address "
            "Android app distribution and in-app payment system issues?",
            (),
            [
                "Which company is implicated in releasing a limited AI model",
                "has the capability to address Android app distribution and in-app payment system issues?",
            ],
        ),
        (
            "Did Julian Alvarez and Alejandro Garnacho both score for Argentina in the qualifier?",
            (),
            [
                "Did Julian Alvarez and Alejandro Garnacho both score for Argentina in the qualifier?"
            ],
        ),
    ],
)
def test_parts_are_the_clauses(question, outlets, expected):
    assert texts(question, outlets) == expected


def test_parts_at_most_max_parts_shortest_neighbours_joined():
    question = (
        "Which firm built new factories in Ohio last year, sold charging cables in pairs to gamers, "
        "ran invite-only deals during its summer sale, and gave sellers a life-changing opportunity online?"
    )
    four = texts(question)
    assert len(four) == 4
    two = [question[a:b] for a, b in parts(question, max_parts=2)]
    assert len(two) == 2
    assert " ".join(two).replace(" ,", ",") != ""  # every word kept, in order
    assert two[0].startswith("Which firm") and two[-1].endswith("opportunity online?")


class Sentence:
    def __init__(self, article, position):
        self.key = (article, position)
        self.score = 0.0


def test_pick_per_part_takes_each_parts_best_from_a_new_article():
    ranked = [Sentence("a", 0), Sentence("a", 1), Sentence("b", 0), Sentence("c", 0)]
    scores = np.array(
        [
            [0.9, 0.5, 0.2, 0.1],  # part 1: article a
            [0.8, 0.3, 0.75, 0.1],  # part 2: a is best, but b is close and new
            [
                0.9,
                0.1,
                0.1,
                0.3,
            ],  # part 3: a is far better than anything new: a again (same sentence: once)
        ]
    )
    picked = pick_per_part(ranked, scores)
    assert [s.key for s in picked] == [("a", 0), ("b", 0)]


def test_pick_per_part_keeps_to_the_outlet_a_part_names():
    ranked = [Sentence("a", 0), Sentence("b", 0), Sentence("c", 0)]
    scores = np.array([[0.9, 0.2, 0.4], [0.9, 0.2, 0.4]])
    eligible = np.array(
        [[False, True, False], [False, False, False]]
    )  # part 2: its outlet had nothing
    picked = pick_per_part(ranked, scores, eligible)
    assert [s.key for s in picked] == [("b", 0), ("a", 0)]
    assert pick_per_part([], np.zeros((2, 0))) == []


def test_narrowed_to_a_parts_outlet_and_day_never_widens_the_filters():
    assert narrowed(None) is None
    assert narrowed(None, ["Wired"]) == Filters(sources=("Wired",))
    dated = Filters(date_from="2023-10-01")
    assert narrowed(dated, ["Wired"]) == Filters(sources=("Wired",), date_from="2023-10-01")
    only_verge = Filters(sources=("The Verge",))
    assert narrowed(only_verge, ["Wired"]) == only_verge  # the reader's filter wins
    assert narrowed(Filters(sources=("wired", "The Verge")), ["Wired"]) == Filters(sources=("Wired",))
    assert narrowed(None, [], {"2023-10-07"}) == Filters(date_from="2023-10-07", date_to="2023-10-07")
    assert narrowed(None, [], {"2023-10-07", "2023-10-09"}) is None  # two days: no one day to keep to
    assert narrowed(dated, [], {"2023-09-30"}) is dated  # a day the reader's dates leave out


ARTICLES = {
    "trial.txt": (
        "Crypto founder's fraud trial opens in Manhattan",
        "Tech Daily",
        "October 3, 2023",
        "The criminal trial of the crypto exchange founder Sam Bankman-Fried began on Tuesday in Manhattan. "
        "Jury selection took most of the first morning. The judge warned both sides to keep their opening "
        "statements short.",
    ),
    "plea.txt": (
        "Founder pleads not guilty to new charges",
        "Tech Daily",
        "August 15, 2023",
        "Bankman-Fried entered a plea of not guilty to seven charges of fraud and conspiracy. "
        "His lawyers asked for more time to review the evidence. The hearing lasted under an hour.",
    ),
    "colleague.txt": (
        "How a trader was lured from Jane Street",
        "Money Times",
        "October 12, 2023",
        "Caroline Ellison said Bankman-Fried persuaded her to leave Jane Street and join his trading firm. "
        "She told the court the firm grew quickly. Its offices moved to the Bahamas in 2021.",
    ),
    "weather.txt": (
        "Storms close the coast road",
        "Tech Daily",
        "October 5, 2023",
        "Heavy storms closed the coast road on Thursday. Crews cleared fallen trees overnight. "
        "Schools reopened on Friday.",
    ),
    "phones.txt": (
        "A phone with a bigger battery",
        "Tech Daily",
        "October 4, 2023",
        "The new phone has a bigger battery and a brighter screen. Reviewers praised its camera. "
        "It goes on sale in November.",
    ),
}


@pytest.fixture(scope="module")
def crypto(tmp_path_factory, embedder):
    from rag.build import Builder
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    root = tmp_path_factory.mktemp("parts")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, (title, outlet, day, body) in ARTICLES.items():
        (corpus / name).write_text(f"{title}\n\n{outlet}\n\n{day}\n\n{body}\n")
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    Builder(settings, embedder=embedder)()
    return Pipeline(settings, embedder=embedder)


def test_each_clause_of_a_question_gets_its_own_article(crypto):
    question = (
        "Which individual, associated with the beginning of a criminal trial reported by Tech Daily and the "
        "persuasion of a former Jane Street colleague as detailed by Money Times, has also entered a "
        "not-guilty plea to charges as covered by Tech Daily?"
    )
    # The whole question's search reads one chunk only: the other articles can
    # come from the parts' own searches only.
    crypto.answerer.read_chunks_several = 1
    answer = crypto.ask(question)
    assert not answer.abstained
    cited = {c.path.rsplit("/", 1)[-1] for c in answer.citations}
    assert {"trial.txt", "plea.txt", "colleague.txt"} <= cited
    assert not cited & {"weather.txt", "phones.txt"}
    assert [g.source for g in answer.groups][:2] == ["Tech Daily", "Money Times"]
    assert "Bankman-Fried" in answer.text


class Chunk:
    def __init__(self, chunk_id):
        self.chunk_id = chunk_id


def test_passages_lead_with_the_question_then_each_parts_best():
    hits = [Chunk(i) for i in (1, 2, 3, 4, 5, 6)]
    part_hits = [[Chunk(9), Chunk(2)], [Chunk(1), Chunk(8)], [Chunk(7)]]
    shown = [h.chunk_id for h in with_parts(hits, part_hits, k=6, lead=2)]
    # The question's best two, then each part's best not shown yet (part 2's best,
    # chunk 1, is shown: its next one comes in the next round), then the rest.
    assert shown == [1, 2, 9, 7, 8, 3]
    assert [h.chunk_id for h in with_parts(hits, part_hits, k=3, lead=2)] == [1, 2, 9]
    assert [h.chunk_id for h in with_parts(hits, [], k=3)] == [1, 2, 3]


def test_passages_read_are_shown_best_sentence_first():
    from rag.evidence import by_best_sentence

    class Scored:
        def __init__(self, chunk, score):
            self.hit, self.score = Chunk(chunk), score

    hits = [Chunk(i) for i in (1, 2, 3, 4)]
    sentences = [Scored(3, 0.9), Scored(1, 0.8), Scored(3, 0.7), Scored(2, 0.5)]  # best first
    assert [h.chunk_id for h in by_best_sentence(hits, sentences)] == [3, 1, 2, 4]
    assert [h.chunk_id for h in by_best_sentence(hits, [])] == [1, 2, 3, 4]


def test_passages_shown_lead_with_the_cited_ones():
    from rag.evidence import cited_first

    class Scored:
        def __init__(self, chunk, score):
            self.hit, self.score = Chunk(chunk), score

    passages = [Chunk(i) for i in (1, 2, 3, 4)]
    # Cited in reading order; chunk 9 came from a part's own search, not among the passages.
    cited = [Scored(3, 0.6), Scored(9, 0.8), Scored(3, 0.5)]
    assert [h.chunk_id for h in cited_first(passages, cited)] == [9, 3, 1, 2]
    assert [h.chunk_id for h in cited_first(passages, [])] == [1, 2, 3, 4]
    assert [h.chunk_id for h in cited_first(passages[:1], cited)] == [9]
