"""A real PostgreSQL server behind a portal: queries from psycopg and from ``psql`` go through
inlet -> channel -> relay -> channel -> outlet -> PostgreSQL, and the relay node's transport
carries only ciphertext (asserted on every byte it moved)."""

from __future__ import annotations

import asyncio
import glob
import shutil
import subprocess

import psycopg

from tests.fixtures.postgres import PostgresServer
from tests.node.helpers import arun
from tests.portals.helpers import seed_topology

MARKER = "plaintext-marker-7f3a9c"


def _psql() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)
    path = found[0] if found else shutil.which("psql")
    assert path, "psql is not installed (apt-get install postgresql; .ci/run does)"
    return path


def _queries(port: int, database: str) -> list[tuple[object, ...]]:
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=database,
                         connect_timeout=10) as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, owner text)")
        conn.execute("INSERT INTO accounts VALUES (1, %s), (2, 'bank corp')", (MARKER,))
        rows = conn.execute("SELECT id, owner FROM accounts ORDER BY id").fetchall()
        big = conn.execute("SELECT repeat('x', 200000)").fetchone()
        assert big is not None and big[0] == "x" * 200000  # several portal chunks
        return rows


def test_postgresql_through_a_portal_via_a_relay(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("portal")
    database = url.rsplit("/", 1)[1]

    async def main() -> None:
        async with seed_topology(f"127.0.0.1:{postgres_server.port}") as seed:
            rows = await asyncio.to_thread(_queries, seed.inlet.port, database)
            assert rows == [(1, MARKER), (2, "bank corp")]
            psql = await asyncio.to_thread(
                subprocess.run, [_psql(), "-X", "-A", "-t", "-h", "127.0.0.1", "-p",
                                 str(seed.inlet.port), "-U", "postgres", "-d", database, "-c",
                                 "SELECT count(*) FROM accounts"],
                capture_output=True, text=True, timeout=30)
            assert psql.returncode == 0, psql.stderr
            assert psql.stdout.strip() == "2"
            await asyncio.sleep(0.1)
            assert seed.inlet.stats.connections == 2 and seed.outlet.stats.connections == 2
            captured = bytes(seed.tap.captured)
            assert len(captured) > seed.inlet.stats.bytes_in  # everything went through it
            for plaintext in (MARKER, "bank corp", "CREATE TABLE accounts", "SELECT count",
                              database, "x" * 64):
                assert plaintext.encode() not in captured, plaintext

    arun(main(), timeout=60)
