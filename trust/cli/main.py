"""Entry point of the ``truststack`` command.

Nouns are registered in :data:`NOUNS` with the module that defines them and a one-line summary;
a noun's module is imported only when that noun is used, so ``truststack --help`` stays fast.
Each noun module defines a ``click.Group`` (or command) named ``cli``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from trust.cli import common, progress

NOUNS: dict[str, tuple[str, str]] = {
    "identity": ("trust.cli.identity", "Create, rotate, export, import and verify identities."),
    "vault": ("trust.cli.vault", "Create, list, show and delete vaults that hold keys."),
    "policy": ("trust.cli.policy", "Create, show, list, delete, test and lint access policies."),
    "credential": ("trust.cli.credential",
                   "Issue, verify, store, list and present credentials (selective disclosure)."),
    "schema": ("trust.cli.schema", "Create, show, list and delete credential schemas."),
    "node": ("trust.cli.node", "Create, list, show, stop and delete nodes that route messages."),
    "message": ("trust.cli.message", "Send a message along a route and print the reply."),
    "secure-channel": ("trust.cli.secure_channel",
                       "Create, list, show and delete secure channels between nodes."),
    "secure-channel-listener": ("trust.cli.secure_channel_listener",
                                "Create, list and delete secure-channel listeners on nodes."),
    "relay": ("trust.cli.relay", "Create, list, show and delete relays to reach nodes behind firewalls."),
    "authority": ("trust.cli.authority",
                  "Create, show and delete authorities; manage members; read the audit log."),
    "ticket": ("trust.cli.ticket", "Create one-time enrollment tickets at an authority."),
    "enroll": ("trust.cli.enroll",
               "Redeem an enrollment ticket: become a member and store the credential."),
    "stream": ("trust.cli.stream", "Create, push to, pull from, list, show and delete streams on nodes."),
    "tcp-outlet": ("trust.cli.tcp_outlet", "Create, list, show and delete TCP outlets (portals)."),
    "tcp-inlet": ("trust.cli.tcp_inlet", "Create, list, show and delete TCP inlets (portals)."),
    "demo": ("trust.cli.demo", "Run the whole toolkit once, end to end, on a temporary home."),
}

EPILOG = """\b
Examples:
  truststack demo
  truststack identity create alice
  truststack identity show alice --output json
  truststack --output json identity list
  truststack identity export alice > alice.hex && truststack identity verify @alice.hex
"""


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(NOUNS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = NOUNS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = module.cli
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, NOUNS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="truststack", prog_name="truststack")
@click.option("--verbose", is_flag=True, help="Show a traceback when a command fails (also after "
              "the noun).")
@click.option("--output", type=common.OUTPUT_CHOICE, default=None,
              help="Output format of the command: plain (default) or json (also after the noun).")
def cli(verbose: bool, output: str | None) -> None:
    """truststack: identities, credentials, policies, vaults, nodes and secure channels (Ockam-compatible)."""
    common.STATE.verbose = verbose
    progress.install()  # a spinner on stderr (terminals only) while an HSM or a KMS answers
    if output is not None:
        common.STATE.output = output


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; turn every known error into one line on stderr and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    code = common.run_cli(cli, args)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
