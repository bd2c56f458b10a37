"""The backup and restore logic that needs no database: commands, secrets, names, manifests, retention."""

import datetime
import hashlib
import json
import os
import stat
import subprocess

import pytest

from ansible_collections.teei.db_rollout.plugins.module_utils import backup as bk

PASSWORD = "s3cr:et\\pw"
STARTED = datetime.datetime(2026, 12, 2, 22, 0, 5, tzinfo=datetime.timezone.utc)


def client(password=PASSWORD):
    return bk.ClientConnection(host="db1.example.com", port=5433, user="teei_admin", password=password)


def test_pgpass_line_escapes_colon_and_backslash():
    assert bk.pgpass_line(PASSWORD) == "*:*:*:*:s3cr\\:et\\\\pw\n"


def test_passfile_is_private_and_removed_afterwards():
    with bk.passfile(PASSWORD) as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        with open(path) as handle:
            assert handle.read() == bk.pgpass_line(PASSWORD)
    assert not os.path.exists(path)
    assert not os.path.exists(os.path.dirname(path))


def test_no_passfile_without_a_password():
    with bk.passfile("") as path:
        assert path is None


def test_the_password_reaches_the_tools_only_through_the_passfile():
    env = client().env("cockpit", passfile="/tmp/x/pgpass", base={"PGPASSWORD": "old", "PATH": "/bin"})
    assert env["PGPASSFILE"] == "/tmp/x/pgpass"
    assert "PGPASSWORD" not in env
    assert PASSWORD not in json.dumps(env)
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGDATABASE"]) == (
        "db1.example.com", "5433", "teei_admin", "cockpit")


def test_no_command_line_carries_the_password_or_the_connection():
    argvs = [bk.pg_dump_argv("/b", "custom", "/d/x.dump", "30s"),
             bk.pg_dump_argv("/b", "directory", "/d/x.dir", "30s", jobs=4, snapshot="00000003-1"),
             bk.pg_dumpall_globals_argv("/b", "/d/globals.sql", "cockpit", False),
             bk.pg_restore_argv("/b", "/d/x.dump", "cockpit", jobs=2),
             bk.pg_restore_list_argv("/b", "/d/x.dump")]
    for argv in argvs:
        text = " ".join(argv)
        assert PASSWORD not in text and "db1.example.com" not in text and "teei_admin" not in text
        assert "--no-password" in argv or "--list" in argv


def test_pg_dump_formats_lock_wait_and_jobs():
    assert bk.pg_dump_argv("/b", "custom", "/d/x.dump", "5s") == [
        "/b/pg_dump", "--format=c", "--file=/d/x.dump", "--lock-wait-timeout=5s", "--no-password"]
    argv = bk.pg_dump_argv("/b", "directory", "/d/x.dir", "5s", jobs=4, snapshot="00000003-1")
    assert "--format=d" in argv and "--jobs=4" in argv and "--snapshot=00000003-1" in argv


def test_globals_without_role_passwords_by_default():
    assert "--no-role-passwords" in bk.pg_dumpall_globals_argv("/b", "/g", "cockpit", False)
    assert "--no-role-passwords" not in bk.pg_dumpall_globals_argv("/b", "/g", "cockpit", True)
    assert "--database=dbname='cockpit'" in bk.pg_dumpall_globals_argv("/b", "/g", "cockpit", False)


def test_a_database_name_is_never_read_as_a_connection_string():
    assert bk.conninfo_dbname("a=b'c\\d") == "dbname='a=b\\'c\\\\d'"


def test_the_restore_command_is_pasteable_and_holds_no_password():
    command = bk.restore_command(client(), "/backups/cockpit run/cockpit.dump", "cockpit_restored", jobs=2)
    assert PASSWORD not in command
    assert command == ("createdb --host=db1.example.com --port=5433 --username=teei_admin --template=template0 "
                       "cockpit_restored && pg_restore --host=db1.example.com --port=5433 --username=teei_admin "
                       "--dbname=cockpit_restored --exit-on-error --jobs=2 '/backups/cockpit run/cockpit.dump'")


