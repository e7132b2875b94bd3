"""Metaflow's own test of --run-id-file (test/core RunIdFileTest): a step
finds the launcher's run-id file, written before any task starts, in its
working directory. Run with --with sandbox run --run-id-file run-id; its
@card must still reach the datastore."""

from metaflow import FlowSpec, card, current, step


class RunIdFileSandboxFlow(FlowSpec):
    @card
    @step
    def start(self):
        import os

        assert os.path.isfile("run-id"), "run id file should exist before execution"
        with open("run-id") as f:
            self.from_file = f.read()
        assert self.from_file == current.run_id, (self.from_file, current.run_id)
        print("RUN-ID-FILE-SEEN", self.from_file, flush=True)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RunIdFileSandboxFlow()
