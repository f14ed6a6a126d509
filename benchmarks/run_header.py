"""The lines a benchmark prints first: what ran, when, on which machine and how busy it was."""
from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys


def print_header(title: str) -> tuple[str, str]:
    """Print ``title`` with the date and command, the machine and the load; return (date, command)
    for the benchmark's JSON."""
    import numpy as np

    import sparsereml as sr

    command = shlex.join(getattr(sys, "orig_argv", [sys.executable] + sys.argv))
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"{title}, {date}\ncommand: {command}")
    print(f"machine: {cpu}, {os.cpu_count()} cores, {platform.platform()}; Python {platform.python_version()}, "
          f"numpy {np.__version__}, sparsereml {sr.__version__}")
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return date, command
