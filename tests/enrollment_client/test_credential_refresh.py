"""CredentialRefresher: fetched when missing, refreshed in the background before expiry,
verified before use, failures retried while the held credential stays in use."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.enrollment_client.helpers import authority, party, run, until
from trust.credentials.verification import verify_credential
from trust.enrollment.credential_refresh import CredentialRefresher, refresh_delay
from trust.errors import UntrustedError, VerificationError
from trust.models.credential import CredentialAndPurposeKey
from vaults.software import SoftwareVault


def test_refreshed_in_the_background_before_expiry_and_subscribers_get_it() -> None:
    async def main() -> None:
        vault = SoftwareVault()
        auth, alice = await authority(vault), await party(vault)
        start = int(time.time())
        short = await auth.issue(alice.identity, {"role": "member"}, ttl=3, now=start)
        fetched_at: list[float] = []

        async def fetch() -> CredentialAndPurposeKey:
            fetched_at.append(time.time())
            return await auth.issue(alice.identity, {"role": "member"}, ttl=3600)

        seen: list[CredentialAndPurposeKey] = []

        async def present(c: CredentialAndPurposeKey) -> None:
            seen.append(c)

        refresher = CredentialRefresher(
            fetch, lambda c: verify_credential(c, [auth.identity],
                                               expected_subject=alice.identity),
            current=short, name="alice")
        refresher.subscribe(present)
        assert refresher.credential is short and 1.0 < refresher.due_in() <= 2.0
        await refresher.start()
        assert fetched_at == []  # not due yet: nothing fetched at start
        try:
            await until(lambda: refresher.refreshes == 1, timeout=4)
        finally:
            await refresher.stop()
        # fetched before the short credential expired, a third of its lifetime ahead
        assert start + 1.5 <= fetched_at[0] < start + 3
        assert seen == [refresher.credential] and refresher.credential is not short
        assert refresher.verified is not None and refresher.verified.expires_at > start + 3000
        assert refresher.failures == 0 and refresher.valid()

    run(main)


def test_schedule_follows_ockam_for_long_credentials() -> None:
    async def main() -> None:
        vault = SoftwareVault()
        auth, alice = await authority(vault), await party(vault)
        now = int(time.time())
        hour = verify_credential(await auth.issue(alice.identity, {}, ttl=3600, now=now),
                                 [auth.identity])
        assert refresh_delay(hour, now) == pytest.approx(3600 - 120)
        assert refresh_delay(hour, now + 3590) == 0.0
        assert refresh_delay(None, now) == 0.0

    run(main)


def test_missing_credential_is_fetched_at_start_and_bad_ones_are_refused(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        vault = SoftwareVault()
        auth, alice, bob = await authority(vault), await party(vault), await party(vault)
        answers: list[CredentialAndPurposeKey | Exception] = [
            await auth.issue(bob.identity, {"role": "x"}),        # about someone else
            OSError("connection refused"),
            await auth.issue(alice.identity, {"role": "member"}),
        ]

        async def fetch() -> CredentialAndPurposeKey:
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        def verify(c: CredentialAndPurposeKey):  # type: ignore[no-untyped-def]
            return verify_credential(c, [auth.identity], expected_subject=alice.identity)

        refresher = CredentialRefresher(fetch, verify, retry=0.1, max_retry=0.2, name="alice")
        assert refresher.credential is None and refresher.due_in() == 0
        with caplog.at_level(logging.WARNING, logger="trust.enrollment.credentials"):
            await refresher.start()           # the first answer does not verify: not taken
            try:
                assert refresher.credential is None and refresher.failures == 1
                await until(lambda: refresher.refreshes == 1, timeout=3)
            finally:
                await refresher.stop()
        assert refresher.failures == 2
        assert refresher.verified is not None and refresher.verified.subject == alice.identifier
        text = caplog.text
        assert "fetching a credential failed" in text and "connection refused" in text
        assert "no valid credential is presented" in text

    run(main)


def test_a_failed_refresh_keeps_the_held_credential_and_raises() -> None:
    async def main() -> None:
        vault = SoftwareVault()
        auth, alice = await authority(vault), await party(vault)
        other = await authority(vault)
        held = await auth.issue(alice.identity, {"role": "member"})
        foreign = await other.issue(alice.identity, {"role": "admin"})

        async def fetch() -> CredentialAndPurposeKey:
            return foreign

        refresher = CredentialRefresher(
            fetch, lambda c: verify_credential(c, [auth.identity]), current=held)
        with pytest.raises((UntrustedError, VerificationError)):
            await refresher.refresh()
        assert refresher.credential is held and refresher.failures == 1 and refresher.last_error

        async def slow() -> CredentialAndPurposeKey:
            await asyncio.sleep(5)
            return held

        slow_refresher = CredentialRefresher(slow, lambda c: verify_credential(c, [auth.identity]),
                                             current=held, timeout=0.1)
        with pytest.raises(TimeoutError):
            await slow_refresher.refresh()
        assert slow_refresher.credential is held

    run(main)
