"""The console's security: sessions, CSRF, headers, escaping and accounts."""
from __future__ import annotations

import re
import time

import pytest
import requests

from support import ConsoleSession, Keys, treadle, unique

HOSTILE = '<script>alert("x")</script> \' " & <img src=x onerror=alert(1)>'


def _cookie_attributes(response) -> str:
    return next(value for name, value in response.raw.headers.items() if name.lower() == "set-cookie")


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session(server):
    http = requests.Session()
    http.headers["Origin"] = server.url
    keys = server.default_keys
    response = http.post(server.url + "/console/signin", allow_redirects=False, timeout=30, data={
        "access_key_id": keys.access_key_id, "secret_access_key": keys.secret_access_key})
    assert response.status_code == 303
    cookie = _cookie_attributes(response).lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "secure" not in cookie  # plain http here; https behind --public-url https://...
    page = http.get(server.url + "/console/objects", timeout=30)
    assert page.status_code == 200 and keys.user in page.text
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    stolen = dict(http.cookies)
    http.post(server.url + "/console/signout", data={"csrf": token}, timeout=30)
    replay = requests.get(server.url + "/console/objects", cookies=stolen, allow_redirects=False, timeout=30)
    assert replay.status_code == 303 and "/console/signin" in replay.headers["location"]


def test_a_wrong_secret_is_refused_and_repeated_failures_are_throttled(server):
    keys = server.create_keys(unique("mallory")[:20])
    http = requests.Session()
    http.headers["Origin"] = server.url
    for _ in range(5):
        response = http.post(server.url + "/console/signin", timeout=30, data={
            "access_key_id": keys.access_key_id, "secret_access_key": "x" * 40})
        assert response.status_code == 401 and "not right" in response.text
    for padded in (keys.access_key_id, f" {keys.access_key_id} "):  # spaces make no fresh count
        response = http.post(server.url + "/console/signin", timeout=30, data={
            "access_key_id": padded, "secret_access_key": keys.secret_access_key})
        assert response.status_code == 401 and "Too many failed sign-ins" in response.text


def test_every_page_has_a_strict_content_security_policy_and_no_inline_script_or_style(server):
    user = ConsoleSession(server, server.default_keys)
    ds_id = unique("ds")
    server.client().create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://b/k.csv"})
    for path in ("/console/signin", "/console/objects", f"/console/datasources/{ds_id}"):
        response = user.get(path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert response.headers["x-frame-options"] == "DENY"
        for tag in re.findall(r"<script\b[^>]*>", response.text):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r"\sstyle=", response.text), path
        assert not re.search(r"\son[a-z]+=", response.text), path


