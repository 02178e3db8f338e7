"""A bound on the size of a request's head (request line and headers), enforced while it arrives.

uvicorn's httptools protocol has no such bound: httptools gathers each header value in memory until it ends, so a
64 MiB header was read whole before any route or authentication saw it. This protocol counts the bytes that
arrive before the head is complete and, past `MAX_HEADER_BYTES`, answers 431 in the one error shape and closes
the connection: at most the bound plus one read of the socket is ever held. (uvicorn's h11 protocol has its own
bound, `h11_max_incomplete_event_size`, which `serving.py` sets to the same value.)
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["MAX_HEADER_BYTES", "HeaderLimitedHttpToolsProtocol"]

log = structlog.get_logger(__name__)

#: Largest request line plus headers accepted, in bytes (browsers and proxies send a few KiB; nginx's default
#: buffers allow 4 x 8 KiB).
MAX_HEADER_BYTES = 64 * 1024


def _refusal(limit: int) -> bytes:
    body = orjson.dumps(
        {
            "error": {
                "code": "headers_too_large",
                "message": f"the request line and headers are larger than {limit} bytes",
                "details": None,
            }
        }
    )
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "x-content-type-options: nosniff\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def _end_of_head(tail: bytes, data: bytes) -> int:
    """Where in `data` the blank line that ends a head ends (it may begin in `tail`, the end of the previous
    read), or -1."""
    if tail:
        joint = (tail + data[:3]).find(b"\r\n\r\n")
        if joint >= 0:
            return joint + 4 - len(tail)
    found = data.find(b"\r\n\r\n")
    return found + 4 if found >= 0 else -1


class HeaderLimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request whose head is longer than `max_header_bytes` (431).

    While a head arrives, each read is searched for its end (a blank line): a head that ends within the read
    is measured before the parser sees it; one that does not is counted, and refused once the count passes
    the bound and the parser still has not seen its end (so only a head, never a body, is ever counted).
    """

    max_header_bytes = MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0  # bytes of the current head received before this read
        self._tail = b""  # the last bytes of the previous read, where a blank line may have begun

    def data_received(self, data: bytes) -> None:
        """Measure the head arriving in `data`; refuse it past the bound, else parse as uvicorn does."""
        if self._in_head:
            head_end = _end_of_head(self._tail, data)  # in `data`; the read is not copied
            if head_end >= 0:
                if self._head_bytes + head_end > self.max_header_bytes:
                    self._refuse()
                    return
            else:
                self._head_bytes += len(data)
                self._tail = (self._tail + data)[-3:] if len(data) < 3 else data[-3:]
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_header_bytes and not self.transport.is_closing():
            self._refuse()

    def on_headers_complete(self) -> None:
        """The head ended within the bound: what follows is the body."""
        self._start_head(in_head=False)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request ended: the next bytes belong to the next request's head."""
        self._start_head(in_head=True)
        super().on_message_complete()

    def _start_head(self, *, in_head: bool) -> None:
        self._in_head = in_head
        self._head_bytes = 0
        self._tail = b""

    def _refuse(self) -> None:
        client = self.client[0] if self.client else None
        log.warning("request_headers_too_large", client=client, limit=self.max_header_bytes)
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_refusal(self.max_header_bytes))
        self.transport.close()
