"""Compose the emulator: store, gRPC services and push dispatcher; start it in-process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType

import grpc

from emulators.pubsub.publisher_service import PublisherService
from emulators.pubsub.push import PushDispatcher
from emulators.pubsub.store import Store
from emulators.pubsub.subscriber_service import SubscriberService

# Each StreamingPull holds a server thread for its whole life, so the pool must be generous.
DEFAULT_MAX_WORKERS = 64
STOP_GRACE_SECONDS = 1.0


@dataclass
class RunningEmulator:
    """A started emulator. Point clients at it with `PUBSUB_EMULATOR_HOST=<host_port>`."""

    host: str
    port: int
    store: Store
    _server: grpc.Server = field(repr=False)
    _dispatcher: PushDispatcher = field(repr=False)
    _executor: ThreadPoolExecutor = field(repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop pushing, end open streams and shut the gRPC server down. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._dispatcher.stop()
        self.store.close()
        self._server.stop(grace).wait()
        self._executor.shutdown(wait=False)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_emulator(
    host: str = "127.0.0.1", port: int = 0, *, max_workers: int = DEFAULT_MAX_WORKERS, push_workers: int = 64
) -> RunningEmulator:
    """Serve the Pub/Sub API on `host:port` (port 0: a free one) and start push delivery."""
    store = Store()
    executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pubsub-grpc")
    # grpc enables SO_REUSEPORT by default, which lets a second emulator "bind" a port in use.
    server = grpc.server(executor, options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((PublisherService(store).handler(), SubscriberService(store).handler()))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as error:  # grpc's "Failed to bind"
        executor.shutdown(wait=False)
        raise OSError(f"cannot bind the Pub/Sub emulator to {host}:{port}") from error
    server.start()
    dispatcher = PushDispatcher(store, max_workers=push_workers)
    dispatcher.start()
    return RunningEmulator(host, bound, store, server, dispatcher, executor)
