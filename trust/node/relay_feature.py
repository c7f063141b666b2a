"""Relays in a node process (a :data:`~trust.node.daemon.NODE_FEATURES` module).

Every node runs the relay service at ``forwarding_service`` (alias
``static_forwarding_service``; :mod:`trust.relays.service`), guarded by the node's policies as
resource ``forwarding_service`` of type ``relay`` (with an authority, by default a credential
from it; without one, secure-channel traffic only) and, with an authority, by the
``ockam-relay`` attribute. Every TCP and secure-channel listener of the node admits it.

A node also *creates* relays at other nodes when told (``relay create NAME --to NODE --at
ROUTE``): a :class:`~trust.relays.RelayClient` that opens a secure channel as the node's
identity to the ``api`` listener at ROUTE, registers NAME there and keeps it registered
(liveness pings, re-registration with back-off; ``/node/NAME`` routes are resolved again at
each attempt, so a relay node restarted on its recorded address is found).

Control methods (parameters are hostile input: a wrong type or size is a ``usage`` error):

=================  ==============================================  ==========================
method             params                                          result
=================  ==============================================  ==========================
``relay.create``   ``{"name", "at", "authorized", "timeout", "wait"}``  the created relay
``relay.list``     ``{}``                                          ``{"relays", "hosted"}``
``relay.show``     ``{"name", "hosted": null|true|false}``          a created or hosted relay
``relay.delete``   ``{"name", "hosted": null|true|false}``          ``{"name", "role",
                                                                   "deleted": true}``
=================  ==============================================  ==========================

``hosted`` ``null`` (default): the relay this node created by that name, else the one it hosts.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Final

from trust.errors import ConflictError, NotFoundError, TrustError, UsageError
from trust.logsafe import safe_text
from trust.relays.client import RelayClient
from trust.relays.messages import PREFIX, SERVICE, check_relay_name
from trust.relays.service import RelayService, start_relay_service
from trust.routing import Address, Route, parse_multiaddr

__all__ = ["MAX_CLIENTS", "RelayFeature", "register", "start", "stop", "summary"]

log = logging.getLogger("trust.node.relay_feature")

MAX_CLIENTS: Final = 64
"""Relays one node may create (at other nodes) at most."""
MAX_ROUTE_TEXT: Final = 4096
MAX_AUTHORIZED: Final = 64
DEFAULT_TIMEOUT: Final = 30.0
CHANNEL_TIMEOUT: Final = 3.0
"""Seconds each attempt to open the channel to the relay node may take."""
RESOURCE_TYPE: Final = "relay"
_IDENTIFIER = re.compile(r"I[0-9a-f]{64}")


@dataclass
class CreatedRelay:
    client: RelayClient
    at: str
    """The route text it was created with (``--at``)."""

    def info(self) -> dict[str, Any]:
        info = self.client.info()
        base = self.at[: -len("/service/api")] if self.at.endswith("/service/api") else self.at
        address = info.get("address") or f"{PREFIX}{self.client.name}"
        return {**info, "at": self.at, "route": f"{base}/service/{address}"}


@dataclass
class RelayFeature:
    service: RelayService
    created: dict[str, CreatedRelay] = field(default_factory=dict)
    not_restored: dict[str, str] = field(default_factory=dict)
    """Saved relays that could not be made again at start: the error."""


def _state(runtime: Any) -> RelayFeature:
    state = runtime.features.get(__name__)
    if not isinstance(state, RelayFeature):
        raise NotFoundError("the relay feature is not running on this node")
    return state


def summary(runtime: Any) -> dict[str, Any]:
    """The node's relays for ``node show``: ``{"relays": [created…], "hosted": [hosted…]}``
    (hosted relays with their message and byte counts); empty when the feature is not running."""
    state = runtime.features.get(__name__)
    if not isinstance(state, RelayFeature):
        return {"relays": [], "hosted": []}
    service = state.service
    return {"relays": [c.info() for _, c in sorted(state.created.items())],
            "hosted": [service.info(r) for r in service.relays()]}


def not_restored(runtime: Any) -> list[dict[str, str]]:
    """Saved relays that could not be made again at start (for ``node show``)."""
    state = runtime.features.get(__name__)
    if not isinstance(state, RelayFeature):
        return []
    return [{"kind": "relay", "name": name, "error": error}
            for name, error in sorted(state.not_restored.items())]


async def start(runtime: Any) -> None:
    access = runtime.access
    access.registry.add(SERVICE, RESOURCE_TYPE)
    service = await start_relay_service(runtime.node, authorities=access.authorities,
                                        incoming=access.access_control(SERVICE))
    state = runtime.features[__name__] = RelayFeature(service)
    state.not_restored.update(runtime.saved_resources.malformed("relay"))
    # the relays it created, made again (they register in the background, retrying)
    for name, params in runtime.saved_resources.items("relay"):
        try:
            await _create(runtime, {**params, "wait": False}, save=False)
        except (TrustError, OSError) as e:
            state.not_restored[name] = str(e)
            log.warning("relay %s was not made again: %s", safe_text(name), safe_text(e))


async def stop(runtime: Any) -> None:
    state = runtime.features.pop(__name__, None)
    if isinstance(state, RelayFeature):
        for created in list(state.created.values()):
            await created.client.stop()
        state.created.clear()


def register(server: Any, runtime: Any) -> None:
    async def create(params: dict[str, Any]) -> dict[str, Any]:
        return await _create(runtime, params)

    async def list_(params: dict[str, Any]) -> dict[str, Any]:
        _state(runtime)
        return summary(runtime)

    async def show(params: dict[str, Any]) -> dict[str, Any]:
        state = _state(runtime)
        name, hosted = _name_and_role(params, "relay.show")
        created = state.created.get(name) if hosted is not True else None
        if created is not None:
            return created.info()
        if hosted is not False:
            try:
                return state.service.info(state.service.relay(name))
            except NotFoundError:
                pass
        raise NotFoundError(_missing(runtime, name, hosted))

    async def delete(params: dict[str, Any]) -> dict[str, Any]:
        state = _state(runtime)
        name, hosted = _name_and_role(params, "relay.delete")
        created = state.created.get(name) if hosted is not True else None
        if created is not None:
            del state.created[name]
            await created.client.stop()
            runtime.saved_resources.forget("relay", name)
            return {"name": name, "role": "created", "deleted": True}
        if hosted is not True and state.not_restored.pop(name, None) is not None:
            runtime.saved_resources.forget("relay", name)
            return {"name": name, "role": "created", "deleted": True}
        if hosted is not False:
            try:
                await state.service.delete(name)
                return {"name": name, "role": "hosted", "deleted": True}
            except NotFoundError:
                pass
        raise NotFoundError(_missing(runtime, name, hosted))

    server.register("relay.create", create)
    server.register("relay.list", list_)
    server.register("relay.show", show)
    server.register("relay.delete", delete)


def _missing(runtime: Any, name: str, hosted: bool | None) -> str:
    what = {None: "created or hosted", True: "hosted", False: "created"}[hosted]
    return f"no relay {name} {what} at node {runtime.name}"


def _name_and_role(params: dict[str, Any], method: str) -> tuple[str, bool | None]:
    name = params.get("name")
    try:
        check_relay_name(name)
    except UsageError as e:
        raise UsageError(f"{method} 'name': {e}") from None
    hosted = params.get("hosted")
    if hosted is not None and type(hosted) is not bool:
        raise UsageError(f"{method} 'hosted' must be true, false or null")
    return name, hosted  # type: ignore[return-value]


def _listener_route(text: str, home: Any) -> Route:
    """The route to the ``api`` listener of the node at ``text`` (``/node/N``, ``/ip4/…``;
    a route that already ends with a local address names the listener itself)."""
    from trust.node.resolve import route_from_text

    route = route_from_text(text, home)
    if not route.addresses:
        raise UsageError("relay.create 'at' must lead to a node")
    if route.addresses[-1].is_local:
        return route
    return route / Address.local("api")


async def _create(runtime: Any, params: dict[str, Any], *, save: bool = True
                  ) -> dict[str, Any]:
    state = _state(runtime)
    name = params.get("name")
    try:
        check_relay_name(name)
    except UsageError as e:
        raise UsageError(f"relay.create 'name': {e}") from None
    at = params.get("at")
    if not isinstance(at, str) or not 0 < len(at) <= MAX_ROUTE_TEXT:
        raise UsageError(f"relay.create needs 'at': the route of the node that hosts the relay "
                         f"(e.g. /node/relay), at most {MAX_ROUTE_TEXT} characters")
    authorized = params.get("authorized") or []
    if (not isinstance(authorized, list) or len(authorized) > MAX_AUTHORIZED
            or not all(isinstance(i, str) and _IDENTIFIER.fullmatch(i) for i in authorized)):
        raise UsageError(f"relay.create 'authorized' must be a list of at most {MAX_AUTHORIZED} "
                         "identifiers (I followed by 64 lowercase hex digits)")
    timeout = params.get("timeout", DEFAULT_TIMEOUT)
    if (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
            or not 0 < timeout <= 600):
        raise UsageError("relay.create 'timeout' must be a number of seconds in (0, 600]")
    wait = params.get("wait", True)
    if type(wait) is not bool:
        raise UsageError("relay.create 'wait' must be true or false")
    assert isinstance(name, str)
    if name in state.created:
        raise ConflictError(f"node {runtime.name} already created relay {name} (at "
                            f"{state.created[name].at}); delete it first")
    if len(state.created) >= MAX_CLIENTS:
        raise ConflictError(f"node {runtime.name} has created {MAX_CLIENTS} relays: no more")
    home = runtime.paths.home
    if wait:
        _listener_route(at, home)  # a bad route or a node not running fails now, in one line
    else:
        parse_multiaddr(at)  # the node may not be running yet: only the syntax now

    async def connect() -> Any:
        route = _listener_route(at, home)  # resolved again: the relay node may have moved
        # short: a handshake that met a node still starting is lost; the next try succeeds
        return await runtime.open_channel(route, authorized=list(authorized),
                                          timeout=min(float(timeout), CHANNEL_TIMEOUT))

    client = RelayClient(runtime.node, name, connect)
    created = CreatedRelay(client, at)
    state.created[name] = created
    try:
        await client.start(wait=float(timeout) if wait else None)
    except BaseException:
        state.created.pop(name, None)
        raise
    if save:
        try:
            runtime.saved_resources.save("relay", name, {
                "name": name, "at": at, "authorized": list(authorized), "timeout": timeout})
        except BaseException:
            state.created.pop(name, None)
            await client.stop()
            raise
        state.not_restored.pop(name, None)
    log.info("relay %s created at %s", name, at)
    return created.info()
