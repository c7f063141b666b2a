"""Stream channels against a hostile producer on their streams (the attacker review): forged
records with the channel's id, channels past 2^20 records, poisoned openings, hostile saved
states."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.channels.node_helpers import live
from tests.streams.helpers import aio, channel_states
from trust.channels import Initiator, PeerAuthenticator, Responder, SendMessage, TrustIdentifier
from trust.channels.records import Encryptor
from trust.errors import DecodeError
from trust.models.cbor import dumps
from trust.node import Node
from trust.storage.stream_channels import SqlChannelStates
from trust.streams.channel import HANDSHAKE_1, HANDSHAKE_2, RECORD, StreamChannel
from trust.streams.client import StreamClient
from trust.streams.memory import MemoryStreams
from trust.streams.service import StreamService


@pytest.fixture(autouse=True)
def _parties() -> None:
    live()


async def _streams(node: Node) -> StreamClient:
    await node.start_worker("stream_service", StreamService(MemoryStreams()))
    client = StreamClient(node, "stream_service", timeout=5)
    await client.create("ab")
    await client.create("ba")
    return client


async def _open(node: Node, tmp: Path, *, bob_trusts: str | None = None
                ) -> tuple[StreamClient, StreamChannel, StreamChannel, SqlChannelStates]:
    w = live()
    client = await _streams(node) if bob_trusts is None else StreamClient(node, "stream_service",
                                                                          timeout=5)
    a_states = channel_states(tmp, "a")
    b_states = channel_states(tmp, "b")
    alice, bob = await asyncio.gather(
        StreamChannel.initiate(client, w.alice, PeerAuthenticator(), a_states, "to-bob",
                               out_stream="ab", in_stream="ba", timeout=5),
        StreamChannel.accept(client, w.bob, PeerAuthenticator(
            TrustIdentifier(bob_trusts) if bob_trusts else None), b_states, "from-alice",
                             in_stream="ab", out_stream="ba", timeout=5))
    return client, alice, bob, a_states


@pytest.mark.parametrize("jump", [1000, (1 << 64) - 1])
@aio()
async def test_a_forged_record_with_the_channel_id_does_not_move_the_senders_nonce(
        jump: int, tmp_path: Path) -> None:
    node = await Node.create("streams-forged-nonce")
    try:
        client, alice, bob, a_states = await _open(node, tmp_path)
        await alice.send([b"m1"])
        r = await bob.receive(timeout=0.5)
        await bob.commit(r)
        assert r.messages == [b"m1"]
        await client.push("ab", [bytes([RECORD]) + alice.channel_id + jump.to_bytes(8, "big")
                                 + b"x" * 16])
        alice2 = await StreamChannel.resume(client, a_states, "to-bob")  # after a restart
        assert alice2.rejected == 1
        await alice2.send([b"m2", b"m3"])
        r = await bob.receive(timeout=0.5)
        assert r.messages == [b"m2", b"m3"]
    finally:
        await node.stop()


@aio()
async def test_resume_skips_this_sides_own_records_pushed_after_its_last_save(tmp_path: Path) -> None:
    node = await Node.create("streams-own-skip")
    try:
        client, alice, bob, a_states = await _open(node, tmp_path)
        await alice.send([b"m1", b"m2", b"m3"])  # pushed, never saved (killed before a save)
        alice2 = await StreamChannel.resume(client, a_states, "to-bob")
        assert alice2.rejected == 0
        await alice2.send([b"m4"])
        r = await bob.receive(timeout=0.5)
        assert r.messages == [b"m1", b"m2", b"m3", b"m4"] and r.duplicates == 0
    finally:
        await node.stop()


@aio()
async def test_a_channel_past_2_20_records_resumes(tmp_path: Path) -> None:
    node = await Node.create("streams-big-nonce")
    try:
        client, alice, _bob, a_states = await _open(node, tmp_path)
        key0, _ = alice._encryptor.state
        # a stand-in for 2^20 records sent over the channel's life
        alice._encryptor = Encryptor(key0, nonce=1 << 20)
        await alice.send([b"one more"])
        await a_states.save("to-bob", alice._state(alice._decryptor, alice.in_index))
        await alice.send([b"and one more"])  # pushed after the save
        want = alice._encryptor.state
        alice2 = await StreamChannel.resume(client, a_states, "to-bob")
        assert alice2._encryptor.state == want
        reference = Encryptor(key0, nonce=1 << 20)
        reference.encrypt(b"1")
        reference.encrypt(b"2")
        assert alice2._encryptor.encrypt(b"x") == reference.encrypt(b"x")
    finally:
        await node.stop()


@pytest.mark.parametrize("state", [
    b"", b"\xa0", dumps([2]), dumps([9] + [0] * 12), dumps("x" * 10),
    dumps([2, True, bytes(16), "ab", "ba", "p", {}, bytes(31), 0, 0, [bytes(32), None, 0, 0, 0], 0,
           False]),
    dumps([2, True, bytes(16), "ab", "ba", "p", {}, bytes(32), -1, 0, [bytes(32), None, 0, 0, 0], 0,
           False]),
    dumps([2, True, bytes(16), "ab", "ba", "p", {}, bytes(32), 0, 0, [bytes(32), None, 0, 0, 0], 0,
           1]),
    dumps([2, True, bytes(16), "ab", "ba", "p", {1: 2}, bytes(32), 0, 0, [bytes(32), None, 0, 0, 0],
           0, False]),
    dumps([2, True, bytes(16), "ab", "ba", "p", {}, bytes(32), 0, -5, [bytes(32), None, 0, 0, 0], 0,
           False]),
    dumps([1, True, bytes(16), "ab", "ba", "p", {}, bytes(32), (1 << 20) + 1, 0,
           [bytes(32), None, 0, 0, 0], 0, False]),
])
@aio()
async def test_a_hostile_saved_state_is_a_decode_error(state: bytes, tmp_path: Path) -> None:
    node = await Node.create("streams-bad-state")
    try:
        await node.start_worker("stream_service", StreamService(MemoryStreams()))
        client = StreamClient(node, "stream_service", timeout=5)
        states = channel_states(tmp_path, "a")
        await states.save("x", state)
        with pytest.raises(DecodeError):
            await StreamChannel.resume(client, states, "x")
    finally:
        await node.stop()



@pytest.mark.parametrize("body", [b"junk", b"", bytes(32), os.urandom(200)])
@aio()
async def test_a_bad_opening_record_does_not_block_accept(body: bytes, tmp_path: Path) -> None:
    node = await Node.create("streams-accept-poison")
    try:
        client = await _streams(node)
        await client.push("ab", [bytes([HANDSHAKE_1]) + os.urandom(16) + body])  # hostile
        _, alice, bob, _ = await _open(node, tmp_path, bob_trusts=live().alice.identifier)
        await alice.send([b"hi"])
        assert (await bob.receive(timeout=1)).messages == [b"hi"]
    finally:
        await node.stop()


@aio()
async def test_openings_never_finished_or_refused_do_not_block_accept(tmp_path: Path) -> None:
    node = await Node.create("streams-accept-pending")
    try:
        client = await _streams(node)
        w = live()
        # an opening that never sends message 3, and an untrusted initiator (refused), first
        await client.push("ab", [bytes([HANDSHAKE_1]) + os.urandom(16)
                                 + Initiator(w.carol, PeerAuthenticator()).start()])
        carol_states = channel_states(tmp_path, "c")
        b_states = channel_states(tmp_path, "b")
        a_states = channel_states(tmp_path, "a")
        bob_task = asyncio.create_task(StreamChannel.accept(
            client, w.bob, PeerAuthenticator(TrustIdentifier(w.alice.identifier)), b_states,
            "from-alice", in_stream="ab", out_stream="ba", timeout=5))
        # carol's handshake completes on her side (she trusts anyone); bob refuses her
        carol = await StreamChannel.initiate(client, w.carol, PeerAuthenticator(), carol_states,
                                             "c", out_stream="ab", in_stream="ba", timeout=5)
        alice = await StreamChannel.initiate(client, w.alice, PeerAuthenticator(), a_states,
                                             "to-bob", out_stream="ab", in_stream="ba", timeout=5)
        bob = await bob_task
        assert bob.peer_identifier == w.alice.identifier
        r = await carol.receive(timeout=1)
        assert carol.closed and r.messages == []
        await alice.send([b"hi"])
        assert (await bob.receive(timeout=1)).messages == [b"hi"]
    finally:
        await node.stop()


@aio()
async def test_a_forged_message_2_does_not_break_initiate(tmp_path: Path) -> None:
    node = await Node.create("streams-initiate-forged")
    try:
        client = await _streams(node)
        w = live()
        a_states = channel_states(tmp_path, "a")
        b_states = channel_states(tmp_path, "b")
        alice_task = asyncio.create_task(StreamChannel.initiate(
            client, w.alice, PeerAuthenticator(TrustIdentifier(w.bob.identifier)), a_states,
            "to-bob", out_stream="ab", in_stream="ba", timeout=5))
        while not (records := (await client.pull("ab", 0)).records):
            await asyncio.sleep(0.01)
        cid = records[0][1][1:17]
        # an attacker answers first: garbage, a record, and a real message 2 from carol (whom
        # alice does not trust), all under alice's channel id
        carol = Responder(w.carol, PeerAuthenticator())
        [m2] = [e.data for e in carol.receive(records[0][1][17:]) if isinstance(e, SendMessage)]
        await client.push("ba", [bytes([HANDSHAKE_2]) + cid + b"junk",
                                 bytes([RECORD]) + cid + bytes(40),
                                 bytes([HANDSHAKE_2]) + cid + m2])
        bob = await StreamChannel.accept(client, w.bob, PeerAuthenticator(), b_states,
                                         "from-alice", in_stream="ab", out_stream="ba", timeout=5)
        alice = await alice_task
        assert alice.peer_identifier == w.bob.identifier
        await alice.send([b"hi"])
        assert (await bob.receive(timeout=1)).messages == [b"hi"]
    finally:
        await node.stop()
