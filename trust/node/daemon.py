"""A node as a process: what ``truststack node create`` runs in the background.

:class:`NodeRuntime` starts a :class:`~trust.node.Node` with the ``echo`` and ``hop`` services
(each guarded by the node's policies: :mod:`trust.channels.access`), its TCP listener, identity
and secure-channel listener at ``api``, serves the control protocol (``docs/node.md``) on the node's
control endpoint, and writes ``state.json`` when ready. It stops on ``node.stop``, SIGTERM or
SIGINT, closing every socket and removing its runtime files.

Later features plug in without touching this file's logic: list a module in
:data:`NODE_FEATURES`. At start-up, after the node's identity, services and ``api`` listener
exist, each feature's ``async start(runtime)`` runs (in list order) and then its
``register(server, runtime)`` adds control methods; at shutdown each feature's optional
``async stop(runtime)`` runs (reverse order) before the node stops. A feature keeps its own
state in ``runtime.features[<module name>]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import logging.handlers
import os
import re
import resource
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trust.errors import (
    ConflictError,
    StorageError,
    TrustError,
    UntrustedError,
    UsageError,
    VerificationError,
)
from trust.node.control import encode_error
from trust.node.control_server import ControlServer
from trust.node.errors import ReceiveTimeoutError
from trust.node.files import NodePaths, open_append, write_json
from trust.node.node import Node
from trust.node.resolve import (
    close_channels,
    open_secure_route,
    route_from_text,
    secure_route_from_text,
)
from trust.node.saved_resources import SavedResources

__all__ = ["NODE_FEATURES", "NodeRuntime", "node_authorities", "run_node"]

log = logging.getLogger("trust.node.daemon")

NODE_FEATURES: list[str] = [
    "trust.node.stream_feature",
    "trust.node.relay_feature",
    "trust.node.authority_feature",
    "trust.node.enrollment_feature",
    "trust.node.portal_feature",
]
"""Feature modules of a node process, each with ``register(server: ControlServer, runtime:
NodeRuntime)`` and optionally ``async start(runtime)`` / ``async stop(runtime)``."""

DEFAULT_MESSAGE_TIMEOUT = 10.0
MAX_ROUTE_TEXT = 4096
"""Route text a control request may carry at most."""
MAX_AUTHORIZED = 64
"""Identifiers a channel or listener may be limited to at most."""
DEFAULT_CHANNEL_TIMEOUT = 30.0
_LOCAL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")

LOG_MAX_BYTES = 10 * 1024 * 1024
"""The node log rotates at this size (``node.log`` → ``node.log.1`` …)."""
LOG_BACKUPS = 3
"""Rotated logs kept: the log takes at most ``LOG_MAX_BYTES * (LOG_BACKUPS + 1)`` bytes."""


def node_options(config: dict[str, Any]) -> dict[str, Any]:
    """The ``Node(...)`` options recorded in a node's configuration (``node create`` flags)."""
    options: dict[str, Any] = {}
    for key in ("max_connections", "idle_timeout", "stall_timeout"):
        if config.get(key) is not None:
            options[key] = config[key]
    hop_allow = config.get("hop_allow")
    if hop_allow is not None:
        if not isinstance(hop_allow, list):
            raise UsageError("the node's hop_allow setting must be a list of HOST:PORT")
        options["hop_allow"] = hop_allow
    return options


def node_authorities(config: dict[str, Any]) -> list[Any]:
    """The authorities a node trusts (``node create --authority``): their change histories in
    the configuration, verified (a history that does not verify is a :class:`StorageError`)."""
    from trust.errors import DecodeError
    from trust.identities.identity import verify_change_history

    out = []
    for history in config.get("authorities") or []:
        try:
            out.append(verify_change_history(bytes.fromhex(history), cache=True))
        except (ValueError, DecodeError, VerificationError) as e:
            raise StorageError(f"node {config.get('name')}: a recorded authority does not verify "
                               f"({e}); create the node again") from None
    return out


