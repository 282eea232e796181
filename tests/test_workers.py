"""`treadle serve --workers N`: several HTTP worker processes on one port,
agreeing on endpoint changes, per-endpoint rate limits and metrics."""
import json
import math
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from support import signed_post, treadle, wait_for
from test_realtime import RECORD, ready, train


def _log_lines(server) -> list[dict]:
    lines = []
    for line in server.log_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass
    return lines


def _worker_pids(server) -> set[int]:
    """Every HTTP worker's pid: the first process and the spawned ones."""
    pids = {server.process.pid}
    pids.update(line["worker_pid"] for line in _log_lines(server) if line.get("message") == "worker started")
    return pids


def _predict_many(server, model_id: str, count: int, threads: int = 8, timed: bool = False) -> list[tuple]:
    """Predict calls, each on a new connection, several at a time, so that
    every worker gets some: (status, answer), or with `timed` (status,
    answer, monotonic time sent, monotonic time answered)."""
    body = json.dumps({"MLModelId": model_id, "Record": RECORD, "PredictEndpoint": server.url}).encode()

    def call(_):
        sent = time.monotonic()
        status, answer = signed_post(server.url + "/", server.default_keys, "Predict", body)
        return (status, answer, sent, time.monotonic()) if timed else (status, answer)
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(call, range(count)))


def _answering_pids(server, since: int) -> set[int]:
    return {line["pid"] for line in _log_lines(server)[since:]
            if line.get("message") == "request" and line.get("operation") == "Predict"}


@pytest.fixture
def two_workers(fresh_server, tmp_path_factory):
    """A two-worker server with a READY endpoint on a new model."""
    def make(kind: str, *extra: str):
        server = fresh_server("--workers", "2", "--allow-local-path", str(tmp_path_factory.getbasetemp()), *extra)
        ml = server.client()
        model_id = train(ml, server, tmp_path_factory, kind)
        ml.create_realtime_endpoint(MLModelId=model_id)
        ready(ml, model_id)
        return server, ml, model_id
    return make


def test_changes_through_one_worker_reach_every_worker(two_workers):
    server, ml, model_id = two_workers("BINARY")
    mark = len(_log_lines(server))
    answers = _predict_many(server, model_id, 40)
    assert all(status == 200 for status, _ in answers), answers[:3]
    workers = _worker_pids(server)
    assert len(workers) == 2
    assert _answering_pids(server, mark) == workers  # both workers answered, from memory
    score = answers[0][1]["Prediction"]["predictedScores"][answers[0][1]["Prediction"]["predictedLabel"]]
    label = answers[0][1]["Prediction"]["predictedLabel"]
    # A threshold set through whichever worker took the call applies to the
    # very next Predict, whichever worker answers it.
    flipped = "0" if label == "1" else "1"
    threshold = min(score + 0.01, 1.0) if label == "1" else max(score - 0.01, 0.0)
    ml.update_ml_model(MLModelId=model_id, ScoreThreshold=threshold)
    mark = len(_log_lines(server))
    answers = _predict_many(server, model_id, 40)
    assert {answer["Prediction"]["predictedLabel"] for _, answer in answers} == {flipped}
    assert _answering_pids(server, mark) == workers
    # A deleted endpoint is gone for every worker at once.
    ml.delete_realtime_endpoint(MLModelId=model_id)
    answers = _predict_many(server, model_id, 40)
    assert {(status, answer["__type"].rsplit("#", 1)[-1]) for status, answer in answers} == {
        (400, "PredictorNotMountedException")}


def test_rate_limit_is_per_endpoint_not_per_worker(two_workers):
    server, ml, model_id = two_workers("BINARY", "--peak-requests-per-second", "5")
    _predict_many(server, model_id, 2, threads=1)  # every worker has the model loaded
    time.sleep(1.1)
    mark = len(_log_lines(server))
    answers = _predict_many(server, model_id, 80, timed=True)
    ok = [(sent, answered) for status, _, sent, answered in answers if status == 200]
    limited = [answer for status, answer, _, _ in answers
               if status == 400 and answer["__type"].rsplit("#", 1)[-1] == "LimitExceededException"]
    assert len(ok) + len(limited) == len(answers) and limited
    # The server counts per whole second of the monotonic clock, which this
    # process shares. A call sent and answered within one such second was
    # counted in it: across both workers, never more than 5 of those.
    per_second = {}
    for sent, answered in ok:
        if math.floor(sent) == math.floor(answered):
            per_second[math.floor(sent)] = per_second.get(math.floor(sent), 0) + 1
    assert per_second and max(per_second.values()) <= 5, per_second
    assert len(ok) >= 5
    assert _answering_pids(server, mark) == _worker_pids(server)


