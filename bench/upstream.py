"""A local OpenAI-compatible server: the provider that tests and benchmarks talk to.

Behaviour is steered by markers in the last user message, so concurrent calls never
share state:

    [[status:500]]   answer with that HTTP status and an OpenAI error body
    [[sleep:1.5]]    wait that many seconds before answering
    [[cached:40]]    report 40 of the prompt tokens as cached
    [[reasoning:7]]  report 7 of the completion tokens as reasoning
    [[chunks:50]]    stream the answer in that many chunks
    [[chunk_delay:0.05]]  wait that many seconds before each streamed chunk
    [[nousage]]      never send a usage block, even when asked
    [[malformed]]    answer 200 with a body that is not JSON
    [[reset]]        drop the connection without an answer
    [[cut]]          stream half the answer, then drop the connection

With ``fail_rate`` (``--fail-rate 0.3``) that share of unmarked calls fails at random: 500, 429,
a 30 s wait (a timeout for the caller), a reset connection, malformed JSON or a stream cut in
the middle. ``GET /stats`` answers the counters as JSON, for drills that run it as a process.

Run it alone with ``python -m bench.upstream --port 9100 --latency-ms 50``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field

from aiohttp import web

MARKER = re.compile(r"\[\[(\w+)(?::([\d.]+))?\]\]")


@dataclass
class Behaviour:
    status: int = 200
    sleep: float = 0.0
    cached: int = 0
    reasoning: int = 0
    chunks: int = 0
    chunk_delay: float = 0.0
    usage: bool = True
    malformed: bool = False
    reset: bool = False
    cut: bool = False
    injected: str = ""  # the random failure fail_rate chose, if any


@dataclass
class Stats:
    requests: int = 0
    streams_started: int = 0
    streams_finished: int = 0
    streams_aborted: int = 0
    open_streams: int = 0
    injected: dict = field(default_factory=dict)  # random failures by kind
    last_body: dict = field(default_factory=dict)
    last_headers: dict = field(default_factory=dict)


def words(text: str) -> list[str]:
    return MARKER.sub("", text).split()


def text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def behaviour_of(text: str, fail_rate: float) -> Behaviour:
    b = Behaviour()
    for name, value in MARKER.findall(text):
        if name == "status":
            b.status = int(float(value))
        elif name in ("sleep", "cached", "reasoning", "chunks", "chunk_delay"):
            setattr(b, name, type(getattr(b, name))(float(value)))
        elif name == "nousage":
            b.usage = False
        elif name in ("malformed", "reset", "cut"):
            setattr(b, name, True)
    if fail_rate and b.status == 200 and random.random() < fail_rate:
        pick = random.choice(["500", "429", "sleep", "reset", "malformed", "cut"])
        b.injected = pick
        if pick in ("500", "429"):
            b.status = int(pick)
        elif pick == "sleep":
            b.sleep = 30.0
        else:
            setattr(b, pick, True)
    return b


def usage_block(prompt: int, completion: int, b: Behaviour) -> dict:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if b.cached:
        usage["prompt_tokens_details"] = {"cached_tokens": min(b.cached, prompt)}
    if b.reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": min(b.reasoning, completion)}
    return usage


class Upstream:
    """The server; ``start()`` runs it on a thread of its own and returns its base URL."""

    def __init__(self, *, latency_ms: float = 0, chunk_delay_ms: float = 0, fail_rate: float = 0):
        self.latency = latency_ms / 1000
        self.chunk_delay = chunk_delay_ms / 1000
        self.fail_rate = fail_rate
        self.stats = Stats()
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_post("/chat/completions", self.chat)
        self.app.router.add_post("/v1/embeddings", self.embeddings)
        self.app.router.add_post("/embeddings", self.embeddings)
        self.app.router.add_get("/v1/models", self.models)
        self.app.router.add_get("/stats", self.stats_view)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests += 1
        body = await request.json()
        self.stats.last_body = body
        self.stats.last_headers = dict(request.headers)
        messages = body.get("messages") or []
        last = text_of(messages[-1].get("content")) if messages else ""
        b = behaviour_of(last, self.fail_rate)
        if b.injected == "cut" and not body.get("stream"):
            b.injected = ""  # only a stream can be cut; this call is answered whole
        if b.injected:
            self.stats.injected[b.injected] = self.stats.injected.get(b.injected, 0) + 1
        delay = self.latency + b.sleep
        if delay:
            await asyncio.sleep(delay)
        if b.reset:
            request.transport.close()
            raise ConnectionResetError("reset by test upstream")
        if b.status != 200:
            kind = "rate_limit_error" if b.status == 429 else "server_error"
            return web.json_response(
                {"error": {"message": f"upstream says {b.status}", "type": kind, "code": None}},
                status=b.status,
            )
        if b.malformed:
            return web.Response(text="{not json", content_type="application/json")
        prompt_tokens = sum(len(words(text_of(m.get("content")))) for m in messages) or 1
        reply = "Echo: " + (" ".join(words(last)) or "nothing")
        completion_tokens = len(reply.split())
        rid = "chatcmpl-" + uuid.uuid4().hex[:24]
        model = body.get("model", "unknown")
        created = int(time.time())
        if not body.get("stream"):
            message: dict = {"role": "assistant", "content": reply}
            if body.get("tools"):
                message = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": body["tools"][0]["function"]["name"],
                                "arguments": json.dumps({"text": " ".join(words(last))}),
                            },
                        }
                    ],
                }
            n = int(body.get("n") or 1)
            return web.json_response(
                {
                    "id": rid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": i,
                            "message": message,
                            "finish_reason": "tool_calls" if body.get("tools") else "stop",
                        }
                        for i in range(n)
                    ],
                    "usage": usage_block(prompt_tokens, completion_tokens * n, b),
                }
            )
        return await self._stream(request, body, b, rid, model, created, reply, prompt_tokens)

    async def _stream(self, request, body, b, rid, model, created, reply, prompt_tokens):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        self.stats.streams_started += 1
        self.stats.open_streams += 1
        pieces = reply.split(" ")
        if b.chunks and b.chunks > len(pieces):
            pieces = pieces + ["."] * (b.chunks - len(pieces))
        texts = [p if i == 0 else " " + p for i, p in enumerate(pieces)]
        cut_at = len(texts) // 2 if b.cut else None

        def frame(choices: list, usage: dict | None = None) -> bytes:
            chunk = {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
            }
            if usage is not None:
                chunk["usage"] = usage
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        try:
            await response.write(
                frame([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            )
            for i, text in enumerate(texts):
                if cut_at is not None and i == cut_at:
                    request.transport.close()
                    self.stats.streams_aborted += 1
                    return response
                if b.chunk_delay or self.chunk_delay:
                    await asyncio.sleep(b.chunk_delay or self.chunk_delay)
                await response.write(frame([{"index": 0, "delta": {"content": text}, "finish_reason": None}]))
            await response.write(frame([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
            wants_usage = (body.get("stream_options") or {}).get("include_usage")
            if wants_usage and b.usage:
                completion_tokens = len(reply.split())
                await response.write(frame([], usage_block(prompt_tokens, completion_tokens, b)))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            self.stats.streams_finished += 1
        except (ConnectionResetError, asyncio.CancelledError):
            self.stats.streams_aborted += 1
            raise
        finally:
            self.stats.open_streams -= 1
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        self.stats.requests += 1
        body = await request.json()
        self.stats.last_body = body
        self.stats.last_headers = dict(request.headers)
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        if self.latency:
            await asyncio.sleep(self.latency)
        data = []
        for i, text in enumerate(inputs):
            seed = sum(map(ord, str(text))) or 1
            data.append(
                {"object": "embedding", "index": i, "embedding": [((seed * (k + 1)) % 97) / 97 for k in range(8)]}
            )
        tokens = sum(len(str(t).split()) for t in inputs) or 1
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def stats_view(self, request: web.Request) -> web.Response:
        counters = {k: v for k, v in self.stats.__dict__.items() if k not in ("last_body", "last_headers")}
        return web.json_response(counters)

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._runner = web.AppRunner(self.app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, host, port, backlog=4096)
            self._loop.run_until_complete(site.start())
            bound = site._server.sockets[0].getsockname()[1]
            self.url = f"http://{host}:{bound}/v1"
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True, name="test-upstream").start()
        ready.wait(10)
        return self.url

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--chunk-delay-ms", type=float, default=0)
    parser.add_argument("--fail-rate", type=float, default=0)
    args = parser.parse_args()
    upstream = Upstream(latency_ms=args.latency_ms, chunk_delay_ms=args.chunk_delay_ms, fail_rate=args.fail_rate)
    web.run_app(upstream.app, host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=4096)


if __name__ == "__main__":
    main()
