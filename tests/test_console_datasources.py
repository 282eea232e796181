"""The console's datasource pages over HTTP: the creation wizard (a
location, an uploaded CSV file, a database query), its errors next to
their fields, uploads and their limits, and the data insights, checked
against statistics computed here with numpy and pandas."""
import html
import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from botocore.exceptions import ClientError
import requests

from support import ConsoleSession, Server, csrf_token, settle, treadle, unique, wait_for
from test_sql_datasources import mariadb  # noqa: F401 (a fixture: a table on the local MariaDB)

UPLOAD_LIMIT = 400_000
EVIL = '<script>alert("x")</script>'


class _Form(HTMLParser):
    """The values a browser would submit from the wizard's form."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}
        self._select = self._textarea = None
        self._option_text = False  # the chosen option's value is its text

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") != "file":
            if a.get("type") not in ("radio", "checkbox"):
                self.values[name] = a.get("value") or ""
            elif "checked" in a:
                self.values[name] = a.get("value") or "on"
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and ("selected" in a or self._select not in self.values):
            self.values[self._select] = a.get("value") or ""
            self._option_text = "value" not in a
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data
        elif self._option_text:
            self.values[self._select] += data.strip()

    def handle_endtag(self, tag):
        if tag == "option":
            self._option_text = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def form_values(page: str) -> dict:
    parser = _Form()
    parser.feed(page)
    parser.values.pop("action", None)
    return parser.values


def field_error(page: str, field: str) -> str | None:
    found = re.search(rf'<p class="problem field-error" role="alert" data-field="{re.escape(field)}">([^<]*)</p>', page)
    return html.unescape(found.group(1)) if found else None


def wizard(user: ConsoleSession, form: dict, action: str):
    """The wizard's form as a browser submits it (the form carries its CSRF token)."""
    return user.http.post(f"{user.base}/console/new/datasource", data={**form, "action": action},
                          allow_redirects=False, timeout=60)


def upload(user: ConsoleSession, body, csrf: str | None, **headers):
    sent = {"Content-Type": "text/csv", **headers}
    if csrf:
        sent["X-CSRF-Token"] = csrf
    return user.http.post(f"{user.base}/console/new/datasource/upload", data=body, headers=sent, timeout=60)


