"""A signing vault on a PKCS#11 token (an HSM, a smart card, SoftHSM) through ``python-pkcs11``.

Keys are generated on the token as sensitive, non-extractable token objects; signing happens on
the token. Mechanisms are picked from what the token reports:

- P-256: ``CKM_EC_KEY_PAIR_GEN``; signs with ``CKM_ECDSA_SHA256`` over ``m`` when the token offers
  it, else with ``CKM_ECDSA`` over ``SHA-256(m)`` (the same signature; SoftHSM before 2.7 has only
  the latter). The token returns raw r||s.
- Ed25519: ``CKM_EC_EDWARDS_KEY_PAIR_GEN`` + ``CKM_EDDSA`` (pure EdDSA over ``m``), where offered.

Handles are ``id=<hex CKA_ID>`` (or ``label=<CKA_LABEL>`` for a key without an id). Keys made
elsewhere (``pkcs11-tool``, ``softhsm2-util``) are found by label, by hex id or by a PKCS#11 URI
naming the object (:meth:`Pkcs11Vault.resolve_key`).

The module (``python-pkcs11``) is imported when a vault is opened, never at CLI start.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaults.errors import (
    BackendUnavailableError,
    KeyNotFoundError,
    UnsupportedKeyTypeError,
    VaultError,
    WrongPassphraseError,
)
from vaults.keys import SIGNATURE_SIZE, KeyType, PublicKey
from vaults.pkcs11_uri import BACKEND, Pkcs11Uri

MODULE_ENV = "TRUSTSTACK_PKCS11_MODULE"
"""Environment variable naming the PKCS#11 module when the URI names none."""

_MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/pkcs11", "/usr/lib/aarch64-linux-gnu/pkcs11",
                "/usr/lib/pkcs11", "/usr/lib64/pkcs11", "/usr/lib/softhsm", "/usr/local/lib/softhsm",
                "/usr/lib64/softhsm", "/usr/lib", "/usr/local/lib", "/opt/homebrew/lib")

P256_OID_DER = bytes.fromhex("06082a8648ce3d030107")
ED25519_OID_DER = bytes.fromhex("06032b6570")
ED25519_PRINTABLE = b"\x13\x0cedwards25519"
_ED25519_PARAMS = (ED25519_OID_DER, ED25519_PRINTABLE)

_LOAD_LOCK = threading.Lock()


def resolve_module(uri: Pkcs11Uri) -> str:
    """The module path: ``module-path``, else ``module-name`` searched in the usual directories,
    else ``$TRUSTSTACK_PKCS11_MODULE``."""
    if uri.module_path:
        return uri.module_path
    name = uri.module_name
    if name:
        if "/" in name:
            raise VaultError("module-name must be a bare name; use module-path for a path",
                             backend=BACKEND)
        candidates = [name, f"{name}.so", f"lib{name}.so"]
        for d in _MODULE_DIRS:
            for c in candidates:
                p = Path(d) / c
                if p.is_file():
                    return str(p)
        raise BackendUnavailableError(f"no PKCS#11 module named {name!r} in {', '.join(_MODULE_DIRS)}",
                                      backend=BACKEND)
    env = os.environ.get(MODULE_ENV)
    if env:
        return env
    raise VaultError(f"the URI names no module: add ?module-path=/path/to/module.so (or set "
                     f"${MODULE_ENV})", backend=BACKEND)


def load_library(path: str) -> Any:
    """Load (once per process) the PKCS#11 module at ``path``."""
    import pkcs11
    from pkcs11.exceptions import PKCS11Error

    if not Path(path).exists():
        raise BackendUnavailableError(f"the PKCS#11 module {path} does not exist", backend=BACKEND)
    with _LOAD_LOCK:
        try:
            return pkcs11.lib(path)
        except PKCS11Error as e:
            raise BackendUnavailableError(f"cannot load the PKCS#11 module {path}: {_msg(e)}",
                                          backend=BACKEND) from None


