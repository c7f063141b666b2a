"""Selective disclosure: the holder reveals two of four attributes to a verifier, bound to the
verifier's audience and nonce; a replay of the same presentation is refused.

    python examples/credentials_selective.py
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile

from trust.errors import VerificationError
from trust.models.credential import DisclosableCredential, Presentation
from trust.services import open_credentials


async def main() -> None:
    with tempfile.TemporaryDirectory() as i, tempfile.TemporaryDirectory() as h, \
            tempfile.TemporaryDirectory() as v:
        issuer_side, holder_side, verifier_side = (open_credentials(d) for d in (i, h, v))
        authority = await issuer_side.identities.create_identity("authority")
        alice = await holder_side.identities.create_identity("alice")

        # The issuer signs salted digests (plus 3 decoys); alice gets every disclosure.
        held = await issuer_side.issue(
            "authority", alice.identity.export_hex(),
            {"role": "engineer", "team": "blue", "salary": "123456", "badge": "B-77"},
            selective=True, decoys=3)
        assert isinstance(held, DisclosableCredential)
        [trusted] = await holder_side.resolve([authority.identity.export_hex()])
        await holder_side.store("alice", held, [trusted])

        # The verifier sends a challenge; alice reveals role and team only.
        nonce = secrets.token_hex(16)
        presentation = await holder_side.present("alice", held, ["role", "team"],
                                                 audience="https://api.example", nonce=nonce)
        wire = presentation.encode()
        assert b"123456" not in wire and b"salary" not in wire

        [authority_there] = await verifier_side.resolve([authority.identity.export_hex()])
        result = await verifier_side.verify_presentation(
            Presentation.decode(wire), [authority_there], audience="https://api.example",
            nonce=nonce)
        print("revealed:", {k.decode(): x.decode() for k, x in result.attributes.items()})
        print("undisclosed digests:", result.credential.hidden)
        try:
            await verifier_side.verify_presentation(
                Presentation.decode(wire), [authority_there], audience="https://api.example",
                nonce=nonce)
        except VerificationError as e:
            print("replay refused:", e)
        for s in (issuer_side, holder_side, verifier_side):
            await s.close()


if __name__ == "__main__":
    asyncio.run(main())
