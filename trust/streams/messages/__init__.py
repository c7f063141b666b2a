"""The stream service's wire messages (CBOR), one module per type; ``docs/streams.md`` shows
them byte by byte."""

from trust.streams.messages.create_stream import CreateStream
from trust.streams.messages.delete_stream import DeleteStream
from trust.streams.messages.envelope import (
    Operation,
    Request,
    Response,
    decode_request,
    decode_response_head,
    encode_request,
    encode_response,
)
from trust.streams.messages.error_reply import ErrorReply
from trust.streams.messages.index_get import IndexGet
from trust.streams.messages.index_save import IndexSave
from trust.streams.messages.list_streams import ListStreams
from trust.streams.messages.pull import Pull
from trust.streams.messages.pulled import Pulled
from trust.streams.messages.push import Push
from trust.streams.messages.pushed import Pushed
from trust.streams.messages.stream_info import StreamInfo

__all__ = [
    "CreateStream", "DeleteStream", "ErrorReply", "IndexGet", "IndexSave", "ListStreams",
    "Operation", "Pull", "Pulled", "Push", "Pushed", "Request", "Response", "StreamInfo",
    "decode_request", "decode_response_head", "encode_request", "encode_response",
]
