"""The google.pubsub.v1.Publisher gRPC service over the store."""

from __future__ import annotations

import grpc
from google.pubsub_v1 import (
    DeleteTopicRequest,
    GetTopicRequest,
    ListTopicsRequest,
    ListTopicsResponse,
    ListTopicSubscriptionsRequest,
    ListTopicSubscriptionsResponse,
    PublishRequest,
    PublishResponse,
    Topic,
    UpdateTopicRequest,
)

from emulators.pubsub.resources import ResourceError
from emulators.pubsub.rpc import page, unary
from emulators.pubsub.store import Store

SERVICE = "google.pubsub.v1.Publisher"


class PublisherService:
    def __init__(self, store: Store) -> None:
        self._store = store

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "CreateTopic": unary(self._store.create_topic, Topic, Topic),
                "GetTopic": unary(lambda r: self._store.get_topic(r.topic), GetTopicRequest, Topic),
                "UpdateTopic": unary(self.update_topic, UpdateTopicRequest, Topic),
                "ListTopics": unary(self.list_topics, ListTopicsRequest, ListTopicsResponse),
                "ListTopicSubscriptions": unary(
                    self.list_topic_subscriptions,
                    ListTopicSubscriptionsRequest,
                    ListTopicSubscriptionsResponse,
                ),
                "DeleteTopic": unary(lambda r: self._store.delete_topic(r.topic), DeleteTopicRequest),
                "Publish": unary(self.publish, PublishRequest, PublishResponse),
            },
        )

    def update_topic(self, request: UpdateTopicRequest) -> Topic:
        if not request.update_mask.paths:
            raise ResourceError(grpc.StatusCode.INVALID_ARGUMENT, "update_mask must name a field")
        return self._store.update_topic(request.topic, request.update_mask.paths)

    def list_topics(self, request: ListTopicsRequest) -> ListTopicsResponse:
        topics, token = page(self._store.list_topics(request.project), request.page_size, request.page_token)
        return ListTopicsResponse(topics=topics, next_page_token=token)

    def list_topic_subscriptions(self, request: ListTopicSubscriptionsRequest) -> ListTopicSubscriptionsResponse:
        names, token = page(self._store.topic_subscriptions(request.topic), request.page_size, request.page_token)
        return ListTopicSubscriptionsResponse(subscriptions=names, next_page_token=token)

    def publish(self, request: PublishRequest) -> PublishResponse:
        if not request.messages:
            raise ResourceError(grpc.StatusCode.INVALID_ARGUMENT, "at least one message is required")
        if any(not m.data and not m.attributes for m in request.messages):
            raise ResourceError(grpc.StatusCode.INVALID_ARGUMENT, "a message needs data or attributes")
        # Exactly one id per message, in order: the client library raises otherwise.
        return PublishResponse(message_ids=self._store.publish(request.topic, request.messages))
