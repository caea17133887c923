"""Glue between store calls and grpc method handlers: (de)serialisation, error mapping, paging."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2

from emulators.pubsub.resources import ResourceError

_T = TypeVar("_T")


def unary(fn: Callable[[Any], Any], request_type: Any, response_type: Any = None) -> grpc.RpcMethodHandler:
    """A unary handler calling `fn(request)`; `response_type=None` answers google.protobuf.Empty."""

    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            response = fn(request)
        except ResourceError as error:
            context.abort(error.code, str(error))
        return empty_pb2.Empty() if response_type is None else response

    return grpc.unary_unary_rpc_method_handler(
        handle,
        request_deserializer=request_type.deserialize,
        response_serializer=(empty_pb2.Empty.SerializeToString if response_type is None else response_type.serialize),
    )


def page(items: Sequence[_T], page_size: int, page_token: str) -> tuple[Sequence[_T], str]:
    """One page of `items` and the token of the next ("" on the last page)."""
    try:
        start = int(page_token or 0)
    except ValueError:
        raise ResourceError(grpc.StatusCode.INVALID_ARGUMENT, "invalid page_token") from None
    end = start + page_size if page_size > 0 else len(items)
    return items[start:end], (str(end) if end < len(items) else "")
