"""A flow without @sandbox: run as is, or with --with sandbox:backend=daytona|e2b.

Foreach over 8 items whose tasks all store the same large artifact (one
content-addressed blob written by 8 tasks at once), a join with
merge_artifacts, and an optional big artifact (--big-mb) made in start and
read back in end.
"""

import hashlib
import os

from metaflow import FlowSpec, Parameter, step


class RemoteSyncFlow(FlowSpec):
    alpha = Parameter("alpha", default=2, type=int)
    big_mb = Parameter("big-mb", default=0, type=int)

    @step
    def start(self):
        self.items = list(range(8))
        self.common = "shared-%d" % self.alpha
        if self.big_mb:
            self.big = os.urandom(self.big_mb * 1024 * 1024)
            self.big_sha = hashlib.sha256(self.big).hexdigest()
        print("start says hello")
        self.next(self.square, foreach="items")

    @step
    def square(self):
        self.value = self.input * self.input * self.alpha
        # The same bytes in every task: one blob, written concurrently.
        self.same = b"same-blob-" * 50000
        print("square line %d" % self.input)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = sorted(inp.value for inp in inputs)
        self.same_len = {len(inp.same) for inp in inputs}.pop()
        self.merge_artifacts(inputs, exclude=["value", "same"])
        self.next(self.end)

    @step
    def end(self):
        self.total = sum(self.values)
        if self.big_mb:
            self.big_ok = hashlib.sha256(self.big).hexdigest() == self.big_sha
            self.big_len = len(self.big)
            del self.big


if __name__ == "__main__":
    RemoteSyncFlow()
