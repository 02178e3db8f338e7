"""What bounding request heads costs: uvicorn's httptools protocol against ours (header_limit.py), same app.

Each run serves a tiny ASGI app from both protocols in this process and sends the same keep-alive requests over
raw sockets (a GET with a few headers, and a POST with a 48 KiB body: the read that holds the end of the head
and the start of the body is the one searched), alternating the two servers to share the machine's noise.
Prints requests per second and the ratio of ours to plain httptools (1.00 = no cost; the limit is 0.95).

    PYTHONPATH=src python bench/request_heads.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
from typing import Any

import uvicorn

from pitbox.header_limit import HeaderLimitedHttpToolsProtocol

LIMIT_RATIO = 0.95
BODY = b"x" * (48 * 1024)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the body, answers 2 bytes."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _client(port: int, request: bytes, count: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(count):
        writer.write(request)
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
    writer.close()


async def _rate(port: int, request: bytes, requests: int, clients: int) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, request, requests // clients) for _ in range(clients)))
    return requests / (time.perf_counter() - started)


async def run(rounds: int, requests: int) -> None:
    servers = {}
    for name, protocol in (("httptools", "httptools"), ("bounded", HeaderLimitedHttpToolsProtocol)):
        port = _free_port()
        config = uvicorn.Config(
            app, port=port, http=protocol, log_config=None, access_log=False, lifespan="off"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()  # it failed to start: raise why
            await asyncio.sleep(0.01)
        servers[name] = (port, server, task)
    head = (
        b"Host: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\nAuthorization: Bearer "
        + b"t" * 200
        + b"\r\n"
    )
    kinds = {
        "GET": b"GET /health HTTP/1.1\r\n" + head + b"\r\n",
        "POST 48 KiB": b"POST /api/telemetry HTTP/1.1\r\n"
        + head
        + b"Content-Length: %d\r\n\r\n" % len(BODY)
        + BODY,
    }
    print(f"{'request':<14}{'httptools req/s':>17}{'bounded req/s':>15}{'ratio':>8}   (limit {LIMIT_RATIO})")
    for kind, request in kinds.items():
        rates: dict[str, list[float]] = {"httptools": [], "bounded": []}
        for _ in range(rounds):
            for name, (port, _, _) in servers.items():
                rates[name].append(await _rate(port, request, requests, 4))
        plain, bounded = max(rates["httptools"]), max(rates["bounded"])
        print(f"{kind:<14}{plain:>17,.0f}{bounded:>15,.0f}{bounded / plain:>8.2f}")
    for _, server, task in servers.values():
        server.should_exit = True
        await task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 rounds of 2,000 requests instead of 7 of 5,000"
    )
    args = parser.parse_args()
    asyncio.run(run(3 if args.quick else 7, 2_000 if args.quick else 5_000))


if __name__ == "__main__":
    main()
