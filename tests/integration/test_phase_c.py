"""The Phase C migration set, applied, verified and rolled back through teei.db_rollout.pg_migrate
on the pre-Phase-C fixture and on messy production-like rows, at the fixture's default scale and
at 20,000 companies."""

import os
import re
import uuid

import psycopg2
import pytest

import pgcluster
from _engine import schema_without_engine_tables
from conftest import ROOT, Database

PHASE_C = os.path.join(ROOT, "migrations", "phase_c")
DATA = os.path.join(ROOT, "tests", "integration", "data")
VERSIONS = ["001_add_tenant_routing", "002_add_rbac_roles", "003_add_api_keys_table",
            "004_add_audit_log_table", "005_add_weight_overrides_table", "006_add_integration_configs_table"]
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SCALES = {"default": 50, "20k": 20000}


@pytest.fixture(scope="module", params=sorted(SCALES))
def messy_cluster(request):
    """A cluster whose template database holds the fixture at this scale plus the messy rows."""
    with pgcluster.Cluster.start() as cluster:
        cluster.load_fixtures("messy_template", companies=SCALES[request.param])
        cluster.psql(dbname="messy_template", file=os.path.join(DATA, "messy_rows.sql"))
        cluster.scale = request.param
        yield cluster


@pytest.fixture
def messy_db(messy_cluster):
    name = "p_" + uuid.uuid4().hex[:12]
    messy_cluster.psql('CREATE DATABASE "%s" TEMPLATE messy_template' % name)
    yield Database(messy_cluster, name)
    messy_cluster.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def phase_c(db, **args):
    result, proc = db.pg_migrate(path=PHASE_C, **args)
    return result, proc


def applied(db):
    return [v for v in db.versions() if not v.startswith("phase_")]


def slugs(db):
    return dict(line.split("|", 1) for line in db.psql("SELECT id, slug FROM companies ORDER BY id").splitlines())


def test_phase_c_applies_verifies_and_rolls_back_to_the_fixture_schema(messy_db):
    db = messy_db
    fixture_schema = schema_without_engine_tables(db)

    result, proc = phase_c(db, target="003_add_api_keys_table", change_ticket="CHG-PHASE-C")
    assert proc.returncode == 0, result.get("msg")
    at_003 = schema_without_engine_tables(db)

    result, proc = phase_c(db, change_ticket="CHG-PHASE-C")
    assert proc.returncode == 0, result.get("msg")
    assert result["applied"] == VERSIONS[3:]
    assert applied(db) == VERSIONS
    first_slugs = slugs(db)

    result, proc = phase_c(db)
    assert proc.returncode == 0 and result["changed"] is False

    result, proc = phase_c(db, state="rolled_back", target="none")
    assert proc.returncode == 0, result.get("msg")
    assert result["rolled_back"] == VERSIONS[::-1]
    assert applied(db) == []
    assert schema_without_engine_tables(db) == fixture_schema

    result, proc = phase_c(db)
    assert proc.returncode == 0, result.get("msg")
    assert slugs(db) == first_slugs, "slugs differ between two runs on the same data"

    result, proc = phase_c(db, state="rolled_back", target="003_add_api_keys_table")
    assert proc.returncode == 0, result.get("msg")
    assert result["rolled_back"] == VERSIONS[:2:-1]
    assert schema_without_engine_tables(db) == at_003

    result, proc = phase_c(db)
    assert proc.returncode == 0, result.get("msg")
    assert result["applied"] == VERSIONS[3:]
    assert applied(db) == VERSIONS


def test_phase_c_applies_all_or_nothing_in_one_transaction(messy_db):
    result, proc = phase_c(messy_db, transaction="all")
    assert proc.returncode == 0, result.get("msg")
    assert applied(messy_db) == VERSIONS


def test_phase_c_rehearsal_changes_nothing(messy_db):
    schema = messy_db.schema()
    result, proc = phase_c(messy_db, check=True, rehearse=True)
    assert proc.returncode == 0, result.get("msg")
    assert result["rehearsed"] and result["applied"] == VERSIONS
    assert messy_db.schema() == schema


def test_every_company_gets_a_unique_url_safe_slug(messy_db):
    result, proc = phase_c(messy_db, target="001_add_tenant_routing")
    assert proc.returncode == 0, result.get("msg")
    values = messy_db.psql("SELECT coalesce(slug, '') FROM companies").splitlines()
    assert len(values) == int(messy_db.psql("SELECT count(*) FROM companies"))
    assert all(SLUG.match(slug) and len(slug) <= 100 for slug in values), \
        [slug for slug in values if not SLUG.match(slug) or len(slug) > 100]
    assert len(set(values)) == len(values)
    by_id = slugs(messy_db)
    assert by_id["aaaaaaaa-0000-4000-8000-000000000001"] == "acme-inc"          # earliest of its base
    assert by_id["aaaaaaaa-0000-4000-8000-000000000008"] == "unicode-gmbh"      # accents folded
    assert re.match(r"^company-[0-9a-f]{12}$", by_id["aaaaaaaa-0000-4000-8000-000000000007"])  # '日本語'
    assert re.match(r"^company-[0-9a-f]{12}$", by_id["aaaaaaaa-0000-4000-8000-000000000011"])  # '!!!'
    acme = [by_id["aaaaaaaa-0000-4000-8000-00000000000%d" % i] for i in range(1, 5)]
    assert len(set(acme)) == 4 and all(s.startswith("acme-inc") for s in acme)


