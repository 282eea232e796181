"""Property-based robustness tests of the wire API.

Requests for every operation are generated from botocore's service model
(never retyped here), signed with SigV4 and sent over real HTTP to a live
server. Valid requests must succeed or fail with a semantic error the
operation may legitimately return; invalid ones must get a 400 naming the
offending member. Nothing may produce a 500, hang, or take the server down.

Generated valid text excludes U+0000 and lone surrogates, which Treadle
rejects as invalid input (PostgreSQL cannot store NUL; a lone surrogate is
not UTF-8); explicit regression cases at the end cover them.

The HTTP layer beneath the JSON bodies (request heads, body sizes, slow
clients) is tested in test_http_limits.py.
"""
from __future__ import annotations

import functools
import json
import sys
import unicodedata
import uuid

import botocore.session
import httpx
import pytest
import regex
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from treadle.protocol.validation import PATTERN_OVERRIDES

MODEL = botocore.session.get_session().get_service_model("machinelearning")
OPERATIONS = list(MODEL.operation_names)
TARGET_PREFIX = MODEL.metadata["targetPrefix"]
CONTENT_TYPE = "application/x-amz-json-1.%s" % MODEL.metadata["jsonVersion"].split(".")[1]
TIMEOUT = httpx.Timeout(30.0)
EXAMPLES = 25

# Error codes of the AWS JSON protocol itself, which every AWS JSON service
# returns although they are not shapes of the service model.
PROTOCOL_ERRORS = {"SerializationException", "UnknownOperationException",
                   "MissingAuthenticationTokenException", "UnrecognizedClientException",
                   "InvalidSignatureException", "IncompleteSignatureException"}
MODEL_ERRORS = {shape.name for shape in MODEL.error_shapes}
KNOWN_ERRORS = MODEL_ERRORS | PROTOCOL_ERRORS

# Semantic errors a *shape-valid* request may get, given server state the
# generator does not control (IDs that may or may not exist, entities that a
# previous example deleted, free-text members such as DataSchema or
# Parameters whose content the shape does not constrain). Every entry must be
# one of the operation's error shapes in the model (checked below).
_CREATE_INPUTS = {"InvalidInputException", "IdempotentParameterMismatchException"}
_BY_ID = {"ResourceNotFoundException"}
_CHANGE_BY_ID = {"ResourceNotFoundException", "InvalidInputException"}
SEMANTIC_ERRORS = {
    "CreateDataSourceFromS3": _CREATE_INPUTS,        # bad file:// location, DataSchema not JSON
    "CreateDataSourceFromRDS": _CREATE_INPUTS,
    "CreateDataSourceFromRedshift": _CREATE_INPUTS,
    "CreateMLModel": _CREATE_INPUTS,                 # unknown datasource, bad Parameters
    "CreateEvaluation": _CREATE_INPUTS,
    "CreateBatchPrediction": _CREATE_INPUTS,
    "GetDataSource": _BY_ID, "GetMLModel": _BY_ID, "GetEvaluation": _BY_ID, "GetBatchPrediction": _BY_ID,
    "DeleteDataSource": _BY_ID, "DeleteMLModel": _BY_ID, "DeleteEvaluation": _BY_ID,
    "DeleteBatchPrediction": _BY_ID, "DeleteRealtimeEndpoint": _BY_ID, "DescribeTags": _BY_ID,
    "UpdateDataSource": _CHANGE_BY_ID,               # the object may be DELETED
    "UpdateMLModel": _CHANGE_BY_ID,                  # ScoreThreshold on a non-BINARY model
    "UpdateEvaluation": _CHANGE_BY_ID,
    "UpdateBatchPrediction": _CHANGE_BY_ID,
    "CreateRealtimeEndpoint": _CHANGE_BY_ID,
    "DescribeDataSources": {"InvalidInputException"},   # foreign NextToken, Prefix on a time
    "DescribeMLModels": {"InvalidInputException"},
    "DescribeEvaluations": {"InvalidInputException"},
    "DescribeBatchPredictions": {"InvalidInputException"},
    "AddTags": {"ResourceNotFoundException", "InvalidTagException", "TagLimitExceededException",
                "InvalidInputException"},
    "DeleteTags": {"ResourceNotFoundException", "InvalidTagException", "InvalidInputException"},
    "Predict": {"ResourceNotFoundException", "PredictorNotMountedException"},
}
# Wording the server's shape validator uses; a shape-valid request must never
# be rejected with it.
SHAPE_COMPLAINTS = ("failed to satisfy constraint", "Unknown member", "validation error")
# The service model bounds every error's message (ErrorMessage max 2048).
MESSAGE_MAX = min(shape.members["message"].metadata.get("max", 10**9) for shape in MODEL.error_shapes)

