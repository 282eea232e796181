"""Batch predictions in the console: creating one, its page (status,
counts, output location, manifest) and downloading its result files.

A download names a result by its place in the batch prediction's own
manifest, never by a path: only this account's COMPLETED batch prediction,
only the files its job wrote below its own result folder, read through
the same confined locations as every job."""
from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote, unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ..data import locations
from ..jobs.batch_prediction import manifest_location, result_prefix
from ..protocol import errors
from . import choices
from .app import Console, FormError, form_of
from .kinds import KINDS
from .sessions import Session

log = logging.getLogger("treadle.console")
KIND = KINDS["BatchPrediction"]


# -- creating ------------------------------------------------------------------
async def form(console: Console, request: Request, session: Session) -> Response:
    values = {key: request.query_params.get(key, "") for key in ("model", "datasource")}
    return await _render(console, request, session, values, {})


async def _render(console: Console, request: Request, session: Session, values: dict, problems: dict,
                  status: int = 200) -> Response:
    models = await choices.models(console, session)
    sources = await choices.datasources(console, session)
    values = {"prediction_id": choices.suggest_id("bp"), "name": "", "output": "", **values}
    return console.render(
        request, session, "batch_prediction_new.html", status=status, title="Create a batch prediction",
        values=values, errors=problems,
        models=[{"id": m["MLModelId"], "label": choices.label(m, "MLModelId"), "status": m["Status"],
                 "type": m.get("MLModelType", "")} for m in models],
        datasources=[{"id": d["DataSourceId"], "label": choices.label(d, "DataSourceId"), "status": d["Status"]}
                     for d in sources])


# Which field an error of CreateBatchPrediction is about, by the member it names.
_FIELDS = (("OutputUri", "output"), ("BatchPredictionDataSourceId", "datasource"), ("MLModelId", "model"),
           ("BatchPredictionName", "name"), ("BatchPredictionId", "prediction_id"))


async def create(console: Console, request: Request, session: Session) -> Response:
    values = dict(form_of(request))
    try:
        prediction_id = await _create(console, session, values)
    except FormError as error:
        return await _render(console, request, session, values, {error.field: error.message}, status=400)
    return RedirectResponse(KIND.url(prediction_id), status_code=303)


async def _create(console: Console, session: Session, values: dict) -> str:
    for field, what in (("model", "an ML model"), ("datasource", "a datasource"), ("output", "an output location")):
        if not values.get(field, "").strip():
            raise FormError(field, f"Choose {what}")
    prediction_id = values.get("prediction_id", "").strip()
    await choices.check_new_id(console, session, "BatchPrediction", prediction_id, "prediction_id")
    name = values.get("name", "").strip()
    if not name:
        try:
            model = await console.call(session, "GetMLModel", {"MLModelId": values["model"]})
        except (errors.ResourceNotFoundException, errors.InvalidInputException):
            raise FormError("model", f"No ML model {values['model']} in this account")
        name = f"Batch prediction: {model.get('Name') or values['model']}"
    try:
        await console.call(session, "CreateBatchPrediction", {
            "BatchPredictionId": prediction_id, "BatchPredictionName": name[:1024], "MLModelId": values["model"],
            "BatchPredictionDataSourceId": values["datasource"], "OutputUri": values["output"].strip()})
    except (errors.InvalidInputException, errors.ResourceNotFoundException) as error:
        field = next((f for member, f in _FIELDS if member in error.message), "output")
        raise FormError(field, error.message)
    return prediction_id


# -- the page --------------------------------------------------------------------
async def context(console: Console, session: Session, found: dict) -> dict:
    shown = {"manifest_uri": manifest_location(found["OutputUri"], found["BatchPredictionId"]),
             "results": [], "results_problem": None}
    if found["Status"] == "COMPLETED":
        try:
            shown["results"] = await run_in_threadpool(_results, console, found)
        except locations.LocationError as error:
            shown["results_problem"] = f"The results cannot be listed: {error}"
    return shown


def _results(console: Console, found: dict) -> list[dict]:
    """The manifest's entries (input file -> result file) this batch
    prediction's job wrote, in input order, numbered for downloading."""
    uri = manifest_location(found["OutputUri"], found["BatchPredictionId"])
    try:
        manifest = json.loads(locations.read_text(uri, console.settings.confinement))
    except ValueError:
        raise locations.LocationError(f"{uri} is not a manifest")
    except OSError:
        raise locations.LocationError(f"{uri} cannot be read")
    if not isinstance(manifest, dict):
        raise locations.LocationError(f"{uri} is not a manifest")
    prefix = result_prefix(found["OutputUri"], found["BatchPredictionId"])
    results = []
    for source, result in sorted(manifest.items()):
        if isinstance(result, str) and _own_result(result, prefix):
            results.append({"index": len(results), "input": source, "result": result,
                            "file": result.rsplit("/", 1)[-1]})
    return results


def _own_result(uri: str, prefix: str) -> bool:
    """A result file of this batch prediction: directly in its result
    folder, named with its ID (a manifest is read from a location others
    may write to, so what it lists is not trusted further than that)."""
    if not uri.startswith(prefix) or not uri.endswith(".gz"):
        return False
    name = unquote(uri[len(prefix):]) if uri.startswith("file://") else uri[len(prefix):]
    return "/" not in name and "\\" not in name and "\x00" not in name


# -- downloading -------------------------------------------------------------------
def _opened(console: Console, result: dict) -> tuple[int, object]:
    """The result file's size and its bytes in pieces; LocationError when it
    is not one readable file."""
    access = console.settings.confinement
    uri = result["result"]
    if uri.startswith("file://"):
        path = locations.local_path(uri, access)
        if not path.is_file():
            raise locations.LocationError(f"{uri}: no such file")
        file = locations.DataFile(uri, path.stat().st_size)
    else:
        files = locations.list_data_files(uri, access)
        if len(files) != 1 or files[0].uri != uri:
            raise locations.LocationError(f"{uri}: no such object")
        file = files[0]
    return file.size, locations.byte_source(file, access).chunks


async def download(console: Console, request: Request, session: Session) -> Response:
    prediction_id = request.path_params["entity_id"]
    found = await console.call(session, "GetBatchPrediction", {"BatchPredictionId": prediction_id})
    if found["Status"] != "COMPLETED":
        return _refused(console, request, session, 409, f"Batch prediction {prediction_id} is {found['Status']}; "
                                                        "its results can be downloaded once it is COMPLETED.")
    index = request.path_params["index"]
    try:
        results = await run_in_threadpool(_results, console, found)
        result = results[index]
        size, pieces = await run_in_threadpool(_opened, console, result)
    except IndexError:
        return _refused(console, request, session, 404, f"Batch prediction {prediction_id} has no result {index}.")
    except (locations.LocationError, OSError) as error:
        message = str(error) if isinstance(error, locations.LocationError) else "the file cannot be read"
        return _refused(console, request, session, 404, f"The result cannot be downloaded: {message}")
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", result["file"])
    return StreamingResponse(pieces, media_type="application/gzip", headers={
        "content-length": str(size), "cache-control": "no-store",
        "content-disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(unquote(result['file']))}"})


def _refused(console: Console, request: Request, session: Session, status: int, message: str) -> Response:
    return console.render(request, session, "error.html", status=status, title="No download", message=message)


def routes(signed_in, object_action) -> list[Route]:
    return [
        Route("/new/batch-prediction", signed_in(form), methods=["GET"]),
        Route("/new/batch-prediction", signed_in(create), methods=["POST"]),
        Route("/batch-predictions/{entity_id}/results/{index:int}", signed_in(download), methods=["GET"]),
    ]
