"""One report content model rendered several ways: ``summary()`` text and the HTML a notebook
shows (``_repr_html_``); the HTML report of issue 16 renders the same sections.

A report is a list of :class:`Section`, each an optional title and blocks of text lines or tables.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Section", "Report", "format_value"]


def format_value(v) -> str:
    """A table cell as the text summary prints it (6 significant digits, NA for missing)."""
    if isinstance(v, str):
        return v
    return "NA" if v is None or not np.isfinite(v) else f"{v:.6g}"


@dataclass
class Section:
    """A titled part of a report: text lines and tables in order."""

    title: str | None = None
    blocks: list = field(default_factory=list)  # str (a line) or DataFrame

    def line(self, text: str) -> "Section":
        self.blocks.append(text)
        return self

    def table(self, df: pd.DataFrame) -> "Section":
        self.blocks.append(df)
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
                lines.append(b.to_string(formatters={c: format_value for c in b.columns})
                             if isinstance(b, pd.DataFrame) else b)
            parts.append("\n".join(lines))
        return "\n\n".join(parts)

    def to_html(self) -> str:
        out = ['<div class="sparsereml-report">']
        for s in self.sections:
            if s.title:
                out.append(f"<h4>{html.escape(s.title)}</h4>")
            for b in s.blocks:
                if isinstance(b, pd.DataFrame):
                    out.append(b.to_html(formatters={c: format_value for c in b.columns}, border=0, na_rep="NA"))
                else:
                    out.append(f"<div>{html.escape(b)}</div>")
        out.append("</div>")
        return "\n".join(out)
