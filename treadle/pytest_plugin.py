"""The pytest plugin installed with Treadle (entry point `pytest11`): the
`treadle_mock` fixture and its marker.

pytest imports this module in every session of every project where Treadle
is installed, so it imports nothing but pytest; the mock is imported by
the first test that uses the fixture.
"""
from __future__ import annotations

import pytest

MARKER = "treadle_mock"


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", f'{MARKER}(jobs="background", allow_local_path=()): options of the treadle_mock fixture')


@pytest.fixture
def treadle_mock(request):
    """An active `treadle.testing.mock_machinelearning` for the test: every
    botocore machinelearning client is answered by an in-process Treadle,
    empty at the start. Options come from the test's
    `@pytest.mark.treadle_mock(jobs="eager", allow_local_path=[...])`."""
    from treadle.testing import mock_machinelearning

    marker = request.node.get_closest_marker(MARKER)
    options = dict(marker.kwargs) if marker else {}
    with mock_machinelearning(**options) as mock:
        yield mock