def test_metrics_add_up_over_workers(two_workers):
    server, ml, model_id = two_workers("REGRESSION")
    answers = _predict_many(server, model_id, 30)
    assert all(status == 200 for status, _ in answers)

    def scrape():
        text = requests.get(server.url + "/metrics", timeout=10).text
        return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
                if line and not line.startswith("#")}
    scrapes = [scrape() for _ in range(6)]  # new connections: both workers answer some
    key = 'treadle_requests_total{operation="Predict",status="200"}'
    assert {s[key] for s in scrapes} == {30.0}
    assert {s['treadle_request_seconds_count{operation="Predict"}'] for s in scrapes} == {30.0}
    assert all(s["treadle_endpoints_loaded"] == 1.0 for s in scrapes)
    assert any(k.startswith('treadle_jobs{kind="MLModel"') for k in scrapes[0])


def test_a_worker_that_dies_is_replaced(two_workers):
    server, ml, model_id = two_workers("BINARY")
    (spawned,) = _worker_pids(server) - {server.process.pid}
    os.kill(spawned, signal.SIGKILL)
    replacement = wait_for(lambda: (_worker_pids(server) - {server.process.pid, spawned}) or None,
                           timeout=60, message="a replacement worker")
    (replacement,) = replacement
    wait_for(lambda: not os.path.exists(f"/proc/{spawned}"), timeout=10, message="the killed worker reaped")
    wait_for(lambda: any(line.get("pid") == replacement and line.get("message") == "Application startup complete."
                         for line in _log_lines(server)), timeout=60, message="the replacement serving")
    mark = len(_log_lines(server))
    answers = _predict_many(server, model_id, 40)
    assert all(status == 200 for status, _ in answers)
    assert replacement in _answering_pids(server, mark)
    # A clean stop takes every worker with it.
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    wait_for(lambda: not os.path.exists(f"/proc/{replacement}"), timeout=20, message="the worker stopped")


def test_connections_go_to_the_worker_with_fewest_open(fresh_server):
    server = fresh_server("--workers", "2")
    host, port = server.url.rsplit("/", 1)[-1].split(":")
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"  # unsigned: a logged 403

    def owner(sock) -> int:
        """The pid of the worker serving this connection, through the
        request id of an answer on it and that request's log line."""
        sock.sendall(request)
        answer = b""
        while not answer.endswith(b'Authentication Token"}'):
            answer += sock.recv(65536)
        request_id = answer.split(b"x-amzn-requestid: ", 1)[1].split(b"\r\n", 1)[0].decode()
        return wait_for(lambda: next((line["pid"] for line in _log_lines(server)
                                      if line.get("request_id") == request_id), None),
                        timeout=10, message="the request's log line")

    def connect(count):
        return [socket.create_connection((host, int(port)), timeout=10) for _ in range(count)]

    first = connect(10)
    owners = [owner(sock) for sock in first]
    assert sorted(owners.count(pid) for pid in set(owners)) == [5, 5]
    # Closing one worker's connections leaves it the one with fewest open:
    # the next connections all go to it.
    emptied = owners[0]
    for sock, pid in zip(first, owners):
        if pid == emptied:
            sock.close()
    time.sleep(0.5)  # the worker sees them close
    second = connect(4)
    assert [owner(sock) for sock in second] == [emptied] * 4
    for sock in first + second:
        sock.close()


def test_workers_must_be_at_least_one(tmp_path):
    done = treadle("serve", "--workers", "0", "--data-dir", str(tmp_path))
    assert done.returncode == 2 and "--workers must be at least 1" in done.stderr
