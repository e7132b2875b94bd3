"""A step that dies of SIGSEGV. Run with --with sandbox."""

from metaflow import FlowSpec, step


class SegfaultSandboxFlow(FlowSpec):
    @step
    def start(self):
        import ctypes

        print("SEGFAULT-COMING", flush=True)
        ctypes.string_at(0)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SegfaultSandboxFlow()
