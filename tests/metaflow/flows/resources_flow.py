"""One sandboxed step; its resources come from --with options."""

from metaflow import FlowSpec, step


class ResourcesSandboxFlow(FlowSpec):
    @step
    def start(self):
        print("RESOURCES-STEP-RAN", flush=True)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ResourcesSandboxFlow()
