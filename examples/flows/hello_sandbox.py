"""Your first sandboxed Metaflow run.

Each step marked @sandbox runs in its own isolated libsandbox instance (here on
the local backend: bubblewrap on this machine, no network, a private /tmp, the
host's files read-only). Artifacts land in the ordinary local datastore.

    python hello_sandbox.py run                 # sandboxed steps
    python hello_sandbox.py run --with sandbox  # every step sandboxed
"""

import os
import platform
import socket

from metaflow import FlowSpec, Parameter, sandbox, step


class HelloSandboxFlow(FlowSpec):
    who = Parameter("who", default="newcomer", help="Who to greet.")

    @step
    def start(self):
        self.launcher = platform.node()
        self.words = ["isolated", "reproducible", "disposable"]
        self.next(self.describe, foreach="words")

    @sandbox(cpu=1, memory=2048)
    @step
    def describe(self):
        # Inside the sandbox the host name is the sandbox id.
        self.where = platform.node()
        self.line = f"{self.where}: each step runs {self.input}"
        print(self.line)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.lines = [inp.line for inp in inputs]
        self.sandboxes = sorted({inp.where for inp in inputs})
        self.merge_artifacts(inputs, exclude=["line", "where"])
        self.next(self.check)

    @sandbox
    @step
    def check(self):
        try:
            socket.create_connection(("pypi.org", 443), timeout=3).close()
            self.network = "reachable"
        except OSError:
            self.network = "blocked (sandboxes have no network unless network=True)"
        self.home = os.environ.get("HOME")
        self.next(self.end)

    @step
    def end(self):
        print(f"Hello, {self.who}!")
        print(f"Launched from {self.launcher}; the sandboxed steps ran in:")
        for line in self.lines:
            print("  " + line)
        print(f"Sandbox HOME was {self.home}, network {self.network}.")
        print(
            "Each of the %d sandboxes was destroyed when its step ended."
            % (len(self.sandboxes) + 1)
        )


if __name__ == "__main__":
    HelloSandboxFlow()
