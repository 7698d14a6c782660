"""What every drill needs: its own database, gateway processes, an upstream, a load driver, and counts.

Everything listens on 127.0.0.1 only. Whatever a drill starts is registered on its `Stack` and
ended (by PID, in reverse order) when the drill ends, whether it passed, failed or was interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from bench.upstream import Upstream

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
HOST = "127.0.0.1"
# Where the drills create (and drop) their PostgreSQL databases, drills_<drill>_<pid>.
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_URL = os.environ.get("DRILLS_REDIS_URL", "redis://127.0.0.1:6379/10")
PROVIDER_KEY = "sk-drill-provider-key-0123456789abcdef"
COST_PLACES = Decimal("1e-10")  # the precision of Request.cost_usd
# Prices the drills' catalog sets, so that budgets in the drills are easy to read.
INPUT_PER_MILLION = Decimal(1)
OUTPUT_PER_MILLION = Decimal(2)


class DrillError(RuntimeError):
    """The drill itself could not run (a process did not start, a command failed)."""


# --- Report ---------------------------------------------------------------------------------


@dataclass
class Report:
    """What a drill sent, what was recorded, and which promises held."""

    name: str
    lines: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[tuple[bool, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(passed for passed, _ in self.checks)

    @property
    def broken(self) -> list[str]:
        return [promise for passed, promise in self.checks if not passed]

    def say(self, line: str = "") -> None:
        """Print a line now (a long drill shows progress) and keep it for the summary."""
        self.lines.append(line)
        print(line, flush=True)

    def table(self, header: list[str], rows: Iterable[Iterable[Any]]) -> None:
        body = [[str(c) for c in row] for row in rows]
        widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
        fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
        self.say("  " + fmt.format(*header))
        for row in body:
            self.say("  " + fmt.format(*row))

    def check(self, passed: bool, promise: str) -> bool:
        self.checks.append((bool(passed), promise))
        self.say(f"  [{'ok' if passed else 'BROKEN'}] {promise}")
        return bool(passed)


# --- Processes and resources ----------------------------------------------------------------


class Stack:
    """A drill's temporary folder and everything it started; `close()` ends them in reverse order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"drill-{name}-"))
        self._closers: list[tuple[str, Callable[[], Any]]] = []

    def defer(self, what: str, fn: Callable[[], Any]) -> None:
        self._closers.append((what, fn))

    def close(self) -> None:
        while self._closers:
            what, fn = self._closers.pop()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - one failed clean-up must not skip the others
                print(f"  (clean-up of {what} failed: {exc})", file=sys.stderr)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def process_end(proc: subprocess.Popen) -> None:
    """End one process we started, by its PID: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- Database -------------------------------------------------------------------------------


@dataclass
class Database:
    """A database of the drill's own: a SQLite file, or a PostgreSQL database `drills_<drill>_<pid>`."""

    kind: str  # sqlite or postgres
    url: str
    path: Path | None = None
    name: str = ""

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.kind == "sqlite":
            with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
                return conn.execute(sql.replace("%s", "?"), params).fetchall()
        import psycopg

        with psycopg.connect(self.url, connect_timeout=10) as conn:
            return conn.execute(sql, params).fetchall()


def database_create(stack: Stack, kind: str, drill: str) -> Database:
    if kind == "sqlite":
        folder = stack.dir / "db"
        folder.mkdir()
        path = folder / "gateway.sqlite3"
        return Database(kind="sqlite", url=f"sqlite:///{path}", path=path)
    if kind != "postgres":
        raise DrillError(f"--db must be sqlite or postgres, not {kind!r}")
    import psycopg

    name = f"drills_{drill}_{os.getpid()}".replace("-", "_")
    admin = os.environ.get("DRILLS_PG_URL", PG_ADMIN_URL)

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    drop()  # a previous run of this PID that was killed may have left it
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    stack.defer(f"database {name}", drop)
    base = admin.rsplit("/", 1)[0]
    return Database(kind="postgres", url=f"{base}/{name}", name=name)


@dataclass
class Row:
    """The fields of a Request row the drills count."""

    id: str
    status: str
    http_status: int
    error_type: str
    cost: Decimal
    cache_hit: bool
    key_id: int | None
    streamed: bool
    endpoint: str
    application_id: str
    metadata: dict
    latency_ms: int = 0

    @property
    def call(self) -> int | None:
        value = self.metadata.get("drill_call")
        return int(value) if value is not None else None


