// A model's page: the prediction form asks the server, which calls
// Predict through the model's endpoint, and shows the answer as text.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("predict-form");
  if (!form) return;
  const shown = document.getElementById("prediction");
  const problem = shown.querySelector(".problem");
  const answerBox = shown.querySelector(".answer");
  const field = (name) => shown.querySelector(`[data-field="${name}"]`);
  const part = (name) => shown.querySelector(`[data-when="${name}"]`);

  const showAnswer = (response) => {
    const prediction = response.Answer.Prediction;
    const details = prediction.details || {};
    part("label").hidden = !("predictedLabel" in prediction);
    part("value").hidden = !("predictedValue" in prediction);
    field("label").textContent = prediction.predictedLabel ?? "";
    field("value").textContent = prediction.predictedValue === undefined ? "" : String(prediction.predictedValue);
    field("type").textContent = details.PredictiveModelType || "";
    field("algorithm").textContent = details.Algorithm || "";
    const scores = prediction.predictedScores || {};
    const table = part("scores");
    const body = table.querySelector("tbody");
    body.replaceChildren();
    for (const [label, score] of Object.entries(scores)) {
      const row = body.insertRow();
      row.insertCell().textContent = label;
      const cell = row.insertCell();
      cell.className = "number mono";
      cell.textContent = String(score);
    }
    table.hidden = Object.keys(scores).length === 0;
    field("json").textContent = JSON.stringify(response.Answer, null, 2);
    answerBox.hidden = false;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    shown.hidden = false;
    problem.hidden = true;
    try {
      const response = await fetch(form.action, {
        method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin",
        headers: {"Accept": "application/json"}});
      // A refusal before the handler (an expired session, a stale form) is not JSON.
      const answer = await response.json().catch(() => ({error: `The server refused the request (${response.status}); reload the page and try again`}));
      if (!response.ok) {
        problem.textContent = answer.error || `The prediction failed (${response.status})`;
        problem.hidden = false;
        answerBox.hidden = true;
      } else {
        showAnswer(answer);
      }
    } catch (error) {
      problem.textContent = "The server could not be reached: " + (error.message || error);
      problem.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
});
