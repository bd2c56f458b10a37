# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: pg_databases
short_description: The databases of PostgreSQL servers as inventory hosts (database per tenant)
version_added: 0.2.0
description:
  - Connects from the controller to each server the configuration names, lists its databases
    (C(pg_database), templates and databases that refuse connections left out) and makes one inventory
    host of every database whose name matches, called C(<server>_<database>).
  - Every host gets the collection's connection variables C(db_host), C(db_port), C(db_name) and
    C(db_user), plus C(db_server) (the server's name) and O(host_vars) (by default a local connection
    on the controller), so the roles run against it unchanged.
  - The password is never written into the inventory in clear text. With O(servers[].password_env) the
    plugin reads the variable for its own connection and gives each host C(db_password) as a lookup of
    that variable, resolved when a task runs. A vault-encrypted O(servers[].password) stays encrypted in
    C(db_password). With neither, libpq finds the password as usual (C(PGPASSFILE), C(~/.pgpass),
    C(PGPASSWORD)) and C(db_password) is not set, which is the preferred way.
  - A server that cannot be reached fails the whole source with an error naming it. Set
    C(unparsed_is_failed = true) in the C([inventory]) section of C(ansible.cfg) (or the environment variable
    C(ANSIBLE_INVENTORY_UNPARSED_FAILED=true)) so that Ansible stops there instead of running the play
    without those hosts.
  - The configuration file's name must end in C(pg_databases.yml) or C(pg_databases.yaml).
author:
  - teei.db_rollout maintainers (@teei)