def test_allowed_tenants_hold_each_users_company_and_have_a_working_default(messy_db):
    result, proc = phase_c(messy_db, target="001_add_tenant_routing")
    assert proc.returncode == 0, result.get("msg")
    assert messy_db.psql("SELECT count(*) FROM users WHERE NOT (company_id::text = ANY (allowed_tenants))") == "0"
    messy_db.psql("INSERT INTO users (company_id, email) SELECT id, 'new@example.com' FROM companies LIMIT 1")
    assert messy_db.psql("SELECT allowed_tenants IS NOT NULL FROM users WHERE email = 'new@example.com'") == "t"


EXPECTED_ROLES = {
    "messy1@example.com": "ADMIN",    # ' admin '
    "messy2@example.com": "ADMIN",    # 'ADMIN'
    "messy3@example.com": "VIEWER",   # 'Viewer '
    "messy4@example.com": "VIEWER",   # '\tviewer'
    "messy5@example.com": "VIEWER",   # NULL: least privilege
    "messy6@example.com": "ADMIN",    # 'aDmIn'
    "messy7@example.com": "VIEWER",   # 'viewer\n'
}


def test_legacy_roles_map_ignoring_case_and_whitespace_and_null_becomes_viewer(messy_db):
    result, proc = phase_c(messy_db, target="002_add_rbac_roles")
    assert proc.returncode == 0, result.get("msg")
    rows = dict(line.split("|") for line in messy_db.psql(
        "SELECT email, role FROM users WHERE email LIKE 'messy%'").splitlines())
    for email, role in EXPECTED_ROLES.items():
        assert rows[email] == role, email
    assert messy_db.psql("SELECT count(*) FROM users WHERE role IS NULL") == "0"
    messy_db.psql("INSERT INTO users (company_id, email) SELECT id, 'fresh@example.com' FROM companies LIMIT 1")
    assert messy_db.psql("SELECT role FROM users WHERE email = 'fresh@example.com'") == "VIEWER"
    # Rolled back, the legacy spellings come back as lowercase admin/viewer.
    result, proc = phase_c(messy_db, state="rolled_back", target="001_add_tenant_routing")
    assert proc.returncode == 0, result.get("msg")
    assert messy_db.psql("SELECT string_agg(DISTINCT role, ',' ORDER BY role) FROM users") == "admin,viewer"
    assert messy_db.psql("SELECT role FROM users WHERE email = 'messy1@example.com'") == "admin"


def test_unknown_role_stops_the_rollout_before_anything_changes(messy_db):
    messy_db.cluster.psql(dbname=messy_db.name, file=os.path.join(DATA, "unknown_role.sql"))
    schema = messy_db.schema()
    history = messy_db.psql("SELECT count(*) FROM schema_migrations")
    result, proc = phase_c(messy_db)
    assert proc.returncode != 0
    msg = result["msg"]
    assert "precondition check/002_add_rbac_roles.sql failed" in msg
    # Exactly the unknown values with their row counts; ' Admin ' is a legacy spelling, not listed.
    assert re.search(r"\(value \(rows\)\): 'superuser' \(2\), 'guest' \(1\);", msg), msg
    assert messy_db.schema() == schema
    assert messy_db.psql("SELECT count(*) FROM schema_migrations") == history
    assert messy_db.psql("SELECT count(*) FROM users WHERE role = 'superuser'") == "2"


def test_cockpit_app_keeps_its_access_and_gets_what_its_features_need(messy_db):
    result, proc = phase_c(messy_db)
    assert proc.returncode == 0, result.get("msg")
    conn = psycopg2.connect(messy_db.cluster.dsn(messy_db.name, user="cockpit_app", password="cockpit_app"))
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM companies")
    cur.execute("UPDATE users SET name = name WHERE email = 'messy1@example.com'")
    cur.execute("SELECT id FROM companies LIMIT 1")
    company = cur.fetchone()[0]
    cur.execute("INSERT INTO audit_log (company_id, action, resource) VALUES (%s, 'LOGIN', 'session')", (company,))
    cur.execute("SELECT count(*) FROM role_hierarchy")
    assert cur.fetchone()[0] == 4
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        cur.execute("DELETE FROM audit_log")
    conn.close()


@pytest.mark.parametrize("version, broken, replacement, complaint", [
    ("005_add_weight_overrides_table", "AFTER UPDATE OF weights ON weight_overrides",
     "AFTER UPDATE OF updated_at ON weight_overrides", "a weights UPDATE wrote 0 history rows, expected 1"),
    ("003_add_api_keys_table", "CREATE INDEX IF NOT EXISTS idx_api_keys_company_id",
     "CREATE INDEX IF NOT EXISTS idx_api_keys_company_id_typo", "indexes missing"),
])
def test_phase_c_verification_catches_a_broken_migration(messy_db, tmp_path, version, broken, replacement,
                                                         complaint):
    import shutil
    path = str(tmp_path / "phase_c")
    shutil.copytree(PHASE_C, path)
    script = os.path.join(path, version + ".sql")
    with open(script) as handle:
        text = handle.read()
    assert broken in text
    with open(script, "w") as handle:
        handle.write(text.replace(broken, replacement))
    result, proc = messy_db.pg_migrate(path=path)
    assert proc.returncode != 0
    assert "verify/%s.sql failed" % version in result["msg"] and complaint in result["msg"]
    assert applied(messy_db) == VERSIONS[:VERSIONS.index(version)]
