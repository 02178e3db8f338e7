"""Decoding of stored chunks on worker threads, each with its own `ChunkCodec`, beside the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from pitbox.telemetry.codec import ChunkCodec, FloatArray


class CodecThreads:
    """Runs decoding on worker threads, each with its own `ChunkCodec` (reads of the downsampled window).

    zstd and numpy's array loops release the GIL, so the parts of one answer decode side by side while the
    event loop goes on. A zstd context is not thread-safe: every thread builds its own codec. (Encoding at
    ingest runs in worker processes instead: telemetry/prepare.py.)
    """

    def __init__(self, make_codec: Callable[[], ChunkCodec], workers: int = 2) -> None:
        """Threads start on first use; they end when this object is closed or collected."""
        self._make_codec = make_codec
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="chunk-codec")
        self.workers = workers

    def _codec(self) -> ChunkCodec:
        codec: ChunkCodec | None = getattr(self._local, "codec", None)
        if codec is None:
            codec = self._local.codec = self._make_codec()
        return codec

    async def decode_columns(
        self,
        chunks: Sequence[tuple[bytes, Sequence[str]]],
        names: Sequence[str],
        out: FloatArray | None = None,
    ) -> FloatArray:
        """`ChunkCodec.decode_columns` on a worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, lambda: self._codec().decode_columns(chunks, names, out)
        )

    def close(self) -> None:
        """Stop the threads once queued work is done."""
        self._executor.shutdown(wait=False)