@pytest.mark.parametrize("text, version", [
    ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", (15, 18)),
    ("pg_restore (PostgreSQL) 16.4", (16, 4)),
    ("pg_dump (PostgreSQL) 17devel", (17, 0)),
])
def test_tool_versions(text, version):
    assert bk.parse_tool_version(text) == version


def test_an_older_pg_dump_is_refused_naming_both_versions():
    with pytest.raises(bk.BackupError, match=r"pg_dump 14\.10 is older than the server \(PostgreSQL 15\.18\)"):
        bk.check_client_version("pg_dump", "pg_dump (PostgreSQL) 14.10", 15, "the server (PostgreSQL 15.18)")
    assert bk.check_client_version("pg_dump", "pg_dump (PostgreSQL) 16.2", 15, "the server") == "16.2"


def test_an_unreadable_tool_version_is_an_error():
    with pytest.raises(bk.BackupError, match="cannot read a PostgreSQL version"):
        bk.parse_tool_version("bash: pg_dump: not found")


@pytest.mark.parametrize("kwargs, message", [
    (dict(fmt="tar"), "format 'tar' is not one of custom, directory"),
    (dict(jobs=4), "jobs 4 needs format directory"),
    (dict(jobs=0), "jobs must be 1 or more"),
    (dict(keep=-1), "keep must be 0"),
    (dict(lock_wait_timeout="30 seconds"), "lock_wait_timeout '30 seconds' is not a PostgreSQL duration"),
    (dict(directory=""), "directory is required"),
])
def test_bad_backup_options_are_refused_before_anything_connects(kwargs, message):
    args = dict(database="cockpit", directory="/tmp/b")
    args.update(kwargs)
    with pytest.raises(bk.BackupError, match=message):
        bk.BackupOptions(**args)


def test_a_bad_history_table_name_is_refused():
    with pytest.raises(ValueError, match="history_table"):
        bk.BackupOptions(database="cockpit", directory="/tmp/b", history_table="x; DROP TABLE y")


def test_restore_needs_a_backup_or_a_database():
    with pytest.raises(bk.BackupError, match="name the backup"):
        bk.RestoreOptions()


def test_run_folder_names_carry_the_run_id_and_only_safe_characters():
    assert bk.run_dir_name("cockpit", "20261202T220005Z-1a2b", STARTED) == "cockpit-20261202T220005Z-1a2b"
    assert bk.run_dir_name("my db/../x", "run 1;rm", STARTED) == "my_db_.._x-run_1_rm"
    assert bk.run_dir_name("cockpit", None, STARTED) == "cockpit-20261202T220005Z"


def manifests(*specs):
    return [("/b/%s" % name, dict(database="cockpit", finished=finished, run_failed=failed))
            for name, finished, failed in specs]


def test_retention_keeps_the_newest_and_deletes_the_oldest():
    backups = manifests(("a", "2026-12-01T00:00:00Z", False), ("b", "2026-12-02T00:00:00Z", False),
                        ("c", "2026-12-03T00:00:00Z", False))
    assert bk.retention_plan(backups, 2, "/b/c") == ["/b/a"]
    assert bk.retention_plan(backups, 0, "/b/c") == []


def test_retention_never_deletes_the_backup_just_taken_nor_one_of_a_failed_run():
    backups = manifests(("a", "2026-12-01T00:00:00Z", True), ("b", "2026-12-02T00:00:00Z", False),
                        ("c", "2026-12-03T00:00:00Z", False), ("now", "2026-11-30T00:00:00Z", False))
    assert bk.retention_plan(backups, 1, "/b/now") == ["/b/b"]


