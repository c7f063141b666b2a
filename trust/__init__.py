"""truststack: Ockam-compatible identities, credentials, policies and secure messaging.

The common names are importable from here (loaded on first use, so the CLI starts fast)::

    from trust import IdentityManager, verify_change_history, TrustError
"""

from __future__ import annotations

from trust.lazy_exports import lazy_getattr

__version__ = "0.1.0"

_EXPORTS = {
    "Identity": "trust.identities.identity",
    "Comparison": "trust.identities.identity",
    "verify_change_history": "trust.identities.identity",
    "IdentityManager": "trust.identities.manager",
    "NamedIdentity": "trust.identities.manager",
    "verify_purpose_key_attestation": "trust.identities.purpose_keys",
    "TrustError": "trust.errors",
    "DecodeError": "trust.errors",
    "VerificationError": "trust.errors",
    "UntrustedError": "trust.errors",
    "UsageError": "trust.errors",
    "VaultError": "trust.errors",
    "PolicyError": "trust.errors",
}

__all__ = [*_EXPORTS, "__version__"]


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
