"""The relying side of revocation: pull an authority's signed, versioned revocation list and
keep enforcing the newest one that verified.

* :class:`RevocationState` holds the last list accepted from the node's authorities.
  :meth:`RevocationState.apply` verifies a list (signed by one of the authorities, see
  :mod:`trust.enrollment.revocation`) and takes it only when its version is higher than the one
  held; a lower version (a replay or a stale replica) or a bad signature is refused with a typed
  error and changes nothing. The same version again is accepted only with the same identifiers
  (it is the same list, re-signed).
* :class:`RevocationPoller` fetches the list every ``interval`` seconds (``node create
  --revocation-refresh``, default 30 s) and applies it; when a fetch or a list fails it logs the
  failure (rate-limited, escaped) and the node keeps enforcing the last list accepted. Each list
  taken is passed to ``on_update`` (a node sets :attr:`trust.channels.access.NodeAccess.revoked`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from trust.errors import DecodeError, TrustError, UntrustedError, UsageError, VerificationError
from trust.identities.identity import Identity
from trust.logsafe import safe_text, warn_limited

__all__ = [
    "DEFAULT_REFRESH",
    "MAX_LIST_BYTES",
    "RevocationListRefused",
    "RevocationPoller",
    "RevocationSnapshot",
    "RevocationState",
]

log = logging.getLogger("trust.enrollment.revocation")

DEFAULT_REFRESH: Final = 30.0
"""Seconds between two pulls of the revocation list (``--revocation-refresh``)."""
MAX_LIST_BYTES: Final = 4 * 1024 * 1024
"""Largest encoded revocation list accepted."""
DEFAULT_TIMEOUT: Final = 10.0
"""Seconds one pull may take (at most the interval)."""


class RevocationListRefused(VerificationError):
    """A revocation list that verified but is older than (or differs from, at the same version)
    the one held."""


@dataclass(frozen=True, slots=True)
class RevocationSnapshot:
    """One verified revocation list: who signed it, its version, and the identifiers it revokes
    with when (each revokes the credentials of that identifier created at or before then)."""

    authority: str
    version: int
    revoked: Mapping[str, int]
    issued_at: int = 0


Verify = Callable[[bytes, Sequence[Identity]], RevocationSnapshot]
"""Decode and verify an encoded list against the authorities (raises :class:`TrustError`)."""


def verify_list(data: bytes, authorities: Sequence[Identity]) -> RevocationSnapshot:
    """Verify an encoded list with the authority core (:mod:`trust.enrollment.revocation`):
    signed by the attested credential-signing key of the authority it names, which must be one
    of ``authorities``."""
    from trust.enrollment.revocation import SignedRevocationList, verify_revocation_list

    signed = SignedRevocationList.decode(data)
    named = signed.content.authority
    authority = next((a for a in authorities if a.identifier == named), None)
    if authority is None:
        raise UntrustedError(f"the revocation list is signed by {named}, not by an authority "
                             "this node trusts")
    verified = verify_revocation_list(signed, authority)
    return RevocationSnapshot(verified.authority, verified.version,
                              {e.identifier: e.revoked_at for e in verified.revoked},
                              verified.issued_at)


class RevocationState:
    """The newest revocation list accepted from ``authorities`` (see the module docstring)."""

    def __init__(self, authorities: Iterable[Identity], *, verify: Verify = verify_list) -> None:
        self.authorities = tuple(authorities)
        if not self.authorities:
            raise UsageError("revocation lists need the authority that signs them")
        self._verify = verify
        self.snapshot: RevocationSnapshot | None = None
        self.raw: bytes | None = None
        """The encoded list held (signed: it can be kept and verified again)."""

    @property
    def version(self) -> int:
        """The version held (-1: none yet)."""
        return -1 if self.snapshot is None else self.snapshot.version

    @property
    def revoked(self) -> Mapping[str, int]:
        """Identifier -> revoked at, of the list held (empty: none held)."""
        return {} if self.snapshot is None else self.snapshot.revoked

    def check(self, data: bytes) -> RevocationSnapshot:
        """Verify ``data`` and compare it with the list held; return it (nothing changes). A
        list that does not decode or verify, or that is older than the one held, raises."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError("a revocation list is bytes")
        if len(data) > MAX_LIST_BYTES:
            raise DecodeError(f"the revocation list is larger than {MAX_LIST_BYTES} bytes")
        snap = self._verify(bytes(data), self.authorities)
        held = self.snapshot
        if held is not None:
            if snap.version < held.version:
                raise RevocationListRefused(f"revocation list version {snap.version} is older "
                                            f"than the version {held.version} held; refused")
            if snap.version == held.version and snap.revoked != held.revoked:
                raise RevocationListRefused(f"revocation list version {snap.version} differs "
                                            "from the list of the same version held; refused")
        return snap

    def apply(self, data: bytes) -> bool:
        """Take ``data`` when it verifies and is newer; return whether the list held changed."""
        snap = self.check(data)
        held = self.snapshot
        if held is not None and snap.version == held.version:
            return False
        self.snapshot, self.raw = snap, bytes(data)
        return True


