"""Everything the remote-backend matrix checks in one flow (run it with
--with sandbox:backend=...): parameters, a foreach of --width tasks and a join
with merge_artifacts, @retry (the first attempt fails), @catch, @card and
10,000 log lines (in start), and a step that fails while METAFLOW_TEST_FAIL=1 (for
resume). Every step records the sandbox it ran in and whether a secret given
to it by environment can be seen on any command line inside the sandbox.
"""

import os
import platform

from metaflow import FlowSpec, Parameter, card, catch, current, retry, step


def _secret_on_command_lines():
    """Pids whose command line inside the sandbox holds AWS_SECRET_ACCESS_KEY."""
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "").encode()
    if not secret:
        return None
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if secret in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


class MatrixSandboxFlow(FlowSpec):
    alpha = Parameter("alpha", default=1, type=int)
    width = Parameter("width", default=8, type=int)
    label = Parameter("label", default="none")

    @card
    @step
    def start(self):
        self.host = platform.node()
        self.params = [self.alpha, self.width, self.label]
        self.secret_argv = _secret_on_command_lines()
        self.items = list(range(self.width))
        self.common = "shared-%d" % self.alpha
        for i in range(10000):
            print("line-%05d" % i)
        self.next(self.square, foreach="items")

    @step
    def square(self):
        self.value = self.input * self.input * self.alpha
        self.host = platform.node()
        print("square line %d" % self.input)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = sorted(inp.value for inp in inputs)
        self.hosts = sorted(inp.host for inp in inputs)
        self.merge_artifacts(inputs, exclude=["value", "host"])
        self.next(self.flaky)

    @retry(times=1, minutes_between_retries=0)
    @step
    def flaky(self):
        print("flaky attempt %d on %s" % (current.retry_count, platform.node()))
        if current.retry_count == 0:
            raise RuntimeError("first attempt fails on purpose")
        self.flaky_attempt = current.retry_count
        self.next(self.boom)

    @catch(var="boom_error")
    @step
    def boom(self):
        self.boom_host = platform.node()
        raise ValueError("boom in the sandbox")
        self.next(self.gated)

    @step
    def gated(self):
        if os.environ.get("METAFLOW_TEST_FAIL") == "1":
            raise RuntimeError("gated step fails while METAFLOW_TEST_FAIL=1")
        self.gated_host = platform.node()
        self.next(self.end)

    @step
    def end(self):
        self.total = sum(self.values)


if __name__ == "__main__":
    MatrixSandboxFlow()
