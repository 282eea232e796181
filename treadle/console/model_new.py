"""Creating an ML model from the console, as Amazon ML's console did.

The default flow splits the chosen datasource 70/30 (sequentially) into
two new datasources, trains on the 70% with the suggested recipe and the
console's training parameters, and evaluates on the 30%
(docs/behaviour.md, "Console defaults"). The custom flow takes a recipe
and every training parameter, and may train on all of the datasource.
Everything is created through the API's own operations.
"""
from __future__ import annotations

import json
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ..api.parameters import BOTH_REGULARIZATIONS, PARAMETERS
from ..data.schema import SchemaError, parse_schema
from ..learning import MODEL_TYPES
from ..learning.suggested import suggested_recipe
from ..protocol import errors
from . import choices, recipes
from .app import Console, FormError, form_of
from .kinds import KINDS, enum
from .sessions import Session

log = logging.getLogger("treadle.console")
# docs/behaviour.md, "Console defaults".
CONSOLE_PARAMETERS = {"sgd.maxMLModelSizeInBytes": "104857600", "sgd.shuffleType": "auto",
                      "sgd.l2RegularizationAmount": "1e-6", "sgd.maxPasses": "10"}
SPLIT_AT = 70
LABELS = {
    "sgd.maxMLModelSizeInBytes": "Maximum model size (bytes)",
    "sgd.maxPasses": "Maximum passes over the data",
    "sgd.shuffleType": "Shuffle the training data",
    "sgd.l1RegularizationAmount": "L1 regularization amount",
    "sgd.l2RegularizationAmount": "L2 regularization amount",
}
# Before a datasource's schema is known (it is being inferred), the
# editor starts from the suggested recipe's shape over the predefined groups.
FALLBACK_RECIPE = json.dumps({"groups": {}, "assignments": {}, "outputs": [
    "ALL_BINARY", "ALL_CATEGORICAL", "quantile_bin(ALL_NUMERIC,10)", "lowercase(no_punct(ALL_TEXT))"]}, indent=2)


def _field(key: str) -> str:
    return "param." + key


def _parameter_fields(values: dict) -> list[dict]:
    """Every training parameter with its range and the API's default, from
    the API's own list of them."""
    fields = []
    for parameter in PARAMETERS:
        if parameter.kind == "integer":
            accepts = f"A whole number from {parameter.low:,} to {parameter.high:,}"
        elif parameter.kind == "amount":
            accepts = "A number of 0 or more (0: none); L1 and L2 cannot both be set"
        else:
            accepts = "One of " + ", ".join(parameter.choices)
        fields.append({"key": parameter.key, "name": _field(parameter.key), "label": LABELS[parameter.key],
                       "kind": parameter.kind, "choices": parameter.choices, "low": parameter.low,
                       "high": parameter.high, "accepts": accepts, "api_default": parameter.default,
                       "value": values.get(_field(parameter.key),
                                           CONSOLE_PARAMETERS.get(parameter.key, parameter.default))})
    return fields


# -- what a datasource implies -------------------------------------------------
async def datasource_facts(console: Console, session: Session, datasource_id: str, model_type: str | None,
                           with_recipe: bool = True) -> dict:
    """A datasource's schema and target, the model type its target calls
    for, and (`with_recipe`) the recipe suggested for it."""
    found = await console.call(session, "GetDataSource", {"DataSourceId": datasource_id, "Verbose": True})
    facts = {"datasource": found, "schema": found.get("DataSourceSchema"), "target": None, "target_type": None}
    if facts["schema"]:
        try:
            schema = parse_schema(facts["schema"])
        except SchemaError:
            schema = None
        if schema is not None and schema.target:
            facts["target"], facts["target_type"] = schema.target, schema.type_of(schema.target)
    facts["model_type"] = model_type if model_type in enum("MLModelType") else _type_for(facts["target_type"])
    if with_recipe:
        facts["recipe"] = await _suggested(console, session, facts)
    return facts


