"""TCP portals in a node process: the ``tcp_outlet.*`` and ``tcp_inlet.*`` control methods the
``truststack tcp-outlet`` and ``tcp-inlet`` commands call (see ``docs/portals.md``).

* An **outlet** is a worker (``--from NAME``, default ``outlet``) admitted by the node's
  secure-channel listeners; for each inlet connection it connects to its target. It is the
  policy resource NAME of type ``tcp-outlet``.
* An **inlet** listens on ``--from HOST:PORT`` and carries each connection to the outlet at
  its route: ``--to ROUTE`` (route text; ``/secure/NAME`` segments are channels the node
  opens, as the node's identity, and reuses for every connection until they break), or
  ``--via RELAY``: the node's authority route with its listener as a channel, then
  ``/service/forward_to_RELAY/secure/api/service/outlet``. The last channel (to the outlet's
  node) trusts only ``--authorized`` identifiers, else any member of the node's authority
  (any authenticated peer on a node without one). It is the resource NAME of type
  ``tcp-inlet``.

``--allow EXPR`` stores the resource's policy exactly as ``policy create --resource NAME --at
NODE`` does (same store, scope and key) and reloads the node's policies.

Revocation: when the node's revocation list is replaced (``runtime.access.revoked``, by the
enrollment feature), every open connection of its inlets and outlets whose channel peer the
list revokes is closed at once, logged and counted in the portal's ``denied``
(:func:`trust.portals.policy.enforce_revocations`); such a peer's new connections are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any, Final

from trust.errors import ConflictError, NotFoundError, TrustError, UsageError
from trust.logsafe import safe_text
from trust.portals.policy import (
    INLET_TYPE,
    OUTLET_TYPE,
    enforce_revocations,
    resource_authorizer,
)
from trust.portals.portal import (
    KEEPALIVE_INTERVAL,
    SILENCE_TIMEOUT,
    TcpInlet,
    TcpOutlet,
    create_outlet,
)
from trust.relays.messages import check_relay_name
from trust.routing import Route
from trust.transports.tcp import split_host_port

if TYPE_CHECKING:
    from trust.node.control_server import ControlServer
    from trust.node.daemon import NodeRuntime

__all__ = ["CHANNEL_TIMEOUT", "INLET_PONG_TIMEOUT", "PortalState", "register", "start", "stop",
           "via_route"]

log = logging.getLogger("trust.node.portal_feature")

CHANNEL_TIMEOUT: Final = 3.0
"""Seconds each channel of an inlet's route may take to open."""
INLET_PONG_TIMEOUT: Final = 10.0
"""Seconds an inlet of a node process waits for the outlet's answer (then its route's channels
are opened again for the next connection)."""
MAX_PORTALS: Final = 256
"""Inlets and outlets a node holds at most (each)."""
MAX_ROUTE_TEXT: Final = 4096
MAX_ERROR_TEXT: Final = 400
"""Characters of an inlet's ``last_error`` at most."""
MAX_AUTHORIZED: Final = 64
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_RESERVED: Final = frozenset({"api", "echo", "hop", "forwarding_service",
                              "static_forwarding_service", "stream_service"})


def via_route(authority_route: str, relay: str) -> str:
    """``--via RELAY``: the authority route, its listener as a channel (``…/service/api`` →
    ``…/secure/api``), then ``/service/forward_to_RELAY/secure/api/service/outlet``."""
    check_relay_name(relay)
    text = authority_route.rstrip("/")
    head, sep, listener = text.rpartition("/service/")
    if sep and listener and "/" not in listener:
        text = f"{head}/secure/{listener}"
    return f"{text}/service/forward_to_{relay}/secure/api/service/outlet"