def _msg(e: BaseException) -> str:
    text = str(e).strip()
    name = type(e).__name__
    text = " ".join(text.split())
    return f"{name}: {text}" if text and text != name else name


def find_token(lib: Any, uri: Pkcs11Uri) -> Any:
    """The one token matching the URI's token/slot attributes."""
    from pkcs11.exceptions import PKCS11Error, TokenNotPresent, TokenNotRecognised

    want = uri.token_filters
    matches = []
    try:
        slots = lib.get_slots(token_present=True)
    except PKCS11Error as e:
        raise BackendUnavailableError(f"cannot list slots: {_msg(e)}", backend=BACKEND) from None
    for slot in slots:
        try:
            token = slot.get_token()
        except (TokenNotPresent, TokenNotRecognised):
            continue
        if "slot-id" in want and str(slot.slot_id) != want["slot-id"]:
            continue
        if "slot-description" in want and slot.slot_description.strip() != want["slot-description"]:
            continue
        if "slot-manufacturer" in want and slot.manufacturer_id.strip() != want["slot-manufacturer"]:
            continue
        if "token" in want and token.label.strip() != want["token"]:
            continue
        if "manufacturer" in want and token.manufacturer_id.strip() != want["manufacturer"]:
            continue
        if "model" in want and token.model.strip() != want["model"]:
            continue
        if "serial" in want and token.serial.decode(errors="replace").strip() != want["serial"]:
            continue
        if not want and not token.label.strip():
            continue  # an uninitialised (free) slot
        matches.append(token)
    described = ", ".join(f"{k}={v}" for k, v in want.items()) or "any initialised token"
    if not matches:
        raise BackendUnavailableError(f"no token matching {described} in {lib.so}", backend=BACKEND)
    if len(matches) > 1:
        raise VaultError(f"{len(matches)} tokens match {described}; name one with token= or "
                         "serial= in the URI", backend=BACKEND)
    return matches[0]


@dataclass
class _Key:
    private: Any
    public_key: PublicKey


@dataclass
class _Login:
    """One logged-in session per token and process, shared by the vaults open on that token.

    PKCS#11 login state belongs to the application, not to a session: closing a logged-in
    session logs out every session of the process, and a second ``C_Login`` answers
    ``CKR_USER_ALREADY_LOGGED_IN`` without checking the PIN. So vaults on the same token share
    this session (reference-counted), and a later open must present the PIN that logged in."""

    key: tuple[str, str, bytes]
    session: Any
    pin_digest: bytes
    refs: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)


_LOGINS: dict[tuple[str, str, bytes], _Login] = {}
_LOGINS_LOCK = threading.Lock()


def _pin_digest(pin: str | None) -> bytes:
    if pin is None:
        return b""
    return hashlib.sha256(b"truststack-pkcs11-pin\x00" + pin.encode()).digest()


def _login(token: Any, module: str, pin: str | None) -> _Login:
    from pkcs11.exceptions import (
        PinIncorrect,
        PinInvalid,
        PinLenRange,
        PinLocked,
        PKCS11Error,
        UserAlreadyLoggedIn,
        UserPinNotInitialized,
    )

    label = token.label.strip()
    key = (module, label, bytes(token.serial))
    digest = _pin_digest(pin)
    with _LOGINS_LOCK:
        login = _LOGINS.get(key)
        if login is not None:
            if not hmac.compare_digest(login.pin_digest, digest):
                raise WrongPassphraseError(f"wrong PIN for the token {label!r}", backend=BACKEND)
            login.refs += 1
            return login
        try:
            session = token.open(rw=True, user_pin=pin)
        except (PinIncorrect, PinInvalid, PinLenRange):
            raise WrongPassphraseError(f"wrong PIN for the token {label!r}", backend=BACKEND) from None
        except PinLocked:
            raise WrongPassphraseError(f"the user PIN of the token {label!r} is locked",
                                       backend=BACKEND) from None
        except UserPinNotInitialized:
            raise WrongPassphraseError(f"the token {label!r} has no user PIN set",
                                       backend=BACKEND) from None
        except UserAlreadyLoggedIn:
            raise VaultError(f"the token {label!r} is already logged in by other code in this "
                             "process", backend=BACKEND) from None
        except PKCS11Error as e:
            raise BackendUnavailableError(f"cannot open a session on the token {label!r}: {_msg(e)}",
                                          backend=BACKEND) from None
        login = _Login(key, session, digest)
        _LOGINS[key] = login
        return login


