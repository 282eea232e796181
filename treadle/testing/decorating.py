"""`@mock_machinelearning` on a function or a test class.

A function runs inside one activation. In a class, so that what setUp (or
setup_method) creates is there for the test, one activation spans each
test with its set-up and tear-down: a unittest.TestCase's `run`, and
pytest's setup_method to teardown_method in other classes.
"""
from __future__ import annotations

import functools
import inspect
import unittest


def decorate(mock, target):
    if inspect.isclass(target):
        if issubclass(target, unittest.TestCase):
            target.run = _around(mock, target.run)
        else:
            _around_methods(mock, target)
        return target
    if not callable(target):
        raise TypeError(f"mock_machinelearning decorates functions and classes, not {target!r}")
    return _around(mock, target)


def _around(mock, func):
    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def run_async(*args, **kwargs):
            with mock:
                return await func(*args, **kwargs)
        return run_async

    @functools.wraps(func)
    def run(*args, **kwargs):
        with mock:
            return func(*args, **kwargs)
    return run


def _call(method, instance, test):
    # pytest passes the test method to setup_method and teardown_method
    # when they take it.
    if method is None:
        return
    if method.__code__.co_argcount > 1:
        method(instance, test)
    else:
        method(instance)


def _around_methods(mock, klass) -> None:
    setup = getattr(klass, "setup_method", None)
    teardown = getattr(klass, "teardown_method", None)

    def setup_method(self, method):
        mock.start()
        try:
            _call(setup, self, method)
        except BaseException:
            # pytest runs no tear-down after a failed set-up.
            mock.stop()
            raise

    def teardown_method(self, method):
        try:
            _call(teardown, self, method)
        finally:
            mock.stop()

    klass.setup_method = setup_method
    klass.teardown_method = teardown_method