class _InletRoute:
    """The route of one inlet: its channels, opened on first use and again once broken."""

    def __init__(self, runtime: NodeRuntime, text: str, authorized: list[str],
                 via: bool) -> None:
        self.runtime = runtime
        self.text = text
        self.authorized = authorized
        self.via = via
        self._channels: list[Any] = []
        self._route: Route | None = None
        self._lock = asyncio.Lock()
        self.error: str | None = None
        """Why the inlet's last connection failed (escaped, bounded), ``None`` once one is set
        up (the inlet's ``on_result``)."""

    def _healthy(self) -> bool:
        node = self.runtime.node
        for ch in self._channels:
            first = ch.remote_route.addresses[:1]
            if ch.closed or (first and not node.has_address(first[0])):
                return False
        return self._route is not None

    async def __call__(self) -> Route:
        async with self._lock:
            if self._healthy():
                return self._route  # type: ignore[return-value]
            await self.drop()
            from trust.node.resolve import open_secure_route, secure_route_from_text

            secure = secure_route_from_text(self.text, self.runtime.paths.home)
            legs = len(secure.legs)
            opened = 0

            async def open_leg(route: Route) -> Any:
                nonlocal opened
                opened += 1
                return await self._open(route, last=opened == legs, first=opened == 1)

            route, channels = await open_secure_route(secure, open_leg)
            self._channels, self._route = channels, route
            return route

    async def _open(self, route: Route, *, last: bool, first: bool) -> Any:
        from trust.channels.trust_policies import (
            TrustAuthority,
            TrustEveryone,
            TrustIdentifiers,
        )
        from trust.services import open_identities

        rt = self.runtime
        trust: Any
        if last and self.authorized:
            trust = TrustIdentifiers(*self.authorized)
        elif last and rt.authorities:
            trust = TrustAuthority(*rt.authorities)
        elif first and self.via and rt.authorities:  # the channel to the authority's node
            trust = TrustIdentifiers(*(a.identifier for a in rt.authorities))
        else:
            trust = TrustEveryone()
        manager = open_identities(rt.paths.home)
        try:
            return await rt.node.create_secure_channel(
                rt.identity, route, trust=trust, authorities=rt.authorities,
                credentials=() if rt.credential is None else (rt.credential,),
                identities=manager, timeout=CHANNEL_TIMEOUT)
        finally:
            await manager.close()

    def record(self, error: str | None) -> None:
        """How the inlet's last connection went: why it failed, or ``None``: it was set up."""
        self.error = None if error is None else safe_text(error, MAX_ERROR_TEXT)

    def invalidate(self) -> None:
        """The outlet did not answer: open the channels again for the next connection."""
        self._route = None

    async def drop(self) -> None:
        channels, self._channels, self._route = self._channels, [], None
        for ch in reversed(channels):
            with contextlib.suppress(TrustError, OSError, TimeoutError):
                if not ch.closed:
                    await ch.close()

    @property
    def connected(self) -> bool:
        return self._healthy()


class _Inlet:
    def __init__(self, name: str, inlet: TcpInlet, route: _InletRoute, to: str | None,
                 via: str | None) -> None:
        self.name = name
        self.inlet = inlet
        self.route = route
        self.to = to
        self.via = via

    def info(self) -> dict[str, Any]:
        return {**self.inlet.info(), "name": self.name, "to": self.to, "via": self.via,
                "route": self.route.text, "authorized": list(self.route.authorized),
                "connected": self.route.connected, "last_error": self.route.error,
                "keepalive": self.inlet.keepalive}


