"""RDS (MariaDB) and Redshift (PostgreSQL) datasources: the query runs on a
registered database with the request's credentials and is staged in S3."""
import json
import urllib.request

import pytest

from support import MYSQL_URL, PG_ADMIN_URL, service_missing, settle, treadle, unique

ROWS = [(i, f"name {i % 4}", i * 1.5, i % 2 == 0) for i in range(200)]


@pytest.fixture(scope="module")
def mariadb():
    try:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database="test",
                               connect_timeout=5, autocommit=True)
    except Exception as error:
        service_missing("MariaDB", str(error))
    table = unique("orders").replace("-", "_")
    with conn.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS 'treadle_reader'@'%' IDENTIFIED BY 'reader-pass-1'")
        cur.execute("CREATE USER IF NOT EXISTS 'treadle_reader'@'localhost' IDENTIFIED BY 'reader-pass-1'")
        cur.execute(f"CREATE TABLE {table} (id INT, name VARCHAR(20), amount DOUBLE, paid BOOLEAN, note TEXT)")
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s)",
                        [(i, n, a, p, f"some words {i}") for i, n, a, p in ROWS])
        cur.execute(f"GRANT SELECT ON test.{table} TO 'treadle_reader'@'%'")
        cur.execute(f"GRANT SELECT ON test.{table} TO 'treadle_reader'@'localhost'")
    yield table
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE {table}")
    conn.close()


@pytest.fixture(scope="module")
def postgres():
    try:
        import psycopg

        conn = psycopg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/test", autocommit=True, connect_timeout=5)
    except Exception as error:
        service_missing("PostgreSQL", str(error))
    table = unique("events").replace("-", "_")
    conn.execute(f"CREATE TABLE {table} (id INT, name VARCHAR(20), amount DOUBLE PRECISION, paid BOOLEAN)")
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s)", ROWS)
    yield table
    conn.execute(f"DROP TABLE {table}")
    conn.close()


@pytest.fixture
def bucket(s3):
    name = unique("staging").lower()
    s3.client().create_bucket(Bucket=name)
    return name


def register(server, identifier, url):
    done = treadle("databases", "add", identifier, url, *server.db_args())
    assert done.returncode == 0, done.stderr


def rds_request(ds_id, table, bucket, identifier="shopdb", password="reader-pass-1", query=None):
    return dict(DataSourceId=ds_id, RoleARN="arn:aws:iam::111111111111:role/ml", ComputeStatistics=True,
                RDSData={"DatabaseInformation": {"InstanceIdentifier": identifier, "DatabaseName": "test"},
                         "SelectSqlQuery": query or f"SELECT id, name, amount, paid, note FROM {table}",
                         "DatabaseCredentials": {"Username": "treadle_reader", "Password": password},
                         "S3StagingLocation": f"s3://{bucket}/staging/", "ResourceRole": "r", "ServiceRole": "s",
                         "SubnetId": "subnet-1", "SecurityGroupIds": ["sg-1"]})


def test_rds_query_is_staged_and_read(ml, server, s3, mariadb, bucket):
    register(server, "shopdb", "mysql://127.0.0.1:3306")
    ds_id = unique("ds")
    ml.create_data_source_from_rds(**rds_request(ds_id, mariadb, bucket))
    got = settle(ml.get_data_source, DataSourceId=ds_id)
    assert got["Status"] == "COMPLETED", got.get("Message")
    staged = f"s3://{bucket}/staging/{ds_id}.csv"
    assert got["DataLocationS3"] == staged
    body = s3.client().get_object(Bucket=bucket, Key=f"staging/{ds_id}.csv")["Body"].read().decode()
    lines = body.splitlines()
    assert lines[0] == "id,name,amount,paid,note" and len(lines) == 201
    assert lines[1].startswith("0,name 0,0.0,")
    schema = json.loads(ml.get_data_source(DataSourceId=ds_id, Verbose=True)["DataSourceSchema"])
    assert [(a["attributeName"], a["attributeType"]) for a in schema["attributes"]] == [
        ("id", "NUMERIC"), ("name", "CATEGORICAL"), ("amount", "NUMERIC"), ("paid", "NUMERIC"), ("note", "TEXT")]
    assert got["RDSMetadata"]["Database"] == {"InstanceIdentifier": "shopdb", "DatabaseName": "test"}
    assert "reader-pass-1" not in json.dumps(got, default=str) + server.log_text()


@pytest.mark.parametrize("change, fragment", [
    ({"query": "SELECT * FROM no_such_table"}, "no_such_table"),
    ({"password": "wrong-password"}, "Access denied"),
    ({"identifier": "unknown-db"}, "not a database registered"),
])
def test_rds_failures_carry_the_database_message(ml, server, mariadb, bucket, change, fragment):
    register(server, "shopdb", "mysql://127.0.0.1:3306")
    ds_id = unique("ds")
    ml.create_data_source_from_rds(**rds_request(ds_id, mariadb, bucket, **change))
    got = settle(ml.get_data_source, DataSourceId=ds_id)
    assert got["Status"] == "FAILED"
    assert fragment in got["Message"]
    assert "wrong-password" not in got["Message"]


