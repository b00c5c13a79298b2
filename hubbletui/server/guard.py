"""What any client may send the server, answered in plain words: a request that is not the message it should
be is INVALID_ARGUMENT, and a failure inside a handler is INTERNAL with a line in the server's log.

Left to grpcio, both come back as UNKNOWN with Python's exception class in the details ("Unexpected <class
'google.protobuf.message.DecodeError'>"), which tells a client about our internals and nothing about its
request. The guard wraps a generic handler's unary methods without the handlers knowing.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from grpc.aio import AbortError


class _Malformed:
    """Stands for a request that did not parse, so that the handler wrapper can refuse it."""

    __slots__ = ("why",)

    def __init__(self, why: str):
        self.why = why


def _lenient(parse, method: str):
    def deserialize(data: bytes):
        try:
            return parse(data)
        except Exception:  # protobuf's DecodeError, or anything a parser raises on bytes from outside
            return _Malformed(f"{method}: the request is not a well-formed protobuf message")
    return deserialize


class Guarded(grpc.GenericRpcHandler):
    """``inner``'s methods behind the guard; ``report`` gets one line per handler failure."""

    def __init__(self, inner: grpc.GenericRpcHandler, report: Callable[[str], None] | None = None):
        self._inner = inner
        self._report = report

    def service(self, handler_call_details):
        handler = self._inner.service(handler_call_details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        parse = _lenient(handler.request_deserializer, method)
        if handler.response_streaming:
            return handler._replace(request_deserializer=parse, unary_stream=self._stream(handler.unary_stream, method))
        return handler._replace(request_deserializer=parse, unary_unary=self._unary(handler.unary_unary, method))

    def _failed(self, method: str, context, exc: Exception) -> str:
        if self._report is not None:
            self._report(f"{method} from {context.peer()} failed: {type(exc).__name__}: {exc}")
        return f"{method}: the server failed on this request (its log says why)"

    def _stream(self, behaviour, method: str):
        async def stream(request, context):
            if type(request) is _Malformed:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.why)
            try:
                async for response in behaviour(request, context):
                    yield response
            except AbortError:
                raise
            except Exception as exc:
                await context.abort(grpc.StatusCode.INTERNAL, self._failed(method, context, exc))
        return stream

    def _unary(self, behaviour, method: str):
        async def unary(request, context):
            if type(request) is _Malformed:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.why)
            try:
                return await behaviour(request, context)
            except AbortError:
                raise
            except Exception as exc:
                await context.abort(grpc.StatusCode.INTERNAL, self._failed(method, context, exc))
        return unary