# Generated text: any Unicode scalar value except NUL (see module docstring).
ALPHABET = st.characters(codec="utf-8", exclude_characters="\x00")
LONG_TEXT_LIMIT = 200_000   # skip "too long" mutations of members allowed megabytes


# ---------------------------------------------------------------------------
# Patterns: the model's are Java regular expressions. The server checks them
# with the `regex` module; hypothesis generates from Python `re` syntax, so
# \p{..} classes are expanded into explicit code point ranges.

@functools.cache
def _category_ranges(prefix: str) -> str:
    ranges, start, last = [], None, None
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        if unicodedata.category(chr(code)).startswith(prefix):
            if start is None:
                start = code
            last = code
        elif start is not None:
            ranges.append((start, last))
            start = None
    if start is not None:
        ranges.append((start, last))
    return "".join(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges)


def java_pattern(shape) -> str | None:
    return PATTERN_OVERRIDES.get(shape.name, shape.metadata.get("pattern"))


def python_pattern(pattern: str) -> str:
    return regex.sub(r"\\p\{(\w)\}", lambda m: _category_ranges(m.group(1)), pattern)


@functools.cache
def server_regex(pattern: str):
    return regex.compile(pattern)


def matches(shape, value: str) -> bool:
    pattern = java_pattern(shape)
    return pattern is None or server_regex(pattern).fullmatch(value) is not None


def length_ok(shape, length: int) -> bool:
    low, high = shape.metadata.get("min", 0), shape.metadata.get("max")
    return low <= length and (high is None or length <= high)


# ---------------------------------------------------------------------------
# Valid values

