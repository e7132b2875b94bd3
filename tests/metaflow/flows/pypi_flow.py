"""A step with @pypi. Run with --with sandbox (refused before the run)."""

from metaflow import FlowSpec, pypi, step


class PypiSandboxFlow(FlowSpec):
    @pypi(packages={"six": "1.16.0"})
    @step
    def start(self):
        print("PYPI-STEP-RAN", flush=True)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PypiSandboxFlow()
