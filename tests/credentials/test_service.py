"""The credential service over a real home: purpose keys, wallet, attribute store, replay."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.credentials.helpers import NOW, run
from trust.credentials.issuance import sign_credential_data
from trust.credentials.presentation import VerifiedPresentation
from trust.errors import UntrustedError, UsageError, VerificationError
from trust.models.credential import (
    Attributes,
    CredentialAndPurposeKey,
    CredentialData,
    DisclosableCredential,
    Presentation,
)
from trust.services import open_credentials
from trust.vault_config import create_vault


def test_issue_creates_the_signing_key_once_and_reuses_it(tmp_path: Path) -> None:
    async def go() -> None:
        s = open_credentials(tmp_path)
        try:
            issuer = await s.identities.create_identity("issuer", now=NOW - 10)
            await s.identities.create_identity("holder", now=NOW - 10)
            a = await s.issue("issuer", "holder", {"role": "x"}, ttl=3600, now=NOW)
            b = await s.issue("issuer", "holder", {"role": "y"}, ttl=3600, now=NOW + 5)
            assert isinstance(a, CredentialAndPurposeKey)
            assert a.purpose_key_attestation == b.purpose_key_attestation
            assert a.credential.expires_at - a.credential.created_at == 3600
            [pk] = await s.identities.purpose_keys.list(issuer.identifier, "credential_signing")
            assert pk.vault == "default"
            # the default TTL is Ockam's 30 days
            c = await s.issue("issuer", "holder", {}, now=NOW)
            assert c.credential.expires_at - c.credential.created_at == 2_592_000
        finally:
            await s.close()

    run(go())


def test_key_vault_holds_the_credential_signing_key(tmp_path: Path) -> None:
    async def go() -> None:
        s = open_credentials(tmp_path)
        try:
            await create_vault(s.identities.vault_configs, "signer", "file", {}, tmp_path)
            issuer = await s.identities.create_identity("issuer", now=NOW - 10)
            holder = await s.identities.create_identity("holder", now=NOW - 10)
            before = set((tmp_path / "vaults" / "signer").iterdir())
            cpk = await s.issue("issuer", "holder", {"role": "x"}, key_vault="signer", now=NOW)
            [pk] = await s.identities.purpose_keys.list(issuer.identifier, "credential_signing")
            assert pk.vault == "signer"
            _, signer = await s.identities.vault("signer")
            assert pk.key_handle in await signer.list_keys()
            assert set((tmp_path / "vaults" / "signer").iterdir()) - before
            key = cpk.purpose_key_attestation.attestation_data.public_key.signing
            assert key == await signer.public_key(pk.key_handle)
            v = await s.verify(cpk, [issuer.identity], subject=holder.identity, now=NOW)
            assert v.attributes == {b"role": b"x"}
            # the identity's own vault does not hold it
            _, default = await s.identities.vault("default")
            assert pk.key_handle not in await default.list_keys()
        finally:
            await s.close()

    run(go())


def test_verify_records_attributes_and_failures_record_nothing(tmp_path: Path) -> None:
    async def go() -> None:
        s = open_credentials(tmp_path)
        try:
            issuer = await s.identities.create_identity("issuer", now=NOW - 10)
            holder = await s.identities.create_identity("holder", now=NOW - 10)
            other = await s.identities.create_identity("other", now=NOW - 10)
            cpk = await s.issue("issuer", "holder", {"role": "admin"}, ttl=100, now=NOW)
            bads: list[dict[str, Any]] = [
                {"authorities": [other.identity]},
                {"authorities": [issuer.identity], "now": NOW + 101},
                {"authorities": [issuer.identity], "subject": other.identity}]
            for bad in bads:
                kw = {"now": NOW, **bad}
                with pytest.raises((VerificationError, UntrustedError)):
                    await s.verify(cpk, **kw)
                assert await s.attributes.get(holder.identifier, now=NOW) == []
            # the subject's history is known here, so its change hash is checked
            vault, handle, att = await s.identities.credential_signing_key("issuer", now=NOW)
            bogus = CredentialData(holder.identity.identifier_bytes, secrets.token_bytes(32),
                                   Attributes.of({"role": "x"}), NOW, NOW + 10)
            forged = CredentialAndPurposeKey(
                await sign_credential_data(bogus, vault, handle, att), att)
            with pytest.raises(VerificationError, match="subject_latest_change_hash"):
                await s.verify(forged, [issuer.identity], now=NOW)
            v = await s.verify(cpk, [issuer.identity], now=NOW)
            [rec] = await s.attributes.get(holder.identifier, now=NOW)
            assert (rec.name, rec.value, rec.issuer, rec.expires_at) == (
                b"role", b"admin", v.issuer, NOW + 100)
            assert await s.subject_attributes().get(holder.identifier, now=NOW + 100) == {
                "role": "admin"}
            assert await s.subject_attributes().get(holder.identifier, now=NOW + 101) == {}
        finally:
            await s.close()

    run(go())


def test_wallet_store_checks_the_holder(tmp_path: Path) -> None:
    async def go() -> None:
        s = open_credentials(tmp_path)
        try:
            issuer = await s.identities.create_identity("issuer", now=NOW - 10)
            holder = await s.identities.create_identity("holder", now=NOW - 10)
            await s.identities.create_identity("other", now=NOW - 10)
            cpk = await s.issue("issuer", "holder", {"role": "admin"}, now=NOW)
            with pytest.raises(UntrustedError, match="is about"):
                await s.store("other", cpk, [issuer.identity], now=NOW)
            assert await s.list_stored() == []
            held = await s.issue("issuer", "holder", {"role": "admin"}, selective=True, decoys=2,
                                 now=NOW)
            a = await s.store("holder", cpk, [issuer.identity], now=NOW)
            b = await s.store("holder", held, [issuer.identity], now=NOW)
            assert (a.selective, b.selective) == (False, True)
            assert DisclosableCredential.decode(b.data) == held
            assert [x.id for x in await s.list_stored("holder")] == [a.id, b.id]
            assert await s.list_stored("other") == []
            assert b.holder == holder.identifier and b.issuer == issuer.identifier
            # the wallet keeps the holder's credentials, not the verifier's attribute store
            assert await s.attributes.get(holder.identifier, now=NOW) == []
            with pytest.raises(UsageError, match="decoys"):
                await s.issue("issuer", "holder", {}, decoys=1, now=NOW)
        finally:
            await s.close()

    run(go())


def test_presentations_are_single_use_across_runs(tmp_path: Path) -> None:
    issuer_home, holder_home, verifier_home = tmp_path / "i", tmp_path / "h", tmp_path / "v"

    async def setup() -> tuple[bytes, bytes, bytes]:
        issuer_side = open_credentials(issuer_home)
        holder_side = open_credentials(holder_home)
        try:
            holder = await holder_side.identities.create_identity("alice", now=NOW - 10)
            issuer = await issuer_side.identities.create_identity("authority", now=NOW - 10)
            held = await issuer_side.issue("authority", holder.identity.export_hex(),
                                           {"role": "admin", "team": "blue"}, selective=True,
                                           now=NOW)
            assert isinstance(held, DisclosableCredential)
            p = await holder_side.present("alice", held, ["role"], audience="api", nonce="n1",
                                          now=NOW)
            return p.encode(), issuer.identity.export(), holder.identity.export()
        finally:
            await issuer_side.close()
            await holder_side.close()

    presentation, issuer_history, holder_history = run(setup())

    async def verify(**kw: Any) -> VerifiedPresentation:
        s = open_credentials(verifier_home)  # a new process each time, in effect
        try:
            [authority] = await s.resolve([issuer_history.hex()])
            args: dict[str, Any] = {"audience": "api", "nonce": "n1", "now": NOW + 5, **kw}
            return await s.verify_presentation(Presentation.decode(presentation), [authority],
                                               **args)
        finally:
            await s.close()

    # failed attempts do not burn the nonce
    with pytest.raises(UntrustedError):
        run(verify(audience="other"))
    with pytest.raises(VerificationError, match="stale"):
        run(verify(now=NOW + 301))
    vp = run(verify())
    assert vp.attributes == {b"role": b"admin"}
    with pytest.raises(VerificationError, match="already used"):
        run(verify())
    with pytest.raises(VerificationError, match="already used"):
        run(verify(now=NOW + 300))

    async def learned() -> tuple[bytes | None, dict[str, object]]:
        s = open_credentials(verifier_home)
        try:
            holder_id = vp.holder.identifier
            return (await s.identities.known.get(holder_id),
                    await s.subject_attributes().get(holder_id, now=NOW))
        finally:
            await s.close()

    raw, attrs = run(learned())
    assert raw == holder_history  # the verifier now knows the holder's history
    assert attrs == {"role": "admin"}
