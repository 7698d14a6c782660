"""Drill: many calls at high concurrency across two gateway processes sharing PostgreSQL and Redis.

Keys with budgets take part, sized so that the budgets run out half-way through. Promise: rows equal
accepted calls (a refused call leaves none), the spend counters in Redis equal the sum of the rows,
no reservation is left held, and no budget is overspent beyond what calls already in flight may add.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import redis

from bench.drills.harness import (
    COST_PLACES,
    REDIS_URL,
    Call,
    Report,
    Stack,
    catalog_write,
    chat_body,
    database_create,
    database_setup,
    drive,
    gateway_env,
    gateways_ready,
    gateways_spawn,
    load_average,
    percentile,
    reconcile,
    rows_settle,
    upstream_process,
    upstream_stats,
    usd,
)
from bench.drills.options import Options

MAX_TOKENS = 16  # every call names it, so a reservation is close to the real cost and budgets bind
# What one call costs at the drills' prices: ~3 prompt and ~4 completion tokens the upstream reports.
EST_COST = Decimal("0.000011")
UNITS_PER_USD = 10**10  # chat.limits keeps counters in 1e-10 USD
MIX = [("/llm/chat", False)] * 8 + [("/v1/chat/completions", False)] * 6
MIX += [("/llm/chat", True)] * 3 + [("/v1/chat/completions", True)] * 3


def _budget(calls: int) -> Decimal:
    """A budget that runs out about half-way through `calls` calls, in whole 1/10000 USD."""
    return max(Decimal("0.0001"), (EST_COST * calls / 2).quantize(Decimal("0.0001")))


def _counters_clear(client: redis.Redis) -> int:
    """Forget the gateway's rate-limit and spend counters (an earlier run's key ids are this run's too)."""
    names = list(client.scan_iter(match="gw:lim:*", count=1000))
    if names:
        client.delete(*names)
    return len(names)


def _units(value: bytes | None) -> int | None:
    return None if value is None else int(value)


def _usd(units: int) -> Decimal:
    return (Decimal(units) / UNITS_PER_USD).quantize(COST_PLACES)


