"""The report's one inline script (sorting, filtering, paging) and the CSP hash that allows it.

The page works without it: every row and picture is in the HTML, visible. The
script only hides and reorders what is there; it fetches nothing, writes no
storage, and is allowed by the page's Content-Security-Policy through its
SHA-256 hash (no ``'unsafe-inline'`` for scripts).

Markup it reads:

- ``th[data-sort="num"|"text"]`` in a table's ``thead``: a click (or Enter)
  sorts the body rows by that column (``td[data-value]`` when given, else the
  cell's text), ascending first, then descending; ``aria-sort`` tells which.
  Missing numbers (``NaN``) sort last either way.
- ``[data-page-size]`` on a table (its body rows) or on any element (its
  children): shown a page at a time; ``.pager[data-for=ID]`` holds the
  previous/next buttons and a ``.page-info`` line.
- ``[data-for=ID][data-key=K][data-op=eq|has|min|max]`` inputs and selects:
  a row stays when its ``data-K`` equals, contains (case-insensitively), is at
  least, or is at most the control's value; an empty value keeps every row.
- A click on ``a[href^="#image-"]`` first turns the picture pages to the target.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["SCRIPT", "SCRIPT_HASH"]

SCRIPT = """\
"use strict";
(() => {
  const items = (el) => Array.from(el.tBodies ? el.tBodies[0].rows : el.children);
  const refresh = (el) => {
    const all = items(el);
    const kept = all.filter((r) => r.dataset.match !== "0");
    const size = Number(el.dataset.pageSize) || all.length || 1;
    const pages = Math.max(1, Math.ceil(kept.length / size));
    const page = Math.min(Math.max(Number(el.dataset.page) || 0, 0), pages - 1);
    el.dataset.page = String(page);
    for (const r of all) r.hidden = true;
    for (const r of kept.slice(page * size, (page + 1) * size)) r.hidden = false;
    for (const p of document.querySelectorAll(`.pager[data-for="${el.id}"]`)) {
      p.querySelector(".page-info").textContent =
        `page ${page + 1} of ${pages} (${kept.length} of ${all.length} shown)`;
      p.querySelector('[data-step="-1"]').disabled = page === 0;
      p.querySelector('[data-step="1"]').disabled = page >= pages - 1;
    }
  };
  const passes = (have, want, op) => {
    if (op === "eq") return have === want;
    if (op === "has") return have.toLowerCase().includes(want.toLowerCase());
    const a = Number(have), b = Number(want);
    return op === "min" ? a >= b : a <= b;
  };
  const filter = (el) => {
    const controls = document.querySelectorAll(`[data-for="${el.id}"][data-key]`);
    for (const row of items(el)) {
      let ok = true;
      for (const c of controls) {
        const want = c.dataset.op === "eq" ? c.value : c.value.trim();
        if (want !== "" && !passes(row.dataset[c.dataset.key] ?? "", want, c.dataset.op)) {
          ok = false;
          break;
        }
      }
      row.dataset.match = ok ? "1" : "0";
    }
    el.dataset.page = "0";
    refresh(el);
  };
  const sortBy = (th) => {
    const table = th.closest("table");
    const col = th.cellIndex;
    const numeric = th.dataset.sort === "num";
    const up = th.getAttribute("aria-sort") !== "ascending";
    for (const other of th.parentElement.children) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", up ? "ascending" : "descending");
    const key = (r) => r.cells[col].dataset.value ?? r.cells[col].textContent;
    const rows = items(table).sort((a, b) => {
      if (numeric) {
        const x = Number(key(a)), y = Number(key(b));
        const nx = Number.isNaN(x), ny = Number.isNaN(y);
        if (nx || ny) return nx - ny;
        return up ? x - y : y - x;
      }
      const d = key(a).localeCompare(key(b));
      return up ? d : -d;
    });
    table.tBodies[0].append(...rows);
    table.dataset.page = "0";
    refresh(table);
  };
  const reveal = (target) => {
    const el = target.parentElement;
    if (!el || !el.dataset.pageSize) return;
    const kept = items(el).filter((r) => r.dataset.match !== "0");
    const at = kept.indexOf(target);
    if (at < 0) return;
    el.dataset.page = String(Math.floor(at / Number(el.dataset.pageSize)));
    refresh(el);
  };
  for (const el of document.querySelectorAll("[data-page-size]")) refresh(el);
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.tabIndex = 0;
    th.addEventListener("click", () => sortBy(th));
    th.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        sortBy(th);
      }
    });
  }
  for (const c of document.querySelectorAll("[data-for][data-key]")) {
    const el = document.getElementById(c.dataset.for);
    if (el) c.addEventListener(c.tagName === "SELECT" ? "change" : "input", () => filter(el));
  }
  for (const p of document.querySelectorAll(".pager[data-for]")) {
    const el = document.getElementById(p.dataset.for);
    if (!el) continue;
    for (const b of p.querySelectorAll("button[data-step]")) {
      b.addEventListener("click", () => {
        el.dataset.page = String((Number(el.dataset.page) || 0) + Number(b.dataset.step));
        refresh(el);
      });
    }
  }
  document.addEventListener("click", (e) => {
    const a = e.target.closest && e.target.closest('a[href^="#image-"]');
    const target = a && document.getElementById(a.getAttribute("href").slice(1));
    if (target) reveal(target);
  });
  const start = location.hash && document.getElementById(location.hash.slice(1));
  if (start && start.matches("article.image-row")) {
    reveal(start);
    start.scrollIntoView();
  }
})();
"""

#: The ``'sha256-...'`` source that lets exactly :data:`SCRIPT` run under the page's CSP.
SCRIPT_HASH = "'sha256-{}'".format(
    base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
)
