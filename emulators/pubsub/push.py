"""The push dispatcher: POSTs due messages of push subscriptions to their endpoints.

One thread leases messages and hands each to a thread pool. Each subscription has a flow-control
window, like the real service's push back-off: it starts at `initial_window` requests in flight,
doubles on each success up to `max_window` and halves on each failure (down to 1).
Answers 102/200/201/202/204 ack; any other status, a connection error or a timeout (the
subscription's ack deadline) nack, which schedules the retry back-off or the dead-letter topic.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from google.pubsub_v1 import Subscription

from emulators.pubsub.backlog import Delivery, DeliveryPolicy
from emulators.pubsub.envelope import push_request
from emulators.pubsub.resources import ResourceError
from emulators.pubsub.store import Store

ACK_STATUSES = frozenset({102, 200, 201, 202, 204})
# A push lease outlives the HTTP timeout so it never expires while its request is still running;
# the dispatcher always acks or nacks it itself.
LEASE_GRACE_SECONDS = 5.0
IDLE_WAIT_SECONDS = 0.5

log = logging.getLogger(__name__)


@dataclass
class _Window:
    size: int
    in_flight: int = 0


class PushDispatcher:
    def __init__(self, store: Store, max_workers: int = 64, initial_window: int = 4, max_window: int = 64) -> None:
        self._store = store
        self._initial_window = initial_window
        self._max_window = max_window
        self._windows: dict[str, _Window] = {}
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pubsub-push")
        self._thread = threading.Thread(target=self._run, name="pubsub-push-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop dispatching; requests already sent finish in the background (up to their timeout)."""
        self._stopping.set()
        with self._store.changed:
            self._store.changed.notify_all()
        self._thread.join()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        store = self._store
        with store.changed:  # held except while waiting, so no wake-up is missed
            while not self._stopping.is_set() and not store.closed:
                store.changed.wait(self._dispatch_due())

    def _dispatch_due(self) -> float:
        """Start every due delivery the windows allow; return how long to sleep."""
        timeout = IDLE_WAIT_SECONDS
        subscriptions = self._store.push_subscriptions()
        for name in set(self._windows) - set(subscriptions):
            if self._windows[name].in_flight == 0:
                del self._windows[name]
        for name, config in subscriptions.items():
            window = self._windows.setdefault(name, _Window(self._initial_window))
            room = window.size - window.in_flight
            if room <= 0:
                continue  # a finishing request wakes the loop
            policy = DeliveryPolicy.of(config)
            deliveries = self._store.lease(name, room, policy.ack_deadline + LEASE_GRACE_SECONDS)
            for delivery in deliveries:
                window.in_flight += 1
                self._pool.submit(self._deliver, name, config, policy.ack_deadline, delivery)
            due = self._store.next_due(name) if len(deliveries) < room else None
            if due is not None:
                timeout = min(timeout, due)
        return timeout

    def _deliver(self, name: str, config: Subscription, timeout: float, delivery: Delivery) -> None:
        acked = False
        try:
            body, headers = push_request(delivery, name, config.push_config)
            response = requests.post(config.push_config.push_endpoint, data=body, headers=headers, timeout=timeout)
            acked = response.status_code in ACK_STATUSES
            if not acked:
                log.info("push to %s answered %s: nack", config.push_config.push_endpoint, response.status_code)
        except requests.RequestException as error:
            log.info("push to %s failed: %r: nack", config.push_config.push_endpoint, error)
        finally:
            self._settle(name, delivery, acked)

    def _settle(self, name: str, delivery: Delivery, acked: bool) -> None:
        with self._store.changed:
            window = self._windows.get(name)
            if window is not None:
                window.in_flight -= 1
                window.size = min(window.size * 2, self._max_window) if acked else max(window.size // 2, 1)
            try:
                if acked:
                    self._store.acknowledge(name, [delivery.ack_id])
                else:
                    self._store.modify_ack_deadline(name, [delivery.ack_id], 0)
            except ResourceError:
                pass  # the subscription was deleted meanwhile
