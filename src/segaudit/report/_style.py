"""The report's inline CSS and its Content-Security-Policy (nothing may be fetched)."""

from __future__ import annotations

__all__ = ["CSP", "STYLE"]

#: Forbid every fetch and every script: pictures are ``data:`` URIs, styles are inline.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

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
"""
