"""The README's "Testing your code" examples, run as a project of one's own
would run them: Treadle installed (not this checkout) in a fresh virtual
environment, each Python block a test module in an empty folder with no
conftest, so the `treadle_mock` fixture can only come from the installed
entry point."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support import forget_old_builds

ROOT = Path(__file__).resolve().parent.parent
SECTION = "Testing your code"


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text().split(f"\n## {SECTION}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A virtual environment with Treadle installed from this checkout;
    the test tools (pytest, moto, the AWS CLI) come from the system's."""
    forget_old_builds(ROOT)
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    # As `pip install .` in the README's quick start, with the dependencies
    # already there.
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv


def test_the_examples_pass_as_tests_of_a_project(installed, tmp_path):
    blocks = python_blocks()
    assert len(blocks) == 3
    project = tmp_path / "project"
    project.mkdir()
    for number, code in enumerate(blocks, 1):
        (project / f"test_example_{number}.py").write_text(code)
    home = tmp_path / "home"
    home.mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TREADLE_", "PYTHON"))},
           "HOME": str(home), "PATH": f"{installed / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(installed)}
    done = subprocess.run([str(installed / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-W", "error::pytest.PytestUnknownMarkWarning", "."],
                          cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    assert "3 passed" in done.stdout, done.stdout
    # The tests ran against the installed Treadle, not this checkout.
    where = subprocess.run([str(installed / "bin" / "python"), "-c", "import treadle; print(treadle.__file__)"],
                           cwd=project, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(installed)), where
