"""Drill: clients that hang up in the middle of a stream, at random.

Promise: one cancelled row per hang-up (and one success row per stream read to the end), and the
gateway closes its upstream stream when its client goes: no upstream stream is left open.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

from bench.drills.harness import (
    Call,
    Report,
    Stack,
    catalog_write,
    chat_body,
    connections_to,
    database_create,
    database_setup,
    drive,
    gateway_env,
    gateways_ready,
    gateways_spawn,
    health,
    load_average,
    reconcile,
    rows_settle,
    upstream_start,
)
from bench.drills.options import Options

CHUNK_DELAY = 0.05
# A stream the client will hang up on lasts 20 s, so that an upstream stream which finishes is one the gateway
# never closed (a slow gateway still hangs up long before); one read to the end lasts 1 s.
CHUNKS_HUNG_UP = 400
CHUNKS_READ = 20
HANG_UP_SHARE = 0.75


def _process(pid: int) -> tuple[int, int]:
    """Open file descriptors and threads of a process (0, 0 where /proc is missing)."""
    try:
        fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
        threads = next(
            int(line.split()[1])
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("Threads:")
        )
    except (OSError, StopIteration):
        return 0, 0
    return fds, threads


def run(opts: Options) -> Report:
    calls_n = int(opts.pick("calls", 400))
    concurrency = int(opts.pick("concurrency", 50))
    kind = str(opts.pick("db", "sqlite"))
    report = Report("disconnects")
    rng = random.Random(opts.seed)
    report.say(
        f"== disconnects: {calls_n} streams at concurrency {concurrency}, {HANG_UP_SHARE:.0%} hang up after "
        f"1-10 events of a 20 s stream, the others read a 1 s stream to the end; database {kind}; "
        f"load {load_average()}"
    )
    with Stack("disconnects") as stack:
        upstream = upstream_start(stack)
        upstream_port = int(upstream.url.split(":")[2].split("/")[0])
        db = database_create(stack, kind, "disconnects")
        env = gateway_env(
            db_url=db.url,
            log_dir=stack.dir / "logs",
            catalog=catalog_write(stack, upstream.url),
            upstream_url=upstream.url,
        )
        [gateway] = gateways_spawn(stack, env)
        keys = database_setup(env, [("caller", ["--app", "drill-disconnects", "--create-app"])])
        gateways_ready([gateway])
        fds_before, threads_before = _process(gateway.pid)
        calls = []
        for i in range(calls_n):
            endpoint = rng.choice(["/llm/chat", "/v1/chat/completions"])
            hang_up = rng.randint(1, 10) if rng.random() < HANG_UP_SHARE else None
            chunks = CHUNKS_READ if hang_up is None else CHUNKS_HUNG_UP
            text = f"drill call {i} [[chunks:{chunks}]] [[chunk_delay:{CHUNK_DELAY}]]"
            body = chat_body(endpoint, model="drill-primary", text=text, index=i, stream=True)
            calls.append(Call(i, gateway.url, endpoint, keys["caller"].raw, body, stream=True, hang_up_after=hang_up))
        outcomes = asyncio.run(drive(calls, concurrency=concurrency, timeout=60, deadline=600))
        hung_up = sum(1 for o in outcomes if o.result == "hung-up")
        read_whole = sum(1 for o in outcomes if o.result == "ok")

        started = time.monotonic()
        while upstream.stats.open_streams and time.monotonic() - started < 15:
            time.sleep(0.05)
        closed_in = time.monotonic() - started
        rows = rows_settle(db, expected=calls_n)
        stats = upstream.stats
        fds_after, threads_after = _process(gateway.pid)
        pooled = connections_to(gateway.pid, upstream_port)

        report.say(
            "  sent: "
            + ", ".join(f"{k} {v}" for k, v in sorted(Counter(c.kind for c in calls).items()))
            + f"; the client hung up on {hung_up}, read {read_whole} to the end"
        )
        report.say(
            f"  upstream streams: started {stats.streams_started}, finished {stats.streams_finished}, "
            f"closed early by the gateway {stats.streams_aborted}, still open {stats.open_streams} "
            f"({closed_in:.2f} s after the last client)"
        )
        report.say(
            f"  gateway process: {fds_before} → {fds_after} open files, {threads_before} → {threads_after} threads, "
            f"{pooled} idle keep-alive connections to the upstream"
        )
        mismatches = reconcile(report, outcomes, rows)
        cancelled = sum(1 for r in rows if r.status == "cancelled")
        report.figures.update(
            streams=calls_n,
            hung_up=hung_up,
            cancelled_rows=cancelled,
            upstream_started=stats.streams_started,
            upstream_closed_early=stats.streams_aborted,
            upstream_open_after=stats.open_streams,
            mismatches=mismatches,
        )
        report.check(mismatches == 0, "one cancelled row per hang-up, one success row per stream read to the end")
        report.check(cancelled == hung_up, f"cancelled rows ({cancelled}) equal hang-ups ({hung_up})")
        report.check(stats.open_streams == 0, "no upstream stream is left open")
        report.check(
            stats.streams_aborted == hung_up and stats.streams_finished == read_whole,
            f"the gateway closed the upstream stream of every hang-up ({stats.streams_aborted} closed early, "
            f"{stats.streams_finished} finished)",
        )
        report.check(pooled <= concurrency, f"connections to the upstream ({pooled}) stay within the pool")
        report.check(health(gateway) == 200, "the gateway still answers /health")
    return report
