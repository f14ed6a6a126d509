"""Memory sizes given by the user ("4GB", 500_000_000) and the memory this process may still use.

The memory available is the smaller of the kernel's estimate of what can be allocated without
swapping (``MemAvailable`` in /proc/meminfo) and, when the process runs under a cgroup memory
limit (a container, a batch job), that limit less what the cgroup already uses.  Elsewhere
psutil's estimate is used when it is installed; without any of them the figure is unknown and no
fit is refused for it.
"""
from __future__ import annotations

import numbers
import re
from pathlib import Path

from .errors import ModelError

__all__ = ["parse_memory", "available_memory", "format_bytes"]

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")
_NO_LIMIT = 2**60  # cgroup v1 writes "no limit" as a number near 2^63


def parse_memory(value, name: str = "max_memory") -> int | None:
    """Bytes given as a whole number, or as text with a unit ("4GB", "500 MB", "2GiB"; KB, MB,
    GB, TB are powers of 1000, KiB, MiB, GiB, TiB of 1024).  None stays None.

    Raises
    ------
    ModelError
        Naming ``name`` for anything else (a negative or zero size, an unknown unit, a bool).
    """
    if value is None:
        return None
    example = f'{name} is bytes (an integer) or text such as "4GB" or "500MB"'
    if isinstance(value, bool):
        raise ModelError(f"{example}; got {value!r}")
    if isinstance(value, numbers.Integral):
        out = int(value)
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        out = int(value)
    elif isinstance(value, str):
        m = _SIZE.match(value)
        unit = m.group(2).upper() if m else None
        if m is None or unit not in _UNITS:
            raise ModelError(f"{example}; got {value!r} (units: KB, MB, GB, TB or KiB, MiB, GiB, TiB)")
        out = int(float(m.group(1)) * _UNITS[unit])
    else:
        raise ModelError(f"{example}; got {type(value).__name__} {value!r:.40}")
    if out <= 0:
        raise ModelError(f"{example}, more than zero; got {value!r}")
    return out


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_room() -> int | None:
    """The cgroup's memory limit less its use, when a limit is set (v2, else v1)."""
    for limit_file, used_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                  ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                   "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit = _read_int(limit_file)  # v2 writes "max" when there is none: not a number
        if limit is not None and limit < _NO_LIMIT:
            return max(limit - (_read_int(used_file) or 0), 0)
    return None


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_memory() -> tuple[int | None, str]:
    """(bytes this process may still allocate, where the figure comes from); (None, reason) when
    it cannot be told here."""
    found = []
    cg = _cgroup_room()
    if cg is not None:
        found.append((cg, "cgroup memory limit less its use"))
    mem = _mem_available()
    if mem is not None:
        found.append((mem, "MemAvailable (/proc/meminfo)"))
    if not found:
        try:
            import psutil
        except ImportError:
            return None, "unknown here (no /proc/meminfo, no cgroup limit, psutil not installed)"
        found.append((int(psutil.virtual_memory().available), "psutil.virtual_memory().available"))
    return min(found)


def format_bytes(n: float) -> str:
    """Bytes in MB (10^6) or GB (10^9), as the figures of a memory plan are written."""
    return f"{n / 1e9:,.2f} GB" if n >= 1e9 else f"{n / 1e6:,.1f} MB"
