"""Dumps what the Metaflow client API sees of a flow's runs as JSON.

Run in a subprocess by the tests (so each test's METAFLOW_* environment and
cwd apply): python mfinspect.py FLOW [RUN_ID]
"""

import json
import sys

from metaflow import Flow, namespace


def _value(obj):
    try:
        json.dumps(obj)
        return obj
    except (TypeError, ValueError):
        return repr(obj)


def _task(task):
    data = {}
    for art in task.artifacts:
        if art.id.startswith("_") or art.id == "name":
            continue
        try:
            data[art.id] = _value(art.data)
        except Exception as ex:  # an artifact the client cannot load is a failure
            data[art.id] = f"<unreadable: {ex!r}>"
    try:
        from metaflow.cards import get_cards

        cards = len(get_cards(task))
    except Exception:
        cards = 0
    metadata = task.metadata
    return {
        "pathspec": task.pathspec,
        "id": task.id,
        "successful": task.successful,
        "finished": task.finished,
        "current_attempt": task.current_attempt,
        "data": data,
        "metadata": {k: str(v) for k, v in task.metadata_dict.items()},
        "sandbox_ids": sorted({m.value for m in metadata if m.name == "sandbox-id"}),
        "stdout": task.stdout,
        "stderr": task.stderr,
        "cards": cards,
    }


def main():
    namespace(None)
    flow = Flow(sys.argv[1])
    run = flow[sys.argv[2]] if len(sys.argv) > 2 else flow.latest_run
    steps = {}
    for step in run:
        steps[step.id] = [_task(task) for task in step]
    print(
        json.dumps(
            {
                "run_id": run.id,
                "successful": run.successful,
                "finished": run.finished,
                "steps": steps,
            }
        )
    )


if __name__ == "__main__":
    main()
