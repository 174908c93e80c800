#!/usr/bin/env bash
# Install everything the tests need and run the whole suite twice: on the embedded SQLite store,
# then on a real PostgreSQL server started here for the purpose. Used by .ci/run and the README.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: PostgreSQL for the second pass, Chromium to render the run report.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql chromium >/dev/null
fi
# The pinned, tested dependency set (constraints.txt, refreshed by scripts/lock.sh): the pins also
# replace other versions already installed here, so every machine tests the same set.
python3 -m pip install -q -e '.[test]' -c constraints.txt

# A private PostgreSQL cluster on a spare port, stopped when this script ends.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PGROOT=$(mktemp -d /tmp/genobatch-pg.XXXXXX)
PGPORT=${GENOBATCH_TEST_PGPORT:-$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")}
run_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$PGROOT"
run_pg "$PGBIN/initdb -D $PGROOT/data -A trust -U postgres >/dev/null"
run_pg "$PGBIN/pg_ctl -D $PGROOT/data -l $PGROOT/log -w -o '-p $PGPORT -k $PGROOT -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200' start >/dev/null"
trap 'run_pg "$PGBIN/pg_ctl -D $PGROOT/data -m immediate stop" >/dev/null 2>&1 || true; rm -rf "$PGROOT"' EXIT

# A private single-node Slurm cluster for tests/slurm (scripts/slurm-cluster.sh installs slurm-wlm, munge,
# slurmdbd and MariaDB if missing); the tests skip without it, but fail under CI=true.
if slurm_env=$(scripts/slurm-cluster.sh start); then eval "$slurm_env"; else echo "no Slurm cluster: tests/slurm skip" >&2; fi

ruff check .
# Several workers per pass (pytest-xdist): most tests wait on real servers and engines rather than on a
# CPU. Tests that share a machine-wide resource run on one worker (SERIAL_GROUPS, tests/conftest.py).
WORKERS=(-n "${GENOBATCH_TEST_WORKERS:-4}" --dist loadgroup)
echo "== pass 1: SQLite store =="
python3 -m pytest -q "${WORKERS[@]}" "$@"
echo "== pass 2: PostgreSQL store (tests that use a store; no_store and remote_engine ones ran in pass 1) =="
GENOBATCH_TEST_POSTGRES="postgresql://postgres@127.0.0.1:$PGPORT/postgres" \
    python3 -m pytest -q "${WORKERS[@]}" -m "not no_store and not remote_engine" "$@"
