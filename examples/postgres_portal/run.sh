#!/usr/bin/env bash
# Bank Corp / Analysis Corp: PostgreSQL through an end-to-end encrypted TCP portal, via a relay.
#
# Runs the commands of README.md (next to this script) on one machine, each party in its own
# truststack home and directory (they share nothing but the tickets the admin hands out), against
# a throwaway PostgreSQL server (Debian's postgresql package; as root the server runs as the
# postgres user), then queries the bank's database with psql through the analysis inlet. Ports are
# free ones instead of README's 4000, 5432 and 15432. Everything is stopped and removed on exit,
# also on failure or Ctrl-C.
set -euo pipefail

command -v truststack >/dev/null || { echo "truststack is not on PATH (pip install truststack)" >&2; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
PGBIN=${PGBIN:-$(dirname "$(command -v initdb || echo /nonexistent/initdb)")}
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL is not installed (apt-get install -y postgresql)" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PROJECT_PORT=$(free_port)
PG_PORT=$(free_port)
INLET_PORT=$(free_port)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/truststack-postgres-portal-XXXXXX")
PGROOT=$(mktemp -d /tmp/truststack-postgres-portal-db-XXXXXX)  # (reachable by the postgres user)
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
    local who
    for who in analysis bank project; do
        [ -d "$WORK/$who/home" ] && TRUSTSTACK_HOME="$WORK/$who/home" truststack node delete --all >/dev/null 2>&1 || true
    done
    if [ -f "$PGROOT/data/postmaster.pid" ]; then
        as_postgres "$PGBIN/pg_ctl" -D "$PGROOT/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK" "$PGROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# side WHO 'COMMAND': print the command as WHO types it, then run it in WHO's home and directory
side() {
    local who=$1 cmd=$2
    printf '[%s] $ %s\n' "$who" "$cmd"
    (cd "$WORK/$who" && export TRUSTSTACK_HOME="$WORK/$who/home" && eval "$cmd")
}
psql() { "$PGBIN/psql" -X "$@"; }
mkdir -p "$WORK/project" "$WORK/bank" "$WORK/analysis"

echo "== Bank Corp's database (PostgreSQL on 127.0.0.1:$PG_PORT, in Bank Corp's private network)"
[ "$(id -u)" = 0 ] && chown postgres "$PGROOT"
as_postgres "$PGBIN/initdb" -D "$PGROOT/data" -A trust -U postgres --no-sync -E UTF8 --locale=C >/dev/null
as_postgres "$PGBIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/log" -w start \
    -o "-k $PGROOT -p $PG_PORT -c listen_addresses=127.0.0.1 -c fsync=off" >/dev/null
side bank "psql -q -h 127.0.0.1 -p $PG_PORT -U postgres -c \"CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric); INSERT INTO accounts VALUES (1, 'Ada', 1250000.00), (2, 'Grace', 73.50)\""

echo "== The project's admin: an authority (and relay node), and one ticket per member"
side project "truststack identity create admin"
side project "truststack authority create project --tcp-listener-address 127.0.0.1:$PROJECT_PORT"
side project "truststack ticket create --at project --attribute role=bank --relay bank > bank.ticket"
side project "truststack ticket create --at project --attribute role=analyst > analysis.ticket"
cp "$WORK/project/bank.ticket" "$WORK/bank/"          # (the admin sends each ticket to its member)
cp "$WORK/project/analysis.ticket" "$WORK/analysis/"

echo "== Bank Corp: a node beside the database, a relay at the project, an outlet to PostgreSQL"
side bank "truststack node create bank --ticket @bank.ticket"
side bank "truststack relay create bank --to bank --at /dnsaddr/127.0.0.1/tcp/$PROJECT_PORT"
side bank "truststack tcp-outlet create --at bank --to 127.0.0.1:$PG_PORT --allow '(= subject.role \"analyst\")'"

echo "== Analysis Corp: a node beside its client, an inlet via the relay"
side analysis "truststack node create analysis --ticket @analysis.ticket"
side analysis "truststack tcp-inlet create --at analysis --from 127.0.0.1:$INLET_PORT --via bank"

echo "== Analysis Corp's unchanged client, through the portal"
side analysis "psql -h 127.0.0.1 -p $INLET_PORT -U postgres -c 'SELECT owner, balance FROM accounts ORDER BY id'"

echo "== What moved"
side bank "truststack tcp-outlet list --at bank"
side project "truststack relay list --at project"
echo "done: psql reached Bank Corp's database through the relay; cleaning up"
