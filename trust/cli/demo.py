"""``truststack demo``: run the end-to-end scenario of :mod:`trust.demo`."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import click

from trust.cli.common import emit, output_option, run


@click.command("demo")
@click.option("--home", type=click.Path(file_okay=False),
              help="Run in this (new or empty) home and keep it; default: a temporary home.")
@output_option
def cli(home: str | None, output: str) -> None:
    """Run the whole toolkit once: identities, credentials, policies, selective disclosure,
    rotation and revocation, and a message routed between two nodes over TCP.

    Everything runs on an embedded SQLite home (a temporary one unless --home is given); the
    command exits 0 only if every step behaves as it should.

    \b
    Example:
      truststack demo
      truststack demo --home ./demo-home --output json
    """
    from trust.demo import Step, run_demo
    from trust.errors import UsageError

    if home is not None and Path(home).exists() and any(Path(home).iterdir()):
        raise UsageError(f"--home {home} is not empty; the demo needs a new or empty home")
    where = Path(home) if home else Path(tempfile.mkdtemp(prefix="truststack-demo-"))

    def show(s: Step) -> None:
        if output == "plain":
            click.echo(f"✔ {s.title} ({s.ms:.0f} ms)\n    {s.detail}")

    try:
        if output == "plain":
            click.echo(f"truststack demo in {where if home else 'a temporary home'}")
        report = run(run_demo(where, on_step=show))
    finally:
        if home is None:
            shutil.rmtree(where, ignore_errors=True)
    emit(output, report.to_dict(), "All steps passed.")
