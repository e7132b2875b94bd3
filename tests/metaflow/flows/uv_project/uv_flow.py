"""Metaflow's uv environment in sandboxes: the step imports what uv.lock pins."""

import sys

from metaflow import FlowSpec, step


class UvSandboxFlow(FlowSpec):
    @step
    def start(self):
        import six

        print("UV-STEP prefix=%s six=%s" % (sys.prefix, six.__version__), flush=True)
        self.six = six.__version__
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UvSandboxFlow()
