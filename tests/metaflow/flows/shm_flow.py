"""One step that reports the size of its /dev/shm (@resources(shared_memory=...))."""

import os

from metaflow import FlowSpec, step


class ShmSandboxFlow(FlowSpec):
    @step
    def start(self):
        st = os.statvfs("/dev/shm")
        self.shm_mb = st.f_blocks * st.f_frsize // (1 << 20)
        print("SHM-MB=%d" % self.shm_mb, flush=True)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ShmSandboxFlow()