def _type_for(target_type: str | None) -> str:
    """The model type a target's type calls for, as Amazon ML's console
    chose it: the type whose first accepted target type it is."""
    for name, model_type in MODEL_TYPES.items():
        if model_type.target_types[0] == target_type:
            return name
    return "BINARY"


async def _suggested(console: Console, session: Session, facts: dict) -> str:
    if not facts["schema"] or not facts["target"]:
        return FALLBACK_RECIPE
    entity = await run_in_threadpool(console.services.entities.get, session.account, "DataSource",
                                     facts["datasource"]["DataSourceId"])
    try:
        statistics = {}
        if entity is not None and entity.document.get("_statistics"):
            statistics = json.loads(await run_in_threadpool(console.services.artifacts.get,
                                                            entity.document["_statistics"]))
        return await run_in_threadpool(suggested_recipe, parse_schema(facts["schema"]),
                                       MODEL_TYPES[facts["model_type"]], statistics)
    except Exception:
        # Statistics that cannot be read or a schema the suggestion cannot
        # use: the editor still opens, with the default.
        log.exception("no suggested recipe for datasource %s", facts["datasource"]["DataSourceId"])
        return FALLBACK_RECIPE


# -- the form ------------------------------------------------------------------
async def form(console: Console, request: Request, session: Session) -> Response:
    chosen = request.query_params.get("datasource")
    return await _render(console, request, session, {"datasource": chosen} if chosen else {}, {})


async def _render(console: Console, request: Request, session: Session, values: dict, problems: dict,
                  status: int = 200, recipe_problem: recipes.RecipeProblem | None = None) -> Response:
    sources = await choices.datasources(console, session, with_statistics=True)
    chosen = values.get("datasource") or (sources[0]["DataSourceId"] if sources else "")
    facts = None
    if chosen:
        try:
            facts = await datasource_facts(console, session, chosen, values.get("model_type"))
        except (errors.ResourceNotFoundException, errors.InvalidInputException):
            problems = {"datasource": f"No datasource {chosen} in this account", **problems}
    values = {"flow": "default", "split": "on", "model_id": choices.suggest_id("ml"),
              "model_type": facts["model_type"] if facts else "BINARY",
              "recipe": facts["recipe"] if facts else FALLBACK_RECIPE, **values, "datasource": chosen}
    if "name" not in values:
        base = (facts["datasource"].get("Name") or chosen) if facts else ""
        values["name"] = f"ML model: {base}" if base else ""
    options = [{"id": ds["DataSourceId"], "label": choices.label(ds, "DataSourceId"), "status": ds["Status"]}
               for ds in sources]
    if facts and all(option["id"] != chosen for option in options):
        found = facts["datasource"]
        options.insert(0, {"id": chosen, "label": choices.label(found, "DataSourceId"), "status": found["Status"]})
    return console.render(request, session, "model_new.html", status=status, title="Create an ML model",
                          values=values, errors=problems, datasources=options, facts=facts,
                          model_types=enum("MLModelType"), parameters=_parameter_fields(values),
                          console_parameters=CONSOLE_PARAMETERS, recipe_problem=recipe_problem, split_at=SPLIT_AT)


async def suggestion(console: Console, request: Request, session: Session) -> Response:
    """What the form shows for a datasource it switches to: the model type
    its target calls for and the suggested recipe."""
    try:
        facts = await datasource_facts(console, session, request.query_params.get("datasource", ""),
                                       request.query_params.get("model_type"))
    except (errors.ResourceNotFoundException, errors.InvalidInputException) as error:
        return JSONResponse({"error": error.message}, status_code=404)
    name = facts["datasource"].get("Name") or facts["datasource"]["DataSourceId"]
    return JSONResponse({"model_type": facts["model_type"], "recipe": facts["recipe"], "target": facts["target"],
                         "target_type": facts["target_type"], "name": f"ML model: {name}"})


