"""Fault drills: the gateway under upstream failures, disconnects, a database outage, load and repeats.

Each drill starts what it needs on 127.0.0.1 (an upstream, gateway processes, a database of its own),
sends a bounded number of calls, counts the rows, prints what it sent against what was recorded,
and reports which promises held. `python -m bench.drills --help` lists them.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.drills import cache, disconnects, faults, outage, scale
from bench.drills.harness import Report
from bench.drills.options import Options

DRILLS: dict[str, Callable[[Options], Report]] = {
    "faults": faults.run,
    "disconnects": disconnects.run,
    "outage": outage.run,
    "cache": cache.run,
    "scale": scale.run,
}

__all__ = ["DRILLS", "Options", "Report"]
