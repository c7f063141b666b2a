"""RevocationState / RevocationPoller: newer signed lists are taken; a lower version, a bad
signature, another authority's list or garbage is refused and changes nothing; a failed refresh
keeps the last list enforced and is logged."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.enrollment_client.helpers import Authority, authority, party, run, until
from trust.enrollment.messages.revocation_list import Revoked
from trust.enrollment.revocation import build_revocation_list, sign_revocation_list
from trust.enrollment.revocation_client import (
    RevocationListRefused,
    RevocationPoller,
    RevocationSnapshot,
    RevocationState,
)
from trust.enrollment.signer import AuthoritySigner
from trust.errors import DecodeError, UntrustedError, VerificationError
from vaults.software import SoftwareVault


async def signed(auth: Authority, version: int, revoked: dict[str, int], *,
                 signer: Authority | None = None) -> bytes:
    s = signer or auth
    data = build_revocation_list(s.identity, version,
                                 [Revoked(i, at) for i, at in revoked.items()])
    return (await sign_revocation_list(data, AuthoritySigner(s.identity, s.vault, s.signing_key,
                                                             s.signing_attestation))).encode()


def test_newer_lists_are_taken_older_forged_and_foreign_ones_refused() -> None:
    async def main() -> None:
        vault = SoftwareVault()
        auth, other = await authority(vault), await authority(vault)
        alice, bob = await party(vault), await party(vault)
        now = int(time.time())
        state = RevocationState([auth.identity])
        assert state.version == -1 and state.revoked == {}
        assert state.apply(await signed(auth, 3, {alice.identifier: now}))
        assert state.version == 3 and state.revoked == {alice.identifier: now}
        held = state.snapshot

        v2 = await signed(auth, 2, {})
        with pytest.raises(RevocationListRefused, match="older"):
            state.apply(v2)
        same_version_other_content = await signed(auth, 3, {bob.identifier: now})
        with pytest.raises(RevocationListRefused, match="differs"):
            state.apply(same_version_other_content)
        assert not state.apply(await signed(auth, 3, {alice.identifier: now}))  # re-signed: same

        good = await signed(auth, 9, {})
        # the list of another authority, and one naming ours but signed by the other's key
        with pytest.raises(UntrustedError):
            state.apply(await signed(other, 10, {}))
        with pytest.raises((UntrustedError, VerificationError)):
            state.apply(await signed(auth, 10, {}, signer=other))
        for garbage in (b"", b"\x83", b"\xff" * 64, good + b"\x00", good[:-1]):
            with pytest.raises(DecodeError):
                state.apply(garbage)
        assert state.snapshot is held and state.version == 3

    run(main)


def test_a_list_with_a_changed_signature_byte_is_refused() -> None:
    async def main() -> None:
        vault = SoftwareVault()
        auth = await authority(vault)
        state = RevocationState([auth.identity])
        good = await signed(auth, 1, {})
        from trust.enrollment.revocation import SignedRevocationList

        decoded = SignedRevocationList.decode(good)
        sig = decoded.signature.data
        i = good.index(sig)
        forged = good[:i] + bytes([sig[0] ^ 1]) + good[i + 1:]
        with pytest.raises(VerificationError, match="signature"):
            state.apply(forged)
        assert state.snapshot is None
        data = decoded.data
        j = good.index(data) + len(data) - 1     # the last byte of the signed data changed
        tampered = good[:j] + bytes([good[j] ^ 1]) + good[j + 1:]
        with pytest.raises((VerificationError, DecodeError)):
            state.apply(tampered)
        assert state.apply(good) and state.version == 1

    run(main)


def test_a_failed_refresh_keeps_enforcing_the_last_list_and_logs_it(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        vault = SoftwareVault()
        auth, other = await authority(vault), await authority(vault)
        alice = await party(vault)
        now = int(time.time())
        v1 = await signed(auth, 1, {alice.identifier: now})
        answers: list[bytes | Exception] = [
            v1, OSError("connection refused"), await signed(other, 5, {}),
            await signed(auth, 0, {}), TimeoutError(), b"\x00junk\n\x1b[2J",
            await signed(auth, 2, {}),
        ]

        async def fetch() -> bytes:
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        updates: list[RevocationSnapshot] = []
        state = RevocationState([auth.identity])
        poller = RevocationPoller(state, fetch, 30, on_update=updates.append, name="n1")
        with caplog.at_level(logging.INFO, logger="trust.enrollment.revocation"):
            assert await poller.attempt()
            for _ in range(5):
                assert not await poller.attempt()
                assert state.version == 1 and state.revoked == {alice.identifier: now}
            assert await poller.attempt()
        assert [u.version for u in updates] == [1, 2] and state.revoked == {}
        assert poller.failures == 5 and poller.refused == 3 and poller.updates == 2
        text = caplog.text
        assert text.count("revocation list refresh failed (still enforcing version 1 (1 "
                          "revoked))") == 5
        assert "connection refused" in text and "\x1b" not in text
        assert "revocation list version 2" in text

    run(main)


def test_poller_pulls_every_interval_until_stopped() -> None:
    async def main() -> None:
        vault = SoftwareVault()
        auth = await authority(vault)
        lists = [await signed(auth, v, {}) for v in range(1, 4)]
        calls = 0

        async def fetch() -> bytes:
            nonlocal calls
            calls += 1
            return lists[min(calls, 3) - 1]

        state = RevocationState([auth.identity])
        poller = RevocationPoller(state, fetch, 0.05)
        await poller.start()
        assert state.version == 1          # the first pull happens in start()
        try:
            await until(lambda: state.version == 3 and calls >= 4, timeout=3)
        finally:
            await poller.stop()
        seen = calls
        await asyncio.sleep(0.2)
        assert calls == seen and poller.refreshes == seen
        # wait=False: start returns before the first pull, which follows in the background
        background = RevocationPoller(RevocationState([auth.identity]), fetch, 30)
        await background.start(wait=False)
        try:
            assert background.refreshes == 0 and background.state.version == -1
            await until(lambda: background.state.version == 3, timeout=3)
        finally:
            await background.stop()

    run(main)
