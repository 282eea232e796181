"""Health and Prometheus metrics routes."""
import requests

from support import settle, unique


def test_health(server):
    response = requests.get(server.url + "/health", timeout=10)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_metrics_count_requests_and_jobs(ml, server):
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://b/k.csv"})
    settle(ml.get_data_source, DataSourceId=ds_id)
    for _ in range(3):
        ml.describe_data_sources(Limit=1)
    text = requests.get(server.url + "/metrics", timeout=10).text
    lines = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
             if line and not line.startswith("#")}
    assert lines['treadle_requests_total{operation="DescribeDataSources",status="200"}'] >= 3
    assert lines['treadle_request_seconds_count{operation="DescribeDataSources"}'] >= 3
    assert any(key.startswith('treadle_jobs{kind="DataSource"') for key in lines)
    assert "treadle_endpoints_loaded" in lines
    assert lines['treadle_jobs_finished_total{kind="DataSource",runner="local",status="FAILED"}'] >= 1