def test_a_form_too_large_or_not_utf8_is_refused_plainly(server):
    user = ConsoleSession(server, server.default_keys)
    ds_id = unique("ds")
    server.client().create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://b/k.csv"})
    token = user.csrf(f"/console/datasources/{ds_id}")
    path = f"{server.url}/console/datasources/{ds_id}/rename"
    big = user.http.post(path, data={"csrf": token, "name": "x" * (2 << 20)}, timeout=60)
    assert big.status_code == 400 and "larger than 1 MB" in big.text
    latin = user.http.post(path, data=f"csrf={token}&name=caf\xe9".encode("latin-1"), timeout=30,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert latin.status_code == 400 and "not UTF-8" in latin.text


def test_names_and_values_are_shown_as_text(server):
    ds_id = unique("ds")
    server.client().create_data_source_from_s3(DataSourceId=ds_id, DataSourceName=HOSTILE,
                                               DataSpec={"DataLocationS3": "s3://b/k.csv"})
    user = ConsoleSession(server, server.default_keys)
    for path in ("/console/objects", f"/console/datasources/{ds_id}"):
        html = user.get(path).text
        assert '<script>alert("x")' not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(" in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_change_without_the_csrf_token_or_from_elsewhere_is_refused(server):
    ml = server.client()
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSourceName="before",
                                  DataSpec={"DataLocationS3": "s3://b/k.csv"})
    user = ConsoleSession(server, server.default_keys)
    path = f"/console/datasources/{ds_id}/rename"
    refused = user.http.post(server.url + path, data={"name": "no-token"}, timeout=30)
    assert refused.status_code == 403 and "CSRF" in refused.text
    wrong = user.http.post(server.url + path, data={"name": "wrong-token", "csrf": "x" * 43}, timeout=30)
    assert wrong.status_code == 403
    token = user.csrf(f"/console/datasources/{ds_id}")
    elsewhere = user.http.post(server.url + path, data={"name": "cross-site", "csrf": token}, timeout=30,
                               headers={"Origin": "http://evil.example"})
    assert elsewhere.status_code == 403
    assert ml.get_data_source(DataSourceId=ds_id)["Name"] == "before"
    accepted = user.submit(f"/console/datasources/{ds_id}", path, {"name": "after"})
    assert accepted.status_code == 303 and ml.get_data_source(DataSourceId=ds_id)["Name"] == "after"


def test_objects_named_like_pages_open_as_objects(server):
    """IDs are free text to the API: "new" and "upload" are objects' IDs,
    not the console's creation pages."""
    ml = server.client()
    for ds_id in ("new", "upload"):
        ml.create_data_source_from_s3(DataSourceId=ds_id, DataSourceName=f"called {ds_id}",
                                      DataSpec={"DataLocationS3": "s3://b/k.csv"})
    user = ConsoleSession(server, server.default_keys)
    for ds_id in ("new", "upload"):
        page = user.get(f"/console/datasources/{ds_id}")
        assert page.status_code == 200 and f"called {ds_id}" in page.text
    assert "Create" in user.get("/console/new/datasource").text


def test_one_account_cannot_open_or_change_another_accounts_object_by_url(server):
    ds_id = unique("ds")
    server.client().create_data_source_from_s3(DataSourceId=ds_id, DataSourceName="alice-private",
                                               DataSpec={"DataLocationS3": "s3://b/private.csv"})
    bob = ConsoleSession(server, server.other_keys)
    page = bob.get(f"/console/datasources/{ds_id}")
    assert page.status_code == 404 and "alice-private" not in page.text and "private.csv" not in page.text
    assert ds_id not in bob.get("/console/objects").text
    token = bob.csrf()
    response = bob.http.post(f"{server.url}/console/datasources/{ds_id}/delete", data={"csrf": token}, timeout=30)
    assert response.status_code == 404
    assert server.client().get_data_source(DataSourceId=ds_id)["Status"] != "DELETED"


def test_a_revoked_key_ends_its_console_session(server):
    keys = server.create_keys(unique("erin")[:20])
    user = ConsoleSession(server, keys)
    assert user.get("/console/objects").status_code == 200
    assert treadle("credentials", "revoke", keys.access_key_id, *server.db_args()).returncode == 0
    time.sleep(5.5)  # looked-up keys are cached for up to five seconds
    response = user.get("/console/objects", allow_redirects=False)
    assert response.status_code == 303 and "/console/signin" in response.headers["location"]


def test_auth_none_opens_the_console_for_the_default_account(fresh_server):
    server = fresh_server("--auth", "none")
    anyone = server.client(Keys("AKIAANYONE", "whatever", "", ""))
    ds_id = unique("ds")
    anyone.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://b/k.csv"})
    user = ConsoleSession(server)
    page = user.get("/console/objects")
    assert page.url.endswith("/console/objects") and ds_id in page.text and "000000000000" in page.text
    assert "Sign out" not in page.text


def test_without_authentication_only_loopback_hosts_are_answered(fresh_server):
    """DNS rebinding: a page at evil.example, its name pointed at 127.0.0.1,
    sends Host: evil.example. With --auth none nothing else stops it, so
    such a request is refused, to the console and to the API alike."""
    server = fresh_server("--auth", "none")
    port = server.url.rsplit(":", 1)[1]
    for host, status in ((f"evil.example:{port}", 403), (f"127.0.0.1:{port}", 200), (f"localhost:{port}", 200)):
        page = requests.get(server.url + "/console/objects", headers={"Host": host}, timeout=30)
        assert page.status_code == status, (host, page.status_code)
        api = requests.post(server.url + "/", data=b"{}", timeout=30, headers={
            "Host": host, "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AmazonML_20141212.DescribeDataSources"})
        assert api.status_code == status, (host, api.text)


@pytest.mark.parametrize("width", [1280, 390])
def test_hostile_names_do_not_run_in_the_browser(server, browser, width):
    from support import SCREENSHOTS

    ds_id = unique("ds")
    server.client().create_data_source_from_s3(DataSourceId=ds_id, DataSourceName=HOSTILE,
                                               DataSpec={"DataLocationS3": "s3://b/k.csv"})
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    dialogs, violations = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(server.url + "/console/signin")
    page.fill("input[name=access_key_id]", server.default_keys.access_key_id)
    page.fill("input[name=secret_access_key]", server.default_keys.secret_access_key)
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/console/objects")
    page.goto(f"{server.url}/console/datasources/{ds_id}")
    assert page.locator("h1").inner_text() == HOSTILE
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"datasource-hostile-name-{width}.png"), full_page=True)
    assert dialogs == [] and violations == []
    context.close()
