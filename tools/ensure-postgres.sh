#!/usr/bin/env bash
# Make sure PostgreSQL 15's server binaries, PgBouncer and the system Python's psycopg2 (the modules
# run with /usr/bin/python3 when they run on a database host as the postgres OS user) are here.
# PostgreSQL found under /usr/lib/postgresql/15/bin, $PG_BINDIR or via pg_config, and
# pgbouncer on PATH or in /usr/sbin: nothing to do. Missing and root: install Debian's
# postgresql-15 / pgbouncer. Missing otherwise: say what to install.
set -euo pipefail
have_pg() { [ -n "${1:-}" ] && [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ]; }
have_sys_psycopg2() { [ ! -x /usr/bin/python3 ] || /usr/bin/python3 -c 'import psycopg2' 2>/dev/null; }
have_pgbouncer() { command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; }
find_pg() {
  for dir in "${PG_BINDIR:-}" /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)"; do
    if have_pg "$dir"; then return 0; fi
  done
  return 1
}
missing=()
find_pg || missing+=(postgresql-15)
have_pgbouncer || missing+=(pgbouncer)
have_sys_psycopg2 || missing+=(python3-psycopg2)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "Not found: ${missing[*]}; installing Debian's ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  # The packages start a cluster on 5432 and a pgbouncer on 6432 of their own; the
  # harness never uses them. Stop the pgbouncer service so that it holds no port.
  if [[ " ${missing[*]} " == *" pgbouncer "* ]]; then
    (service pgbouncer stop || systemctl stop pgbouncer || true) >/dev/null 2>&1
  fi
  find_pg && have_pgbouncer && have_sys_psycopg2 && exit 0
fi
find_pg || echo "PostgreSQL 15 server binaries (initdb, pg_ctl) not found. Install Debian's postgresql-15" \
                "(sudo apt-get install postgresql-15) or point PG_BINDIR at their directory." >&2
have_sys_psycopg2 || echo "psycopg2 for /usr/bin/python3 not found. Install Debian's python3-psycopg2." >&2
have_pgbouncer || echo "pgbouncer not found. Install Debian's pgbouncer (sudo apt-get install pgbouncer)." >&2
exit 1