def test_a_password_the_driver_cannot_encode_is_not_quoted(ml, server, mariadb, bucket):
    register(server, "shopdb", "mysql://127.0.0.1:3306")
    ds_id = unique("ds")
    ml.create_data_source_from_rds(**rds_request(ds_id, mariadb, bucket, password="pass\u20acword-9"))
    got = settle(ml.get_data_source, DataSourceId=ds_id)
    assert got["Status"] == "FAILED" and "connection settings" in got["Message"]
    log = urllib.request.urlopen(got["LogUri"], timeout=10).read().decode()
    for text in (got["Message"], log, server.log_text()):
        assert "\u20ac" not in text and "\\u20ac" not in text and "position" not in text


def test_redshift_query_on_postgres(ml, server, s3, postgres, bucket):
    register(server, "warehouse", "postgresql://127.0.0.1:5432")
    ds_id = unique("ds")
    schema = {"version": "1.0", "targetAttributeName": "paid", "dataFormat": "CSV", "dataFileContainsHeader": True,
              "attributes": [{"attributeName": "id", "attributeType": "CATEGORICAL"},
                             {"attributeName": "name", "attributeType": "CATEGORICAL"},
                             {"attributeName": "amount", "attributeType": "NUMERIC"},
                             {"attributeName": "paid", "attributeType": "BINARY"}]}
    ml.create_data_source_from_redshift(
        DataSourceId=ds_id, RoleARN="arn:aws:iam::111111111111:role/ml", ComputeStatistics=True,
        DataSpec={"DatabaseInformation": {"DatabaseName": "test", "ClusterIdentifier": "warehouse"},
                  "SelectSqlQuery": f"SELECT id, name, amount, paid FROM {postgres} ORDER BY id",
                  "DatabaseCredentials": {"Username": "postgres", "Password": "any-password"},
                  "S3StagingLocation": f"s3://{bucket}/rs/", "DataSchema": json.dumps(schema)})
    got = settle(ml.get_data_source, DataSourceId=ds_id)
    assert got["Status"] == "COMPLETED", got.get("Message")
    assert got["RedshiftMetadata"]["RedshiftDatabase"] == {"DatabaseName": "test", "ClusterIdentifier": "warehouse"}
    body = s3.client().get_object(Bucket=bucket, Key=f"rs/{ds_id}.csv")["Body"].read().decode()
    assert body.splitlines()[1] == "0,name 0,0.0,true"


def test_staging_never_replaces_an_object_it_did_not_write(server, s3, mariadb, bucket):
    """Alice's staged CSV survives Bob's datasource with the same ID and
    staging location, and a file already at the staging path survives too."""
    register(server, "shopdb", "mysql://127.0.0.1:3306")
    alice, bob = server.client(server.default_keys), server.client(server.other_keys)
    ds_id = unique("ds")
    alice.create_data_source_from_rds(**rds_request(ds_id, mariadb, bucket))
    assert settle(alice.get_data_source, DataSourceId=ds_id)["Status"] == "COMPLETED"
    staged = f"s3://{bucket}/staging/{ds_id}.csv"
    before = s3.client().get_object(Bucket=bucket, Key=f"staging/{ds_id}.csv")["Body"].read()

    bob.create_data_source_from_rds(**rds_request(ds_id, mariadb, bucket, query=f"SELECT id FROM {mariadb}"))
    got = settle(bob.get_data_source, DataSourceId=ds_id)
    assert got["Status"] == "FAILED" and staged in got["Message"]
    assert s3.client().get_object(Bucket=bucket, Key=f"staging/{ds_id}.csv")["Body"].read() == before

    other_id = unique("ds")
    s3.client().put_object(Bucket=bucket, Key=f"staging/{other_id}.csv", Body=b"the user's own file")
    alice.create_data_source_from_rds(**rds_request(other_id, mariadb, bucket))
    got = settle(alice.get_data_source, DataSourceId=other_id)
    assert got["Status"] == "FAILED" and f"s3://{bucket}/staging/{other_id}.csv" in got["Message"]
    body = s3.client().get_object(Bucket=bucket, Key=f"staging/{other_id}.csv")["Body"].read()
    assert body == b"the user's own file"


@pytest.mark.parametrize("url, sleep", [
    (PG_ADMIN_URL, "SELECT pg_sleep(30)"),
    (MYSQL_URL, "SELECT SLEEP(30)"),
], ids=["postgresql", "mariadb"])
def test_a_query_with_a_timeout_is_stopped(url, sleep):
    """The console's sample query waits in a request: its time is bounded."""
    import io
    import time

    from treadle.data.sql import QueryError, connection_url, run_query

    parts = url.split("://", 1)[1]
    user = parts.split("@", 1)[0]
    host = parts.split("@", 1)[1].split("/", 1)[0]
    started = time.monotonic()
    try:
        with pytest.raises(QueryError):
            run_query(connection_url(f"{url.split('://')[0]}://{host}", url.rsplit("/", 1)[1], user, ""),
                      sleep, io.StringIO(), timeout=1)
    except OSError as error:  # the database server is absent
        service_missing(url.split("://")[0], str(error))
    assert time.monotonic() - started < 15
