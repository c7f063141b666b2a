"""Policies enforced on a node's services: resources, resource types and the defaults.

A node's services are *resources* (``echo``, ``hop``; later outlets, inlets, relays, the
authority's services), each with a *resource type* (``echo`` is an ``echoer``). A message that
reaches one from another node is decided here:

1. the policy stored for the resource (``policy create --at NODE --resource NAME``), else the
   one stored for its type, evaluated with ``subject.identifier``, ``subject.has_credential``
   and the credential attributes (strings) of the channel's peer, ``resource.id``,
   ``resource.type`` and ``action.id = "handle_message"`` (Ockam's names). A message that came
   without a secure channel has no subject: a policy that reads one denies it;
2. with neither: ``echo`` and ``hop`` are *open* (so plain TCP routing keeps working) until a
   policy is stored for them or their type;
3. a node with an authority requires a credential from it (or the authority's own identifier):
   a message that came without a channel has no subject and is denied;
4. a node without an authority lets through only channel traffic (its listener admitted the
   peer); plain TCP traffic is denied.

Local messages (the node's own workers; no transport or channel local info) are not checked.

Revocation: :attr:`NodeAccess.revoked` (identifier -> revoked at, from an authority's revocation
list, set by the node's revocation client) is consulted first, per message: a message from a
revoked channel peer is dropped (and logged) whatever the policies say, unless the peer presents a
credential created after its revocation (it enrolled again); :meth:`NodeAccess.revocation_trust`
is the trust policy a secure-channel listener adds so that a revoked peer's new channels are
refused. Whoever holds connections that are not checked per message (portal connections) is
told when the list is replaced (:meth:`NodeAccess.on_revocation`) and closes those of revoked
peers then.

The pure part is :func:`decide` (a :class:`Decision` with the policy's explain reason);
:class:`PolicySnapshot` holds a node's policies in memory (``reload()`` reads them from a
:class:`~policies.PolicyRepository`) and :class:`NodeAccess` makes the synchronous per-worker
access controls that read it (:meth:`NodeAccess.access_control`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from policies import Environment, Explanation, Policy, PolicyEntry
from policies.repository import check_name
from trust.channels.local_info import SecureChannelLocalInfo, channel_info
from trust.channels.peer import merge_attributes
from trust.channels.trust_policies import Trust
from trust.errors import UsageError
from trust.logsafe import safe_text, warn_limited
from trust.node.access_control import RelayMessage
from trust.node.flow_control import FLOW_CONTROL_LOCAL_INFO

if TYPE_CHECKING:
    from policies import PolicyRepository
    from trust.channels.peer import VerifiedPeer

__all__ = [
    "ACTION",
    "DEFAULT_RESOURCES",
    "OPEN_RESOURCES",
    "Decision",
    "NodeAccess",
    "NotRevoked",
    "PolicySnapshot",
    "ResourceAccessControl",
    "ResourceRegistry",
    "RevocationListener",
    "Source",
    "Subject",
    "decide",
    "decision_request",
    "default_policy",
    "subject_of",
]

log = logging.getLogger("trust.channels.access")

ACTION: Final = "handle_message"
"""The only action (as Ockam's ``action.id``)."""

DEFAULT_RESOURCES: Final[Mapping[str, str]] = {"echo": "echoer", "hop": "hop"}
"""The resources every node runs: name -> resource type."""

OPEN_RESOURCES: Final = frozenset({"echo", "hop"})
"""Resources that let every message through until a policy is stored for them or their type."""

Source = Literal["resource", "type", "default"]

RevocationListener = Callable[[Mapping[str, int]], None]
"""Told the new revocation list (identifier -> revoked at) each time :attr:`NodeAccess.revoked`
is replaced."""
MAX_REVOCATION_LISTENERS: Final = 1024


class ResourceRegistry:
    """A node's resources: name -> resource type, and which are open until a policy is stored."""

    __slots__ = ("_open", "_types")

    def __init__(self, types: Mapping[str, str] | None = None,
                 open_resources: Iterable[str] | None = None) -> None:
        self._types: dict[str, str] = {}
        self._open: set[str] = set()
        for name, rtype in (DEFAULT_RESOURCES if types is None else types).items():
            self.add(name, rtype)
        for name in OPEN_RESOURCES if open_resources is None else open_resources:
            if name not in self._types:
                raise UsageError(f"open resource {name!r} is not registered")
            self._open.add(name)

    def add(self, name: str, resource_type: str, *, open_: bool = False) -> None:
        """Register resource ``name`` of type ``resource_type`` (replacing any previous one)."""
        self._types[check_name(name, "resource name")] = check_name(resource_type,
                                                                     "resource type")
        if open_:
            self._open.add(name)
        else:
            self._open.discard(name)

    def type_of(self, name: str) -> str | None:
        return self._types.get(name)

    def is_open(self, name: str) -> bool:
        return name in self._open

    def items(self) -> list[tuple[str, str]]:
        return sorted(self._types.items())


@dataclass(frozen=True, slots=True)
class Subject:
    """Who sent a message through a secure channel, as a policy sees it."""

    identifier: str
    has_credential: bool = False
    attributes: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"identifier": self.identifier, "has_credential": self.has_credential,
                "attributes": dict(sorted(self.attributes.items()))}