def rows_read(db: Database) -> list[Row]:
    found = db.query(
        "SELECT id, status, http_status, error_type, cost_usd, cache_hit, key_id, streamed, endpoint, "
        "application_id, metadata, latency_ms FROM chat_request"
    )
    rows = []
    for rid, status, http, etype, cost, hit, key_id, streamed, endpoint, app, meta, latency in found:
        if isinstance(meta, str):
            meta = json.loads(meta)
        rows.append(
            Row(
                id=str(uuid.UUID(str(rid))),
                status=status,
                http_status=int(http),
                error_type=etype or "",
                cost=Decimal(str(cost)).quantize(COST_PLACES),
                cache_hit=bool(hit),
                key_id=key_id,
                streamed=bool(streamed),
                endpoint=endpoint,
                application_id=app,
                metadata=meta or {},
                latency_ms=int(latency or 0),
            )
        )
    return rows


def rows_count(db: Database) -> int:
    return int(db.query("SELECT COUNT(*) FROM chat_request")[0][0])


def rows_settle(db: Database, *, expected: int, timeout: float = 20.0) -> list[Row]:
    """The rows once `expected` are there, or once the count stopped moving (a write finishes after its answer)."""
    deadline = time.monotonic() + timeout
    last, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = rows_count(db)
        if count >= expected:
            break
        if count != last:
            last, still_since = count, time.monotonic()
        elif time.monotonic() - still_since > 5:
            break
        time.sleep(0.2)
    return rows_read(db)


# --- Gateway --------------------------------------------------------------------------------


def catalog_write(stack: Stack, upstream_url: str) -> Path:
    """The drills' models, all at the local upstream: a primary with a fallback, and a cached model."""

    def model(name: str, **extra: Any) -> dict:
        return {
            "name": name,
            "model": "openai/gpt-4o-mini",
            "api_base": upstream_url,
            "api_key_env": "OPENAI_API_KEY",
            "input_cost_per_million": str(INPUT_PER_MILLION),
            "output_cost_per_million": str(OUTPUT_PER_MILLION),
            **extra,
        }

    path = stack.dir / "catalog.json"
    models = [
        model("drill-primary", fallbacks=["drill-backup"]),
        model("drill-backup"),
        model("drill-cached", cache_ttl=600),
    ]
    path.write_text(json.dumps({"models": models}, indent=2))
    return path


def gateway_env(
    *,
    db_url: str,
    log_dir: Path,
    catalog: Path,
    upstream_url: str,
    redis_url: str = "",
    timeout: float = 10.0,
    retries: int = 2,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a gateway process: nothing inherited but the basics, every setting explicit."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")}
    env.update(
        DJANGO_SETTINGS_MODULE="gateway.settings",
        PYTHONUNBUFFERED="1",
        SECRET_KEY="drill-" + uuid.uuid4().hex,
        DEBUG="False",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        GATEWAY_ALLOW_ANONYMOUS="False",
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        CACHE_URL=redis_url,
        LLM_LOG_DIR=str(log_dir),
        LLM_STORE_CONTENT="full",
        MODEL_CATALOG_FILE=str(catalog),
        LLM_DEFAULT_MODEL="drill-primary",
        LLM_TIMEOUT_SECONDS=str(timeout),
        LLM_MAX_RETRIES=str(retries),
        OPENAI_API_KEY=PROVIDER_KEY,
        OPENAI_API_BASE=upstream_url,
        OPENAI_BASE_URL="",
        DEMO_MODEL="off",
        LOG_LEVEL="WARNING",
    )
    for name in (
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "GROQ_API_KEY",
        "AZURE_API_KEY",
        "AZURE_API_BASE",
        "OLLAMA_API_BASE",
        "VLLM_API_BASE",
    ):
        env[name] = ""
    env.update(extra or {})
    return env


SETUP_SCRIPT = """
import io, json, os
from django.core.management import call_command
from chat.models import ApiKey, Application
from chat.services.keys import key_hash
call_command("migrate", verbosity=0, interactive=False)
keys = {}
for label, args in json.loads(os.environ["DRILL_KEYS"]):
    out = io.StringIO()
    call_command("create_api_key", *args, "--quiet", stdout=out)
    raw = out.getvalue().strip()
    key = ApiKey.objects.get(hashed=key_hash(raw))
    keys[label] = {"raw": raw, "id": key.id, "application": key.application.name}
for name, budget, period in json.loads(os.environ.get("DRILL_APP_BUDGETS", "[]")):
    Application.objects.filter(name=name).update(budget_usd=budget, budget_period=period)
print("DRILL-KEYS " + json.dumps(keys))
"""


@dataclass(frozen=True)
class Key:
    raw: str
    id: int
    application: str


