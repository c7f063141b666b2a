"""RFC 7512 PKCS#11 URI parsing (pure, no module needed)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaults.errors import VaultError
from vaults.pkcs11_uri import Pkcs11Uri


def test_token_and_module() -> None:
    u = Pkcs11Uri.parse("pkcs11:token=truststack;serial=0123?module-path=/usr/lib/softhsm/libsofthsm2.so")
    assert u.token_filters == {"token": "truststack", "serial": "0123"}
    assert u.module_path == "/usr/lib/softhsm/libsofthsm2.so"
    assert not u.names_object


def test_percent_encoding_and_case_of_the_scheme() -> None:
    u = Pkcs11Uri.parse("PKCS11:token=My%20Token;id=%01%02;object=a%3Bb?module-name=softhsm2")
    assert u.text("token") == "My Token"
    assert u.path["id"] == b"\x01\x02"
    assert u.text("object") == "a;b"
    assert u.module_name == "softhsm2"
    assert u.names_object


def test_vendor_attributes_are_allowed() -> None:
    assert Pkcs11Uri.parse("pkcs11:token=t;x-vendor=1").path["x-vendor"] == b"1"


@pytest.mark.parametrize("text", [
    "pkcs11:token=t?pin-value=1234",
    "pkcs11:token=t?module-path=/m.so&pin-value=1234",
    "pkcs11:token=t?pin-source=file:/etc/pin",
])
def test_pin_in_uri_is_refused(text: str) -> None:
    with pytest.raises(VaultError, match="a PIN inside the URI is refused"):
        Pkcs11Uri.parse(text)


@pytest.mark.parametrize("text, needle", [
    ("token=t", "must start with 'pkcs11:'"),
    ("pkcs11:token=t;token=u", "given twice"),
    ("pkcs11:colour=blue", "unknown path attribute"),
    ("pkcs11:token=t?flavour=x", "unknown query attribute"),
    ("pkcs11:token", "malformed URI attribute"),
    ("pkcs11:token=%zz", "percent-encoding"),
    ("pkcs11:slot-id=abc", "decimal"),
    ("pkcs11:token=" + "a" * 5000, "too long"),
    ("pkcs11:token=%ff%fe", "not UTF-8"),
])
def test_malformed(text: str, needle: str) -> None:
    with pytest.raises(VaultError, match=needle):
        assert Pkcs11Uri.parse(text).token_filters is not None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_raises_vault_error(text: str) -> None:
    for candidate in (text, "pkcs11:" + text):
        try:
            u = Pkcs11Uri.parse(candidate)
            _ = (u.token_filters, u.module_path, u.module_name, u.names_object)
        except VaultError as e:
            assert str(e).startswith("pkcs11: ")
            assert "\n" not in str(e)
