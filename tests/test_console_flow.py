"""The console's whole flow in Chromium, as the README's first run walks it,
on SQLite and on PostgreSQL: sign in, create a datasource through the wizard
(fixing one inferred type), read its insights, create a model with the
default flow, open its evaluation, move the slider, save the threshold,
try a real-time prediction, run a batch prediction and download it.

Screenshots of every page at 1280 and 390 pixels wide are saved under
$TREADLE_SCREENSHOTS (default /tmp/treadle-screenshots) for a reviewer.
"""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from support import SCREENSHOTS, settle, wait_for

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "banking.csv"
RECORD = {"age": "62", "job": "retired", "marital": "married", "education": "tertiary", "balance": "2300",
          "housing": "no", "loan": "no", "month": "oct", "duration": "540", "campaign": "1", "previous": "2",
          "poutcome": "success"}
WIDTHS = (1280, 390)


class Flow:
    def __init__(self, browser, server, folder: Path):
        self.server = server
        self.folder = folder
        self.context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900}, accept_downloads=True)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))
        self.page.on("console", lambda message: self.problems.append(message.text)
                     if message.type == "error" else None)
        self.page.on("dialog", lambda dialog: dialog.accept())
        self.shots: dict[str, str] = {}

    def shot(self, name: str) -> None:
        """Screenshots of this page at each width; the page is revisited at
        the others at the end (`narrow_shots`)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{self.server.backend}-{name}-{WIDTHS[0]}.png"), full_page=True)
        self.shots[name] = self.page.url

    def narrow_shots(self) -> None:
        for width in WIDTHS[1:]:
            self.page.set_viewport_size({"width": width, "height": 900})
            for name, url in self.shots.items():
                self.page.goto(url)
                self.page.wait_for_load_state("networkidle")
                self.page.screenshot(path=str(SCREENSHOTS / f"{self.server.backend}-{name}-{width}.png"),
                                     full_page=True)

    def settled(self, selector: str, status: str = "COMPLETED", timeout: float = 300) -> None:
        """Wait until the page shows `status` in `selector` (pages poll their
        object and reload themselves when it changes)."""
        self.page.wait_for_selector(f"{selector}:has-text('{status}')", timeout=timeout * 1000)


@pytest.fixture
def flow(browser, server, tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / f"first-run-{server.backend}"
    folder.mkdir(exist_ok=True)
    shutil.copy(EXAMPLE, folder / "banking.csv")
    running = Flow(browser, server, folder)
    yield running
    running.context.close()


def test_from_a_csv_to_a_prediction_in_the_console(flow, server):
    page, ml = flow.page, server.client()

    # Sign in.
    page.goto(server.url + "/console/")
    flow.shot("signin")
    page.fill("input[name=access_key_id]", server.default_keys.access_key_id)
    page.fill("input[name=secret_access_key]", server.default_keys.secret_access_key)
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/console/objects")
    flow.shot("objects")

    # The datasource wizard: read the file, fix a type, choose the target.
    page.click("nav >> text=New datasource")
    page.check("input[name=source][value=location]")
    page.fill("input[name=location]", (flow.folder / "banking.csv").as_uri())
    flow.shot("datasource-new")
    with page.expect_navigation():
        page.click("#read-button")
    names = [page.input_value(f"input[name=name_{i}]") for i in range(13)]
    assert names[0] == "age" and names[12] == "y"
    previous = names.index("previous")
    assert page.input_value(f"select[name=type_{previous}]") == "NUMERIC"
    page.select_option(f"select[name=type_{previous}]", "CATEGORICAL")  # a count better read as a category
    page.check("input[name=target][value='12']")
    page.fill("input[name=name]", "Banking")
    ds_id = page.input_value("input[name=datasource_id]")
    flow.shot("datasource-schema")
    with page.expect_navigation():
        page.click("#create-button")
    assert page.url.endswith(f"/console/datasources/{ds_id}")
    flow.settled(".status-line .status")
    schema = json.loads(ml.get_data_source(DataSourceId=ds_id, Verbose=True)["DataSourceSchema"])
    assert schema["targetAttributeName"] == "y"
    assert {a["attributeName"]: a["attributeType"] for a in schema["attributes"]}["previous"] == "CATEGORICAL"

    # Its insights: the target's distribution, as counted here.
    page.wait_for_selector("#insights")
    lines = EXAMPLE.read_text().splitlines()[1:]
    yes = sum(line.endswith(",yes") for line in lines)
    insights = page.inner_text("#insights")
    assert f"{yes:,}" in insights and f"{len(lines) - yes:,}" in insights
    page.locator("#insights .target").scroll_into_view_if_needed()
    page.wait_for_selector("#insights .target .chart canvas", state="attached")
    flow.shot("datasource-insights")

    # A model with the default flow: 70/30 split, suggested recipe, evaluation.
    page.click("nav >> text=New model")
    page.select_option("select[name=datasource]", ds_id)
    wait_for(lambda: page.inner_text("#target-name") == "y", timeout=10, message="the datasource's target shown")
    page.check("input[name=model_type][value=BINARY]")
    page.check("input[name=flow][value=default]")
    model_id = page.input_value("input[name=model_id]")
    flow.shot("model-new")
    with page.expect_navigation():
        page.click("button:has-text('Create ML model')")
    assert page.url.endswith(f"/console/models/{model_id}")
    flow.settled(".status-line .status", timeout=600)
    model = ml.get_ml_model(MLModelId=model_id)
    assert model["TrainingParameters"]["sgd.shuffleType"] == "auto"
    evaluations = ml.describe_evaluations(FilterVariable="MLModelId", EQ=model_id)["Results"]
    assert len(evaluations) == 1
    evaluation_id = evaluations[0]["EvaluationId"]
    settle(ml.get_evaluation, EvaluationId=evaluation_id)
    auc = float(ml.get_evaluation(EvaluationId=evaluation_id)["PerformanceMetrics"]["Properties"]["BinaryAUC"])

    # The evaluation: move the slider, then save the cut-off as the threshold.
    page.click(f"#evaluations a[href$='/evaluations/{evaluation_id}']")
    page.wait_for_selector("#histogram-chart canvas")
    assert f"{auc:.4f}" in page.inner_text("body")
    before = page.inner_text("[data-figure=recall]")
    slider = page.locator("#cutoff-slider")
    slider.focus()
    for _ in range(200):  # the keyboard moves it as a person would, 0.001 a step
        page.keyboard.press("ArrowLeft")
    assert page.input_value("#cutoff") == "0.3"
    assert page.inner_text("[data-figure=recall]") != before
    flow.shot("evaluation")
    page.click("button:has-text(\"Save as the model's score threshold\")")
    wait_for(lambda: ml.get_ml_model(MLModelId=model_id).get("ScoreThreshold") == pytest.approx(0.3),
             timeout=30, message="the saved ScoreThreshold")

    # The model page: an endpoint, then a real-time prediction.
    page.goto(f"{server.url}/console/models/{model_id}")
    with page.expect_navigation():
        page.click("button:has-text('Create a real-time endpoint')")
    flow.settled("#endpoint-status", "READY", timeout=120)
    for name, value in RECORD.items():
        field = page.locator(f"[name='record.{name}']")
        if field.evaluate("element => element.tagName") == "SELECT":
            field.select_option("1" if value == "yes" else "0")
        else:
            field.fill(value)
    page.click("#predict-form button:has-text('Predict')")
    page.wait_for_selector("#prediction:not([hidden])")
    endpoint = ml.get_ml_model(MLModelId=model_id)["EndpointInfo"]["EndpointUrl"]
    record = {**RECORD, "housing": "0", "loan": "0"}
    expected = ml.predict(MLModelId=model_id, Record=record, PredictEndpoint=endpoint)["Prediction"]
    shown = wait_for(lambda: page.inner_text("#prediction").strip(), timeout=10, message="the prediction shown")
    assert expected["predictedLabel"] in shown and f"{expected['predictedScores'][expected['predictedLabel']]}"[:8] \
        in shown
    flow.shot("model")

    # A batch prediction over the held-out 30%, then its download.
    test_ds = ml.get_evaluation(EvaluationId=evaluation_id)["EvaluationDataSourceId"]
    page.click("nav >> text=New batch prediction")
    page.select_option("select[name=model]", model_id)
    page.select_option("select[name=datasource]", test_ds)
    page.fill("input[name=output]", (flow.folder / "out").as_uri() + "/")
    bp_id = page.input_value("input[name=prediction_id]")
    flow.shot("batch-prediction-new")
    with page.expect_navigation():
        page.click("button:has-text('Create batch prediction')")
    flow.settled(".status-line .status")
    page.wait_for_selector("#results a:has-text('Download')")
    flow.shot("batch-prediction")
    with page.expect_download() as download:
        page.click("#results a:has-text('Download')")
    rows = gzip.decompress(Path(download.value.path()).read_bytes()).decode().splitlines()
    assert rows[0] == "trueLabel,bestAnswer,score"
    total = ml.get_batch_prediction(BatchPredictionId=bp_id)["TotalRecordCount"]
    assert len(rows) - 1 == total > 1000
    assert {row.split(",")[1] for row in rows[1:]} == {"0", "1"}

    page.goto(server.url + "/console/objects")
    flow.shot("objects-after")
    flow.narrow_shots()
    assert flow.problems == []
