"""The console's list of objects: Describe's filters, sort and paging, over
every kind at once; and tags, rename and delete on an object's page."""
from __future__ import annotations

import html
import re
import uuid

import pytest

from support import ConsoleSession, unique

ROW = re.compile(r'<tr>\s*<td><a href="/console/(\w[\w-]*)/([^"]+)">([^<]*)</a></td>')


@pytest.fixture(scope="module")
def account(server):
    """A fresh account holding 55 datasources (5 of them deleted) and 6 models."""
    keys = server.create_keys(unique("lister")[:20], str(uuid.uuid4().int)[:12])
    ml = server.client(keys)
    names = []
    for i in range(55):
        name = f"{'alpha' if i % 2 else 'beta'} {i:02d}"
        ml.create_data_source_from_s3(DataSourceId=f"ds-{i:02d}", DataSourceName=name, ComputeStatistics=True,
                                      DataSpec={"DataLocationS3": "s3://b/nothing.csv"})
        names.append(name)
    for i in range(6):
        ml.create_ml_model(MLModelId=f"ml-{i}", MLModelName=f"model {i}", MLModelType="BINARY",
                           TrainingDataSourceId=f"ds-{i:02d}")
    for i in range(50, 55):
        ml.delete_data_source(DataSourceId=f"ds-{i:02d}")
    return ConsoleSession(server, keys), ml


def rows(page: str) -> list[tuple[str, str, str]]:
    return [(slug, entity_id, html.unescape(name)) for slug, entity_id, name in ROW.findall(page)]


def next_link(page: str) -> str | None:
    found = re.search(r'rel="next" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def test_every_kind_in_one_list_paged_as_describe_pages(account):
    user, _ = account
    first = user.page("/console/objects")
    listed = rows(first)
    assert len(listed) == 50
    second = user.page("/console/objects" + next_link(first))
    listed += rows(second)
    assert next_link(second) is None
    ids = [entity_id for _, entity_id, _ in listed]
    assert len(ids) == len(set(ids)) == 56  # 50 live datasources and 6 models, none twice
    assert {slug for slug, _, _ in listed} == {"datasources", "models"}
    assert ids[0] == "ml-5"  # newest first by default


def test_filters_and_sort(account):
    user, _ = account
    models = rows(user.page("/console/objects?type=MLModel"))
    assert [entity_id for _, entity_id, _ in models] == [f"ml-{i}" for i in range(5, -1, -1)]
    deleted = rows(user.page("/console/objects?status=DELETED"))
    assert sorted(entity_id for _, entity_id, _ in deleted) == [f"ds-{i}" for i in range(50, 55)]
    by_name = rows(user.page("/console/objects?type=DataSource&name=alpha&sort=Name&order=asc"))
    names = [name for _, _, name in by_name]
    assert names == sorted(names) and names and all(name.startswith("alpha") for name in names)
    assert len(names) == 25  # the odd ones below 50


def test_a_page_link_belongs_to_its_query(account):
    user, _ = account
    link = next_link(user.page("/console/objects"))
    token = re.search(r"page=([^&]+)", link).group(1)
    page = user.page(f"/console/objects?type=MLModel&page={token}")
    assert "That page link has expired" in page and len(rows(page)) == 6


def test_tags_can_be_added_and_removed_from_an_objects_page(account):
    user, ml = account
    path = "/console/datasources/ds-03"
    added = user.submit(path, f"{path}/tags", {"key": "team", "value": "growth"})
    assert added.status_code == 303
    assert ml.describe_tags(ResourceId="ds-03", ResourceType="DataSource")["Tags"] == [
        {"Key": "team", "Value": "growth"}]
    assert "growth" in user.page(path)
    refused = user.submit(path, f"{path}/tags", {"key": "aws:reserved", "value": "x"})
    assert refused.status_code == 400 and "aws:" in html.unescape(refused.text)
    removed = user.submit(path, f"{path}/tags/remove", {"key": "team"})
    assert removed.status_code == 303
    assert ml.describe_tags(ResourceId="ds-03", ResourceType="DataSource")["Tags"] == []


def test_delete_from_an_objects_page(account):
    user, ml = account
    path = "/console/datasources/ds-04"
    assert user.submit(path, f"{path}/delete", {}).status_code == 303
    assert ml.get_data_source(DataSourceId="ds-04")["Status"] == "DELETED"
    assert "ds-04" not in [entity_id for _, entity_id, _ in rows(user.page("/console/objects?type=DataSource"))]