def run(opts: Options) -> Report:
    calls_n = int(opts.pick("calls", 10_000))
    concurrency = int(opts.pick("concurrency", 100))
    kind = str(opts.pick("db", "postgres"))
    redis_url = str(opts.pick("redis", REDIS_URL))
    # Without Redis each process counts budgets on its own: one process is then the honest set-up.
    processes = int(opts.pick("processes", 2 if redis_url else 1))
    rng = random.Random(opts.seed)
    report = Report("scale")
    quarter = calls_n // 4
    key_budget, app_budget = _budget(quarter), _budget(quarter)
    report.say(
        f"== scale: {calls_n} calls at concurrency {concurrency} across {processes} gateway processes, "
        f"database {kind}, counters {'in Redis' if redis_url else 'per process'}; load {load_average()}"
    )
    report.say(
        f"  keys: 'open' (no limit) half the calls; 'capped' (key budget ${key_budget} total) a quarter; "
        f"'team-a' and 'team-b' (one application budget ${app_budget} a month) a quarter"
    )
    with Stack("scale") as stack:
        store = redis.Redis.from_url(redis_url, socket_timeout=5) if redis_url else None
        if store is not None:
            _counters_clear(store)
        upstream_url = upstream_process(stack, latency_ms=20)
        db = database_create(stack, kind, "scale")
        env = gateway_env(
            db_url=db.url,
            log_dir=stack.dir / "logs",
            catalog=catalog_write(stack, upstream_url),
            upstream_url=upstream_url,
            redis_url=redis_url,
        )
        gateways = gateways_spawn(stack, env, processes)
        keys = database_setup(
            env,
            [
                ("open", ["--app", "drill-open", "--create-app"]),
                ("capped", ["--app", "drill-capped", "--create-app", "--budget", str(key_budget), "--period", "total"]),
                ("team-a", ["--app", "drill-team", "--create-app"]),
                ("team-b", ["--app", "drill-team", "--create-app"]),
            ],
            app_budgets=[("drill-team", str(app_budget), "month")],
        )
        gateways_ready(gateways)
        calls = []
        for i in range(calls_n):
            endpoint, stream = rng.choice(MIX)
            label = ["open", "open", "capped", "team-a" if (i // 4) % 2 else "team-b"][i % 4]
            body = chat_body(
                endpoint, model="drill-primary", text=f"drill call {i}", index=i, stream=stream, max_tokens=MAX_TOKENS
            )
            calls.append(Call(i, gateways[i % processes].url, endpoint, keys[label].raw, body, stream=stream))
        started = time.monotonic()
        outcomes = asyncio.run(drive(calls, concurrency=concurrency, timeout=120, deadline=1800))
        seconds = time.monotonic() - started
        load_after = load_average()
        # Read the counters at once: a spend counter lives 30 s after it was last read from the rows.
        now = datetime.now(UTC)
        scopes = {
            "key 'capped'": (f"key:t:{keys['capped'].id}", key_budget, {keys["capped"].id}),
            "application 'drill-team'": (
                f"application:m{now:%Y%m}:drill-team",
                app_budget,
                {keys["team-a"].id, keys["team-b"].id},
            ),
        }
        counters = {}
        if store is not None:
            for label, (name, _, _) in scopes.items():
                counters[label] = (_units(store.get(f"gw:lim:spend:{name}")), _units(store.get(f"gw:lim:held:{name}")))
        rows = rows_settle(db, expected=sum(1 for o in outcomes if o.error_code != "budget_exceeded"), timeout=60)
        upstream = upstream_stats(upstream_url)

        answered = [o for o in outcomes if o.status == 200]
        latencies = [o.latency_ms for o in answered if not o.call.stream]
        report.say(
            f"  sent {calls_n} in {seconds:.1f} s = {calls_n / seconds:.0f} calls/s; load after {load_after}; "
            f"the upstream answered {upstream['requests']} calls"
        )
        report.say(
            f"  latency of answered non-streamed calls (ms): p50 {percentile(latencies, 50):.0f}, "
            f"p95 {percentile(latencies, 95):.0f}, p99 {percentile(latencies, 99):.0f} "
            f"(the upstream itself takes 20)"
        )
        report.table(
            ["key", "calls", "answered", "refused (budget)", "rows", "spend in rows"],
            [
                [
                    label,
                    sum(1 for c in calls if c.key == keys[label].raw),
                    sum(1 for o in answered if o.call.key == keys[label].raw),
                    sum(1 for o in outcomes if o.call.key == keys[label].raw and o.error_code == "budget_exceeded"),
                    sum(1 for r in rows if r.key_id == keys[label].id),
                    usd(sum((r.cost for r in rows if r.key_id == keys[label].id), Decimal(0))),
                ]
                for label in keys
            ],
        )
        per_process = Counter(gw.url for gw in gateways for o in answered if o.call.base == gw.url)
        report.say("  answered per process: " + ", ".join(str(per_process[gw.url]) for gw in gateways))
        mismatches = reconcile(report, outcomes, rows)
        accepted = sum(1 for o in outcomes if o.error_code != "budget_exceeded")
        report.check(mismatches == 0, "each accepted call has exactly one row, with its status; a refused one none")
        report.check(len(rows) == accepted, f"rows ({len(rows)}) equal accepted calls ({accepted})")
        report.check(all(o.status is not None and o.status < 500 for o in outcomes), "no 5xx and no dropped connection")
        max_cost = max((r.cost for r in rows), default=Decimal(0))
        bound = max_cost * concurrency
        figures = {}
        for label, (_, budget, key_ids) in scopes.items():
            in_rows = sum((r.cost for r in rows if r.key_id in key_ids), Decimal(0))
            spent, held = counters.get(label, (None, None))
            over = in_rows - budget
            report.say(
                f"  {label}: budget ${budget}, rows ${in_rows}, counter "
                + ("expired (re-read from the rows on the next call)" if spent is None else f"${_usd(spent)}")
                + f", held {held or 0}; over budget by ${max(over, Decimal(0))} (in-flight bound ${bound})"
            )
            if store is not None and spent is not None:
                report.check(_usd(spent) == in_rows, f"{label}: the spend counter equals the sum of its rows")
            if store is not None:
                report.check(not held, f"{label}: no reservation is left held after the calls ended")
            report.check(over <= bound, f"{label}: spend stays within budget plus the in-flight bound")
            figures[label] = {
                "budget": str(budget),
                "rows": str(in_rows),
                "counter": None if spent is None else str(_usd(spent)),
            }
        report.figures.update(
            calls=calls_n,
            concurrency=concurrency,
            processes=processes,
            seconds=round(seconds, 1),
            calls_per_second=round(calls_n / seconds, 1),
            p50_ms=round(percentile(latencies, 50)),
            p95_ms=round(percentile(latencies, 95)),
            p99_ms=round(percentile(latencies, 99)),
            rows=len(rows),
            accepted=accepted,
            refused=calls_n - accepted,
            budgets=figures,
            mismatches=mismatches,
            load=load_after,
        )
        if store is not None:
            _counters_clear(store)
            store.close()
    return report
