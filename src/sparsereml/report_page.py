"""One self-contained HTML page from report content: the figures are embedded PNGs and the style
and the table-sorting script are inline, so the file needs nothing else to be viewed (no network,
no other file).  The layout narrows to a phone's width (wide tables scroll sideways inside their
box) and prints without the navigation, with every table whole."""
from __future__ import annotations

import html
from datetime import datetime, timezone

from .report_content import Report, block_html
from .report_figures import FigureTask

__all__ = ["render_page"]

_STYLE = """
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --head: #f3f5f7; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header, main, nav { max-width: 68rem; margin: 0 auto; padding: 0 1rem; }
header { padding-top: 1rem; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.35rem; margin: 0.2rem 0; overflow-wrap: anywhere; }
header p { color: var(--muted); margin: 0.2rem 0 0.8rem; font-size: 0.85rem; }
nav { font-size: 0.85rem; padding-top: 0.6rem; padding-bottom: 0.6rem; border-bottom: 1px solid var(--line); }
nav a { color: var(--accent); text-decoration: none; margin-right: 0.9rem; white-space: nowrap; }
nav ul { margin: 0.2rem 0 0; padding-left: 1rem; columns: 14rem; }
h2 { font-size: 1.2rem; margin: 1.6rem 0 0.4rem; padding-top: 0.6rem; border-top: 2px solid var(--fg); }
h3 { font-size: 1.02rem; margin: 1.2rem 0 0.3rem; }
.line { white-space: pre-wrap; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
        font-size: 0.82rem; overflow-wrap: anywhere; }
.table-wrap { overflow: auto; width: fit-content; max-width: 100%; max-height: 32rem; margin: 0.4rem 0 0.8rem; }
table { border-collapse: collapse; font-size: 0.82rem; font-variant-numeric: tabular-nums; }
th, td { padding: 0.2rem 0.55rem; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
thead th { background: var(--head); position: sticky; top: 0; }
th:first-child, td:first-child { text-align: left; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th::after { content: " \\2195"; color: var(--muted); font-size: 0.75em; }
table.sortable thead th[aria-sort="ascending"]::after { content: " \\25B2"; color: var(--fg); }
table.sortable thead th[aria-sort="descending"]::after { content: " \\25BC"; color: var(--fg); }
figure { margin: 0.6rem 0 1rem; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 0.82rem; }
@media (max-width: 40rem) { body { font-size: 14px; } nav ul { columns: 1; } }
@media print {
  nav { display: none; }
  body { font-size: 11px; }
  .table-wrap { overflow: visible; max-height: none; }
  thead th { position: static; }
  figure, table { break-inside: avoid; }
  h2 { break-before: page; }
  h2:first-of-type { break-before: auto; }
}
"""

# Sorting by a click on a heading: numbers as numbers (NA last, "<2.2e-16" as its bound), other
# text in locale order; the sort is stable, and a second click reverses it.
_SCRIPT = """
(function () {
  function key(cell) {
    var t = cell.textContent.trim();
    if (t === "" || t === "NA") return null;
    var n = Number(t.replace(/^</, ""));
    return isNaN(n) ? t : n;
  }
  function compare(a, b) {
    if (a === null) return b === null ? 0 : 1;
    if (b === null) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, {numeric: true});
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead ? table.tHead.rows[table.tHead.rows.length - 1].cells : [];
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener("click", function () {
        var up = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", up ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows).map(function (r, i) {
          return {row: r, i: i, k: r.cells[col] ? key(r.cells[col]) : null};
        });
        rows.sort(function (a, b) {
          var c = compare(a.k, b.k);
          if (a.k !== null && b.k !== null && !up) c = -c;
          return c || a.i - b.i;
        });
        rows.forEach(function (r) { body.appendChild(r.row); });
      });
    });
  });
})();
"""


def _section_id(part: str, k: int) -> str:
    return f"{part}-s{k}"


#: where a figure still being drawn goes in a page (:func:`fill_figures`); no text of the page can
#: be it, as text is escaped
FIGURE_MARK = "<!--sparsereml-figure-->"


def fill_figures(page: str, figures: list) -> str:
    """The page with its figure marks replaced, in order, by ``figures`` (Plot, or the note
    saying why the fit cannot have the figure)."""
    pieces = page.split(FIGURE_MARK)
    if len(pieces) != len(figures) + 1:  # pragma: no cover - the figures are those of the page
        raise RuntimeError(f"{len(figures)} figures for a page with {len(pieces) - 1} places")
    out = [pieces[0]]
    for fig, piece in zip(figures, pieces[1:]):
        out += [block_html(fig), piece]
    return "".join(out)


def render_page(title: str, parts: list[tuple[str, str, Report]], sortable_from: int = 12) -> str:
    """The page: a heading, contents, then each part (heading, anchor, content) with its sections.
    A figure not drawn yet (a :class:`~sparsereml.report_figures.FigureTask`) is a mark for
    :func:`fill_figures`.

    Parameters
    ----------
    title : str
    parts : list of (str, str, Report)
        A part's heading, its anchor (unique, HTML-id safe) and its sections.
    sortable_from : int
        Tables with at least this many rows are sortable.
    """
    from . import __version__

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"<header><h1>{html.escape(title)}</h1><p>sparsereml {__version__} &middot; {when}</p></header>"]
    nav = ["<nav><strong>Contents</strong><ul>"]
    main = ["<main>"]
    for heading, anchor, rep in parts:
        nav.append(f'<li><a href="#{anchor}">{html.escape(heading)}</a></li>')
        main.append(f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>')
        for k, sec in enumerate(rep.sections):
            if sec.title:
                main.append(f'<h3 id="{_section_id(anchor, k)}">{html.escape(sec.title)}</h3>')
            main.extend(FIGURE_MARK if isinstance(b, FigureTask) else block_html(b, sortable_from) for b in sec.blocks)
        main.append("</section>")
    nav.append("</ul></nav>")
    main.append("</main>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body + nav + main) + f"\n<script>{_SCRIPT}</script>\n</body>\n</html>\n")
