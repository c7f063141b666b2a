"""A sensor that is offline most of the time talks to a hub through a stream node, end-to-end
encrypted: the stream node (and its database) holds only ciphertext.

Three in-process nodes on 127.0.0.1. The "broker" node runs the stream service on an SQLite
file; the sensor and the hub reach it over TCP. They open a secure channel over two streams
(sensor→hub, hub→sensor), each checking who is at the other end (identities and their
secure-channel keys in an in-memory vault, for brevity). The hub goes offline (its
channel state saved in its own database), the sensor pushes 1,000 readings, and a new hub
process-to-be resumes the same channel from the saved state and catches up, each reading once.

Run: python examples/streams.py
"""

import asyncio
import sqlite3
import tempfile

from trust.channels import (
    ChannelIdentity,
    IdentityAndCredentials,
    PeerAuthenticator,
    TrustIdentifier,
    VaultX25519Key,
)
from trust.identities.creation import create_identity
from trust.identities.identity import Identity
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.purpose_key import PurposePublicKey
from trust.node import Node
from trust.routing import Address, Route
from trust.storage.sql import database
from trust.storage.stream_channels import SqlChannelStates
from trust.storage.streams import SqlStreams
from trust.streams.channel import StreamChannel
from trust.streams.client import StreamClient
from trust.streams.service import StreamService
from vaults.keys import KeyType
from vaults.software import SoftwareVault


async def party(vault: SoftwareVault) -> tuple[Identity, ChannelIdentity]:
    """A new identity and its side of secure channels (an attested X25519 static key)."""
    key = await vault.generate_key(KeyType.ED25519)
    identity = await create_identity(vault, key)
    static = VaultX25519Key(vault, vault.generate_x25519(persist=False))
    attestation = await attest_purpose_key(identity, vault, key,
                                           PurposePublicKey.secure_channel(static.public))
    return identity, ChannelIdentity(static, IdentityAndCredentials.of(identity.export(), attestation))


async def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        vault = SoftwareVault()
        broker_db = database(f"sqlite:///{home}/broker.sqlite")
        hub_db = database(f"sqlite:///{home}/hub.sqlite")
        sensor_db = database(f"sqlite:///{home}/sensor.sqlite")
        broker, sensor, hub = Node("broker"), Node("sensor"), Node("hub")
        try:
            sensor_id, sensor_side = await party(vault)
            hub_id, hub_side = await party(vault)
            await broker.start_worker("stream_service", StreamService(SqlStreams(broker_db)))
            listener = await broker.create_tcp_listener("127.0.0.1:0", consumers=["stream_service"])
            service = Route([Address.tcp(listener.address), "stream_service"])
            print("stream service at", service)

            sensor_client = StreamClient(sensor, service)
            hub_client = StreamClient(hub, service)
            await sensor_client.create("sensor-to-hub")
            await sensor_client.create("hub-to-sensor")
            uplink, downlink = await asyncio.gather(
                StreamChannel.initiate(
                    sensor_client, sensor_side,
                    PeerAuthenticator(TrustIdentifier(hub_id.identifier)),
                    SqlChannelStates(sensor_db), "uplink",
                    out_stream="sensor-to-hub", in_stream="hub-to-sensor"),
                StreamChannel.accept(
                    hub_client, hub_side,
                    PeerAuthenticator(TrustIdentifier(sensor_id.identifier)),
                    SqlChannelStates(hub_db), "from-sensor",
                    in_stream="sensor-to-hub", out_stream="hub-to-sensor"))
            print("channel over streams open, hub sees the sensor:",
                  downlink.peer_identifier == sensor_id.identifier)

            # the hub goes offline; the sensor keeps pushing
            readings = [b"reading %04d: 21.%d C" % (i, i % 10) for i in range(1000)]
            for i in range(0, len(readings), 100):
                await uplink.send(readings[i:i + 100])
            print("sensor pushed", len(readings), "readings while the hub was offline")

            # the hub comes back: the same channel, resumed from its saved state
            resumed = await StreamChannel.resume(hub_client, SqlChannelStates(hub_db), "from-sensor")
            got: list[bytes] = []
            while len(got) < len(readings):
                received = await resumed.receive(limit=250, timeout=1)
                got.extend(received.messages)
                await resumed.commit(received)
            print("hub caught up:", got == readings, f"({len(got)} readings, each once)")

            stored = b"".join(row[0] for row in sqlite3.connect(f"{home}/broker.sqlite").execute(
                "SELECT data FROM stream_record"))
            print("the broker stored", len(stored), "bytes; plaintext in them:", b"reading" in stored)
        finally:
            for node in (sensor, hub, broker):
                await node.stop()
            for db in (broker_db, hub_db, sensor_db):
                await db.close()


if __name__ == "__main__":
    asyncio.run(main())
