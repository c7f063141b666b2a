"""Credentials: issue, verify, present (selective disclosure), schemas and the attribute store.

The names most callers need are available here (imported on first use)::

    from trust.credentials import issue_credential, verify_credential, present, verify_presentation
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CredentialService": "trust.credentials.service",
    "DEFAULT_CREDENTIAL_TTL": "trust.credentials.issuance",
    "issue_credential": "trust.credentials.issuance",
    "issue_selective_credential": "trust.credentials.issuance",
    "present": "trust.credentials.presentation",
    "verify_presentation": "trust.credentials.presentation",
    "VerifiedPresentation": "trust.credentials.presentation",
    "verify_credential": "trust.credentials.verification",
    "VerifiedCredential": "trust.credentials.verification",
    "Schema": "trust.credentials.schemas",
    "AttributeType": "trust.credentials.schemas",
    "SubjectAttributes": "trust.credentials.attributes",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'trust.credentials' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