def make_frame(n: int = 3000, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = np.array("price service quick slow friendly rude clean dirty good bad".split())
    income = np.round(rng.lognormal(10, 0.5, n), 2).astype(object)
    income[rng.random(n) < 0.04] = ""
    return pd.DataFrame({
        "id": [f"r{i}" for i in range(n)],
        "age": rng.integers(18, 90, n),
        "income": income,
        "job": rng.choice(["admin", "tech", "sales", EVIL, 'say "hi"'], n, p=[.4, .3, .2, .06, .04]),
        "married": rng.choice(["yes", "no"], n),
        "review": [" ".join(rng.choice(words, rng.integers(3, 9))) for _ in range(n)],
        "y": rng.integers(0, 2, n),
    })


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("console-data")


@pytest.fixture(scope="module")
def console_server(tmp_path_factory, s3, data_dir):
    server = Server("", tmp_path_factory.mktemp("treadle-console"), None, env=s3.env)
    server.default_keys = server.create_keys("alice", "111111111111")
    server.other_keys = server.create_keys("bob", "222222222222")
    server.start("--allow-local-path", str(data_dir), "--max-upload-bytes", str(UPLOAD_LIMIT))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def frame(data_dir):
    frame = make_frame()
    frame.to_csv(data_dir / "customers.csv", index=False)
    return frame


@pytest.fixture
def alice(console_server):
    return ConsoleSession(console_server, console_server.default_keys)


def read(browser: ConsoleSession, **fields) -> tuple[requests.Response, dict]:
    start = browser.get("/console/new/datasource")
    form = {**form_values(start.text), **fields}
    response = wizard(browser, form, "read")
    return response, form_values(response.text)


def test_wizard_reads_a_location_and_creates_the_edited_schema(console_server, alice, frame, data_dir):
    response, form = read(alice, source="location", location=(data_dir / "customers.csv").as_uri())
    assert response.status_code == 200, field_error(response.text, "location")
    assert re.fullmatch(r"ds-[A-Za-z0-9]{11}", form["datasource_id"])
    # The inferred schema, as the job would infer it, and the first records.
    assert form["header"] == "yes" and form["attr_count"] == "7"
    names = [form[f"name_{i}"] for i in range(7)]
    assert names == list(frame.columns)
    assert [form[f"type_{i}"] for i in range(7)] == ["CATEGORICAL", "NUMERIC", "NUMERIC", "CATEGORICAL",
                                                       "BINARY", "TEXT", "BINARY"]
    assert "r9</td>" in response.text and "r10</td>" not in response.text.split('id="step-schema"')[0]
    assert form["statistics"] == "on" and form["split"] == "none"

    # Edit: age becomes CATEGORICAL, income is renamed, y is the target,
    # id the row ID, review excluded; a random 0-80 split with a seed.
    name = f"Customers {EVIL} 'quoted'"
    form.update({"type_1": "CATEGORICAL", "name_2": "yearly_income", "target": "6", "rowid": "0",
                 "exclude_5": "on", "split": "split", "percent_begin": "0", "percent_end": "80",
                 "strategy": "random", "seed": "s1", "name": name})
    created = wizard(alice, form, "create")
    assert created.status_code == 303, [m for m in re.findall(r'data-field="[^"]+">[^<]*', created.text)]
    ds_id = form["datasource_id"]
    assert created.headers["location"] == f"/console/datasources/{ds_id}"

    ml = console_server.client()
    got = ml.get_data_source(DataSourceId=ds_id, Verbose=True)
    assert got["Name"] == name and got["ComputeStatistics"] is True
    assert got["DataLocationS3"] == (data_dir / "customers.csv").as_uri()
    assert json.loads(got["DataRearrangement"]) == {"splitting": {
        "percentBegin": 0, "percentEnd": 80, "strategy": "random", "strategyParams": {"randomSeed": "s1"}}}
    schema = json.loads(got["DataSourceSchema"])
    assert schema["targetAttributeName"] == "y" and schema["rowId"] == "id"
    assert schema["dataFileContainsHeader"] is True
    assert schema["excludedAttributeNames"] == ["review"]
    assert [(a["attributeName"], a["attributeType"]) for a in schema["attributes"]] == [
        ("id", "CATEGORICAL"), ("age", "CATEGORICAL"), ("yearly_income", "NUMERIC"), ("job", "CATEGORICAL"),
        ("married", "BINARY"), ("review", "TEXT"), ("y", "BINARY")]
    settled = settle(ml.get_data_source, DataSourceId=ds_id)
    assert settled["Status"] == "COMPLETED", settled.get("Message")

    page = alice.get(f"/console/datasources/{ds_id}").text
    assert EVIL not in page and "Customers &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &#39;quoted&#39;" in page


def test_errors_are_shown_next_to_their_fields(console_server, alice, frame, data_dir, tmp_path):
    response, _ = read(alice, source="location", location=(data_dir / "absent.csv").as_uri())
    assert response.status_code == 400
    assert "no such file" in field_error(response.text, "location")
    response, _ = read(alice, source="location", location=tmp_path.as_uri() + "/x.csv")
    assert "outside the local paths" in field_error(response.text, "location")
    assert str(tmp_path) not in response.text.replace(tmp_path.as_uri(), "")
    response, _ = read(alice, source="location", location="http://example.com/x.csv")
    assert "s3:// or file://" in field_error(response.text, "location")

    _, form = read(alice, source="location", location=(data_dir / "customers.csv").as_uri())
    bad = {**form, "target": "5", "split": "split", "percent_begin": "60", "percent_end": "20",
           "datasource_id": "no spaces allowed", "name_3": "age"}
    response = wizard(alice, bad, "create")
    assert response.status_code == 400
    assert "BINARY, CATEGORICAL or NUMERIC" in field_error(response.text, "target")
    assert "greater than the beginning" in field_error(response.text, "percent_end")
    assert "letters, digits" in field_error(response.text, "datasource_id")
    assert "Another attribute" in field_error(response.text, "name_3")
    assert 'value="no spaces allowed"' in response.text  # the edits are still on the page
    # A type the data does not have, and a target left out.
    response = wizard(alice, {**form, "type_3": "NUMERIC", "target": "6", "exclude_6": "on"}, "create")
    assert "not numbers, for example" in field_error(response.text, "type_3")
    assert "cannot be excluded" in field_error(response.text, "target")
    # Nothing was created.
    ml = console_server.client()
    assert not [d for d in ml.describe_data_sources()["Results"] if d["DataSourceId"] == "no spaces allowed"]

    # An ID in use with other parameters is refused next to the ID.
    taken = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=taken, DataSpec={"DataLocationS3": (data_dir / "customers.csv").as_uri()})
    response = wizard(alice, {**form, "datasource_id": taken}, "create")
    assert "already exists" in field_error(response.text, "datasource_id")


def upload_csv(browser: ConsoleSession, body: bytes) -> dict:
    csrf = browser.csrf("/console/new/datasource")
    response = upload(browser, body, csrf)
    assert response.status_code == 200, response.text
    return response.json()


