"""Look of the page: theme, CSS, and the one piece of JavaScript (citation links)."""

from __future__ import annotations

import gradio as gr

# Local fonts only: the page must not fetch anything from the internet.
THEME = gr.themes.Soft(
    primary_hue="indigo",
    secondary_hue="amber",
    neutral_hue="slate",
    font=["Inter", "ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "DejaVu Sans Mono", "monospace"],
)

CSS = """
.gradio-container { width: 100% !important; max-width: 1320px !important; margin: 0 auto !important; }
#app-header { padding: 6px 4px 2px 4px; }
#app-header h1 { font-size: 1.55rem; font-weight: 700; margin: 0; letter-spacing: -0.01em; display: flex; align-items: center; gap: 10px; }
#app-header h1 svg { width: 1.5rem; height: 1.5rem; color: var(--color-accent); }
#app-header p { margin: 2px 0 0 0; color: var(--body-text-color-subdued); font-size: 0.95rem; }

/* chat */
#chat .answer { line-height: 1.6; }
#chat .cite-mark { font-size: 0.72rem; line-height: 1; vertical-align: 0.45em; margin: 0 1px 0 3px; }
#chat .cite-mark a {
  display: inline-block; min-width: 1.45em; padding: 0.18em 0.38em; border-radius: 999px; text-align: center; line-height: 1.1;
  background: var(--color-accent); color: white !important; text-decoration: none !important; font-weight: 700;
}
#chat .cite-mark a:hover { filter: brightness(1.15); box-shadow: 0 0 0 2px var(--color-accent-soft); }
#chat .answer-notice { display: block; margin-bottom: 6px; font-size: 0.8em; color: #b45309; }
#chat .answer-searched { display: block; margin-bottom: 6px; font-size: 0.8em; color: var(--body-text-color-subdued); }
#chat .unsupported { text-decoration: underline wavy #dc2626; text-underline-offset: 3px; }
#chat .unsupported-flag { font-size: 0.72em; color: #dc2626; margin-left: 4px; white-space: nowrap; }
#chat .answer-foot { display: block; margin-top: 6px; font-size: 0.78em; color: var(--body-text-color-subdued); }
#chat .typing { color: var(--color-accent); animation: blink 1s steps(2) infinite; }
@keyframes blink { 50% { opacity: 0; } }
#chat .abstain { border-left: 4px solid #d97706; background: rgba(217, 119, 6, 0.09); padding: 8px 12px; border-radius: 6px; }
#chat .abstain-title { display: block; font-weight: 700; color: #b45309; }
#chat .abstain-text { display: block; font-size: 0.92em; margin-top: 2px; }

/* sources panel */
#sources-col { max-height: 640px; overflow-y: auto; }
.sources-head { font-weight: 700; font-size: 0.85rem; text-transform: uppercase; letter-spacing: 0.05em;
  color: var(--body-text-color-subdued); margin: 2px 0 8px 2px; }
.sources-head.abstained { color: #b45309; }
.sources-empty { color: var(--body-text-color-subdued); font-size: 0.92rem; padding: 28px 18px; text-align: center;
  border: 1px dashed var(--border-color-primary); border-radius: 10px; }
.sources-empty-icon { font-size: 1.6rem; margin-bottom: 6px; opacity: 0.6; }
.src-card { display: flex; gap: 10px; padding: 10px 12px; margin-bottom: 10px; border-radius: 10px;
  border: 1px solid var(--border-color-primary); background: var(--block-background-fill);
  transition: box-shadow 0.3s, border-color 0.3s; scroll-margin-top: 12px; }
.src-card.flash { border-color: var(--color-accent); box-shadow: 0 0 0 3px var(--color-accent-soft); }
.src-num { flex: none; width: 1.6em; height: 1.6em; border-radius: 50%; background: var(--color-accent);
  color: white; font-size: 0.78rem; font-weight: 700; display: flex; align-items: center; justify-content: center; }
.src-near .src-num { background: #94a3b8; }
.src-body { min-width: 0; flex: 1; }
.src-title { font-weight: 650; font-size: 0.93rem; line-height: 1.3; }
.src-meta { font-size: 0.76rem; color: var(--body-text-color-subdued); margin-top: 2px; overflow-wrap: anywhere; }
.src-meta a { color: var(--color-accent); text-decoration: none; }
.src-outlet { font-weight: 600; }
.src-path { font-family: var(--font-mono); }
.src-score { font-size: 0.7rem; opacity: 0.8; cursor: help; white-space: nowrap; }
.src-same { font-size: 0.78rem; color: var(--body-text-color-subdued); font-style: italic; }
.src-passage { font-size: 0.86rem; line-height: 1.55; margin: 6px 0 0 0; color: var(--body-text-color); }
.src-passage mark { background: #fde68a; color: #1f2937; padding: 1px 2px; border-radius: 3px; }

/* articles tab */
.stats { display: flex; flex-wrap: wrap; gap: 8px; }
.stat { padding: 6px 12px; border-radius: 8px; border: 1px solid var(--border-color-primary); background: var(--block-background-fill); }
.stat-v { font-weight: 700; font-size: 1rem; }
.stat-k { font-size: 0.72rem; text-transform: uppercase; letter-spacing: 0.04em; color: var(--body-text-color-subdued); }
#status-line { font-size: 0.9rem; }
#watch-line, #watch-line p { font-size: 0.85rem; color: var(--body-text-color-subdued); }
#ask, #clear { white-space: nowrap; }
#articles table, #articles td, #articles th { font-family: var(--font) !important; font-size: 0.86rem; }
#examples-row .label { display: none; }
"""

# Citation marks are in-page links (href="#cite-N"); this scrolls the sources panel
# to the card and flashes it, instead of letting the link navigate.
HEAD = """
<script>
document.addEventListener("click", function (event) {
  var link = event.target.closest && event.target.closest('a[href^="#cite-"], a[href^="#passage-"]');
  if (!link) return;
  var card = document.getElementById(link.getAttribute("href").slice(1));
  if (!card) return;
  event.preventDefault();
  event.stopPropagation();
  card.scrollIntoView({behavior: "smooth", block: "nearest"});
  card.classList.add("flash");
  setTimeout(function () { card.classList.remove("flash"); }, 1600);
}, true);
</script>
"""
