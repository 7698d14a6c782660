"""Drill: identical deterministic requests (temperature 0) to a model with `cache_ttl` in the catalog.

Promise: only the first of each reaches the upstream; every repeat is answered from the response cache
with the same content, recorded as its own row with `cache_hit` and cost zero. With Redis the cache is
shared, so a repeat sent to another gateway process is a hit too.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from decimal import Decimal

from bench.drills.harness import (
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
    upstream_start,
    usd,
)
from bench.drills.options import Options

REPEATS = 10


def run(opts: Options) -> Report:
    calls_n = int(opts.pick("calls", 200))
    concurrency = int(opts.pick("concurrency", 20))
    kind = str(opts.pick("db", "sqlite"))
    redis_url = str(opts.pick("redis", REDIS_URL))
    processes = int(opts.pick("processes", 2 if redis_url else 1))
    prompts = max(1, calls_n // REPEATS)
    report = Report("cache")
    report.say(
        f"== cache: {prompts} distinct prompts, each sent {REPEATS} times at temperature 0 "
        f"({prompts * REPEATS} calls) to {processes} gateway process(es), cache "
        f"{'Redis' if redis_url else 'in process memory'}, database {kind}; load {load_average()}"
    )
    with Stack("cache") as stack:
        upstream = upstream_start(stack, latency_ms=200)  # a slow provider, so a hit visibly saves time
        db = database_create(stack, kind, "cache")
        env = gateway_env(
            db_url=db.url,
            log_dir=stack.dir / "logs",
            catalog=catalog_write(stack, upstream.url),
            upstream_url=upstream.url,
            redis_url=redis_url,
        )
        gateways = gateways_spawn(stack, env, processes)
        keys = database_setup(env, [("caller", ["--app", "drill-cache", "--create-app"])])
        gateways_ready(gateways)
        run_id = uuid.uuid4().hex[:8]  # a fresh question per run: a cache left by an earlier run cannot answer

        def call(i: int, p: int, endpoint: str) -> Call:
            text = f"drill {run_id} question {p}: what is {p} times {p}?"
            body = chat_body(endpoint, model="drill-cached", text=text, index=i, stream=False, temperature=0)
            return Call(i, gateways[i % processes].url, endpoint, keys["caller"].raw, body)

        # One uncached call per process first: a fresh process's first call pays for imports, not for the provider.
        warm = []
        for n, gateway in enumerate(gateways):
            body = chat_body(
                "/llm/chat", model="drill-primary", text=f"drill {run_id} warm-up", index=-1 - n, stream=False
            )
            warm.append(
                Call(-1 - n, gateway.url, "/llm/chat", keys["caller"].raw, body, headers={"X-Gateway-Cache": "off"})
            )
        warmed = asyncio.run(drive(warm, concurrency=processes))
        first = [call(p, p, "/llm/chat") for p in range(prompts)]
        repeats = [
            call(prompts + n, n % prompts, "/llm/chat" if n % 2 else "/v1/chat/completions")
            for n in range(prompts * (REPEATS - 1))
        ]
        before = upstream.stats.requests
        misses = asyncio.run(drive(first, concurrency=concurrency))
        hits = asyncio.run(drive(repeats, concurrency=concurrency))
        upstream_calls = upstream.stats.requests - before
        outcomes = warmed + misses + hits
        rows = rows_settle(db, expected=len(outcomes))

        hit_rows = [r for r in rows if r.cache_hit]
        miss_rows = [r for r in rows if not r.cache_hit and (r.call or 0) >= 0]
        answers: dict[int, set[str]] = {}
        for out in misses + hits:
            question = int(out.call.body["messages"][0]["content"].split("question ")[1].split(":")[0])
            answers.setdefault(question, set()).add(out.content)
        miss_ms = percentile([o.latency_ms for o in misses], 50)
        hit_ms = percentile([o.latency_ms for o in hits], 50)
        report.say(
            f"  sent: {len(warm)} uncached warm-up call(s), {len(first)} first asks, then {len(repeats)} repeats "
            f"across both endpoints (the upstream takes 200 ms)"
        )
        report.say(f"  the upstream was asked {upstream_calls} times")
        report.table(
            ["rows", "count", "cost_usd", "median latency ms"],
            [
                ["cache miss", len(miss_rows), usd(sum((r.cost for r in miss_rows), Decimal(0))), f"{miss_ms:.0f}"],
                ["cache hit", len(hit_rows), usd(sum((r.cost for r in hit_rows), Decimal(0))), f"{hit_ms:.0f}"],
            ],
        )
        report.say(f"  hits by endpoint: {dict(Counter(r.endpoint for r in hit_rows))}")
        mismatches = reconcile(report, outcomes, rows)
        report.figures.update(
            calls=len(outcomes),
            upstream_calls=upstream_calls,
            hits=len(hit_rows),
            hit_cost=usd(sum((r.cost for r in hit_rows), Decimal(0))),
            median_ms_miss=round(miss_ms),
            median_ms_hit=round(hit_ms),
            mismatches=mismatches,
        )
        report.check(mismatches == 0, "every call, hit or miss, has exactly one row")
        report.check(
            upstream_calls == prompts, f"only the first ask of each question reached the upstream ({upstream_calls})"
        )
        report.check(len(hit_rows) == len(repeats), f"every repeat is recorded as a cache hit ({len(hit_rows)})")
        report.check(all(r.cost == 0 for r in hit_rows), "every cache hit costs zero")
        report.check(all(r.cost > 0 for r in miss_rows), "every miss is priced")
        report.check(all(len(a) == 1 for a in answers.values()), "a repeat gets the same answer as the first ask")
    return report
