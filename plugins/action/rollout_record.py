# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""teei.db_rollout.rollout_record: the record role's controller step. C(state=started) names the run and
writes a record that says it is running; C(state=finished) writes the record from the hosts' result facts
(the callback plugin of the same name rewrites it at the very end when it is enabled)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.release import __version__ as ansible_core_version

from ansible_collections.teei.db_rollout.plugins.plugin_utils import run_record

# The inventory group of the databases (shared contract); recorded when the writing play runs on localhost.
DATABASES_GROUP = "databases"
NOT_RECORDED = ("failed or unreachable earlier in the run (enable the teei.db_rollout.rollout_record callback "
                "to record which task failed and why)")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = self._task.args
        state = args.get("state", "finished")
        if state not in ("started", "finished"):
            return dict(result, failed=True, msg="state must be started or finished, not %r" % (state,))
        try:
            if state == "started":
                context = self._start(args, task_vars)
                record = run_record.build_record(context, [], "running", check_mode=self._play_context.check_mode,
                                                 ansible_core=ansible_core_version,
                                                 collection=run_record.collection_version(), written_by="role")
            else:
                context, record = self._finish(args, task_vars)
            json_path, md_path = run_record.write_record(record, context["record_dir"])
        except (OSError, ValueError) as exc:
            return dict(result, failed=True, msg="cannot write the run record: %s" % exc)
        # Bookkeeping, not a change to any system: a run that changes nothing still reports changed=0.
        result.update(changed=False, run=context, path=json_path, markdown=md_path,
                      status=record["outcome"]["status"], summary=record["summary"],
                      msg="Run record: %s" % json_path)
        return result

    def _start(self, args, task_vars):
        """The run's context; an earlier wave's context (kept on localhost) is reused, not replaced."""
        existing = self._context(task_vars)
        if existing and args.get("run_id") in (None, "", existing["run_id"]):
            return existing
        return run_record.new_context(
            run_id=args.get("run_id"), change_ticket=args.get("change_ticket"), operator=args.get("operator"),
            environment=args.get("environment"), inventory=task_vars.get("ansible_inventory_sources"),
            playbook=args.get("playbook"), record_dir=args.get("record_dir"))

    def _context(self, task_vars):
        """The run context this host holds, else the one kept on localhost, else None."""
        context = task_vars.get(run_record.CONTEXT_FACT)
        if not isinstance(context, dict):
            context = self._hostvar(task_vars, "localhost", run_record.CONTEXT_FACT)
        if isinstance(context, dict) and context.get("run_id"):
            return dict(context)
        return None

    def _finish(self, args, task_vars):
        context = self._context(task_vars)
        if context is None:
            raise ValueError("no run context: run the record role's start tasks (tasks_from: start) first")
        if args.get("record_dir"):
            context["record_dir"] = run_record.record_directory(args["record_dir"])
        hosts = args.get("hosts") or task_vars.get("ansible_play_hosts_all") or []
        if list(hosts) == ["localhost"]:
            hosts = task_vars.get("groups", {}).get(DATABASES_GROUP) or hosts
        # A host of this play that dropped out failed; a host of an earlier play failed if a result says so.
        in_play = set(task_vars.get("ansible_play_hosts_all") or [])
        dropped_out = in_play - set(task_vars.get("ansible_play_hosts") or [])
        logs = []
        secrets = run_record.host_secrets(task_vars["hostvars"], [str(h) for h in hosts] + ["localhost"],
                                          skip=(AnsibleError, KeyError))
        for name in hosts:
            log = run_record.HostLog(str(name))
            for fact in run_record.RESULT_FACTS:
                value = self._hostvar(task_vars, name, fact)
                if value is not None:
                    log.add_fact(fact, value)
            if name in dropped_out:
                log.failed = True
                if not log.failed_fact():
                    log.add_error(None, NOT_RECORDED)
            logs.append(log)
        status = "failed" if any(log.failed or log.failed_fact() for log in logs) else "succeeded"
        record = run_record.build_record(context, logs, status, check_mode=self._play_context.check_mode,
                                         ansible_core=ansible_core_version,
                                         collection=run_record.collection_version(), written_by="role",
                                         secrets=secrets)
        return context, record

    @staticmethod
    def _hostvar(task_vars, host, name):
        try:
            return task_vars["hostvars"][host].get(name)
        except (AnsibleError, KeyError):
            return None
