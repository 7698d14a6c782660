"""The knobs every drill takes from the command line (or a test)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Options:
    """None means the drill's own default."""

    calls: int | None = None
    concurrency: int | None = None
    db: str | None = None  # sqlite or postgres
    redis: str | None = None  # a Redis URL, or "" for none
    seed: int = 1
    fail_rate: float = 0.3
    outage_seconds: float | None = None
    processes: int | None = None

    def pick(self, name: str, default: object) -> object:
        value = getattr(self, name)
        return default if value is None else value
