// The new-model form: custom settings shown only when chosen, the model
// type and suggested recipe following the datasource, and the recipe
// checked on demand by the server's own parser, its error placed in the text.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("model-new");
  if (!form) return;
  const recipe = document.getElementById("recipe");
  const custom = document.getElementById("custom");
  const problemBox = document.getElementById("recipe-problem");
  const okLine = document.getElementById("recipe-ok");
  const nameInput = document.getElementById("model-name");
  let recipeEdited = false;
  let nameEdited = false;
  recipe.addEventListener("input", () => { recipeEdited = true; okLine.hidden = true; });
  nameInput.addEventListener("input", () => { nameEdited = true; });

  const flow = () => form.querySelector("input[name=flow]:checked");
  const modelType = () => (form.querySelector("input[name=model_type]:checked") || {}).value || "";
  const showCustom = () => { custom.hidden = !flow() || flow().value !== "custom"; };
  form.querySelectorAll("input[name=flow]").forEach((radio) => radio.addEventListener("change", showCustom));
  showCustom();

  // The line and column a problem names, selected in the editor.
  const select = (offset) => {
    if (offset === null || offset === undefined || offset === "") return;
    const at = Number(offset);
    recipe.focus();
    recipe.setSelectionRange(at, Math.min(at + 1, recipe.value.length));
    const line = recipe.value.slice(0, at).split("\n").length;
    const height = parseFloat(window.getComputedStyle(recipe).lineHeight) || 18;
    recipe.scrollTop = Math.max(0, (line - 3) * height);
  };

  const showProblem = (problem) => {
    problemBox.hidden = !problem;
    if (!problem) return;
    problemBox.querySelector(".message").textContent = problem.message;
    const where = problemBox.querySelector(".where");
    const excerpt = problemBox.querySelector(".excerpt");
    where.hidden = excerpt.hidden = !problem.line;
    if (problem.line) {
      where.querySelector(".line").textContent = String(problem.line);
      where.querySelector(".column").textContent = String(problem.column);
      excerpt.textContent = problem.excerpt + "\n" + " ".repeat(Math.max(0, problem.column - 1)) + "^";
      select(problem.offset);
    }
  };
  if (!problemBox.hidden) select(problemBox.dataset.offset);

  const csrf = form.querySelector("input[name=csrf]").value;
  document.getElementById("check-recipe").addEventListener("click", async () => {
    okLine.hidden = true;
    const body = new URLSearchParams({csrf, recipe: recipe.value, datasource: form.datasource.value,
                                      model_type: modelType()});
    try {
      const response = await fetch(form.dataset.checkUrl, {method: "POST", body, credentials: "same-origin",
                                                           headers: {"Accept": "application/json"}});
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(answer.error || `The check was refused (${response.status}); reload the page and try again`);
      showProblem(answer.problem);
      okLine.textContent = answer.checked_against_schema ? "The recipe is valid for this datasource."
        : "The recipe's syntax is valid; its variables are checked once the datasource's schema is known.";
      okLine.hidden = !answer.ok;
    } catch (error) {
      showProblem({message: String(error.message || error)});
    }
  });

  // A new datasource or model type: its suggestion, unless the person
  // already changed what it would replace.
  const follow = async (withType) => {
    const query = new URLSearchParams({datasource: form.datasource.value});
    if (withType) query.set("model_type", modelType());
    try {
      const response = await fetch(form.dataset.suggestionUrl + "?" + query, {credentials: "same-origin"});
      if (!response.ok) return;
      const facts = await response.json();
      if (!withType) {
        const radio = form.querySelector(`input[name=model_type][value="${facts.model_type}"]`);
        if (radio) radio.checked = true;
      }
      if (!recipeEdited) { recipe.value = facts.recipe; showProblem(null); okLine.hidden = true; }
      if (!nameEdited) nameInput.value = facts.name;
      document.getElementById("target-line").hidden = !facts.target;
      document.getElementById("target-name").textContent = facts.target || "";
      document.getElementById("target-type").textContent = facts.target_type || "";
    } catch (error) { /* the form still works with what it shows */ }
  };
  form.datasource.addEventListener("change", () => follow(false));
  form.querySelectorAll("input[name=model_type]").forEach((radio) => radio.addEventListener("change", () => follow(true)));
});