def subject_of(peer: VerifiedPeer, authorities: frozenset[str], *,
               now: int | None = None) -> Subject:
    """The subject of a channel's verified peer. With ``authorities`` (identifiers) only their
    credentials count; without, every credential the channel verified. Expired credentials are
    left out. Attribute values two credentials disagree on are left out (fail closed)."""
    at = int(time.time()) if now is None else now
    credentials = [c for c in peer.credentials
                   if (not authorities or c.issuer in authorities) and c.expires_at > at]
    if len(credentials) == len(peer.credentials):
        return Subject(peer.identifier, bool(credentials), peer.attributes)
    attributes = merge_attributes(credentials)
    return Subject(peer.identifier, bool(credentials), attributes)


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a message may reach a resource, why, and which policy decided."""

    allowed: bool
    reason: str
    policy_source: Source
    expression: str | None = None
    resource: str = ""
    resource_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "reason": self.reason,
                "policy_source": self.policy_source, "expression": self.expression,
                "resource": self.resource, "resource_type": self.resource_type}


class PolicySnapshot:
    """The policies of one node (scope), compiled and held in memory."""

    __slots__ = ("resources", "scope", "types", "version")

    def __init__(self, scope: str, entries: Iterable[PolicyEntry] = ()) -> None:
        self.scope = check_name(scope, "node name")
        self.resources: dict[str, Policy] = {}
        self.types: dict[str, Policy] = {}
        self.version = 0
        self.replace(entries)

    def replace(self, entries: Iterable[PolicyEntry]) -> None:
        """Hold exactly ``entries`` (those of this scope)."""
        resources: dict[str, Policy] = {}
        types: dict[str, Policy] = {}
        for e in entries:
            if e.scope == self.scope:
                (resources if e.kind == "resource" else types)[e.name] = e.policy
        self.resources, self.types = resources, types
        self.version += 1

    async def reload(self, repository: PolicyRepository) -> int:
        """Read this scope's policies from ``repository``; return how many there are."""
        entries = await repository.list_policies(scope=self.scope)
        self.replace(entries)
        return len(entries)

    def policy_for(self, resource: str, resource_type: str | None) -> tuple[Policy, Source] | None:
        policy = self.resources.get(resource)
        if policy is not None:
            return policy, "resource"
        if resource_type is not None:
            policy = self.types.get(resource_type)
            if policy is not None:
                return policy, "type"
        return None

    def __len__(self) -> int:
        return len(self.resources) + len(self.types)


def default_policy(authorities: Iterable[str]) -> Policy:
    """The default of a node with an authority: a credential from it, or its own identifier."""
    ids = sorted(set(authorities))
    if not ids:
        raise UsageError("a default policy needs at least one authority")
    parts = ["(= subject.has_credential true)",
             *(f'(= subject.identifier "{i}")' for i in ids)]
    return Policy.parse(f"(or {' '.join(parts)})")


