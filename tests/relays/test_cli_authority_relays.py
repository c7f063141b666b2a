"""An authority node hosts relays for its members only as their credentials allow: it trusts
the credentials it issues, so registering relay NAME there needs ``ockam-relay`` set to NAME
(or ``*``) in a credential from it. (It used to act as a node without an authority: any
member, or any node with no credential at all, could register, and take over, any name.)"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli, assert_one_line_error
from tests.node.test_cli import nodes  # noqa: F401  (the fixture: every node stopped at the end)


def test_an_authority_node_lets_only_its_ockam_relay_members_register(
        nodes: Cli, tmp_path: Path) -> None:  # noqa: F811
    cli = nodes
    cli("identity", "create", "admin")
    cli("authority", "create", "project")
    project = "/node/project"
    for name, extra in (("bank", ["--relay", "bank"]), ("analysis", [])):
        ticket = cli("ticket", "create", "--at", "project", "--attribute", f"role={name}",
                     *extra).out
        (tmp_path / f"{name}.ticket").write_text(ticket + "\n")
        cli("node", "create", name, "--ticket", f"@{tmp_path / name}.ticket")
    cli("node", "create", "stranger")

    # bank holds ockam-relay=bank: its relay is registered
    assert cli.json("relay", "create", "bank", "--to", "bank", "--at", project,
                    "--timeout", "10s")["status"] == "registered"
    # analysis (a member without ockam-relay) is refused a new name, and a stranger (no
    # credential) bank's
    for node, relay in (("analysis", "other"), ("stranger", "bank")):
        r = cli("relay", "create", relay, "--to", node, "--at", project, "--timeout", "1500ms",
                ok=False)
        assert_one_line_error(r, f"relay {relay} was not registered")
        assert "refused? see its log" in r.stderr  # (the reason, not just the timeout)
        assert cli.json("relay", "list", "--at", node) == []
    [hosted] = cli.json("relay", "list", "--at", "project")
    bank = cli.json("node", "show", "bank")["identifier"]
    assert (hosted["name"], hosted["role"], hosted["owner"]) == ("bank", "hosted", bank)
