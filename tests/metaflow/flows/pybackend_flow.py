"""One sandboxed step on backends written in Python, registered by the flow
itself (Sandbox.Backend.register) in each process that creates sandboxes:
the runtime, which validates the decorator, and the trampoline.

"pycpu" runs its sandboxes on the local backend and declares what they can
do (the host's file system, mounts, network policy) and, of the resources,
cpu only. "pysnap" declares cpu limits that need an image, as Daytona does.
"pyopen" has no network policy, "pyown" neither images nor this machine's
root.
Neither is known to sandboxctl, so its tasks go through the trampoline.
"""

from __future__ import annotations

import os

from metaflow import FlowSpec, step

if "METAFLOW_SANDBOX_WORKLOAD" not in os.environ:
    # Not in the task inside the sandbox, which creates none.
    from typing import Any

    import gi

    gi.require_version("Sandbox", "1.0")
    from gi.repository import Gio, GLib, Sandbox

    Caps = Sandbox.BackendCapabilities

    class CpuOnlyBackend(Sandbox.Backend):
        """Sandboxes of the local backend; of the resources, cpu only."""

        def do_get_capabilities(self) -> Sandbox.BackendCapabilities:
            return Caps.SHARES_HOST_FS | Caps.MOUNTS | Caps.NETWORK_POLICY | Caps.CPU_LIMIT

        def do_create(
            self, spec: Sandbox.Spec, cancellable: Gio.Cancellable | None, task: Gio.Task
        ) -> None:
            def done(local: Sandbox.Backend, result: Gio.AsyncResult) -> None:
                try:
                    task.return_value(local.create_finish(result))
                except GLib.Error as error:
                    task.return_error(error)

            Sandbox.Backend.new_for_name("local").create_async(spec, cancellable, done)

        def do_get_instance(
            self, sandbox_id: str, cancellable: Gio.Cancellable | None, task: Gio.Task
        ) -> None:
            try:
                local = Sandbox.Backend.new_for_name("local")
                task.return_value(local.get_instance(sandbox_id, cancellable))
            except GLib.Error as error:
                task.return_error(error)

        def do_list(self, labels: Any, cancellable: Gio.Cancellable | None, task: Gio.Task) -> None:
            try:
                local = Sandbox.Backend.new_for_name("local")
                task.return_value(local.list(labels, cancellable))
            except GLib.Error as error:
                task.return_error(error)

    class SnapshotSizedBackend(CpuOnlyBackend):
        """Applies cpu only to a sandbox built from an image."""

        def do_get_capabilities(self) -> Sandbox.BackendCapabilities:
            return Caps.NETWORK_POLICY | Caps.IMAGES | Caps.CPU_LIMIT | Caps.LIMITS_NEED_IMAGE

    class NoNetworkPolicyBackend(CpuOnlyBackend):
        """Cannot turn a sandbox's network on or off."""

        def do_get_capabilities(self) -> Sandbox.BackendCapabilities:
            return Caps.SHARES_HOST_FS | Caps.MOUNTS | Caps.CPU_LIMIT

    class OwnImageBackend(CpuOnlyBackend):
        """Runs its own image only, not this machine's: no images, no host root."""

        def do_get_capabilities(self) -> Sandbox.BackendCapabilities:
            return Caps.NETWORK_POLICY | Caps.CPU_LIMIT

    Sandbox.Backend.register("pycpu", CpuOnlyBackend.__gtype__, 0)
    Sandbox.Backend.register("pysnap", SnapshotSizedBackend.__gtype__, 0)
    Sandbox.Backend.register("pyopen", NoNetworkPolicyBackend.__gtype__, 0)
    Sandbox.Backend.register("pyown", OwnImageBackend.__gtype__, 0)


class PyBackendSandboxFlow(FlowSpec):
    @step
    def start(self):
        print("PYBACKEND-STEP-RAN", flush=True)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PyBackendSandboxFlow()