def test_upload_creates_a_datasource_whose_insights_match_pandas(console_server, alice, frame, data_dir):
    body = frame.to_csv(index=False).encode()
    uploaded = upload_csv(alice, body)
    path = Path(uploaded["uri"].removeprefix("file://"))
    # Stored in the account's folder under a name the server chose.
    assert path.parent == data_dir / "uploads" / "111111111111"
    assert re.fullmatch(r"\.upload-[A-Za-z0-9_-]{22}\.csv", path.name)
    assert path.read_bytes() == body and uploaded["size"] == len(body)

    response, form = read(alice, source="upload", upload_uri=uploaded["uri"], upload_name="customers.csv")
    assert response.status_code == 200 and form["name"] == "customers.csv"
    form["target"] = "6"
    ds_id = form["datasource_id"]
    assert wizard(alice, form, "create").status_code == 303
    ml = console_server.client()
    assert settle(ml.get_data_source, DataSourceId=ds_id)["Status"] == "COMPLETED"

    started = time.perf_counter()
    page = alice.get(f"/console/datasources/{ds_id}").text
    assert time.perf_counter() - started < 2  # generous: the server's own time is well under 100 ms
    figures = dict(re.findall(r'data-figure="(\w+)">([^<]*)<', page))
    assert figures == {"processed": f"{len(frame):,}", "records": f"{len(frame):,}", "rejected": "0"}

    charts = json.loads(re.search(r'<script type="application/json" id="insights-data">(.*?)</script>',
                                  page, re.S).group(1))
    articles = {html.unescape(name): body for name, body in re.findall(
        r'<article class="attribute" id="attribute-\d+">\s*<header>\s*<h4 class="attribute-name">([^<]*)</h4>'
        r'(.*?)</article>', page, re.S)}
    assert set(articles) == set(frame.columns)

    # Numeric: figures and every histogram level, exactly.
    income = pd.to_numeric(frame["income"].replace("", np.nan)).dropna().to_numpy()
    from treadle.console.data_insights import shown

    facts = dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", articles["income"]))
    assert facts["Values"] == f"{len(income):,}"
    assert facts["Missing"] == f"{len(frame) - len(income):,} ({100 * (len(frame) - len(income)) / len(frame):.1f} %)"
    assert facts["Min"] == shown(income.min()) and facts["Max"] == shown(income.max())
    assert facts["Mean"] == shown(float(income.mean()))
    index = list(frame.columns).index("income")
    histograms = charts[f"a{index}"]["histograms"]
    assert sorted(histograms, key=int) == ["20", "50", "100", "200", "500"]
    ordered = np.sort(income)
    for level, hist in histograms.items():
        edges = hist["start"] + hist["width"] * np.arange(len(hist["counts"]) + 1)
        assert len(hist["counts"]) <= int(level)
        assert np.diff(np.searchsorted(ordered, edges)).tolist() == hist["counts"]
    assert 'data-bins-for="a2"' in page and '<option value="500"' in page

    # Categorical: top values with counts, escaped.
    counts = frame["job"].value_counts()
    rows = re.findall(r'<td class="value">(.*?)</td><td class="number">([\d,]+)</td>', articles["job"])
    assert [(html.unescape(v), int(c.replace(",", ""))) for v, c in rows] == list(counts.items())
    assert EVIL not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert charts[f"a{list(frame.columns).index('job')}"]["labels"][:len(counts)] == list(counts.index)
    assert "\\u003cscript\\u003e" in page  # the chart data, escaped inside its JSON block

    # Binary and the target distribution.
    married = articles["married"]
    assert f"{(frame['married'] == 'yes').mean() * 100:.1f} %" in married
    target = frame["y"].value_counts()
    assert charts["target"]["counts"] == [int(target[int(v)]) for v in charts["target"]["labels"]]

    # Text: word counts and the most frequent word.
    words = [w for review in frame["review"] for w in review.split()]
    facts = dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", articles["review"]))
    assert facts["Words"] == f"{len(words):,}" and facts["Distinct words"] == f"{len(set(words))}"
    assert charts[f"a{list(frame.columns).index('review')}"]["labels"][0] == pd.Series(words).value_counts().index[0]

    # Correlations, ranked by mutual information.
    ranked = re.findall(r'<td class="number">(\d\.\d{4})</td>', page.split('id="correlations"')[1].split("</table>")[0])
    assert len(ranked) == 6 and ranked == sorted(ranked, reverse=True)


