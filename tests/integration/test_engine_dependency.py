"""The community.postgresql floor galaxy.yml declares is the version installed here, the one every
engine test (connection options, connect_to_db, ensure_required_libs) runs against."""

import json
import os

import yaml

from conftest import ROOT


def installed_community_postgresql():
    import ansible_collections.community.postgresql as package
    with open(os.path.join(list(package.__path__)[0], "MANIFEST.json")) as handle:
        return json.load(handle)["collection_info"]["version"]


def test_the_declared_community_postgresql_floor_is_the_installed_version():
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        floor = yaml.safe_load(handle)["dependencies"]["community.postgresql"]
    assert floor == ">=%s" % installed_community_postgresql()
