"""The report's figures, drawn after its sections are laid out and, on a machine with idle cores,
in several processes at once (drawing is most of a report's time, and matplotlib draws in one
thread): this process and forked workers, which see the results without copying them.  Where
fork is not available the figures are drawn one after another in this process, with the same
pictures.
"""
from __future__ import annotations

import gc
import multiprocessing
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from .errors import ModelError
from .report_content import Plot

__all__ = ["FigureTask", "Drawing", "usable_processes", "preload"]

#: at most this many drawing processes
MAX_PROCESSES = 4


def _draw_functions() -> dict:
    from .plots import compared, model, spatial

    return {"overview": model.overview, "caterpillar": model.caterpillar, "caterpillars": compared.caterpillars,
            "ranking": model.ranking, "residuals": model.residuals, "trace": model.trace,
            "compared_residuals": compared.compared_residuals, "compared_traces": compared.compared_traces,
            "variogram": spatial.variogram, "residual_map": spatial.residual_map,
            "correlation_heatmap": spatial.correlation_heatmap, "fa_biplot": spatial.fa_biplot}


def _load_plotting() -> None:
    from matplotlib.font_manager import FontProperties, findfont, get_font

    _draw_functions()
    get_font(findfont(FontProperties()))  # the default font, read once for every drawing process


def preload() -> threading.Thread:
    """Import matplotlib and the plots, and read the default font, in a thread: a report calls this
    before building its results (much of which runs outside the GIL), so that the drawing processes
    forked afterwards inherit them instead of each importing them again.  Join it before drawing."""
    loading = threading.Thread(target=_load_plotting, name="sparsereml-plots", daemon=True)
    loading.start()
    return loading


@dataclass
class FigureTask:
    """A figure to draw: ``kind`` (a plot function's name) of results number ``source`` (or of the
    list of results numbered by a tuple ``source``) with ``args`` and ``kwargs``."""

    source: int | tuple[int, ...]
    kind: str
    args: tuple
    caption: str
    kwargs: dict = field(default_factory=dict)


#: kinds of report figure laid out by :func:`~sparsereml.report_layout.place_axes` (grids of
#: subplots whose outside texts it measures) rather than by their own layout engine
MEASURED_LAYOUT = {"overview", "caterpillar", "caterpillars", "residuals", "trace", "compared_residuals",
                   "compared_traces"}


def draw(task: FigureTask, results: list) -> Plot | str:
    """The figure as a Plot, or a note saying why the fit cannot have it (the plot's ModelError)."""
    try:
        of = results[task.source] if isinstance(task.source, int) else [results[k] for k in task.source]
        fig = _draw_functions()[task.kind](of, *task.args, **task.kwargs)
    except ModelError as exc:
        return f"{task.caption}: not drawn ({exc})"
    fig = fig[0] if isinstance(fig, tuple) else fig
    if task.kind not in MEASURED_LAYOUT or not fig.axes:
        return Plot.from_figure(fig, task.caption)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from .report_layout import drawn_to_the_edge, place_axes

    canvas = FigureCanvasAgg(fig)
    place_axes(fig, canvas.get_renderer())
    canvas.draw()
    if drawn_to_the_edge(canvas):  # something the measures left out: lay it out as the plot would
        fig.set_layout_engine("constrained")
        canvas.draw()
    return Plot.from_canvas(canvas, task.caption)


_INHERITED: list = []  # the results, set before the workers are forked


def _draw_inherited(task: FigureTask) -> Plot | str:
    return draw(task, _INHERITED)


def usable_processes() -> int:
    """Drawing processes: the fits' thread policy (``SPARSEREML_THREADS`` or ``Control(threads=)``
    when set, else the usable cores less the threads other processes are running now: the least
    of a few samples, as one can catch a passing thread), at most :data:`MAX_PROCESSES`.  On a
    busy machine extra processes only add their start-up."""
    import time

    from .linalg.threads import choose_threads, fixed_threads, runnable_elsewhere, usable_cores

    fixed = fixed_threads()
    if fixed is not None:
        return max(1, min(int(fixed), MAX_PROCESSES))
    busy = runnable_elsewhere()
    for _ in range(2):
        if busy == 0:  # nobody else running: no sample can be lower
            break
        time.sleep(0.005)
        busy = min(busy, runnable_elsewhere())
    return max(1, min(choose_threads(usable_cores(), busy), MAX_PROCESSES))


