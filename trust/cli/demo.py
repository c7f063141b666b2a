"""``truststack demo``: run the seed scenario of :mod:`trust.demo`."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import click

from trust.cli.common import emit, output_option, run


@click.command("demo")
@click.option("--home", type=click.Path(file_okay=False),
              help="Run in this (new or empty) home and keep it; default: a temporary home.")
@click.option("--postgres", is_flag=True,
              help="Bank Corp's service is PostgreSQL instead of an HTTP server: a throwaway "
                   "server the demo starts (needs initdb: apt-get install postgresql).")
@click.option("--postgres-url", metavar="URL",
              help="Bank Corp's service is the PostgreSQL server at URL "
                   "(postgresql://USER[:PASSWORD]@HOST:PORT/DB); queried through the portal.")
@output_option
def cli(home: str | None, postgres: bool, postgres_url: str | None, output: str) -> None:
    """Run the seed scenario on this machine, on 127.0.0.1, with real node processes.

    First, in this process: identities, credentials, an access policy, selective disclosure,
    key rotation and revocation. Then a "project" node (authority and relay), a "bank" node
    enrolled with a one-time ticket, with a relay at the project and an outlet to Bank Corp's
    service (an HTTP server the demo starts, or PostgreSQL), and an "analysis" node enrolled
    with another ticket, with an inlet via the relay. A request goes through the portal; the
    three secure channels are read back from the nodes, with the policy decisions and the
    bytes moved; a wiretap in front of the project node shows it carried only ciphertext.
    The nodes are stopped and deleted at the end (also on failure or Ctrl-C); the command
    exits 0 only if every step behaves as it should.

    \b
    Example:
      truststack demo
      truststack demo --home ./demo-home --output json
      truststack demo --postgres
    """
    from trust.demo import PostgresOption, Step, run_demo
    from trust.errors import UsageError

    if home is not None and Path(home).exists() and any(Path(home).iterdir()):
        raise UsageError(f"--home {home} is not empty; the demo needs a new or empty home")
    if postgres and postgres_url is not None:
        raise UsageError("give --postgres (a server the demo starts) or --postgres-url, not both")
    if postgres_url is not None:
        from trust.demo import postgres_target

        postgres_target(postgres_url)
    pg = PostgresOption(postgres_url) if postgres or postgres_url is not None else None
    where = Path(home) if home else Path(tempfile.mkdtemp(prefix="truststack-demo-"))

    def show(s: Step) -> None:
        if output == "plain":
            click.echo(f"✔ {s.title} ({s.ms:.0f} ms)\n    {s.detail}")

    try:
        if output == "plain":
            click.echo(f"truststack demo in {where if home else 'a temporary home'}")
        report = run(run_demo(where, on_step=show, postgres=pg))
    finally:
        if home is None:
            shutil.rmtree(where, ignore_errors=True)
    emit(output, report.to_dict(), f"All steps passed in {report.total_ms / 1000:.1f} s.")
