"""Models, evaluations and batch predictions through boto3 on a live server,
checked against scikit-learn fitted in the test on the same features."""
import gzip
import json
import re
import urllib.request

import numpy as np
import pyarrow.csv as pa_csv
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score, mean_squared_error, roc_auc_score

from learning_data import schema, write_dataset
from support import settle, signed_get, unique
from treadle.learning import MLModelArtifact

RECIPE = json.dumps({"groups": {}, "assignments": {},
                     "outputs": ["ALL_CATEGORICAL", "ALL_NUMERIC", "lowercase(ALL_TEXT)"]})


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / unique("learn")


def datasource(ml, path, kind, **extra):
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True, DataSpec={
        "DataLocationS3": path.as_uri(), "DataSchema": schema(kind), **extra})
    return ds_id


def trained(ml, server, folder, kind, n_train=6000, n_test=3000, params=None, recipe=RECIPE, noise_words=0):
    folder.mkdir(parents=True, exist_ok=True)
    train = folder / f"{kind}-train-{n_train}-{noise_words}.csv"
    test = folder / f"{kind}-test-{n_test}-{noise_words}.csv"
    if not train.exists():
        write_dataset(train, n_train, kind, seed=1, noise_words=noise_words)
        write_dataset(test, n_test, kind, seed=2, noise_words=noise_words)
    train_id, test_id = datasource(ml, train, kind), datasource(ml, test, kind)
    model_id = unique("ml")
    extra = {"Recipe": recipe} if recipe else {}
    ml.create_ml_model(MLModelId=model_id, MLModelType=kind, TrainingDataSourceId=train_id,
                       Parameters=params or {"sgd.shuffleType": "auto"}, **extra)
    model = settle(ml.get_ml_model, MLModelId=model_id, timeout=300)
    assert model["Status"] == "COMPLETED", model.get("Message")
    return model_id, train, test, test_id


def artifact(server, model_id) -> MLModelArtifact:
    path = next(server.data_dir.glob(f"artifacts/models/*/{model_id}.model"))
    return MLModelArtifact.from_bytes(path.read_bytes())


def features(model: MLModelArtifact, path):
    table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
        column_types={n: "string" for n in ["id", "x1", "x2", "colour", "text", "y"]},
        strings_can_be_null=False))
    return model.fitted_pipeline.transform(table).to_scipy(), table.column("y").to_pylist()


def evaluate(ml, model_id, test_id):
    ev = unique("ev")
    ml.create_evaluation(EvaluationId=ev, MLModelId=model_id, EvaluationDataSourceId=test_id)
    got = settle(ml.get_evaluation, EvaluationId=ev, timeout=300)
    assert got["Status"] == "COMPLETED", got.get("Message")
    return ev, got["PerformanceMetrics"]["Properties"]


def test_binary_auc_matches_logistic_regression(ml, server, folder):
    model_id, train, test, test_id = trained(ml, server, folder, "BINARY")
    got = ml.get_ml_model(MLModelId=model_id, Verbose=True)
    assert got["ScoreThreshold"] == 0.5 and got["SizeInBytes"] > 0 and got["Recipe"] == RECIPE
    assert json.loads(got["Schema"])["targetAttributeName"] == "y"
    log = urllib.request.urlopen(got["LogUri"], timeout=10).read().decode()
    headers = [line for line in log.splitlines() if "initial-training: l1=" in line]
    assert len(headers) == 1 and "likelihood-function=logreg" in headers[0]
    ev, metrics = evaluate(ml, model_id, test_id)
    model = artifact(server, model_id)
    X, y = features(model, train)
    Xt, yt = features(model, test)
    reference = LogisticRegression(C=100, max_iter=5000).fit(X, np.array(y, dtype=int))
    expected = roc_auc_score(np.array(yt, dtype=int), reference.predict_proba(Xt)[:, 1])
    assert float(metrics["BinaryAUC"]) >= expected - 0.005
    # The insights route has the threshold table and ROC for the console.
    status, body = signed_get(f"{server.url}/evaluations/{ev}/insights", server.default_keys)
    assert status == 200
    insights = body["Insights"]
    assert abs(insights["metric"] - float(metrics["BinaryAUC"])) < 1e-12
    assert insights["baseline"] == 0.5 and len(insights["roc"]["fpr"]) > 10
    assert {a["name"] for a in insights["alerts"]} >= {"Schema matched", "Distribution of target variable"}


