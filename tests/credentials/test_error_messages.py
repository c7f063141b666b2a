"""Verification errors say when (issue 10, item 7): an expired or not-yet-valid credential or
attestation names its time and the time it was checked at, the same words warm or cold."""

from __future__ import annotations

import re

import pytest

from tests.credentials.helpers import ATT_EXPIRES, NOW, make_world, run
from trust.credentials.verification import clear_cache, verify_credential
from trust.errors import VerificationError
from trust.models.primitives import time_text


def _message(f: object) -> str:
    with pytest.raises(VerificationError) as e:
        f()  # type: ignore[operator]
    return str(e.value)


def test_time_text() -> None:
    assert time_text(1_800_000_000) == "1800000000 (2027-01-15 08:00:00 UTC)"
    assert time_text(2**64 - 1) == str(2**64 - 1)  # beyond any calendar: seconds only


def test_an_expired_credential_says_when_and_the_time_used() -> None:
    world = run(make_world())
    cpk = run(world.issue(ttl=100))
    later = NOW + 101
    text = _message(lambda: verify_credential(cpk, [world.issuer], now=later))
    assert text == (f"the credential expired at {time_text(NOW + 100)}, checked at "
                    f"{time_text(later)}")
    early = NOW - 1_000
    text = _message(lambda: verify_credential(cpk, [world.issuer], now=early))
    assert f"created at {time_text(NOW)}, checked at {time_text(early)}" in text
    assert "not valid yet" in text


@pytest.mark.parametrize("warm", [False, True])
def test_an_expired_attestation_says_when_warm_or_cold(warm: bool) -> None:
    world = run(make_world())
    cpk = run(world.issue(ttl=100))
    clear_cache()
    if warm:
        verify_credential(cpk, [world.issuer], now=NOW)  # the attestation's checks are cached
    late = ATT_EXPIRES + 1
    text = _message(lambda: verify_credential(cpk, [world.issuer], now=late, cache=warm))
    assert text == f"the attestation expired at {time_text(ATT_EXPIRES)}, checked at {time_text(late)}"
    created = world.attestation.attestation_data.created_at
    early = created - 3_600
    text = _message(lambda: verify_credential(cpk, [world.issuer], now=early, cache=warm))
    assert re.fullmatch(rf"the attestation was created in the future: at {re.escape(time_text(created))}"
                        rf", checked at {re.escape(time_text(early))} \(60 s of clock drift allowed\)",
                        text), text
