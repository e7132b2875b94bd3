"""A step that imports a module found only on the launching Python's
PYTHONPATH, and says which interpreter runs it."""

import sys

from metaflow import FlowSpec, step


class ImportsFlow(FlowSpec):
    @step
    def start(self):
        import mf_host_module  # on the launcher's PYTHONPATH only

        print("STEP-PYTHON", sys.executable)
        print("STEP-MODULE", mf_host_module.__file__, mf_host_module.VALUE)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ImportsFlow()
