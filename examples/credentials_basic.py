"""An authority issues an Ockam-format credential; a verifier elsewhere checks it and reads
typed attributes through a schema.

    python examples/credentials_basic.py
"""

from __future__ import annotations

import asyncio
import tempfile

from trust.credentials.schemas import Schema
from trust.errors import UntrustedError
from trust.models.credential import CredentialAndPurposeKey
from trust.services import open_credentials

SCHEMA = Schema.create(7, ["role:string", "level:int", "admin:bool", "groups:list"])


async def main() -> None:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        authority_home = open_credentials(a)
        verifier_home = open_credentials(b)
        await authority_home.schemas.add(SCHEMA)
        await verifier_home.schemas.add(SCHEMA)

        authority = await authority_home.identities.create_identity("authority")
        alice = await authority_home.identities.create_identity("alice")

        # Signed with the authority's credential-signing purpose key (created and attested on
        # first use); values are checked against schema 7 and encoded canonically.
        credential = await authority_home.issue(
            "authority", "alice",
            {"role": "admin", "level": 3, "admin": True, "groups": ["dev", "ops"]},
            schema_id=7, ttl=3600)
        hex_form = credential.hex()  # what travels: Ockam's CredentialAndPurposeKey hex
        print("credential:", hex_form[:48], "...")

        # The verifier trusts the authority's history (verified and imported from hex).
        [trusted] = await verifier_home.resolve([authority.identity.export_hex()])
        received = CredentialAndPurposeKey.decode(bytes.fromhex(hex_form))
        verified = await verifier_home.verify(received, [trusted])
        assert verified.subject == alice.identifier

        # The attribute store now holds alice's attributes, typed through the schema.
        attrs = await verifier_home.subject_attributes().get(alice.identifier,
                                                             now=verified.created_at)
        print("attributes:", attrs)
        assert attrs == {"admin": True, "groups": ["dev", "ops"], "level": 3, "role": "admin"}

        # A credential from anyone else is refused.
        try:
            await verifier_home.verify(received, [alice.identity])
        except UntrustedError as e:
            print("refused:", e)
        await authority_home.close()
        await verifier_home.close()


if __name__ == "__main__":
    asyncio.run(main())
