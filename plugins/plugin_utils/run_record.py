# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run record of a rollout, defined once: what is collected per database, how the
record is built from it, what is never allowed in (secrets), how it is validated
against its JSON Schema (``run_record.schema.json`` beside this file), rendered as
Markdown for a change ticket, and written (0600 files in a 0700 directory).

Plain Python: the callback plugin ``teei.db_rollout.rollout_record`` and the action
``teei.db_rollout.rollout_record`` (the record role) feed it; unit tests import it
without Ansible."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import getpass
import json
import os
import re
import tempfile
import uuid

try:
    import jsonschema
except ImportError:  # the record is still written; only its validation is skipped
    jsonschema = None

SCHEMA_VERSION = 1
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_record.schema.json")
DEFAULT_RECORD_DIR = "~/.ansible/teei_db_rollout/records"

# The facts the record takes, as the roles set them (one per role), and the run context.
RESULT_FACTS = ("preflight_result", "review_result", "backup_result", "maintenance_result",
                "migrate_result", "verify_result", "restore_result")
CONTEXT_FACT = "rollout_run"
CONTEXT_KEYS = ("run_id", "change_ticket", "operator", "environment", "inventory", "playbook",
                "started_at", "record_dir")

REDACTED = "********"
# A key that names a secret is dropped with its value, wherever it is nested.
SECRET_KEY = re.compile(r"pass(wd|word|phrase)?($|_)|passw|secret|token|api_?key|private_?key|credential|vault",
                        re.IGNORECASE)
# Keys Ansible adds to a task result that are not the role's result (invocation holds module arguments).
ANSIBLE_INTERNAL_KEYS = ("invocation", "ansible_facts", "_ansible_no_log", "_ansible_verbose_always",
                         "_ansible_delegated_vars", "_ansible_item_label", "_ansible_ignore_errors")
# Shorter values under secret keys are not searched for in text (they would blank ordinary words).
MIN_SECRET_LENGTH = 4
RUN_ID_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def utc_now():
    """ISO 8601 UTC time, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id():
    """A sortable, unique run id: UTC time and a random suffix (e.g. 20261202T220000Z-1a2b3c4d)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def check_run_id(run_id):
    """The run id names the record's files: refuse one that is not a plain file name."""
    if not RUN_ID_SAFE.match(run_id or ""):
        raise ValueError("run id %r must be 1 to 128 letters, digits, '.', '_' or '-' (it names the record's files)"
                         % (run_id,))
    return run_id


def is_secret_key(key):
    return bool(SECRET_KEY.search(str(key)))


def secret_values(variables):
    """Every string held under a secret-looking key of a mapping (nested), to blank in text."""
    found = set()

    def walk(value, secret):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, secret or is_secret_key(key))
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, secret)
        elif secret and isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
            found.add(value)

    walk(variables, False)
    return found


def host_secrets(hostvars, names, skip=(KeyError,)):
    """Values of the secret-looking variables of these hosts, from Ansible's hostvars (extra vars and vaulted
    values included). A variable that cannot be resolved (an exception of skip) is left out."""
    found = set()
    for name in names:
        try:
            host_vars = hostvars[name]
            keys = [key for key in host_vars.keys() if is_secret_key(key)]
        except skip:
            continue
        for key in keys:
            try:
                found |= secret_values({key: host_vars[key]})
            except skip:
                continue
    return found


def scrub(value, secrets=()):
    """A JSON-safe copy of value without secret keys, Ansible's internal keys, or any known secret value."""
    ordered = sorted(set(secrets), key=len, reverse=True)

    def clean(item):
        if isinstance(item, dict):
            return dict((str(k), clean(v)) for k, v in item.items()
                        if not is_secret_key(k) and str(k) not in ANSIBLE_INTERNAL_KEYS)
        if isinstance(item, (list, tuple, set)):
            return [clean(v) for v in item]
        if item is None or isinstance(item, (bool, int, float)):
            return item
        text = str(item)
        for secret in ordered:
            text = text.replace(secret, REDACTED)
        return text

    return clean(value)


