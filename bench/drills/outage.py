"""Drill: the database unreachable for a while, then back.

PostgreSQL is reached through a TCP proxy of the drill's own, which it cuts (every connection
dropped, new ones refused) and restores; the shared server is never touched. With SQLite the
database's folder is moved away and back, so no connection can open it meanwhile (the gateway then
runs with CONN_MAX_AGE=0: a connection kept open would go on writing to the moved file).

Promise: during the outage a call either fails with a clear 503 (nothing was sent to a provider)
or is answered and journaled to the JSON log; `manage.py import_logs` then restores every missing
row, once: afterwards every answered call has exactly one row, and a second import adds none.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Callable

import httpx

from bench.drills.harness import (
    Call,
    Database,
    DrillError,
    Gateway,
    Outcome,
    Report,
    Stack,
    TcpProxy,
    call_send,
    catalog_write,
    chat_body,
    database_create,
    database_setup,
    gateway_env,
    gateways_ready,
    gateways_spawn,
    health,
    load_average,
    manage,
    reconcile,
    rows_count,
    rows_read,
    upstream_start,
)
from bench.drills.options import Options


def _cutter(stack: Stack, db: Database) -> tuple[str, dict[str, str], Callable[[], None], Callable[[], None]]:
    """The URL and settings the gateway uses, and how to make the database unreachable and reachable again."""
    if db.kind == "postgres":
        host_port = db.url.split("@", 1)[1].split("/", 1)[0]
        host, port = host_port.rsplit(":", 1)
        proxy = TcpProxy(host, int(port))
        proxied = proxy.start()
        stack.defer("database proxy", proxy.stop)
        return db.url.replace(f"@{host_port}/", f"@127.0.0.1:{proxied}/"), {}, proxy.cut, proxy.restore
    assert db.path is not None
    folder, away = db.path.parent, db.path.parent.with_name("db-away")

    def cut() -> None:
        os.rename(folder, away)

    def restore() -> None:
        if away.exists():
            os.rename(away, folder)

    stack.defer("database folder", restore)  # never leave it moved away
    # An open SQLite connection keeps writing to the moved file: with none kept open, each call opens it anew.
    return db.url, {"CONN_MAX_AGE": "0"}, cut, restore


async def _paced(calls: list[Call], seconds: float, concurrency: int) -> list[Outcome]:
    """Send `calls` spread evenly over `seconds`, at most `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, connect=10), trust_env=False) as client:

        async def one(n: int, call: Call) -> Outcome:
            await asyncio.sleep(seconds * n / max(1, len(calls)))
            async with gate:
                return await call_send(client, call)

        return list(await asyncio.wait_for(asyncio.gather(*(one(n, c) for n, c in enumerate(calls))), seconds + 300))


def _wait_healthy(gateway: Gateway, timeout: float = 60) -> float:
    started = time.monotonic()
    while health(gateway) != 200:
        if time.monotonic() - started > timeout:
            raise DrillError("the gateway did not recover after the database came back")
        time.sleep(0.2)
    return time.monotonic() - started


def run(opts: Options) -> Report:
    calls_n = int(opts.pick("calls", 90))
    concurrency = int(opts.pick("concurrency", 10))
    kind = str(opts.pick("db", "postgres"))
    # Longer than the gateway's 10 s caches of keys and budgets, so both outcomes show: served from the
    # cached key and journaled, then refused with 503 once the key must be read again.
    outage = float(opts.pick("outage_seconds", 15.0))
    report = Report("outage")
    rng = random.Random(opts.seed)
    report.say(
        f"== outage: {calls_n} calls (a third before, during and after a {outage:.0f} s outage of the {kind} "
        f"database), concurrency {concurrency}; load {load_average()}"
    )
    with Stack("outage") as stack:
        upstream = upstream_start(stack)
        db = database_create(stack, kind, "outage")
        gateway_url, settings, cut, restore = _cutter(stack, db)
        log_dir = stack.dir / "logs"
        env = gateway_env(
            db_url=gateway_url,
            log_dir=log_dir,
            catalog=catalog_write(stack, upstream.url),
            upstream_url=upstream.url,
            extra=settings,
        )
        direct_env = {**env, "DATABASE_URL": db.url}
        [gateway] = gateways_spawn(stack, env)
        keys = database_setup(direct_env, [("caller", ["--app", "drill-outage", "--create-app"])])
        gateways_ready([gateway])

        def batch(start: int, count: int) -> list[Call]:
            out = []
            for i in range(start, start + count):
                endpoint, stream = rng.choice(
                    [("/llm/chat", False), ("/llm/chat", True), ("/v1/chat/completions", False)]
                )
                body = chat_body(endpoint, model="drill-primary", text=f"drill call {i}", index=i, stream=stream)
                out.append(Call(i, gateway.url, endpoint, keys["caller"].raw, body, stream=stream))
            return out

        third = calls_n // 3
        before = batch(0, third)
        during = batch(third, third)
        after = batch(2 * third, calls_n - 2 * third)
        phases: dict[str, list[Outcome]] = {}
        phases["before"] = asyncio.run(_paced(before, 1.0, concurrency))
        cut()
        health_during = health(gateway)
        try:
            phases["during"] = asyncio.run(_paced(during, outage, concurrency))
        finally:
            restore()
        recovered_in = _wait_healthy(gateway)
        phases["after"] = asyncio.run(_paced(after, 1.0, concurrency))
        outcomes = [o for phase in phases.values() for o in phase]

        report.say(f"  /health during the outage: {health_during}; 200 again {recovered_in:.1f} s after it ended")
        report.table(
            ["phase", "calls", "answered", "by status"],
            [
                [name, len(outs), sum(1 for o in outs if o.status == 200), dict(Counter(o.seen for o in outs))]
                for name, outs in phases.items()
            ],
        )
        answered_ids = {o.request_id for o in outcomes if o.status == 200 and o.request_id}
        time.sleep(1)  # a row is written just after its answer
        rows_before = rows_read(db)
        missing = answered_ids - {r.id for r in rows_before}
        journal = len(list(log_dir.glob("*.json")))
        report.say(
            f"  before import_logs: {len(rows_before)} rows, {len(missing)} answered calls without a row, "
            f"{journal} JSON log files"
        )
        first = manage(direct_env, "import_logs").strip()
        rows_after = rows_read(db)
        second = manage(direct_env, "import_logs").strip()
        rows_again = rows_count(db)
        report.say(f"  import_logs: {first.splitlines()[-1] if first else '(no output)'}")
        report.say(f"  import_logs again: {second.splitlines()[-1] if second else '(no output)'}")
        report.say(f"  after import_logs: {len(rows_after)} rows; after a second import: {rows_again}")
        mismatches = reconcile(report, outcomes, rows_after)

        refused = [o for o in phases["during"] if o.status == 503]
        served = [o for o in phases["during"] if o.status == 200]
        report.figures.update(
            calls=calls_n,
            outage_seconds=outage,
            served_during=len(served),
            refused_503=len(refused),
            rows_missing_before_import=len(missing),
            rows_restored=len(rows_after) - len(rows_before),
            rows_after=len(rows_after),
            mismatches=mismatches,
        )
        report.check(
            all(o.status in (200, 503) for o in phases["during"]),
            "during the outage every call was answered or refused with 503",
        )
        report.check(
            all(o.error_code == "service_unavailable" for o in refused),
            "each 503 says service_unavailable in the one error shape",
        )
        report.check(
            all(o.status == 200 for o in phases["before"] + phases["after"]),
            "before and after it every call is answered",
        )
        report.check(journal == len(answered_ids), f"every answered call is in the JSON log ({journal} files)")
        report.check(mismatches == 0, "after import_logs every answered call has exactly one row, a 503 none")
        report.check(
            len(rows_after) - len(rows_before) == len(missing),
            f"import_logs restored exactly the missing rows ({len(rows_after) - len(rows_before)} of {len(missing)})",
        )
        report.check(rows_again == len(rows_after), "a second import_logs adds nothing")
    return report
