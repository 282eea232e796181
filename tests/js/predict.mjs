// Predict through the JavaScript SDK v3 for each model named in TREADLE_MODELS
// (a JSON list of {modelId, endpointUrl}); the client's own endpoint is a
// dead address, so the call only succeeds if the SDK routes Predict to
// PredictEndpoint. Prints one JSON line: the predictions in order.
import { MachineLearningClient, PredictCommand } from "@aws-sdk/client-machine-learning";

const client = new MachineLearningClient({
  region: process.env.AWS_REGION,
  endpoint: "http://127.0.0.1:9",
  maxAttempts: 1,
});
const record = JSON.parse(process.env.TREADLE_RECORD);
const results = [];
for (const { modelId, endpointUrl } of JSON.parse(process.env.TREADLE_MODELS)) {
  const out = await client.send(new PredictCommand({ MLModelId: modelId, Record: record, PredictEndpoint: endpointUrl }));
  results.push(out.Prediction);
}
console.log(JSON.stringify(results));