class HostLog(object):
    """What a run left for one database (one inventory host): every value each result fact took,
    the failed tasks, and Ansible's counters for the host when known."""

    def __init__(self, name):
        self.name = name
        self.facts = {}
        self.errors = []
        self.stats = None
        self.failed = False

    def add_fact(self, fact, value):
        """Keep a value the fact took; a skipped task's registered placeholder is not a result."""
        if fact not in RESULT_FACTS:
            raise ValueError("%s is not a result fact of the rollout (one of %s)" % (fact, ", ".join(RESULT_FACTS)))
        if isinstance(value, dict) and not value.get("skipped"):
            self.facts.setdefault(fact, []).append(value)

    def add_error(self, task, msg, unreachable=False, ignored=False):
        """A failed task; whether the host failed (rescued and ignored errors do not count) is set apart."""
        self.errors.append(dict(task=task, msg=str(msg), unreachable=bool(unreachable), ignored=bool(ignored)))

    def last(self, fact):
        values = self.facts.get(fact)
        return values[-1] if values else None

    def failed_fact(self):
        """The first result fact whose last value failed, or None."""
        for fact in RESULT_FACTS:
            if (self.last(fact) or {}).get("failed"):
                return fact
        return None

    def has_results(self):
        return bool(self.facts or self.errors)


COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def collection_version(root=COLLECTION_ROOT):
    """The collection's version: MANIFEST.json of an installed collection, else galaxy.yml of a checkout."""
    try:
        with open(os.path.join(root, "MANIFEST.json")) as handle:
            return json.load(handle)["collection_info"]["version"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        with open(os.path.join(root, "galaxy.yml")) as handle:
            match = re.search(r"^version:\s*['\"]?([^'\"\s#]+)", handle.read(), re.MULTILINE)
    except OSError:
        return None
    return match.group(1) if match else None


def record_directory(path):
    """The record directory as an absolute path (~ expanded; the default when empty)."""
    return os.path.abspath(os.path.expanduser(path or DEFAULT_RECORD_DIR))


def new_context(run_id=None, change_ticket=None, operator=None, environment=None, inventory=None, playbook=None,
                record_dir=None, started_at=None):
    """The run context (the rollout_run fact): who runs what, where, since when, and where its record goes."""
    return dict(
        run_id=check_run_id(run_id or new_run_id()),
        change_ticket=change_ticket or None,
        operator=operator or getpass.getuser(),
        environment=environment or None,
        inventory=[str(source) for source in (inventory or [])],
        playbook=playbook or None,
        started_at=started_at or utc_now(),
        record_dir=record_directory(record_dir),
    )


def _versions(log):
    migrate = log.facts.get("migrate_result") or []
    preflight = log.last("preflight_result") or {}
    before = migrate[0].get("previous_version") if migrate else preflight.get("current_version")
    after = migrate[-1].get("current_version") if migrate else before
    return dict(before=before, after=after)


def _migrations(log):
    """Every migration the run applied, rehearsed or rolled back on this database, in order."""
    out = []
    for result in log.facts.get("migrate_result") or []:
        for entry in result.get("migrations") or []:
            attempts = entry.get("attempts") or 1
            out.append(dict(version=entry.get("version"), action=entry.get("action"),
                            checksum=entry.get("checksum"), duration_ms=entry.get("duration_ms"),
                            attempts=attempts, lock_wait_retries=max(attempts - 1, 0),
                            statements=entry.get("statements")))
    return out


def _failure(log):
    """Why this database failed, or None: the first failed task, else the first failed result fact."""
    failed_fact = log.failed_fact()
    if not log.failed and not failed_fact:
        return None
    for error in log.errors:
        if not error["ignored"]:
            return "%s: %s" % (error["task"], error["msg"]) if error["task"] else error["msg"]
    if failed_fact:
        return "%s: %s" % (failed_fact, log.last(failed_fact).get("msg") or "failed")
    return "failed (no task message was recorded)"


def _outcome(log, check_mode, run_failed):
    """moved / stayed / failed, and why, for one database."""
    failure = _failure(log)
    if failure:
        return "failed", failure
    versions = _versions(log)
    migrate = log.facts.get("migrate_result") or []
    applied = [v for result in migrate for v in result.get("applied") or []]
    rolled_back = [v for result in migrate for v in result.get("rolled_back") or []]
    if check_mode:
        if applied:
            return "stayed", "check mode: would apply %s" % ", ".join(applied)
        if rolled_back:
            return "stayed", "check mode: would roll back %s" % ", ".join(rolled_back)
        return "stayed", "check mode: nothing to do"
    if versions["before"] != versions["after"] or applied or rolled_back:
        return "moved", "from %s to %s" % (versions["before"] or "nothing", versions["after"] or "nothing")
    if migrate:
        return "stayed", "nothing pending"
    preflight = log.last("preflight_result")
    if preflight and preflight.get("nothing_pending"):
        return "stayed", "nothing pending"
    if run_failed:
        return "stayed", "not reached: the run stopped before this database"
    return "stayed", "no migration ran"


def _database(log, check_mode, run_failed, secrets):
    outcome, reason = _outcome(log, check_mode, run_failed)
    results = {}
    for fact in RESULT_FACTS:
        if log.last(fact) is not None:
            results[fact] = scrub(log.last(fact), secrets)
            results[fact].setdefault("changed", False)
            results[fact].setdefault("failed", False)
    database = None
    for fact in RESULT_FACTS:
        if isinstance(results.get(fact, {}).get("database"), str):
            database = results[fact]["database"]
            break
    return dict(
        host=scrub(log.name),
        database=database,
        outcome=outcome,
        reason=scrub(reason, secrets),
        error=scrub(reason, secrets) if outcome == "failed" else None,
        versions=scrub(_versions(log), secrets),
        migrations=scrub(_migrations(log), secrets),
        results=results,
        errors=scrub(log.errors, secrets),
        stats=log.stats,
    )


def build_record(context, logs, status, check_mode=False, ansible_core=None, collection=None, written_by="callback",
                 ended_at=None, secrets=(), message=None):
    """The run record (schema_version 1) of a run from its context and its hosts' logs.

    status is running (the run has started), succeeded or failed; logs are HostLog objects in run order;
    message says what happened to the run as a whole when no database says it.
    """
    if status not in ("running", "succeeded", "failed"):
        raise ValueError("status must be running, succeeded or failed, not %r" % (status,))
    context = scrub(dict((key, (context or {}).get(key)) for key in CONTEXT_KEYS), secrets)
    run_failed = status == "failed"
    databases = [_database(log, check_mode, run_failed, secrets) for log in logs]
    summary = dict(moved=[], stayed=[], failed=[])
    for db in databases:
        summary[db["outcome"]].append(dict(host=db["host"], reason=db["reason"],
                                           before=db["versions"]["before"], after=db["versions"]["after"]))
    return dict(
        schema_version=SCHEMA_VERSION,
        run_id=context["run_id"],
        change_ticket=context["change_ticket"],
        operator=context["operator"],
        environment=context["environment"],
        inventory=context["inventory"] or [],
        playbook=context["playbook"],
        started_at=context["started_at"],
        ended_at=None if status == "running" else (ended_at or utc_now()),
        check_mode=bool(check_mode),
        versions=dict(ansible_core=ansible_core, collection=collection),
        written_by=written_by,
        outcome=dict(status=status, message=scrub(message, secrets),
                     failed_hosts=[db["host"] for db in databases if db["outcome"] == "failed"],
                     unreachable_hosts=[db["host"] for db in databases
                                        if any(e["unreachable"] for e in db["errors"])]),
        summary=summary,
        databases=databases,
    )


def load_schema():
    with open(SCHEMA_PATH) as handle:
        return json.load(handle)


def validate(record):
    """Problems of a record against the schema, one line each ([] when valid); None when the
    jsonschema library is not installed (then nothing is checked)."""
    if jsonschema is None:
        return None
    validator = jsonschema.Draft7Validator(load_schema())
    return ["%s: %s" % ("/".join(str(p) for p in error.absolute_path) or "(record)", error.message)
            for error in sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path))]


