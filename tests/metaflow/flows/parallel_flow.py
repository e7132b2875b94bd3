"""@parallel with @sandbox: the gang runs in one sandbox, as Metaflow runs
it on one machine locally."""

from metaflow import FlowSpec, current, parallel, sandbox, step


class ParallelSandboxFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train, num_parallel=3)

    @sandbox
    @parallel
    @step
    def train(self):
        import os

        self.node = current.parallel.node_index
        self.nodes = current.parallel.num_nodes
        self.sandbox_id = os.environ.get("METAFLOW_SANDBOX_ID")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.got = sorted((inp.node, inp.nodes) for inp in inputs)
        self.ids = sorted({inp.sandbox_id for inp in inputs})
        self.next(self.end)

    @step
    def end(self):
        print("PARALLEL-GOT %s in %d sandbox(es)" % (self.got, len(self.ids)))


if __name__ == "__main__":
    ParallelSandboxFlow()
