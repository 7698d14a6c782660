"""Profile one gateway process under load with py-spy, and print where its CPU time goes.

    python -m bench.profile [--seconds 10] [--concurrency 10] [--stream] [--latency-ms 50]
    python -m bench.profile --burst 1000 --latency-ms 2000

Starts the upstream and one gateway process (as bench/load.py does), samples the gateway with
`py-spy record --format raw` while the load runs, and prints the functions with the most inclusive and
self time. Needs py-spy (`pip install py-spy`); the collapsed stacks are kept in bench/results/ for a
flame graph.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import time

from bench.load import RESULTS, Target, burst_load, gateway_env, gateway_key, load, start_gateway, start_upstream


def summarise(path, top: int) -> list[str]:  # type: ignore[no-untyped-def]
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[_short(frame)] += n
        own[_short(frames[-1])] += n
    lines = [f"{total} samples; inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["self:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    return lines


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").split("site-packages/")[-1]
    return f"{name} ({where.rsplit(':', 1)[0]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--burst", type=int, default=0, help="send this many requests at once instead")
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--database-url", default=f"sqlite:///{RESULTS / 'bench.sqlite3'}")
    args = parser.parse_args()
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    started = []
    out = RESULTS / f"profile-{'stream' if args.stream else 'nonstream'}-{time.strftime('%Y%m%dT%H%M%S')}.txt"
    try:
        upstream = start_upstream(args.latency_ms)
        started.append(upstream)
        env = gateway_env(upstream, args.database_url)
        key = gateway_key(env)
        gateway = start_gateway(env, 1)
        started.append(gateway)
        target = Target("gateway", f"http://127.0.0.1:{gateway.port}/v1", {"Authorization": f"Bearer {key}"}, gateway)
        asyncio.run(load(target, stream=args.stream, concurrency=args.concurrency, requests=50, seconds=5))
        record = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(gateway.pid),
                "--rate",
                "500",
                "--format",
                "raw",
                "--output",
                str(out),
                "--duration",
                str(int(args.seconds)),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if args.burst:
            ok, elapsed, _ = asyncio.run(burst_load(target, args.burst, args.stream))
            summary = f"{ok}/{args.burst} succeeded in {elapsed:.2f} s"
        else:
            result = asyncio.run(
                load(target, stream=args.stream, concurrency=args.concurrency, requests=100_000, seconds=args.seconds)
            )
            summary = (
                f"{result.requests} requests, {result.rps} req/s, server CPU {result.server_cpu_ms_per_request} ms"
            )
        record.wait(args.seconds + 30)
    finally:
        for proc in reversed(started):
            proc.stop()
    print(summary)
    print("\n".join(summarise(out, args.top)))
    print(f"collapsed stacks: {out.relative_to(RESULTS.parent.parent)}")


if __name__ == "__main__":
    main()
