"""``node show`` lists a running node's secure channels, relays (created and hosted), inlets
and outlets with their counters, in JSON and in plain text (background nodes, always stopped)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.fixtures.echo import echo_server, through
from tests.fixtures.nodes import stop_all_nodes


@pytest.fixture
def echo_port() -> Iterator[int]:
    with echo_server() as port:
        yield port


def test_node_show_lists_channels_relays_inlets_and_outlets(cli: Cli, home: Path,
                                                           echo_port: int) -> None:
    try:
        ids = {name: cli.json("node", "create", name)["identifier"]
               for name in ("hub", "bank", "analysis")}
        cli("tcp-outlet", "create", "--at", "bank", "--to", f"127.0.0.1:{echo_port}")
        cli("relay", "create", "bank", "--to", "bank", "--at", "/node/hub")
        inlet = cli.json("tcp-inlet", "create", "--at", "analysis", "--to",
                         "/node/hub/secure/api/service/forward_to_bank/secure/api/service/outlet",
                         "--authorized", ids["bank"])
        data = b"x" * 5000
        assert through(inlet["address"], data) == data

        hub = cli.json("node", "show", "hub")
        bank = cli.json("node", "show", "bank")
        analysis = cli.json("node", "show", "analysis")

        # the three channels, read back from both ends
        def peers(state: dict[str, object], initiator: bool) -> set[str]:
            return {c["peer"] for c in state["channels"]  # type: ignore[attr-defined]
                    if c["initiator"] is initiator}

        assert peers(analysis, True) == {ids["hub"], ids["bank"]}
        assert peers(bank, True) == {ids["hub"]} and peers(bank, False) == {ids["analysis"]}
        assert peers(hub, False) == {ids["bank"], ids["analysis"]}
        inner = next(c for c in analysis["channels"] if c["peer"] == ids["bank"])
        assert inner["records_sent"] >= 2  # the Ping and the payload at least
        # bytes as ciphertext: the payload and each record's nonce and tag at least, both ways
        assert inner["bytes_sent"] >= len(data) + 2 * 24 and inner["records_received"] >= 2
        assert inner["bytes_received"] >= len(data) + 2 * 24
        back = next(c for c in bank["channels"] if c["peer"] == ids["analysis"])
        assert back["records_received"] >= 2 and back["bytes_received"] >= len(data) + 2 * 24
        assert back["bytes_sent"] >= len(data) + 2 * 24
        # relays: created at bank, hosted at the hub
        assert [r["name"] for r in bank["relays"]] == ["bank"]
        assert bank["relays"][0]["status"] == "registered" and bank["hosted_relays"] == []
        (hosted,) = hub["hosted_relays"]
        assert hosted["name"] == "bank" and hosted["owner"] == ids["bank"] and hosted["live"]
        # (only what enters through forward_to_bank is counted: the inner channel's handshake;
        # the rest follows the return routes the relay set up)
        assert hosted["bytes"] > 0 and hosted["messages"] >= 1
        # portals with their byte counts
        (shown_inlet,) = analysis["inlets"]
        assert shown_inlet["bytes_in"] == len(data) == shown_inlet["bytes_out"]
        (shown_outlet,) = bank["outlets"]
        assert shown_outlet["bytes_out"] == len(data) == shown_outlet["bytes_in"]
        assert shown_outlet["connections"] == 1 and hub["inlets"] == [] == hub["outlets"]

        plain = cli("node", "show", "analysis").stdout
        assert "Secure channels: 2" in plain and "Inlets: 1" in plain
        assert f"bytes in {len(data)}, out {len(data)}" in plain
        assert f"peer {ids['bank']}" in plain
        assert len(re.findall(r"  sent \d+ records, \d+ bytes; received \d+ records, \d+ bytes$",
                              plain, re.M)) == 2
        plain = cli("node", "show", "hub").stdout
        assert "Relays hosted: 1" in plain and f"owner {ids['bank']}" in plain
        plain = cli("node", "show", "bank").stdout
        assert "Relays created: 1" in plain and "Outlets: 1" in plain
        assert f"-> 127.0.0.1:{echo_port}" in plain
        # a stopped node shows its record only
        cli("node", "stop", "hub")
        assert "channels" not in cli.json("node", "show", "hub")
    finally:
        stop_all_nodes(home)
