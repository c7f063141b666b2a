"""truststack: Ockam-compatible identities, credentials, policies and secure messaging."""

__version__ = "0.1.0"
