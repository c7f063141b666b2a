"""Flow control (Ockam's ``FlowControls``): which workers a remote message may reach.

Messages that come out of a *producer* (a TCP connection's receiver) carry the producer's flow
control id. They are delivered only to *consumers* of that id, or of the id of the *spawner*
that created the producer (a TCP listener spawns one producer per accepted connection, so a
consumer of the listener's flow accepts messages from all its connections).

A local worker that sends to a producer's address (a connection's sender) becomes a consumer
of that producer's flow, so the replies reach it (as Ockam's ``send_and_receive`` does).

>>> from trust.routing import Address
>>> fc = FlowControls()
>>> listener = fc.new_id()
>>> conn = fc.new_id()
>>> fc.add_producer(Address.local("sender1"), conn, spawner=listener)
>>> fc.add_consumer(Address.local("echo"), listener)
>>> fc.is_consumer(Address.local("echo"), conn), fc.is_consumer(Address.local("secret"), conn)
(True, False)
"""

from __future__ import annotations

import os

from trust.routing import Address

__all__ = ["FLOW_CONTROL_LOCAL_INFO", "FlowControlId", "FlowControls"]

FlowControlId = str

FLOW_CONTROL_LOCAL_INFO = "flow_control_id"
"""Local-info type a producer attaches to its messages: the flow control id (UTF-8), so
relaying workers (``hop``) can keep the restriction when they pass a message on."""


class FlowControls:
    """Producers, consumers and spawners of flow control ids."""

    __slots__ = ("_consumers", "_flows_of_consumer", "_producer_flow", "_producers_of",
                 "_spawner")

    def __init__(self) -> None:
        self._consumers: dict[FlowControlId, set[Address]] = {}
        self._flows_of_consumer: dict[Address, set[FlowControlId]] = {}
        self._spawner: dict[FlowControlId, FlowControlId] = {}
        self._producer_flow: dict[Address, FlowControlId] = {}
        self._producers_of: dict[FlowControlId, set[Address]] = {}

    @property
    def consumer_sets(self) -> dict[FlowControlId, set[Address]]:
        """The consumers of each flow, live (the node's delivery path reads it for every
        message that came out of a producer). Read it; change it only through
        :meth:`add_consumer`, :meth:`remove_consumer` and :meth:`remove_flow`."""
        return self._consumers

    @staticmethod
    def new_id() -> FlowControlId:
        """A fresh random id (32 hex characters)."""
        return os.urandom(16).hex()

    # -- consumers -------------------------------------------------------------------------------
    def add_consumer(self, address: Address | str, flow_id: FlowControlId) -> None:
        """Let ``address`` receive messages of ``flow_id`` (and of producers it spawns)."""
        address = Address.parse(address)
        self._consumers.setdefault(flow_id, set()).add(address)
        self._flows_of_consumer.setdefault(address, set()).add(flow_id)

    def remove_consumer(self, address: Address | str,
                        flow_id: FlowControlId | None = None) -> None:
        """Stop ``address`` consuming ``flow_id`` (every flow when ``None``)."""
        address = Address.parse(address)
        flows = self._flows_of_consumer.get(address)
        if not flows:
            return
        for f in list(flows) if flow_id is None else [flow_id]:
            consumers = self._consumers.get(f)
            if consumers is not None:
                consumers.discard(address)
                if not consumers:
                    del self._consumers[f]
            flows.discard(f)
        if not flows:
            del self._flows_of_consumer[address]

    def consumers(self, flow_id: FlowControlId) -> frozenset[Address]:
        return frozenset(self._consumers.get(flow_id, ()))

    def is_consumer(self, address: Address, flow_id: FlowControlId) -> bool:
        """May a message of ``flow_id`` be delivered to ``address``?"""
        consumers = self._consumers.get(flow_id)
        if consumers is not None and address in consumers:
            return True
        spawner = self._spawner.get(flow_id)
        if spawner is not None:
            consumers = self._consumers.get(spawner)
            return consumers is not None and address in consumers
        return False

    # -- producers and spawners ------------------------------------------------------------------
    def add_producer(self, address: Address, flow_id: FlowControlId, *,
                     spawner: FlowControlId | None = None) -> None:
        """``address`` (e.g. a connection's sender) produces messages of ``flow_id``."""
        self._producer_flow[address] = flow_id
        self._producers_of.setdefault(flow_id, set()).add(address)
        if spawner is not None:
            self._spawner[flow_id] = spawner

    def may_relay(self, flow_id: FlowControlId | None, address: Address) -> bool:
        """May a message of ``flow_id`` (``None``: a local message) be passed on to ``address``?

        Yes for local messages, for other transports' addresses and other producers (another
        connection: forwarding between connections is what ``hop`` is for), and for local
        workers that consume the flow; no for any other local worker.
        """
        if flow_id is None or address[0] != 0 or address in self._producer_flow:
            return True
        return self.is_consumer(address, flow_id)

    def flow_of_producer(self, address: Address) -> FlowControlId | None:
        """The flow id of the producer at ``address``, if it is one."""
        return self._producer_flow.get(address)

    def spawner_of(self, flow_id: FlowControlId) -> FlowControlId | None:
        return self._spawner.get(flow_id)

    def remove_flow(self, flow_id: FlowControlId) -> None:
        """Forget a flow (its producers, spawner link and consumers), e.g. when a connection ends."""
        for address in self._producers_of.pop(flow_id, ()):
            if self._producer_flow.get(address) == flow_id:
                del self._producer_flow[address]
        self._spawner.pop(flow_id, None)
        for address in self._consumers.pop(flow_id, ()):
            flows = self._flows_of_consumer.get(address)
            if flows is not None:
                flows.discard(flow_id)
                if not flows:
                    del self._flows_of_consumer[address]

    def __len__(self) -> int:
        """Number of flows with consumers or producers (for leak checks)."""
        return len(set(self._consumers) | set(self._producers_of))
