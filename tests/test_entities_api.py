"""Create, Get, Update, Delete and idempotency for every entity kind, driven
over HTTP with boto3 on each metadata backend."""
import datetime as dt

import pytest
from botocore.exceptions import ClientError

from support import unique


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def make_datasource(ml, compute_statistics=True, **extra):
    ds_id = unique("ds")
    ml.create_data_source_from_s3(
        DataSourceId=ds_id, DataSourceName=extra.pop("name", "training data"),
        DataSpec={"DataLocationS3": extra.pop("location", "s3://bucket/data.csv"), **extra},
        ComputeStatistics=compute_statistics)
    return ds_id


def make_model(ml, ds_id, **extra):
    model_id = unique("ml")
    ml.create_ml_model(MLModelId=model_id, MLModelType=extra.pop("MLModelType", "BINARY"),
                       TrainingDataSourceId=ds_id, **extra)
    return model_id


def test_datasource_roundtrip(ml, server):
    ds_id = make_datasource(ml, DataRearrangement='{"splitting":{"percentBegin":0,"percentEnd":70}}')
    got = ml.get_data_source(DataSourceId=ds_id)
    assert got["DataSourceId"] == ds_id
    assert got["Name"] == "training data"
    assert got["DataLocationS3"] == "s3://bucket/data.csv"
    assert got["DataRearrangement"] == '{"splitting":{"percentBegin":0,"percentEnd":70}}'
    assert got["ComputeStatistics"] is True
    assert got["CreatedByIamUser"] == "arn:aws:iam::111111111111:user/alice"
    assert isinstance(got["CreatedAt"], dt.datetime)
    assert got["Status"] in ("PENDING", "INPROGRESS", "FAILED")
    ml.update_data_source(DataSourceId=ds_id, DataSourceName="renamed")
    assert ml.get_data_source(DataSourceId=ds_id)["Name"] == "renamed"
    assert ml.delete_data_source(DataSourceId=ds_id)["DataSourceId"] == ds_id
    assert ml.get_data_source(DataSourceId=ds_id)["Status"] == "DELETED"
    with pytest.raises(ClientError) as excinfo:
        ml.update_data_source(DataSourceId=ds_id, DataSourceName="after delete")
    assert error_code(excinfo) == "InvalidInputException"


def test_create_is_idempotent_for_identical_parameters(ml):
    ds_id = unique("ds")
    spec = {"DataLocationS3": "s3://bucket/a.csv"}
    assert ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec=spec)["DataSourceId"] == ds_id
    assert ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec=spec)["DataSourceId"] == ds_id
    with pytest.raises(ClientError) as excinfo:
        ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec=spec, ComputeStatistics=True)
    assert error_code(excinfo) == "IdempotentParameterMismatchException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The failed retry changed nothing.
    assert ml.get_data_source(DataSourceId=ds_id)["ComputeStatistics"] is False


def test_same_id_may_be_reused_across_kinds(ml):
    shared = unique("shared")
    ml.create_data_source_from_s3(DataSourceId=shared, DataSpec={"DataLocationS3": "s3://b/k"},
                                  ComputeStatistics=True)
    ml.create_ml_model(MLModelId=shared, MLModelType="REGRESSION", TrainingDataSourceId=shared)
    assert ml.get_ml_model(MLModelId=shared)["TrainingDataSourceId"] == shared