def test_sha256_of_a_file_and_of_a_directory_dump(tmp_path):
    dump = tmp_path / "x.dump"
    dump.write_bytes(b"PGDMP...")
    assert bk.sha256_of(str(dump)) == hashlib.sha256(b"PGDMP...").hexdigest()
    folder = tmp_path / "x.dir"
    folder.mkdir()
    (folder / "toc.dat").write_bytes(b"toc")
    (folder / "3380.dat.gz").write_bytes(b"rows")
    listing = subprocess.run("sha256sum $(ls | sort)", shell=True, cwd=str(folder), capture_output=True,
                             text=True, check=True).stdout
    assert bk.sha256_of(str(folder)) == hashlib.sha256(listing.encode()).hexdigest()
    assert bk.size_of(str(folder)) == 7


def test_the_table_of_contents_lists_tables_not_their_data():
    listing = (";\n; Archive created at 2026-12-02 22:00:05 UTC\n"
               "215; 1259 16385 TABLE public companies postgres\n"
               "216; 1259 16390 TABLE public users postgres\n"
               "3380; 0 16385 TABLE DATA public companies postgres\n"
               "217; 1259 16400 SEQUENCE public users_id_seq postgres\n")
    assert bk.toc_tables(listing) == ["public.companies", "public.users"]


def test_differences_are_named():
    missing, extra, mismatched = bk.compare_counts({"public.a": 1, "public.b": 2, "public.c": 3},
                                                   {"public.a": 1, "public.c": 4, "public.d": 0})
    assert bk.describe_differences(missing, extra, mismatched) == (
        "missing tables: public.b; unexpected tables: public.d; public.c has 4 rows instead of 3")


def test_manifests_are_private_and_read_back(tmp_path):
    path = str(tmp_path / bk.MANIFEST_NAME)
    bk.write_manifest(path, dict(database="cockpit", file="cockpit.dump", sha256="ab", format="custom"))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert bk.read_manifest(path)["file"] == "cockpit.dump"
    changed, manifest = bk.mark_run_failed(path, "rollback failed")
    assert changed and bk.read_manifest(path)["run_failed"] is True
    assert bk.mark_run_failed(path)[0] is False


@pytest.mark.parametrize("content, message", [
    (None, "cannot read manifest"),
    ("{not json", "is not valid JSON"),
    ('{"database": "cockpit"}', "is not a teei.db_rollout backup manifest"),
])
def test_a_bad_manifest_is_named(tmp_path, content, message):
    path = tmp_path / bk.MANIFEST_NAME
    if content is not None:
        path.write_text(content)
    with pytest.raises(bk.BackupError, match=message):
        bk.read_manifest(str(path))


def test_restore_refuses_a_dump_that_does_not_exist(tmp_path):
    with pytest.raises(bk.BackupError, match="backup %s does not exist" % (tmp_path / "nope.dump")):
        bk.locate_backup(bk.RestoreOptions(source=str(tmp_path / "nope.dump")))


def test_restore_refuses_a_dump_without_its_manifest(tmp_path):
    dump = tmp_path / "cockpit.dump"
    dump.write_bytes(b"PGDMP")
    with pytest.raises(bk.BackupError, match="no manifest .* beside the backup: its sha256 cannot be checked"):
        bk.locate_backup(bk.RestoreOptions(source=str(dump)))


def test_restore_finds_the_newest_backup_of_a_database(tmp_path):
    for name, finished in (("cockpit-r1", "2026-12-01T00:00:00Z"), ("cockpit-r2", "2026-12-02T00:00:00Z"),
                           ("other-r3", "2026-12-03T00:00:00Z")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "cockpit.dump").write_bytes(b"x")
        bk.write_manifest(str(tmp_path / name / bk.MANIFEST_NAME),
                          dict(database=name.split("-")[0], file="cockpit.dump", sha256="ab", format="custom",
                               finished=finished))
    path, manifest, dump = bk.locate_backup(bk.RestoreOptions(directory=str(tmp_path), database="cockpit"))
    assert dump == str(tmp_path / "cockpit-r2" / "cockpit.dump")
    with pytest.raises(bk.BackupError, match="no backup of database nope in"):
        bk.locate_backup(bk.RestoreOptions(directory=str(tmp_path), database="nope"))
