"""Creating and rotating identities with keys held in any signing vault (spec §4)."""

from __future__ import annotations

import hashlib
import time

from trust.identities.identity import Identity, verify_change_history
from trust.models.change_history import Change, ChangeData, ChangeHistory
from trust.models.primitives import Signature
from vaults.signing import SigningVault

DEFAULT_IDENTITY_TTL = 315_360_000
"""Ten years of 365 days, Ockam's DEFAULT_IDENTITY_TTL."""


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else int(now)


async def _make_change(previous: Identity | None, vault: SigningVault, handle: str, *,
                       previous_vault: SigningVault | None, previous_handle: str | None,
                       revoke_all_purpose_keys: bool, valid_from: int, valid_until: int) -> Change:
    public_key = await vault.public_key(handle)
    data = ChangeData(
        previous_change=previous.latest_change_hash if previous is not None else None,
        primary_public_key=public_key,
        revoke_all_purpose_keys=revoke_all_purpose_keys,
        attestations_valid_from=valid_from,
        attestations_valid_until=valid_until,
    ).to_versioned()
    m = hashlib.sha256(data).digest()
    signature = Signature(public_key.key_type, await vault.sign(handle, m))
    prev_sig = None
    if previous is not None:
        assert previous_vault is not None and previous_handle is not None
        prev_key = previous.latest_public_key
        prev_sig = Signature(prev_key.key_type, await previous_vault.sign(previous_handle, m))
    return Change(data, signature, prev_sig)


async def create_identity(vault: SigningVault, handle: str, *, now: int | None = None,
                          ttl: int = DEFAULT_IDENTITY_TTL, valid_from: int | None = None,
                          valid_until: int | None = None) -> Identity:
    """A new one-change identity whose primary key is ``handle`` in ``vault``."""
    start = _now(now) if valid_from is None else valid_from
    until = start + ttl if valid_until is None else valid_until
    change = await _make_change(None, vault, handle, previous_vault=None, previous_handle=None,
                                revoke_all_purpose_keys=False, valid_from=start, valid_until=until)
    return verify_change_history(ChangeHistory((change,)).encode())


async def rotate_identity(identity: Identity, previous_vault: SigningVault, previous_handle: str,
                          vault: SigningVault, handle: str, *, revoke_all_purpose_keys: bool = False,
                          now: int | None = None, ttl: int = DEFAULT_IDENTITY_TTL,
                          valid_from: int | None = None,
                          valid_until: int | None = None) -> Identity:
    """Append a change: the new key (``handle``) signs it and the previous key co-signs it.

    The new change is valid from ``now`` but never before the previous change's start (a
    history's ``attestations_valid_from`` never goes backwards).
    """
    start = _now(now) if valid_from is None else valid_from
    start = max(start, identity.latest_change.change_data.attestations_valid_from)
    until = start + ttl if valid_until is None else valid_until
    change = await _make_change(identity, vault, handle, previous_vault=previous_vault,
                                previous_handle=previous_handle,
                                revoke_all_purpose_keys=revoke_all_purpose_keys,
                                valid_from=start, valid_until=until)
    history = ChangeHistory((*identity.changes, change))
    return verify_change_history(history.encode())
