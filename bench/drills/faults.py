"""Drill: an upstream that fails at random (500, 429, timeouts, resets, malformed JSON, cut streams).

Promise: every call has exactly one row whose status is what the client saw, and retries plus the
catalog's fallback model turn the recoverable failures of non-streamed calls into answers.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter

from bench.drills.harness import (
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
    reconcile,
    rows_settle,
    upstream_start,
)
from bench.drills.options import Options

# Share of each kind of call, out of 20.
MIX = [("/llm/chat", False)] * 8 + [("/llm/chat", True)] * 4 + [("/v1/chat/completions", False)] * 5
MIX += [("/v1/chat/completions", True)] * 3


def run(opts: Options) -> Report:
    calls_n = int(opts.pick("calls", 1000))
    concurrency = int(opts.pick("concurrency", 50))
    kind = str(opts.pick("db", "sqlite"))
    fail_rate = opts.fail_rate
    report = Report("faults")
    rng = random.Random(opts.seed)
    report.say(
        f"== faults: {calls_n} calls at concurrency {concurrency}, upstream fail rate {fail_rate:.0%}, "
        f"database {kind}; load {load_average()}"
    )
    with Stack("faults") as stack:
        upstream = upstream_start(stack, fail_rate=fail_rate)
        db = database_create(stack, kind, "faults")
        # A timeout short enough that the upstream's 30 s stall is a timeout, retried then given up on.
        env = gateway_env(
            db_url=db.url,
            log_dir=stack.dir / "logs",
            catalog=catalog_write(stack, upstream.url),
            upstream_url=upstream.url,
            timeout=1.5,
            retries=2,
        )
        [gateway] = gateways_spawn(stack, env)
        keys = database_setup(env, [("caller", ["--app", "drill-faults", "--create-app"])])
        gateways_ready([gateway])
        calls = []
        for i in range(calls_n):
            endpoint, stream = rng.choice(MIX)
            body = chat_body(
                endpoint, model="drill-primary", text=f"drill call {i} about faults", index=i, stream=stream
            )
            calls.append(Call(i, gateway.url, endpoint, keys["caller"].raw, body, stream=stream))
        outcomes = asyncio.run(drive(calls, concurrency=concurrency, timeout=120, deadline=900))
        rows = rows_settle(db, expected=calls_n)
        stats = upstream.stats

        sent = Counter(c.kind for c in calls)
        report.say("  sent: " + ", ".join(f"{k} {v}" for k, v in sorted(sent.items())))
        injected = sum(stats.injected.values())
        report.say(
            f"  upstream: {stats.requests} attempts for {calls_n} calls; {injected} failed on purpose ("
            + ", ".join(f"{k} {v}" for k, v in sorted(stats.injected.items()))
            + ")"
        )
        fallback_rows = [r for r in rows if r.metadata.get("fallback_from") and r.status == "success"]
        report.say(f"  answered by the fallback model after the primary failed: {len(fallback_rows)}")
        mismatches = reconcile(report, outcomes, rows)

        plain = [o for o in outcomes if not o.call.stream]
        plain_ok = sum(1 for o in plain if o.status == 200)
        streams = [o for o in outcomes if o.call.stream]
        streams_ok = sum(1 for o in streams if o.status == 200 and o.result == "ok")
        report.figures.update(
            calls=calls_n,
            attempts=stats.requests,
            injected=dict(stats.injected),
            rows=len(rows),
            non_streamed_answered=f"{plain_ok}/{len(plain)}",
            streams_complete=f"{streams_ok}/{len(streams)}",
            answered_by_fallback=len(fallback_rows),
            mismatches=mismatches,
        )
        report.say(
            f"  non-streamed calls answered 200: {plain_ok}/{len(plain)}; streams complete: {streams_ok}/{len(streams)}"
        )
        report.check(mismatches == 0, "every call has exactly one row, with the status the client saw")
        report.check(len(rows) == calls_n, f"rows ({len(rows)}) equal calls sent ({calls_n})")
        bad = [o.seen for o in outcomes if o.status is not None and o.status >= 500 and o.status not in (502, 504)]
        report.check(not bad, f"no 500 or 503 from the gateway (saw {Counter(bad) or 'none'})")
        report.check(all(o.result != "no-answer" for o in outcomes), "every call was answered (no connection dropped)")
        # Each attempt fails with the fail rate; the SDK retries, then the fallback model does the same, so an
        # unanswered non-streamed call is rare (well under 1% at 30%). The allowance keeps small runs from flaking.
        allowed = math.ceil(len(plain) * 0.02) + 2
        report.check(
            len(plain) - plain_ok <= allowed,
            f"retries and the fallback answered the non-streamed calls ({len(plain) - plain_ok} unanswered, "
            f"at most {allowed} allowed)",
        )
    return report
