// Drives a Treadle server with the AWS SDK for JavaScript v3 and prints a
// JSON summary on stdout for tests/test_js_sdk.py to check.
//
// Environment: TREADLE_ENDPOINT (server URL), AWS_REGION, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, TREADLE_PREFIX (makes IDs and names unique).
import {
  AddTagsCommand,
  CreateDataSourceFromS3Command,
  CreateMLModelCommand,
  DescribeDataSourcesCommand,
  DescribeTagsCommand,
  GetDataSourceCommand,
  GetMLModelCommand,
  MachineLearningClient,
  PredictCommand,
} from "@aws-sdk/client-machine-learning";

const env = process.env;
const endpoint = env.TREADLE_ENDPOINT;
const prefix = env.TREADLE_PREFIX;
const client = new MachineLearningClient({
  endpoint,
  region: env.AWS_REGION,
  credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
  maxAttempts: 1,
});

const schema = {
  version: "1.0",
  targetAttributeName: "y",
  dataFormat: "CSV",
  dataFileContainsHeader: true,
  attributes: [
    { attributeName: "x", attributeType: "NUMERIC" },
    { attributeName: "y", attributeType: "BINARY" },
  ],
};

// A timestamp as the SDK parsed it: it must be a Date.
const when = (value) => ({
  isDate: value instanceof Date,
  epochMs: value instanceof Date ? value.getTime() : null,
});

async function failure(command) {
  try {
    const output = await client.send(command);
    return { succeeded: true, output };
  } catch (error) {
    return {
      succeeded: false,
      name: error.name,
      fault: error.$fault,
      httpStatusCode: error.$metadata?.httpStatusCode,
      message: error.message,
    };
  }
}

const dsId = `${prefix}-ds`;
const mlId = `${prefix}-ml`;
const dsName = `${prefix} datasource`;
const mlName = `${prefix} model`;
const summary = { dsId, mlId, dsName, mlName };

summary.createDataSource = await client.send(new CreateDataSourceFromS3Command({
  DataSourceId: dsId,
  DataSourceName: dsName,
  DataSpec: { DataLocationS3: "s3://treadle-js-test/data.csv", DataSchema: JSON.stringify(schema) },
  ComputeStatistics: true,
}));
delete summary.createDataSource.$metadata;

summary.createModel = await client.send(new CreateMLModelCommand({
  MLModelId: mlId,
  MLModelName: mlName,
  MLModelType: "BINARY",
  TrainingDataSourceId: dsId,
  Parameters: { "sgd.maxPasses": "3" },
}));
delete summary.createModel.$metadata;

const described = await client.send(new DescribeDataSourcesCommand({
  FilterVariable: "Name",
  EQ: dsName,
  Limit: 10,
}));
summary.describe = described.Results.map((ds) => ({
  DataSourceId: ds.DataSourceId,
  Name: ds.Name,
  Status: ds.Status,
  DataLocationS3: ds.DataLocationS3,
  CreatedAt: when(ds.CreatedAt),
}));
summary.describeNextToken = described.NextToken ?? null;

const ds = await client.send(new GetDataSourceCommand({ DataSourceId: dsId, Verbose: true }));
summary.dataSource = {
  DataSourceId: ds.DataSourceId,
  Name: ds.Name,
  Status: ds.Status,
  ComputeStatistics: ds.ComputeStatistics,
  DataLocationS3: ds.DataLocationS3,
  CreatedByIamUser: ds.CreatedByIamUser,
  DataSourceSchema: ds.DataSourceSchema,
  CreatedAt: when(ds.CreatedAt),
  LastUpdatedAt: when(ds.LastUpdatedAt),
  httpStatusCode: ds.$metadata.httpStatusCode,
};

const model = await client.send(new GetMLModelCommand({ MLModelId: mlId }));
summary.model = {
  MLModelId: model.MLModelId,
  Name: model.Name,
  Status: model.Status,
  MLModelType: model.MLModelType,
  TrainingDataSourceId: model.TrainingDataSourceId,
  TrainingParameters: model.TrainingParameters,
  EndpointStatus: model.EndpointInfo?.EndpointStatus,
  PeakRequestsPerSecond: model.EndpointInfo?.PeakRequestsPerSecond,
  CreatedAt: when(model.CreatedAt),
};

const tagged = await client.send(new AddTagsCommand({
  ResourceId: mlId,
  ResourceType: "MLModel",
  Tags: [{ Key: "owner", Value: "js-sdk" }, { Key: "purpose", Value: "smoke test" }],
}));
summary.addTags = { ResourceId: tagged.ResourceId, ResourceType: tagged.ResourceType };
const tags = await client.send(new DescribeTagsCommand({ ResourceId: mlId, ResourceType: "MLModel" }));
summary.tags = Object.fromEntries(tags.Tags.map((tag) => [tag.Key, tag.Value ?? null]));

// No endpoint can be READY (a model cannot complete yet).
summary.predict = await failure(new PredictCommand({
  MLModelId: mlId,
  Record: { x: "1.5" },
  PredictEndpoint: endpoint,
}));
summary.unknownModel = await failure(new GetMLModelCommand({ MLModelId: `${prefix}-no-such-model` }));

process.stdout.write(JSON.stringify(summary) + "\n");
