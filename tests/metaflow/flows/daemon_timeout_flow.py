"""@timeout on a sandboxed step that leaves a daemon behind: a process in a
session of its own that ignores SIGTERM (METAFLOW_TEST_MARK in its command
line, so the test can look for it)."""

import os
import subprocess
import sys
import time

from metaflow import FlowSpec, catch, retry, sandbox, step, timeout


class DaemonTimeoutFlow(FlowSpec):
    @sandbox
    @catch(var="failure")
    @retry(times=1)
    @timeout(seconds=3)
    @step
    def start(self):
        mark = os.environ["METAFLOW_TEST_MARK"]
        code = (
            "import os, signal, time; os.setsid(); "
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"
        )
        subprocess.Popen(
            [sys.executable, "-c", code, mark],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print("DAEMON-STARTED", flush=True)
        time.sleep(3600)
        self.next(self.end)

    @step
    def end(self):
        print("CAUGHT", type(self.failure).__name__ if self.failure else None)


if __name__ == "__main__":
    DaemonTimeoutFlow()
