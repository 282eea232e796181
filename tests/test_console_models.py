"""The console's models, evaluations and batch predictions, driven over
HTTP as a browser would (sign-in form, cookie, CSRF token scraped from the
page) and checked with boto3 and against figures computed here from the
model artifacts."""
import gzip
import html
import json
import re
from pathlib import Path

import numpy as np
import pyarrow.csv as pa_csv
import pytest
from botocore.exceptions import ClientError
from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score

from learning_data import schema, write_dataset
from support import ConsoleSession, csrf_token, settle, unique, wait_for
from test_learning import artifact

CONSOLE_PARAMETERS = {"sgd.maxMLModelSizeInBytes": "104857600", "sgd.shuffleType": "auto",
                      "sgd.l2RegularizationAmount": "1e-06", "sgd.maxPasses": "10",
                      "sgd.l1RegularizationAmount": "0.0", "algorithm": "sgd"}
COLUMNS = ["id", "x1", "x2", "colour", "text", "y"]
RECIPE = json.dumps({"outputs": ["ALL_CATEGORICAL", "ALL_NUMERIC", "lowercase(ALL_TEXT)"]})
HOSTILE = "<script>alert(\"x\")</script> 'quoted' & \"double\""


def figure(page: str, name: str) -> float:
    return float(re.search(rf'data-figure="{name}" data-value="([^"]+)"', page).group(1))


def data_block(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="evaluation-data">(.*?)</script>', page,
                                re.S).group(1))


# -- data and models ---------------------------------------------------------------
@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / unique("console-models")
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def console(server):
    return ConsoleSession(server, server.default_keys)


def datasource(ml, path: Path, kind: str, name: str | None = None) -> str:
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSourceName=name or ds_id, ComputeStatistics=True,
                                  DataSpec={"DataLocationS3": path.as_uri(), "DataSchema": schema(kind)})
    return ds_id


def write_many_classes(path: Path, n: int, seed: int) -> None:
    """A MULTICLASS dataset with twelve classes of unequal frequency, so the
    confusion matrix shows nine of them and "others"."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as handle:
        handle.write(",".join(COLUMNS) + "\n")
        for i in range(n):
            x1, x2 = rng.normal(), rng.normal()
            k = int(np.clip(np.floor((x1 + 2.2) * 2.6 + rng.normal() * 0.8), 0, 11))
            handle.write(f"r{i},{x1:.5f},{x2:.5f},red,good,class{k:02d}\n")


def exact_scores(model, path: Path):
    """What the evaluation job scores: the model's own pipeline over the
    file's records (as strings)."""
    table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
        column_types={n: "string" for n in COLUMNS}, strings_can_be_null=False))
    return model.score_batch(model.fitted_pipeline.transform(table)), table.column("y").to_pylist()


def evaluation_of(ml, model_id: str, ds_id: str) -> str:
    ev_id = unique("ev")
    ml.create_evaluation(EvaluationId=ev_id, MLModelId=model_id, EvaluationDataSourceId=ds_id)
    got = settle(ml.get_evaluation, EvaluationId=ev_id, timeout=300)
    assert got["Status"] == "COMPLETED", got.get("Message")
    return ev_id


@pytest.fixture(scope="module")
def binary(server, console, folder):
    """A BINARY model made by the console's default flow, and an evaluation
    of it on a file of its own (fewer records than the threshold table
    keeps, so every count on the page is exact)."""
    ml = server.client()
    train, test = folder / "binary-train.csv", folder / "binary-test.csv"
    write_dataset(train, 2000, "BINARY", seed=11)
    write_dataset(test, 600, "BINARY", seed=12)
    source = datasource(ml, train, "BINARY", name="binary " + HOSTILE)
    ml.add_tags(ResourceId=source, ResourceType="DataSource", Tags=[{"Key": "team", "Value": "console"}])
    model_id = unique("ml")
    answer = console.submit(f"/console/new/model?datasource={source}", "/console/new/model", {
        "datasource": source, "model_type": "BINARY", "name": HOSTILE, "model_id": model_id, "flow": "default"})
    assert answer.status_code == 303 and answer.headers["location"] == f"/console/models/{model_id}"
    model = settle(ml.get_ml_model, MLModelId=model_id, timeout=300)
    assert model["Status"] == "COMPLETED", model.get("Message")
    return {"source": source, "model_id": model_id, "train": train, "test": test,
            "evaluation": evaluation_of(ml, model_id, datasource(ml, test, "BINARY"))}


