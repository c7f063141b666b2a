"""A signing vault on Google Cloud KMS through ``google-cloud-kms`` (gRPC).

- Keys: crypto keys with purpose ``ASYMMETRIC_SIGN`` and algorithm ``EC_SIGN_P256_SHA256`` or
  ``EC_SIGN_ED25519`` in one key ring; handles are crypto key *version* names
  (``projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N``).
- Signing: ``AsymmetricSign`` with ``digest.sha256 = SHA-256(m)`` for P-256 (ECDSA-SHA256 over
  ``m``; the DER signature is converted to raw r||s) and with ``data = m`` for Ed25519 (pure
  EdDSA). Google's integrity fields are checked both ways: the request carries the CRC32C of the
  digest or data, and the response must confirm it, name the version, and carry the CRC32C of the
  signature. Public keys (PEM + CRC32C) are fetched on first use and cached.
- Every call runs in a worker thread with a deadline of ``timeout`` (default 10 s); UNAVAILABLE
  is retried with backoff within that same deadline, nothing else is retried.
- ``endpoint`` + ``plaintext=True`` builds an insecure gRPC channel (emulators, tests); without
  ``plaintext`` the normal TLS endpoint and application-default credentials are used.

``google-cloud-kms`` and ``grpc`` are imported when a vault is opened, never at CLI start.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from vaults.errors import (
    AccessDeniedError,
    BackendTimeoutError,
    BackendUnavailableError,
    KeyNotFoundError,
    KeyUnusableError,
    UnsupportedKeyTypeError,
    VaultError,
)
from vaults.keys import SIGNATURE_SIZE, KeyType, PublicKey, der_to_raw_signature

BACKEND = "gcp-kms"
DEFAULT_TIMEOUT = 10.0
DEFAULT_GENERATION_TIMEOUT = 60.0

ALGORITHMS = {KeyType.P256: "EC_SIGN_P256_SHA256", KeyType.ED25519: "EC_SIGN_ED25519"}
_ALGORITHM_TO_TYPE = {v: k for k, v in ALGORITHMS.items()}

_SEGMENT = r"[A-Za-z0-9_-]{1,63}"
KEY_RING_RE = re.compile(rf"^projects/[a-z0-9.:-]{{1,100}}/locations/[a-z0-9-]{{1,63}}/keyRings/{_SEGMENT}$")
VERSION_RE = re.compile(r"^(?P<key>projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+)"
                        r"/cryptoKeyVersions/[0-9]{1,10}$")
CRYPTO_KEY_RE = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def crc32c(data: bytes) -> int:
    import google_crc32c

    return int(google_crc32c.value(data))


def check_key_ring(name: str) -> str:
    name = name.strip().strip("/")
    if not KEY_RING_RE.match(name):
        raise VaultError(f"invalid key ring name {name!r} (expected "
                         "projects/PROJECT/locations/LOCATION/keyRings/RING)", backend=BACKEND)
    return name


def make_client(*, endpoint: str | None = None, plaintext: bool = False) -> Any:
    """A synchronous KMS client: an insecure channel to ``endpoint`` with ``plaintext``, else
    TLS (to ``endpoint`` or Google's default) with application-default credentials."""
    # gRPC's C core logs connection noise to stderr at INFO; keep one-line CLI errors clean.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from google.cloud import kms_v1

    if plaintext:
        if not endpoint:
            raise VaultError("--plaintext needs --endpoint HOST:PORT", backend=BACKEND)
        import grpc
        from google.cloud.kms_v1.services.key_management_service.transports import (
            KeyManagementServiceGrpcTransport,
        )

        channel = grpc.insecure_channel(endpoint)
        return kms_v1.KeyManagementServiceClient(
            transport=KeyManagementServiceGrpcTransport(channel=channel))
    from google.auth.exceptions import DefaultCredentialsError

    options = {"api_endpoint": endpoint} if endpoint else None
    try:
        return kms_v1.KeyManagementServiceClient(client_options=options)
    except DefaultCredentialsError as e:
        raise AccessDeniedError(f"no Google credentials ({_one_line(e)})", backend=BACKEND) from None


class GcpKmsVault:
    """Signing keys in one Cloud KMS key ring. Give a ready client (tests point it at a fake
    server) or the settings to build one on first use with :func:`make_client`."""

    def __init__(self, key_ring: str, client: Any = None, *, endpoint: str | None = None,
                 plaintext: bool = False, timeout: float = DEFAULT_TIMEOUT,
                 protection_level: str = "SOFTWARE",
                 generation_timeout: float = DEFAULT_GENERATION_TIMEOUT) -> None:
        if timeout <= 0:
            raise VaultError("the timeout must be positive", backend=BACKEND)
        self.key_ring = check_key_ring(key_ring)
        self._client = client
        self._owns_client = client is None
        self._client_lock = threading.Lock()
        self.endpoint = endpoint
        self.plaintext = plaintext
        self.timeout = float(timeout)
        self.protection_level = protection_level.upper()
        self.generation_timeout = generation_timeout
        self._public: dict[str, PublicKey] = {}

    # -- plumbing -------------------------------------------------------------------------------
    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = make_client(endpoint=self.endpoint, plaintext=self.plaintext)
            return self._client

    @property
    def where(self) -> str:
        return self.endpoint or "cloudkms.googleapis.com"

    def _retry(self) -> Any:
        from google.api_core import exceptions, retry

        return retry.Retry(predicate=retry.if_exception_type(exceptions.ServiceUnavailable),
                           initial=0.05, maximum=1.0, multiplier=2.0, timeout=self.timeout)

    async def call(self, method: str, request: dict[str, Any], key: str | None = None) -> Any:
        """Run one KMS RPC in a worker thread; map every failure to a VaultError."""
        return await asyncio.to_thread(self.call_sync, method, request, key)

    def call_sync(self, method: str, request: dict[str, Any], key: str | None = None) -> Any:
        from google.api_core import exceptions as gexc
        from google.auth.exceptions import GoogleAuthError

        client = self.client()
        fn: Callable[..., Any] = getattr(client, method)
        started = time.monotonic()
        try:
            result = fn(request=request, retry=self._retry(), timeout=self.timeout)
            if method.startswith("list_"):
                result = list(result)  # pages are fetched here, inside the thread
            return result
        except gexc.RetryError as e:
            cause = e.cause if e.cause is not None else e
            raise self._error(cause, method, key, started, gave_up=True) from None
        except gexc.GoogleAPICallError as e:
            raise self._error(e, method, key, started) from None
        except GoogleAuthError as e:
            raise AccessDeniedError(f"Google credentials failed: {_one_line(e)}", backend=BACKEND) from None

    def _error(self, e: BaseException, method: str, key: str | None, started: float,
               gave_up: bool = False) -> VaultError:
        from google.api_core import exceptions as gexc

        op = "".join(p.capitalize() for p in method.split("_"))
        detail = _one_line(getattr(e, "message", None) or e)
        what = f"key {key}" if key else "the request"
        if isinstance(e, gexc.NotFound):
            return KeyNotFoundError(f"no {what} ({op}: NOT_FOUND: {detail})", backend=BACKEND)
        if isinstance(e, (gexc.PermissionDenied, gexc.Unauthenticated)):
            return AccessDeniedError(f"access denied to {what} ({op}: {_status(e)}: {detail})",
                                     backend=BACKEND)
        if isinstance(e, gexc.FailedPrecondition):
            return KeyUnusableError(f"{what} cannot be used now ({op}: FAILED_PRECONDITION: {detail})",
                                    backend=BACKEND)
        if isinstance(e, gexc.DeadlineExceeded):
            return BackendTimeoutError(f"{self.where} did not answer {op} within {self.timeout:g} s",
                                       backend=BACKEND)
        if isinstance(e, gexc.ServiceUnavailable):
            took = time.monotonic() - started
            suffix = f", gave up after {took:.1f} s" if gave_up else ""
            return BackendUnavailableError(f"cannot reach {self.where} ({op}: UNAVAILABLE: "
                                           f"{detail}{suffix})", backend=BACKEND)
        if isinstance(e, gexc.MethodNotImplemented):
            return VaultError(f"{self.where} does not implement {op}", backend=BACKEND)
        if isinstance(e, gexc.InvalidArgument):
            return VaultError(f"the service rejected {op} on {what}: INVALID_ARGUMENT: {detail}",
                              backend=BACKEND)
        if isinstance(e, gexc.GoogleAPICallError):
            return VaultError(f"{op} failed: {_status(e)}: {detail}", backend=BACKEND)
        return BackendUnavailableError(f"{op} failed: {detail}", backend=BACKEND)

    # -- SigningVault ---------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return BACKEND

    @property
    def key_types(self) -> frozenset[KeyType]:
        return frozenset(ALGORITHMS)

    @property
    def default_key_type(self) -> KeyType:
        return KeyType.P256

    async def check(self) -> None:
        """Prove that the endpoint answers, the credentials work and the key ring exists."""
        try:
            await self.call("get_key_ring", {"name": self.key_ring})
        except KeyNotFoundError:
            raise KeyNotFoundError(f"no key ring {self.key_ring} (create it with: gcloud kms "
                                   "keyrings create ...)", backend=BACKEND) from None

    async def generate_key(self, key_type: KeyType) -> str:
        key_type = KeyType(key_type)
        key_id = f"truststack-{os.urandom(8).hex()}"
        request = {
            "parent": self.key_ring,
            "crypto_key_id": key_id,
            "crypto_key": {
                "purpose": "ASYMMETRIC_SIGN",
                "version_template": {"algorithm": ALGORITHMS[key_type],
                                     "protection_level": self.protection_level},
                "labels": {"created-by": "truststack"},
            },
        }
        try:
            key = await self.call("create_crypto_key", request)
        except VaultError as e:
            if "INVALID_ARGUMENT" in str(e):
                raise UnsupportedKeyTypeError(
                    f"the service does not make {ALGORITHMS[key_type]} keys here "
                    f"({str(e).removeprefix(f'{BACKEND}: ')})", backend=BACKEND) from None
            raise
        handle = f"{key.name}/cryptoKeyVersions/1"
        await self._wait_enabled(handle)
        return handle

    async def _wait_enabled(self, handle: str) -> Any:
        """Poll a version until it leaves PENDING_GENERATION (HSM keys take a moment)."""
        deadline = time.monotonic() + self.generation_timeout
        delay = 0.02
        while True:
            version = await self.call("get_crypto_key_version", {"name": handle}, handle)
            state = version.state.name
            if state != "PENDING_GENERATION":
                return version
            if time.monotonic() > deadline:
                raise BackendTimeoutError(f"key {handle} is still being generated after "
                                          f"{self.generation_timeout:g} s", backend=BACKEND)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def resolve_key(self, key_id: str) -> str:
        """A version name; a crypto key name (it must have exactly one enabled version); or
        ``KEY`` / ``KEY/cryptoKeyVersions/N`` relative to the vault's key ring."""
        name = key_id.strip().strip("/")
        if not name:
            raise KeyNotFoundError("empty key id", backend=BACKEND)
        if not name.startswith("projects/"):
            name = f"{self.key_ring}/cryptoKeys/{name.removeprefix('cryptoKeys/')}"
        if CRYPTO_KEY_RE.match(name):
            versions = await self.call("list_crypto_key_versions",
                                       {"parent": name, "filter": "state=ENABLED"}, name)
            names = [v.name for v in versions]
            if len(names) != 1:
                raise KeyNotFoundError(
                    f"crypto key {name} has {len(names)} enabled versions; name one "
                    "(.../cryptoKeyVersions/N)", backend=BACKEND)
            name = names[0]
        if not VERSION_RE.match(name):
            raise KeyNotFoundError(f"{key_id!r} is not a crypto key version name", backend=BACKEND)
        version = await self._wait_enabled(name)
        state = version.state.name
        if state != "ENABLED":
            raise KeyUnusableError(f"key {name} is not usable (state {state})", backend=BACKEND)
        algorithm = version.algorithm.name
        if algorithm not in _ALGORITHM_TO_TYPE:
            raise UnsupportedKeyTypeError(f"key {name} uses {algorithm}; truststack signs with "
                                          f"{' or '.join(_ALGORITHM_TO_TYPE)}", backend=BACKEND)
        return str(version.name)

    async def public_key(self, handle: str) -> PublicKey:
        cached = self._public.get(handle)
        if cached is not None:
            return cached
        out = await self.call("get_public_key", {"name": handle}, handle)
        pem = str(out.pem).encode()
        if out.name and out.name != handle:
            raise VaultError(f"GetPublicKey answered for {out.name}, not {handle}", backend=BACKEND)
        if out.pem_crc32c is None or int(out.pem_crc32c) != crc32c(pem):
            raise VaultError(f"the public key of {handle} failed its CRC32C check (corrupted in "
                             "transit)", backend=BACKEND)
        algorithm = out.algorithm.name
        if algorithm not in _ALGORITHM_TO_TYPE:
            raise UnsupportedKeyTypeError(f"key {handle} uses {algorithm}; truststack signs with "
                                          f"{' or '.join(_ALGORITHM_TO_TYPE)}", backend=BACKEND)
        try:
            pk = PublicKey.from_spki(pem)
        except VaultError as e:
            raise VaultError(f"key {handle}: {e}", backend=BACKEND) from None
        if pk.key_type is not _ALGORITHM_TO_TYPE[algorithm]:
            raise VaultError(f"key {handle}: the public key does not match {algorithm}",
                             backend=BACKEND)
        self._public[handle] = pk
        return pk

    async def sign(self, handle: str, message: bytes) -> bytes:
        key_type = (await self.public_key(handle)).key_type
        request: dict[str, Any] = {"name": handle}
        if key_type is KeyType.P256:
            digest = hashlib.sha256(message).digest()
            request["digest"] = {"sha256": digest}
            request["digest_crc32c"] = crc32c(digest)
        else:
            request["data"] = bytes(message)
            request["data_crc32c"] = crc32c(bytes(message))
        out = await self.call("asymmetric_sign", request, handle)
        verified = out.verified_digest_crc32c if key_type is KeyType.P256 else out.verified_data_crc32c
        signature = bytes(out.signature)
        if not verified:
            raise VaultError(f"the service did not confirm the CRC32C of the request for {handle} "
                             "(corrupted in transit)", backend=BACKEND)
        if out.name != handle:
            raise VaultError(f"AsymmetricSign answered for {out.name}, not {handle}", backend=BACKEND)
        if out.signature_crc32c is None or int(out.signature_crc32c) != crc32c(signature):
            raise VaultError(f"the signature from {handle} failed its CRC32C check (corrupted in "
                             "transit)", backend=BACKEND)
        if key_type is KeyType.P256:
            try:
                return der_to_raw_signature(signature)
            except VaultError as e:
                raise VaultError(f"key {handle}: {e}", backend=BACKEND) from None
        if len(signature) != SIGNATURE_SIZE:
            raise VaultError(f"key {handle}: a {len(signature)}-byte Ed25519 signature",
                             backend=BACKEND)
        return signature

    async def delete_key(self, handle: str) -> bool:
        """Schedule the destruction of the key version (Cloud KMS keeps it 30 days by default)."""
        if not VERSION_RE.match(handle):
            return False
        try:
            await self.call("destroy_crypto_key_version", {"name": handle}, handle)
        except (KeyNotFoundError, KeyUnusableError):
            return False
        self._public.pop(handle, None)
        return True

    async def list_keys(self) -> list[str]:
        """The enabled P-256 / Ed25519 signing key versions of the key ring."""
        keys = await self.call("list_crypto_keys", {"parent": self.key_ring})
        out: list[str] = []
        for key in keys:
            if key.purpose.name != "ASYMMETRIC_SIGN":
                continue
            if key.version_template.algorithm.name not in _ALGORITHM_TO_TYPE:
                continue
            versions = await self.call("list_crypto_key_versions",
                                       {"parent": key.name, "filter": "state=ENABLED"}, key.name)
            out.extend(v.name for v in versions if v.algorithm.name in _ALGORITHM_TO_TYPE)
        return sorted(out)

    async def close(self) -> None:
        """Close the channel if this vault made the client (a client given to it is left open)."""
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            client.transport.close()


def _status(e: Any) -> str:
    code = getattr(e, "grpc_status_code", None)
    return code.name if code is not None else type(e).__name__
