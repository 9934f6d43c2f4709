"""Symbolic links in the corpus: one that leads out of it (to a root-only file, say)
is reported by name and not read unless `allow_outside_links`; links within the
corpus are followed as before (issue 17, item 12)."""

from __future__ import annotations

import dataclasses

from conftest import article_text

from rag.build import Builder
from rag.ingest import list_corpus
from rag.settings import Settings
from rag.store import IndexStore

SECRET = "The vault combination is 31-41-59 and the spare key sits under the third brick of the wall."


def indexed(settings: Settings) -> dict[str, str]:
    store = IndexStore(settings.index_dir)
    try:
        return {r[0]: r[1] for r in store.db.execute("SELECT id, text FROM articles")}
    finally:
        store.close()


def test_links_out_of_the_corpus_are_refused_unless_allowed(tmp_path, embedder, monkeypatch):
    private = tmp_path / "private"
    private.mkdir()
    secret = private / "shadow.txt"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "ports.txt").write_text(article_text("ports"))
    (corpus / "sub" / "inside.txt").symlink_to("../ports.txt")  # within the corpus: followed
    (corpus / "leak.txt").symlink_to(secret)
    (corpus / "sub" / "up.txt").symlink_to("../../private/shadow.txt")  # relative, still outside
    (corpus / "gone.txt").symlink_to(tmp_path / "nothing.txt")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")

    report = Builder(settings, embedder=embedder)()
    reasons = {s.path: s.reason for s in report.skipped}
    assert set(reasons) == {"leak.txt", "sub/up.txt", "gone.txt"}
    assert "outside the corpus folder" in reasons["leak.txt"] and "RAG_ALLOW_OUTSIDE_LINKS" in reasons["sub/up.txt"]
    assert "broken symbolic link" in reasons["gone.txt"]
    articles = indexed(settings)
    assert set(articles) == {"ports.txt", "sub/inside.txt"}
    assert not any("vault" in text for text in articles.values())

    allowed = dataclasses.replace(settings, allow_outside_links=True)
    assert Builder(allowed, embedder=embedder)().added == 2
    assert indexed(settings)["leak.txt"] == SECRET

    report = Builder(settings, embedder=embedder)()  # refused again: what it gave is removed
    assert report.removed == 2 and set(indexed(settings)) == {"ports.txt", "sub/inside.txt"}

    monkeypatch.setenv("RAG_ALLOW_OUTSIDE_LINKS", "true")
    assert Settings.from_env().allow_outside_links is True


def test_a_corpus_folder_that_is_itself_a_link_is_read(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.txt").write_text("A story.\n")
    (real / "b.txt").symlink_to(real / "a.txt")  # absolute, but inside the corpus
    link = tmp_path / "corpus"
    link.symlink_to(real)
    files, refused = list_corpus(link)
    assert [p.name for p in files] == ["a.txt", "b.txt"] and refused == []
