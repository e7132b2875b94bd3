"""Linear flow run with --with sandbox:cpu=1: parameters, a config, @environment,
@resources, @card, the default (no) network and 10,000 log lines."""

import os
import platform
import socket

from metaflow import Config, FlowSpec, Parameter, card, environment, resources, step


def _cpus():
    return len(os.sched_getaffinity(0))


class LinearSandboxFlow(FlowSpec):
    alpha = Parameter("alpha", default=1, type=int)
    port = Parameter("port", default=0, type=int)
    cfg = Config("cfg", default_value={"greeting": "hello", "n": 3})

    @environment(vars={"SANDBOX_TEST_GREETING": "from-environment"})
    @step
    def start(self):
        self.host = platform.node()
        self.alpha_seen = self.alpha
        self.cfg_greeting = self.cfg.greeting
        self.cfg_n = self.cfg.n
        self.env_greeting = os.environ.get("SANDBOX_TEST_GREETING")
        self.leaked_secret = os.environ.get("SANDBOX_TEST_HOST_SECRET")
        self.home = os.environ.get("HOME")
        self.cpus = _cpus()
        # The default spec has no network: the host's loopback server is unreachable.
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
            self.network_ok = True
        except OSError as ex:
            self.network_ok = False
            self.network_error = str(ex)
        self.payload = {"numbers": list(range(10)), "text": "written in the sandbox"}
        self.next(self.many_lines)

    @card
    @step
    def many_lines(self):
        self.host = platform.node()
        for i in range(10000):
            print("line-%05d" % i)
        self.total = sum(self.payload["numbers"]) * self.alpha
        self.next(self.wide)

    @resources(cpu=2)
    @step
    def wide(self):
        self.wide_cpus = _cpus()
        self.next(self.end)

    @step
    def end(self):
        self.end_host = platform.node()


if __name__ == "__main__":
    LinearSandboxFlow()
