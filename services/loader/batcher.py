"""Coalesce FileReady events from concurrent push requests into batches, one batch at a time.

Each request waits for the batch that holds its file: 204 once that batch committed, an error if it
failed. A batch flushes at `max_files` or `max_wait` seconds after its first file, whichever is first.
Only this loop calls the warehouse, so MERGEs into a table never overlap (design rule 9).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from shared.core.messages import FileReady, LookupReady
from shared.handlers.load import LoadResult


class Batcher:
    def __init__(
        self, run_batch: Callable[[list[FileReady | LookupReady]], LoadResult], max_files: int, max_wait: float
    ) -> None:
        self.run_batch = run_batch
        self.max_files = max_files
        self.max_wait = max_wait
        self._queue: asyncio.Queue[tuple[FileReady | LookupReady, asyncio.Future[LoadResult]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches: list[int] = []  # sizes of the batches run so far (for /status and tests)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, ready: FileReady | LookupReady) -> LoadResult:
        future: asyncio.Future[LoadResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((ready, future))
        return await future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_files:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            self.batches.append(len(batch))
            try:
                result = await asyncio.to_thread(self.run_batch, [ready for ready, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(result)
