"""A portal through a relay with background nodes (always stopped): the inlet's route goes to
the relay node over a channel and to the outlet's node through ``forward_to_bank`` in a second,
end-to-end channel; when the relay node is killed and restarted, new connections through the
same inlet succeed again within 10 s (the inlet reopens its channels)."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.fixtures.echo import through
from tests.fixtures.nodes import stop_all_nodes
from trust.node.files import pid_alive


@pytest.fixture
def three(cli: Cli, home: Path) -> Iterator[dict[str, str]]:
    try:
        yield {name: cli.json("node", "create", name)["identifier"]
               for name in ("project", "bank", "analysis")}
    finally:
        stop_all_nodes(home)


def test_inlet_through_a_relay_recovers_after_the_relay_node_restarts(
        cli: Cli, home: Path, three: dict[str, str], echo_port: int) -> None:
    cli("tcp-outlet", "create", "--at", "bank", "--to", f"127.0.0.1:{echo_port}")
    cli("relay", "create", "bank", "--to", "bank", "--at", "/node/project")
    inlet = cli.json("tcp-inlet", "create", "--at", "analysis", "--to",
                     "/node/project/secure/api/service/forward_to_bank/secure/api/service/outlet",
                     "--authorized", three["bank"])
    assert through(inlet["address"], b"through the relay") == b"through the relay"
    shown = cli.json("tcp-inlet", "show", "inlet", "--at", "analysis")
    assert shown["connected"] is True and shown["bytes_in"] == len(b"through the relay")

    pid = int((home / "nodes" / "project" / "pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    cli("node", "start", "project")
    restarted = time.monotonic()
    while True:
        try:
            if through(inlet["address"], b"back again", timeout=8) == b"back again":
                break
        except OSError:
            pass
        assert time.monotonic() - restarted < 10, "the inlet did not recover within 10 s"
        time.sleep(0.2)
    recovered = time.monotonic() - restarted
    print(f"recovered {recovered:.2f}s after the relay node restarted")
    assert recovered < 10
    assert cli.json("tcp-outlet", "show", "outlet", "--at", "bank")["connections"] >= 2


def test_an_outlet_closes_its_target_connection_when_the_inlet_node_dies_behind_the_relay(
        cli: Cli, home: Path, three: dict[str, str]) -> None:
    """The analysis node is killed: no TCP connection of the bank node breaks (its link is to
    the relay node), yet the outlet closes the PostgreSQL-like target connection once the
    inlet's keepalives stop (here after 2 s; 90 s by default)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(15)
        port = server.getsockname()[1]
        cli("tcp-outlet", "create", "--at", "bank", "--to", f"127.0.0.1:{port}",
            "--silence-timeout", "2s")
        cli("relay", "create", "bank", "--to", "bank", "--at", "/node/project")
        inlet = cli.json("tcp-inlet", "create", "--at", "analysis", "--to",
                         "/node/project/secure/api/service/forward_to_bank/secure/api/service/"
                         "outlet", "--authorized", three["bank"], "--keepalive", "300ms")
        assert inlet["keepalive"] == 0.3
        host, _, client_port = inlet["address"].rpartition(":")
        with socket.create_connection((host, int(client_port)), timeout=15) as client:
            client.sendall(b"x")
            target, _ = server.accept()
            with target:
                target.settimeout(15)
                assert target.recv(1) == b"x"
                target.settimeout(4)  # idle for twice the silence timeout: keepalives flow
                with pytest.raises(TimeoutError):
                    target.recv(1)
                shown = cli.json("tcp-outlet", "show", "outlet", "--at", "bank")
                assert shown["silence_timeout"] == 2 and shown["keepalives"] >= 5
                assert shown["silent_closed"] == 0 and shown["active"] == 1

                pid = int((home / "nodes" / "analysis" / "pid").read_text())
                os.kill(pid, signal.SIGKILL)
                killed = time.monotonic()
                target.settimeout(15)
                try:
                    assert target.recv(1) == b""
                except ConnectionResetError:
                    pass
                closed = time.monotonic() - killed
        print(f"the target connection closed {closed:.2f}s after the inlet node died")
        assert closed < 8  # (2 s of silence, then the outlet's next check; room for a busy host)
        shown = cli.json("tcp-outlet", "show", "outlet", "--at", "bank")
        assert shown["silent_closed"] == 1 and shown["active"] == 0
        assert "Silence timeout: 2s" in cli("tcp-outlet", "show", "outlet", "--at", "bank").stdout
