"""One report content model rendered several ways: ``summary()`` text and the HTML a notebook
shows (``_repr_html_``); the HTML report of issue 16 renders the same sections.

A report is a list of :class:`Section`, each an optional title and blocks: text lines, tables
(DataFrames) and figures (:class:`Plot`, a PNG with its caption; the text rendering leaves them
out).  ``to_json``/``from_json`` keep the text and tables in ``fit.json``, so that a report rebuilt
from written results says what the fitted model said.
"""
from __future__ import annotations

import html
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Section", "Report", "Plot", "format_value", "format_cell", "table_text", "png_bytes"]


#: columns of p-values (Wald tests, anova, pairwise differences, comparisons): printed as R's
#: format.pval does below the precision of a double (chi2.sf underflows to 0 for large statistics)
P_VALUE_COLUMNS = frozenset({"Pr", "Pr(>F)", "p.value", "p_value"})
P_FLOOR = 2.2e-16


def format_cell(v, column) -> str:
    """A table cell as :func:`format_value` prints it, and a p-value below 2.2e-16 as "<2.2e-16"
    (not 0)."""
    if column in P_VALUE_COLUMNS and isinstance(v, (float, np.floating)) and np.isfinite(v) and v < P_FLOOR:
        return f"<{P_FLOOR:g}"
    return format_value(v)


def table_text(df: pd.DataFrame) -> str:
    """A table as text with its cells as :func:`format_cell` prints them."""
    return df.to_string(formatters={c: (lambda v, c=c: format_cell(v, c)) for c in df.columns})


def format_value(v) -> str:
    """A table cell as the text summary prints it (6 significant digits, NA for missing)."""
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return str(int(v))  # counts in full, not 1.23457e+06
    if v is None or v is pd.NA:
        return "NA"
    if isinstance(v, (float, np.floating)):
        return "NA" if not np.isfinite(v) else f"{v:.6g}"
    return str(v)  # a level label that is not text (a date, a bool)


