# libsandbox - a tiny TAP runner for unittest
#
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run the unittest cases of a module and print TAP for automake's tap-driver.

The plan line ("1..N") comes first; every test prints "ok N - name" or
"not ok N - name", followed by its traceback as "# " diagnostic lines.
A test decorated with todo() is a known bug: it prints "not ok ... # TODO"
(an expected failure) and, once the bug is fixed, "ok ... # TODO", which
tap-driver counts as an unexpected pass, so that the marker gets removed.
A test decorated with isolated() runs in a child process (this script run
again with the test's name), so that a crash fails that test only.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import unittest
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO, TypeVar

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType]
_OptExcInfo = _ExcInfo | tuple[None, None, None]
_F = TypeVar("_F", bound=Callable[..., Any])


def todo(reason: str) -> Callable[[_F], _F]:
    """Mark a test as failing because of a known bug described by reason."""

    def decorate(func: _F) -> _F:
        func.__tap_todo__ = reason  # type: ignore[attr-defined]
        return unittest.expectedFailure(func)

    return decorate


# Set in the environment of the child that runs one isolated test.
_CHILD_ENV = "TAPTEST_ISOLATED"
ISOLATED_TIMEOUT_S = 120


def isolated(func: _F) -> _F:
    """Run the test in a child process; it fails if the child does not exit 0.

    The child runs with G_DEBUG=fatal-criticals, so a GLib critical warning
    fails the test too, and with a TMPDIR of its own, removed afterwards.
    """

    @functools.wraps(func)
    def wrapper(self: unittest.TestCase, *args: Any, **kwargs: Any) -> Any:
        name = f"{type(self).__name__}.{func.__name__}"
        if os.environ.get(_CHILD_ENV) == name:
            return func(self, *args, **kwargs)
        env = dict(os.environ)
        env[_CHILD_ENV] = name
        debug = [flag for flag in env.get("G_DEBUG", "").split(",") if flag]
        env["G_DEBUG"] = ",".join([*debug, "fatal-criticals"])
        script = os.path.abspath(sys.modules["__main__"].__file__ or "")
        # A child that crashes cleans nothing up: give it its own TMPDIR.
        with tempfile.TemporaryDirectory(prefix="taptest-") as tmpdir:
            env["TMPDIR"] = tmpdir
            child = subprocess.run(
                [sys.executable, script, name],
                env=env,
                capture_output=True,
                text=True,
                timeout=ISOLATED_TIMEOUT_S,
                check=False,
            )
        if child.returncode != 0:
            self.fail(
                f"{name} in a child process exited with {child.returncode}\n"
                f"{child.stdout}{child.stderr}"
            )
        return None

    return wrapper  # type: ignore[return-value]


class TapResult(unittest.TestResult):
    """A TestResult that prints one TAP line per test."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.number = 0

    @staticmethod
    def _name(test: unittest.TestCase) -> str:
        # setUpClass errors come with an _ErrorHolder, which has no method.
        method = getattr(test, "_testMethodName", None)
        return f"{type(test).__name__}.{method}" if method else str(test)

    @staticmethod
    def _todo(test: unittest.TestCase) -> str:
        method = getattr(test, getattr(test, "_testMethodName", ""), None)
        return getattr(method, "__tap_todo__", "known bug")

    def _line(self, ok: bool, test: unittest.TestCase, directive: str = "") -> None:
        self.number += 1
        status = "ok" if ok else "not ok"
        text = f"{status} {self.number} - {self._name(test)}"
        if directive:
            text += f" # {directive}"
        print(text, file=self.stream, flush=True)

    def _diag(self, text: str) -> None:
        for line in text.rstrip("\n").splitlines():
            print(f"# {line}", file=self.stream)
        self.stream.flush()

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._line(True, test)

    def addFailure(self, test: unittest.TestCase, err: _OptExcInfo) -> None:
        super().addFailure(test, err)
        self._line(False, test)
        self._diag(self.failures[-1][1])

    def addError(self, test: unittest.TestCase, err: _OptExcInfo) -> None:
        super().addError(test, err)
        self._line(False, test)
        self._diag(self.errors[-1][1])

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self._line(True, test, f"SKIP {reason}")

    def addExpectedFailure(self, test: unittest.TestCase, err: _OptExcInfo) -> None:
        super().addExpectedFailure(test, err)
        self._line(False, test, f"TODO {self._todo(test)}")
        self._diag(self.expectedFailures[-1][1])

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self._line(True, test, f"TODO {self._todo(test)} (now passes: remove the todo marker)")


def main(module: str = "__main__") -> None:
    """Run every TestCase of module, print TAP and exit 0 only if all passed.

    Test names on the command line ("Class.method") run only those tests.
    """
    loader = unittest.defaultTestLoader
    names = sys.argv[1:]
    if names:
        suite = loader.loadTestsFromNames(names, sys.modules[module])
    else:
        suite = loader.loadTestsFromModule(sys.modules[module])
    print(f"1..{suite.countTestCases()}", flush=True)
    result = TapResult(sys.stdout)
    suite.run(result)
    if os.environ.get(_CHILD_ENV):
        # An isolated child reports whether the test body itself passed;
        # its parent applies the todo marker.
        passed = not (result.failures or result.errors or result.expectedFailures)
    else:
        # unittest does not count expected failures against success; unexpected
        # successes make wasSuccessful() false, which matches tap-driver.
        passed = result.wasSuccessful()
    sys.exit(0 if passed else 1)