def _environment(subject: Subject | None, resource: str, resource_type: str | None,
                 now: int | None) -> Environment:
    if subject is None:
        return Environment.build(resource_id=resource, resource_type=resource_type,
                                 action=ACTION, now=now)
    return Environment.build(identifier=subject.identifier,
                             has_credential=subject.has_credential,
                             subject=subject.attributes, resource_id=resource,
                             resource_type=resource_type, action=ACTION, now=now,
                             strict=False)


def _why(root: Explanation, limit: int = 3) -> str:
    """The root's reason, and the reasons of the (at most ``limit``) innermost sub-results that
    are not true, when they say more."""
    leaves: list[str] = []
    stack = [root]
    while stack and len(leaves) < limit:
        node = stack.pop()
        if node.is_value or node.result is True:
            continue
        inner = [c for c in node.children if not c.is_value]
        if inner:
            stack.extend(reversed(inner))
        elif node.reason and node is not root:
            leaves.append(node.reason)
    text = root.reason or "denied"
    return f"{text} ({'; '.join(leaves)})" if leaves else text


def _evaluate(policy: Policy, source: Source, what: str, subject: Subject | None,
              resource: str, resource_type: str | None, now: int | None) -> Decision:
    env = _environment(subject, resource, resource_type, now)
    if policy.evaluate(env):
        return Decision(True, f"allowed by the policy of {what}", source, policy.text,
                        resource, resource_type)
    why = policy.explain(env)
    reason = f"the policy of {what} is {why.outcome}: {_why(why)}"
    if subject is None:
        reason += " (the message came without a secure channel: it has no subject)"
    return Decision(False, reason, source, policy.text, resource, resource_type)


def decide(resource: str, resource_type: str | None, subject: Subject | None, *,
           snapshot: PolicySnapshot, authorities: frozenset[str] = frozenset(),
           open_: bool = False, default: Policy | None = None,
           now: int | None = None) -> Decision:
    """The decision for a message from another node to ``resource``.

    ``subject`` is the channel's peer (``None``: the message came without a secure channel);
    ``authorities`` the identifiers of the node's authorities; ``open_`` whether the resource
    is open until a policy is stored for it; ``default`` the authority default policy (built
    from ``authorities`` when not given).
    """
    found = snapshot.policy_for(resource, resource_type)
    if found is not None:
        policy, source = found
        what = f"resource {resource}" if source == "resource" else f"resource type {resource_type}"
        return _evaluate(policy, source, what, subject, resource, resource_type, now)
    type_text = f" or its type {resource_type}" if resource_type else ""
    if open_:
        return Decision(True, f"no policy is stored for {resource}{type_text}: it is open "
                              "until one is", "default", None, resource, resource_type)
    if authorities:
        policy = default if default is not None else default_policy(authorities)
        if subject is None:
            return Decision(False, f"no policy for {resource}{type_text}, and this node's "
                                   "default requires a credential from its authority: the message "
                                   "came without a secure channel (no subject)", "default",
                            policy.text, resource, resource_type)
        return _evaluate(policy, "default", "this node (its default: a credential from its "
                         "authority)", subject, resource, resource_type, now)
    if subject is None:
        return Decision(False, f"no policy for {resource}{type_text}, and this node (no "
                               "authority) lets through only secure-channel traffic: the message "
                               "came over plain TCP", "default", None, resource, resource_type)
    return Decision(True, f"no policy for {resource}{type_text}: this node (no authority) lets "
                          "through channel traffic its listener admitted", "default", None,
                    resource, resource_type)


_IDENTIFIER = re.compile(r"I[0-9a-f]{64}")
MAX_ATTRIBUTES: Final = 256
MAX_TEXT: Final = 1024