def raise_open_files_limit() -> int:
    """Raise this process's open-files soft limit to its hard limit; return the new limit."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 20
        if soft == resource.RLIM_INFINITY or soft >= hard:
            return soft if soft != resource.RLIM_INFINITY else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    except (OSError, ValueError):
        return -1


class NodeRuntime:
    """One running node process: the node, its files and its control server."""

    def __init__(self, paths: NodePaths, config: dict[str, Any]) -> None:
        self.paths = paths
        self.config = config
        self.name = paths.name
        self.node = Node(paths.name, **node_options(config))
        self.control = ControlServer()
        self.identity: Any = None
        self.authorities: list[Any] = []
        self.access: Any = None
        """The node's enforcement point (:class:`trust.channels.access.NodeAccess`)."""
        self.policies: Any = None
        self.storage: Any = None
        self.history_store: Any = None
        self.credential: Any = None
        """The credential the node presents (``node create --credential``), when it verifies."""
        self.started_at = 0
        self.features: dict[str, Any] = {}
        """Per-feature state, keyed by the feature module's name (see :data:`NODE_FEATURES`)."""
        self.saved_resources = SavedResources(paths.dir)
        """The outlets, inlets and relays the features make again at start."""
        self._started_features: list[Any] = []
        self._stop = asyncio.Event()
        self._lock_fd: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, *, now: Callable[[], float] = time.time) -> dict[str, Any]:
        """Start everything; return the state written to ``state.json``."""
        paths = self.paths
        self._lock_fd = paths.acquire_lock()
        if self._lock_fd is None:
            raise ConflictError(f"node {self.name} is already running")
        paths.write_pid(os.getpid())
        self.started_at = int(now())
        limit = raise_open_files_limit()
        max_connections = self.node.tcp_options["max_connections"]
        if 0 <= limit < max_connections + 64:
            log.warning("the open-files limit (%d) is below max_connections (%d)", limit,
                        max_connections)
        self.authorities = node_authorities(self.config)
        own_authority = await self._own_authority()
        await self._start_services()
        # the listener first: a taken port fails before the identity is created
        listener = await self.node.create_tcp_listener(self.config.get("tcp_listener_address")
                                                       or "127.0.0.1:0")
        if not self.config.get("tcp_listener_address"):
            # a free port was asked for: keep the one chosen, so `node start` listens there again
            self.config["tcp_listener_address"] = listener.address
            write_json(paths.config, self.config)
        self.identity = own_authority or await self._load_identity()
        self.node.identity = self.identity
        self.credential = self._load_credential()
        await self._open_known_histories()
        await self._start_channel_listener()
        for module in NODE_FEATURES:
            feature = importlib.import_module(module)
            start_feature = getattr(feature, "start", None)
            if start_feature is not None:
                await start_feature(self)
            self._started_features.append(feature)
        self._register_methods()
        if paths.unix_socket_fits:
            await self.control.start_unix(paths.socket)
        else:
            endpoint = await self.control.start_tcp()
            write_json(paths.control_tcp, {**endpoint, "token": self.control.token})
        state = self.state()
        write_json(paths.state, state)
        if self.config.get("identifier") != state["identifier"]:
            self.config["identifier"] = state["identifier"]
            write_json(paths.config, self.config)
        log.info("node %s is running (pid %d), listening on %s", self.name, os.getpid(),
                 ", ".join(state["listeners"]))
        return state

    async def _start_services(self) -> None:
        """``echo`` and ``hop``, each with the incoming access control of its resource; the
        node's policies are read into memory first (and again on ``policy.reload``)."""
        # the node process is a composition root: it wires the channel layer's enforcement in
        from trust.channels.access import NodeAccess
        from trust.node.services import Echo, Hop
        from trust.storage import open_storage

        self.storage = open_storage(home=self.paths.home)
        self.policies = self.storage.policies
        self.access = NodeAccess(self.name, authorities=[a.identifier for a in self.authorities])
        count = await self.access.reload(self.policies)
        log.info("node %s: %d policies loaded%s", self.name, count,
                 "; authorities " + ", ".join(sorted(self.access.authorities))
                 if self.access.authorities else "")
        await self.node.start_worker("echo", Echo(), incoming=self.access.access_control("echo"))
        await self.node.start_worker("hop", Hop(), incoming=self.access.access_control("hop"))

    async def _open_known_histories(self) -> None:
        """The peers' newest change histories its channels saw before (in the home's database),
        before any channel accepts a peer: a restart does not let a peer go back to a key it
        rotated away from."""
        from trust.channels.workers import known_histories
        from trust.node.known_histories_store import HistoryStore

        self.history_store = await HistoryStore.open(known_histories(self.node), self.storage)

    async def _start_channel_listener(self) -> None:
        """The secure-channel listener at ``api``, as the node's identity, presenting its
        credential; peers are verified against its authorities but need no credential (the
        resources decide, from their policies)."""
        from trust.services import open_identities

        manager = open_identities(self.paths.home)
        try:
            await self.node.create_secure_channel_listener(
                self.identity, "api", authorities=self.authorities,
                credentials=() if self.credential is None else (self.credential,),
                identities=manager)
        finally:
            await manager.close()

    def _load_credential(self) -> Any:
        """The recorded credential, verified against the node's authorities: one issued to
        another identity is an error (the node does not start); one that no longer verifies
        (e.g. expired) is logged and not presented."""
        text = self.config.get("credential")
        if not text:
            return None
        from trust.credentials.verification import verify_credential
        from trust.errors import DecodeError, VerificationError
        from trust.models.credential import CredentialAndPurposeKey

        try:
            cpk = CredentialAndPurposeKey.decode(bytes.fromhex(text))
        except (ValueError, DecodeError) as e:
            raise StorageError(f"node {self.name}: the recorded credential does not decode "
                               f"({e})") from None
        try:
            verified = verify_credential(cpk, self.authorities)
        except (VerificationError, UntrustedError) as e:
            log.warning("node %s: its credential is not presented: %s", self.name, e)
            return None
        if verified.subject != self.identity.identifier:
            raise VerificationError(f"the node's credential was issued to {verified.subject}, "
                                    f"not to the node's identity {self.identity.identifier}")
        return cpk

    async def _own_authority(self) -> Any:
        """An authority node's identity, added to its authorities (``None`` for other nodes):
        it trusts the credentials it issues, so its resources (the relay service above all:
        ``ockam-relay``) decide from them. Without it, an authority node acted as a node without
        an authority, and anyone could register any relay name there."""
        from trust.node.authority_feature import authority_options

        if authority_options(self.config) is None:
            return None
        identity = await self._load_identity()
        if all(a.identifier != identity.identifier for a in self.authorities):
            self.authorities.append(identity)
        return identity

    async def _load_identity(self) -> Any:
        from trust.services import open_identities

        manager = open_identities(self.paths.home)
        try:
            explicit = self.config.get("identity")
            if explicit:
                return await manager.get(explicit)
            return await manager.get_or_create(self.name)
        finally:
            await manager.close()

    def request_stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def shutdown(self) -> None:
        """Close the control endpoint, stop the node, remove runtime files, release the lock."""
        try:
            await self.control.close()
            for feature in reversed(self._started_features):
                stop_feature = getattr(feature, "stop", None)
                if stop_feature is not None:
                    try:
                        await stop_feature(self)
                    except Exception:
                        log.exception("feature %s did not stop cleanly", feature.__name__)
            self._started_features.clear()
        finally:
            await self.node.stop()
            if self.history_store is not None:
                try:
                    await self.history_store.close()
                except Exception:
                    log.exception("the peers' change histories were not saved")
            for p in (self.paths.state, self.paths.pid, self.paths.control_tcp):
                with contextlib.suppress(OSError):
                    p.unlink()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            log.info("node %s stopped", self.name)

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        ident = self.identity
        tcp = self.node.tcp
        return {
            "name": self.name,
            "pid": os.getpid(),
            "status": "running",
            "listeners": [lst.address for lst in tcp.listeners],
            "identity": getattr(ident, "name", None),
            "identifier": getattr(ident, "identifier", None),
            "authorities": [a.identifier for a in self.authorities],
            "control": dict(self.control.endpoint),
            "started_at": self.started_at,
        }

    # -- control methods -------------------------------------------------------------------------
    def _register_methods(self) -> None:
        s = self.control
        s.register("node.ping", self._ping)
        s.register("node.show", self._show)
        s.register("node.stop", self._stop_method)
        s.register("message.send", self._message_send)
        s.register("worker.list", self._workers)
        s.register("tcp_listener.list", self._listeners)
        s.register("tcp_listener.create", self._listener_create)
        s.register("tcp_connection.list", self._connections)
        s.register("flow_control.add_consumer", self._add_consumer)
        s.register("policy.reload", self._policy_reload)
        s.register("policy.decide", self._policy_decide)
        s.register("secure_channel.create", self._channel_create)
        s.register("secure_channel.list", self._channel_list)
        s.register("secure_channel.show", self._channel_show)
        s.register("secure_channel.delete", self._channel_delete)
        s.register("secure_channel_listener.create", self._channel_listener_create)
        s.register("secure_channel_listener.list", self._channel_listener_list)
        s.register("secure_channel_listener.delete", self._channel_listener_delete)
        for feature in self._started_features:
            feature.register(s, self)

    async def _ping(self, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def _show(self, params: dict[str, Any]) -> dict[str, Any]:
        """The node's state, workers, counters, its secure channels (with the records each
        carried), the relays it created and hosts (``relays``, ``hosted_relays``: the relay
        feature's ``summary``); the portal feature adds ``inlets`` and ``outlets``. Saved
        relays and portals that could not be made again at start are in ``not_restored``
        (:mod:`trust.node.saved_resources`)."""
        state = self.state()
        state["workers"] = sorted(str(a) for a in self.node.workers())
        state["stats"] = self.node.stats.as_dict()
        if self.access is not None:
            state["policy_checks"] = {"allowed": self.access.allowed,
                                      "denied": self.access.denied,
                                      "policies": len(self.access.snapshot)}
        state["channels"] = [{**channel_info(c), **channel_counts(c)}
                             for c in self.node.secure_channels()]
        for feature in self._started_features:
            if feature.__name__ == "trust.node.relay_feature":
                relays = feature.summary(self)
                state["relays"], state["hosted_relays"] = relays["relays"], relays["hosted"]
                state.setdefault("not_restored", []).extend(feature.not_restored(self))
        return state

    async def _stop_method(self, params: dict[str, Any]) -> dict[str, Any]:
        asyncio.get_running_loop().call_later(0.01, self._stop.set)
        return {"name": self.name, "status": "stopping"}

    async def _message_send(self, params: dict[str, Any]) -> dict[str, Any]:
        to = params.get("to")
        payload_hex = params.get("payload", "")
        timeout = params.get("timeout", DEFAULT_MESSAGE_TIMEOUT)
        if not isinstance(to, str):
            raise UsageError("message.send needs 'to' (route text)")
        if not isinstance(payload_hex, str):
            raise UsageError("message.send 'payload' must be hex text")
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise UsageError("message.send 'timeout' must be a positive number of seconds")
        try:
            payload = bytes.fromhex(payload_hex)
        except ValueError:
            raise UsageError("message.send 'payload' is not valid hex") from None
        secure = secure_route_from_text(to, self.paths.home)
        if secure.is_secure and not secure.rest:
            raise UsageError("a route cannot end with /secure/NAME: add where to go inside the "
                             "channel (e.g. /service/echo)")
        # /secure/NAME: a channel as the node's identity, closed once the reply is in
        route, channels = await open_secure_route(
            secure, lambda leg: self.open_channel(leg, timeout=float(timeout)))
        try:
            reply = await self.node.send_and_receive(route, payload, timeout=float(timeout))
        except ReceiveTimeoutError:
            raise ReceiveTimeoutError(f"no reply from {to} within {timeout:g}s") from None
        finally:
            await close_channels(channels)
        return {"payload": reply.hex()}

    async def _workers(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"workers": sorted(str(a) for a in self.node.workers())}

    async def _listeners(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"listeners": [{"address": lst.address, "flow_control_id": lst.flow_control_id}
                              for lst in self.node.tcp.listeners]}

    async def _listener_create(self, params: dict[str, Any]) -> dict[str, Any]:
        address = params.get("address", "127.0.0.1:0")
        if not isinstance(address, str):
            raise UsageError("tcp_listener.create 'address' must be HOST:PORT")
        lst = await self.node.create_tcp_listener(address)
        return {"address": lst.address, "flow_control_id": lst.flow_control_id}

    async def _connections(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"connections": [
            {"peer": c.peer, "outgoing": c.outgoing, "sender_address": str(c.sender_address),
             "flow_control_id": c.flow_control_id}
            for c in self.node.tcp.connections]}

    async def _add_consumer(self, params: dict[str, Any]) -> dict[str, Any]:
        address = params.get("address")
        flow = params.get("flow_control_id")
        if not isinstance(address, str) or not isinstance(flow, str):
            raise UsageError("flow_control.add_consumer needs 'address' and 'flow_control_id'")
        self.node.flow_controls.add_consumer(address, flow)
        return {}


    async def _policy_reload(self, params: dict[str, Any]) -> dict[str, Any]:
        count = await self.access.reload(self.policies)
        log.info("node %s: %d policies reloaded", self.name, count)
        return {"policies": count, "version": self.access.snapshot.version}

    async def _policy_decide(self, params: dict[str, Any]) -> dict[str, Any]:
        """The decision this node makes for a message from another node to ``resource``: from
        ``identifier`` (a channel's peer, with ``has_credential`` and credential
        ``attributes``), or without one (plain TCP)."""
        from trust.channels.access import decision_request

        resource, resource_type, subject, now = decision_request(params)
        decision = self.access.decide(resource, subject, resource_type=resource_type, now=now)
        return {**decision.to_dict(), "node": self.name,
                "subject": None if subject is None else subject.to_dict()}


    # -- secure channels -------------------------------------------------------------------------
    async def open_channel(self, route: Any, *, authorized: list[str] | None = None,
                           identity: str | None = None,
                           timeout: float = DEFAULT_CHANNEL_TIMEOUT) -> Any:
        """Open a secure channel along ``route`` as the node's identity (or the local identity
        ``identity`` of the node's home), presenting the node's credential (only as its own
        identity), verifying the peer against the node's authorities; the peer must be one of
        ``authorized`` (identifiers) when given, else any authenticated peer."""
        from trust.channels.trust_policies import TrustEveryone, TrustIdentifiers
        from trust.services import open_identities

        trust = TrustIdentifiers(*authorized) if authorized else TrustEveryone()
        manager = open_identities(self.paths.home)
        try:
            if identity is None or identity == getattr(self.identity, "name", None):
                ident = self.identity
                credentials = () if self.credential is None else (self.credential,)
            else:
                ident = await manager.get(identity)
                credentials = ()
            return await self.node.create_secure_channel(
                ident, route, trust=trust, authorities=self.authorities,
                credentials=credentials, identities=manager, timeout=timeout)
        finally:
            await manager.close()

    async def _channel_create(self, params: dict[str, Any]) -> dict[str, Any]:
        to = params.get("to")
        if not isinstance(to, str) or not 0 < len(to) <= MAX_ROUTE_TEXT:
            raise UsageError(f"secure_channel.create needs 'to' (route text, at most "
                             f"{MAX_ROUTE_TEXT} characters)")
        authorized = _identifiers(params.get("authorized"), "secure_channel.create")
        identity = params.get("identity")
        if identity is not None and (not isinstance(identity, str) or not identity
                                     or len(identity) > 200):
            raise UsageError("secure_channel.create 'identity' must be an identity name")
        timeout = _timeout(params.get("timeout", DEFAULT_CHANNEL_TIMEOUT), "secure_channel.create")
        route = route_from_text(to, self.paths.home)
        channel = await self.open_channel(route, authorized=authorized, identity=identity,
                                          timeout=timeout)
        return channel_info(channel)

    async def _channel_list(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"channels": [channel_info(c) for c in self.node.secure_channels()]}

    async def _channel_show(self, params: dict[str, Any]) -> dict[str, Any]:
        address = _local_address(params.get("address"), "secure_channel.show")
        return channel_info(self.node.secure_channel(address))

    async def _channel_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        address = _local_address(params.get("address"), "secure_channel.delete")
        await self.node.delete_secure_channel(address)
        return {"address": address, "deleted": True}

    async def _channel_listener_create(self, params: dict[str, Any]) -> dict[str, Any]:
        from trust.channels.trust_policies import TrustEveryone, TrustIdentifiers
        from trust.services import open_identities

        address = _local_address(params.get("address"), "secure_channel_listener.create")
        authorized = _identifiers(params.get("authorized"), "secure_channel_listener.create")
        trust = TrustIdentifiers(*authorized) if authorized else TrustEveryone()
        manager = open_identities(self.paths.home)
        try:
            listener = await self.node.create_secure_channel_listener(
                self.identity, address, trust=trust, authorities=self.authorities,
                credentials=() if self.credential is None else (self.credential,),
                identities=manager)
        finally:
            await manager.close()
        # like `api`: the node's TCP listeners (and those created later) admit it
        self.node.listener_consumers.add(address)
        for tcp_listener in self.node.tcp.listeners:
            self.node.flow_controls.add_consumer(address, tcp_listener.flow_control_id)
        return listener_info(listener)

    async def _channel_listener_list(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"listeners": [listener_info(lst) for lst in self.node.secure_channel_listeners()]}

    async def _channel_listener_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        address = _local_address(params.get("address"), "secure_channel_listener.delete")
        await self.node.delete_secure_channel_listener(address)
        self.node.listener_consumers.discard(address)
        self.node.flow_controls.remove_consumer(address)
        return {"address": address, "deleted": True}


def channel_info(channel: Any) -> dict[str, Any]:
    """What the control protocol tells about an open channel; ``route`` is route text that
    addresses the far side (append ``/service/echo`` to reach its echo)."""
    name = channel.address.name
    return {"address": name, "route": f"/service/{name}", "peer": channel.peer.identifier,
            "initiator": channel.is_initiator,
            "remote_route": " ".join(str(a) for a in channel.remote_route.addresses),
            "created_at": channel.created_at}


def channel_counts(channel: Any) -> dict[str, Any]:
    """What ``node show`` adds to :func:`channel_info`: ``decryptor`` (the address the peer
    sends its records to: the last hop of the peer's ``remote_route``, which pairs the two
    ends of a channel), the records the channel sent (its encryptor's nonce counter; each
    record is one encrypted message) and received (those that decrypted), and their bytes as
    they went on the wire (ciphertext)."""
    return {"decryptor": channel.addresses.decryptor_remote.name,
            "records_sent": channel.session.encryptor.nonce,
            "records_received": channel.records_received,
            "bytes_sent": channel.bytes_sent, "bytes_received": channel.bytes_received}


def listener_info(listener: Any) -> dict[str, Any]:
    stats = listener.stats
    return {"address": listener.address.name, "handshakes": stats.handshakes,
            "in_progress": listener.in_progress, "failed": stats.failed_handshakes,
            "timed_out": stats.timed_out, "dropped": stats.dropped_over_limit}


def _local_address(value: Any, method: str) -> str:
    """A local worker name (``api``, a channel's hex address; ``/service/NAME`` is accepted)."""
    if isinstance(value, str):
        for prefix in ("/service/", "/secure/", "/worker/", "0#"):
            if value.startswith(prefix):
                value = value[len(prefix):]
                break
    if not isinstance(value, str) or not _LOCAL_NAME.fullmatch(value):
        raise UsageError(f"{method} needs 'address': a local address name (letters, digits, "
                         f"'_', '.', '-'; at most 128)")
    return value


def _identifiers(value: Any, method: str) -> list[str]:
    """A list of ``I…`` identifiers (each checked), or [] when absent."""
    from trust.models.primitives import identifier_from_text, identifier_text

    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_AUTHORIZED:
        raise UsageError(f"{method} 'authorized' must be a list of at most {MAX_AUTHORIZED} "
                         f"identifiers")
    out = []
    for item in value:
        if not isinstance(item, str) or len(item) > 200:
            raise UsageError(f"{method} 'authorized' must hold identifiers (I followed by 64 "
                             f"hex digits)")
        try:
            out.append(identifier_text(identifier_from_text(item)))
        except TrustError as e:
            raise UsageError(f"{method}: {e}") from None
    return out


def _timeout(value: Any, method: str) -> float:
    if (not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 600
            or value != value):
        raise UsageError(f"{method} 'timeout' must be a number of seconds in (0, 600]")
    return float(value)


class _NodeLogHandler(logging.handlers.RotatingFileHandler):
    """The node log, rotated by size. In the background the process's stderr is the log too
    (for what does not go through logging): it follows each rotation."""

    def __init__(self, path: str, *, follow_stderr: bool) -> None:
        super().__init__(path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS,
                         encoding="utf-8", errors="backslashreplace")
        self.follow_stderr = follow_stderr
        self._redirect()

    def _open(self) -> Any:
        # never through a symbolic link or into a FIFO planted at node.log (StorageError: an
        # OSError is what logging expects here)
        try:
            fd = open_append(Path(self.baseFilename))
        except TrustError as e:
            raise OSError(str(e)) from None
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)

    def _redirect(self) -> None:
        if self.follow_stderr and self.stream is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
                sys.stdout.flush()
                os.dup2(self.stream.fileno(), 1)
                os.dup2(self.stream.fileno(), 2)

    def doRollover(self) -> None:
        super().doRollover()
        self._redirect()