def _cell(value):
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def render_markdown(record):
    """The record as Markdown to paste into a change ticket."""
    out = ["# Rollout run %s" % record["run_id"], ""]
    status = record["outcome"]["status"] + (" (check mode)" if record["check_mode"] else "")
    if record["outcome"]["message"]:
        status += ": " + record["outcome"]["message"]
    out += _table(["Field", "Value"], [
        ("Status", status),
        ("Change ticket", record["change_ticket"] or "none"),
        ("Operator", record["operator"]),
        ("Environment", record["environment"]),
        ("Inventory", ", ".join(record["inventory"])),
        ("Playbook", record["playbook"]),
        ("Started", record["started_at"]),
        ("Ended", record["ended_at"] or "still running"),
        ("ansible-core", record["versions"]["ansible_core"]),
        ("teei.db_rollout", record["versions"]["collection"]),
    ])
    summary = record["summary"]
    out += ["", "## Fleet summary", "",
            "%d moved, %d stayed, %d failed." % (len(summary["moved"]), len(summary["stayed"]),
                                                 len(summary["failed"])), ""]
    rows = [(db["host"], db["outcome"], db["versions"]["before"], db["versions"]["after"], db["reason"])
            for db in record["databases"]]
    out += _table(["Database", "Outcome", "Before", "After", "Why"], rows)
    for db in record["databases"]:
        out += _render_database(db)
    out += ["", "History rows this run added carry run_id `%s`." % record["run_id"], ""]
    return "\n".join(out)


def _render_database(db):
    res = db["results"]
    out = ["", "## %s" % db["host"], "",
           "Outcome: **%s** (%s). Version %s -> %s." % (db["outcome"], db["reason"], db["versions"]["before"],
                                                        db["versions"]["after"])]
    if db["error"]:
        out += ["", "Error: `%s`" % _cell(db["error"])]
    if db["migrations"]:
        out += ["", "Migrations:", ""]
        out += _table(["Version", "Action", "sha256", "ms", "Lock-wait retries"],
                      [(m["version"], m["action"], m["checksum"], m["duration_ms"], m["lock_wait_retries"])
                       for m in db["migrations"]])
    preflight = res.get("preflight_result")
    if preflight:
        out += ["", "Preflight: %s" % _cell(preflight.get("msg")), ""]
        out += _table(["Check", "OK", "Message"],
                      [(b.get("name"), b.get("ok"), b.get("msg")) for b in preflight.get("boxes") or []])
    backup = res.get("backup_result")
    if backup:
        out += ["", "Backup: `%s` (%s bytes, sha256 %s), manifest `%s`." % (
            backup.get("path"), backup.get("size_bytes"), backup.get("sha256"), backup.get("manifest"))]
        if backup.get("restore_command"):
            out += ["", "Restore with: `%s`" % _cell(backup["restore_command"])]
    maintenance = res.get("maintenance_result")
    if maintenance:
        out += ["", "Maintenance (%s): on %s, off %s; sessions waited %s, terminated %s." % (
            maintenance.get("method"), maintenance.get("enabled_at"), maintenance.get("disabled_at"),
            maintenance.get("sessions_waited"), maintenance.get("sessions_terminated"))]
    verify = res.get("verify_result")
    if verify:
        out += ["", "Verification: %s" % ("ok" if verify.get("ok") else "FAILED"), ""]
        out += _table(["Check", "OK", "Message"],
                      [(c.get("name"), c.get("ok"), c.get("msg")) for c in verify.get("checks") or []])
    restore = res.get("restore_result")
    if restore:
        out += ["", "Restore: %s from `%s` (sha256 ok: %s)." % (
            restore.get("database"), restore.get("from"), restore.get("sha256_ok"))]
    if db["errors"]:
        out += ["", "Failed tasks:", ""]
        out += _table(["Task", "Message", "Unreachable", "Ignored"],
                      [(e["task"], e["msg"], e["unreachable"], e["ignored"]) for e in db["errors"]])
    return out


def _write_private(path, text):
    """Write text to path atomically as a 0600 file."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def record_paths(record_dir, run_id):
    directory = record_directory(record_dir)
    name = check_run_id(run_id)
    return os.path.join(directory, name + ".json"), os.path.join(directory, name + ".md")


def write_record(record, record_dir):
    """Write the record's JSON and Markdown into record_dir (made 0700); return their paths."""
    json_path, md_path = record_paths(record_dir, record["run_id"])
    directory = os.path.dirname(json_path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    _write_private(json_path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    _write_private(md_path, render_markdown(record))
    return json_path, md_path