# -- creating a model ------------------------------------------------------------------
def test_default_flow_splits_trains_with_console_parameters_and_evaluates(ml, console, binary):
    model = ml.get_ml_model(MLModelId=binary["model_id"], Verbose=True)
    assert model["TrainingParameters"] == CONSOLE_PARAMETERS
    assert model["Name"] == HOSTILE and model["MLModelType"] == "BINARY"
    recipe = json.loads(model["Recipe"])  # the suggested recipe
    assert recipe["outputs"][:2] == ["ALL_BINARY", "ALL_CATEGORICAL"]
    original = ml.get_data_source(DataSourceId=binary["source"], Verbose=True)
    training = ml.get_data_source(DataSourceId=model["TrainingDataSourceId"], Verbose=True)
    evaluations = ml.describe_evaluations(FilterVariable="MLModelId", EQ=binary["model_id"])["Results"]
    made = [e for e in evaluations if e["EvaluationId"] != binary["evaluation"]]
    assert len(made) == 1 and made[0]["Name"] == f"Evaluation: {HOSTILE}"
    held_out = ml.get_data_source(DataSourceId=made[0]["EvaluationDataSourceId"], Verbose=True)
    for split, (begin, end) in ((training, (0, 70)), (held_out, (70, 100))):
        assert split["DataLocationS3"] == original["DataLocationS3"]
        assert split["DataSourceSchema"] == original["DataSourceSchema"] and split["ComputeStatistics"]
        assert json.loads(split["DataRearrangement"]) == {"splitting": {"percentBegin": begin, "percentEnd": end}}
        assert split["Name"].endswith(f"[percentBegin={begin}, percentEnd={end}, strategy=sequential]")
        assert re.fullmatch(r"ds-[0-9A-Za-z]{11}", split["DataSourceId"])
    assert re.fullmatch(r"ev-[0-9A-Za-z]{11}", made[0]["EvaluationId"])
    # The datasource's tags reach the model through the splits.
    assert {"Key": "team", "Value": "console"} in ml.describe_tags(
        ResourceId=binary["model_id"], ResourceType="MLModel")["Tags"]
    assert settle(ml.get_evaluation, EvaluationId=made[0]["EvaluationId"], timeout=300)["Status"] == "COMPLETED"
    # The model's page lists both evaluations and the parameters used.
    page = console.page(f"/console/models/{binary['model_id']}")
    assert made[0]["EvaluationId"] in page and binary["evaluation"] in page
    assert "104857600" in page


def test_suggested_ids_and_recipe_on_the_form(ml, console, binary):
    page = console.page(f"/console/new/model?datasource={binary['source']}")
    assert re.search(r'name="model_id" value="ml-[0-9A-Za-z]{11}"', page)
    recipe = html.unescape(re.search(r'<textarea name="recipe"[^>]*>(.*?)</textarea>', page, re.S).group(1))
    assert "NUMERIC_VARS_QB_" in recipe and json.loads(recipe)["outputs"][0] == "ALL_BINARY"
    # Every training parameter with its range and the API's default.
    for text in ("100,000 to 2,147,483,648", "1 to 10,000", "sgd.l1RegularizationAmount", "API default"):
        assert text in page
    suggestion = console.get(f"/console/new/model/suggestion?datasource={binary['source']}").json()
    assert suggestion["model_type"] == "BINARY" and suggestion["target"] == "y"


BAD_RECIPE = '{\n  "groups": {},\n  "assignments": {},\n  "outputs": [\n    "ALL_NUMERIC",\n    "ngrams(text, 2)"\n  ]\n}'


def custom_form(source: str, model_id: str, **changes) -> dict:
    form = {"datasource": source, "model_type": "BINARY", "name": "custom", "model_id": model_id,
            "flow": "custom", "recipe": RECIPE, "split": "on", "param.sgd.maxMLModelSizeInBytes": "104857600",
            "param.sgd.maxPasses": "5", "param.sgd.shuffleType": "auto", "param.sgd.l1RegularizationAmount": "0",
            "param.sgd.l2RegularizationAmount": "1e-6"}
    return {**form, **changes}


