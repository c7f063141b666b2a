"""Create an identity, rotate its key, attest a purpose key, and verify it all elsewhere.

    python examples/identities_basic.py
"""

from __future__ import annotations

import asyncio
import tempfile

from trust.identities.identity import Comparison, verify_change_history
from trust.identities.purpose_keys import verify_purpose_key_attestation
from trust.models.purpose_key import Purpose
from trust.services import open_identities


async def main() -> None:
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as other_home:
        alice = open_identities(home)
        a = await alice.create_identity("alice")
        print("created", a.identifier)

        # A secure-channel static key (X25519), attested by alice's current key.
        _, _, attestation = await alice.secure_channel_key("alice")

        # Rotate to a P-256 key: the new key signs the change, the old key co-signs it, and the
        # purpose key is re-attested so that Ockam peers (who check only the latest change)
        # accept it too.
        rotated = await alice.rotate("alice", key_type="p256")
        print("rotated", len(rotated.identity.changes), "changes")

        # Someone else receives the exported history and verifies it.
        exported = rotated.identity.export()
        bob = open_identities(other_home)
        identity, status = await bob.import_identity(exported)
        assert identity.identifier == a.identifier and status is None
        assert verify_change_history(exported).compare(a.identity) is Comparison.NEWER

        # The attestation made before the rotation is still valid (no revocation) ...
        verify_purpose_key_attestation(identity, attestation, purpose=Purpose.SECURE_CHANNEL_STATIC)
        # ... and so is the re-attested one.
        _, _, fresh = await alice.secure_channel_key("alice")
        verify_purpose_key_attestation(identity, fresh, purpose=Purpose.SECURE_CHANNEL_STATIC)
        print("attestations verified")
        await alice.close()
        await bob.close()


if __name__ == "__main__":
    asyncio.run(main())
