"""SigV4 verification's parts against botocore's signer, in process."""
import hashlib
import hmac
import os

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from treadle.protocol import errors
from treadle.protocol.auth import Authenticator, SigningKey, canonical_request
from treadle.store.credentials import AccessKey

KEY = AccessKey("AKIAEXAMPLE0000000001", "s3cr3t/+EXAMPLEKEYwJalrXUtnFEMIK7MDENG", "111111111111", "alice")


class OneKey:
    def lookup(self, access_key_id):
        return KEY if access_key_id == KEY.access_key_id else None


def signed(url="http://127.0.0.1:8686/", body=b'{"MLModelId":"ml-1"}', headers=None):
    request = AWSRequest(method="POST", url=url, data=body, headers={
        "X-Amz-Target": "AmazonML_20141212.Predict", "Content-Type": "application/x-amz-json-1.1", **(headers or {})})
    signer = SigV4Auth(Credentials(KEY.access_key_id, KEY.secret_access_key), "machinelearning", "us-east-1")
    signer.add_auth(request)
    return request, signer


def parts(request):
    from urllib.parse import urlsplit

    split = urlsplit(request.url)
    headers = {name.lower(): value for name, value in request.headers.items()}
    headers.setdefault("host", split.netloc)
    return split.path or "/", split.query, headers


def test_signing_key_is_hmac_sha256():
    for size in (1, 32, 64):
        key = os.urandom(size)
        for message in (b"", b"x", os.urandom(1000)):
            assert SigningKey(key).hexdigest(message) == hmac.new(key, message, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("url, headers", [
    ("http://127.0.0.1:8686/", {}),
    ("http://127.0.0.1:8686/some/path%20x/", {"X-Extra": "  spaced   out  value "}),
    ("http://127.0.0.1:8686/p?b=2&a=1&a=0", {"User-Agent": "ua/1.0"}),
])
def test_canonical_request_is_botocores(url, headers):
    request, signer = signed(url, headers=headers)
    path, query, lowered = parts(request)
    authorization = request.headers["Authorization"]
    signed_names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    payload = hashlib.sha256(request.body).hexdigest()
    del request.headers["Authorization"]  # as add_auth had it when it signed
    assert canonical_request("POST", path, query, lowered, signed_names, payload) == signer.canonical_request(request)


def test_verify_accepts_botocores_signature_in_either_header_spelling():
    authenticator = Authenticator("sigv4", OneKey())
    request, _ = signed()
    path, query, headers = parts(request)
    assert authenticator.verify("POST", path, query, headers, request.body).account == "111111111111"
    # The signature does not cover the Authorization header: other spellings
    # of it (no space after commas, fields reordered) verify the same.
    standard = headers["authorization"]
    algorithm, fields = standard.split(" ", 1)
    credential, signed_headers, signature = fields.split(", ")
    for variant in (f"{algorithm} {credential},{signed_headers},{signature}",
                    f"{algorithm} {signature}, {credential}, {signed_headers}"):
        assert authenticator.verify("POST", path, query, {**headers, "authorization": variant},
                                    request.body).user_name == "alice"
    with pytest.raises(errors.InvalidSignatureException):
        authenticator.verify("POST", path, query, headers, request.body + b" ")
    with pytest.raises(errors.InvalidSignatureException):
        authenticator.verify("POST", path, query, {**headers, "x-amz-target": "AmazonML_20141212.GetMLModel"},
                             request.body)
    with pytest.raises(errors.IncompleteSignatureException):
        authenticator.verify("POST", path, query, {**headers, "authorization": f"{algorithm} {credential}"},
                             request.body)
