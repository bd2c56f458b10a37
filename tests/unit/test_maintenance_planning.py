"""Maintenance method connections: what it plans, checked without a database."""

import pytest

from ansible_collections.teei.db_rollout.plugins.module_utils.maintenance import (
    MaintenanceError,
    plan_revokes,
    quote_ident,
    reorder_statements,
    restore_statements,
    validate_options,
)


def item(grantee, grantor, **privileges):
    text = "%s=%s/%s" % ("" if grantee == "PUBLIC" else grantee,
                         "".join({"CREATE": "C", "TEMPORARY": "T", "CONNECT": "c"}[p] + ("*" if g else "")
                                 for p, g in privileges.items()), grantor)
    return dict(text=text, grantee=grantee, grantor=grantor, privileges=privileges)


DEFAULT = [item("PUBLIC", "postgres", TEMPORARY=False, CONNECT=False),
           item("postgres", "postgres", CREATE=False, TEMPORARY=False, CONNECT=False)]


def test_public_and_the_app_role_lose_connect_because_postgresql_grants_it_to_public_by_default():
    items = DEFAULT + [item("cockpit_app", "postgres", CONNECT=False)]
    assert plan_revokes(items, ["cockpit_app"]) == [{"grantee": "PUBLIC", "grantable": False},
                                                    {"grantee": "cockpit_app", "grantable": False}]


def test_nothing_is_revoked_from_roles_that_hold_no_connect():
    items = [item("PUBLIC", "postgres", TEMPORARY=False), DEFAULT[1]]
    assert plan_revokes(items, ["cockpit_app"]) == []


def test_off_revokes_the_windows_grants_and_grants_back_what_on_revoked_with_its_grant_option():
    record = {"granted": ["monitor"], "revoked": [{"grantee": "PUBLIC", "grantable": False},
                                                  {"grantee": "app", "grantable": True}]}
    assert restore_statements("cockpit", record) == [
        'REVOKE CONNECT ON DATABASE "cockpit" FROM "monitor"',
        'GRANT CONNECT ON DATABASE "cockpit" TO PUBLIC',
        'GRANT CONNECT ON DATABASE "cockpit" TO "app" WITH GRANT OPTION',
    ]


def test_items_out_of_order_are_rebuilt_from_the_first_one_out_of_place():
    app = item("cockpit_app", "postgres", CONNECT=False)
    monitor = item("monitor", "postgres", TEMPORARY=False)
    recorded = DEFAULT + [app, monitor]
    current = DEFAULT + [monitor, app]
    assert reorder_statements("cockpit", "postgres", recorded, current) == [
        'REVOKE ALL ON DATABASE "cockpit" FROM "cockpit_app"',
        'REVOKE ALL ON DATABASE "cockpit" FROM "monitor"',
        'GRANT CONNECT ON DATABASE "cockpit" TO "cockpit_app"',
        'GRANT TEMPORARY ON DATABASE "cockpit" TO "monitor"',
    ]
    assert reorder_statements("cockpit", "postgres", recorded, recorded) == []


def test_an_acl_someone_else_changed_is_not_reordered():
    recorded = DEFAULT + [item("cockpit_app", "postgres", CONNECT=False)]
    assert reorder_statements("cockpit", "postgres", recorded, DEFAULT) is None


def test_items_granted_by_another_role_are_not_rebuilt():
    a = item("a", "someone", CONNECT=False)
    b = item("b", "postgres", CONNECT=False)
    assert reorder_statements("cockpit", "postgres", DEFAULT + [a, b], DEFAULT + [b, a]) is None


def test_identifiers_are_quoted():
    assert quote_ident('we"ird') == '"we""ird"'


@pytest.mark.parametrize("roles, grace, database, message", [
    ([], 30, "cockpit", "app_roles: name at least one application role"),
    (["PUBLIC"], 30, "cockpit", "app_roles: PUBLIC is not a role"),
    (["a" * 64], 30, "cockpit", "is not a role name"),
    (["cockpit_app"], -1, "cockpit", "grace_period: -1 must be 0 or more seconds"),
    (["cockpit_app"], "soon", "cockpit", "grace_period: 'soon' is not a number"),
    (["cockpit_app"], 30, "", "login_db: the database to put in maintenance is required"),
])
def test_bad_options_are_refused_naming_the_option(roles, grace, database, message):
    with pytest.raises(MaintenanceError, match=message):
        validate_options(roles, grace, database)


def test_duplicate_app_roles_are_listed_once():
    assert validate_options(["a", "b", "a"], 0, "cockpit") == (["a", "b"], 0.0)
