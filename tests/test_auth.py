"""SigV4 verification and account isolation."""
import datetime as dt
import json

import pytest
from botocore.exceptions import ClientError

from support import Keys, signed_post, treadle, unique


def code(body) -> str:
    return body["__type"].rsplit("#", 1)[-1]


def test_valid_signature_and_caller_arn(server):
    status, body = signed_post(server.url + "/", server.default_keys, "DescribeDataSources", b"{}")
    assert status == 200 and "Results" in body


def test_missing_authorization(server):
    status, body = signed_post(server.url + "/", None, "DescribeDataSources", b"{}")
    assert status == 403 and code(body) == "MissingAuthenticationTokenException"


def test_unknown_access_key(server):
    stranger = Keys("AKIAUNKNOWNUNKNOWN00", "x" * 40, "", "")
    status, body = signed_post(server.url + "/", stranger, "DescribeDataSources", b"{}")
    assert status == 403 and code(body) == "UnrecognizedClientException"


def test_wrong_secret(server):
    keys = server.default_keys
    # Change the last character to a different one (a fixed "A" would be no change 1 time in 64).
    last = "B" if keys.secret_access_key.endswith("A") else "A"
    wrong = Keys(keys.access_key_id, keys.secret_access_key[:-1] + last, keys.account, keys.user)
    status, body = signed_post(server.url + "/", wrong, "DescribeDataSources", b"{}")
    assert status == 403 and code(body) == "InvalidSignatureException"


def test_tampered_body_fails(server):
    import requests
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    keys = server.default_keys
    request = AWSRequest(method="POST", url=server.url + "/", data=b'{"Limit": 1}', headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonML_20141212.DescribeDataSources"})
    SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), "machinelearning", "us-east-1").add_auth(request)
    response = requests.post(server.url + "/", data=b'{"Limit": 2}', headers=dict(request.headers), timeout=10)
    assert response.status_code == 403
    assert code(response.json()) == "InvalidSignatureException"


def test_a_non_ascii_signature_is_refused_not_an_error(server):
    import re
    import urllib.error
    import urllib.request

    import requests
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    keys = server.default_keys
    request = AWSRequest(method="POST", url=server.url + "/", data=b"{}", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonML_20141212.DescribeDataSources"})
    SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), "machinelearning", "us-east-1").add_auth(request)
    headers = dict(request.headers)
    headers["Authorization"] = re.sub(r"Signature=\w+", "Signature=" + "\u00e9" * 64, headers["Authorization"])
    response = requests.post(server.url + "/", data=b"{}", headers=headers, timeout=10)
    assert response.status_code == 403 and code(response.json()) == "InvalidSignatureException"
    # The same for the signed links to job logs.
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(f"{server.url}/logs/{keys.account}/DataSource/ds-x?Expires=9999999999&Signature=%C3%A9",
                               timeout=10)
    assert excinfo.value.code == 403


