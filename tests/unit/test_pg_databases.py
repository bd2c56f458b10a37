"""The fleet behind the pg_databases inventory plugin: which servers, which databases, which host names,
and every bad configuration refused with the server or setting named. No Ansible, no database."""

import pytest

from ansible_collections.teei.db_rollout.plugins.plugin_utils.fleet import (
    FleetError, Matcher, database_host_vars, host_name, list_databases, parse_servers, select_hosts)


def servers(*entries, **kwargs):
    return parse_servers(list(entries), kwargs.get("include", ["*"]), kwargs.get("exclude", ["postgres"]),
                         kwargs.get("pattern_type", "glob"))


def test_glob_selects_whole_names_and_exclude_wins():
    match = Matcher(["tenant_*"], ["tenant_demo", "*_old"])
    assert [n for n in ["tenant_a", "tenant_demo", "tenant_b_old", "xtenant_c", "tenant_"] if match(n)] == \
        ["tenant_a", "tenant_"]


def test_regex_must_match_the_whole_name():
    match = Matcher([r"tenant_\d+"], [], "regex")
    assert match("tenant_12") and not match("tenant_12_old") and not match("my_tenant_12")


def test_invalid_regex_is_refused_naming_the_pattern():
    with pytest.raises(FleetError, match=r"server 'eu': 'tenant_\(' is not a valid regular expression"):
        servers(dict(name="eu", host="h", databases=["tenant_("]), pattern_type="regex")


def test_unknown_pattern_type_is_refused():
    with pytest.raises(FleetError, match="pattern_type must be one of glob, regex"):
        Matcher(["*"], [], "sql")


def test_server_patterns_replace_the_top_level_ones():
    eu, us = servers(dict(name="eu", host="h1"), dict(name="us", host="h2", databases=["us_*"],
                                                        exclude_databases=[]), include=["eu_*"])
    assert eu.matcher("eu_1") and not eu.matcher("us_1")
    assert us.matcher("us_1") and not us.matcher("eu_1")


def test_postgres_maintenance_database_is_excluded_by_default_only():
    (default,) = servers(dict(name="a", host="h"))
    (everything,) = servers(dict(name="a", host="h"), exclude=[])
    assert not default.matcher("postgres") and everything.matcher("postgres")


@pytest.mark.parametrize("entry, message", [
    ("pg1", r"servers\[0\]: expected a dict with name and host"),
    (dict(host="h"), r"servers\[0\]: name is required"),
    (dict(name="eu-west", host="h"), r"servers\[0\]: name is required and may hold only letters"),
    (dict(name="eu"), r"server 'eu': host is required"),
    (dict(name="eu", host="h", prot=5432), r"server 'eu': unknown key\(s\) prot"),
    (dict(name="eu", host="h", port="fivefour"), r"server 'eu': port must be a number from 1 to 65535"),
    (dict(name="eu", host="h", port=70000), r"server 'eu': port must be a number"),
    (dict(name="eu", host="h", password="x", password_env="PW"), "give password or password_env, not both"),
    (dict(name="eu", host="h", password_env="$(cat /etc/shadow)"), "password_env must name an environment"),
    (dict(name="eu", host="h", sslmode="on"), "sslmode must be one of disable"),
    (dict(name="eu", host="h", vars=["db_port"]), "server 'eu': vars must be a dict"),
    (dict(name="eu", host="h", groups=[1]), "server 'eu': groups: expected a pattern or a list"),
])
def test_bad_server_entry_is_refused_naming_it(entry, message):
    with pytest.raises(FleetError, match=message):
        servers(entry)


def test_no_servers_is_refused():
    for raw in (None, [], {"name": "eu"}):
        with pytest.raises(FleetError, match="servers: name at least one server"):
            parse_servers(raw, ["*"], [])


def test_server_named_twice_is_refused():
    with pytest.raises(FleetError, match="server 'eu': named twice"):
        servers(dict(name="eu", host="h1"), dict(name="eu", host="h2"))


def test_host_names_are_server_then_database_with_unsafe_characters_replaced():
    assert host_name("eu", "tenant_0001") == "eu_tenant_0001"
    assert host_name("eu", "Tenant 7:{x}") == "eu_Tenant_7__x_"
    assert host_name("eu", "t-1.a") == "eu_t-1.a"


def test_selection_keeps_matching_databases_in_name_order():
    (eu,) = servers(dict(name="eu", host="h"), include=["tenant_*"])
    hosts = select_hosts([(eu, ["tenant_b", "postgres", "tenant_a", "other"])])
    assert [(name, dbname) for name, _, dbname in hosts] == [("eu_tenant_a", "tenant_a"),
                                                            ("eu_tenant_b", "tenant_b")]


def test_two_databases_with_one_host_name_are_refused_naming_both():
    (eu,) = servers(dict(name="eu", host="h"))
    with pytest.raises(FleetError, match="host name eu_t_1 would stand for both t 1 on server 'eu' and t:1"):
        select_hosts([(eu, ["t 1", "t:1"])])


def test_host_vars_follow_the_shared_connection_contract_without_a_password():
    (eu,) = servers(dict(name="eu", host="10.0.0.5", port=6432, user="teei_admin", password_env="PW"))
    assert database_host_vars(eu, "tenant_a") == {"db_host": "10.0.0.5", "db_port": 6432, "db_name": "tenant_a",
                                                  "db_user": "teei_admin", "db_server": "eu"}


def test_password_env_is_read_from_the_environment_for_the_listing():
    (eu,) = servers(dict(name="eu", host="h", password_env="EU_PW", login_db="admin", sslmode="require"))
    assert eu.connect_params({"EU_PW": "s3cret"}) == dict(host="h", port=5432, user="postgres", dbname="admin",
                                                         sslmode="require", password="s3cret")


def test_unset_password_env_is_refused_naming_server_and_variable():
    (eu,) = servers(dict(name="eu", host="h", password_env="EU_PW"))
    with pytest.raises(FleetError, match=r"server 'eu' \(postgres@h:5432/postgres\): the environment "
                                         r"variable EU_PW named by password_env is not set"):
        eu.connect_params({})


def test_without_password_libpq_finds_it_itself():
    (eu,) = servers(dict(name="eu", host="h"))
    assert "password" not in eu.connect_params({"PGPASSWORD": "x"})


def test_unreachable_server_error_names_it_and_never_the_password():
    # Port 1 on loopback refuses at once: a real connection attempt, no server needed.
    (eu,) = servers(dict(name="eu", host="127.0.0.1", port=1, password_env="EU_PW"))
    with pytest.raises(FleetError) as caught:
        list_databases(eu, connect_timeout=2, environ={"EU_PW": "do-not-print-me"})
    message = str(caught.value)
    assert message.startswith("cannot connect to server 'eu' (postgres@127.0.0.1:1/postgres) to list its databases")
    assert "do-not-print-me" not in message