def test_uploads_are_refused_past_the_limit_and_leave_nothing(console_server, alice, data_dir):
    folder = data_dir / "uploads" / "111111111111"
    before = sorted(folder.iterdir()) if folder.exists() else []
    csrf = alice.csrf("/console/new/datasource")
    too_big = b"a,b\n" + b"1,2\n" * (UPLOAD_LIMIT // 4)
    response = upload(alice, too_big, csrf)
    # Refused by its Content-Length before the console sees it, in the API's error format.
    assert response.status_code == 413 and "limit of 400000 bytes" in response.json()["message"]

    def chunks():  # no Content-Length: the limit is found while streaming
        for _ in range(UPLOAD_LIMIT // 4096 + 2):
            yield b"x" * 4096
    response = upload(alice, chunks(), csrf)
    assert response.status_code == 413
    # The HTTP layer answers at once; the upload's handler removes its part file as it ends.
    wait_for(lambda: (sorted(folder.iterdir()) if folder.exists() else []) == before, timeout=10,
             message="the partial upload removed")

    # Without the CSRF token, or from another origin, nothing is stored.
    assert upload(alice, b"a,b\n1,2\n", None).status_code == 403
    assert upload(alice, b"a,b\n1,2\n", csrf, Origin="http://evil.example").status_code == 403
    assert (sorted(folder.iterdir()) if folder.exists() else []) == before


def test_an_upload_is_its_accounts_own(console_server, alice, data_dir):
    uploaded = upload_csv(alice, b"a,b\n1,x\n2,y\n")
    bob = ConsoleSession(console_server, console_server.other_keys)
    response, _ = read(bob, source="upload", upload_uri=uploaded["uri"])
    assert "upload it first" in field_error(response.text, "upload")
    # Nor by its exact URI as a location, in the console or through the API,
    # nor as somewhere to write.
    response, _ = read(bob, source="location", location=uploaded["uri"])
    assert "upload folder of another account" in field_error(response.text, "location")
    bob_ml = console_server.client(console_server.other_keys)
    with pytest.raises(ClientError) as excinfo:
        bob_ml.create_data_source_from_s3(DataSourceId=unique("ds"), DataSpec={"DataLocationS3": uploaded["uri"]})
    assert "upload folder of another account" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as excinfo:
        bob_ml.create_batch_prediction(BatchPredictionId=unique("bp"), MLModelId="m", BatchPredictionDataSourceId="d",
                                       OutputUri=uploaded["uri"].rsplit("/", 1)[0] + "/out/")
    assert "upload folder of another account" in excinfo.value.response["Error"]["Message"]
    # The folder of every upload is nobody's to name, and alice's own is hers.
    response, _ = read(bob, source="location", location=(data_dir / "uploads").as_uri())
    assert "upload folder of another account" in field_error(response.text, "location")
    response, _ = read(alice, source="location", location=uploaded["uri"])
    assert field_error(response.text, "location") is None
    # Nor does another account see alice's datasources.
    ds_id = unique("ds")
    console_server.client().create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": uploaded["uri"]})
    assert bob.get(f"/console/datasources/{ds_id}").status_code == 404


def test_uploads_are_off_without_an_allowed_directory(tmp_path_factory, s3):
    server = Server("", tmp_path_factory.mktemp("treadle-no-uploads"), None, env=s3.env)
    server.default_keys = server.create_keys("alice", "111111111111")
    server.start()
    try:
        browser = ConsoleSession(server, server.default_keys)
        page = browser.get("/console/new/datasource").text
        assert "Uploads are off on this server" in page and "--allow-local-path" in page
        response = upload(browser, b"a,b\n1,2\n", csrf_token(page))
        assert response.status_code == 403
    finally:
        server.stop()


def test_upload_dir_must_be_inside_an_allowed_directory(tmp_path):
    done = treadle("serve", "--data-dir", str(tmp_path / "data"), "--allow-local-path", str(tmp_path / "a"),
                   "--upload-dir", str(tmp_path / "elsewhere"))
    assert done.returncode == 2 and "--upload-dir must lie inside an --allow-local-path directory" in done.stderr


def test_wizard_reads_a_query_and_creates_an_rds_datasource(console_server, alice, data_dir, mariadb):  # noqa: F811
    done = treadle("databases", "add", "shop", "mysql://127.0.0.1:3306", *console_server.db_args())
    assert done.returncode == 0, done.stderr
    fields = dict(source="database", db_identifier="shop", db_name="test", db_user="treadle_reader",
                  db_query=f"SELECT id, name, amount FROM {mariadb} ORDER BY id;",
                  staging=(data_dir / "staging").as_uri() + "/")
    response, form = read(alice, **fields, db_password="wrong-password")
    assert "Access denied" in field_error(response.text, "db_query")
    response, form = read(alice, **fields, db_password="reader-pass-1")
    assert response.status_code == 200, re.findall(r'data-field="[^"]+">[^<]*', response.text)
    # The password is kept sealed, never written back in clear.
    assert "reader-pass-1" not in response.text and form["db_password_sealed"]
    assert "name 3</td>" in response.text
    assert [form[f"name_{i}"] for i in range(3)] == ["id", "name", "amount"]
    assert [form[f"type_{i}"] for i in range(3)] == ["NUMERIC", "CATEGORICAL", "NUMERIC"]
    form.update({"type_0": "CATEGORICAL", "target": "2"})
    assert wizard(alice, form, "create").status_code == 303
    ml = console_server.client()
    got = settle(ml.get_data_source, DataSourceId=form["datasource_id"])
    assert got["Status"] == "COMPLETED", got.get("Message")
    assert got["RDSMetadata"]["Database"] == {"InstanceIdentifier": "shop", "DatabaseName": "test"}
    schema = json.loads(ml.get_data_source(DataSourceId=form["datasource_id"], Verbose=True)["DataSourceSchema"])
    assert schema["attributes"][0] == {"attributeName": "id", "attributeType": "CATEGORICAL"}
    assert schema["targetAttributeName"] == "amount"


def test_in_chromium_the_wizard_uploads_and_the_insights_draw(console_server, frame, data_dir, tmp_path, browser):
    csv_file = tmp_path / "customers.csv"
    frame.head(500).to_csv(csv_file, index=False)
    keys = console_server.default_keys
    problems, dialogs = [], []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{console_server.url}/console/signin?next=/console/new/datasource")
        page.fill("input[name=access_key_id]", keys.access_key_id)
        page.fill("input[name=secret_access_key]", keys.secret_access_key)
        with page.expect_navigation():
            page.click("button:has-text('Sign in')")
        page.check("input[name=source][value=upload]")
        with page.expect_navigation():
            page.set_input_files("#upload-file", str(csv_file))
        assert page.input_value("input[name=name_6]") == "y"
        page.check("input[name=target][value='6']")
        ds_id = page.input_value("input[name=datasource_id]")
        with page.expect_navigation():
            page.click("#create-button")
        assert page.url.endswith(f"/console/datasources/{ds_id}")
        settle(console_server.client().get_data_source, DataSourceId=ds_id)
        page.reload()
        for chart in ("#insights .target", "#attribute-3", "#attribute-1"):  # drawn once in view
            page.locator(chart).scroll_into_view_if_needed()
            page.wait_for_selector(f"{chart} .chart canvas", state="attached", timeout=10000)
        page.select_option("[data-bins-for=a1]", "20")
        assert "bins of width" in page.text_content("[data-caption-for=a1]")
    finally:
        page.close()
    assert not problems and not dialogs  # no script error, no CSP violation, no injected script ran


def test_uploads_have_their_own_size_limit_and_time_out_only_when_they_stall(fresh_server, tmp_path):
    """The API's request limit and body timeout do not apply to the console's
    upload, which streams to disk: it may be larger than an API request, and
    may take longer than the body timeout while it keeps moving; a stalled
    upload is still closed."""
    import socket
    import time

    server = fresh_server("--allow-local-path", str(tmp_path), "--max-request-bytes", "2000",
                          "--body-timeout", "1")
    user = ConsoleSession(server, server.default_keys)
    csrf = user.csrf("/console/new/datasource")
    body = b"a,b\n" + b"1,2\n" * 2000  # 8 kB: four times the API's limit

    def slowly():
        for start in range(0, len(body), 2000):
            yield body[start:start + 2000]
            time.sleep(0.4)  # 1.6 s in all, past the 1 s body timeout
    response = user.http.post(server.url + "/console/new/datasource/upload", data=slowly(), timeout=30,
                              headers={"X-CSRF-Token": csrf, "Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json()["size"] == len(body)

    api = user.http.post(server.url + "/", data=b"{" + b" " * 4000 + b"}", timeout=30)
    assert api.status_code == 413

    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as stalled:
        cookie = "; ".join(f"{k}={v}" for k, v in user.http.cookies.items())
        stalled.sendall(f"POST /console/new/datasource/upload HTTP/1.1\r\nHost: {host}:{port}\r\n"
                        f"Content-Length: 8000\r\nCookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\n"
                        f"Origin: {server.url}\r\n\r\n".encode()
                        + body[:100])
        started = time.monotonic()
        answer = stalled.recv(4096)
        assert b" 408 " in answer.split(b"\r\n", 1)[0] and time.monotonic() - started < 5
