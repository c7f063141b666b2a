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

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from trust.lazy_exports import lazy_getattr

if TYPE_CHECKING:
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

_EXPORTS = {
    **dict.fromkeys(("AccessControl", "AllowAll", "AllowLocalInfo", "AllowOnwardAddress",
                     "AllowSourceAddress", "DenyAll", "RelayMessage"),
                    "trust.node.access_control"),
    **dict.fromkeys(("DEFAULT_TIMEOUT", "Context"), "trust.node.context"),
    **dict.fromkeys(("NodeStoppedError", "ReceiveTimeoutError", "UnknownAddressError"),
                    "trust.node.errors"),
    **dict.fromkeys(("FlowControlId", "FlowControls"), "trust.node.flow_control"),
    **dict.fromkeys(("DEFAULT_MAILBOX_SIZE", "Mailbox"), "trust.node.mailbox"),
    **dict.fromkeys(("Node", "NodeStats", "Producer"), "trust.node.node"),
    **dict.fromkeys(("Echo", "Hop"), "trust.node.services"),
    **dict.fromkeys(("InlineWorker", "Processor", "Worker"), "trust.node.worker"),
}
"""Where each public name lives: loaded on first use (``from trust.node import Node`` works
as before), so a CLI command that only reads a node's files does not import the runtime
(asyncio and the rest: ~70 ms of its start)."""


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())

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
