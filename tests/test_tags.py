"""AddTags / DescribeTags / DeleteTags, limits and propagation."""
import pytest
from botocore.exceptions import ClientError

from support import unique


def tags_of(ml, resource_id, kind):
    return {t["Key"]: t.get("Value") for t in ml.describe_tags(ResourceId=resource_id, ResourceType=kind)["Tags"]}


def new_datasource(ml, statistics=True):
    ds_id = unique("ds")
    ml.create_data_source_from_s3(DataSourceId=ds_id, DataSpec={"DataLocationS3": "s3://b/k.csv"},
                                  ComputeStatistics=statistics)
    return ds_id


def test_add_overwrite_describe_delete(ml):
    ds_id = new_datasource(ml)
    out = ml.add_tags(ResourceId=ds_id, ResourceType="DataSource",
                      Tags=[{"Key": "team", "Value": "growth"}, {"Key": "flag"}])
    assert (out["ResourceId"], out["ResourceType"]) == (ds_id, "DataSource")
    assert tags_of(ml, ds_id, "DataSource") == {"team": "growth", "flag": None}
    ml.add_tags(ResourceId=ds_id, ResourceType="DataSource", Tags=[{"Key": "team", "Value": "risk"}])
    assert tags_of(ml, ds_id, "DataSource") == {"team": "risk", "flag": None}
    # Keys are case-sensitive; unknown keys are ignored on delete.
    ml.delete_tags(ResourceId=ds_id, ResourceType="DataSource", TagKeys=["Team", "flag", "absent"])
    assert tags_of(ml, ds_id, "DataSource") == {"team": "risk"}


def test_limit_of_fifty(ml):
    ds_id = new_datasource(ml)
    ml.add_tags(ResourceId=ds_id, ResourceType="DataSource",
                Tags=[{"Key": f"k{i}", "Value": str(i)} for i in range(50)])
    with pytest.raises(ClientError) as excinfo:
        ml.add_tags(ResourceId=ds_id, ResourceType="DataSource", Tags=[{"Key": "one-more", "Value": "x"}])
    assert excinfo.value.response["Error"]["Code"] == "TagLimitExceededException"
    assert len(tags_of(ml, ds_id, "DataSource")) == 50
    # Overwriting an existing key does not count as a new tag.
    ml.add_tags(ResourceId=ds_id, ResourceType="DataSource", Tags=[{"Key": "k0", "Value": "new"}])


@pytest.mark.parametrize("tag, code", [
    ({"Key": "aws:owner", "Value": "x"}, "InvalidTagException"),
    ({"Key": "bad\u0001key", "Value": "x"}, "InvalidInputException"),
    ({"Key": "k" * 129, "Value": "x"}, "InvalidInputException"),
    ({"Key": "k", "Value": "v" * 257}, "InvalidInputException"),
])
def test_bad_tags(ml, tag, code):
    ds_id = new_datasource(ml)
    with pytest.raises(ClientError) as excinfo:
        ml.add_tags(ResourceId=ds_id, ResourceType="DataSource", Tags=[tag])
    assert excinfo.value.response["Error"]["Code"] == code
    assert tags_of(ml, ds_id, "DataSource") == {}


def test_unicode_letters_and_allowed_symbols(ml):
    ds_id = new_datasource(ml)
    ml.add_tags(ResourceId=ds_id, ResourceType="DataSource",
                Tags=[{"Key": "Größe café", "Value": "a_b.c:d/e=f+g-h@i 7"}])
    assert tags_of(ml, ds_id, "DataSource") == {"Größe café": "a_b.c:d/e=f+g-h@i 7"}


def test_tags_of_deleted_objects_cannot_change(ml):
    ds_id = new_datasource(ml)
    ml.delete_data_source(DataSourceId=ds_id)
    with pytest.raises(ClientError):
        ml.add_tags(ResourceId=ds_id, ResourceType="DataSource", Tags=[{"Key": "a", "Value": "b"}])


def test_tags_propagate_and_nearer_object_wins(ml, server):
    ds_id = new_datasource(ml)
    ml.add_tags(ResourceId=ds_id, ResourceType="DataSource",
                Tags=[{"Key": "project", "Value": "churn"}, {"Key": "owner", "Value": "data-team"}])
    model_id = unique("ml")
    ml.create_ml_model(MLModelId=model_id, MLModelType="BINARY", TrainingDataSourceId=ds_id)
    assert tags_of(ml, model_id, "MLModel") == {"project": "churn", "owner": "data-team"}
    ml.add_tags(ResourceId=model_id, ResourceType="MLModel", Tags=[{"Key": "owner", "Value": "ml-team"}])
    ev_id, bp_id = unique("ev"), unique("bp")
    ml.create_evaluation(EvaluationId=ev_id, MLModelId=model_id, EvaluationDataSourceId=ds_id)
    ml.create_batch_prediction(BatchPredictionId=bp_id, MLModelId=model_id, BatchPredictionDataSourceId=ds_id,
                               OutputUri="s3://bucket/out/")
    for resource_id, kind in ((ev_id, "Evaluation"), (bp_id, "BatchPrediction")):
        assert tags_of(ml, resource_id, kind) == {"project": "churn", "owner": "ml-team"}
    # Later changes to the source do not rewrite what was copied.
    ml.add_tags(ResourceId=ds_id, ResourceType="DataSource", Tags=[{"Key": "project", "Value": "other"}])
    assert tags_of(ml, model_id, "MLModel")["project"] == "churn"


def test_resource_type_scopes_ids(ml):
    ds_id = new_datasource(ml)
    with pytest.raises(ClientError) as excinfo:
        ml.describe_tags(ResourceId=ds_id, ResourceType="MLModel")
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
