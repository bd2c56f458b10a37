"""Helpers for the engine's integration tests (pg_migrate): a set written to disk, and a
schema dump that leaves out the engine's own tables."""

import os
import subprocess
import time

HISTORY = "public.schema_migrations"


def make_set(base, files, name="phase_t"):
    """Write {relative path: text or bytes} as a migration set; return its path."""
    root = base / name
    root.mkdir(exist_ok=True)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return str(root)


def schema_without_engine_tables(db, table=HISTORY):
    """``pg_dump --schema-only`` of db without the history table and its log (which the engine creates
    and keeps), so a schema after a full rollback can be compared with the one before the first run."""
    cluster = db.cluster
    out = subprocess.run([os.path.join(cluster.bindir, "pg_dump"), "--schema-only", "--no-owner",
                          "--exclude-table=%s" % table, "--exclude-table=%s_log*" % table, "-d", db.name],
                         env=cluster.env(), capture_output=True, text=True, check=True).stdout
    return "\n".join(line for line in out.splitlines()
                     if not line.startswith("\\restrict") and not line.startswith("\\unrestrict"))


def set_versions(db, table=HISTORY):
    return [v for v in db.versions(table) if not v.startswith("phase_")]


def log_rows(db, table=HISTORY):
    """The log's rows as 'version|action|run_id', oldest first."""
    out = db.psql("SELECT version || '|' || action || '|' || coalesce(run_id, '') FROM %s_log ORDER BY id" % table)
    return out.splitlines() if out else []


def wait_for(predicate, seconds=60):
    """True once predicate() holds, polled every 0.1 s; False after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
