"""Fixtures for the HSM/KMS vault tests: a private SoftHSM token, moto's server in a subprocess,
the GCP KMS gRPC fake and a listener that never answers. All run on this machine (127.0.0.1) and
are always stopped, even when a test fails."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.fixtures.gcp_kms_fake import FakeKms, FakeKmsServer, make_client
from tests.fixtures.servers import MotoServer, SilentListener, start_moto, start_silent_listener
from tests.fixtures.softhsm import SoftHsm, start_softhsm

KEY_RING = "projects/truststack-test/locations/global/keyRings/ring"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": "/nonexistent/aws-config",
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-creds"}
UNREACHABLE = "127.0.0.1:9"  # the discard port; nothing listens there


@pytest.fixture(scope="session")
def softhsm() -> Iterator[SoftHsm]:
    """One private token directory per test run; ``SOFTHSM2_CONF`` points at it for this process
    (before the module is loaded) and for the CLI subprocesses."""
    hsm = start_softhsm(extra_tokens=("second",))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(hsm.conf))
        try:
            yield hsm
        finally:
            hsm.stop()


@pytest.fixture(scope="session")
def aws_env() -> Iterator[dict[str, str]]:
    with pytest.MonkeyPatch.context() as mp:
        for k, v in AWS_ENV.items():
            mp.setenv(k, v)
        for k in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(k, raising=False)
        yield AWS_ENV


@pytest.fixture(scope="session")
def moto_server(aws_env: dict[str, str]) -> Iterator[MotoServer]:
    server = start_moto()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    """The moto server, emptied for this test."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def kms_client(moto: MotoServer) -> Any:
    """A raw boto3 KMS client on the moto server (for keys made outside truststack)."""
    import boto3

    client = boto3.client("kms", region_name="us-east-1", endpoint_url=moto.url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def gcp_server() -> Iterator[FakeKmsServer]:
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    server = FakeKmsServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gcp(gcp_server: FakeKmsServer) -> Iterator[FakeKmsServer]:
    """The fake, emptied, with the key ring ``KEY_RING``."""
    gcp_server.fake.reset()
    client = make_client(gcp_server.address)
    parent, _, ring = KEY_RING.rpartition("/keyRings/")
    client.create_key_ring(request={"parent": parent, "key_ring_id": ring}, retry=None, timeout=5)
    client.transport.close()
    yield gcp_server
    gcp_server.fake.reset()


@pytest.fixture
def gcp_fake(gcp: FakeKmsServer) -> FakeKms:
    return gcp.fake


@pytest.fixture
def gcp_client(gcp: FakeKmsServer) -> Iterator[Any]:
    """The real client on the fake (closed after the test)."""
    client = make_client(gcp.address)
    yield client
    client.transport.close()


@pytest.fixture
def silent() -> Iterator[SilentListener]:
    listener = start_silent_listener()
    try:
        yield listener
    finally:
        listener.stop()


@pytest.fixture
def other_cli(tmp_path: Path) -> Cli:
    """The CLI with another, empty home (for offline verification)."""
    return Cli(tmp_path / "other-home")
