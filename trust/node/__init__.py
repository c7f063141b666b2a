"""The asyncio node runtime: workers, processors, contexts, mailboxes, access control, flow control.

>>> import asyncio
>>> from trust.node import Node, Echo
>>> async def main() -> bytes:
...     async with Node("n") as node:
...         await node.start_worker("echo", Echo())
...         return await node.send_and_receive("echo", b"ping")
>>> asyncio.run(main())
b'ping'
"""

import logging

from trust.node.access_control import (
    AccessControl,
    AllowAll,
    AllowLocalInfo,
    AllowOnwardAddress,
    AllowSourceAddress,
    DenyAll,
    RelayMessage,
)
from trust.node.context import DEFAULT_TIMEOUT, Context
from trust.node.errors import NodeStoppedError, ReceiveTimeoutError, UnknownAddressError
from trust.node.flow_control import FlowControlId, FlowControls
from trust.node.mailbox import DEFAULT_MAILBOX_SIZE, Mailbox
from trust.node.node import Node, NodeStats, Producer
from trust.node.services import Echo, Hop
from trust.node.worker import InlineWorker, Processor, Worker

# A library logs, the application decides where logs go (a background node logs to its file).
logging.getLogger("trust.node").addHandler(logging.NullHandler())
logging.getLogger("trust.transports").addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_MAILBOX_SIZE",
    "DEFAULT_TIMEOUT",
    "AccessControl",
    "AllowAll",
    "AllowLocalInfo",
    "AllowOnwardAddress",
    "AllowSourceAddress",
    "Context",
    "DenyAll",
    "Echo",
    "FlowControlId",
    "FlowControls",
    "Hop",
    "InlineWorker",
    "Mailbox",
    "Node",
    "NodeStats",
    "NodeStoppedError",
    "Processor",
    "Producer",
    "ReceiveTimeoutError",
    "RelayMessage",
    "UnknownAddressError",
    "Worker",
]
