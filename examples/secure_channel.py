"""Alice and Bob talk end-to-end encrypted through a middle node (as in Ockam's hands-on guide).

Three in-process nodes over TCP on 127.0.0.1. Bob runs a secure-channel listener at ``api`` and
his ``echo`` service; the middle node only relays (its ``hop`` may connect to Bob). Alice opens
a channel to Bob *through* the middle node: the middle node moves records it cannot read. Each
side checks who is at the other end (``TrustIdentifier``). Identities live in a temporary home
(their secure-channel keys in its file vault).

Run: python examples/secure_channel.py
"""

import asyncio
import tempfile

from trust.channels import TrustIdentifier
from trust.errors import UntrustedError
from trust.node import Node
from trust.routing import Address, Route
from trust.services import open_identities


async def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        identities = open_identities(home)
        try:
            alice_id = await identities.create_identity("alice")
            bob_id = await identities.create_identity("bob")
            print("alice is", alice_id.identifier)
            print("bob is  ", bob_id.identifier)

            bob = Node("bob")
            await bob.start_services()
            bob_tcp = await bob.create_tcp_listener("127.0.0.1:0")
            middle = Node("middle", hop_allow=[bob_tcp.address])
            await middle.start_services()
            middle_tcp = await middle.create_tcp_listener("127.0.0.1:0")
            alice = Node("alice")
            try:
                await bob.create_secure_channel_listener(
                    bob_id, identities=identities, trust=TrustIdentifier(alice_id.identifier))

                route = Route([Address.tcp(middle_tcp.address), "hop", Address.tcp(bob_tcp.address),
                               "api"])
                print("route to bob's listener:", route)
                channel = await alice.create_secure_channel(
                    alice_id, route, identities=identities,
                    trust=TrustIdentifier(bob_id.identifier), timeout=10)
                print("channel open, peer verified:", channel.peer.identifier == bob_id.identifier)
                reply = await alice.send_and_receive(channel.route / "echo", b"hello bob", timeout=10)
                print("bob's echo replied through the channel:", reply)
                [bobs_side] = bob.secure_channels()
                print("bob sees alice as the peer:", bobs_side.peer.identifier == alice_id.identifier)

                try:  # alice insists on someone else: no channel
                    await alice.create_secure_channel(
                        alice_id, route, identities=identities,
                        trust=TrustIdentifier(alice_id.identifier), timeout=10)
                except UntrustedError as e:
                    print("wrong peer refused:", type(e).__name__)

                await channel.close()
                for _ in range(100):
                    if not bob.secure_channels():
                        break
                    await asyncio.sleep(0.01)
                print("after close: alice has", len(alice.secure_channels()), "channels, bob has",
                      len(bob.secure_channels()))
            finally:
                for node in (alice, middle, bob):
                    await node.stop()
        finally:
            await identities.close()


if __name__ == "__main__":
    asyncio.run(main())
