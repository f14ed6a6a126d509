"""Progress of a fit: plain lines off a terminal (as before), a live status line on one, and
nothing unless asked."""
import io
import re
import subprocess
import sys
import time

import pytest

import sparsereml as sr
from sparsereml.api import progress_printer
from sparsereml.progress import FitProgress

FIXED, RANDOM = "dbh ~ Trial", "~ Trial:Block + Mother"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def network():
    return sr.datasets.trial_network(seed=5, trials=4, trees=3000, mothers=60)[0]


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def _old_lines(rows):
    """The lines progress_printer printed before FitProgress existed (written out again here)."""
    out, prev = [], None
    for row in rows:
        change = "" if prev is None else f"{row['loglik'] - prev:+.6g}"
        out.append(f"iteration {row['iteration']:3d}  logL {row['loglik']:.6f}  change {change:>12}  "
                   f"{row['seconds']:.3f} s")
        prev = row["loglik"]
    return out


def test_verbose_fit_prints_the_plain_lines_of_before(network, capsys):
    rows = []
    m = sr.fit(FIXED, RANDOM, data=network, verbose=True, callback=rows.append)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("design: 3,237 records, 4 fixed-effect columns")
    assert lines[1].startswith("equations: ") and "variance parameters" in lines[1]
    assert lines[2:] == _old_lines(rows) and len(rows) == len(m.iterations) >= 3
    # progress_printer (now a thin wrapper) still prints the same lines
    said = []
    report = progress_printer(said.append)
    for row in rows:
        report(row)
    assert said == lines[2:]


def test_quiet_fit_prints_nothing(network, capsys):
    sr.fit(FIXED, RANDOM, data=network)
    prepared = sr.prepare_fit(FIXED, RANDOM, data=network)
    prepared.run()
    assert capsys.readouterr().out == ""


def test_run_verbose_prints_iterations_only(network, capsys):
    prepared = sr.prepare_fit(FIXED, RANDOM, data=network)
    rows = []
    prepared.run(verbose=True, callback=rows.append)
    assert capsys.readouterr().out.splitlines() == _old_lines(rows)


def test_live_is_chosen_only_on_a_terminal(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    assert FitProgress(io.StringIO()).live is False
    assert FitProgress(FakeTerminal()).live is True
    assert FitProgress(FakeTerminal(), live=False).live is False
    monkeypatch.setenv("TERM", "dumb")
    assert FitProgress(FakeTerminal()).live is False


def test_plain_progress_on_a_non_terminal_stream(network):
    out = io.StringIO()
    rows = []
    with FitProgress(out) as prog:
        prepared = sr.prepare_fit(FIXED, RANDOM, data=network, progress=prog)
        prepared.run(progress=prog, callback=rows.append)
    text = out.getvalue()
    assert "\x1b" not in text and "..." not in text  # no status line, no stage-start line
    lines = text.splitlines()
    assert [ln.split(":")[0] for ln in lines[:2]] == ["design", "equations"]
    assert lines[2:] == _old_lines(rows)


def test_plain_progress_uses_write_when_given():
    said = []
    prog = FitProgress(live=False, write=said.append)
    prog.start("reading")
    prog.stage("design: done")
    prog.iteration({"iteration": 0, "loglik": -10.0, "seconds": 0.5})
    prog.iteration({"iteration": 1, "loglik": -9.5, "seconds": 0.25})
    prog.close(converged=True)
    prog.stage("after close")  # nothing once closed
    assert said == ["design: done", "iteration   0  logL -10.000000  change               0.500 s",
                    "iteration   1  logL -9.500000  change         +0.5  0.250 s"]


def test_live_progress_shows_the_status_and_keeps_every_line(network):
    screen = FakeTerminal()
    rows = []
    with FitProgress(screen, live=True) as prog:
        prepared = sr.prepare_fit(FIXED, RANDOM, data=network, progress=prog)
        prepared.run(progress=prog, callback=rows.append)
    raw = screen.getvalue()
    assert raw.endswith("\x1b[2K") and "\x1b[?25h" in raw  # cursor shown again, status erased
    text = ANSI.sub("", raw)
    # the status line was drawn: the iteration count against the limit, the stage at work
    assert f"AI-REML iteration {len(rows) - 1}/50  logL" in text
    assert "design: reading the data and coding the factors ..." in text
    permanent = [ln.split("\r")[-1] for ln in text.split("\n")]
    for line in _old_lines(rows):
        assert line in permanent
    assert f"AI-REML converged after {len(rows) - 1} iterations; elapsed" in text
    time.sleep(0.3)  # closed: the refresh thread has stopped writing
    assert screen.getvalue() == raw


def test_live_display_closes_on_an_error():
    screen = FakeTerminal()
    with pytest.raises(RuntimeError):
        with FitProgress(screen, live=True) as prog:
            prog.start("design: reading")
            raise RuntimeError("stop")
    raw = screen.getvalue()
    assert "design: reading ..." in ANSI.sub("", raw) and "\x1b[?25h" in raw
    time.sleep(0.3)
    assert screen.getvalue() == raw


def test_importing_sparsereml_does_not_import_rich():
    code = "import sys, sparsereml; print('rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_live_progress_says_when_the_iterations_stop_short(network):
    screen = FakeTerminal()
    with pytest.warns(sr.ConvergenceWarning):
        with FitProgress(screen, live=True) as prog:
            prepared = sr.prepare_fit(FIXED, RANDOM, data=network, max_iter=2, progress=prog)
            prepared.run(progress=prog)
    text = ANSI.sub("", screen.getvalue())
    assert "AI-REML iteration 2/2  logL" in text and "AI-REML did not converge after 2 iterations" in text