def decision_request(params: Mapping[str, Any]
                     ) -> tuple[str, str | None, Subject | None, int | None]:
    """``(resource, resource_type, subject, now)`` from a ``policy.decide`` request (hostile
    input: every field is checked; a bad one is a :class:`UsageError`). ``identifier``
    absent: the message came without a secure channel. ``attributes`` are credential
    attributes (so they imply ``has_credential``)."""
    resource = params.get("resource")
    if not isinstance(resource, str):
        raise UsageError("policy.decide needs 'resource' (a resource name)")
    check_name(resource, "resource name")
    resource_type = params.get("resource_type")
    if resource_type is not None:
        if not isinstance(resource_type, str):
            raise UsageError("policy.decide 'resource_type' must be a resource type name")
        check_name(resource_type, "resource type")
    identifier = params.get("identifier")
    attributes = params.get("attributes") or {}
    has_credential = params.get("has_credential")
    now = params.get("time")
    if now is not None and (type(now) is not int or not 0 <= now < 1 << 40):
        raise UsageError("policy.decide 'time' must be unix seconds")
    if not isinstance(attributes, dict) or len(attributes) > MAX_ATTRIBUTES or not all(
            isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= MAX_TEXT
            and len(v) <= MAX_TEXT for k, v in attributes.items()):
        raise UsageError(f"policy.decide 'attributes' must map at most {MAX_ATTRIBUTES} names to "
                         "strings")
    if has_credential is not None and type(has_credential) is not bool:
        raise UsageError("policy.decide 'has_credential' must be true or false")
    if identifier is None:
        if attributes or has_credential:
            raise UsageError("credential attributes need a subject: give its identifier")
        return resource, resource_type, None, now
    if not isinstance(identifier, str) or _IDENTIFIER.fullmatch(identifier) is None:
        raise UsageError("the identifier must be I followed by 64 lowercase hex digits")
    has = bool(attributes) if has_credential is None else has_credential
    if attributes and not has:
        raise UsageError("credential attributes imply has_credential")
    return resource, resource_type, Subject(identifier, has, dict(attributes)), now


def _from_peer(relay: RelayMessage) -> tuple[bool, SecureChannelLocalInfo | None]:
    """(came from another node, the channel's local info)."""
    msg = relay.message
    if not msg.local_info:
        return False, None
    info = channel_info(msg)
    if info is not None:
        return True, info
    return any(i.type_identifier == FLOW_CONTROL_LOCAL_INFO for i in msg.local_info), None