@dataclass
class Plot:
    """A figure of a report: PNG bytes, its caption, and its size in pixels."""

    png: bytes
    caption: str
    width: int
    height: int

    @classmethod
    def from_figure(cls, fig, caption: str, dpi: int = 100) -> "Plot":
        """Render a matplotlib Figure (with the Agg canvas, without pyplot) to PNG; its layout
        engine, if any, lays it out in the one drawing."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
        if fig.get_dpi() != dpi:
            fig.set_dpi(dpi)
        canvas.draw()
        return cls.from_canvas(canvas, caption)

    @classmethod
    def from_canvas(cls, canvas, caption: str) -> "Plot":
        """The PNG of a drawn Agg canvas (:func:`png_bytes`)."""
        rgba = np.asarray(canvas.buffer_rgba())
        return cls(png_bytes(rgba), caption, int(rgba.shape[1]), int(rgba.shape[0]))


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_bytes(rgba: np.ndarray, level: int = 1) -> bytes:
    """An 8-bit RGBA image (rows top first) as PNG: RGB when it is opaque (a report's figures
    are), rows unfiltered and deflated at ``level``.  A plot is mostly runs of one colour, which
    deflate well as they are: PNG's per-row filters, which Pillow tries on every row, cost more
    time than they save bytes here."""
    rgba = np.asarray(rgba, dtype=np.uint8)
    h, w, _ = rgba.shape
    opaque = bool((rgba[..., 3] == 255).all())
    pixels = rgba[..., :3] if opaque else rgba
    rows = np.zeros((h, 1 + pixels.shape[2] * w), dtype=np.uint8)  # each row: filter type 0, then its bytes
    rows[:, 1:] = pixels.reshape(h, -1)
    header = struct.pack(">IIBBBBB", w, h, 8, 2 if opaque else 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + _png_chunk(b"IEND", b""))


@dataclass
class Section:
    """A titled part of a report: text lines and tables in order."""

    title: str | None = None
    blocks: list = field(default_factory=list)  # str (a line), DataFrame or Plot

    def line(self, text: str) -> "Section":
        self.blocks.append(text)
        return self

    def table(self, df: pd.DataFrame) -> "Section":
        self.blocks.append(df)
        return self

    def plot(self, figure: Plot) -> "Section":
        self.blocks.append(figure)
        return self


@dataclass
class Report:
    """Sections rendered as text (one blank line between sections) or as HTML."""

    sections: list = field(default_factory=list)

    def add(self, title: str | None = None) -> Section:
        s = Section(title)
        self.sections.append(s)
        return s

    def to_text(self) -> str:
        parts = []
        for s in self.sections:
            lines = [s.title] if s.title else []
            for b in s.blocks:
                if isinstance(b, pd.DataFrame):
                    lines.append(table_text(b))
                elif isinstance(b, str):
                    lines.append(b)
            parts.append("\n".join(lines))
        return "\n\n".join(parts)

    def to_html(self, heading: str = "h4", sortable_from: int | None = None) -> str:
        """HTML of the sections (a ``div``); tables of at least ``sortable_from`` rows get the
        class ``sortable`` (the full report's script sorts them by a click on a heading)."""
        out = ['<div class="sparsereml-report">']
        for s in self.sections:
            if s.title:
                out.append(f"<{heading}>{html.escape(s.title)}</{heading}>")
            for b in s.blocks:
                out.append(block_html(b, sortable_from))
        out.append("</div>")
        return "\n".join(out)

    def to_json(self) -> list:
        """The sections' text and tables as JSON-ready lists (figures are left out)."""
        from .fitresults import frame_to_json

        return [{"title": s.title,
                 "blocks": [{"table": frame_to_json(b)} if isinstance(b, pd.DataFrame) else {"line": b}
                            for b in s.blocks if isinstance(b, (str, pd.DataFrame))]}
                for s in self.sections]

    @classmethod
    def from_json(cls, sections: list) -> "Report":
        from .fitresults import frame_from_json

        rep = cls()
        for s in sections:
            sec = rep.add(s["title"])
            for b in s["blocks"]:
                sec.blocks.append(frame_from_json(b["table"]) if "table" in b else b["line"])
        return rep


def table_html(df: pd.DataFrame, classes: str = "dataframe") -> str:
    """A table with one header row (the columns) and the cells as :func:`format_value` prints them
    (pandas' to_html takes 15 ms for a table of 500 rows; this a tenth of that)."""
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in df.columns)
    cols = [[esc(format_cell(v, c)) for v in df[c].tolist()] for c in df.columns]
    rows = ["<tr>" + "".join(f"<td>{col[i]}</td>" for col in cols) + "</tr>" for i in range(len(df))]
    return (f'<table class="{classes}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody>\n</table>")


def block_html(b, sortable_from: int | None = None) -> str:
    """One block as HTML: a line of text, a table (numbers as the text shows them) or a figure
    (an embedded PNG, so the page needs no other file)."""
    if isinstance(b, pd.DataFrame):
        sortable = sortable_from is not None and len(b) >= sortable_from
        # one header row (the index as the first column, unless it only numbers the rows), so
        # that a click on any heading sorts by that column
        unnamed_range = isinstance(b.index, pd.RangeIndex) and b.index.name is None
        table = table_html(b if unnamed_range else b.reset_index(), "dataframe sortable" if sortable else "dataframe")
        return f'<div class="table-wrap">{table}</div>'
    if isinstance(b, Plot):
        import base64

        data = base64.b64encode(b.png).decode("ascii")
        cap = html.escape(b.caption)
        return (f'<figure><img src="data:image/png;base64,{data}" width="{b.width}" height="{b.height}" '
                f'alt="{cap}"><figcaption>{cap}</figcaption></figure>')
    return f'<div class="line">{html.escape(b)}</div>'