async def check_recipe(console: Console, request: Request, session: Session) -> Response:
    """The recipe editor's check, run by Treadle's own parser against the
    chosen datasource's schema (only the syntax while it is unknown)."""
    given = form_of(request)
    schema = None
    if given.get("datasource"):
        try:
            facts = await datasource_facts(console, session, given["datasource"], None, with_recipe=False)
            schema = facts["schema"]
        except (errors.ResourceNotFoundException, errors.InvalidInputException):
            pass
    problem = await run_in_threadpool(recipes.check, given.get("recipe", ""), schema)
    return JSONResponse({"ok": problem is None, "problem": problem.to_json() if problem else None,
                         "checked_against_schema": schema is not None})


# -- creating ------------------------------------------------------------------
class _Invalid(Exception):
    def __init__(self, problems: dict, recipe_problem: recipes.RecipeProblem | None = None):
        self.problems = problems
        self.recipe_problem = recipe_problem


def _parameters(values: dict) -> dict:
    """The custom flow's training parameters, each checked by the API's own
    rule so that its error shows next to its field."""
    chosen, problems = {}, {}
    for parameter in PARAMETERS:
        try:
            chosen[parameter.key] = parameter.normalize(values.get(_field(parameter.key), parameter.default))
        except errors.InvalidInputException as error:
            problems[_field(parameter.key)] = error.message
    if not problems and all(float(chosen[k]) > 0 for k in ("sgd.l1RegularizationAmount",
                                                           "sgd.l2RegularizationAmount")):
        problems[_field("sgd.l2RegularizationAmount")] = BOTH_REGULARIZATIONS
    if problems:
        raise _Invalid(problems)
    return chosen


def _split_sources(facts: dict) -> tuple[str, str]:
    """The location and schema the two split datasources are made from."""
    found = facts["datasource"]
    if not found.get("DataLocationS3"):
        raise _Invalid({"datasource": "This datasource's data is not staged yet; wait until it is COMPLETED, "
                                      "or choose custom settings without the split"})
    if found.get("DataRearrangement"):
        raise _Invalid({"datasource": "This datasource already selects part of its data (DataRearrangement); "
                                      "choose custom settings without the split, or another datasource"})
    if not facts["schema"]:
        raise _Invalid({"datasource": "This datasource's schema is still being inferred; wait until it is "
                                      "COMPLETED to split it"})
    return found["DataLocationS3"], facts["schema"]


async def create(console: Console, request: Request, session: Session) -> Response:
    values = dict(form_of(request))
    values.setdefault("split", "off")  # an unchecked box sends nothing
    try:
        model_id = await _create(console, session, values)
    except _Invalid as invalid:
        return await _render(console, request, session, values, invalid.problems, status=400,
                             recipe_problem=invalid.recipe_problem)
    return RedirectResponse(KINDS["MLModel"].url(model_id), status_code=303)