def test_mlmodel_fields_and_parameters(ml):
    ds_id = make_datasource(ml)
    model_id = make_model(ml, ds_id, MLModelName="churn", Parameters={
        "sgd.maxPasses": "5", "sgd.l2RegularizationAmount": "1e-6", "sgd.shuffleType": "auto"})
    got = ml.get_ml_model(MLModelId=model_id)
    assert got["Name"] == "churn"
    assert got["MLModelType"] == "BINARY"
    assert got["TrainingDataSourceId"] == ds_id
    assert got["InputDataLocationS3"] == "s3://bucket/data.csv"
    assert got["EndpointInfo"] == {"EndpointStatus": "NONE", "PeakRequestsPerSecond": 0}
    assert got["TrainingParameters"] == {
        "algorithm": "sgd", "sgd.maxPasses": "5", "sgd.shuffleType": "auto",
        "sgd.l1RegularizationAmount": "0.0", "sgd.l2RegularizationAmount": "1e-06",
        "sgd.maxMLModelSizeInBytes": "33554432"}
    listed = ml.describe_ml_models(FilterVariable="TrainingDataSourceId", EQ=ds_id)["Results"]
    assert [m["MLModelId"] for m in listed] == [model_id]
    assert listed[0]["Algorithm"] == "sgd"


@pytest.mark.parametrize("parameters, fragment", [
    ({"sgd.maxPasses": "0"}, "sgd.maxPasses"),
    ({"sgd.maxPasses": "ten"}, "sgd.maxPasses"),
    ({"sgd.maxMLModelSizeInBytes": "99999"}, "sgd.maxMLModelSizeInBytes"),
    ({"sgd.shuffleType": "sometimes"}, "sgd.shuffleType"),
    ({"sgd.l1RegularizationAmount": "1e-6", "sgd.l2RegularizationAmount": "1e-6"}, "cannot both"),
    ({"sgd.l2RegularizationAmount": "-1"}, "sgd.l2RegularizationAmount"),
    ({"sgd.learningRate": "0.1"}, "sgd.learningRate"),
])
def test_bad_training_parameters(ml, parameters, fragment):
    ds_id = make_datasource(ml)
    with pytest.raises(ClientError) as excinfo:
        make_model(ml, ds_id, Parameters=parameters)
    assert error_code(excinfo) == "InvalidInputException"
    assert fragment in excinfo.value.response["Error"]["Message"]


def test_training_datasource_needs_statistics_and_must_exist(ml):
    ds_id = make_datasource(ml, compute_statistics=False)
    with pytest.raises(ClientError) as excinfo:
        make_model(ml, ds_id)
    assert error_code(excinfo) == "InvalidInputException"
    assert "ComputeStatistics" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as excinfo:
        make_model(ml, "ds-does-not-exist")
    assert "ds-does-not-exist" in excinfo.value.response["Error"]["Message"]


def test_update_ml_model_threshold(ml):
    ds_id = make_datasource(ml)
    binary = make_model(ml, ds_id)
    ml.update_ml_model(MLModelId=binary, ScoreThreshold=0.77, MLModelName="tuned")
    got = ml.get_ml_model(MLModelId=binary)
    assert got["ScoreThreshold"] == pytest.approx(0.77)
    assert got["Name"] == "tuned"
    assert "ScoreThresholdLastUpdatedAt" in got
    regression = make_model(ml, ds_id, MLModelType="REGRESSION")
    with pytest.raises(ClientError) as excinfo:
        ml.update_ml_model(MLModelId=regression, ScoreThreshold=0.5)
    assert "BINARY" in excinfo.value.response["Error"]["Message"]


def test_evaluation_and_batch_prediction_roundtrip(ml, server):
    ds_id = make_datasource(ml)
    model_id = make_model(ml, ds_id)
    ev_id, bp_id = unique("ev"), unique("bp")
    ml.create_evaluation(EvaluationId=ev_id, EvaluationName="holdout", MLModelId=model_id,
                         EvaluationDataSourceId=ds_id)
    out = server.data_dir.parent.as_uri() + "/out/"
    ml.create_batch_prediction(BatchPredictionId=bp_id, BatchPredictionName="scores", MLModelId=model_id,
                               BatchPredictionDataSourceId=ds_id, OutputUri=out)
    ev = ml.get_evaluation(EvaluationId=ev_id)
    assert (ev["MLModelId"], ev["EvaluationDataSourceId"], ev["Name"]) == (model_id, ds_id, "holdout")
    assert ev["InputDataLocationS3"] == "s3://bucket/data.csv"
    bp = ml.get_batch_prediction(BatchPredictionId=bp_id)
    assert (bp["MLModelId"], bp["BatchPredictionDataSourceId"], bp["OutputUri"]) == (model_id, ds_id, out)
    ml.update_evaluation(EvaluationId=ev_id, EvaluationName="renamed")
    ml.update_batch_prediction(BatchPredictionId=bp_id, BatchPredictionName="renamed")
    assert ml.get_evaluation(EvaluationId=ev_id)["Name"] == "renamed"
    assert ml.get_batch_prediction(BatchPredictionId=bp_id)["Name"] == "renamed"
    ml.delete_evaluation(EvaluationId=ev_id)
    ml.delete_batch_prediction(BatchPredictionId=bp_id)
    assert ml.get_evaluation(EvaluationId=ev_id)["Status"] == "DELETED"
    assert ml.get_batch_prediction(BatchPredictionId=bp_id)["Status"] == "DELETED"


