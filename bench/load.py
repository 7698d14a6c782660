"""Load benchmark: the gateway against calling the upstream directly (and LiteLLM Proxy), plus a 1,000-request burst.

    python -m bench.load compare [--proxy] [--requests 300] [--seconds 10] [--latency-ms 50] [--workers 2]
    python -m bench.load burst [--requests 1000] [--latency-ms 2000]

`compare` starts the fake upstream (bench/upstream.py), the gateway with the production command (`make serve`:
uvicorn, uvloop, httptools, `--workers`), and with `--proxy` LiteLLM Proxy from bench/.venv-proxy (see
docs/performance.md), all against the same upstream in the same run. For each target it measures non-stream
latency at concurrency 1, throughput at concurrency 50, and for streams the time to first byte and the server's
CPU time per stream. `burst` sends 1,000 requests at once to one gateway process whose upstream answers after
2 s, and reports how long the batch took, how many succeeded and the server's peak RSS.

Every process it starts listens on 127.0.0.1 only and is stopped by its PID at the end; every run is bounded
in requests and seconds. Results are printed and written to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent
PROXY_BIN = ROOT / "bench" / ".venv-proxy" / "bin" / "litellm"
PROXY_KEY = "sk-" + "0b5e" * 16
PROMPT = "Hello there, how are you today?"
STREAM_PROMPT = PROMPT + " [[chunks:50]]"
TICKS = os.sysconf("SC_CLK_TCK")


# --- Processes ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proc:
    """A child process we started; stopped by its PID (and its workers' PIDs), never by name."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.port = name, port
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.log = open(RESULTS / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def pids(self) -> list[int]:
        """This process and its children (uvicorn's and the proxy's worker processes)."""
        found = [self.pid]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) in found:
                    found.append(int(entry.name))
        return found

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process and its workers."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / TICKS

    def peak_rss_mb(self) -> float:
        """The highest resident set size any of its processes reached (VmHWM)."""
        peak = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            except OSError:
                continue
        return peak / 1024

    def wait_ready(self, path: str, timeout: float = 90) -> None:
        async def probe() -> bool:
            try:
                async with aiohttp.ClientSession() as session:
                    async with session.get(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                        return response.status < 500
            except (TimeoutError, aiohttp.ClientError):
                return False

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log.name}")
            if asyncio.run(probe()):
                return
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not answer within {timeout} s; see {self.log.name}")

    def stop(self) -> None:
        children = [p for p in self.pids() if p != self.pid]
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        for pid in children:  # workers left behind by a master that did not stop them
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


def start_upstream(latency_ms: float) -> Proc:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.upstream", "--port", str(port), "--latency-ms", str(latency_ms)]
    proc = Proc("upstream", cmd, dict(os.environ), port)
    proc.wait_ready("/v1/models")
    return proc


def gateway_env(upstream: Proc, database_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "SECRET_KEY": "bench-only-secret-key",
        "DEBUG": "False",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "OPENAI_API_KEY": "sk-bench-provider-key",
        "OPENAI_API_BASE": f"http://127.0.0.1:{upstream.port}/v1",
        "DEMO_MODEL": "off",
        "LLM_MAX_RETRIES": "0",
        "LLM_LOG_DIR": str(RESULTS / "llm-logs"),
        "LOG_LEVEL": "WARNING",
        "ENV_FILE": str(RESULTS / "no-such.env"),  # only what is set here: a developer's .env stays out
    }
    return env


def gateway_key(env: dict[str, str]) -> str:
    """Migrate the bench database and create a gateway key for the run."""
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    code = (
        "from chat.models import Application; from chat.services.keys import key_create; "
        "app, _ = Application.objects.get_or_create(name='bench'); print(key_create(application=app, name='bench')[1])"
    )
    out = subprocess.run([*manage, "shell", "-c", code], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def start_gateway(env: dict[str, str], workers: int) -> Proc:
    """The production command of `make serve`, on 127.0.0.1."""
    port = free_port()
    cmd = [str(VENV_BIN / "uvicorn"), "gateway.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--backlog", "4096"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    proc = Proc(f"gateway-{workers}w", cmd, env, port)
    proc.wait_ready("/health")
    return proc


def start_proxy(upstream: Proc, workers: int) -> Proc:
    if not PROXY_BIN.exists():
        raise SystemExit(
            "LiteLLM Proxy is not installed: python3 -m venv bench/.venv-proxy && "
            "bench/.venv-proxy/bin/pip install 'litellm[proxy]==1.106.2'"
        )
    port = free_port()
    config = RESULTS / "proxy.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f"      api_base: http://127.0.0.1:{upstream.port}/v1\n"
        "      api_key: sk-bench-provider-key\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},  # no spend database
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "LITELLM_MASTER_KEY": PROXY_KEY,  # the proxy authenticates its callers too, as the gateway does
    }
    cmd = [str(PROXY_BIN), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--num_workers", str(workers)]
    proc = Proc(f"proxy-{workers}w", cmd, env, port)
    proc.wait_ready("/health/liveliness", timeout=180)
    return proc


# --- Load ------------------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    base: str  # ends in /v1
    headers: dict[str, str] = field(default_factory=dict)
    server: Proc | None = None


@dataclass
class Result:
    target: str
    mode: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rps: float
    ttfb_p50_ms: float | None = None
    ttfb_p95_ms: float | None = None
    server_cpu_ms_per_request: float | None = None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def one_call(session: aiohttp.ClientSession, target: Target, stream: bool) -> tuple[float, float | None, bool]:
    """(total seconds, seconds to the first body byte for streams, ok)."""
    content = STREAM_PROMPT if stream else PROMPT
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
    if stream:
        body["stream"] = True
    started = time.perf_counter()
    first = None
    async with session.post(f"{target.base}/chat/completions", json=body, headers=target.headers) as response:
        if stream:
            async for _ in response.content.iter_any():
                if first is None:
                    first = time.perf_counter() - started
        else:
            await response.read()
        ok = response.status == 200
    return time.perf_counter() - started, first, ok


async def load(target: Target, *, stream: bool, concurrency: int, requests: int, seconds: float) -> Result:
    """`concurrency` clients calling back to back until `requests` are done or `seconds` have passed."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    latencies: list[float] = []
    firsts: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        warm = [one_call(session, target, stream) for _ in range(max(concurrency, 10))]
        await asyncio.gather(*warm)
        remaining = requests
        deadline = time.perf_counter() + seconds
        cpu_before = target.server.cpu_seconds() if target.server else 0.0

        async def client() -> None:
            nonlocal remaining, errors
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                try:
                    total, first, ok = await one_call(session, target, stream)
                except (TimeoutError, aiohttp.ClientError):
                    errors += 1
                    continue
                if not ok:
                    errors += 1
                latencies.append(total)
                if first is not None:
                    firsts.append(first)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = (target.server.cpu_seconds() - cpu_before) if target.server else None
    done = len(latencies)
    ms = [v * 1000 for v in latencies]
    first_ms = [v * 1000 for v in firsts]
    return Result(
        target=target.name,
        mode="stream" if stream else "non-stream",
        concurrency=concurrency,
        requests=done,
        errors=errors,
        seconds=round(elapsed, 2),
        p50_ms=round(percentile(ms, 50), 2),
        p95_ms=round(percentile(ms, 95), 2),
        p99_ms=round(percentile(ms, 99), 2),
        rps=round(done / elapsed, 1) if elapsed else 0.0,
        ttfb_p50_ms=round(percentile(first_ms, 50), 2) if first_ms else None,
        ttfb_p95_ms=round(percentile(first_ms, 95), 2) if first_ms else None,
        server_cpu_ms_per_request=round(cpu * 1000 / done, 2) if cpu is not None and done else None,
    )


def table(results: list[Result]) -> str:
    head = f"{'target':<16}{'mode':<12}{'conc':>5}{'reqs':>7}{'err':>5}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
    head += f"{'req/s':>8}{'TTFB p50':>10}{'CPU ms/req':>12}"
    lines = [head, "-" * len(head)]
    for r in results:
        ttfb = f"{r.ttfb_p50_ms:.2f}" if r.ttfb_p50_ms is not None else "-"
        cpu = f"{r.server_cpu_ms_per_request:.2f}" if r.server_cpu_ms_per_request is not None else "-"
        lines.append(
            f"{r.target:<16}{r.mode:<12}{r.concurrency:>5}{r.requests:>7}{r.errors:>5}{r.p50_ms:>9.2f}"
            f"{r.p95_ms:>9.2f}{r.p99_ms:>9.2f}{r.rps:>8.1f}{ttfb:>10}{cpu:>12}"
        )
    return "\n".join(lines)


def machine_load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def save(kind: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{kind}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


# --- Commands --------------------------------------------------------------------------------------------------


def compare(args: argparse.Namespace) -> None:
    started: list[Proc] = []
    results: list[Result] = []
    before = machine_load()
    try:
        upstream = start_upstream(args.latency_ms)
        started.append(upstream)
        targets = [Target("direct", f"http://127.0.0.1:{upstream.port}/v1", server=upstream)]
        env = gateway_env(upstream, args.database_url)
        key = gateway_key(env)
        gateway = start_gateway(env, args.workers)
        started.append(gateway)
        auth = {"Authorization": f"Bearer {key}"}
        targets.append(Target(f"gateway ({args.workers}w)", f"http://127.0.0.1:{gateway.port}/v1", auth, gateway))
        if args.proxy:
            proxy = start_proxy(upstream, args.proxy_workers)
            started.append(proxy)
            proxy_auth = {"Authorization": f"Bearer {PROXY_KEY}"}
            targets.append(
                Target(f"proxy ({args.proxy_workers}w)", f"http://127.0.0.1:{proxy.port}/v1", proxy_auth, proxy)
            )
        for stream in (False, True):
            for concurrency in (1, 50):
                for target in targets:
                    result = asyncio.run(
                        load(
                            target,
                            stream=stream,
                            concurrency=concurrency,
                            requests=args.requests if concurrency == 1 else args.requests * 10,
                            seconds=args.seconds,
                        )
                    )
                    results.append(result)
                    print(table([result]).splitlines()[-1], flush=True)
    finally:
        for proc in reversed(started):
            proc.stop()
    print()
    print(table(results))
    summary = summarise(results)
    for line in summary:
        print(line)
    after = machine_load()
    print(f"machine: before {before}; after {after}")
    path = save(
        "compare",
        {
            "args": {k: v for k, v in vars(args).items() if k != "func"},
            "results": [asdict(r) for r in results],
            "summary": summary,
            "machine_before": before,
            "machine_after": after,
        },
    )
    print(f"written to {path.relative_to(ROOT)}")


def summarise(results: list[Result]) -> list[str]:
    def find(prefix: str, mode: str, concurrency: int) -> Result | None:
        return next(
            (r for r in results if r.target.startswith(prefix) and r.mode == mode and r.concurrency == concurrency),
            None,
        )

    lines = []
    direct, gateway, proxy = (find(t, "non-stream", 1) for t in ("direct", "gateway", "proxy"))
    if direct and gateway:
        lines.append(f"added latency p50, c=1, non-stream: gateway {gateway.p50_ms - direct.p50_ms:.2f} ms")
    if direct and proxy:
        lines.append(f"added latency p50, c=1, non-stream: proxy   {proxy.p50_ms - direct.p50_ms:.2f} ms")
    gateway, proxy = find("gateway", "non-stream", 50), find("proxy", "non-stream", 50)
    if gateway and proxy:
        lines.append(
            f"throughput c=50: gateway {gateway.rps} req/s, proxy {proxy.rps} req/s ({gateway.rps / proxy.rps:.2f}x)"
        )
    for concurrency in (1, 50):
        direct, gateway, proxy = (find(t, "stream", concurrency) for t in ("direct", "gateway", "proxy"))
        if direct and gateway:
            line = (
                f"stream c={concurrency}: TTFB above direct: gateway {gateway.ttfb_p50_ms - direct.ttfb_p50_ms:.2f} ms"
            )
            if proxy:
                line += f", proxy {proxy.ttfb_p50_ms - direct.ttfb_p50_ms:.2f} ms"
            line += f"; server CPU per stream: gateway {gateway.server_cpu_ms_per_request} ms"
            if proxy:
                line += f", proxy {proxy.server_cpu_ms_per_request} ms"
            lines.append(line)
    return lines


async def burst_load(target: Target, count: int, stream: bool) -> tuple[int, float, list[float]]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def call() -> tuple[float, bool]:
            try:
                total, _, ok = await one_call(session, target, stream)
            except (TimeoutError, aiohttp.ClientError):
                return 0.0, False
            return total, ok

        started = time.perf_counter()
        outcomes = await asyncio.gather(*(call() for _ in range(count)))
        elapsed = time.perf_counter() - started
    return sum(ok for _, ok in outcomes), elapsed, [t for t, ok in outcomes if ok]


def burst(args: argparse.Namespace) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.requests * 4)), hard))
    started: list[Proc] = []
    before = machine_load()
    try:
        upstream = start_upstream(args.latency_ms)
        started.append(upstream)
        env = gateway_env(upstream, args.database_url)
        key = gateway_key(env)
        gateway = start_gateway(env, 1)
        started.append(gateway)
        target = Target(
            "gateway (1 process)", f"http://127.0.0.1:{gateway.port}/v1", {"Authorization": f"Bearer {key}"}
        )
        asyncio.run(burst_load(target, 10, False))  # warm: the key, litellm's client, the database connection
        cpu_before = gateway.cpu_seconds()
        ok, elapsed, latencies = asyncio.run(burst_load(target, args.requests, args.stream))
        cpu = gateway.cpu_seconds() - cpu_before
        rss = gateway.peak_rss_mb()
    finally:
        for proc in reversed(started):
            proc.stop()
    ms = [t * 1000 for t in latencies]
    lines = [
        f"{args.requests} simultaneous {'streamed ' if args.stream else ''}requests, upstream latency "
        f"{args.latency_ms:.0f} ms, one gateway process:",
        f"  succeeded {ok}/{args.requests}; whole batch {elapsed:.2f} s; latency p50 {percentile(ms, 50):.0f} ms, "
        f"p99 {percentile(ms, 99):.0f} ms, max {max(ms, default=0):.0f} ms",
        f"  gateway CPU {cpu:.2f} s ({cpu * 1000 / max(ok, 1):.2f} ms per request); peak RSS {rss:.0f} MB",
        f"  machine: before {before}; after {machine_load()}",
    ]
    print("\n".join(lines))
    path = save(
        "burst",
        {
            "args": {k: v for k, v in vars(args).items() if k != "func"},
            "succeeded": ok,
            "seconds": elapsed,
            "cpu_seconds": cpu,
            "peak_rss_mb": rss,
            "p50_ms": percentile(ms, 50),
            "p99_ms": percentile(ms, 99),
            "report": lines,
        },
    )
    print(f"written to {path.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    default_db = f"sqlite:///{RESULTS / 'bench.sqlite3'}"
    one = sub.add_parser("compare", help="direct vs gateway (vs LiteLLM Proxy), c=1 and c=50, stream and not")
    one.add_argument("--requests", type=int, default=300, help="requests at concurrency 1 (ten times that at 50)")
    one.add_argument("--seconds", type=float, default=10, help="at most this long per measurement")
    one.add_argument("--latency-ms", type=float, default=50)
    one.add_argument("--workers", type=int, default=2, help="gateway worker processes (make serve uses 2)")
    one.add_argument("--proxy", action="store_true", help="also measure LiteLLM Proxy from bench/.venv-proxy")
    one.add_argument("--proxy-workers", type=int, default=2)
    one.add_argument("--database-url", default=default_db)
    one.set_defaults(func=compare)
    two = sub.add_parser("burst", help="N simultaneous requests against one gateway process")
    two.add_argument("--requests", type=int, default=1000)
    two.add_argument("--latency-ms", type=float, default=2000)
    two.add_argument("--stream", action="store_true")
    two.add_argument("--database-url", default=default_db)
    two.set_defaults(func=burst)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
