"""A step that prints a lot, then one that reads its artifact
(test_mf_remote.py: what of an input task is sent into the next task's
sandbox). --mb N: the start step prints N MB of random hex to stdout."""

import os

from metaflow import FlowSpec, Parameter, step


class ChattyFlow(FlowSpec):
    mb = Parameter("mb", default=4, type=int)

    @step
    def start(self):
        for _ in range(self.mb * 1024):
            print(os.urandom(512).hex())
        self.x = 41
        self.next(self.end)

    @step
    def end(self):
        self.y = self.x + 1
        print("y =", self.y)


if __name__ == "__main__":
    ChattyFlow()
