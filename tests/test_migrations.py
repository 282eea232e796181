"""A newer Treadle opens an older data dir by migrating it."""
import json
import time

import pytest
import sqlalchemy as sa

from support import Server, drop_postgres_database, postgres_database
from treadle.store import db


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_from_first_revision_keeps_data(tmp_path, backend):
    database_url = postgres_database() if backend == "postgresql" else None
    server = Server("", tmp_path, database_url)
    engine = db.create_engine(database_url or db.sqlite_url(tmp_path))
    try:
        db.migrate(engine, "0001")
        assert db.current_revision(engine) == "0001"
        stamp = time.time()
        document = {"DataSourceId": "ds-old", "Name": "from 0001", "Status": "COMPLETED",
                    "CreatedAt": stamp, "LastUpdatedAt": stamp, "DataLocationS3": "s3://b/old.csv",
                    "CreatedByIamUser": "arn:aws:iam::111111111111:user/alice", "ComputeStatistics": True}
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO entities (account, kind, entity_id, name, status, created_at, updated_at, "
                "iam_user, location, document) VALUES ('111111111111', 'DataSource', 'ds-old', 'from 0001', "
                "'COMPLETED', :t, :t, :u, 's3://b/old.csv', :d)"),
                {"t": stamp, "u": document["CreatedByIamUser"], "d": json.dumps(document)})
        server.default_keys = server.create_keys("alice", "111111111111")
        server.start()
        assert db.current_revision(engine) == db.head_revision() != "0001"
        got = server.client().get_data_source(DataSourceId="ds-old")
        assert (got["Name"], got["Status"]) == ("from 0001", "COMPLETED")
        with engine.connect() as conn:  # the newer revision's table exists
            assert sa.inspect(conn).has_table("databases")
            assert sa.inspect(conn).has_table("output_claims")
            assert sa.inspect(conn).has_table("console_sessions")
    finally:
        server.stop()
        engine.dispose()
        if database_url:
            drop_postgres_database(database_url)