@pytest.mark.parametrize("operation, params", [
    ("get_data_source", {"DataSourceId": "ds-missing"}),
    ("get_ml_model", {"MLModelId": "ml-missing"}),
    ("get_evaluation", {"EvaluationId": "ev-missing"}),
    ("get_batch_prediction", {"BatchPredictionId": "bp-missing"}),
    ("delete_data_source", {"DataSourceId": "ds-missing"}),
    ("update_ml_model", {"MLModelId": "ml-missing", "MLModelName": "x"}),
    ("create_realtime_endpoint", {"MLModelId": "ml-missing"}),
    ("describe_tags", {"ResourceId": "ds-missing", "ResourceType": "DataSource"}),
])
def test_unknown_ids_are_resource_not_found(ml, operation, params):
    with pytest.raises(ClientError) as excinfo:
        getattr(ml, operation)(**params)
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert params[next(iter(params))] in excinfo.value.response["Error"]["Message"]


def test_output_locations_are_checked(ml, server):
    ds_id = make_datasource(ml)
    model_id = make_model(ml, ds_id)
    inside = server.data_dir.parent.as_uri()
    for bad, fragment in [("s3://bucket/a/../b/", "/../"), ("file:///etc/", "outside"),
                          ("ftp://x/y", "pattern"), (f"{inside}/victim.csv?", "must not contain"),
                          (f"{server.data_dir.as_uri()}/", "own storage")]:
        with pytest.raises(ClientError) as excinfo:
            ml.create_batch_prediction(BatchPredictionId=unique("bp"), MLModelId=model_id,
                                       BatchPredictionDataSourceId=ds_id, OutputUri=bad)
        assert error_code(excinfo) == "InvalidInputException"
        assert fragment in excinfo.value.response["Error"]["Message"]


def test_local_datasource_must_be_under_allowed_path(ml, server, tmp_path):
    with pytest.raises(ClientError) as excinfo:
        make_datasource(ml, location="file:///etc/passwd")
    assert "outside" in excinfo.value.response["Error"]["Message"]
    # `..` is resolved before the check.
    allowed = server.data_dir.parent
    sneaky = f"{allowed.as_uri()}/../../etc/passwd"
    with pytest.raises(ClientError):
        make_datasource(ml, location=sneaky)
    inside = (allowed / "data.csv").as_uri()
    assert ml.get_data_source(DataSourceId=make_datasource(ml, location=inside))["DataLocationS3"] == inside
    # The allowed directory holds the server's data dir: that stays out of reach.
    for own in (server.data_dir / "master.key", server.data_dir / "treadle.db", server.data_dir):
        with pytest.raises(ClientError) as excinfo:
            make_datasource(ml, location=own.as_uri())
        assert "own storage" in excinfo.value.response["Error"]["Message"]