def test_recipe_error_is_shown_at_its_position(ml, console, binary):
    model_id = unique("ml")
    answer = console.submit("/console/new/model", "/console/new/model",
                            custom_form(binary["source"], model_id, recipe=BAD_RECIPE))
    assert answer.status_code == 400
    page = answer.text
    assert "outputs[1] at column 1: unknown transformation &#34;ngrams&#34;" in page
    assert re.search(r'Line <span class="line">6</span>, column <span class="column">6</span>', page)
    assert 'data-offset="78"' in page and BAD_RECIPE[78:84] == "ngrams"
    with pytest.raises(ClientError):
        ml.get_ml_model(MLModelId=model_id)
    # The editor's check on demand gives the same place.
    token = csrf_token(console.page("/console/new/model"))
    checked = console.http.post(f"{console.base}/console/new/model/recipe-check", headers={"Origin": console.base},
                                data={"csrf": token, "datasource": binary["source"], "recipe": BAD_RECIPE}).json()
    assert not checked["ok"] and (checked["problem"]["line"], checked["problem"]["column"]) == (6, 6)
    broken = console.http.post(f"{console.base}/console/new/model/recipe-check", headers={"Origin": console.base},
                               data={"csrf": token, "datasource": binary["source"], "recipe": '{"outputs": [,]}'})
    assert broken.json()["problem"]["column"] == 14 and "not valid JSON" in broken.json()["problem"]["message"]


def test_parameter_errors_are_shown_next_to_their_fields(ml, console, binary):
    model_id = unique("ml")
    answer = console.submit("/console/new/model", "/console/new/model", custom_form(
        binary["source"], model_id, **{"param.sgd.maxPasses": "0", "param.sgd.l1RegularizationAmount": "0.1"}))
    assert answer.status_code == 400
    assert re.search(r'id="error-param-sgd-maxPasses">Parameters sgd.maxPasses must be between 1 and 10000',
                     answer.text)
    answer = console.submit("/console/new/model", "/console/new/model", custom_form(
        binary["source"], model_id, **{"param.sgd.l1RegularizationAmount": "0.1"}))
    assert re.search(r'id="error-param-sgd-l2RegularizationAmount">Parameters sgd.l1RegularizationAmount and',
                     answer.text)
    with pytest.raises(ClientError):
        ml.get_ml_model(MLModelId=model_id)


def test_custom_flow_without_split_uses_recipe_and_parameters(ml, console, binary):
    model_id = unique("ml")
    form = custom_form(binary["source"], model_id)
    del form["split"]  # an unchecked box
    answer = console.submit("/console/new/model", "/console/new/model", form)
    assert answer.status_code == 303
    model = ml.get_ml_model(MLModelId=model_id, Verbose=True)
    assert model["TrainingDataSourceId"] == binary["source"] and model["Recipe"] == RECIPE
    assert model["TrainingParameters"]["sgd.maxPasses"] == "5"
    assert ml.describe_evaluations(FilterVariable="MLModelId", EQ=model_id)["Results"] == []


# -- the model page ----------------------------------------------------------------------
def test_endpoint_and_prediction_form_answer_as_predict(ml, console, binary):
    model_id = binary["model_id"]
    path = f"/console/models/{model_id}"
    assert console.submit(path, f"{path}/endpoint", {}).status_code == 303
    wait_for(lambda: ml.get_ml_model(MLModelId=model_id)["EndpointInfo"]["EndpointStatus"] == "READY",
             timeout=120, message="endpoint READY")
    page = console.page(path)
    assert 'data-endpoint="READY"' in page and "Peak requests per second" in page
    # One field per input attribute; no target, row id or excluded attribute.
    fields = re.findall(r'name="record\.([^"]+)"', page)
    assert fields == ["x1", "x2", "colour", "text"]
    record = {"x1": "0.7", "x2": "-1.1", "colour": "blue", "text": "good fine ok bad"}
    answer = console.submit(path, f"{path}/predict", {f"record.{k}": v for k, v in record.items()})
    assert answer.status_code == 200
    endpoint = ml.get_ml_model(MLModelId=model_id)["EndpointInfo"]["EndpointUrl"]
    expected = ml.predict(MLModelId=model_id, Record=record, PredictEndpoint=endpoint)["Prediction"]
    assert answer.json()["Answer"]["Prediction"] == expected and answer.json()["Record"] == record
    row = console.submit(path, f"{path}/predict", {"csv_row": "r9,0.7,-1.1,blue,good fine ok bad,1"})
    assert row.json()["Answer"]["Prediction"] == expected
    short = console.submit(path, f"{path}/predict", {"csv_row": "0.7,-1.1"})
    assert short.status_code == 400 and "schema has 6 columns" in short.json()["error"]


