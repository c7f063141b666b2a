"""Keep a node's credential fresh: fetch it from its authority's credential issuer, refresh it in
the background before it expires, and hand each new one to subscribers (a node presents it on its
open channels with RefreshCredentials and in the channels it opens or accepts afterwards).

Schedule (as Ockam's ``RemoteCredentialRetriever``, adapted to short lifetimes): a credential
valid from ``created_at`` to ``expires_at`` is refreshed at ``expires_at - lead`` with
``lead = min(REFRESH_LEAD, (expires_at - created_at) / 3)`` (``REFRESH_LEAD`` is Ockam's 60 s
clock-skew gap plus its 60 s proactive gap). A missing credential, or one already inside its lead,
is fetched at once. A failed fetch is logged and retried after ``retry`` seconds, doubling up to
``max_retry``; the credential held meanwhile stays in use until it expires (then nothing is
presented: the peers' policies decide). Every fetched credential is verified (issuer, signature,
subject, window) before it replaces the one held; one that does not verify counts as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from trust.credentials.verification import VerifiedCredential
from trust.errors import TrustError, UsageError
from trust.logsafe import safe_text, warn_limited
from trust.models.credential import CredentialAndPurposeKey

__all__ = [
    "DEFAULT_RETRY",
    "MAX_RETRY",
    "REFRESH_LEAD",
    "CredentialRefresher",
    "refresh_delay",
]

log = logging.getLogger("trust.enrollment.credentials")

REFRESH_LEAD: Final = 120.0
"""Seconds before expiry a credential is refreshed at most (60 s skew + 60 s proactive gap)."""
DEFAULT_RETRY: Final = 10.0
"""Seconds before a failed fetch is tried again (doubling on each failure)."""
MAX_RETRY: Final = 300.0
"""Longest wait between two attempts after failures."""
DEFAULT_TIMEOUT: Final = 30.0
"""Seconds a fetch may take."""

Fetch = Callable[[], Awaitable[CredentialAndPurposeKey]]
Verify = Callable[[CredentialAndPurposeKey], VerifiedCredential]
Subscriber = Callable[[CredentialAndPurposeKey], Awaitable[None]]


def refresh_delay(verified: VerifiedCredential | None, now: float, *,
                  lead: float = REFRESH_LEAD) -> float:
    """Seconds from ``now`` until ``verified`` should be refreshed (0: at once)."""
    if verified is None:
        return 0.0
    lifetime = max(0, verified.expires_at - verified.created_at)
    at = verified.expires_at - min(lead, lifetime / 3)
    return max(0.0, at - now)


class CredentialRefresher:
    """Holds a node's current credential and keeps it fresh (see the module docstring).

    ``fetch`` gets a new credential (e.g. over a secure channel to the authority's credential
    issuer), ``verify`` checks it (it raises a :class:`TrustError` for one that must not be
    used). ``current``: the credential held at start (verified again). ``subscribe`` adds an
    ``async (credential)`` callback run, in order, on every new credential."""

    def __init__(self, fetch: Fetch, verify: Verify, *,
                 current: CredentialAndPurposeKey | None = None, lead: float = REFRESH_LEAD,
                 retry: float = DEFAULT_RETRY, max_retry: float = MAX_RETRY,
                 timeout: float = DEFAULT_TIMEOUT, clock: Callable[[], float] = time.time,
                 name: str = "node") -> None:
        if not (lead > 0 and 0 < retry <= max_retry and timeout > 0):
            raise UsageError("lead, retry, max_retry and timeout must be positive "
                             "(retry at most max_retry)")
        self._fetch = fetch
        self._verify = verify
        self.lead = lead
        self.retry = retry
        self.max_retry = max_retry
        self.timeout = timeout
        self._clock = clock
        self.name = name
        self._subscribers: list[Subscriber] = []
        self.credential: CredentialAndPurposeKey | None = None
        self.verified: VerifiedCredential | None = None
        self.refreshes = 0
        """New credentials taken (fetched and verified)."""
        self.failures = 0
        """Fetches that failed or fetched a credential that did not verify."""
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        if current is not None:
            try:
                self.verified = verify(current)
                self.credential = current
            except TrustError as e:
                log.warning("%s: the recorded credential is not used: %s", name, safe_text(e))

    def subscribe(self, callback: Subscriber) -> None:
        self._subscribers.append(callback)

    def due_in(self) -> float:
        """Seconds until the next refresh (0: due now)."""
        return refresh_delay(self.verified, self._clock(), lead=self.lead)

    def valid(self) -> bool:
        """Whether the credential held has not expired."""
        return self.verified is not None and self.verified.expires_at > self._clock()

    async def refresh(self) -> CredentialAndPurposeKey:
        """Fetch, verify and take a new credential now, then tell the subscribers; a failure
        raises (and changes nothing)."""
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout):
                    credential = await self._fetch()
                verified = self._verify(credential)
            except (TrustError, OSError, TimeoutError) as e:
                self.failures += 1
                self.last_error = str(e) or type(e).__name__
                raise
            self.credential, self.verified = credential, verified
            self.refreshes += 1
            self.last_error = None
            log.info("%s: new credential from %s, valid until %d", self.name, verified.issuer,
                     verified.expires_at)
            for callback in list(self._subscribers):
                try:
                    await callback(credential)
                except Exception:  # a subscriber's failure must not stop the refreshes
                    log.exception("%s: presenting the new credential failed", self.name)
            return credential

    async def _attempt(self) -> bool:
        try:
            await self.refresh()
        except (TrustError, OSError, TimeoutError) as e:
            held = ("still presenting the current one until it expires" if self.valid()
                    else "no valid credential is presented")
            warn_limited(log, "credential_refresh", "%s: fetching a credential failed (%s): %s",
                         self.name, held, safe_text(str(e) or type(e).__name__, 400))
            return False
        return True

    async def start(self, *, wait: bool = True) -> None:
        """Fetch at once when due (a failure is logged, not raised; ``wait=False``: in the
        background task), then keep refreshing in a background task until :meth:`stop`."""
        if self._task is not None:
            return
        ok = True
        if wait and self.due_in() <= 0:
            ok = await self._attempt()
        self._task = asyncio.get_running_loop().create_task(
            self._run(None if ok else self.retry), name=f"credential refresh {self.name}")

    async def _run(self, first_delay: float | None) -> None:
        backoff = self.retry
        delay = self.due_in() if first_delay is None else first_delay
        while True:
            await asyncio.sleep(delay)
            if await self._attempt():
                backoff = self.retry
                delay = max(self.due_in(), 0.05)
            else:
                delay = backoff
                if self.verified is not None:  # retry before the held one expires, if possible
                    left = self.verified.expires_at - self._clock()
                    if left > 1:
                        delay = min(delay, left / 2)
                backoff = min(backoff * 2, self.max_retry)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