requirements:
  - psycopg2 (or psycopg2-binary) on the controller
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [teei.db_rollout.pg_databases]
  servers:
    description:
      - The servers whose databases become hosts.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - A short name for the server (letters, digits, C(_)); every host name starts with it.
        type: str
        required: true
      host:
        description: Host name, address or Unix socket directory the controller connects to.
        type: str
        required: true
      port:
        description: The server's port.
        type: int
        default: 5432
      user:
        description: The role the plugin lists databases as, and C(db_user) of every host.
        type: str
        default: postgres
      password:
        description:
          - The role's password, vault-encrypted (C(!vault)). It stays encrypted in C(db_password).
          - Mutually exclusive with O(servers[].password_env).
        type: str
      password_env:
        description:
          - The name of an environment variable holding the password (not the password itself).
          - Hosts get C(db_password) as a lookup of this variable, so the inventory never holds its value.
        type: str
      login_db:
        description: The database the plugin connects to for the listing.
        type: str
        default: postgres
      sslmode:
        description: libpq's sslmode for the listing connection.
        type: str
        default: prefer
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      databases:
        description: This server's include patterns, replacing O(databases).
        type: list
        elements: str
      exclude_databases:
        description: This server's exclude patterns, replacing O(exclude_databases).
        type: list
        elements: str
      groups:
        description: Further groups for this server's hosts, besides O(database_groups).
        type: list
        elements: str
        default: []
      vars:
        description:
          - Variables for every host of this server (for example C(db_unix_socket) or
            C(db_delegate_to_controller)). They override O(host_vars).
        type: dict
        default: {}
  databases:
    description:
      - Patterns a database name must match (any of them, the whole name) to become a host.
    type: list
    elements: str
    default: ['*']
  exclude_databases:
    description:
      - Patterns of database names left out even when they match O(databases).
    type: list
    elements: str
    default: [postgres]
  pattern_type:
    description:
      - How O(databases) and O(exclude_databases) are read. C(glob) is shell-style (C(tenant_*));
        C(regex) is a Python regular expression that must match the whole name.
    type: str
    default: glob
    choices: [glob, regex]
  database_groups:
    description: The groups every discovered host joins (the collection's playbooks run on C(databases)).
    type: list
    elements: str
    default: [databases]
  host_vars:
    description:
      - Variables for every discovered host. The default runs tasks on the controller with the Python
        that runs Ansible. O(compose) can derive more from C(db_*) and C(db_server).
    type: dict
    default:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
  connect_timeout:
    description: Seconds to wait for each server's listing connection.
    type: int
    default: 10
"""

EXAMPLES = r"""
# tenants.pg_databases.yml: every tenant database of two servers; passwords from the environment
# (AWX: a custom credential type that injects TEEI_EU_PASSWORD and TEEI_US_PASSWORD).
plugin: teei.db_rollout.pg_databases
servers:
  - name: eu
    host: pg-eu.internal
    user: teei_admin
    password_env: TEEI_EU_PASSWORD
  - name: us
    host: pg-us.internal
    user: teei_admin
    password_env: TEEI_US_PASSWORD
databases: ['tenant_*']
exclude_databases: ['tenant_demo', 'tenant_*_old']
keyed_groups:
  # a group per server: server_eu, server_us
  - key: db_server
    prefix: server

---
# staging.pg_databases.yml: one server, a regular expression, the password in ~/.pgpass (or PGPASSFILE),
# tasks on the database host through its Unix socket
plugin: teei.db_rollout.pg_databases
servers:
  - name: staging
    host: db1.staging.internal
    user: teei_admin
    vars:
      ansible_connection: ssh
      ansible_host: db1.staging.internal
      db_unix_socket: /var/run/postgresql
      db_delegate_to_controller: false
pattern_type: regex
databases: ['teei_cockpit_staging(_[a-z0-9]+)?']
compose:
  rollout_environment: "'staging'"
"""

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable

from ansible_collections.teei.db_rollout.plugins.plugin_utils.fleet import (
    FleetError, database_host_vars, list_databases, parse_servers, select_hosts)

try:  # ansible-core 2.19+: a value is a template only when marked trusted
    from ansible.parsing.vault import VaultHelper
    from ansible.template import trust_as_template
except ImportError:  # earlier: every string is a template unless wrapped unsafe
    from ansible.utils.unsafe_proxy import wrap_var

    def _trusted(value):
        return value

    def _untrusted(value):
        return wrap_var(value)

    def _is_vault_encrypted(value):
        return bool(getattr(value, "__ENCRYPTED__", False))
else:
    def _trusted(value):
        """A template the plugin or its configuration wrote itself (not a value read from a server)."""
        return trust_as_template(value) if isinstance(value, str) else value

    def _untrusted(value):
        """A value read from a server: never evaluated as a template."""
        return value

    def _is_vault_encrypted(value):
        return VaultHelper.get_ciphertext(value, with_tags=False) is not None


class InventoryModule(BaseInventoryPlugin, Constructable):
    """The matching databases of the configured servers, one host each."""

    NAME = "teei.db_rollout.pg_databases"

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(
            ("pg_databases.yml", "pg_databases.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            servers = parse_servers(self.get_option("servers"), self.get_option("databases"),
                                    self.get_option("exclude_databases"), self.get_option("pattern_type"))
            for server in servers:
                if server.password is not None and not _is_vault_encrypted(server.password):
                    raise FleetError("server %s: password is in clear text; vault-encrypt it "
                                     "(ansible-vault encrypt_string), or use password_env or a passfile"
                                     % server.describe())
            listings = [(server, list_databases(server, self.get_option("connect_timeout")))
                        for server in servers]
            hosts = select_hosts(listings)
        except FleetError as exc:
            raise AnsibleParserError("%s: %s" % (self.NAME, exc))
        for group in self.get_option("database_groups"):
            self.inventory.add_group(group)
        for name, server, dbname in hosts:
            self._add_database(name, server, dbname)

    def _add_database(self, name, server, dbname):
        self.inventory.add_host(name)
        for group in self.get_option("database_groups") + server.groups:
            self.inventory.add_group(group)
            self.inventory.add_child(group, name)
        variables = dict((key, _trusted(value)) for key, value in self.get_option("host_vars").items())
        variables.update((key, _untrusted(value)) for key, value in database_host_vars(server, dbname).items())
        if server.password_env:
            variables["db_password"] = _trusted(
                "{{ lookup('ansible.builtin.env', '%s') }}" % server.password_env)
        elif server.password is not None:
            variables["db_password"] = server.password
        variables.update((key, _trusted(value)) for key, value in server.host_vars.items())
        for key, value in variables.items():
            self.inventory.set_variable(name, key, value)
        strict = self.get_option("strict")
        hostvars = self.inventory.get_host(name).get_vars()
        self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
        self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name, strict=strict)
