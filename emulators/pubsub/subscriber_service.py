"""The google.pubsub.v1.Subscriber gRPC service over the store, StreamingPull included."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

import grpc
from google.pubsub_v1 import (
    AcknowledgeRequest,
    DeleteSubscriptionRequest,
    GetSubscriptionRequest,
    ListSubscriptionsRequest,
    ListSubscriptionsResponse,
    ModifyAckDeadlineRequest,
    ModifyPushConfigRequest,
    PullRequest,
    PullResponse,
    ReceivedMessage,
    StreamingPullRequest,
    StreamingPullResponse,
    Subscription,
    UpdateSubscriptionRequest,
)

from emulators.pubsub.backlog import Delivery
from emulators.pubsub.resources import ResourceError
from emulators.pubsub.rpc import page, unary
from emulators.pubsub.store import Store

SERVICE = "google.pubsub.v1.Subscriber"
# The real service holds a Pull open for a while when nothing is due; short here so polling is quick.
PULL_WAIT_SECONDS = 0.5
# How often a StreamingPull response loop wakes to notice a closed stream.
STREAM_POLL_SECONDS = 0.25
STREAM_BATCH = 100

log = logging.getLogger(__name__)


def received(deliveries: Iterable[Delivery]) -> list[ReceivedMessage]:
    return [
        ReceivedMessage(ack_id=d.ack_id, message=d.message, delivery_attempt=d.delivery_attempt) for d in deliveries
    ]


class SubscriberService:
    def __init__(self, store: Store) -> None:
        self._store = store

    def handler(self) -> grpc.GenericRpcHandler:
        store = self._store
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "CreateSubscription": unary(store.create_subscription, Subscription, Subscription),
                "GetSubscription": unary(
                    lambda r: store.get_subscription(r.subscription), GetSubscriptionRequest, Subscription
                ),
                "UpdateSubscription": unary(self.update_subscription, UpdateSubscriptionRequest, Subscription),
                "ListSubscriptions": unary(
                    self.list_subscriptions, ListSubscriptionsRequest, ListSubscriptionsResponse
                ),
                "DeleteSubscription": unary(
                    lambda r: store.delete_subscription(r.subscription), DeleteSubscriptionRequest
                ),
                "ModifyPushConfig": unary(
                    lambda r: store.modify_push_config(r.subscription, r.push_config), ModifyPushConfigRequest
                ),
                "Acknowledge": unary(lambda r: store.acknowledge(r.subscription, r.ack_ids), AcknowledgeRequest),
                "ModifyAckDeadline": unary(
                    lambda r: store.modify_ack_deadline(r.subscription, r.ack_ids, r.ack_deadline_seconds),
                    ModifyAckDeadlineRequest,
                ),
                "Pull": grpc.unary_unary_rpc_method_handler(
                    self.pull,
                    request_deserializer=PullRequest.deserialize,
                    response_serializer=PullResponse.serialize,
                ),
                "StreamingPull": grpc.stream_stream_rpc_method_handler(
                    self.streaming_pull,
                    request_deserializer=StreamingPullRequest.deserialize,
                    response_serializer=StreamingPullResponse.serialize,
                ),
            },
        )

    def update_subscription(self, request: UpdateSubscriptionRequest) -> Subscription:
        if not request.update_mask.paths:
            raise ResourceError(grpc.StatusCode.INVALID_ARGUMENT, "update_mask must name a field")
        return self._store.update_subscription(request.subscription, request.update_mask.paths)

    def list_subscriptions(self, request: ListSubscriptionsRequest) -> ListSubscriptionsResponse:
        subs = self._store.list_subscriptions(request.project)
        subs_page, token = page(subs, request.page_size, request.page_token)
        return ListSubscriptionsResponse(subscriptions=subs_page, next_page_token=token)

    def pull(self, request: PullRequest, context: grpc.ServicerContext) -> PullResponse:
        if request.max_messages <= 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "max_messages must be positive")
        remaining = context.time_remaining()
        wait = 0.0 if request.return_immediately else min(PULL_WAIT_SECONDS, remaining or PULL_WAIT_SECONDS)
        try:
            leased = self._store.lease(request.subscription, request.max_messages, wait=wait)
        except ResourceError as error:
            context.abort(error.code, str(error))
        return PullResponse(received_messages=received(leased))

    def streaming_pull(
        self, requests: Iterator[StreamingPullRequest], context: grpc.ServicerContext
    ) -> Iterator[StreamingPullResponse]:
        first = next(requests, None)
        if first is None:
            return
        name = first.subscription
        deadline = float(first.stream_ack_deadline_seconds) or None
        closed = threading.Event()
        context.add_callback(closed.set)
        try:
            self._apply(name, first)
        except ResourceError as error:
            context.abort(error.code, str(error))
        # The request side (acks, modacks, heartbeats) is read on its own thread while this one
        # streams messages out.
        threading.Thread(
            target=self._read, args=(requests, name, closed), name="pubsub-stream-reader", daemon=True
        ).start()
        while not closed.is_set() and not self._store.closed:
            try:
                leased = self._store.lease(name, STREAM_BATCH, deadline, wait=STREAM_POLL_SECONDS)
            except ResourceError as error:
                context.abort(error.code, str(error))
            if leased:
                yield StreamingPullResponse(received_messages=received(leased))

    def _read(self, requests: Iterator[StreamingPullRequest], name: str, closed: threading.Event) -> None:
        try:
            for request in requests:
                self._apply(name, request)
        except (grpc.RpcError, ResourceError) as error:  # stream cancelled or subscription deleted
            log.debug("streaming pull on %s ended: %r", name, error)
        finally:
            closed.set()

    def _apply(self, name: str, request: StreamingPullRequest) -> None:
        if request.ack_ids:
            self._store.acknowledge(name, request.ack_ids)
        by_seconds: dict[int, list[str]] = defaultdict(list)
        pairs: Sequence[tuple[int, str]] = list(
            zip(request.modify_deadline_seconds, request.modify_deadline_ack_ids, strict=False)
        )
        for seconds, ack_id in pairs:
            by_seconds[seconds].append(ack_id)
        for seconds, ack_ids in by_seconds.items():
            self._store.modify_ack_deadline(name, ack_ids, seconds)
        if not request.ack_ids and not pairs:
            self._store.get_subscription(name)  # heartbeat or first request: the subscription must exist
