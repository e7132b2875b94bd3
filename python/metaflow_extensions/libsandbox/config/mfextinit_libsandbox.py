"""METAFLOW_SANDBOX_* settings (environment or ~/.metaflowconfig profile).

Every global here is injected into metaflow.metaflow_config.
"""

from metaflow.metaflow_config_funcs import from_conf

# Settings below whose value would be misread: name -> (value, what to
# give instead). Metaflow reads a boolean setting as true for any word but
# "0", "false" and "", so "no" or "off" would turn it on. @sandbox refuses
# them before the run (sandbox_decorator); raising here would be a traceback
# from `import metaflow`.
SANDBOX_SETTING_PROBLEMS = {}


def _on_or_off(name, value):
    if not isinstance(value, bool) and str(value).strip().lower() not in (
        "0",
        "1",
        "false",
        "true",
        "",
    ):
        SANDBOX_SETTING_PROBLEMS[name] = (
            str(value),
            "1 or 0 (true or false). Metaflow reads any other word, even no or off, as true",
        )


def _auto_on_or_off(name, value):
    words = ("auto", "0", "1", "false", "true", "no", "yes", "off", "on")
    if str(value).strip().lower() not in words:
        SANDBOX_SETTING_PROBLEMS[name] = (str(value), "auto, 1 or 0")


def _workdir_path(name, value):
    """A workdir the backends take: else the task's sandboxctl refused it
    at the start of each task, naming one of its --mount options."""
    if value is None or value == "":
        return
    parts = str(value).split("/")
    if (
        not str(value).startswith("/")
        or str(value).strip("/") == ""
        or "." in parts
        or ".." in parts
    ):
        SANDBOX_SETTING_PROBLEMS[name] = (
            str(value),
            "an absolute path other than /, without . or .. components, such as "
            "/workspace (or leave it unset for the backend's default)",
        )


# Backend used by @sandbox when the decorator names none: local (bubblewrap),
# daytona or e2b (or any backend registered with libsandbox).
SANDBOX_BACKEND = from_conf("SANDBOX_BACKEND", "local")
# Image (remote backends) or root file system directory (local backend).
SANDBOX_IMAGE = from_conf("SANDBOX_IMAGE")
# Default resources; @resources and the decorator's own values win (max).
SANDBOX_CPU = from_conf("SANDBOX_CPU", "1")
SANDBOX_MEMORY = from_conf("SANDBOX_MEMORY", "4096")
SANDBOX_DISK = from_conf("SANDBOX_DISK", "10240")
# Network access for the step (off unless asked for).
SANDBOX_NETWORK = from_conf("SANDBOX_NETWORK", False, _on_or_off)
# Working directory inside the sandbox; the code package goes to <workdir>/metaflow.
# Default: the backend's (local: /workspace, e2b: /home/user).
SANDBOX_WORKDIR = from_conf("SANDBOX_WORKDIR", None, _workdir_path)
# Interpreter that runs the step in a remote sandbox (default: the
# environment's, i.e. `python` on the image's PATH).
SANDBOX_PYTHON = from_conf("SANDBOX_PYTHON")
# Report what each sandboxed task moved, file group by file group.
SANDBOX_DEBUG = from_conf("SANDBOX_DEBUG", False, _on_or_off)
# Local backend, local datastore: start each task with `sandboxctl run`
# directly (one interpreter, the code package extracted once per run and
# mounted read-only) instead of through the `sandbox step` trampoline.
SANDBOX_DIRECT = from_conf("SANDBOX_DIRECT", True, _on_or_off)
# Remote backends: a sandbox that ran a task well serves the run's next task
# with the same sandbox settings (never two at once; all are destroyed at the
# end of the run). 0: a new sandbox for every task.
SANDBOX_REUSE = from_conf("SANDBOX_REUSE", True, _on_or_off)
# Remote backends: create the run's first sandbox (and send it the code
# package) while the runtime is still starting the first task. auto: when
# the backend's last create on this machine was slow (0.25 s or more) or
# never measured; 1: always; 0: never.
SANDBOX_PREPARE = from_conf("SANDBOX_PREPARE", "auto", _auto_on_or_off)
# Remote backends, local datastore: keep the bytecode a run's sandbox wrote
# for the code package, for the next run's new sandbox (sandbox_executor).
SANDBOX_BYTECODE_CACHE = from_conf("SANDBOX_BYTECODE_CACHE", True, _on_or_off)
