"""Commands that talk to an HSM show a spinner on a terminal and nothing when piped (issue 10,
item 10), through the real executable against SoftHSM."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_progress import SPINNER_CHARS, run_with_pty_stderr
from tests.conftest import TRUSTSTACK, Cli
from tests.fixtures.softhsm import SoftHsm


def test_hsm_commands_spin_on_a_terminal_only(tmp_path: Path, softhsm: SoftHsm) -> None:
    cli = Cli(tmp_path / "home")
    env = {"HSM_PIN": softhsm.pin, "TRUSTSTACK_HOME": str(cli.home)}
    piped = cli("vault", "create", "hsm", "--pkcs11", softhsm.uri(), "--pin-env", "HSM_PIN", env=env)
    assert piped.stderr == "" and not SPINNER_CHARS & set(piped.stdout)
    piped = cli("identity", "create", "alice", "--vault", "hsm", env=env)
    assert piped.stderr == "" and not SPINNER_CHARS & set(piped.stdout)

    code, out, tty = run_with_pty_stderr(
        [TRUSTSTACK, "vault", "create", "hsm2", "--pkcs11", softhsm.uri(token="second"),
         "--pin-env", "HSM_PIN"], env=env)
    assert code == 0 and out.strip() == "Created vault hsm2 (pkcs11)"
    assert SPINNER_CHARS & set(tty) and "vault hsm2 (pkcs11): checking the backend" in tty
    code, out, tty = run_with_pty_stderr([TRUSTSTACK, "identity", "create", "bob", "--vault", "hsm"],
                                         env=env)
    assert code == 0 and not SPINNER_CHARS & set(out) and "\x1b" not in out
    assert SPINNER_CHARS & set(tty) and "vault hsm (pkcs11): generating a key" in tty
