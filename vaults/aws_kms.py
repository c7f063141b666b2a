"""A signing vault on AWS KMS through ``boto3``.

- Keys: ``ECC_NIST_P256`` (and ``ECC_NIST_EDWARDS25519`` where the service offers it) with
  ``KeyUsage=SIGN_VERIFY``; handles are KMS key ids. ``resolve_key`` accepts a key id, a key ARN,
  an alias (``alias/name``) or an alias ARN.
- Signing: ``Sign`` with ``MessageType=RAW`` on the 32-byte ``m``; KMS computes ECDSA-SHA256 over
  ``m`` (``ECDSA_SHA_256``) or pure Ed25519 over ``m`` (``ED25519_SHA_512``). ECDSA signatures
  come back DER and are converted to raw r||s.
- Public keys are fetched on first use and cached.
- Every call runs in a worker thread with botocore's connect and read timeouts set to
  ``timeout`` (default 10 s) and ``max_attempts`` attempts (default 1), so a call never takes
  much longer than ``timeout``.

``boto3`` is imported when a vault is opened, never at CLI start.
"""

from __future__ import annotations

import asyncio
import threading
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

BACKEND = "aws-kms"
DEFAULT_TIMEOUT = 10.0

KEY_SPECS = {KeyType.P256: "ECC_NIST_P256", KeyType.ED25519: "ECC_NIST_EDWARDS25519"}
SIGNING_ALGORITHMS = {KeyType.P256: "ECDSA_SHA_256", KeyType.ED25519: "ED25519_SHA_512"}
_SPEC_TO_TYPE = {v: k for k, v in KEY_SPECS.items()}

