"""Progress of one fit: the stages before the iterations and each AI-REML iteration.

In a terminal a live status line (a spinner, the stage at work or the last iteration with its
logL, change, seconds per iteration and the time elapsed) sits under the permanent lines, so a
long data pass or analysis never looks stuck; elsewhere (a pipe, a file, a notebook, pytest)
the same permanent lines are printed plainly and nothing else.  ``rich`` draws the live line and
is imported only when one is shown.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import time
from typing import Callable, TextIO

__all__ = ["FitProgress", "iteration_line"]


def iteration_line(row: dict, previous: float | None) -> str:
    """The permanent line of one iteration, e.g.
    ``iteration   3  logL -12345.678901  change     +1.23456  0.123 s``.

    Parameters
    ----------
    row : dict
        An iteration row of :func:`sparsereml.ai_reml` ('iteration', 'loglik', 'seconds').
    previous : float or None
        logL of the iteration before (None for the first: no change is shown).
    """
    change = "" if previous is None else f"{row['loglik'] - previous:+.6g}"
    return (f"iteration {row['iteration']:3d}  logL {row['loglik']:.6f}  change {change:>12}  "
            f"{row['seconds']:.3f} s")


def _live_possible(stream: TextIO) -> bool:
    """A live display only on a terminal that can draw one, and only if rich is installed."""
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    if not tty or os.environ.get("TERM", "") == "dumb":
        return False
    return importlib.util.find_spec("rich") is not None


class FitProgress:
    """Reports the progress of one fit: finished stages, stages at work and iterations.

    Parameters
    ----------
    stream : text stream, optional
        Where progress goes (default: ``sys.stdout`` at the time of each line).
    live : bool, optional
        True: a live status line drawn by rich (on ``stream``, treated as a terminal); False:
        plain lines only; None (default): live when ``stream`` is a terminal, ``TERM`` is not
        ``dumb`` and rich can be imported.
    max_iter : int, optional
        The iteration limit, shown as ``iteration 4/50``; :meth:`PreparedFit.run
        <sparsereml.PreparedFit.run>` sets it when it is None.
    write : callable, optional
        A function of one line that prints the plain lines instead of ``stream`` (the command
        line's print that survives a closed pipe).

    Examples
    --------
    >>> with FitProgress() as prog:                            # doctest: +SKIP
    ...     prepared = sr.prepare_fit(fixed, random, data=df, progress=prog)
    ...     model = prepared.run(progress=prog)
    """

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None, max_iter: int | None = None,
                 write: Callable[[str], None] | None = None) -> None:
        self._stream = stream
        self._write = write
        self.max_iter = max_iter
        self.live = _live_possible(self.stream) if live is None else bool(live)
        self._t0 = time.perf_counter()
        self._t_stage = self._t0
        self._text = ""            # what the status line says (without the elapsed time)
        self._previous: float | None = None
        self._iterations: list[float] = []
        self._display = None       # rich.live.Live while shown
        self._spinner = None
        self._text_class = str
        self._closed = False

    @property
    def stream(self) -> TextIO:
        """The stream progress goes to."""
        return self._stream if self._stream is not None else sys.stdout

    # -- the three kinds of report -------------------------------------------------------------
    def start(self, text: str) -> None:
        """A stage has begun (e.g. ``"reading the data and building the design"``): shown live
        with a spinner and its time so far; plain output prints nothing."""
        self._t_stage = time.perf_counter()
        self._text = f"{text} ..."
        self._show()

    def stage(self, text: str) -> None:
        """A stage has ended: one permanent line (``"design: 12,000 records, ..."``)."""
        self._line(text)
        self._text = ""

    def __call__(self, text: str) -> None:
        """As :meth:`stage`, so the object itself may be passed as ``progress=``."""
        self.stage(text)

    def iteration(self, row: dict) -> None:
        """An iteration has ended: its permanent line and, live, the status line with logL,
        change, seconds per iteration and the time elapsed."""
        self._line(iteration_line(row, self._previous))
        change = "" if self._previous is None else f"  change {row['loglik'] - self._previous:+.4g}"
        self._previous = row["loglik"]
        if row["iteration"] > 0:
            self._iterations.append(float(row["seconds"]))
        per = f"  {sum(self._iterations) / len(self._iterations):.2g} s/it" if self._iterations else ""
        limit = f"/{self.max_iter}" if self.max_iter else ""
        self._t_stage = None
        self._text = f"AI-REML iteration {row['iteration']}{limit}  logL {row['loglik']:.6f}{change}{per}"
        self._show()

    def close(self, converged: bool | None = None) -> None:
        """Stop the live status line; live, a last line says how the iterations ended
        (``converged``: True, False or None for no such line).  Plain output prints nothing
        more.  Closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._display is None:
            return
        if converged is not None and self._previous is not None:
            n = len(self._iterations)
            how = "converged" if converged else "did not converge"
            self._display.console.print(f"AI-REML {how} after {n} iteration{'s' * (n != 1)}; "
                                        f"{self._elapsed()}", markup=False, highlight=False, soft_wrap=True)
        self._display.stop()
        self._display = None

    def __enter__(self) -> FitProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- output ------------------------------------------------------------------------------
    def _elapsed(self) -> str:
        return f"elapsed {time.perf_counter() - self._t0:.1f} s"

    def _line(self, text: str) -> None:
        if self._closed:
            return
        if not self.live:
            if self._write is not None:
                self._write(text)
            else:
                print(text, file=self.stream, flush=True)
            return
        self._ensure_display().console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _show(self) -> None:
        if self.live and not self._closed:
            self._ensure_display().refresh()

    def _status(self):
        """The live line: spinner, what is happening, time in this stage and in all."""
        t_stage, text = self._t_stage, self._text  # as one: the main thread may change them
        if t_stage is not None and text:
            text = f"{text} {time.perf_counter() - t_stage:.1f} s"
        else:
            text = f"{text}  {self._elapsed()}" if text else self._elapsed()
        self._spinner.update(text=self._text_class(text))  # rich Text: brackets are not markup
        line = self._spinner.render(time.monotonic())
        line.no_wrap, line.overflow = True, "ellipsis"  # one screen line, however narrow
        return line

    def _ensure_display(self):
        if self._display is None:
            from rich.console import Console
            from rich.live import Live
            from rich.spinner import Spinner
            from rich.text import Text

            self._text_class = Text

            console = Console(file=self.stream, force_terminal=True, highlight=False)
            self._spinner = Spinner("dots", style="cyan")
            # warnings and prints while the line is shown go above it (rich's redirection)
            self._display = Live(console=console, get_renderable=self._status, refresh_per_second=8,
                                 transient=True)
            self._display.start()
        return self._display