def test_validation_errors_name_the_member(ml):
    with pytest.raises(ClientError) as excinfo:
        ml.create_data_source_from_s3(DataSourceId="bad id!", DataSpec={"DataLocationS3": "s3://b/k"})
    message = excinfo.value.response["Error"]["Message"]
    assert error_code(excinfo) == "InvalidInputException"
    assert "DataSourceId" in message and "pattern" in message
    with pytest.raises(ClientError) as excinfo:
        ml.describe_data_sources(Limit=101)
    assert "Limit" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as excinfo:
        ml.describe_data_sources(FilterVariable="Colour", EQ="x")
    assert "FilterVariable" in excinfo.value.response["Error"]["Message"]


def test_rds_credentials_never_returned(ml, server):
    ds_id = unique("ds")
    password = "s3cret-Passw0rd"
    ml.create_data_source_from_rds(
        DataSourceId=ds_id, RoleARN="arn:aws:iam::111111111111:role/ml",
        RDSData={"DatabaseInformation": {"InstanceIdentifier": "mydb", "DatabaseName": "shop"},
                 "SelectSqlQuery": "SELECT * FROM orders",
                 "DatabaseCredentials": {"Username": "reader", "Password": password},
                 "S3StagingLocation": "s3://bucket/staging/", "ResourceRole": "r", "ServiceRole": "s",
                 "SubnetId": "subnet-1", "SecurityGroupIds": ["sg-1"]})
    plain = ml.get_data_source(DataSourceId=ds_id)
    verbose = ml.get_data_source(DataSourceId=ds_id, Verbose=True)
    assert plain["RDSMetadata"]["DatabaseUserName"] == "reader"
    assert "SelectSqlQuery" not in plain["RDSMetadata"]
    assert verbose["RDSMetadata"]["SelectSqlQuery"] == "SELECT * FROM orders"
    assert plain["RoleARN"] == "arn:aws:iam::111111111111:role/ml"
    for text in (str(plain), str(verbose), str(ml.describe_data_sources()), server.log_text()):
        assert password not in text
    db_bytes = b"".join(p.read_bytes() for p in server.data_dir.glob("treadle.db*"))
    assert password.encode() not in db_bytes


INLINE_SCHEMA = ('{"version":"1.0","targetAttributeName":"y","dataFormat":"CSV","dataFileContainsHeader":true,'
                 '"attributes":[{"attributeName":"age","attributeType":"NUMERIC"},'
                 '{"attributeName":"note","attributeType":"TEXT"},{"attributeName":"y","attributeType":"BINARY"}]}')


@pytest.mark.parametrize("recipe, model_type, fragment", [
    ('{"outputs": ["ngrams(note, 2)"]}', "BINARY", 'outputs[0] at column 1: unknown transformation "ngrams"'),
    ('{"outputs": ["quantile_bin(note, 10)"]}', "BINARY", "NUMERIC"),
    ('{"outputs": ["missing_var"]}', "BINARY", "missing_var"),
    ('{"outputs": []}', "BINARY", "outputs"),
    ('{"outputs": [', "BINARY", "JSON"),
    (None, "REGRESSION", "NUMERIC target"),
])
def test_recipe_and_target_checked_at_create(ml, recipe, model_type, fragment):
    ds_id = make_datasource(ml, DataSchema=INLINE_SCHEMA)
    extra = {"Recipe": recipe} if recipe else {}
    with pytest.raises(ClientError) as excinfo:
        make_model(ml, ds_id, MLModelType=model_type, **extra)
    assert error_code(excinfo) == "InvalidInputException"
    assert fragment in excinfo.value.response["Error"]["Message"]


def test_valid_recipe_accepted_and_returned_verbose(ml):
    ds_id = make_datasource(ml, DataSchema=INLINE_SCHEMA)
    recipe = '{"groups": {}, "assignments": {}, "outputs": ["ALL_INPUTS", "ngram(lowercase(note), 2)"]}'
    model_id = make_model(ml, ds_id, Recipe=recipe)
    assert ml.get_ml_model(MLModelId=model_id, Verbose=True)["Recipe"] == recipe
    assert "Recipe" not in ml.get_ml_model(MLModelId=model_id)