class NodeAccess:
    """A node's enforcement point: its policies in memory, its authorities and resources.

    ``access_control(name)`` is the incoming access control of the worker that serves resource
    ``name``. It is synchronous and reads only memory; :meth:`reload` refreshes the policies
    (the running node calls it when told to through its control endpoint).
    """

    def __init__(self, scope: str, *, authorities: Iterable[str] = (),
                 registry: ResourceRegistry | None = None,
                 snapshot: PolicySnapshot | None = None) -> None:
        self.scope = check_name(scope, "node name")
        self.authorities = frozenset(authorities)
        self.registry = registry if registry is not None else ResourceRegistry()
        self.snapshot = snapshot if snapshot is not None else PolicySnapshot(scope)
        self._default = default_policy(self.authorities) if self.authorities else None
        self.denied = 0
        self.allowed = 0
        self._revoked: Mapping[str, int] = {}
        self._revocation_listeners: list[RevocationListener] = []
        self.revoked_dropped = 0

    @property
    def revoked(self) -> Mapping[str, int]:
        """Identifiers revoked by an authority -> when (unix seconds): their channel messages
        are dropped, their new channels refused (:meth:`revocation_trust`), unless they present
        a credential created later. Replace the whole mapping to update it: the listeners of
        :meth:`on_revocation` are then told (e.g. portals close their revoked peers'
        connections)."""
        return self._revoked

    @revoked.setter
    def revoked(self, value: Mapping[str, int]) -> None:
        self._revoked = value
        for listener in list(self._revocation_listeners):
            try:
                listener(value)
            except Exception:  # one listener's failure does not keep the list from the others
                log.exception("node %s: a revocation listener failed", self.scope)

    def on_revocation(self, listener: RevocationListener) -> Callable[[], None]:
        """Call ``listener(revoked)`` each time :attr:`revoked` is replaced (synchronously, in
        the replacing call); returns the function that unregisters it."""
        if len(self._revocation_listeners) >= MAX_REVOCATION_LISTENERS:
            raise UsageError(f"node {self.scope} has {MAX_REVOCATION_LISTENERS} revocation "
                             "listeners (at most)")
        self._revocation_listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._revocation_listeners.remove(listener)

        return remove

    def is_revoked(self, peer: VerifiedPeer) -> bool:
        """Whether ``peer`` is revoked: listed in :attr:`revoked`, and none of its verified
        credentials was created after its revocation."""
        at = self._revoked.get(peer.identifier)
        if at is None:
            return False
        return not any(c.created_at > at for c in peer.credentials)

    def revocation_trust(self) -> NotRevoked:
        """A trust policy refusing peers in :attr:`revoked` (read at each handshake)."""
        return NotRevoked(self)

    async def reload(self, repository: PolicyRepository) -> int:
        return await self.snapshot.reload(repository)

    def decide(self, resource: str, subject: Subject | None, *,
               resource_type: str | None = None, now: int | None = None) -> Decision:
        """The decision for a message from another node (``subject`` ``None``: no channel)."""
        rtype = resource_type if resource_type is not None else self.registry.type_of(resource)
        return decide(resource, rtype, subject, snapshot=self.snapshot,
                      authorities=self.authorities, open_=self.registry.is_open(resource),
                      default=self._default, now=now)

    def check(self, resource: str, relay: RelayMessage) -> bool:
        """Whether ``relay`` may reach ``resource``; a denied message is logged with the reason."""
        remote, info = _from_peer(relay)
        if not remote:
            return True
        if self._revoked and info is not None and self.is_revoked(info.peer):
            self.denied += 1
            self.revoked_dropped += 1
            warn_limited(log, "revoked", "message from %s (channel %s) to %s dropped: %s is "
                         "revoked by its authority", safe_text(relay.source),
                         safe_text(info.channel), safe_text(resource), info.peer.identifier)
            return False
        snapshot = self.snapshot
        if self.registry.is_open(resource) and resource not in snapshot.resources:
            rtype = self.registry.type_of(resource)
            if rtype is None or rtype not in snapshot.types:  # the common case: no decision
                self.allowed += 1
                return True
        subject = None if info is None else subject_of(info.peer, self.authorities)
        try:
            decision = self.decide(resource, subject)
        except Exception:  # fail closed, whatever went wrong
            log.exception("access decision for %s failed; denying", safe_text(resource))
            self.denied += 1
            return False
        if decision.allowed:
            self.allowed += 1
            return True
        self.denied += 1
        warn_limited(log, f"policy_denied:{resource}", "message from %s%s to %s denied: %s",
                     safe_text(relay.source),
                     "" if subject is None else f" ({subject.identifier})",
                     safe_text(resource), safe_text(decision.reason, 400))
        return False

    def access_control(self, resource: str) -> ResourceAccessControl:
        return ResourceAccessControl(self, resource)


class NotRevoked(Trust):
    """The trust policy of :meth:`NodeAccess.revocation_trust`: refuses a peer whose identifier
    the node's current revocation list names (combine: ``access.revocation_trust() & trust``)."""

    __slots__ = ("access",)

    def __init__(self, access: NodeAccess) -> None:
        self.access = access

    def check(self, peer: VerifiedPeer, *, now: int | None = None) -> None:
        if self.access.revoked and self.access.is_revoked(peer):
            from trust.errors import UntrustedError

            warn_limited(log, "revoked_channel", "secure channel from %s refused: it is revoked "
                         "by its authority", peer.identifier)
            raise UntrustedError(f"{peer.identifier} is revoked by its authority")

    def __repr__(self) -> str:
        return f"NotRevoked({self.access.scope})"


class ResourceAccessControl:
    """The incoming access control of one resource's worker (``__call__(relay) -> bool``)."""

    __slots__ = ("access", "resource")

    def __init__(self, access: NodeAccess, resource: str) -> None:
        self.access = access
        self.resource = check_name(resource, "resource name")

    def __call__(self, relay: RelayMessage) -> bool:
        if not relay.message.local_info:  # a local sender: not checked
            return True
        return self.access.check(self.resource, relay)