def test_multiclass_macro_f1_matches_multinomial(ml, server, folder):
    model_id, train, test, test_id = trained(ml, server, folder, "MULTICLASS")
    _, metrics = evaluate(ml, model_id, test_id)
    model = artifact(server, model_id)
    assert model.labels == ["alpha", "beta", "gamma"]
    X, y = features(model, train)
    Xt, yt = features(model, test)
    reference = LogisticRegression(C=100, max_iter=5000).fit(X, y)
    expected = f1_score(yt, reference.predict(Xt), average="macro")
    assert float(metrics["MulticlassAvgFScore"]) >= expected - 0.01


def test_regression_rmse_matches_ridge(ml, server, folder):
    model_id, train, test, test_id = trained(ml, server, folder, "REGRESSION")
    _, metrics = evaluate(ml, model_id, test_id)
    model = artifact(server, model_id)
    X, y = features(model, train)
    Xt, yt = features(model, test)
    reference = Ridge(alpha=1e-3).fit(X, np.array(y, dtype=float))
    expected = mean_squared_error(np.array(yt, dtype=float), reference.predict(Xt)) ** 0.5
    assert float(metrics["RegressionRMSE"]) <= expected * 1.02


NUMBER = re.compile(r"-?\d(\.\d{1,6})?E-?\d+")


def test_batch_prediction_layout_and_blank_lines(ml, server, folder):
    model_id, _, _, _ = trained(ml, server, folder, "BINARY")
    ml.update_ml_model(MLModelId=model_id, ScoreThreshold=0.7)
    scored = folder / "batch-input.csv"
    write_dataset(scored, 500, "BINARY", seed=3, bad_lines=(5, 77))
    ds_id = datasource(ml, scored, "BINARY")
    bp_id = unique("bp")
    out = (folder / unique("out")).as_uri() + "/"
    ml.create_batch_prediction(BatchPredictionId=bp_id, MLModelId=model_id, BatchPredictionDataSourceId=ds_id,
                               OutputUri=out)
    got = settle(ml.get_batch_prediction, BatchPredictionId=bp_id, timeout=300)
    assert got["Status"] == "COMPLETED", got.get("Message")
    assert (got["TotalRecordCount"], got["InvalidRecordCount"]) == (500, 2)
    base = folder / out.rstrip("/").rsplit("/", 1)[1] / "batch-prediction"
    manifest = json.loads((base / f"{bp_id}.manifest").read_text())
    result_uri = manifest[scored.as_uri()]
    assert result_uri.endswith(f"batch-prediction/result/{bp_id}-batch-input.csv.gz")
    lines = gzip.decompress((base / "result" / f"{bp_id}-batch-input.csv.gz").read_bytes()).decode().split("\n")
    assert lines[0] == "tag,trueLabel,bestAnswer,score"
    rows = lines[1:-1]
    assert len(rows) == 500 and lines[-1] == ""
    assert rows[4] == "" and rows[76] == "" and rows[5].startswith("r5,")
    for row in rows[:50]:
        if not row:
            continue
        tag, true_label, best, score = row.split(",")
        assert NUMBER.fullmatch(score), score
        assert best == ("1" if float(score) >= 0.7 else "0")  # the updated threshold applies
        assert true_label in ("0", "1") and tag.startswith("r")


