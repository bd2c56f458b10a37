"""Helpers for the preflight and verify role tests: run a role's playbook on one database and read its
result fact from the JSON callback's output."""

import os

from conftest import ROOT, run_playbook, write_inventory

DATA = os.path.join(ROOT, "tests", "integration", "data", "preflight")
PHASE_C = os.path.join(ROOT, "migrations", "phase_c")


def run_role(playbook, db, tmp_path, extra_vars=None, check=False, inventory_extra=""):
    """Run data/preflight/<playbook> against db; return (result fact or None, proc, all task results)."""
    inventory = write_inventory(tmp_path / "inventory.yml", db)
    if inventory_extra:
        with open(inventory, "a") as handle:
            handle.write(inventory_extra)
    extra = dict(migrate_path=PHASE_C)
    extra.update(extra_vars or {})
    data, proc = run_playbook(os.path.join(DATA, playbook), inventory=inventory, extra_vars=extra, check=check)
    fact = playbook.split(".")[0] + "_result"
    value, tasks = None, []
    for play in data["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                tasks.append((task["task"]["name"], result))
                facts = result.get("ansible_facts") or {}
                if fact in facts:
                    value = facts[fact]
    return value, proc, tasks


def boxes(result):
    return dict((b["name"], b) for b in result["boxes"])


def failed_task_msgs(tasks):
    return [r.get("msg", "") for _, r in tasks if r.get("failed")]
