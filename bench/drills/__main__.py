"""`python -m bench.drills <name|all> [--calls N --concurrency C --db sqlite|postgres ...]`."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.drills import DRILLS, Options
from bench.drills.harness import DrillError, Report


class _Stop(Exception):
    """Time is up, or the drill was told to stop."""


def _stop(signum: int, frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)  # unwinds through every drill's `finally`, which ends what it started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drills", description=__doc__)
    parser.add_argument("drill", choices=[*DRILLS, "all"])
    parser.add_argument("--calls", type=int, help="calls to send (each drill has its own default)")
    parser.add_argument("--concurrency", type=int, help="calls in flight at once")
    parser.add_argument("--db", choices=["sqlite", "postgres"], help="the database the gateway writes to")
    parser.add_argument("--redis", help="Redis URL for counters and the cache ('' for none)")
    parser.add_argument("--processes", type=int, help="gateway processes (scale, cache)")
    parser.add_argument("--fail-rate", type=float, default=0.3, help="share of upstream calls that fail (faults)")
    parser.add_argument("--outage-seconds", type=float, help="how long the database is unreachable (outage)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the drills' random choices")
    parser.add_argument("--max-minutes", type=float, default=30, help="stop (and clean up) after this long")
    parser.add_argument("--out", help="also write the figures and checks to this JSON file")
    args = parser.parse_args(argv)
    opts = Options(
        calls=args.calls,
        concurrency=args.concurrency,
        db=args.db,
        redis=args.redis,
        seed=args.seed,
        fail_rate=args.fail_rate,
        outage_seconds=args.outage_seconds,
        processes=args.processes,
    )
    names = list(DRILLS) if args.drill == "all" else [args.drill]
    # A plain `kill` or Ctrl-C must end the gateways, upstream and database the drill started, not orphan them.
    for signum in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    signal.alarm(int(args.max_minutes * 60))
    reports: list[tuple[str, Report | None, float]] = []
    try:
        for name in names:
            started = time.monotonic()
            try:
                reports.append((name, DRILLS[name](opts), time.monotonic() - started))
            except DrillError as exc:
                print(f"!! {name} could not run: {exc}", file=sys.stderr)
                reports.append((name, None, time.monotonic() - started))
            print(flush=True)
    except _Stop as stop:
        why = f"after {args.max_minutes} minutes" if str(stop) == "SIGALRM" else f"by {stop}"
        print(f"!! stopped {why}; everything it started has been ended", file=sys.stderr)
        return 3
    finally:
        signal.alarm(0)
    if args.out:
        _save(Path(args.out), reports)
    print("== summary")
    for name, report, seconds in reports:
        verdict = (
            "could not run" if report is None else ("kept" if report.ok else "BROKEN: " + "; ".join(report.broken))
        )
        print(f"  {name:<12} {seconds:7.1f} s  {verdict}")
    return 0 if all(r is not None and r.ok for _, r, _ in reports) else 1


def _save(path: Path, reports: list[tuple[str, Report | None, float]]) -> None:
    """The figures and checks of a run, with when, where (commit) and how loaded the machine was."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    record = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "argv": sys.argv[1:],
        "drills": {
            name: {
                "seconds": round(seconds, 1),
                "ran": report is not None,
                "figures": report.figures if report else {},
                "checks": [{"kept": kept, "promise": promise} for kept, promise in (report.checks if report else [])],
            }
            for name, report, seconds in reports
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str))
    print(f"figures written to {path}")


if __name__ == "__main__":
    sys.exit(main())
