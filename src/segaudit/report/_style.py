"""The report's inline CSS and its Content-Security-Policy (nothing may be fetched)."""

from __future__ import annotations

from segaudit.report._script import SCRIPT_HASH

__all__ = ["CSP", "STYLE"]

#: Forbid every fetch: pictures are ``data:`` URIs, styles are inline, and the one
#: script runs only because its hash is listed (no other script may run).
CSP = (
    f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src {SCRIPT_HASH}; "
    "base-uri 'none'; form-action 'none'"
)

STYLE = """\
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0; color: #1d1d1f; background: #fafafa; }
header { padding: 16px 24px 8px; background: #fff; border-bottom: 1px solid #ddd; }
h1 { margin: 0 0 4px; font-size: 22px; }
h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 0 0 2px; }
nav a { margin-right: 12px; color: #0a58ca; text-decoration: none; }
main { padding: 0 24px 32px; }
.note, .meta, .empty { color: #555; margin: 4px 0 10px; }
.empty { font-style: italic; }
table { border-collapse: collapse; background: #fff; margin-bottom: 8px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: middle; }
thead th { background: #f0f0f0; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary th { background: #f6f6f6; font-weight: 600; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 18px; }
ul.legend li { display: flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 14px; height: 14px; border: 1px solid #0003; }
.image-row { background: #fff; border: 1px solid #ddd; border-radius: 6px;
             padding: 10px 14px; margin-bottom: 14px; }
.stem { font-family: ui-monospace, Menlo, Consolas, monospace; }
.views { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; }
figcaption { color: #555; font-size: 12px; }
img { image-rendering: pixelated; max-width: 100%; height: auto; display: block;
      border: 1px solid #ccc; }
.views img { max-width: min(100%, 512px); }
section.warnings { background: #fff4e5; border: 2px solid #d9480f; border-radius: 6px;
                   padding: 4px 16px 8px; margin-top: 18px; }
section.warnings h2 { color: #a61e00; border-bottom: none; margin: 10px 0 4px; }
section.warnings li { white-space: pre-line; margin: 4px 0; font-weight: 600; }
th[data-sort] { cursor: pointer; user-select: none; white-space: nowrap; }
th[data-sort]::after { content: " \\2195"; color: #999; }
th[aria-sort="ascending"]::after { content: " \\25B2"; color: #1d1d1f; }
th[aria-sort="descending"]::after { content: " \\25BC"; color: #1d1d1f; }
.controls { display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center; margin: 6px 0; }
.controls label { display: flex; gap: 4px; align-items: center; }
.controls input[type="number"] { width: 7em; }
.pager { display: flex; gap: 10px; align-items: center; margin: 6px 0; }
.page-info { color: #555; }
table.heatmap td { min-width: 2.6em; text-align: right; font-size: 12px; padding: 2px 4px;
                   font-variant-numeric: tabular-nums; }
table.heatmap td.diag { outline: 2px solid #0a58ca; outline-offset: -2px; }
table.heatmap th { font-size: 12px; padding: 2px 4px; }
table.heatmap thead th.pred { writing-mode: vertical-rl; transform: rotate(180deg);
                              text-align: left; max-height: 12em; }
.scale { display: inline-block; width: 160px; height: 10px; vertical-align: middle;
         border: 1px solid #ccc; background: linear-gradient(to right, #fff, #7f0000); }
"""
