"""Which locations requests may name: local paths below the allowed
directories, and never Treadle's own storage (the data dir, its database,
the artifact store), even where an allowed directory or a bucket holds it."""
import os

import pytest

from treadle.config import Settings
from treadle.data import locations
from treadle.data.locations import Confinement, LocationError


@pytest.fixture
def tree(tmp_path):
    """allowed/ holds data.csv and Treadle's data dir (as the tests' own
    server does), plus a link from the data to the master key."""
    allowed = tmp_path / "allowed"
    (allowed / "treadle").mkdir(parents=True)
    (allowed / "treadle" / "master.key").write_text("secret")
    (allowed / "data.csv").write_text("a,b\n1,2\n")
    os.symlink(allowed / "treadle" / "master.key", allowed / "key.csv")
    return allowed, Confinement((allowed,), (str(allowed / "treadle"),))


def test_a_folder_holding_the_data_dir_lists_only_the_data(tree):
    allowed, access = tree
    files = locations.list_data_files(allowed.as_uri() + "/", access)
    assert [f.name for f in files] == ["data.csv"]


@pytest.mark.parametrize("name", ["treadle/master.key", "treadle/", "key.csv", "treadle/../treadle/master.key"])
def test_the_data_dir_cannot_be_named(tree, name):
    allowed, access = tree
    with pytest.raises(LocationError, match="own storage"):
        locations.list_data_files(f"{allowed.as_uri()}/{name}", access)
    with pytest.raises(LocationError, match="own storage"):
        locations.write_bytes(b"x", f"{allowed.as_uri()}/{name}", access)


@pytest.mark.parametrize("suffix", ["?", "#", "?x=1", "#frag"])
def test_a_query_or_fragment_is_refused_not_dropped(tree, suffix):
    """urlsplit would drop it, and the path checked would not be the path written."""
    allowed, access = tree
    with pytest.raises(LocationError, match="must not contain"):
        locations.local_path(f"{allowed.as_uri()}/data.csv{suffix}", access)


def test_s3_locations_inside_the_artifact_store_are_reserved():
    access = Confinement((), ("s3://bucket/treadle",))
    assert access.reserves("s3://bucket/treadle/logs/111111111111/MLModel/ml-1.log")
    assert access.reserves("s3://bucket/treadle")
    assert not access.reserves("s3://bucket/treadle-data/a.csv")
    assert not access.reserves("s3://bucket/")  # the bucket: listed without the store's objects
    assert not access.reserves("s3://other/treadle/a.csv")
    assert Confinement((), ("s3://whole",)).reserves("s3://whole/any/key")


def test_settings_reserve_the_data_dir_database_and_artifacts(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path}/meta/t.db",
                        artifacts_url="s3://art/prefix", allowed_local_paths=[tmp_path])
    access = settings.confinement
    assert access.allowed == (tmp_path.resolve(),)
    for path in (tmp_path / "data" / "master.key", tmp_path / "meta" / "t.db", tmp_path / "meta" / "t.db-wal"):
        assert access.reserves(str(path.resolve()))
    assert not access.reserves(str((tmp_path / "meta" / "other.csv").resolve()))
    assert access.reserves("s3://art/prefix/models/x")
