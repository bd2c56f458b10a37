# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: rollout_record
type: aggregate
short_description: Write the rollout's run record at the end of every playbook run
version_added: 0.2.0
description:
  - Collects, for every host (one per database), each value the role result facts took (C(preflight_result),
    C(review_result), C(backup_result), C(maintenance_result), C(migrate_result), C(verify_result),
    C(restore_result)), whether registered or set with C(ansible.builtin.set_fact), every failed task with its
    message, unreachable hosts, and the run context fact C(rollout_run) that the C(teei.db_rollout.record) role sets.
  - When the playbook ends, also when a task failed outside a block, a variable was undefined, a wave of a
    C(serial) play stopped the run, or Ansible itself stopped the playbook (then at exit), it writes the run
    record (JSON, valid against the collection's schema) and its Markdown summary into the run's record
    directory (files 0600, directory 0700), then prints the line C(Run record) and the JSON file's path as the
    last line.
  - Nothing else from the host variables gets in. Keys that look like a password, secret or token are dropped,
    and the values of such variables are blanked wherever they appear in a message.
  - A run that set neither the run context nor a result fact (an ad hoc command, a playbook that is not a
    rollout) writes no record.
requirements:
  - Enabled in C(ansible.cfg) (C(callbacks_enabled = teei.db_rollout.rollout_record) in C([defaults])) or with
    the environment variable E(ANSIBLE_CALLBACKS_ENABLED) (ansible-runner, AWX).
options:
  record_dir:
    description:
      - Where the record goes when the run context does not say (the record role puts C(rollout_record_dir) there).
    type: path
    default: ~/.ansible/teei_db_rollout/records
    env:
      - name: TEEI_ROLLOUT_RECORD_DIR
    ini:
      - section: callback_rollout_record
        key: record_dir
notes:
  - With a JSON stdout callback (such as C(ansible.posix.json)) the C(Run record) line goes to standard error,
    so that standard output stays one JSON document.
  - The record is validated against C(plugins/plugin_utils/run_record.schema.json) when the C(jsonschema) library
    is installed on the controller; a record that does not match is still written, with a warning.
seealso:
  - name: The run record
    description: What the record holds, its schema, and how a change ticket cites a run.
    link: https://github.com/teei/db_rollout/blob/main/docs/run-record.md
"""

import atexit

from ansible import context as ansible_context
from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.plugins.callback import CallbackBase
from ansible.release import __version__ as ansible_core_version

from ansible_collections.teei.db_rollout.plugins.plugin_utils import run_record


STOPPED = "Ansible stopped the playbook without its final statistics (an error outside any task; see its output)"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "teei.db_rollout.rollout_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super(CallbackModule, self).__init__(display)
        self.logs = {}
        self.play_hosts = []
        self.context = None
        self.playbook = None
        self.started_at = run_record.utc_now()
        self.inventory = []
        self.hostvars = None
        self.written = False
        atexit.register(self._write_if_never_written)

    # ------------------------------------------------------------------ events
    def v2_playbook_on_start(self, playbook):
        self.playbook = getattr(playbook, "_file_name", None)

    def v2_playbook_on_play_start(self, play):
        manager = play.get_variable_manager()
        play_vars = manager.get_vars(play=play)
        # Every host of the play's pattern, not only this serial batch's, so that the databases of
        # waves a failure stopped are listed too.
        try:
            hosts = [h.get_name() for h in manager._inventory.get_hosts(play.hosts, ignore_restrictions=True)]
        except Exception:  # pylint: disable=broad-except  # the batch's hosts are the fallback
            hosts = []
        self.play_hosts.append(hosts or list(play_vars.get("ansible_play_hosts_all") or []))
        self.inventory = list(play_vars.get("ansible_inventory_sources") or self.inventory)
        self.hostvars = play_vars.get("hostvars")

    def v2_runner_on_ok(self, result):
        self._collect(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._collect(result)
        self._log(result).add_error(self._task_name(result), result._result.get("msg") or "failed",
                                    ignored=ignore_errors)

    def v2_runner_on_unreachable(self, result):
        self._log(result).add_error(self._task_name(result), result._result.get("msg") or "unreachable",
                                    unreachable=True)

    def v2_playbook_on_stats(self, stats):
        databases = set(self._databases())
        failed = False
        for name in stats.processed:
            counters = stats.summarize(name)
            host_failed = bool(counters.get("failures") or counters.get("unreachable"))
            failed = failed or host_failed
            if name in databases:
                log = self._log_for(name)
                log.stats = dict(counters)
                log.failed = host_failed
        self._write("failed" if failed else "succeeded")

    # ------------------------------------------------------------------ collecting
    def _log_for(self, name):
        if name not in self.logs:
            self.logs[name] = run_record.HostLog(name)
        return self.logs[name]

    def _log(self, result):
        return self._log_for(result._host.get_name())

    @staticmethod
    def _task_name(result):
        return result._task.get_name()

    def _collect(self, result):
        value = result._result
        register = getattr(result._task, "register", None)
        if register in run_record.RESULT_FACTS:
            self._log(result).add_fact(register, value)
        facts = value.get("ansible_facts") or {}
        for fact in run_record.RESULT_FACTS:
            if fact in facts:
                self._log(result).add_fact(fact, facts[fact])
        if isinstance(facts.get(run_record.CONTEXT_FACT), dict):
            self.context = facts[run_record.CONTEXT_FACT]

    def _databases(self):
        """The databases of the run in play order: hosts that left a result, and every host of a play in
        which some host did (so a database a stopped run never reached is listed too)."""
        with_results = set(name for name, log in self.logs.items() if log.has_results())
        ordered = []
        seen = set()
        for hosts in self.play_hosts:
            if not with_results.intersection(hosts):
                continue
            for name in hosts:
                if name not in seen:
                    seen.add(name)
                    ordered.append(name)
        return ordered + sorted(with_results - seen)

    def _secrets(self, names):
        """Values of the secret-looking variables of these hosts (extra vars included), to blank in messages."""
        if self.hostvars is None:
            return set()
        return run_record.host_secrets(self.hostvars, set(names) | {"localhost"}, skip=(AnsibleError, KeyError))

    # ------------------------------------------------------------------ writing
    def _write_if_never_written(self):
        """The playbook ended without its final statistics (Ansible itself stopped): write what is known."""
        if not self.written:
            for log in self.logs.values():
                log.failed = any(not error["ignored"] for error in log.errors)
            self._write("failed", message=STOPPED)

    def _write(self, status, message=None):
        if self.context is None and not any(log.facts for log in self.logs.values()):
            return  # not a rollout (no run context, no result fact)
        ordered = self._databases()
        self.written = True
        context = dict(self.context or {})
        context["playbook"] = context.get("playbook") or self.playbook
        context["inventory"] = context.get("inventory") or self.inventory
        context["started_at"] = context.get("started_at") or self.started_at
        if not context.get("run_id"):
            context["run_id"] = self._run_id_from_results() or run_record.new_run_id()
        record_dir = context.get("record_dir") or self.get_option("record_dir")
        record = run_record.build_record(
            context, [self._log_for(name) for name in ordered], status,
            check_mode=bool(ansible_context.CLIARGS.get("check")), ansible_core=ansible_core_version,
            collection=run_record.collection_version(), written_by="callback", secrets=self._secrets(ordered),
            message=message)
        problems = run_record.validate(record)
        if problems:
            self._display.warning("The run record does not match its schema: %s" % "; ".join(problems))
        try:
            json_path, md_path = run_record.write_record(record, record_dir)
        except (OSError, ValueError) as exc:
            self._say("Run record: NOT written to %s: %s" % (record_dir, exc))
            return
        self._say("Run record: %s" % json_path)

    def _run_id_from_results(self):
        for log in self.logs.values():
            for value in log.facts.get("migrate_result", []):
                if value.get("run_id"):
                    return value["run_id"]
        return None

    def _say(self, line):
        stdout_callback = str(C.config.get_config_value("DEFAULT_STDOUT_CALLBACK") or "")
        self._display.display(line, stderr="json" in stdout_callback)