def _signed_with_only(keys, url: str, names: set[str], headers: dict, body: bytes) -> dict:
    """Headers of a request whose signature covers only `names` (a client
    that signs less than botocore does, or a captured request)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class Narrow(SigV4Auth):
        def headers_to_sign(self, request):
            signed = super().headers_to_sign(request)
            for name in [n for n in signed if n.lower() not in names]:
                del signed[name]
            return signed

    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    Narrow(Credentials(keys.access_key_id, keys.secret_access_key), "machinelearning", "us-east-1").add_auth(request)
    return dict(request.headers)


def test_an_unsigned_target_cannot_turn_a_read_into_a_delete(server):
    """A request signed over host;x-amz-date only: swapping its X-Amz-Target
    must not delete anything, and the request itself is refused, naming the
    unsigned header."""
    import requests

    ml = server.client()
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://b/k.csv"})
    body = json.dumps({"DataSourceId": ds_id}).encode()
    headers = _signed_with_only(server.default_keys, server.url + "/", {"host", "x-amz-date"}, {
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonML_20141212.GetDataSource"}, body)
    assert "SignedHeaders=host;x-amz-date," in headers["Authorization"]
    for target in ("GetDataSource", "DeleteDataSource"):
        response = requests.post(server.url + "/", data=body, timeout=10,
                                 headers={**headers, "X-Amz-Target": f"AmazonML_20141212.{target}"})
        assert response.status_code == 403, response.text
        assert code(response.json()) == "InvalidSignatureException"
        assert "x-amz-target" in response.json()["message"]
    assert ml.get_data_source(DataSourceId=ds_id)["Status"] != "DELETED"


def test_every_x_amz_header_must_be_signed_but_content_type_need_not_be(server):
    """boto 2 signs host and the x-amz-* headers only: that is accepted. An
    extra x-amz-* header added after signing is not."""
    import requests

    body = b"{}"
    base = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonML_20141212.DescribeDataSources"}
    headers = _signed_with_only(server.default_keys, server.url + "/", {"host", "x-amz-date", "x-amz-target"},
                                base, body)
    response = requests.post(server.url + "/", data=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    response = requests.post(server.url + "/", data=body, timeout=10,
                             headers={**headers, "X-Amz-Security-Token": "stolen"})
    assert response.status_code == 403 and "x-amz-security-token" in response.json()["message"]
    unsigned_host = _signed_with_only(server.default_keys, server.url + "/", {"x-amz-date", "x-amz-target"},
                                      base, body)
    response = requests.post(server.url + "/", data=body, headers=unsigned_host, timeout=10)
    assert response.status_code == 403 and "Host" in response.json()["message"]


def test_signature_outside_fifteen_minutes(server):
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=16)
    status, body = signed_post(server.url + "/", server.default_keys, "DescribeDataSources", b"{}", when=old)
    assert status == 403 and code(body) == "InvalidSignatureException"
    assert "expired" in body["message"].lower()
    recent = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=14)
    status, _ = signed_post(server.url + "/", server.default_keys, "DescribeDataSources", b"{}", when=recent)
    assert status == 200


def test_wrong_service_scope(server):
    status, body = signed_post(server.url + "/", server.default_keys, "DescribeDataSources", b"{}", service="s3")
    assert status == 403 and code(body) == "InvalidSignatureException"


def test_accounts_are_isolated(server):
    alice, bob = server.client(), server.client(server.other_keys)
    ds_id = unique("ds")
    alice.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://b/private.csv"},
                                     ComputeStatistics=True)
    with pytest.raises(ClientError) as excinfo:
        bob.get_data_source(DataSourceId=ds_id)
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert ds_id not in [d["DataSourceId"] for d in bob.describe_data_sources(Limit=100)["Results"]]
    for call in (lambda: bob.delete_data_source(DataSourceId=ds_id),
                 lambda: bob.add_tags(ResourceId=ds_id, ResourceType="DataSource", Tags=[{"Key": "a", "Value": "b"}]),
                 lambda: bob.describe_tags(ResourceId=ds_id, ResourceType="DataSource")):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError):  # bob cannot train on alice's data
        bob.create_ml_model(MLModelId=unique("ml"), MLModelType="BINARY", TrainingDataSourceId=ds_id)
    # The same ID is free in bob's account.
    bob.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://b/bob.csv"})
    assert bob.get_data_source(DataSourceId=ds_id)["CreatedByIamUser"] == "arn:aws:iam::222222222222:user/bob"
    assert alice.get_data_source(DataSourceId=ds_id)["DataLocationS3"] == "s3://b/private.csv"


def test_credentials_cli_prints_exports_and_stores_no_plaintext(server):
    keys = server.create_keys("carol")
    assert keys.access_key_id.startswith("AKIA") and len(keys.secret_access_key) == 40
    listing = treadle("credentials", "list", *server.db_args())
    assert keys.access_key_id in listing.stdout and keys.secret_access_key not in listing.stdout
    if server.database_url is None:
        stored = b"".join(p.read_bytes() for p in server.data_dir.glob("treadle.db*"))
        assert keys.secret_access_key.encode() not in stored
    else:
        import psycopg

        with psycopg.connect(server.database_url) as conn:
            dump = json.dumps(conn.execute("SELECT * FROM credentials").fetchall(), default=str)
        assert keys.secret_access_key not in dump
    assert keys.secret_access_key not in server.log_text()


def test_revoked_key_is_refused(server):
    keys = server.create_keys("dave")
    client = server.client(keys)
    client.describe_data_sources()
    assert treadle("credentials", "revoke", keys.access_key_id, *server.db_args()).returncode == 0
    import time
    time.sleep(5.5)  # the server caches looked-up keys for up to five seconds
    with pytest.raises(ClientError) as excinfo:
        client.describe_data_sources()
    assert excinfo.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_auth_none_requires_loopback(tmp_path):
    done = treadle("serve", "--auth", "none", "--host", "0.0.0.0", "--data-dir", str(tmp_path))
    assert done.returncode == 2
    assert "loopback" in done.stderr


def test_auth_none_takes_account_from_access_key(fresh_server):
    server = fresh_server("--auth", "none")
    anyone = Keys("123456789012", "whatever", "", "")
    client = server.client(anyone)
    ds_id = unique("ds")
    client.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://b/k"})
    assert client.get_data_source(DataSourceId=ds_id)["CreatedByIamUser"].startswith("arn:aws:iam::123456789012:")
    other = server.client(Keys("AKIAOTHER", "x", "", ""))
    with pytest.raises(ClientError):
        other.get_data_source(DataSourceId=ds_id)
