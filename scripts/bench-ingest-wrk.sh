#!/usr/bin/env bash
# Durable intake under wrk, workers running, on SQLite and on PostgreSQL, each beside a no-op
# handler in the same run (docs/BENCHMARKS.md, "Durable intake under an external load
# generator"). Installs wrk from Debian's packages when it is missing.
#   bash scripts/bench-ingest-wrk.sh [SECONDS] [POSTGRES_SERVER_URL]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"
pg="${2:-postgres://postgres@127.0.0.1:5432}"
if ! command -v wrk >/dev/null; then
    echo "installing wrk (apt-get install wrk)" >&2
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
cargo build --release -p driftbridge
bin=./target/release/driftbridge
echo "== SQLite (a fresh temporary file)"
"$bin" bench ingest-wrk --seconds "$secs"
if command -v psql >/dev/null && psql "$pg/postgres" -qc 'SELECT 1' >/dev/null 2>&1; then
    echo "== PostgreSQL (a fresh database bench_wrk on $pg)"
    psql "$pg/postgres" -qc 'DROP DATABASE IF EXISTS bench_wrk' -c 'CREATE DATABASE bench_wrk'
    "$bin" --database-url "$pg/bench_wrk" bench ingest-wrk --seconds "$secs"
else
    echo "== PostgreSQL: no server at $pg, skipped" >&2
fi