class PortalState:
    """The inlets and outlets of one node process (``runtime.features[__name__]``)."""

    def __init__(self, runtime: NodeRuntime) -> None:
        self.runtime = runtime
        self.outlets: dict[str, TcpOutlet] = {}
        self.inlets: dict[str, _Inlet] = {}
        self.saved = runtime.saved_resources
        self.not_restored: dict[tuple[str, str], str] = {}
        """(kind, name) of saved portals that could not be made again at start: the error."""
        self._unwatch = enforce_revocations(runtime.access, self.portals)

    def portals(self) -> list[TcpInlet | TcpOutlet]:
        """The node's inlets and outlets."""
        return [*(r.inlet for r in self.inlets.values()), *self.outlets.values()]

    # -- made again at start ---------------------------------------------------------------------
    async def restore(self) -> None:
        """Make the saved outlets and inlets again (a failure is logged, kept for the next start
        and shown by ``node show`` until the portal is deleted)."""
        for kind, create in (("tcp_outlet", self.create_outlet), ("tcp_inlet", self.create_inlet)):
            self.not_restored.update(((kind, name), why) for name, why in self.saved.malformed(kind))
            for name, params in self.saved.items(kind):
                try:
                    await create(params, save=False)
                except (TrustError, OSError) as e:
                    self.not_restored[(kind, name)] = str(e)
                    log.warning("%s %s was not made again: %s", kind.replace("_", "-"),
                                safe_text(name), safe_text(e))

    def not_restored_info(self) -> list[dict[str, str]]:
        return [{"kind": kind.replace("_", "-"), "name": name, "error": error}
                for (kind, name), error in sorted(self.not_restored.items())]

    def _save(self, kind: str, name: str, params: dict[str, Any]) -> None:
        self.saved.save(kind, name, {k: v for k, v in params.items() if v is not None})
        self.not_restored.pop((kind, name), None)  # (made anew under the same name)

    def _forget_unrestored(self, kind: str, name: str) -> bool:
        """Delete a saved portal that was not made again (``False``: there is none)."""
        if self.not_restored.pop((kind, name), None) is None:
            return False
        self.saved.forget(kind, name)
        return True

    # -- policies --------------------------------------------------------------------------------
    async def _store_policy(self, name: str, expression: Any) -> str | None:
        """``--allow``: stored as ``policy create --resource NAME --at NODE`` stores it."""
        if expression is None:
            return None
        if not isinstance(expression, str) or not 0 < len(expression) <= 16 * 1024:
            raise UsageError("'allow' must be a policy expression (at most 16 KiB)")
        from policies import Policy
        from policies.errors import PolicyError

        try:
            policy = Policy.parse(expression)
        except PolicyError as e:
            raise UsageError(f"the policy (--allow) does not parse: {e}") from None
        rt = self.runtime
        await rt.policies.set_policy(policy, scope=rt.name, resource=name, resource_type=None)
        await rt.access.reload(rt.policies)
        return policy.text

    def _check_new(self, name: str, kind: str) -> None:
        if name in self.outlets or name in self.inlets or name in _RESERVED:
            raise ConflictError(f"node {self.runtime.name} already has a resource named {name}")
        held = self.outlets if kind == "outlet" else self.inlets
        if len(held) >= MAX_PORTALS:
            raise UsageError(f"node {self.runtime.name} holds {MAX_PORTALS} {kind}s (at most)")

    # -- outlets ---------------------------------------------------------------------------------
    async def create_outlet(self, params: dict[str, Any], *, save: bool = True
                            ) -> dict[str, Any]:
        target = params.get("to")
        if not isinstance(target, str):
            raise UsageError("tcp_outlet.create needs 'to' (HOST:PORT)")
        if split_host_port(target)[1] == 0:
            raise UsageError("an outlet's target needs a port (1-65535)")
        name = _name(params.get("from", "outlet"), "tcp_outlet.create 'from'")
        self._check_new(name, "outlet")
        if self.runtime.node.has_address(name):
            raise ConflictError(f"address {name} is already in use on node {self.runtime.name}")
        silence = _seconds(params.get("silence_timeout"), "tcp_outlet.create 'silence_timeout'",
                           SILENCE_TIMEOUT)
        policy = await self._store_policy(name, params.get("allow"))
        authorize = resource_authorizer(self.runtime.access, name, OUTLET_TYPE)
        outlet = await create_outlet(self.runtime.node, target, name, authorize=authorize,
                                     silence_timeout=silence)
        self.outlets[name] = outlet
        if save:
            try:
                given = params.get("silence_timeout") is not None  # (else: the default then)
                self._save("tcp_outlet", name, {"to": target, "from": name,
                                                "silence_timeout": silence if given else None})
            except BaseException:
                await self.delete_outlet(name, forget=False)
                raise
        log.info("outlet %s to %s created", name, safe_text(target))
        return {**self.outlet_info(name), "policy": policy}

    def outlet_info(self, name: str) -> dict[str, Any]:
        outlet = self.outlets.get(name)
        if outlet is None:
            raise NotFoundError(f"no outlet {safe_text(name)} at node {self.runtime.name}")
        return {**outlet.info(), "address": name, "route": f"/service/{name}",
                "silence_timeout": outlet.silence_timeout}

    async def delete_outlet(self, name: str, *, forget: bool = True) -> None:
        """Stop outlet ``name``; ``forget``: and do not make it again at the next start."""
        outlet = self.outlets.pop(name, None)
        if outlet is None:
            if forget and self._forget_unrestored("tcp_outlet", name):
                return
            raise NotFoundError(f"no outlet {safe_text(name)} at node {self.runtime.name}")
        await outlet.stop()
        self.runtime.node.flow_controls.remove_consumer(name)
        if forget:
            self.saved.forget("tcp_outlet", name)

    # -- inlets ----------------------------------------------------------------------------------
    async def create_inlet(self, params: dict[str, Any], *, save: bool = True
                           ) -> dict[str, Any]:
        rt = self.runtime
        bind = params.get("from", "127.0.0.1:0")
        if not isinstance(bind, str):
            raise UsageError("tcp_inlet.create 'from' must be HOST:PORT")
        split_host_port(bind)
        to, via = params.get("to"), params.get("via")
        if (to is None) == (via is None):
            raise UsageError("tcp_inlet.create needs exactly one of 'to' (a route) and 'via' "
                             "(a relay name)")
        if via is not None:
            if not isinstance(via, str):
                raise UsageError("tcp_inlet.create 'via' must be a relay name")
            authority_route = rt.config.get("authority_route")
            if not authority_route:
                raise UsageError(f"node {rt.name} has no authority route (node create --ticket "
                                 "or --authority-route): give the route with --to")
            text = via_route(authority_route, via)
        else:
            if not isinstance(to, str) or not 0 < len(to) <= MAX_ROUTE_TEXT:
                raise UsageError(f"tcp_inlet.create 'to' must be route text (at most "
                                 f"{MAX_ROUTE_TEXT} characters)")
            text = to
        from trust.node.resolve import require_destination

        # syntax errors now (node names are resolved when the channels are opened), and a route
        # that ends at a channel listener, with no outlet after it
        segments = require_destination(text, example="/service/outlet").segments
        authorized = _identifiers(params.get("authorized"))
        keepalive = _seconds(params.get("keepalive"), "tcp_inlet.create 'keepalive'",
                             KEEPALIVE_INTERVAL)
        name = params.get("name")
        if name is None:
            name = next(f"inlet{'' if i == 1 else f'-{i}'}" for i in range(1, MAX_PORTALS + 2)
                        if f"inlet{'' if i == 1 else f'-{i}'}" not in self.inlets)
        name = _name(name, "tcp_inlet.create 'name'")
        self._check_new(name, "inlet")
        if not any(seg.protocol == "secure" for seg in segments):
            log.warning("inlet %s: its route %s has no /secure segment: traffic to the outlet "
                        "is not encrypted", name, safe_text(text))
        route = _InletRoute(rt, text, authorized, via is not None)
        authorize = resource_authorizer(rt.access, name, INLET_TYPE)
        inlet = TcpInlet(rt.node, name, route, authorize=authorize,
                         pong_timeout=INLET_PONG_TIMEOUT, keepalive=keepalive)
        inlet.on_no_answer = route.invalidate
        inlet.on_result = route.record
        # bound first (a taken address stores nothing), accepting only once its policy is in
        await inlet.listen(bind, start=False)
        try:
            policy = await self._store_policy(name, params.get("allow"))
            await inlet.start()
        except BaseException:
            await inlet.stop()
            raise
        record = _Inlet(name, inlet, route, to, via)
        self.inlets[name] = record
        if save:  # (the address bound, so a port chosen now is kept)
            try:
                self._save("tcp_inlet", name, {"name": name, "from": inlet.address, "to": to,
                                               "via": via, "authorized": authorized or None,
                                               "keepalive": keepalive if params.get(
                                                   "keepalive") is not None else None})
            except BaseException:
                await self.delete_inlet(name, forget=False)
                raise
        log.info("inlet %s on %s to %s created", name, inlet.address, safe_text(text))
        return {**record.info(), "policy": policy}

    def inlet_info(self, name: str) -> dict[str, Any]:
        record = self.inlets.get(name)
        if record is None:
            raise NotFoundError(f"no inlet {safe_text(name)} at node {self.runtime.name}")
        return record.info()

    async def delete_inlet(self, name: str, *, forget: bool = True) -> None:
        """Stop inlet ``name``; ``forget``: and do not make it again at the next start."""
        record = self.inlets.pop(name, None)
        if record is None:
            if forget and self._forget_unrestored("tcp_inlet", name):
                return
            raise NotFoundError(f"no inlet {safe_text(name)} at node {self.runtime.name}")
        await record.inlet.stop()
        await record.route.drop()
        if forget:
            self.saved.forget("tcp_inlet", name)

    async def stop(self) -> None:
        """The node stops: close every portal (they are made again at the next start)."""
        self._unwatch()
        for name in list(self.inlets):
            with contextlib.suppress(Exception):
                await self.delete_inlet(name, forget=False)
        for name in list(self.outlets):
            with contextlib.suppress(Exception):
                await self.delete_outlet(name, forget=False)


