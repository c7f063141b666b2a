"""Credential benchmark: issue/s and verify/s of Ockam-format credentials (10 attributes) and of
selective-disclosure presentations (10 attributes, 3 revealed, holder binding), next to the PyPI
``sd-jwt`` reference implementation doing the same work (10 claims, 3 disclosed; verify with and
without key binding, ES256 keys), all measured in this run.

Cold = first use: the authority's change history is verified from its bytes and every cache
(verified histories, verified attestations, decoded attestations and holder histories) is empty.
Warm = those caches are filled; every credential or presentation is still decoded from its
bytes and its own signatures (issuer, and holder for presentations) are verified each time.

Our keys are measured with both key types: P-256 (the same ECDSA P-256 work as sd-jwt's ES256;
the headline ratios) and Ed25519 (Ockam's default). Targets (warm, P-256): credential verify
>= 1.5x sd-jwt verify; presentation verify >= 2x sd-jwt verify with key binding.

    python bench/credentials.py [--json] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, bench/ would come first on sys.path and its policies.py/vaults.py would hide
# the packages of the same names: search the repository root instead.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [str(_BENCH.parent), *(p for p in sys.path if Path(p or ".").resolve() != _BENCH)]

from bench.timing import rates
from trust.credentials.issuance import issue_credential, issue_selective_credential
from trust.credentials.presentation import present, verify_presentation
from trust.credentials.verification import clear_cache as clear_credential_cache
from trust.credentials.verification import verify_credential
from trust.identities.creation import create_identity
from trust.identities.identity import clear_cache as clear_identity_cache
from trust.identities.identity import verify_change_history
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.credential import CredentialAndPurposeKey, Presentation, clear_decode_caches
from trust.models.purpose_key import PurposePublicKey
from vaults.keys import KeyType
from vaults.software import SoftwareVault

NOW = 1_800_000_000
ATTRIBUTES = {f"attribute_{i}": f"value number {i}" for i in range(10)}
REVEAL = ["attribute_0", "attribute_4", "attribute_7"]


def clear_all() -> None:
    clear_identity_cache()
    clear_credential_cache()
    clear_decode_caches()


class Ours:
    """Issuer, holder and artefacts with one key type, plus the loop that runs async calls."""

    def __init__(self, key_type: KeyType, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        run = loop.run_until_complete
        self.vault = SoftwareVault()
        ih = run(self.vault.generate_key(key_type))
        self.issuer = run(create_identity(self.vault, ih, now=NOW - 1000))
        self.issuer_raw = self.issuer.export()
        self.key = run(self.vault.generate_key(key_type))
        self.att = run(attest_purpose_key(
            self.issuer, self.vault, ih,
            PurposePublicKey.credential_signing(run(self.vault.public_key(self.key))),
            now=NOW - 500))
        self.hh = run(self.vault.generate_key(key_type))
        self.holder = run(create_identity(self.vault, self.hh, now=NOW - 900))
        self.cred = run(self.issue()).encode()
        self.held = run(self.issue_selective())
        self.pres = run(self.present()).encode()

    def issue(self) -> Any:
        return issue_credential(self.holder, ATTRIBUTES, self.vault, self.key, self.att, now=NOW)

    def issue_selective(self) -> Any:
        return issue_selective_credential(self.holder, ATTRIBUTES, self.vault, self.key, self.att,
                                          now=NOW)

    def present(self) -> Any:
        return present(self.held, self.holder, self.vault, self.hh, reveal=REVEAL,
                       audience="https://verifier.example", nonce="n-0", now=NOW)

    def verify_warm(self) -> None:
        verify_credential(CredentialAndPurposeKey.decode(self.cred), [self.issuer], now=NOW,
                          subject_identity=self.holder)

    def verify_cold(self) -> None:
        clear_all()
        issuer = verify_change_history(self.issuer_raw)
        verify_credential(CredentialAndPurposeKey.decode(self.cred), [issuer], now=NOW,
                          subject_identity=self.holder, cache=False)

    def verify_presentation_warm(self) -> None:
        verify_presentation(Presentation.decode(self.pres), [self.issuer],
                            audience="https://verifier.example", nonce="n-0", now=NOW)

    def verify_presentation_cold(self) -> None:
        clear_all()
        issuer = verify_change_history(self.issuer_raw)
        verify_presentation(Presentation.decode(self.pres), [issuer],
                            audience="https://verifier.example", nonce="n-0", now=NOW, cache=False)

    def functions(self, tag: str) -> dict[str, tuple[Callable[[], object], int]]:
        run = self.loop.run_until_complete
        self.verify_warm()
        self.verify_presentation_warm()
        return {
            f"{tag}_credential_issue": (lambda: run(self.issue()), 20),
            f"{tag}_credential_verify_cold": (self.verify_cold, 10),
            f"{tag}_credential_verify_warm": (self.verify_warm, 20),
            f"{tag}_selective_issue": (lambda: run(self.issue_selective()), 20),
            f"{tag}_present": (lambda: run(self.present()), 20),
            f"{tag}_presentation_verify_cold": (self.verify_presentation_cold, 10),
            f"{tag}_presentation_verify_warm": (self.verify_presentation_warm, 20),
        }


class SdJwt:
    """The same work with the ``sd-jwt`` reference implementation (ES256 issuer and holder)."""

    def __init__(self) -> None:
        from jwcrypto.jwk import JWK
        from sd_jwt.common import SDObj
        from sd_jwt.holder import SDJWTHolder
        from sd_jwt.issuer import SDJWTIssuer
        from sd_jwt.verifier import SDJWTVerifier

        self.SDJWTIssuer, self.SDJWTHolder, self.SDJWTVerifier = SDJWTIssuer, SDJWTHolder, SDJWTVerifier
        self.issuer_key = JWK.generate(kty="EC", crv="P-256")
        self.holder_key = JWK.generate(kty="EC", crv="P-256")
        public = JWK.from_json(self.issuer_key.export_public())
        self.get_key = lambda _iss, _header: public
        self.claims: dict[Any, Any] = {"iss": "https://issuer.example", "iat": NOW,
                                       "exp": NOW + 2_592_000, "sub": "holder"}
        for k, v in ATTRIBUTES.items():
            self.claims[SDObj(k)] = v
        self.issuance = self.issue().sd_jwt_issuance
        self.plain = self.present(binding=False)
        self.bound = self.present(binding=True)

    def issue(self) -> Any:
        return self.SDJWTIssuer(self.claims, self.issuer_key, holder_key=self.holder_key)

    def present(self, binding: bool) -> str:
        h = self.SDJWTHolder(self.issuance)
        reveal = dict.fromkeys(REVEAL, True)
        if binding:
            h.create_presentation(reveal, nonce="n-0", aud="https://verifier.example",
                                  holder_key=self.holder_key, sign_alg="ES256")
        else:
            h.create_presentation(reveal)
        return str(h.sd_jwt_presentation)

    def verify(self) -> None:
        self.SDJWTVerifier(self.plain, self.get_key).get_verified_payload()

    def verify_bound(self) -> None:
        self.SDJWTVerifier(self.bound, self.get_key, expected_aud="https://verifier.example",
                           expected_nonce="n-0").get_verified_payload()

    def functions(self) -> dict[str, tuple[Callable[[], object], int]]:
        self.verify()
        self.verify_bound()
        return {
            "sdjwt_issue": (self.issue, 10),
            "sdjwt_present_bound": (lambda: self.present(True), 10),
            "sdjwt_verify": (self.verify, 10),
            "sdjwt_verify_bound": (self.verify_bound, 10),
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seconds", type=float, default=2.0, help="per measured function")
    args = ap.parse_args()

    loop = asyncio.new_event_loop()
    try:
        p256 = Ours(KeyType.P256, loop)
        ed = Ours(KeyType.ED25519, loop)
        peer = SdJwt()
        fns = {**p256.functions("p256"), **ed.functions("ed25519"), **peer.functions()}
        r = rates(fns, args.seconds)
    finally:
        loop.close()

    figures: dict[str, Any] = {f"{k}_per_s": round(v) for k, v in r.items()}
    figures["presentation_bytes_p256"] = len(p256.pres)
    figures["presentation_bytes_ed25519"] = len(ed.pres)
    figures["credential_bytes_ed25519"] = len(ed.cred)
    figures["sdjwt_presentation_bound_chars"] = len(peer.bound)
    ratios = {}
    for tag in ("p256", "ed25519"):
        ratios[f"{tag}_credential_verify_warm/sdjwt_verify"] = round(
            r[f"{tag}_credential_verify_warm"] / r["sdjwt_verify"], 2)
        ratios[f"{tag}_credential_verify_cold/sdjwt_verify"] = round(
            r[f"{tag}_credential_verify_cold"] / r["sdjwt_verify"], 2)
        ratios[f"{tag}_presentation_verify_warm/sdjwt_verify_bound"] = round(
            r[f"{tag}_presentation_verify_warm"] / r["sdjwt_verify_bound"], 2)
        ratios[f"{tag}_presentation_verify_cold/sdjwt_verify_bound"] = round(
            r[f"{tag}_presentation_verify_cold"] / r["sdjwt_verify_bound"], 2)
        ratios[f"{tag}_credential_issue/sdjwt_issue"] = round(
            r[f"{tag}_credential_issue"] / r["sdjwt_issue"], 2)
        ratios[f"{tag}_selective_issue/sdjwt_issue"] = round(
            r[f"{tag}_selective_issue"] / r["sdjwt_issue"], 2)
        ratios[f"{tag}_present/sdjwt_present_bound"] = round(
            r[f"{tag}_present"] / r["sdjwt_present_bound"], 2)
    if args.json:
        print(json.dumps({"figures": figures, "ratios": ratios}))
        return
    width = max(map(len, figures))
    print("figures (operations per second unless named otherwise):")
    for k, v in figures.items():
        print(f"  {k:<{width}}  {v}")
    print("ratios (ours / sd-jwt, same run):")
    width = max(map(len, ratios))
    for k, v in ratios.items():
        target = ""
        if k.startswith("p256_credential_verify_warm"):
            target = "  (target >= 1.5)"
        elif k.startswith("p256_presentation_verify_warm"):
            target = "  (target >= 2)"
        print(f"  {k:<{width}}  {v}{target}")


if __name__ == "__main__":
    main()
