"""The error a test gets when it uses the mock in a way that cannot work."""


class MockMisuseError(RuntimeError):
    """Raised by `mock_machinelearning` (or by a boto3 call it answers) when
    the test itself must change; the message says how."""