class Drawing:
    """Figures being drawn: :meth:`start` forks the worker processes (one less than the drawing
    processes: this process draws too), which begin at once with the costliest figures, so that
    the caller can do other work before :meth:`result`; there this process draws the cheapest
    figures not yet taken, until every figure is drawn.  A worker is given its next figure when it
    has drawn one, so that no figure waits in a busy worker's queue while another process is idle.
    Use it as a context manager: leaving it stops the workers, also on an error.

    Parameters
    ----------
    tasks : list of FigureTask
    results : list of FitResults or fitted models
        What ``task.source`` indexes (the workers see them as they are at :meth:`start`).
    processes : int, optional
        Drawing processes, this one included (default: :func:`usable_processes`); 1 draws every
        figure in :meth:`result`, one after another.
    """

    def __init__(self, tasks: list[FigureTask], results: list, processes: int | None = None):
        self.tasks, self._results = list(tasks), results
        self._processes = min(len(self.tasks), usable_processes() if processes is None else int(processes))
        # the tasks not taken yet, costliest first: workers take from the front, this process
        # from the back, so that the last figures to finish are short ones
        self._todo = deque(sorted(range(len(self.tasks)), key=lambda i: -_cost(self.tasks[i])))
        self._lock = threading.Lock()
        self._futures: dict = {}
        self._pool = self._heap = None

    def start(self) -> "Drawing":
        self._heap = _frozen_heap()
        self._heap.__enter__()
        if self._processes <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            return self
        global _INHERITED
        _INHERITED = self._results
        try:  # every worker is forked at the first submission
            self._pool = ProcessPoolExecutor(self._processes - 1, mp_context=multiprocessing.get_context("fork"))
            for _ in range(self._processes - 1):
                self._feed()
        except BaseException:
            self.close()
            raise
        finally:
            _INHERITED = []
        return self

    def _feed(self, _done=None) -> None:
        """Give a worker the costliest task not taken (called again when that one is drawn)."""
        with self._lock:
            if self._pool is None or not self._todo:
                return
            i = self._todo.popleft()
            future = self._futures[i] = self._pool.submit(_draw_inherited, self.tasks[i])
        future.add_done_callback(self._feed)

    def _take(self) -> int | None:
        with self._lock:
            return self._todo.pop() if self._todo else None

    def result(self) -> list:
        """Every task's Plot, or the note for a figure the fit cannot have, in the tasks' order."""
        try:
            out: list = [None] * len(self.tasks)
            while (i := self._take()) is not None:
                out[i] = draw(self.tasks[i], self._results)
            for i, future in list(self._futures.items()):
                out[i] = future.result()
        finally:
            self.close()
        return out

    def close(self) -> None:
        """Stop the workers (a figure not yet started is dropped), once they have exited (not
        waiting races the executor's own clean-up at the interpreter's exit), and let the garbage
        collector see this process' objects again."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if self._heap is not None:
            self._heap.__exit__(None, None, None)
            self._heap = None

    def __enter__(self) -> "Drawing":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _cost(task: FigureTask) -> float:
    """A figure's drawing time relative to a plain one: by its number of axes and its records."""
    panels = 1 if isinstance(task.source, int) else len(task.source)
    return {"overview": 1.3, "residuals": 1.5, "trace": 1.4, "caterpillars": 0.5 * panels + 0.2,
            "compared_residuals": 0.9 * panels, "compared_traces": 0.8 * panels}.get(task.kind, 1.0)


@contextmanager
def _frozen_heap():
    """The objects alive now (and in forked workers, those inherited) left out of the garbage
    collector's passes while the figures are drawn: matplotlib makes enough objects for many
    passes, and each full pass went through every module and result of the process."""
    if gc.get_freeze_count():  # frozen by someone else: theirs to undo
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
