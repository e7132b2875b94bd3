"""A remote step that reports where its code package was unpacked and
which package it was told it runs (the runtime may start it before the
package is built)."""

import os

from metaflow import FlowSpec, step


class PackageFlow(FlowSpec):
    @step
    def start(self):
        import metaflow

        here = os.path.dirname(metaflow.__file__)
        self.code_sha = os.environ.get("METAFLOW_CODE_SHA")
        self.code_url = os.environ.get("METAFLOW_CODE_URL")
        self.mf_dir = here
        self.mf_link = os.path.islink(here)
        self.mf_real = os.path.realpath(here)
        self.cwd_real = os.path.realpath(os.getcwd())
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PackageFlow()