MAX_LIVENESS_SECONDS: Final = 86_400.0
"""The longest keepalive interval or silence timeout a portal takes (a day)."""


def _seconds(value: Any, what: str, default: float) -> float:
    """A keepalive interval or silence timeout from the wire: a positive duration (seconds, or
    text such as ``30s``) of at most :data:`MAX_LIVENESS_SECONDS`."""
    from trust.durations import parse_duration

    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"{what} must be a duration (e.g. 30s)")
    try:
        return parse_duration(value, allow_zero=False, maximum=MAX_LIVENESS_SECONDS)
    except UsageError as e:
        raise UsageError(f"{what}: {e}") from None


def _name(value: Any, what: str) -> str:
    if isinstance(value, str) and value.startswith("/service/"):
        value = value[len("/service/"):]
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise UsageError(f"{what} must be a name: letters, digits, '_', '.', '-' (at most 64)")
    return value


def _identifiers(value: Any) -> list[str]:
    from trust.models.primitives import identifier_from_text, identifier_text

    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_AUTHORIZED:
        raise UsageError(f"'authorized' must be a list of at most {MAX_AUTHORIZED} identifiers")
    out = []
    for item in value:
        if not isinstance(item, str) or len(item) > 200:
            raise UsageError("'authorized' must hold identifiers (I followed by 64 hex digits)")
        try:
            out.append(identifier_text(identifier_from_text(item)))
        except TrustError as e:
            raise UsageError(f"--authorized: {e}") from None
    return out