async def _create(console: Console, session: Session, values: dict) -> str:
    custom = values.get("flow") == "custom"
    model_type = values.get("model_type", "")
    if model_type not in enum("MLModelType"):
        raise _Invalid({"model_type": "Choose a model type"})
    if not values.get("datasource"):
        raise _Invalid({"datasource": "Choose a datasource"})
    try:
        facts = await datasource_facts(console, session, values["datasource"], model_type, with_recipe=False)
    except (errors.ResourceNotFoundException, errors.InvalidInputException):
        raise _Invalid({"datasource": f"No datasource {values['datasource']} in this account"})
    model_id = values.get("model_id", "").strip()
    try:
        await choices.check_new_id(console, session, "MLModel", model_id, "model_id")
    except FormError as error:
        raise _Invalid({error.field: error.message})
    if facts["schema"]:
        try:
            MODEL_TYPES[model_type].check_target(parse_schema(facts["schema"]), errors.InvalidInputException)
        except errors.InvalidInputException as error:
            raise _Invalid({"model_type": error.message})
    # An empty recipe is the suggested one, as for the API.
    recipe = values.get("recipe", "") if custom and values.get("recipe", "").strip() else None
    problem = await run_in_threadpool(recipes.check, recipe, facts["schema"]) if recipe is not None else None
    try:
        parameters = _parameters(values) if custom else dict(CONSOLE_PARAMETERS)
    except _Invalid as invalid:  # shown with the recipe's problem, if any
        raise _Invalid({**invalid.problems, **({"recipe": problem.message} if problem else {})}, problem)
    if problem is not None:
        raise _Invalid({"recipe": problem.message}, problem)
    split = not custom or values.get("split") == "on"
    name = values.get("name", "").strip() or f"ML model: {model_id}"
    if split:
        training_id, evaluation_source = await _split(console, session, facts)
    else:
        training_id, evaluation_source = facts["datasource"]["DataSourceId"], None
    params = {"MLModelId": model_id, "MLModelName": name[:1024], "MLModelType": model_type,
              "TrainingDataSourceId": training_id, "Parameters": parameters}
    if recipe:
        params["Recipe"] = recipe
    try:
        await console.call(session, "CreateMLModel", params)
    except errors.InvalidInputException as error:
        if split:  # the two datasources made for this model would be left behind
            for made in (training_id, evaluation_source):
                await console.call(session, "DeleteDataSource", {"DataSourceId": made})
        raise _invalid_model(error.message, recipe)
    if evaluation_source:
        await console.call(session, "CreateEvaluation", {
            "EvaluationId": choices.suggest_id("ev"), "EvaluationName": f"Evaluation: {name}"[:1024],
            "MLModelId": model_id, "EvaluationDataSourceId": evaluation_source})
    return model_id


def _invalid_model(message: str, recipe: str | None) -> _Invalid:
    """CreateMLModel's refusal, shown next to the field it is about."""
    if message.startswith("Recipe") and recipe is not None:
        problem = recipes.locate(recipe, message)
        return _Invalid({"recipe": message}, problem)
    for parameter in PARAMETERS:
        if parameter.key in message:
            return _Invalid({_field(parameter.key): message})
    if "MLModelName" in message:
        return _Invalid({"name": message})
    if "MLModelId" in message:
        return _Invalid({"model_id": message})
    return _Invalid({"model_type" if "target" in message else "datasource": message})


async def _split(console: Console, session: Session, facts: dict) -> tuple[str, str]:
    """The two datasources of the 70/30 split, as Amazon ML's console made
    them: the chosen one's location and schema, a sequential split each."""
    location, schema = _split_sources(facts)
    original = facts["datasource"]["DataSourceId"]
    base = facts["datasource"].get("Name") or original
    # The splits carry the datasource's tags, so they still reach the model
    # and the evaluation made from them (docs/behaviour.md, "Tags").
    tags = (await console.call(session, "DescribeTags", {"ResourceId": original,
                                                         "ResourceType": "DataSource"}))["Tags"]
    made = []
    for begin, end in ((0, SPLIT_AT), (SPLIT_AT, 100)):
        suffix = f" [percentBegin={begin}, percentEnd={end}, strategy=sequential]"
        datasource_id = choices.suggest_id("ds")
        await console.call(session, "CreateDataSourceFromS3", {
            "DataSourceId": datasource_id, "DataSourceName": base[:1024 - len(suffix)] + suffix,
            "ComputeStatistics": True,
            "DataSpec": {"DataLocationS3": location, "DataSchema": schema, "DataRearrangement": json.dumps(
                {"splitting": {"percentBegin": begin, "percentEnd": end}})}})
        if tags:
            await console.call(session, "AddTags", {"ResourceId": datasource_id, "ResourceType": "DataSource",
                                                    "Tags": tags})
        made.append(datasource_id)
    return made[0], made[1]