def test_l1_gives_zero_weights_and_size_cap_shrinks(ml, server, folder):
    text_recipe = json.dumps({"outputs": ["ALL_CATEGORICAL", "ALL_NUMERIC", "ngram(lowercase(text), 2)"]})
    common = dict(recipe=text_recipe, noise_words=20000)
    dense_id, *_ , test_id = trained(ml, server, folder, "BINARY", params={"sgd.shuffleType": "auto"}, **common)
    l1_id, *_ = trained(ml, server, folder, "BINARY", **common,
                        params={"sgd.shuffleType": "auto", "sgd.l1RegularizationAmount": "1e-3"})
    capped_id, *_ = trained(ml, server, folder, "BINARY", **common,
                            params={"sgd.shuffleType": "auto", "sgd.maxMLModelSizeInBytes": "100000"})
    dense, l1, capped = (artifact(server, m) for m in (dense_id, l1_id, capped_id))
    assert np.count_nonzero(l1.values) < 0.8 * np.count_nonzero(dense.values)
    size = ml.get_ml_model(MLModelId=capped_id)["SizeInBytes"]
    assert size <= 100000 < ml.get_ml_model(MLModelId=dense_id)["SizeInBytes"]
    _, full = evaluate(ml, dense_id, test_id)
    _, small = evaluate(ml, capped_id, test_id)
    assert float(small["BinaryAUC"]) >= float(full["BinaryAUC"]) - 0.02


def test_suggested_recipe_is_used_and_returned(ml, server, folder):
    model_id, *_ = trained(ml, server, folder, "BINARY", recipe=None)
    recipe = json.loads(ml.get_ml_model(MLModelId=model_id, Verbose=True)["Recipe"])
    assert recipe["outputs"][:2] == ["ALL_BINARY", "ALL_CATEGORICAL"]
    assert any(name.startswith("NUMERIC_VARS_QB_") for name in recipe["groups"])


def test_target_type_mismatch_fails_the_model(ml, server, folder):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "multi.csv"
    write_dataset(path, 300, "MULTICLASS", seed=4)
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, ComputeStatistics=True, DataSpec={
        "DataLocationS3": path.as_uri(), "DataSchema": schema("MULTICLASS")})
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError) as excinfo:
        ml.create_ml_model(MLModelId=unique("ml"), MLModelType="BINARY", TrainingDataSourceId=ds_id)
    assert "BINARY target" in excinfo.value.response["Error"]["Message"]


def test_waiters_and_recipe_uri(ml, server, folder):
    """The four waiters succeed once objects are COMPLETED; a recipe can come
    from an allowed local path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "waiters.csv"
    write_dataset(data, 800, "BINARY", seed=6)
    recipe_file = folder / "recipe.json"
    recipe_file.write_text(RECIPE)
    ds_id = datasource(ml, data, "BINARY")
    ml.get_waiter("data_source_available").wait(
        FilterVariable="DataLocationS3", EQ=data.as_uri(), WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    model_id, ev_id, bp_id = unique("ml"), unique("ev"), unique("bp")
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id,
                       RecipeUri=recipe_file.as_uri())
    ml.create_evaluation(EvaluationId=ev_id, MLModelId=model_id, EvaluationDataSourceId=ds_id)
    ml.create_batch_prediction(BatchPredictionId=bp_id, MLModelId=model_id, BatchPredictionDataSourceId=ds_id,
                               OutputUri=(folder / unique("w")).as_uri() + "/")
    fast = {"Delay": 1, "MaxAttempts": 300}
    ml.get_waiter("ml_model_available").wait(FilterVariable="TrainingDataSourceId", EQ=ds_id, WaiterConfig=fast)
    ml.get_waiter("evaluation_available").wait(FilterVariable="MLModelId", EQ=model_id, WaiterConfig=fast)
    ml.get_waiter("batch_prediction_available").wait(FilterVariable="MLModelId", EQ=model_id, WaiterConfig=fast)
    assert ml.get_ml_model(MLModelId=model_id, Verbose=True)["Recipe"] == RECIPE
    # The evaluation used its training data: the held-out-data alert fires.
    status, body = signed_get(f"{server.url}/evaluations/{ev_id}/insights", server.default_keys)
    alerts = {a["name"]: a["fired"] for a in body["Insights"]["alerts"]}
    assert alerts["Evaluation of ML model is done on held-out data"] is True
