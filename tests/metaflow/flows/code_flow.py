"""A sandboxed step that tries to change its own code package, prints a
line that must reach `python flow.py logs`, and gets a secret-named
variable (which must stay off every command line)."""

import os

from metaflow import FlowSpec, environment, sandbox, step


def _try_write(path):
    try:
        with open(path, "a") as f:
            f.write("# CHANGED-" + "BY-THE-STEP\n")
        return "written"
    except OSError as ex:
        return type(ex).__name__


class CodeSandboxFlow(FlowSpec):
    @environment(vars={"SANDBOX_TEST_TOKEN": "tok-" + "4711"})
    @sandbox
    @step
    def start(self):
        self.token = os.environ.get("SANDBOX_TEST_TOKEN")
        self.cwd = os.getcwd()
        # The flow file itself, and a new file next to it.
        self.flow_file = _try_write(os.path.abspath(__file__))
        here = os.path.dirname(os.path.abspath(__file__))
        self.new_file = _try_write(os.path.join(here, "new.py"))
        self.home_file = _try_write(os.path.join(os.environ["HOME"], "scratch.txt"))
        print("CODE-FLOW-LOG-LINE", flush=True)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CodeSandboxFlow()
