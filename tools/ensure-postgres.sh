#!/usr/bin/env bash
# Make sure PostgreSQL 15's server binaries are on this machine.
# Found under /usr/lib/postgresql/15/bin, $PG_BINDIR or via pg_config: nothing to do.
# Missing and root: install Debian's postgresql-15. Missing otherwise: say what to install.
set -euo pipefail
have() { [ -n "${1:-}" ] && [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ]; }
for dir in "${PG_BINDIR:-}" /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)"; do
  if have "$dir"; then exit 0; fi
done
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "PostgreSQL 15 server binaries not found: installing Debian's postgresql-15" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql-15 >/dev/null
  # The package starts a cluster of its own on 5432; the harness never uses it.
  have /usr/lib/postgresql/15/bin && exit 0
fi
echo "PostgreSQL 15 server binaries (initdb, pg_ctl) not found. Install Debian's postgresql-15" \
     "(sudo apt-get install postgresql-15) or point PG_BINDIR at their directory." >&2
exit 1