def test_delete_refused_with_endpoint_offers_to_delete_it(ml, console, server, folder):
    path_csv = folder / "endpoint.csv"
    write_dataset(path_csv, 300, "BINARY", seed=21)
    model_id = unique("ml")
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", Recipe=RECIPE,
                       TrainingDataSourceId=datasource(ml, path_csv, "BINARY"))
    ml.create_realtime_endpoint(MLModelId=model_id)
    path = f"/console/models/{model_id}"
    refused = console.submit(path, f"{path}/delete", {})
    assert refused.status_code == 400 and "Delete the endpoint first" in refused.text
    assert f'action="{path}/endpoint/delete"' in refused.text
    assert console.submit(path, f"{path}/endpoint/delete", {}).status_code == 303
    assert ml.get_ml_model(MLModelId=model_id)["EndpointInfo"]["EndpointStatus"] == "NONE"
    assert console.submit(path, f"{path}/delete", {}).status_code == 303
    assert ml.get_ml_model(MLModelId=model_id)["Status"] == "DELETED"


# -- evaluations ---------------------------------------------------------------------------
def test_binary_evaluation_figures_and_saved_threshold(ml, console, server, binary):
    path = f"/console/evaluations/{binary['evaluation']}"
    page = console.page(path)
    model = artifact(server, binary["model_id"])
    scores, labels = exact_scores(model, binary["test"])
    truth = np.array(labels, dtype=int)
    auc = float(re.search(r'data-metric="([^"]+)"', page).group(1))
    assert auc == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)
    assert float(re.search(r'data-baseline="([^"]+)"', page).group(1)) == 0.5
    assert page.count('data-fired="') == 5
    # The threshold table goes to the page whole, for the slider.
    table = data_block(page)["table"]
    assert table["positives"] == truth.sum() and table["negatives"] == (1 - truth).sum()
    # Saving a cut-off sets ScoreThreshold; the page's counts are then at it.
    cut = 0.37
    saved = console.submit(path, f"{path}/threshold", {"threshold": str(cut)})
    assert saved.status_code == 303
    assert ml.get_ml_model(MLModelId=binary["model_id"])["ScoreThreshold"] == pytest.approx(cut)
    page = console.page(path)
    predicted = np.asarray(scores, dtype=np.float32).astype(np.float64) >= cut
    expected = {"tp": (predicted & (truth == 1)).sum(), "fp": (predicted & (truth == 0)).sum(),
                "tn": (~predicted & (truth == 0)).sum(), "fn": (~predicted & (truth == 1)).sum()}
    assert {name: figure(page, name) for name in expected} == expected
    assert f'value="{cut}"' in page  # the slider starts at the model's threshold
    refused = console.submit(path, f"{path}/threshold", {"threshold": "1.5"})
    assert refused.status_code == 400 and "from 0 to 1" in refused.text