def manage(env: dict[str, str], *args: str, timeout: float = 300, extra_env: dict | None = None) -> str:
    """Run `manage.py <args>` with the drill's environment; its output, or DrillError with it."""
    done = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env={**env, **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise DrillError(f"manage.py {' '.join(args[:2])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def database_setup(
    env: dict[str, str], keys: list[tuple[str, list[str]]], app_budgets: list[tuple[str, str, str]] = ()
) -> dict[str, Key]:
    """Migrate, then issue each key with `create_api_key` (its arguments as given), in one process."""
    out = manage(
        env,
        "shell",
        "-c",
        SETUP_SCRIPT,
        extra_env={"DRILL_KEYS": json.dumps(keys), "DRILL_APP_BUDGETS": json.dumps(list(app_budgets))},
    )
    line = next((ln for ln in out.splitlines() if ln.startswith("DRILL-KEYS ")), None)
    if line is None:
        raise DrillError(f"the setup printed no keys:\n{out[-2000:]}")
    return {label: Key(**value) for label, value in json.loads(line[len("DRILL-KEYS ") :]).items()}


@dataclass
class Gateway:
    proc: subprocess.Popen
    url: str
    log: Path
    label: str = "gateway"

    @property
    def pid(self) -> int:
        return self.proc.pid


def gateways_spawn(stack: Stack, env: dict[str, str], count: int = 1) -> list[Gateway]:
    """Start `count` gateway processes (`uvicorn gateway.asgi:application`) on free ports of 127.0.0.1.

    They take seconds to import; a drill migrates its database meanwhile, then calls `gateways_ready`.
    """
    return [_gateway_spawn(stack, env, "gateway" if count == 1 else f"gateway{n}") for n in range(count)]


def gateways_ready(gateways: list[Gateway], wait: float = 120.0) -> None:
    """Return once every gateway answers /health; DrillError with its log if one exits or stays silent."""
    deadline = time.monotonic() + wait
    for gateway in gateways:
        _gateway_wait(gateway, deadline)


def _gateway_spawn(stack: Stack, env: dict[str, str], label: str) -> Gateway:
    port = free_port()
    log = stack.dir / f"{label}-{port}.log"
    handle = log.open("wb")
    proc = subprocess.Popen(
        [PYTHON, "-m", "uvicorn", "gateway.asgi:application", "--host", HOST, "--port", str(port)]
        + ["--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "5"],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    handle.close()
    stack.defer(f"{label} (pid {proc.pid})", lambda: process_end(proc))
    return Gateway(proc=proc, url=f"http://{HOST}:{port}", log=log, label=label)


def _gateway_wait(gateway: Gateway, deadline: float) -> None:
    proc, log, label = gateway.proc, gateway.log, gateway.label
    while True:
        if proc.poll() is not None:
            raise DrillError(f"{label} exited with {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(gateway.url + "/health", timeout=2, trust_env=False).status_code in (200, 503):
                return
        if time.monotonic() > deadline:
            raise DrillError(f"{label} did not answer /health in time:\n{tail(log)}")
        time.sleep(0.25)


def health(gateway: Gateway) -> int | None:
    try:
        return httpx.get(gateway.url + "/health", timeout=5, trust_env=False).status_code
    except httpx.HTTPError:
        return None


def connections_to(pid: int, port: int) -> int:
    """Established TCP connections of process `pid` to 127.0.0.1:`port` (from /proc; 0 elsewhere)."""
    try:
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        count = 0
        for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
            parts = line.split()
            remote, state, inode = parts[2], parts[3], parts[9]
            if state == "01" and inode in inodes and int(remote.split(":")[1], 16) == port:
                count += 1
        return count
    except OSError:
        return 0


# --- Upstream -------------------------------------------------------------------------------


def upstream_start(stack: Stack, **options: Any) -> Upstream:
    """bench.upstream in this process (its counters are readable directly)."""
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # the resets it is asked for are not news
    server = Upstream(**options)
    server.start()
    if not server.url:
        raise DrillError("the upstream did not start")

    def stop() -> None:
        # Handlers still sleeping (a simulated timeout) may outlast the shutdown; the thread is a daemon.
        with contextlib.suppress(Exception):
            server.stop()

    stack.defer("upstream", stop)
    return server


def upstream_process(stack: Stack, *, latency_ms: float = 0, fail_rate: float = 0) -> str:
    """bench.upstream as a process of its own (it then has a core to itself); its base URL."""
    port = free_port()
    log = stack.dir / f"upstream-{port}.log"
    handle = log.open("wb")
    proc = subprocess.Popen(
        [PYTHON, "-m", "bench.upstream", "--port", str(port), "--latency-ms", str(latency_ms)]
        + ["--fail-rate", str(fail_rate)],
        cwd=ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    handle.close()
    stack.defer(f"upstream (pid {proc.pid})", lambda: process_end(proc))
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DrillError(f"the upstream exited:\n{tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url + "/stats", timeout=2, trust_env=False)
            return url + "/v1"
        time.sleep(0.2)
    raise DrillError("the upstream did not start")


def upstream_stats(url: str) -> dict:
    return httpx.get(url.removesuffix("/v1") + "/stats", timeout=5, trust_env=False).json()


# --- TCP proxy (the database "unreachable") -------------------------------------------------


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 that can be cut (every connection dropped, new ones refused) and restored."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.is_cut = False
        self.refused = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._open: set[asyncio.StreamWriter] = set()

    def start(self) -> int:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, HOST, 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True, name="drill-proxy").start()
        if not ready.wait(10):
            raise DrillError("the proxy did not start")
        return self.port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._open -= {writer, up_writer}

    def _abort_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()

    def cut(self) -> None:
        self.is_cut = True
        if self._loop:
            self._loop.call_soon_threadsafe(self._abort_all)

    def restore(self) -> None:
        self.is_cut = False

    def stop(self) -> None:
        if self._loop and self._server:
            self._loop.call_soon_threadsafe(self._abort_all)
            self._loop.call_soon_threadsafe(self._server.close)
            self._loop.call_soon_threadsafe(self._loop.stop)


# --- Load -----------------------------------------------------------------------------------


@dataclass
class Call:
    """One request a drill sends."""

    index: int
    base: str
    endpoint: str  # /llm/chat or /v1/chat/completions
    key: str
    body: dict
    stream: bool = False
    hang_up_after: int | None = None  # read this many events of the stream, then close the connection
    headers: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.endpoint + (" stream" if self.stream else "")


@dataclass
class Outcome:
    """What the client saw."""

    call: Call
    status: int | None = None
    result: str = ""  # ok, error, error-event, hung-up, truncated, no-answer
    request_id: str = ""
    error_code: str = ""
    events: int = 0
    content: str = ""
    latency_ms: float = 0.0

    @property
    def seen(self) -> str:
        """The client's view in one word, as the drills' tables show it."""
        if self.result == "no-answer":
            return f"no answer ({self.error_code})"
        if self.result == "hung-up":
            return "client hung up"
        if self.status == 200 and self.result == "error-event":
            return f"200 + error event ({self.error_code})"
        if self.status == 200 and self.result == "truncated":
            return "200, stream truncated"
        if self.status == 200:
            return "200"
        return f"{self.status} {self.error_code}".strip()


def chat_body(endpoint: str, *, model: str, text: str, index: int, stream: bool, **options: Any) -> dict:
    """A request body for `endpoint`, tagged with the call's index so its row can be found."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "metadata": {"drill_call": str(index)},
        **options,
    }
    if stream:
        body["stream"] = True
        if endpoint.startswith("/v1/"):
            body["stream_options"] = {"include_usage": True}
    return body


async def call_send(client: httpx.AsyncClient, call: Call) -> Outcome:
    out = Outcome(call=call)
    headers = {"Authorization": f"Bearer {call.key}", **call.headers}
    started = time.perf_counter()
    try:
        if not call.stream:
            response = await client.post(call.base + call.endpoint, json=call.body, headers=headers)
            out.status = response.status_code
            body = _json(response.content)
            out.request_id = response.headers.get("x-request-id") or str(body.get("request_id") or "")
            out.result = "ok" if response.status_code == 200 else "error"
            out.error_code = str((body.get("error") or {}).get("code") or "")
            out.content = str(body.get("content") or _v1_content(body))
        else:
            await _stream(client, call, headers, out)
    except httpx.HTTPError as exc:
        out.result = "no-answer"
        out.error_code = type(exc).__name__
    out.latency_ms = (time.perf_counter() - started) * 1000
    return out


async def _stream(client: httpx.AsyncClient, call: Call, headers: dict, out: Outcome) -> None:
    async with client.stream("POST", call.base + call.endpoint, json=call.body, headers=headers) as response:
        out.status = response.status_code
        out.request_id = response.headers.get("x-request-id", "")
        if response.status_code != 200:
            body = _json(await response.aread())
            out.result = "error"
            out.error_code = str((body.get("error") or {}).get("code") or "")
            return
        parts = []
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                out.result = out.result or "ok"
                continue
            event = _json(data.encode())
            out.events += 1
            if "error" in event:
                out.result = "error-event"
                out.error_code = str((event.get("error") or {}).get("code") or "")
            elif event.get("type") == "done":
                out.request_id = out.request_id or str(event.get("request_id") or "")
            parts.append(event.get("content") or _v1_delta(event))
            if call.hang_up_after is not None and out.events >= call.hang_up_after:
                out.result = "hung-up"
                return  # leaving the block closes the connection in the middle of the stream
        out.content = "".join(p for p in parts if p)
        out.result = out.result or "truncated"


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _v1_content(body: dict) -> str:
    choices = body.get("choices") or [{}]
    return str(((choices[0] or {}).get("message") or {}).get("content") or "")


def _v1_delta(event: dict) -> str:
    choices = event.get("choices") or [{}]
    return str(((choices[0] or {}).get("delta") or {}).get("content") or "")


async def drive(
    calls: list[Call], *, concurrency: int, timeout: float = 60.0, deadline: float = 900.0
) -> list[Outcome]:
    """Send every call, at most `concurrency` at a time; the whole run is bounded by `deadline` seconds."""
    gate = asyncio.Semaphore(concurrency)
    # Idle connections are dropped well before uvicorn's 5 s keep-alive timeout: reusing one the server is closing
    # at that moment loses the request before the gateway sees it (a client race, not a gateway fault).
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10), limits=limits, trust_env=False) as client:

        async def one(call: Call) -> Outcome:
            async with gate:
                return await call_send(client, call)

        gathered = asyncio.gather(*(one(c) for c in calls))
        # An interrupted run cancels it: take its outcome, so asyncio does not report it as never retrieved.
        gathered.add_done_callback(lambda f: f.cancelled() or f.exception())
        return list(await asyncio.wait_for(gathered, deadline))


def usd(amount: Decimal) -> str:
    """An amount as plain digits (never 0E-10)."""
    return f"{amount:f}"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# --- Counting -------------------------------------------------------------------------------


def rows_by_call(rows: list[Row]) -> dict[int, list[Row]]:
    found: dict[int, list[Row]] = {}
    for row in rows:
        if row.call is not None:
            found.setdefault(row.call, []).append(row)
    return found


def expected_status(out: Outcome) -> str | None:
    """The row status the client's view implies; None when the call was refused before any provider."""
    if out.result == "hung-up":
        return "cancelled"
    if out.status == 200 and out.result == "ok":
        return "success"
    if out.status is not None and out.status >= 400 and out.error_code in GATEWAY_REFUSALS:
        return None
    return "error"


# Refusals before any provider is asked: no row is written for them.
GATEWAY_REFUSALS = {
    "budget_exceeded",
    "rate_limit_exceeded",
    "invalid_api_key",
    "model_not_found",
    "service_unavailable",
    "invalid_json",
}


def reconcile(report: Report, outcomes: list[Outcome], rows: list[Row]) -> int:
    """The cross table of what clients saw against what was recorded; the number of mismatches."""
    by_call = rows_by_call(rows)
    table: dict[str, Counter] = {}
    mismatches: list[str] = []
    for out in outcomes:
        found = by_call.get(out.call.index, [])
        want = expected_status(out)
        counts = table.setdefault(out.seen, Counter())
        counts["calls"] += 1
        if len(found) > 1:
            counts[">1 row"] += 1
        elif not found:
            counts["no row"] += 1
        else:
            counts[found[0].status] += 1
        got = [r.status for r in found]
        if want is None:
            ok = not found
        else:
            ok = got == [want]
            if ok and out.result in ("ok", "error") and out.status is not None:
                ok = found[0].http_status == out.status  # what the row says the client got
            if ok and out.request_id:
                ok = found[0].id == out.request_id
        if not ok:
            mismatches.append(
                f"call {out.call.index} ({out.call.kind}): client saw {out.seen}, rows {got or 'none'}"
                + (f" http {[r.http_status for r in found]}" if found else "")
            )
    columns = ["success", "error", "cancelled", "no row", ">1 row"]
    report.say("  what the client saw against the rows recorded:")
    report.table(
        ["client saw", "calls", *("row " + c if c in columns[:3] else c for c in columns)],
        [[seen, c["calls"], *(c[col] for col in columns)] for seen, c in sorted(table.items())],
    )
    strays = [r for r in rows if r.call is None or r.call not in {o.call.index for o in outcomes}]
    if strays:
        mismatches.append(f"{len(strays)} rows belong to no call the drill sent")
    for line in mismatches[:15]:
        report.say("    mismatch: " + line)
    if len(mismatches) > 15:
        report.say(f"    … and {len(mismatches) - 15} more")
    return len(mismatches)


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"
