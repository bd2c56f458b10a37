#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: rollout_record
short_description: Open or write the run record of a rollout, on the controller
version_added: 0.2.0
description:
  - The step of the C(teei.db_rollout.record) role. Runs on the controller only (an action plugin).
  - O(state=started) names the run (unless O(run_id) or an earlier wave's run context is given) and writes a
    record that says the run is running.
  - O(state=finished) writes the run record (JSON valid against the collection's schema, and a Markdown summary;
    files 0600 in a 0700 directory) from the role result facts of O(hosts), as the callback plugin
    C(teei.db_rollout.rollout_record) does; that callback, when enabled, rewrites it at the very end of the
    playbook with every failed task and Ansible's counters.
  - Always reports C(changed=false), since the record is bookkeeping on the controller.
options:
  state:
    description: Open the run (V(started)) or write its record (V(finished)).
    type: str
    choices: [started, finished]
    default: finished
  run_id:
    description: The run id (V(started)); a new one (UTC time and a random suffix) when empty.
    type: str
  change_ticket:
    description: The change ticket the run is for (V(started)).
    type: str
  operator:
    description: Who runs the rollout (V(started)).
    type: str
  environment:
    description: The environment, such as V(staging) or V(production) (V(started)).
    type: str
  playbook:
    description: The playbook's name (V(started)).
    type: str
  record_dir:
    description: Where the record goes; with V(finished), overrides the run context's directory.
    type: path
  hosts:
    description:
      - The databases to record (V(finished)); the play's hosts when empty, or the C(databases) group when the
        play runs on localhost only.
      - A host counts as failed when it dropped out of this play or one of its result facts failed.
    type: list
    elements: str
author:
  - teei.db_rollout maintainers (@teei)
notes:
  - Never records a secret; see the callback plugin's documentation and C(docs/run-record.md).
seealso:
  - plugin: teei.db_rollout.rollout_record
    plugin_type: callback
"""

EXAMPLES = r"""
- name: Open the run record
  teei.db_rollout.rollout_record:
    state: started
    change_ticket: CHG-1234
    environment: staging
  run_once: true
  register: _record_start

- name: Write the run record
  teei.db_rollout.rollout_record:
    state: finished
  run_once: true
"""

RETURN = r"""
run:
  description: The run context (the C(rollout_run) fact the record role sets).
  returned: always
  type: dict
  sample: {run_id: 20261202T220000Z-1a2b3c4d, change_ticket: CHG-1234, operator: ops, environment: staging,
           inventory: [inventories/staging], playbook: rollout.yml, started_at: "2026-12-02T22:00:00Z",
           record_dir: /home/ops/.ansible/teei_db_rollout/records}
path:
  description: The JSON record.
  returned: always
  type: str
markdown:
  description: The Markdown summary.
  returned: always
  type: str
status:
  description: V(running), V(succeeded) or V(failed).
  returned: always
  type: str
summary:
  description: The fleet summary (moved, stayed, failed; each entry with host, reason, before and after).
  returned: always
  type: dict
"""