def test_multiclass_evaluation_macro_f1_and_confusion_matrix(ml, console, server, folder):
    train, test = folder / "classes-train.csv", folder / "classes-test.csv"
    write_many_classes(train, 3000, seed=31)
    write_many_classes(test, 900, seed=32)
    model_id = unique("ml")
    ml.create_ml_model(MLModelId=model_id, MLModelType="MULTICLASS", Recipe=RECIPE,
                       TrainingDataSourceId=datasource(ml, train, "MULTICLASS"),
                       Parameters={"sgd.shuffleType": "auto"})
    ev_id = evaluation_of(ml, model_id, datasource(ml, test, "MULTICLASS"))
    page = console.page(f"/console/evaluations/{ev_id}")
    model = artifact(server, model_id)
    scores, truth = exact_scores(model, test)
    known = np.isin(truth, model.labels)  # a class never trained on is left out, as the job does
    scores, truth = scores[known], list(np.array(truth)[known])
    predicted = [model.labels[k] for k in np.argmax(scores, axis=1)]
    assert float(re.search(r'data-metric="([^"]+)"', page).group(1)) == pytest.approx(
        f1_score(truth, predicted, average="macro"), abs=1e-12)
    # Ten rows and columns: the nine most frequent true classes and the rest.
    matrix = confusion_matrix(truth, predicted, labels=model.labels)
    order = np.argsort(-matrix.sum(axis=1), kind="stable")
    keep, rest = order[:9], order[9:]
    top = np.zeros((10, 10))
    top[:9, :9] = matrix[np.ix_(keep, keep)]
    top[:9, 9] = matrix[np.ix_(keep, rest)].sum(axis=1)
    top[9, :9] = matrix[np.ix_(rest, keep)].sum(axis=0)
    top[9, 9] = matrix[np.ix_(rest, rest)].sum()
    head = re.search(r'<table class="confusion">.*?</thead>', page, re.S).group(0)
    assert re.findall(r'<th scope="col" class="[^"]*">([^<]+)</th>', head)[1:-1] == \
        [model.labels[i] for i in keep] + ["others"]  # between the corner and the totals
    cells = [float(c) for c in re.findall(r'data-count="([^"]+)"', page)]
    assert np.array(cells).reshape(10, 10).tolist() == top.tolist()
    assert len(re.findall(r"<tr data-class-f1=", page)) == len(model.labels)


def test_regression_evaluation_rmse_and_residual_histogram(ml, console, server, folder):
    train, test = folder / "regression-train.csv", folder / "regression-test.csv"
    write_dataset(train, 2000, "REGRESSION", seed=41)
    write_dataset(test, 700, "REGRESSION", seed=42)
    model_id = unique("ml")
    ml.create_ml_model(MLModelId=model_id, MLModelType="REGRESSION", Recipe=RECIPE,
                       TrainingDataSourceId=datasource(ml, train, "REGRESSION"))
    settle(ml.get_ml_model, MLModelId=model_id, timeout=300)
    ev_id = evaluation_of(ml, model_id, datasource(ml, test, "REGRESSION"))
    page = console.page(f"/console/evaluations/{ev_id}")
    scores, truth = exact_scores(artifact(server, model_id), test)
    rmse = float(np.sqrt(np.mean((np.array(truth, dtype=float) - scores) ** 2)))
    assert float(re.search(r'data-metric="([^"]+)"', page).group(1)) == pytest.approx(rmse, rel=1e-9)
    histogram = data_block(page)["residuals"]
    assert sum(histogram["weights"]) == 700
    assert float(re.search(r'data-residual-total="([^"]+)"', page).group(1)) == 700


# -- batch predictions -----------------------------------------------------------------------
def test_batch_prediction_created_and_its_results_downloaded(ml, console, binary, folder):
    output = folder / unique("out")
    prediction_id = unique("bp")
    answer = console.submit("/console/new/batch-prediction", "/console/new/batch-prediction", {
        "model": binary["model_id"], "datasource": binary["source"], "output": output.as_uri() + "/",
        "name": "", "prediction_id": prediction_id})
    assert answer.status_code == 303 and answer.headers["location"] == f"/console/batch-predictions/{prediction_id}"
    got = settle(ml.get_batch_prediction, BatchPredictionId=prediction_id, timeout=300)
    assert got["Status"] == "COMPLETED" and got["Name"] == f"Batch prediction: {HOSTILE}"
    page = console.page(f"/console/batch-predictions/{prediction_id}")
    assert f"{prediction_id}.manifest" in page and 'data-total="2000"' in page
    link = f"/console/batch-predictions/{prediction_id}/results/0"
    assert f'href="{link}"' in page
    download = console.get(link)
    assert download.status_code == 200 and download.headers["content-type"] == "application/gzip"
    written = output / "batch-prediction" / "result" / f"{prediction_id}-binary-train.csv.gz"
    assert download.content == written.read_bytes()
    assert gzip.decompress(download.content).startswith(b"tag,trueLabel,bestAnswer,score\n")
    assert console.get(f"/console/batch-predictions/{prediction_id}/results/1").status_code == 404
    assert console.get(f"/console/batch-predictions/{prediction_id}/results/..%2F..%2Fetc").status_code == 404
    # A bad output location is shown next to its field.
    refused = console.submit("/console/new/batch-prediction", "/console/new/batch-prediction", {
        "model": binary["model_id"], "datasource": binary["source"], "output": "ftp://nowhere/",
        "prediction_id": unique("bp")})
    assert refused.status_code == 400
    assert re.search(r'<p class="problem field-error" role="alert">[^<]*OutputUri', refused.text)


