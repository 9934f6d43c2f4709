"""What the benchmark scripts share: a free local port, the percentile every table reports,
and the timer that warms up before it measures.

The scripts run as `python bench/NAME.py`, so this folder is on `sys.path` and they import
`from common import ...`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import numpy as np

Item = TypeVar("Item")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: Iterable[float], q: float) -> float:
    """The `q`-th percentile (0-100) of `values` by linear interpolation between the two
    nearest ranks: numpy's default (`np.percentile(values, q)`, method "linear"; R's type 7,
    a spreadsheet's PERCENTILE.INC). p50 is the median (the mean of the middle two for an
    even count), p95 of 100 values lies between the 95th and 96th smallest. NaN when empty.

    Every p50 / p95 in docs/benchmarks.md made by a script of this folder is this one."""
    values = list(values)
    return float(np.percentile(values, q)) if values else float("nan")


def time_each(run: Callable[[Item], object], items: Iterable[Item], warmup: Iterable[Item] = ()) -> list[float]:
    """Wall seconds (`time.perf_counter`) of `run(item)` for each of `items`, one at a time, after
    `run(w)` for each of `warmup` untimed (first-call costs: loading, allocations, caches)."""
    for item in warmup:
        run(item)
    seconds = []
    for item in items:
        started = time.perf_counter()
        run(item)
        seconds.append(time.perf_counter() - started)
    return seconds
