"""What a person meets first: the commands of the README's quick start."""
from __future__ import annotations

import subprocess
import sys

from support import Server


def test_eval_of_credentials_create_exports_to_child_processes(tmp_path):
    """`eval "$(treadle credentials create ...)"` must leave variables that a
    program started afterwards (boto3, the AWS CLI) sees."""
    script = (f'eval "$({sys.executable} -m treadle credentials create --user alice --data-dir {tmp_path})" && '
              f'{sys.executable} -c "import os; print(os.environ[\'AWS_ACCESS_KEY_ID\'], '
              f'len(os.environ[\'AWS_SECRET_ACCESS_KEY\']))"')
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    key_id, secret_length = done.stdout.split()
    assert key_id.startswith("AKIA") and secret_length == "40"


def test_start_up_logs_carry_no_library_chatter(tmp_path):
    server = Server("", tmp_path, None).start()
    try:
        log = server.log_text()
    finally:
        server.stop()
    assert "alembic" not in log and "non-transactional DDL" not in log, log
    assert "Uvicorn running on" in log
