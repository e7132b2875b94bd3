"""Prints the environment a step sees, for tests/metaflow/test_mf_secrets.py."""

import os

from metaflow import FlowSpec, step


class SecretsFlow(FlowSpec):
    @step
    def start(self):
        self.env_seen = dict(os.environ)
        print("SECRETS-FLOW-ENV-DUMP")
        for key, value in sorted(os.environ.items()):
            print("%s=%s" % (key, value))
        self.next(self.end)

    @step
    def end(self):
        print("SECRETS-FLOW-END")


if __name__ == "__main__":
    SecretsFlow()
