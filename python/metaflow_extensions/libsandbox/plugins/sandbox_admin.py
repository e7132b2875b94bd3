"""``python flow.py sandbox list`` / ``sandbox kill``: a flow's sandboxes.

Sandboxes are found by the labels the trampoline gives them (flow, run_id,
step, task_id, attempt) on every backend the flow's steps use. ``gi`` is
imported inside the functions (see sandbox_executor._load_gi).
"""

from typing import Dict, Iterable, List, Optional, Tuple

from .sandbox_i18n import _

SANDBOX_DECORATORS = ("sandbox", "daytona", "e2b")


def flow_backends(graph, extra: Optional[str] = None) -> List[str]:
    """The backends of the flow's sandboxed steps (and @extra if given)."""
    found = set()
    if extra:
        found.add(extra)
    for node in graph:
        for deco in node.decorators:
            if deco.name in SANDBOX_DECORATORS and deco.attributes.get("backend"):
                found.add(str(deco.attributes["backend"]))
    if not found:
        from metaflow.metaflow_config import SANDBOX_BACKEND

        found.add(SANDBOX_BACKEND or "local")
    return sorted(found)


def find(
    backends: Iterable[str], labels: Dict[str, str]
) -> List[Tuple[str, object, Dict[str, str]]]:
    """(backend name, instance, labels) of every sandbox carrying @labels."""
    from .sandbox_executor import SandboxExecutionError, _load_gi

    Gio, GLib, Sandbox = _load_gi()
    found = []
    for name in backends:
        try:
            backend = Sandbox.Backend.new_for_name(name)
            instances = backend.list(labels, None)
        except GLib.Error as ex:
            raise SandboxExecutionError(
                _("Could not list the sandboxes of the %s backend: %s") % (name, ex.message)
            ) from None
        for instance in instances:
            found.append((name, instance, dict(instance.get_labels() or {})))
    found.sort(key=lambda f: (f[2].get("run_id", ""), f[2].get("step", ""), f[0]))
    return found


def kill(found) -> Tuple[List[str], List[str]]:
    """Destroys the sandboxes; returns the ids destroyed and error messages."""
    from .sandbox_executor import _load_gi

    Gio, GLib, Sandbox = _load_gi()
    destroyed, errors = [], []
    for backend, instance, _labels in found:
        try:
            instance.destroy(None)
            destroyed.append(instance.get_id())
        except GLib.Error as ex:
            errors.append(
                _("Could not destroy sandbox %s (backend %s): %s")
                % (instance.get_id(), backend, ex.message)
            )
    return destroyed, errors
