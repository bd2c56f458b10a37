# -*- coding: utf-8 -*-
# Copyright: (c) 2026, teei.db_rollout maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet of databases discovered from their servers (database per tenant).

Plain Python behind the ``teei.db_rollout.pg_databases`` inventory plugin: which
servers the configuration names, which of their databases it selects, what each
database's inventory host is called and which connection variables it gets.
Nothing here imports Ansible; only ``list_databases`` talks to a server.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import os
import re

SERVER_KEYS = frozenset(("name", "host", "port", "user", "password", "password_env", "login_db", "sslmode",
                         "databases", "exclude_databases", "groups", "vars"))
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
PATTERN_TYPES = ("glob", "regex")
SERVER_NAME = re.compile(r"^[A-Za-z0-9_]+$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
UNSAFE_HOST_CHARS = re.compile(r"[^A-Za-z0-9_.-]")

# Every database a client may connect to, templates never (template0/template1 stay out).
LIST_DATABASES_SQL = ("SELECT datname FROM pg_catalog.pg_database "
                      "WHERE NOT datistemplate AND datallowconn ORDER BY datname")


class FleetError(ValueError):
    """A configuration or discovery error; its message names the server or setting at fault."""


class Server(object):
    """One server of the configuration, validated."""

    def __init__(self, name, host, port=5432, user="postgres", password=None, password_env=None,
                 login_db="postgres", sslmode="prefer", matcher=None, groups=(), host_vars=None):
        self.name = name
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.password_env = password_env
        self.login_db = login_db
        self.sslmode = sslmode
        self.matcher = matcher
        self.groups = list(groups)
        self.host_vars = dict(host_vars or {})

    def describe(self):
        """``name (user@host:port/login_db)``: how errors name the server; never holds the password."""
        return "'%s' (%s@%s:%s/%s)" % (self.name, self.user, self.host, self.port, self.login_db)

    def connect_params(self, environ=None):
        """psycopg2.connect keywords; the password comes from the vaulted value or the named variable.

        With neither, libpq finds it as usual: PGPASSWORD, PGPASSFILE or ~/.pgpass."""
        environ = os.environ if environ is None else environ
        params = dict(host=self.host, port=self.port, user=self.user, dbname=self.login_db, sslmode=self.sslmode)
        if self.password_env:
            if self.password_env not in environ:
                raise FleetError("server %s: the environment variable %s named by password_env is not set"
                                 % (self.describe(), self.password_env))
            params["password"] = environ[self.password_env]
        elif self.password is not None:
            params["password"] = str(self.password)
        return params


class Matcher(object):
    """Selects database names: any include pattern matches the whole name and no exclude pattern does."""

    def __init__(self, include, exclude, pattern_type="glob", where="databases"):
        if pattern_type not in PATTERN_TYPES:
            raise FleetError("%s: pattern_type must be one of %s, not %r"
                             % (where, ", ".join(PATTERN_TYPES), pattern_type))
        self.include = [self._compile(p, pattern_type, where) for p in _strings(include, where)]
        self.exclude = [self._compile(p, pattern_type, where) for p in _strings(exclude, where)]

    @staticmethod
    def _compile(pattern, pattern_type, where):
        source = fnmatch.translate(pattern) if pattern_type == "glob" else pattern
        try:
            return re.compile(source)
        except re.error as exc:
            raise FleetError("%s: %r is not a valid regular expression: %s" % (where, pattern, exc))

    def __call__(self, name):
        return (any(p.fullmatch(name) for p in self.include)
                and not any(p.fullmatch(name) for p in self.exclude))


def _strings(value, where):
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise FleetError("%s: expected a pattern or a list of patterns, got %r" % (where, value))
    return list(value)


def parse_servers(raw, include, exclude, pattern_type="glob"):
    """Validate the ``servers`` list; a server's own patterns replace the top-level ones."""
    if not isinstance(raw, list) or not raw:
        raise FleetError("servers: name at least one server (a list of dicts with name and host)")
    servers = []
    seen = set()
    for index, entry in enumerate(raw):
        where = "servers[%d]" % index
        if not isinstance(entry, dict):
            raise FleetError("%s: expected a dict with name and host, got %r" % (where, entry))
        name = entry.get("name")
        if not isinstance(name, str) or not SERVER_NAME.match(name):
            raise FleetError("%s: name is required and may hold only letters, digits and _ (it starts every "
                             "host name), got %r" % (where, name))
        where = "server '%s'" % name
        if name in seen:
            raise FleetError("%s: named twice in servers" % where)
        seen.add(name)
        unknown = sorted(set(entry) - SERVER_KEYS)
        if unknown:
            raise FleetError("%s: unknown key(s) %s (known: %s)"
                             % (where, ", ".join(unknown), ", ".join(sorted(SERVER_KEYS))))
        if not entry.get("host"):
            raise FleetError("%s: host is required" % where)
        port = entry.get("port", 5432)
        try:
            port = int(port)
        except (TypeError, ValueError):
            port = 0
        if not 0 < port < 65536:
            raise FleetError("%s: port must be a number from 1 to 65535, got %r" % (where, entry.get("port")))
        if entry.get("password") is not None and entry.get("password_env"):
            raise FleetError("%s: give password or password_env, not both" % where)
        if entry.get("password_env") is not None and not ENV_NAME.match(str(entry["password_env"])):
            raise FleetError("%s: password_env must name an environment variable, got %r"
                             % (where, entry["password_env"]))
        sslmode = entry.get("sslmode", "prefer")
        if sslmode not in SSL_MODES:
            raise FleetError("%s: sslmode must be one of %s, got %r" % (where, ", ".join(SSL_MODES), sslmode))
        host_vars = entry.get("vars") or {}
        if not isinstance(host_vars, dict):
            raise FleetError("%s: vars must be a dict of variables for its databases" % where)
        groups = entry.get("groups") or []
        matcher = Matcher(entry.get("databases", include), entry.get("exclude_databases", exclude),
                          pattern_type, where)
        servers.append(Server(name, str(entry["host"]), port, str(entry.get("user", "postgres")),
                              entry.get("password"), entry.get("password_env"),
                              str(entry.get("login_db", "postgres")), sslmode, matcher,
                              _strings(groups, where + ": groups"), host_vars))
    return servers


def host_name(server_name, dbname):
    """``<server>_<database>``, with characters a host pattern cannot hold replaced by ``_``."""
    return "%s_%s" % (server_name, UNSAFE_HOST_CHARS.sub("_", dbname))


def database_host_vars(server, dbname):
    """The connection variables of the shared contract for one database (no password: see the plugin)."""
    return {"db_host": server.host, "db_port": server.port, "db_name": dbname, "db_user": server.user,
            "db_server": server.name}


def select_hosts(servers_databases):
    """[(server, [dbname, ...]), ...] -> [(host name, server, dbname)], matching names only, in order.

    Two databases whose host names collide are refused, naming both."""
    hosts = []
    owner = {}
    for server, names in servers_databases:
        for dbname in sorted(names):
            if not server.matcher(dbname):
                continue
            name = host_name(server.name, dbname)
            if name in owner:
                raise FleetError("host name %s would stand for both %s on server '%s' and %s on server '%s'; "
                                 "rename a server or exclude one of them"
                                 % (name, owner[name][1], owner[name][0], dbname, server.name))
            owner[name] = (server.name, dbname)
            hosts.append((name, server, dbname))
    return hosts


def list_databases(server, connect_timeout=10, environ=None):
    """The names of the databases one may connect to on ``server``, from pg_database."""
    try:
        import psycopg2
    except ImportError:
        raise FleetError("listing the databases of server %s needs psycopg2 on the controller "
                         "(pip install psycopg2-binary)" % server.describe())
    params = server.connect_params(environ)
    try:
        conn = psycopg2.connect(connect_timeout=connect_timeout, application_name="teei.db_rollout inventory",
                                **params)
    except psycopg2.Error as exc:
        raise FleetError("cannot connect to server %s to list its databases: %s"
                         % (server.describe(), str(exc).strip()))
    try:
        with conn.cursor() as cur:
            cur.execute(LIST_DATABASES_SQL)
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()