_CREDENTIAL_CODES = frozenset({
    "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
    "ExpiredTokenException", "IncompleteSignature", "InvalidClientTokenId", "MissingAuthenticationToken",
    "SignatureDoesNotMatch", "AuthFailure",
})
_UNAVAILABLE_CODES = frozenset({
    "KMSInternalException", "DependencyTimeoutException", "KeyUnavailableException",
    "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "ThrottlingException",
    "LimitExceededException", "RequestLimitExceeded", "CustomKeyStoreInvalidStateException",
})


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def make_client(*, region: str | None = None, endpoint_url: str | None = None,
                profile: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                max_attempts: int = 1) -> Any:
    """A boto3 KMS client with the vault's timeouts (credentials from the usual AWS chain)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, NoRegionError, ProfileNotFound

    config = Config(connect_timeout=timeout, read_timeout=timeout,
                    retries={"total_max_attempts": max(1, max_attempts), "mode": "standard"},
                    user_agent_extra="truststack")
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
        return session.client("kms", endpoint_url=endpoint_url, config=config)
    except ProfileNotFound:
        raise VaultError(f"no AWS profile named {profile!r}", backend=BACKEND) from None
    except NoRegionError:
        raise VaultError("no AWS region: give --region or set AWS_REGION", backend=BACKEND) from None
    except ValueError as e:
        raise VaultError(f"invalid client settings: {_one_line(e)}", backend=BACKEND) from None
    except BotoCoreError as e:
        raise VaultError(f"cannot configure the KMS client: {_one_line(e)}", backend=BACKEND) from None


class AwsKmsVault:
    """Signing keys in AWS KMS. Give a ready client (tests use botocore's Stubber) or the
    settings to build one on first use with :func:`make_client`."""

    def __init__(self, client: Any = None, *, region: str | None = None,
                 endpoint_url: str | None = None, profile: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, max_attempts: int = 1,
                 description: str = "truststack signing key") -> None:
        if timeout <= 0:
            raise VaultError("the timeout must be positive", backend=BACKEND)
        self._client = client
        self._client_lock = threading.Lock()
        self.region = region
        self.endpoint_url = endpoint_url
        self.profile = profile
        self.timeout = float(timeout)
        self.max_attempts = max_attempts
        self.description = description
        self._public: dict[str, PublicKey] = {}

    # -- plumbing -------------------------------------------------------------------------------
    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = make_client(region=self.region, endpoint_url=self.endpoint_url,
                                           profile=self.profile, timeout=self.timeout,
                                           max_attempts=self.max_attempts)
            return self._client

    @property
    def where(self) -> str:
        if self.endpoint_url:
            return self.endpoint_url
        if self._client is not None:
            return str(self._client.meta.endpoint_url)
        return f"KMS in {self.region}" if self.region else "KMS"

    async def call(self, operation: str, key: str | None = None, **params: Any) -> dict[str, Any]:
        """Run one KMS operation in a worker thread; map every failure to a VaultError."""
        return await asyncio.to_thread(self.call_sync, operation, key, **params)

    def call_sync(self, operation: str, key: str | None = None, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client()
        method: Callable[..., dict[str, Any]] = getattr(client, operation)
        try:
            return method(**params)
        except ClientError as e:
            error = self._client_error(e, operation, key)
            error.aws_code = str(e.response.get("Error", {}).get("Code", ""))  # type: ignore[attr-defined]
            raise error from None
        except BotoCoreError as e:
            raise self._transport_error(e, operation) from None

    def _client_error(self, e: Any, operation: str, key: str | None) -> VaultError:
        err = e.response.get("Error", {})
        code = str(err.get("Code", "Unknown"))
        message = _one_line(err.get("Message", "") or code)
        what = f"key {key}" if key else "the request"
        op = _op_name(operation)
        if code == "NotFoundException":
            return KeyNotFoundError(f"no {what} ({op}: {message})", backend=BACKEND)
        if code == "DisabledException":
            return KeyUnusableError(f"{what} is disabled ({op}: {message})", backend=BACKEND)
        if code == "KMSInvalidStateException":
            return KeyUnusableError(f"{what} cannot be used in its current state, e.g. pending "
                                    f"deletion ({op}: {message})", backend=BACKEND)
        if code in _CREDENTIAL_CODES:
            return AccessDeniedError(f"access denied to {what} ({op}: {code}: {message})",
                                     backend=BACKEND)
        if code == "InvalidKeyUsageException":
            return UnsupportedKeyTypeError(f"{what} cannot sign ({op}: {message})", backend=BACKEND)
        if code in _UNAVAILABLE_CODES:
            return BackendUnavailableError(f"KMS is unavailable ({op}: {code}: {message})",
                                           backend=BACKEND)
        return VaultError(f"{op} failed: {code}: {message}", backend=BACKEND)

    def _transport_error(self, e: Any, operation: str) -> VaultError:
        from botocore.exceptions import (
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
            PartialCredentialsError,
            ReadTimeoutError,
        )

        op = _op_name(operation)
        if isinstance(e, ReadTimeoutError):
            return BackendTimeoutError(f"{self.where} did not answer {op} within {self.timeout:g} s",
                                       backend=BACKEND)
        if isinstance(e, ConnectTimeoutError):
            return BackendTimeoutError(f"could not connect to {self.where} within {self.timeout:g} s",
                                       backend=BACKEND)
        if isinstance(e, EndpointConnectionError):
            return BackendUnavailableError(f"cannot reach {self.where} ({op}: {_one_line(e)})",
                                           backend=BACKEND)
        if isinstance(e, (NoCredentialsError, PartialCredentialsError)):
            return AccessDeniedError("no AWS credentials (set AWS_PROFILE, AWS_ACCESS_KEY_ID/"
                                     "AWS_SECRET_ACCESS_KEY, or give --profile)", backend=BACKEND)
        if isinstance(e, NoRegionError):
            return VaultError("no AWS region: give --region or set AWS_REGION", backend=BACKEND)
        return BackendUnavailableError(f"{op} failed talking to {self.where}: {_one_line(e)}",
                                       backend=BACKEND)

    # -- SigningVault ---------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return BACKEND

    @property
    def key_types(self) -> frozenset[KeyType]:
        # Ed25519 where the service offers it (moto does not; CreateKey then says so).
        return frozenset(KEY_SPECS)

    @property
    def default_key_type(self) -> KeyType:
        return KeyType.P256

    async def check(self) -> None:
        """One cheap call that proves the endpoint, the credentials and the region work."""
        await self.call("list_keys", Limit=1)

    async def generate_key(self, key_type: KeyType) -> str:
        key_type = KeyType(key_type)
        spec = KEY_SPECS[key_type]
        try:
            out = await self.call("create_key", KeySpec=spec, KeyUsage="SIGN_VERIFY",
                                  Description=self.description,
                                  Tags=[{"TagKey": "created-by", "TagValue": "truststack"}])
        except VaultError as e:
            if getattr(e, "aws_code", None) in ("ValidationException", "UnsupportedOperationException"):
                detail = str(e).removeprefix(f"{BACKEND}: ")
                raise UnsupportedKeyTypeError(f"the service does not make {spec} keys ({detail})",
                                              backend=BACKEND) from None
            raise
        meta = out["KeyMetadata"]
        return str(meta["KeyId"])

    async def resolve_key(self, key_id: str) -> str:
        key_id = key_id.strip()
        if not key_id:
            raise KeyNotFoundError("empty key id", backend=BACKEND)
        meta = (await self.call("describe_key", key_id, KeyId=key_id))["KeyMetadata"]
        handle = str(meta["KeyId"])
        state = str(meta.get("KeyState", "Enabled"))
        if state == "Disabled":
            raise KeyUnusableError(f"key {key_id} is disabled", backend=BACKEND)
        if state == "PendingDeletion":
            raise KeyUnusableError(f"key {key_id} is pending deletion", backend=BACKEND)
        if state != "Enabled":
            raise KeyUnusableError(f"key {key_id} is not usable (state {state})", backend=BACKEND)
        if meta.get("KeyUsage") != "SIGN_VERIFY":
            raise UnsupportedKeyTypeError(f"key {key_id} is not a signing key (KeyUsage "
                                          f"{meta.get('KeyUsage')})", backend=BACKEND)
        spec = meta.get("KeySpec") or meta.get("CustomerMasterKeySpec")
        if spec not in _SPEC_TO_TYPE:
            raise UnsupportedKeyTypeError(f"key {key_id} is a {spec} key; truststack signs with "
                                          f"{' or '.join(_SPEC_TO_TYPE)} keys", backend=BACKEND)
        return handle

    async def public_key(self, handle: str) -> PublicKey:
        cached = self._public.get(handle)
        if cached is not None:
            return cached
        out = await self.call("get_public_key", handle, KeyId=handle)
        spec = out.get("KeySpec") or out.get("CustomerMasterKeySpec")
        if out.get("KeyUsage", "SIGN_VERIFY") != "SIGN_VERIFY":
            raise UnsupportedKeyTypeError(f"key {handle} is not a signing key", backend=BACKEND)
        if spec not in _SPEC_TO_TYPE:
            raise UnsupportedKeyTypeError(f"key {handle} is a {spec} key; truststack signs with "
                                          f"{' or '.join(_SPEC_TO_TYPE)} keys", backend=BACKEND)
        try:
            pk = PublicKey.from_spki(bytes(out["PublicKey"]))
        except VaultError as e:
            raise VaultError(f"key {handle}: {e}", backend=BACKEND) from None
        if pk.key_type is not _SPEC_TO_TYPE[spec]:
            raise VaultError(f"key {handle}: the public key does not match its spec {spec}",
                             backend=BACKEND)
        self._public[handle] = pk
        return pk

    async def sign(self, handle: str, message: bytes) -> bytes:
        key_type = (await self.public_key(handle)).key_type
        out = await self.call("sign", handle, KeyId=handle, Message=bytes(message),
                              MessageType="RAW", SigningAlgorithm=SIGNING_ALGORITHMS[key_type])
        signature = bytes(out["Signature"])
        if key_type is KeyType.P256:
            try:
                return der_to_raw_signature(signature)
            except VaultError as e:
                raise VaultError(f"key {handle}: {e}", backend=BACKEND) from None
        if len(signature) != SIGNATURE_SIZE:
            raise VaultError(f"key {handle}: KMS returned a {len(signature)}-byte Ed25519 signature",
                             backend=BACKEND)
        return signature

    async def delete_key(self, handle: str, *, pending_days: int = 7) -> bool:
        """Schedule the key's deletion (KMS waits ``pending_days``, 7 to 30, before deleting)."""
        try:
            await self.call("schedule_key_deletion", handle, KeyId=handle,
                            PendingWindowInDays=pending_days)
        except KeyNotFoundError:
            return False
        except KeyUnusableError:
            return False  # already pending deletion
        self._public.pop(handle, None)
        return True

    async def list_keys(self) -> list[str]:
        """The enabled signing keys (P-256 / Ed25519) the caller can see."""
        handles: list[str] = []
        marker: str | None = None
        while True:
            params: dict[str, Any] = {"Limit": 100}
            if marker:
                params["Marker"] = marker
            out = await self.call("list_keys", **params)
            for entry in out.get("Keys", []):
                try:
                    handles.append(await self.resolve_key(str(entry["KeyId"])))
                except (KeyUnusableError, UnsupportedKeyTypeError, KeyNotFoundError, AccessDeniedError):
                    continue
            if not out.get("Truncated"):
                break
            marker = out.get("NextMarker")
        return sorted(handles)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and hasattr(client, "close"):
            client.close()


def _op_name(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))
