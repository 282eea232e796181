"""Treadle in a test suite.

`mock_machinelearning` answers every botocore `machinelearning` client of
the process with an in-process Treadle (no port, no network), as moto's
`mock_aws` does for the services it implements; `server()` runs a real
Treadle HTTP server in a background thread for tests in other languages.
The pytest fixture `treadle_mock` (registered on installation) activates
the mock for one test.

Importing this module registers the botocore hook, which does nothing
while no mock is active: a client made from now on is covered whether it
was made before the mock started or inside it.
"""
from . import hook
from .errors import MockMisuseError
from .mock import MachineLearningMock, mock_machinelearning
from .threaded import ThreadedServer, server

hook.install()

__all__ = ["MachineLearningMock", "MockMisuseError", "ThreadedServer", "mock_machinelearning", "server"]