def _release(login: _Login) -> None:
    from pkcs11.exceptions import PKCS11Error

    with _LOGINS_LOCK:
        login.refs -= 1
        if login.refs > 0:
            return
        if _LOGINS.get(login.key) is login:
            del _LOGINS[login.key]
        try:
            login.session.close()
        except PKCS11Error:
            pass


class Pkcs11Vault:
    """Keys on one PKCS#11 token. Open with :meth:`open`; a logged-in read-write session (shared
    with other vaults of this process on the same token) is kept until :meth:`close`."""

    def __init__(self, uri: Pkcs11Uri, module: str, token: Any, login: _Login,
                 mechanisms: frozenset[Any]) -> None:
        self.uri = uri
        self.module = module
        self._token = token
        self._login: _Login | None = login
        self._lock = login.lock
        self._mechanisms = mechanisms
        self._keys: dict[str, _Key] = {}

    @property
    def _session(self) -> Any:
        if self._login is None:
            raise VaultError("the vault is closed", backend=BACKEND)
        return self._login.session

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def open(cls, uri: str | Pkcs11Uri, pin: bytes | str | None) -> Pkcs11Vault:
        """Load the module, find the token named by ``uri``, open a session and log in."""
        from pkcs11.exceptions import PKCS11Error

        parsed = uri if isinstance(uri, Pkcs11Uri) else Pkcs11Uri.parse(uri)
        if parsed.names_object:
            raise VaultError("the vault URI names a token, not an object (drop object=, id=, "
                             "type=; name keys with --key-id)", backend=BACKEND)
        module = resolve_module(parsed)
        lib = load_library(module)
        token = find_token(lib, parsed)
        pin_text: str | None
        if isinstance(pin, bytes):
            try:
                pin_text = pin.decode()
            except UnicodeDecodeError:
                raise WrongPassphraseError("the PIN is not valid UTF-8", backend=BACKEND) from None
        else:
            pin_text = pin
        login = _login(token, module, pin_text)
        try:
            mechanisms = frozenset(token.slot.get_mechanisms())
        except PKCS11Error as e:
            _release(login)
            raise BackendUnavailableError(f"cannot list the token's mechanisms: {_msg(e)}",
                                          backend=BACKEND) from None
        return cls(parsed, module, token, login, mechanisms)

    # -- SigningVault ---------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return BACKEND

    @property
    def token_label(self) -> str:
        return str(self._token.label).strip()

    @property
    def key_types(self) -> frozenset[KeyType]:
        from pkcs11 import Mechanism

        out = set()
        if Mechanism.EC_KEY_PAIR_GEN in self._mechanisms and self._p256_mechanism() is not None:
            out.add(KeyType.P256)
        if {Mechanism.EC_EDWARDS_KEY_PAIR_GEN, Mechanism.EDDSA} <= self._mechanisms:
            out.add(KeyType.ED25519)
        return frozenset(out)

    @property
    def default_key_type(self) -> KeyType:
        return KeyType.P256

    def _p256_mechanism(self) -> Any:
        from pkcs11 import Mechanism

        if Mechanism.ECDSA_SHA256 in self._mechanisms:
            return Mechanism.ECDSA_SHA256
        if Mechanism.ECDSA in self._mechanisms:
            return Mechanism.ECDSA
        return None

    async def generate_key(self, key_type: KeyType) -> str:
        return self.generate_key_sync(KeyType(key_type))

    def generate_key_sync(self, key_type: KeyType, *, label: str | None = None) -> str:
        from pkcs11 import Attribute, Mechanism, MechanismFlag
        from pkcs11 import KeyType as P11KeyType
        from pkcs11.exceptions import PKCS11Error

        if key_type not in self.key_types:
            need = ("CKM_EC_KEY_PAIR_GEN and CKM_ECDSA" if key_type is KeyType.P256
                    else "CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA")
            raise UnsupportedKeyTypeError(
                f"the token {self.token_label!r} does not offer {need}, so it cannot make "
                f"{key_type.value} keys", backend=BACKEND)
        key_id = os.urandom(16)
        label = label or f"truststack-{key_id.hex()[:16]}"
        private_template = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                            Attribute.PRIVATE: True, Attribute.TOKEN: True}
        public_template = {Attribute.TOKEN: True, Attribute.PRIVATE: False}
        with self._lock:
            try:
                if key_type is KeyType.P256:
                    params = self._session.create_domain_parameters(
                        P11KeyType.EC, {Attribute.EC_PARAMS: P256_OID_DER}, local=True)
                    _pub, priv = params.generate_keypair(
                        store=True, label=label, id=key_id,
                        capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                        mechanism=Mechanism.EC_KEY_PAIR_GEN,
                        public_template=public_template, private_template=private_template)
                else:
                    priv = self._generate_edwards(label, key_id, public_template, private_template)
            except PKCS11Error as e:
                raise VaultError(f"cannot generate a {key_type.value} key on the token "
                                 f"{self.token_label!r}: {_msg(e)}", backend=BACKEND) from None
        handle = f"id={key_id.hex()}"
        self._keys[handle] = _Key(priv, self._read_public(priv, handle))
        return handle

    def _generate_edwards(self, label: str, key_id: bytes, public_template: dict[Any, Any],
                          private_template: dict[Any, Any]) -> Any:
        from pkcs11 import Attribute, Mechanism, MechanismFlag
        from pkcs11 import KeyType as P11KeyType
        from pkcs11.exceptions import AttributeValueInvalid, DomainParamsInvalid, TemplateInconsistent

        last: Exception | None = None
        # RFC 8410 OID first; PKCS#11 3.0's PrintableString "edwards25519" for tokens that want it.
        for params_der in _ED25519_PARAMS:
            try:
                params = self._session.create_domain_parameters(
                    P11KeyType.EC_EDWARDS, {Attribute.EC_PARAMS: params_der}, local=True)
                _pub, priv = params.generate_keypair(
                    store=True, label=label, id=key_id,
                    capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                    mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                    public_template=public_template, private_template=private_template)
                return priv
            except (AttributeValueInvalid, DomainParamsInvalid, TemplateInconsistent) as e:
                last = e
        assert last is not None
        raise last

    async def resolve_key(self, key_id: str) -> str:
        return self.resolve_key_sync(key_id)

    def resolve_key_sync(self, key_id: str) -> str:
        """``id=HEX``, ``label=TEXT``, a ``pkcs11:`` URI naming the object, a bare label, or a
        bare hex id (tried in that order)."""
        from pkcs11 import Attribute

        text = key_id.strip()
        candidates: list[dict[Any, Any]] = []
        if text.lower().startswith("pkcs11:"):
            uri = Pkcs11Uri.parse(text)
            attrs: dict[Any, Any] = {}
            if "object" in uri.path:
                attrs[Attribute.LABEL] = uri.text("object")
            if "id" in uri.path:
                attrs[Attribute.ID] = uri.path["id"]
            if not attrs:
                raise KeyNotFoundError("the URI names no object (give object= or id=)", backend=BACKEND)
            candidates.append(attrs)
        elif text.startswith("id="):
            candidates.append({Attribute.ID: _hex_id(text[3:])})
        elif text.startswith("label="):
            candidates.append({Attribute.LABEL: text[6:]})
        else:
            if text:
                candidates.append({Attribute.LABEL: text})
            try:
                candidates.append({Attribute.ID: bytes.fromhex(text)})
            except ValueError:
                pass
        for attrs in candidates:
            found = self._find_private(attrs)
            if found:
                if len(found) > 1:
                    raise VaultError(f"{len(found)} private keys match {key_id!r} on the token; "
                                     "name one by id", backend=BACKEND)
                priv = found[0]
                handle = self._handle_of(priv)
                if handle not in self._keys:
                    self._keys[handle] = _Key(priv, self._read_public(priv, handle))
                return handle
        raise KeyNotFoundError(f"no private key {key_id!r} on the token {self.token_label!r}",
                               backend=BACKEND)

    async def public_key(self, handle: str) -> PublicKey:
        return self._key(handle).public_key

    async def sign(self, handle: str, message: bytes) -> bytes:
        return self.sign_sync(handle, message)

    def sign_sync(self, handle: str, message: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.exceptions import PKCS11Error

        key = self._key(handle)
        if key.public_key.key_type is KeyType.ED25519:
            if Mechanism.EDDSA not in self._mechanisms:
                raise UnsupportedKeyTypeError(
                    f"the token {self.token_label!r} does not offer CKM_EDDSA to sign with {handle}",
                    backend=BACKEND)
            mechanism, data = Mechanism.EDDSA, message
        else:
            mechanism = self._p256_mechanism()
            if mechanism is None:
                raise UnsupportedKeyTypeError(
                    f"the token {self.token_label!r} offers neither CKM_ECDSA_SHA256 nor CKM_ECDSA "
                    f"to sign with {handle}", backend=BACKEND)
            data = message if mechanism == Mechanism.ECDSA_SHA256 else hashlib.sha256(message).digest()
        with self._lock:
            try:
                signature = bytes(key.private.sign(data, mechanism=mechanism))
            except PKCS11Error as e:
                raise VaultError(f"the token refused to sign with {handle}: {_msg(e)}",
                                 backend=BACKEND) from None
        if len(signature) != SIGNATURE_SIZE:
            raise VaultError(f"the token returned a {len(signature)}-byte signature (expected 64)",
                             backend=BACKEND)
        return signature

    async def delete_key(self, handle: str) -> bool:
        from pkcs11 import Attribute, ObjectClass
        from pkcs11.exceptions import PKCS11Error

        attrs = self._attrs_of_handle(handle)
        with self._lock:
            objs = [*self._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, **attrs}),
                    *self._session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, **attrs})]
            try:
                for o in objs:
                    o.destroy()
            except PKCS11Error as e:
                raise VaultError(f"cannot delete {handle}: {_msg(e)}", backend=BACKEND) from None
        self._keys.pop(handle, None)
        return bool(objs)

    async def list_keys(self) -> list[str]:
        handles = []
        for priv in self._find_private({}):
            try:
                self._key_type_of(priv)
            except UnsupportedKeyTypeError:
                continue
            handles.append(self._handle_of(priv))
        return sorted(set(handles))

    async def close(self) -> None:
        self.close_sync()

    def close_sync(self) -> None:
        login, self._login = self._login, None
        self._keys.clear()
        if login is not None:
            _release(login)

    # -- helpers --------------------------------------------------------------------------------
    def _key(self, handle: str) -> _Key:
        key = self._keys.get(handle)
        if key is not None:
            return key
        if not handle.startswith(("id=", "label=")):
            raise KeyNotFoundError(f"invalid key handle {handle!r} (expected id=HEX or label=TEXT)",
                                   backend=BACKEND)
        resolved = self.resolve_key_sync(handle)
        if resolved != handle:
            raise KeyNotFoundError(f"no private key {handle!r} on the token {self.token_label!r}",
                                   backend=BACKEND)
        return self._keys[handle]

    def _find_private(self, attrs: dict[Any, Any]) -> list[Any]:
        from pkcs11 import Attribute, ObjectClass
        from pkcs11.exceptions import PKCS11Error

        session = self._session
        with self._lock:
            try:
                return list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, **attrs}))
            except PKCS11Error as e:
                raise BackendUnavailableError(f"cannot search the token: {_msg(e)}",
                                              backend=BACKEND) from None

    def _handle_of(self, priv: Any) -> str:
        from pkcs11 import Attribute

        key_id = _attr(priv, Attribute.ID)
        if key_id:
            others = self._find_private({Attribute.ID: bytes(key_id)})
            if len(others) == 1:
                return f"id={bytes(key_id).hex()}"
        label = _attr(priv, Attribute.LABEL)
        if label:
            return f"label={label}"
        raise VaultError("the key has neither an id nor a label; give it one with pkcs11-tool",
                         backend=BACKEND)

    def _attrs_of_handle(self, handle: str) -> dict[Any, Any]:
        from pkcs11 import Attribute

        if handle.startswith("id="):
            return {Attribute.ID: _hex_id(handle[3:])}
        if handle.startswith("label="):
            return {Attribute.LABEL: handle[6:]}
        raise KeyNotFoundError(f"invalid key handle {handle!r} (expected id=HEX or label=TEXT)",
                               backend=BACKEND)

    def _key_type_of(self, obj: Any) -> KeyType:
        from pkcs11 import Attribute
        from pkcs11 import KeyType as P11KeyType

        kt = _attr(obj, Attribute.KEY_TYPE)
        params = _attr(obj, Attribute.EC_PARAMS)
        params = bytes(params) if params is not None else None
        if kt == P11KeyType.EC and params in (None, P256_OID_DER):
            return KeyType.P256
        if kt == P11KeyType.EC_EDWARDS and params in (None, *_ED25519_PARAMS):
            return KeyType.ED25519
        raise UnsupportedKeyTypeError(
            f"the key is not a P-256 or Ed25519 signing key (key type {kt!s}, "
            f"params {params.hex() if params else '-'})", backend=BACKEND)

    def _read_public(self, priv: Any, handle: str) -> PublicKey:
        from pkcs11 import Attribute, ObjectClass

        key_type = self._key_type_of(priv)
        attrs = self._attrs_of_handle(handle)
        with self._lock:
            pubs = list(self._session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, **attrs}))
        point = None
        for pub in pubs:
            point = _attr(pub, Attribute.EC_POINT)
            if point is not None:
                break
        if point is None:
            point = _attr(priv, Attribute.EC_POINT)  # some tokens expose it on the private key
        if point is None:
            raise VaultError(f"the token holds no public key for {handle}", backend=BACKEND)
        return PublicKey(key_type, _unwrap_point(bytes(point), key_type))


def _attr(obj: Any, attribute: Any) -> Any:
    from pkcs11.exceptions import PKCS11Error

    try:
        return obj[attribute]
    except (PKCS11Error, KeyError, NotImplementedError):
        return None


def _hex_id(text: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise KeyNotFoundError(f"invalid key id {text!r} (expected hex)", backend=BACKEND) from None
    if not value:
        raise KeyNotFoundError("empty key id", backend=BACKEND)
    return value


def _unwrap_point(point: bytes, key_type: KeyType) -> bytes:
    """``CKA_EC_POINT`` is a DER OCTET STRING per the standard; some tokens return the bare point."""
    size = key_type.public_key_size
    if len(point) == size + 2 and point[0] == 0x04 and point[1] == size:
        point = point[2:]
    if len(point) != size:
        raise VaultError(f"unexpected {key_type.value} public key encoding from the token "
                         f"({len(point)} bytes)", backend=BACKEND)
    return point
