"""The evaluation page's cut-off slider in headless Chromium: moving it
updates the figures at once, and saving sets the model's ScoreThreshold."""
import numpy as np
import pytest

from test_console_models import binary, console, exact_scores, folder  # noqa: F401 (fixtures)
from test_learning import artifact

def signed_in_page(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{server.url}/console/signin")
    page.fill("input[name=access_key_id]", server.default_keys.access_key_id)
    page.fill("input[name=secret_access_key]", server.default_keys.secret_access_key)
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/console/objects")
    return page, problems


def test_slider_updates_figures_and_saves_the_threshold(browser, server, binary):  # noqa: F811
    page, problems = signed_in_page(browser, server)
    page.goto(f"{server.url}/console/evaluations/{binary['evaluation']}")
    page.wait_for_selector("#histogram-chart canvas")
    scores, labels = exact_scores(artifact(server, binary["model_id"]), binary["test"])
    truth = np.array(labels, dtype=int)
    scores = np.asarray(scores, dtype=np.float32).astype(np.float64)
    for cut in (0.62, 0.05, 0.9):
        # The figures change in the same task as the input event: no frame is waited for.
        shown = page.evaluate("""(cut) => {
            const slider = document.getElementById("cutoff-slider");
            slider.value = String(cut);
            slider.dispatchEvent(new Event("input", {bubbles: true}));
            const value = (name) => Number(document.querySelector(`[data-figure="${name}"]`).dataset.value);
            return {tp: value("tp"), fp: value("fp"), tn: value("tn"), fn: value("fn"),
                    recall: document.querySelector('[data-figure="recall"]').textContent,
                    cutoff: document.getElementById("cutoff").value};
        }""", cut)
        predicted = scores >= cut
        tp, fp = int((predicted & (truth == 1)).sum()), int((predicted & (truth == 0)).sum())
        fn, tn = int((truth == 1).sum()) - tp, int((truth == 0).sum()) - fp
        assert (shown["tp"], shown["fp"], shown["tn"], shown["fn"]) == (tp, fp, tn, fn)
        assert shown["recall"] == f"{tp / (tp + fn):.4f}" and float(shown["cutoff"]) == cut
    page.locator("#cutoff-slider").fill("0.62")
    page.click("#cutoff-form button")
    page.wait_for_url("**saved=1*")
    assert page.is_visible("#saved")
    ml = server.client()
    assert ml.get_ml_model(MLModelId=binary["model_id"])["ScoreThreshold"] == pytest.approx(0.62)
    assert page.input_value("#cutoff") == "0.62"
    assert problems == []  # nothing the Content-Security-Policy refused, no script error
    page.close()
