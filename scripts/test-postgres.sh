#!/usr/bin/env bash
# Makes a PostgreSQL server on loopback ready for the tests and prints its SQLAlchemy URL.
# Installs Debian's postgresql when it is missing (as root), starts the cluster, and creates
# the role and database the tests use. Safe to run again. Prints nothing and exits 1 when it
# cannot (no root to install, no cluster): the PostgreSQL tests then say so.
set -euo pipefail
PORT="${TIER2_PG_PORT:-5432}"
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || exit 1
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >&2
fi
read -r VERSION CLUSTER _ < <(pg_lsclusters --no-header | head -n 1) || true
if [ -z "${VERSION:-}" ]; then
  VERSION=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
  CLUSTER=main
  pg_createcluster "$VERSION" "$CLUSTER" --port "$PORT" >&2
fi
if ! pg_lsclusters --no-header | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c' | grep -q online; then
  pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
fi
PORT=$(pg_lsclusters --no-header | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $3}')
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -n -u postgres "$@"; fi; }
as_postgres psql -p "$PORT" -qAtc "SELECT 1 FROM pg_roles WHERE rolname='tier2'" | grep -q 1 \
  || as_postgres psql -p "$PORT" -qc "CREATE ROLE tier2 LOGIN PASSWORD 'tier2' CREATEDB" >&2
# DROP DATABASE ... WITH (FORCE) terminates the sessions still in a test database; one of
# them can be an autovacuum worker, which only a member of pg_signal_backend may signal.
as_postgres psql -p "$PORT" -qc "GRANT pg_signal_backend TO tier2" >&2
as_postgres psql -p "$PORT" -qAtc "SELECT 1 FROM pg_database WHERE datname='tier2_test'" | grep -q 1 \
  || as_postgres createdb -p "$PORT" -O tier2 tier2_test >&2
echo "postgresql+psycopg://tier2:tier2@127.0.0.1:${PORT}/tier2_test"
