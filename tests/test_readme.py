"""The README's quick start and first run, run as written: its install and
serve command in a fresh virtual environment with an empty home folder, then
its shell and Python blocks against that server."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from support import forget_old_builds

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PORT = 8686  # the README's own address


def _blocks(section: str) -> list[tuple[str, str]]:
    """(language, code) of the fenced blocks under a `## ` section."""
    text = README.split(f"\n## {section}", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", text, re.S)


def _port_free() -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", PORT)) != 0


@pytest.fixture(scope="module")
def readme_server(tmp_path_factory):
    (language, serve), (_, tests) = _blocks("Quick start")
    assert language == "sh" and "treadle serve" in serve and "pytest" in tests
    if not _port_free():
        pytest.fail(f"port {PORT}, where the README's server listens, is in use: stop what holds it")
    forget_old_builds(ROOT)
    home = tmp_path_factory.mktemp("home")
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TREADLE_"))},
           "HOME": str(home), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    log = open(home / "serve.log", "wb")
    process = subprocess.Popen(["bash", "-c", serve], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.time() + 600  # the install comes first
    while time.time() < deadline:
        assert process.poll() is None, (home / "serve.log").read_text()[-3000:]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        raise AssertionError("the README's server did not start")
    yield env, home
    os.killpg(process.pid, 15)
    process.wait(timeout=60)


def test_the_first_run_in_code_reaches_a_prediction(readme_server):
    env, home = readme_server
    blocks = _blocks("First run: from a CSV to a prediction")
    (lang, setup), (lang2, keys), (lang3, code) = blocks
    assert (lang, lang2, lang3) == ("sh", "sh", "python")
    done = subprocess.run(["bash", "-c", setup], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (home / "treadle-data" / "banking.csv").exists()
    script = f"set -e\n{keys}\nexec python - <<'README_PYTHON'\n{code}README_PYTHON\n"
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    auc = float(re.search(r"^AUC ([0-9.]+)$", done.stdout, re.M).group(1))
    assert 0.7 < auc <= 1.0, done.stdout
    assert "'predictedLabel': '1'" in done.stdout and "'Algorithm': 'SGD'" in done.stdout, done.stdout