@functools.cache
def pattern_strategy(shape_name: str) -> st.SearchStrategy:
    """Values matching a shape's pattern and length, including ones of exactly
    the maximum length. Cached: hypothesis rebuilds a regex strategy (a second
    for a large \\p{..} class) whenever a filter is added to it."""
    shape = MODEL.shape_for(shape_name)
    high = shape.metadata.get("max")
    generated = st.from_regex(python_pattern(java_pattern(shape)), fullmatch=True, alphabet=ALPHABET).filter(
        lambda s: length_ok(shape, len(s)) and matches(shape, s))
    if high is None or high > 4096:
        return generated
    boundary = generated.filter(bool).map(lambda s: (s * (high // len(s) + 1))[:high]).filter(
        lambda s: matches(shape, s))
    return st.one_of(generated, boundary)


POOL_KINDS = {"DataSourceId": "ds", "MLModelId": "ml", "EvaluationId": "ev", "BatchPredictionId": "bp"}


def id_strategy(member_name: str, pool) -> st.SearchStrategy:
    """An EntityId member: a generated ID, or one of an existing object of the
    kind the member's name implies (any kind for ResourceId), so that
    Get/Update/Delete/Tags/Predict and Creates naming inputs also succeed."""
    generated = pattern_strategy("EntityId")
    if not pool:
        return generated
    ids = dict(pool)
    kind = next((k for suffix, k in POOL_KINDS.items() if member_name.endswith(suffix)), None)
    existing = st.sampled_from([ids[kind]] if kind else sorted(ids.values()))
    return st.booleans().flatmap(lambda use_existing: existing if use_existing else generated)


def valid_string(shape, pool_ids) -> st.SearchStrategy:
    enum = shape.metadata.get("enum")
    if enum:
        return st.sampled_from(enum)
    low, high = shape.metadata.get("min", 0), shape.metadata.get("max")
    if java_pattern(shape) is not None:
        return pattern_strategy(shape.name)
    small = st.text(ALPHABET, min_size=low, max_size=max(low, min(high or 40, 40)))
    if high is not None and high <= 4096:
        return st.one_of(small, st.builds(lambda c: c * high, ALPHABET), st.just("x" * max(low, 1)))
    return small


_valid_cache: dict = {}


def valid(shape, pool_ids=()) -> st.SearchStrategy:
    key = (shape.name, tuple(pool_ids))
    if key not in _valid_cache:
        _valid_cache[key] = _valid(shape, tuple(pool_ids))
    return _valid_cache[key]


def _valid(shape, pool_ids) -> st.SearchStrategy:
    kind = shape.type_name
    if kind == "structure":
        required = set(shape.required_members)
        def member_strategy(name, member):
            return id_strategy(name, pool_ids) if member.name == "EntityId" else valid(member, pool_ids)
        return st.fixed_dictionaries(
            {name: member_strategy(name, member) for name, member in shape.members.items() if name in required},
            optional={name: member_strategy(name, member) for name, member in shape.members.items()
                      if name not in required})
    if kind == "string":
        return valid_string(shape, pool_ids)
    if kind in ("integer", "long"):
        return st.integers(shape.metadata.get("min", -(2**31)), shape.metadata.get("max", 2**31 - 1))
    if kind in ("float", "double"):
        return st.floats(shape.metadata.get("min"), shape.metadata.get("max"),
                         allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "list":
        low = shape.metadata.get("min", 0)
        return st.lists(valid(shape.member, pool_ids), min_size=low,
                        max_size=min(shape.metadata.get("max", 5), max(low, 5)))
    if kind == "map":
        return st.dictionaries(valid(shape.key, pool_ids), valid(shape.value, pool_ids), max_size=4)
    raise AssertionError(f"input shape {shape.name} has unexpected type {kind}")


# ---------------------------------------------------------------------------
# Invalid values

WRONG_TYPE = {
    "string": [7, 1.5, True, [], ["x"], {}, {"a": "b"}],
    "integer": ["5", True, 1.5, [], {}, "many"],
    "float": ["0.5", True, [], {}, float("inf"), float("nan")],
    "boolean": ["true", 1, 0, [], {}],
    "list": ["x", 1, {}, True],
    "map": ["x", 1, [], True],
    "structure": ["x", 1, [], True],
}
WRONG_TYPE["long"] = WRONG_TYPE["integer"]
WRONG_TYPE["double"] = WRONG_TYPE["float"]


def locations(shape, value, path=(), member_name=None):
    """Every (path, shape, name) inside a value; name is the nearest
    structure member name, which an error message must mention."""
    if path:
        yield path, shape, member_name
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                yield from locations(member, value[name], path + (name,), name)
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from locations(shape.member, item, path + (index,), member_name)
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            yield from locations(shape.value, item, path + (key,), member_name)


def structures(shape, value, path=(), member_name=None):
    """Every structure inside a value, with its path, shape and name."""
    if shape.type_name == "structure" and isinstance(value, dict):
        yield path, shape, value, member_name
        for name, member in shape.members.items():
            if name in value:
                yield from structures(member, value[name], path + (name,), name)
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from structures(shape.member, item, path + (index,), member_name)
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            yield from structures(shape.value, item, path + (key,), member_name)


def _get(value, path):
    for part in path:
        value = value[part]
    return value


def _set(value, path, new):
    _get(value, path[:-1])[path[-1]] = new


def mutations(op_shape, request):
    """The (kind, path, shape, name) mutations applicable to a request."""
    found = []
    for path, shape, struct, name in structures(op_shape, request):
        found.append(("unknown_member", path, shape, name))
        for required in shape.required_members:
            found.append(("missing_required", path + (required,), shape.members[required], required))
            found.append(("null_required", path + (required,), shape.members[required], required))
    for path, shape, name in locations(op_shape, request):
        found.append(("wrong_type", path, shape, name))
        meta = shape.metadata
        if shape.type_name in ("string", "list"):
            if meta.get("max") is not None and meta["max"] < LONG_TEXT_LIMIT:
                found.append(("too_long", path, shape, name))
            if meta.get("min"):
                found.append(("too_short", path, shape, name))
        if shape.type_name in ("integer", "long") and ("min" in meta or "max" in meta):
            found.append(("out_of_range", path, shape, name))
        if meta.get("enum"):
            found.append(("unknown_enum", path, shape, name))
        elif java_pattern(shape) and shape.type_name == "string":
            found.append(("pattern", path, shape, name))
    return found


def invalid_string_for_pattern(shape):
    low, high = shape.metadata.get("min", 0), shape.metadata.get("max")
    top = min(high if high is not None else 60, 60)
    candidates = st.one_of(
        st.text(st.sampled_from(" \t\r\n\u00a0"), min_size=max(low, 1), max_size=max(low, top)),
        st.text(ALPHABET, min_size=max(low, 1), max_size=max(low, top)),
        st.text(st.sampled_from("!#$%&*? ;<>|~`'\"\\,"), min_size=max(low, 1), max_size=max(low, top)),
    )
    return candidates.filter(lambda s: length_ok(shape, len(s)) and not matches(shape, s))


def apply_mutation(data, kind, path, shape, request):
    """Mutate the request in place; return the JSON-able request."""
    if kind == "unknown_member":
        target = _get(request, path)
        key = data.draw(st.from_regex(r"[A-Z][A-Za-z0-9]{0,20}", fullmatch=True).filter(
            lambda k: k not in shape.members), label="unknown member")
        target[key] = data.draw(st.sampled_from(["x", 1, True, {}, []]), label="its value")
        return request, key
    if kind == "missing_required":
        del _get(request, path[:-1])[path[-1]]
        return request, None
    if kind == "null_required":
        _set(request, path, None)
        return request, None
    if kind == "wrong_type":
        _set(request, path, data.draw(st.sampled_from(WRONG_TYPE[shape.type_name]), label="wrong type"))
        return request, None
    meta = shape.metadata
    if kind == "too_long":
        excess = data.draw(st.sampled_from([1, 2, 100]), label="excess")
        if shape.type_name == "list":
            current = _get(request, path)
            filler = current[0] if current else data.draw(valid(shape.member))
            _set(request, path, [filler] * (meta["max"] + excess))
        else:
            seed = data.draw(valid(shape), label="seed") or "x"
            _set(request, path, (seed * (meta["max"] // len(seed) + excess + 1))[:meta["max"] + excess])
        return request, None
    if kind == "too_short":
        length = data.draw(st.integers(0, meta["min"] - 1), label="length")
        _set(request, path, [] if shape.type_name == "list" else "a" * length)
        return request, None
    if kind == "out_of_range":
        bad = []
        if "min" in meta:
            bad += [meta["min"] - 1, meta["min"] - 1000, -(2**63)]
        if "max" in meta:
            bad += [meta["max"] + 1, meta["max"] + 1000, 2**63, 10**30]
        _set(request, path, data.draw(st.sampled_from(bad), label="out of range"))
        return request, None
    if kind == "unknown_enum":
        _set(request, path, data.draw(
            st.text(ALPHABET, max_size=30).filter(lambda s: s not in meta["enum"]), label="not in enum"))
        return request, None
    if kind == "pattern":
        _set(request, path, data.draw(invalid_string_for_pattern(shape), label="pattern violation"))
        return request, None
    raise AssertionError(kind)


# ---------------------------------------------------------------------------
# Transport

class Wire:
    """Signed raw requests to one server, as one account."""

    def __init__(self, url: str, keys):
        self.url = url
        self.credentials = Credentials(keys.access_key_id, keys.secret_access_key)
        self.http = httpx.Client(timeout=TIMEOUT)

    def send(self, operation: str | None, body, headers: dict | None = None, path: str = "/") -> httpx.Response:
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        base = {"Content-Type": CONTENT_TYPE}
        if operation is not None:
            base["X-Amz-Target"] = f"{TARGET_PREFIX}.{operation}"
        base.update(headers or {})
        base = {k: v for k, v in base.items() if v is not None}
        request = AWSRequest(method="POST", url=self.url + path, data=body, headers=base)
        SigV4Auth(self.credentials, "machinelearning", "us-east-1").add_auth(request)
        return self.http.post(self.url + path, content=body, headers=dict(request.headers.items()))


def error_of(response: httpx.Response, bounded: bool = False) -> tuple[str, str]:
    assert response.headers.get("content-type", "").startswith("application/x-amz-json-1.1"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    code = body.get("__type", "").rsplit("#", 1)[-1]
    message = body.get("message") or body.get("Message") or ""
    assert code in KNOWN_ERRORS, body
    assert message.strip(), body
    if bounded:
        assert len(message) <= MESSAGE_MAX, f"{code} message is {len(message)} characters"
    return code, message


def conforms(shape, value, path="") -> None:
    """A response value has the output shape's JSON types and no undeclared members."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), f"{path}: {value!r}"
        for name, item in value.items():
            assert name in shape.members, f"{path}.{name} is not a member of {shape.name}"
            conforms(shape.members[name], item, f"{path}.{name}")
    elif kind == "string":
        assert isinstance(value, str), f"{path}: {value!r}"
        if shape.metadata.get("enum"):
            assert value in shape.metadata["enum"], f"{path}: {value!r}"
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: {value!r}"
    elif kind in ("float", "double", "timestamp"):
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{path}: {value!r}"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{path}: {value!r}"
    elif kind == "list":
        assert isinstance(value, list), f"{path}: {value!r}"
        for index, item in enumerate(value):
            conforms(shape.member, item, f"{path}[{index}]")
    elif kind == "map":
        assert isinstance(value, dict), f"{path}: {value!r}"
        for key, item in value.items():
            conforms(shape.key, key, f"{path}.key")
            conforms(shape.value, item, f"{path}[{key!r}]")


# ---------------------------------------------------------------------------
# Fixtures

@pytest.fixture(scope="module")
def wire(server):
    """A dedicated account, so generated objects never show up in other tests."""
    account = "9" + str(uuid.uuid4().int)[:11]
    keys = server.create_keys("fuzzer", account)
    client = Wire(server.url, keys)
    yield client
    client.http.close()


@pytest.fixture
def pool(wire):
    """A datasource, model, evaluation and batch prediction that exist, so
    generated IDs sometimes name real objects."""
    tag = uuid.uuid4().hex[:8]
    ids = {kind: f"pool-{kind}-{tag}" for kind in ("ds", "ml", "ev", "bp")}
    steps = [
        ("CreateDataSourceFromS3", {"DataSourceId": ids["ds"], "ComputeStatistics": True,
                                    "DataSpec": {"DataLocationS3": "s3://robustness/data.csv"}}),
        ("CreateMLModel", {"MLModelId": ids["ml"], "MLModelType": "BINARY", "TrainingDataSourceId": ids["ds"]}),
        ("CreateEvaluation", {"EvaluationId": ids["ev"], "MLModelId": ids["ml"],
                              "EvaluationDataSourceId": ids["ds"]}),
        ("CreateBatchPrediction", {"BatchPredictionId": ids["bp"], "MLModelId": ids["ml"],
                                   "BatchPredictionDataSourceId": ids["ds"], "OutputUri": "s3://robustness/out/"}),
        ("AddTags", {"ResourceId": ids["ds"], "ResourceType": "DataSource", "Tags": [{"Key": "pool", "Value": tag}]}),
    ]
    for operation, body in steps:
        response = wire.send(operation, body)
        assert response.status_code == 200, response.text
    return tuple(sorted(ids.items()))


def assert_alive(server, wire):
    assert server.process.poll() is None, server.log_text()[-3000:]
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200


PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, database=None,
    # Shrinking a failure over HTTP can take many minutes; the unshrunk
    # example is reported instead.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much, HealthCheck.data_too_large])


# ---------------------------------------------------------------------------
# Properties

def test_semantic_error_table_is_derived_from_the_model():
    assert set(SEMANTIC_ERRORS) == set(OPERATIONS)
    for operation, codes in SEMANTIC_ERRORS.items():
        declared = {shape.name for shape in MODEL.operation_model(operation).error_shapes}
        assert codes <= declared - {"InternalServerException"}, (operation, codes - declared)


@pytest.mark.parametrize("operation", OPERATIONS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_valid_requests(server, wire, pool, operation, data):
    op = MODEL.operation_model(operation)
    request = data.draw(valid(op.input_shape, pool), label="request")
    response = wire.send(operation, request)
    assert response.status_code != 500, (response.text, server.log_text()[-2000:])
    event("200" if response.status_code == 200 else response.json().get("__type", "").rsplit("#")[-1])
    if response.status_code == 200:
        body = response.json()
        conforms(op.output_shape, body)
        for name, value in body.items():
            # Create/Update/Delete/Tags echo the identifiers they were given.
            if (name.endswith("Id") or name == "ResourceType") and isinstance(request.get(name), str):
                assert value == request[name], (name, value, request[name])
    else:
        assert response.status_code == 400, response.text
        code, message = error_of(response)
        assert code in SEMANTIC_ERRORS[operation], (code, message)
        assert not any(words in message for words in SHAPE_COMPLAINTS), message
    assert server.process.poll() is None


@pytest.mark.parametrize("operation", OPERATIONS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_invalid_requests(server, wire, operation, data):
    op = MODEL.operation_model(operation)
    request = data.draw(valid(op.input_shape), label="valid request")
    kind = data.draw(st.sampled_from(["member", "member", "member", "member", "non_object", "malformed"]),
                     label="kind")
    name = None
    if kind == "member":
        choices = mutations(op.input_shape, request)
        if not choices:
            kind = "non_object"
        else:
            mutation, path, shape, name = data.draw(st.sampled_from(choices), label="mutation")
            request, added = apply_mutation(data, mutation, path, shape, request)
            name = added or name
            body = json.dumps(request).encode()
    if kind == "non_object":
        body = json.dumps(data.draw(st.sampled_from([[], [request], "x", 1, 2.5, True, None]),
                                    label="non-object")).encode()
    elif kind == "malformed":
        text = json.dumps(request).encode()
        cut = data.draw(st.integers(1, len(text) - 1), label="cut")   # an empty body means {}
        garbage = data.draw(st.sampled_from([b"", b"{", b"\"", b",", b"}}", b"\xff", b"]"]), label="garbage")
        body = text[:cut] + garbage
        try:
            json.loads(body)
            body = text + b"}"   # the cut happened to leave valid JSON
        except ValueError:
            pass
    response = wire.send(operation, body)
    assert response.status_code == 400, (body[:500], response.status_code, response.text[:1000])
    code, message = error_of(response)
    event(f"{kind}: {code}")
    if name is not None:
        assert code == "InvalidInputException", (code, message)
        assert name in message, (name, message)
    else:
        assert code in {"InvalidInputException", "SerializationException"}, (code, message)
    assert server.process.poll() is None


def test_server_survived(server, wire):
    assert_alive(server, wire)


# ---------------------------------------------------------------------------
# Regression cases

def _code(response):
    return error_of(response)[0]


def test_wrong_content_type(server, wire):
    for content_type in ("application/json", "text/plain", "application/x-amz-json-1.0", None):
        response = wire.send("DescribeDataSources", {}, {"Content-Type": content_type})
        assert response.status_code == 400, (content_type, response.text)
        assert _code(response) == "SerializationException"
    # Parameters after the media type are fine.
    response = wire.send("DescribeDataSources", {}, {"Content-Type": CONTENT_TYPE + "; charset=utf-8"})
    assert response.status_code == 200, response.text


def test_missing_target_and_unknown_operation(server, wire):
    response = wire.send(None, {})
    assert response.status_code == 400 and _code(response) == "UnknownOperationException", response.text
    for target in ("AmazonML_20141212.NoSuchThing", "AmazonML_20141212.", "Other_20141212.GetDataSource",
                   "AmazonML_20141212.getdatasource", "GetDataSource"):
        response = wire.send(None, {}, {"X-Amz-Target": target})
        assert response.status_code == 400, (target, response.text)
        assert _code(response) == "UnknownOperationException", target


def test_empty_body(server, wire):
    response = wire.send("DescribeDataSources", b"")
    assert response.status_code == 200 and isinstance(response.json()["Results"], list), response.text
    response = wire.send("GetDataSource", b"")
    assert response.status_code == 400 and _code(response) == "InvalidInputException"
    assert "DataSourceId" in error_of(response)[1]


@pytest.mark.parametrize("body", [b"[]", b"null", b"\"text\"", b"42", b"true", b"[{}]"])
def test_non_object_bodies(server, wire, body):
    for operation in ("DescribeDataSources", "GetDataSource", "Predict"):
        response = wire.send(operation, body)
        assert response.status_code == 400, (operation, body, response.text)
        assert _code(response) in {"InvalidInputException", "SerializationException"}


@pytest.mark.parametrize("body", [b"{", b"{\"DataSourceId\": }", b"{'DataSourceId': 'x'}", b"\x00",
                                  b"{\"DataSourceId\": \"x\"} trailing", b"\xef\xbb\xbf{}"])
def test_malformed_json(server, wire, body):
    response = wire.send("GetDataSource", body)
    assert response.status_code == 400, (body, response.text)
    assert _code(response) in {"SerializationException", "InvalidInputException"}


def test_huge_string_member(server, wire):
    huge = "n" * (1024 * 1024)
    response = wire.send("CreateDataSourceFromS3", {
        "DataSourceId": "huge", "DataSourceName": huge, "DataSpec": {"DataLocationS3": "s3://b/k"}})
    assert response.status_code == 400
    code, message = error_of(response)
    assert code == "InvalidInputException" and "DataSourceName" in message
    assert len(response.content) < 10_000, "the error must not echo the megabyte back"
    # A member without a length limit: a 1 MB Record value is rejected or the
    # model is simply unknown, but never a 500.
    response = wire.send("Predict", {"MLModelId": "no-such-model", "Record": {"a": huge},
                                     "PredictEndpoint": wire.url})
    assert response.status_code == 400
    assert _code(response) in {"InvalidInputException", "ResourceNotFoundException"}
    assert_alive(server, wire)


def test_moderate_nesting_is_a_type_error(server, wire):
    nested = "x"
    for _ in range(200):
        nested = {"a": nested}
    response = wire.send("GetDataSource", {"DataSourceId": nested})
    assert response.status_code == 400
    code, message = error_of(response)
    assert code == "InvalidInputException" and "DataSourceId" in message


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000,
                                  b"{\"DataSourceId\": " + b"{\"a\": " * 5000 + b"1" + b"}" * 5001],
                         ids=["array-100000-deep", "member-5000-deep"])
def test_deep_nesting(server, wire, body):
    response = wire.send("GetDataSource", body)
    assert response.status_code == 400, response.text
    assert _code(response) in {"SerializationException", "InvalidInputException"}


def test_non_utf8_bytes(server, wire):
    for body in (b"{\"DataSourceId\": \"\xff\xfe\"}", b"\xff\xfe\xfd", b"{\"DataSourceId\": \"\xc3\x28\"}",
                 "{}".encode("latin-1") + b"\xe9"):
        response = wire.send("GetDataSource", body)
        assert response.status_code == 400, (body, response.text)
        assert _code(response) in {"SerializationException", "InvalidInputException"}
    assert_alive(server, wire)


def test_non_finite_numbers(server, wire):
    for value in ("NaN", "Infinity", "-Infinity"):
        body = ('{"MLModelId": "m", "ScoreThreshold": %s}' % value).encode()
        response = wire.send("UpdateMLModel", body)
        assert response.status_code == 400, (value, response.text)
        assert _code(response) in {"InvalidInputException", "SerializationException"}


def test_integral_float_limit(server, wire):
    response = wire.send("DescribeDataSources", b'{"Limit": 5.0}')
    assert response.status_code in (200, 400), response.text


def test_lone_surrogate_escape(server, wire):
    body = b'{"DataSourceId": "sur", "DataSourceName": "x\\ud800y", "DataSpec": {"DataLocationS3": "s3://b/k"}}'
    response = wire.send("CreateDataSourceFromS3", body)
    assert response.status_code == 400, response.text
    assert _code(response) in {"InvalidInputException", "SerializationException"}


def test_nul_character(server, wire, request):
    """U+0000 is a legal JSON string character; PostgreSQL cannot store it."""
    name = "nul\x00name"
    response = wire.send("CreateDataSourceFromS3", {
        "DataSourceId": "nul-" + uuid.uuid4().hex[:8], "DataSourceName": name,
        "DataSpec": {"DataLocationS3": "s3://b/k"}})
    assert response.status_code in (200, 400), response.text
    response = wire.send("DescribeDataSources", {"FilterVariable": "Name", "EQ": name})
    assert response.status_code in (200, 400), response.text


@pytest.mark.parametrize("operation, body", [
    ("GetDataSource", {"DataSourceId": "a", "X" * 5000: 1}),
    ("CreateDataSourceFromS3", {"DataSourceId": "long-location",
                                "DataSpec": {"DataLocationS3": "file://host/" + "p" * 2030}}),
])
def test_error_message_length_is_bounded(server, wire, operation, body):
    response = wire.send(operation, body)
    assert response.status_code == 400
    error_of(response, bounded=True)


def test_unsigned_and_badly_signed_requests(server, wire):
    body = b"{}"
    headers = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": f"{TARGET_PREFIX}.DescribeDataSources"}
    response = wire.http.post(server.url + "/", content=body, headers=headers)
    assert response.status_code in (400, 403) and _code(response) == "MissingAuthenticationTokenException"
    request = AWSRequest(method="POST", url=server.url + "/", data=body, headers=headers)
    SigV4Auth(Credentials(wire.credentials.access_key, "wrong-secret"), "machinelearning",
              "us-east-1").add_auth(request)
    response = wire.http.post(server.url + "/", content=body, headers=dict(request.headers.items()))
    assert response.status_code in (400, 403) and _code(response) == "InvalidSignatureException"
    # A correctly signed request whose body was changed afterwards.
    request = AWSRequest(method="POST", url=server.url + "/", data=body, headers=headers)
    SigV4Auth(wire.credentials, "machinelearning", "us-east-1").add_auth(request)
    response = wire.http.post(server.url + "/", content=b'{"Limit": 1}', headers=dict(request.headers.items()))
    assert response.status_code in (400, 403) and _code(response) == "InvalidSignatureException"


def test_add_tags_without_key(server, wire):
    response = wire.send("AddTags", {"ResourceId": "x", "ResourceType": "DataSource", "Tags": [{"Value": "v"}]})
    assert response.status_code == 400, response.text
    assert _code(response) in {"InvalidTagException", "InvalidInputException"}


@pytest.mark.parametrize("operation, body", [
    ("CreateDataSourceFromS3", {"DataSourceId": "bad-file-uri", "DataSpec": {"DataLocationS3": "file://[x/data.csv"}}),
    ("CreateBatchPrediction", {"BatchPredictionId": "bad-file-uri", "MLModelId": "m", "BatchPredictionDataSourceId": "d",
                               "OutputUri": "file://[::1/out/"}),
])
def test_unparsable_file_uri(server, wire, operation, body):
    response = wire.send(operation, body)
    assert response.status_code == 400, response.text
    assert _code(response) == "InvalidInputException"


def test_server_survived_regressions(server, wire):
    assert_alive(server, wire)
