"""The handshake state machines, driven with random and mutated messages at every step, raise
nothing but the toolkit's typed errors (and never complete)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.channels import vectors as v
from tests.channels.helpers import NOW, appendix_b_identities, vector_keys
from tests.strategies import mutations_of
from trust.channels import HandshakeState, Initiator, Responder
from trust.errors import TrustError

_SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MESSAGES = [v.IDENTITY_M1, v.IDENTITY_M2, v.IDENTITY_M3]
inputs = mutations_of(MESSAGES) | st.binary(max_size=600) | st.sampled_from(MESSAGES)


def _feed(machine: Initiator | Responder, data: bytes) -> None:
    try:
        machine.receive(data, now=NOW)
    except TrustError:
        # a refused message fails the handshake for good (a completed one stays complete)
        assert machine.state in (HandshakeState.FAILED, HandshakeState.COMPLETE)


@_SETTINGS
@given(st.lists(inputs, min_size=1, max_size=4))
def test_responder_fuzz(messages: list[bytes]) -> None:
    _, _, _, r_e = vector_keys()
    _, r_id = appendix_b_identities()
    res = Responder(r_id, ephemeral=r_e)
    for m in messages:
        _feed(res, m)
    if res.state is HandshakeState.COMPLETE:
        assert v.IDENTITY_M1 in messages and v.IDENTITY_M3 in messages


@_SETTINGS
@given(st.lists(inputs, min_size=1, max_size=3))
def test_initiator_fuzz(messages: list[bytes]) -> None:
    _, i_e, _, _ = vector_keys()
    i_id, _ = appendix_b_identities()
    ini = Initiator(i_id, ephemeral=i_e)
    ini.start()
    for m in messages:
        _feed(ini, m)
    if ini.state is HandshakeState.COMPLETE:
        assert v.IDENTITY_M2 in messages


@_SETTINGS
@given(inputs)
def test_responder_after_message_1(message: bytes) -> None:
    _, _, _, r_e = vector_keys()
    _, r_id = appendix_b_identities()
    res = Responder(r_id, ephemeral=r_e)
    res.receive(v.IDENTITY_M1, now=NOW)
    _feed(res, message)
    assert (res.state is HandshakeState.COMPLETE) == (message == v.IDENTITY_M3)