class RevocationPoller:
    """Pulls the list with ``fetch`` every ``interval`` seconds into ``state``; ``on_update``
    gets every list taken. Failures are logged and counted; the last list stays enforced."""

    def __init__(self, state: RevocationState, fetch: Callable[[], Awaitable[bytes]],
                 interval: float = DEFAULT_REFRESH, *,
                 on_update: Callable[[RevocationSnapshot], None] | None = None,
                 timeout: float | None = None, clock: Callable[[], float] = time.time,
                 name: str = "node") -> None:
        if not interval > 0:
            raise UsageError("the revocation refresh interval must be positive")
        self.state = state
        self._fetch = fetch
        self.interval = float(interval)
        self.timeout = min(DEFAULT_TIMEOUT, max(self.interval, 1.0)) if timeout is None else timeout
        self._on_update = on_update
        self._clock = clock
        self.name = name
        self.refreshes = 0
        """Pulls that verified (newer or the same list)."""
        self.updates = 0
        """Lists taken (newer versions)."""
        self.failures = 0
        """Pulls that failed: no answer, or a list that was refused."""
        self.refused = 0
        """Lists refused: bad signature, undecodable, older version."""
        self.last_error: str | None = None
        self.last_success: float | None = None
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> bool:
        """Pull and apply once; raise on failure (nothing changes). True: a newer list."""
        try:
            async with asyncio.timeout(self.timeout):
                data = await self._fetch()
        except TimeoutError:
            raise TimeoutError(f"no revocation list within {self.timeout:g}s") from None
        try:
            changed = self.state.apply(data)
        except (TrustError, ValueError):
            self.refused += 1
            raise
        self.refreshes += 1
        self.last_success = self._clock()
        if changed:
            self.updates += 1
            snap = self.state.snapshot
            assert snap is not None
            log.info("%s: revocation list version %d from %s: %d identifiers revoked", self.name,
                     snap.version, snap.authority, len(snap.revoked))
            if self._on_update is not None:
                self._on_update(snap)
        return changed

    async def attempt(self) -> bool:
        """:meth:`refresh`, with a failure logged (rate-limited) and counted instead of raised."""
        try:
            await self.refresh()
        except (TrustError, ValueError, OSError, TimeoutError) as e:
            self.failures += 1
            self.last_error = str(e) or type(e).__name__
            held = self.state.snapshot
            keeping = ("no list held yet" if held is None else
                       f"still enforcing version {held.version} "
                       f"({len(held.revoked)} revoked)")
            warn_limited(log, "revocation_refresh", "%s: revocation list refresh failed (%s): %s",
                         self.name, keeping, safe_text(self.last_error, 400))
            return False
        return True

    async def start(self, *, wait: bool = True) -> None:
        """Pull once now (``wait=False``: in the background task too, so a slow authority does
        not hold the caller up), then every ``interval`` seconds in a background task."""
        if self._task is not None:
            return
        if wait:
            await self.attempt()
        self._task = asyncio.get_running_loop().create_task(
            self._run(first=not wait), name=f"revocation refresh {self.name}")

    async def _run(self, *, first: bool = False) -> None:
        if first:
            await self.attempt()
        while True:
            await asyncio.sleep(self.interval)
            await self.attempt()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