def _setup_logging(paths: NodePaths, foreground: bool) -> None:
    """The node's log: ``node.log`` (rotated by size, at most ``LOG_BACKUPS`` old files), and
    stderr in the foreground. Untrusted text is escaped where it is logged
    (:func:`trust.logsafe.safe_text`) and repeated warnings are rate-limited."""
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    if foreground:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(fmt)
        root.addHandler(handler)
    try:
        file_handler = _NodeLogHandler(str(paths.log), follow_stderr=not foreground)
    except OSError as e:
        if not foreground:
            raise
        log.warning("cannot write the node log %s: %s", paths.log, e)
        return
    file_handler.setFormatter(fmt)
    root.addHandler(file_handler)


async def run_node(paths: NodePaths, *, report: Callable[[dict[str, Any]], None],
                   foreground: bool = False) -> int:
    """Run node ``paths.name`` until it is told to stop. ``report`` gets one readiness message:
    ``{"ok": true, "state": {...}}`` or ``{"ok": false, "error": {...}}``."""
    loop = asyncio.get_running_loop()
    runtime: NodeRuntime | None = None
    try:
        try:
            # the configuration is checked here too (e.g. a bad hop_allow in node.json), so that
            # its error reaches the CLI in the readiness message like any other start-up error
            runtime = NodeRuntime(paths, paths.require())
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, runtime.request_stop)
            state = await runtime.start()
        except Exception as e:
            if not isinstance(e, TrustError):
                log.exception("node %s failed to start", paths.name)
            report({"ok": False, "error": json.loads(encode_error(None, e))["error"]})
            return 1
        report({"ok": True, "state": state})
        await runtime.wait()
        return 0
    finally:
        if runtime is not None:
            await runtime.shutdown()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    """``python -m trust.node run NAME --home DIR [--ready-fd FD] [--foreground]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m trust.node")
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a node in this process")
    run.add_argument("name")
    run.add_argument("--home")
    run.add_argument("--ready-fd", type=int)
    run.add_argument("--foreground", action="store_true")
    args = ap.parse_args(argv)
    paths = NodePaths(args.name, args.home)
    _setup_logging(paths, args.foreground)
    from trust.node.allocator import tune_allocator

    tune_allocator()  # (a node process: bulk buffers without page-fault churn)

    def report(message: dict[str, Any]) -> None:
        line = (json.dumps(message) + "\n").encode()
        if args.ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(args.ready_fd, line)
                os.close(args.ready_fd)
        elif not message["ok"]:
            print(f"error: {message['error']['message']}", file=sys.stderr)

    try:
        import uvloop
    except ImportError:
        return asyncio.run(run_node(paths, report=report, foreground=args.foreground))
    return uvloop.run(run_node(paths, report=report, foreground=args.foreground))