def _state(runtime: NodeRuntime) -> PortalState:
    return runtime.features[__name__]  # type: ignore[no-any-return]


def _name_param(params: dict[str, Any], method: str) -> str:
    return _name(params.get("name"), f"{method} 'name'")


async def start(runtime: NodeRuntime) -> None:
    state = runtime.features[__name__] = PortalState(runtime)
    await state.restore()


async def stop(runtime: NodeRuntime) -> None:
    state = runtime.features.pop(__name__, None)
    if state is not None:
        await state.stop()


def register(server: ControlServer, runtime: NodeRuntime) -> None:
    async def outlet_create(params: dict[str, Any]) -> dict[str, Any]:
        return await _state(runtime).create_outlet(params)

    async def outlet_list(params: dict[str, Any]) -> dict[str, Any]:
        state = _state(runtime)
        return {"outlets": [state.outlet_info(n) for n in sorted(state.outlets)]}

    async def outlet_show(params: dict[str, Any]) -> dict[str, Any]:
        return _state(runtime).outlet_info(_name_param(params, "tcp_outlet.show"))

    async def outlet_delete(params: dict[str, Any]) -> dict[str, Any]:
        name = _name_param(params, "tcp_outlet.delete")
        await _state(runtime).delete_outlet(name)
        return {"name": name, "deleted": True}

    async def inlet_create(params: dict[str, Any]) -> dict[str, Any]:
        return await _state(runtime).create_inlet(params)

    async def inlet_list(params: dict[str, Any]) -> dict[str, Any]:
        state = _state(runtime)
        return {"inlets": [state.inlet_info(n) for n in sorted(state.inlets)]}

    async def inlet_show(params: dict[str, Any]) -> dict[str, Any]:
        return _state(runtime).inlet_info(_name_param(params, "tcp_inlet.show"))

    async def inlet_delete(params: dict[str, Any]) -> dict[str, Any]:
        name = _name_param(params, "tcp_inlet.delete")
        await _state(runtime).delete_inlet(name)
        return {"name": name, "deleted": True}

    previous_show = server.handlers.get("node.show")
    if previous_show is not None:
        async def node_show(params: dict[str, Any]) -> dict[str, Any]:
            """``node show`` also lists the node's inlets and outlets with their counters."""
            result = await previous_show(params)
            state = runtime.features.get(__name__)
            if state is not None:
                result["inlets"] = [state.inlet_info(n) for n in sorted(state.inlets)]
                result["outlets"] = [state.outlet_info(n) for n in sorted(state.outlets)]
                result.setdefault("not_restored", []).extend(state.not_restored_info())
            return result

        server.register("node.show", node_show)
    for method, handler in (("tcp_outlet.create", outlet_create), ("tcp_outlet.list", outlet_list),
                            ("tcp_outlet.show", outlet_show), ("tcp_outlet.delete", outlet_delete),
                            ("tcp_inlet.create", inlet_create), ("tcp_inlet.list", inlet_list),
                            ("tcp_inlet.show", inlet_show), ("tcp_inlet.delete", inlet_delete)):
        server.register(method, handler)