def test_results_are_downloaded_from_s3(ml, console, binary, s3):
    bucket = unique("results")
    s3.client().create_bucket(Bucket=bucket)
    prediction_id = unique("bp")
    answer = console.submit("/console/new/batch-prediction", "/console/new/batch-prediction", {
        "model": binary["model_id"], "datasource": binary["source"], "output": f"s3://{bucket}/scores/",
        "prediction_id": prediction_id})
    assert answer.status_code == 303
    assert settle(ml.get_batch_prediction, BatchPredictionId=prediction_id, timeout=300)["Status"] == "COMPLETED"
    download = console.get(f"/console/batch-predictions/{prediction_id}/results/0")
    key = f"scores/batch-prediction/result/{prediction_id}-binary-train.csv.gz"
    assert download.status_code == 200
    assert download.content == s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()


# -- security ------------------------------------------------------------------------------------
def test_changes_without_the_csrf_token_or_origin_are_refused(ml, console, binary):
    path = f"/console/evaluations/{binary['evaluation']}"
    before = ml.get_ml_model(MLModelId=binary["model_id"])["ScoreThreshold"]
    refused = console.submit(path, f"{path}/threshold", {"threshold": "0.9"}, csrf=False)
    assert refused.status_code == 403
    token = csrf_token(console.page(path))
    foreign = console.http.post(f"{console.base}{path}/threshold", data={"csrf": token, "threshold": "0.9"},
                                headers={"Origin": "http://elsewhere.example"}, allow_redirects=False)
    assert foreign.status_code == 403
    created = console.submit("/console/new/model", "/console/new/model", {
        "datasource": binary["source"], "model_type": "BINARY", "model_id": unique("ml"), "flow": "default"},
        csrf=False)
    assert created.status_code == 403
    assert ml.get_ml_model(MLModelId=binary["model_id"])["ScoreThreshold"] == before


def test_another_account_cannot_open_these_objects(server, binary):
    bob = ConsoleSession(server, server.other_keys)
    for path in (f"/console/models/{binary['model_id']}", f"/console/evaluations/{binary['evaluation']}",
                 f"/console/batch-predictions/{binary['model_id']}"):
        assert bob.get(path).status_code == 404
    form = bob.page(f"/console/new/model?datasource={binary['source']}")
    assert "binary &lt;script&gt;" not in form and "There is no datasource with statistics" in form
    token = csrf_token(form)
    for action, data in ((f"/console/models/{binary['model_id']}/predict", {"record.x1": "1"}),
                         (f"/console/evaluations/{binary['evaluation']}/threshold", {"threshold": "0.1"}),
                         (f"/console/models/{binary['model_id']}/endpoint/delete", {})):
        answer = bob.http.post(server.url + action, data={"csrf": token, **data}, headers={"Origin": server.url},
                               allow_redirects=False)
        assert answer.status_code == 404, action


def test_ids_the_api_would_refuse_are_a_plain_refusal(console):
    assert console.get("/console/models/not%20an%20id").status_code == 400
    assert console.get("/console/evaluations/%3Cx%3E").status_code == 400
    form = console.page("/console/new/model?datasource=%3Cx%3E")
    assert "No datasource &lt;x&gt; in this account" in form


def test_names_and_values_are_shown_escaped(console, binary):
    for path in (f"/console/models/{binary['model_id']}", f"/console/evaluations/{binary['evaluation']}",
                 f"/console/new/model?datasource={binary['source']}"):
        page = console.page(path)
        assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
        assert "&#39;quoted&#39; &amp;" in page
    # The data handed to the page's script cannot close its script element.
    page = console.page(f"/console/evaluations/{binary['evaluation']}")
    block = re.search(r'id="evaluation-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in block
