"""The @sandbox step decorator (and its aliases @daytona and @e2b).

The decorator only speaks Metaflow: it validates the step, merges resources
and rewrites the task command into the ``sandbox step`` trampoline
(sandbox_cli.py).  Everything that touches a sandbox lives in
sandbox_executor.py, which imports ``gi`` inside its functions only: this
module is imported by every Metaflow process, including the task that runs
inside the sandbox, where PyGObject is usually absent.
"""

import json
import math
import os
import signal
import stat
import sys
import threading
from typing import Any, Dict, FrozenSet, List, Optional

from metaflow import metaflow_config
from metaflow.decorators import StepDecorator
from metaflow.exception import MetaflowException
from metaflow.metaflow_config import (
    SANDBOX_BACKEND,
    SANDBOX_CPU,
    SANDBOX_DISK,
    SANDBOX_IMAGE,
    SANDBOX_MEMORY,
    SANDBOX_NETWORK,
)
from metaflow.plugins.resources_decorator import ResourcesDecorator
from metaflow.plugins.timeout_decorator import (
    TimeoutDecorator,
    TimeoutException,
    get_run_time_limit_for_task,
)

from .sandbox_i18n import _

# _save_package_once: the runtime's main thread and its package thread.
_PACKAGE_LOCK = threading.RLock()

# Set by the executor in the sandbox's environment, so hooks that run in the
# task can tell a sandboxed attempt from a local @catch fallback attempt.
WORKLOAD_ENV = "METAFLOW_SANDBOX_WORKLOAD"

# Other decorators that move a step somewhere else: one per step.
COMPUTE_DECORATORS = frozenset(
    {
        "sandbox",
        "daytona",
        "e2b",
        "batch",
        "kubernetes",
        "slurm",
        "nvidia",
        "nvct",
        "snowpark",
        "skypilot_step",
    }
)

REMOTE_DATASTORES = ("s3", "azure", "gs")

# A hosted sandbox's lifetime at the most (E2B: 24 hours), and what its time
# to live keeps beyond the step's time limit (sandbox_executor).
REMOTE_LIFETIME_S = 24 * 3600
REMOTE_TTL_MARGIN_S = 600

# Each resource and the Sandbox.BackendCapabilities flag of a backend that
# applies it. The backend reports its capabilities (a backend written in
# Python declares its own, do_get_capabilities); a request the backend
# cannot apply is refused before the run when the user asked for it, and a
# default (METAFLOW_SANDBOX_CPU, ...) is dropped. With LIMITS_NEED_IMAGE
# (Daytona sizes a sandbox from its snapshot otherwise) a limit is applied
# only when the sandbox is built from image=.
RESOURCES = ("cpu", "memory", "disk", "gpu")

# Environment variables every sandboxed task gets from the extension
# (sandbox_executor: _task_env, the launchers and the trampoline), which
# replace a value of the user's: given in @sandbox(env=...) or
# @environment(vars=...), such a value was dropped without a word.
SANDBOX_SET_ENV = frozenset(
    (
        "PATH",
        "PYTHONPATH",
        "PYTHONUNBUFFERED",
        "PYTHONIOENCODING",
        "UV_CACHE_DIR",
        "UV_LINK_MODE",
        "METAFLOW_FLOW_FILENAME",
        "METAFLOW_USER",
        "METAFLOW_RUN_ID",
        "METAFLOW_DEFAULT_DATASTORE",
        "METAFLOW_DEFAULT_METADATA",
        "METAFLOW_DATASTORE_SYSROOT_LOCAL",
        "METAFLOW_CODE_SHA",
        "METAFLOW_CODE_URL",
        "METAFLOW_CODE_DS",
        "METAFLOW_CODE_METADATA",
        "MF_PATHSPEC",
        "MF_DATASTORE",
        "MF_ATTEMPT",
        "MF_DATASTORE_ROOT",
        "MFLOG_STDOUT",
        "MFLOG_STDERR",
    )
)
SANDBOX_SET_ENV_PREFIXES = ("METAFLOW_SANDBOX_", "MF_SANDBOX_")


def _sandbox_sets(name: str) -> bool:
    """Whether the extension sets the variable @name in every sandboxed task."""
    return name in SANDBOX_SET_ENV or name.startswith(SANDBOX_SET_ENV_PREFIXES)


RESOURCE_CAPABILITIES: Dict[str, str] = {
    "cpu": "CPU_LIMIT",
    "memory": "MEMORY_LIMIT",
    "disk": "DISK_LIMIT",
    "gpu": "GPU",
}


def _capabilities(backend: str) -> Optional[FrozenSet[str]]:
    """The backend's capabilities (names of Sandbox.BackendCapabilities
    flags), None for an unknown backend or without PyGObject (preflight
    reports either before a run; commands that run nothing still work).
    Asks the library through gi.repository.Sandbox, which is imported here
    and only here: never in the task inside the sandbox, where PyGObject is
    usually absent."""
    from .sandbox_executor import SandboxExecutionError, backend_capabilities

    try:
        return backend_capabilities(backend)
    except SandboxExecutionError:
        return None


class SandboxException(MetaflowException):
    headline = "Sandbox error"


class SandboxTimeoutException(TimeoutException):
    headline = "@sandbox timeout"


def _user_set(deco: Any, key: str) -> bool:
    """Whether the user gave @deco's attribute @key (not its default)."""
    given = getattr(deco, "_user_defined_attributes", None)
    if given is not None:
        return key in given
    default = deco.defaults.get(key)
    value = deco.attributes.get(key)
    return value is not None and str(value) != str(default)


_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off", "")


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_WORDS
    return bool(value)


def _is_bool_like(value: Any) -> bool:
    """Whether _as_bool reads @value as the user meant it: a bool, 0 or 1,
    or one of the words for them (not "maybe", which would be False)."""
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_WORDS + _FALSE_WORDS
    return value is None or isinstance(value, bool) or value in (0, 1)


# What each number means, added to the message that refuses a value.
_UNITS = {
    "cpu": "cpu is a number of CPUs, for example cpu=2.",
    "memory": "memory is in MB, for example memory=4096 for 4 GB.",
    "disk": "disk is in MB, for example disk=10240 for 10 GB.",
    "gpu": "gpu is a whole number of GPUs, for example gpu=1.",
    "timeout": "timeout is in seconds, for example timeout=600.",
    "shared_memory": "shared_memory is in MB, for example shared_memory=1024 for 1 GB.",
}


# Sent to the task as whole numbers (sandboxctl's --memory, --disk, --gpu;
# the spec's unsigned properties): at most this.
_WHOLE_NUMBERS = ("memory", "disk", "gpu", "shared_memory")
_WHOLE_NUMBER_MAX = 2**31 - 1


def _as_number(value: Any, what: str, step: str, given_in: str = "") -> Optional[float]:
    """@value as a number greater than 0, None when not given; anything else
    is refused naming @what, @given_in (where it was given, when not the
    decorator itself) and its unit. True and False are not numbers here:
    float(True) would be a 1 s time limit or a 1 MB memory limit."""
    if value is None or value == "":
        return None
    hint = " " + _UNITS.get(what, "")
    if given_in:
        hint = " It comes from %s." % given_in + hint
    try:
        if isinstance(value, bool):
            raise TypeError(value)
        number = float(value)
    except (TypeError, ValueError):
        raise SandboxException(
            _("Invalid %s value *%s* for step *%s*: it must be a number.") % (what, value, step)
            + hint
        ) from None
    if not number > 0 or number == float("inf"):
        raise SandboxException(
            _("Invalid %s value *%s* for step *%s*: it must be greater than 0.")
            % (what, value, step)
            + hint
        )
    if what in _WHOLE_NUMBERS and number > _WHOLE_NUMBER_MAX:
        # The task's sandboxctl (or the spec's unsigned property) would
        # refuse it once the task had started.
        raise SandboxException(
            "Invalid %s value *%s* for step *%s*: it must be at most %d."
            % (what, value, step, _WHOLE_NUMBER_MAX)
            + hint
        )
    return number


def _environment_name_error(name: str) -> Optional[str]:
    """Why @name cannot be an environment variable's name, or None."""
    if not name:
        return "an empty name"
    if "=" in name or "\0" in name:
        return "a name with '=' or a NUL byte"
    return None


def _as_env(value: Any, deco_name: str) -> Optional[Dict[str, str]]:
    """env=: a dictionary of names to strings (numbers are written as
    strings, as @environment does); anything a process environment cannot
    hold, or that str() would turn into something the user did not mean
    (None, a list), is refused."""
    given = value
    if isinstance(value, str):
        try:
            value = json.loads(value) if value else {}
        except ValueError:
            pass
    if not isinstance(value, dict):
        raise SandboxException(
            _("@%s(env=...) must be a dictionary of strings, got *%s*.") % (deco_name, given)
        )
    env: Dict[str, str] = {}
    for name, val in value.items():
        problem = _environment_name_error(name) if isinstance(name, str) else "not a string"
        if problem:
            raise SandboxException(
                "@%s(env=...) has the variable name %r, which is %s: an environment "
                "variable needs a non-empty string name without '='." % (deco_name, name, problem)
            )
        if isinstance(val, (dict, list, tuple, set)) or val is None or isinstance(val, bool):
            raise SandboxException(
                "@%s(env=...) gives %s the value %r: give a string (for example "
                'env={%r: "1"}).' % (deco_name, name, val, name)
            )
        if "\0" in str(val):
            raise SandboxException(
                "@%s(env=...) gives %s a value with a NUL byte, which an environment "
                "variable cannot hold." % (deco_name, name)
            )
        env[name] = str(val)
    return env or None


# After a step's time limit (@timeout, @sandbox(timeout=...)) Python's
# handler raises the timeout in the step only once the main thread runs
# Python again: a step waiting in C for a process it started (os.system)
# would wait for the backstop a minute later. This long after the limit,
# the step's processes are killed, so that the wait returns and the
# timeout's exception ends the step as it should.
TIMEOUT_KILL_GRACE_S = 2.0


def _descendants(pid: int) -> List[int]:
    """The processes below @pid (its children, theirs, ...), from /proc,
    but Metaflow's own sidecars (which it restarts and needs for the
    task's end)."""
    children: Dict[int, List[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(name))
    found: List[int] = []
    todo = list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        try:
            with open("/proc/%d/cmdline" % child, "rb") as f:
                if b"sidecar_worker" in f.read():
                    continue
        except OSError:
            continue
        found.append(child)
        todo.extend(children.get(child, ()))
    return found


def _kill_descendants(pid: int) -> None:
    for _round in range(2):  # and what they started meanwhile
        for child in _descendants(pid):
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass


def _restore_package_blob(url: str, sha: str, blob: Any) -> None:
    """The run's code package in a local datastore, as the tasks' sandboxes
    read it (the trampoline extracts <Flow>/data/<xx>/<sha> itself): the
    store keeps a blob it finds under the package's address, and a step of
    an earlier run, which writes its flow's blobs (sandbox_executor.
    task_write_dirs), could have put its own code there for every later run
    with the same code to run. A file that does not hold the package is
    replaced by the package (a new file renamed over it)."""
    import hashlib

    if hasattr(blob, "getvalue"):
        blob = blob.getvalue()
    if not url or not os.path.isabs(url) or not isinstance(blob, (bytes, bytearray)):
        return
    digest = hashlib.sha1()
    try:
        fd = os.open(url, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        fd = -1
    if fd >= 0:
        with os.fdopen(fd, "rb") as f:
            if stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    if fd >= 0 and digest.hexdigest() == sha:
        return
    if hashlib.sha1(blob).hexdigest() != sha:
        return  # not this package's address: Metaflow's own business
    directory = os.path.dirname(url)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(url), os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, url)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class SandboxDecorator(StepDecorator):
    """
    Runs this step in an isolated libsandbox sandbox.

    Parameters
    ----------
    backend : str, default METAFLOW_SANDBOX_BACKEND ("local")
        libsandbox backend: "local" (bubblewrap on this machine), "daytona", "e2b".
    image : str, optional
        Image (remote backends) or root file system directory (local backend).
        Default: the host's own root (local) or the backend's default image.
    cpu : int, default 1
        CPUs for the step. With @resources the larger value wins.
    memory : int, default 4096
        Memory in MB. With @resources the larger value wins.
    disk : int, default 10240
        Disk in MB. With @resources the larger value wins.
    gpu : int, optional
        GPUs for the step (backends that offer them).
    timeout : int, optional
        Wall-clock limit in seconds for the step in the sandbox; @timeout also counts
        (the smaller one wins).
    env : Dict[str, str], optional
        Extra environment variables for the step (the host environment is NOT
        inherited; see also @environment).
    network : bool, default False
        Give the step network access (always on with a remote datastore,
        which the step must reach).
    """

    name = "sandbox"
    defaults = {
        "backend": None,
        "image": None,
        "cpu": None,
        "memory": None,
        "disk": None,
        "gpu": None,
        "timeout": None,
        "env": None,
        "network": None,
    }

    # A backend forced by an alias (@daytona, @e2b).
    _alias_backend: Optional[str] = None

    package_metadata: Optional[str] = None
    package_url: Optional[str] = None
    package_sha: Optional[str] = None
    # The run's pool of remote sandboxes (sandbox_pool.py), made by the
    # runtime for its trampolines and emptied when the run ends.
    pool_dir: Optional[str] = None

    supports_conda_environment = False

    def init(self) -> None:
        self._init_attributes()

    def _init_attributes(self) -> None:
        _refuse_environment_decorators(self)
        attrs = self.attributes
        if self._alias_backend is not None:
            given = str(attrs["backend"] or "").strip().lower()
            if given not in ("", self._alias_backend):
                raise SandboxException(
                    _(
                        "@%s always runs on the %s backend; remove backend=%s or use "
                        "@sandbox(backend=%s) instead."
                    )
                    % (self.name, self._alias_backend, attrs["backend"], attrs["backend"])
                )
            attrs["backend"] = self._alias_backend
        if not attrs["backend"]:
            attrs["backend"] = SANDBOX_BACKEND or "local"
        attrs["backend"] = str(attrs["backend"]).strip().lower()
        if not attrs["image"] and SANDBOX_IMAGE:
            attrs["image"] = SANDBOX_IMAGE
        # Resources the user asked for, as opposed to the configured defaults.
        self._asked = {k for k in RESOURCES if attrs[k] is not None and attrs[k] != ""}
        for key, default in (
            ("cpu", SANDBOX_CPU),
            ("memory", SANDBOX_MEMORY),
            ("disk", SANDBOX_DISK),
        ):
            if attrs[key] is None or attrs[key] == "":
                attrs[key] = default
        if attrs["network"] is None:
            attrs["network"] = SANDBOX_NETWORK
        if not _is_bool_like(attrs["network"]):
            # Read as False, it would be ignored silently.
            raise SandboxException(
                _("@%s(network=...) must be True or False, got *%s*.")
                % (self.name, attrs["network"])
            )
        attrs["network"] = _as_bool(attrs["network"])
        if attrs["env"] is not None:
            attrs["env"] = _as_env(attrs["env"], self.name)
        if attrs["image"] is not None and not isinstance(attrs["image"], str):
            raise SandboxException(
                "@%s(image=...) must be a string, got *%r*: an image name (on the local "
                'backend also "host" or the absolute path of a root file system '
                "directory)." % (self.name, attrs["image"])
            )

    # -- validation (LAUNCH, TRAMPOLINE and TASK) ---------------------------------

    def step_init(self, flow, graph, step, decos, environment, flow_datastore, logger) -> None:
        from .sandbox_safeload import guard_control_artifacts, verify_blobs

        # Every process of a flow with sandboxed steps (the runtime, the
        # tasks, sandboxed or not) checks the blobs it loads against their
        # address: a sandboxed step writes its flow's blobs. And it loads
        # Metaflow's own artifacts of the tasks before it, which Metaflow
        # reads before the step's code runs, as plain data: a sandboxed
        # step writes its own.
        verify_blobs()
        guard_control_artifacts()
        self.step = step
        self.logger = logger
        self.environment = environment
        self.flow_datastore = flow_datastore

        problems = getattr(metaflow_config, "SANDBOX_SETTING_PROBLEMS", None) or {}
        for name, (value, instead) in sorted(problems.items()):
            raise SandboxException(
                "%s=%s is not understood: set it to %s." % (name, value, instead)
            )
        env_decos = [deco.name for deco in decos if deco.name in ("conda", "pypi")]
        if env_decos or getattr(environment, "TYPE", None) in ("conda", "pypi"):
            if getattr(environment, "TYPE", None) in ("conda", "pypi"):
                what = "--environment=%s (@pypi, @conda)" % environment.TYPE
            else:
                what = "@" + env_decos[0]
            raise SandboxException(
                _(
                    "Step *%s* uses %s, which @%s does not support: give the flow a "
                    "pyproject.toml and uv.lock and run it with --environment=uv instead "
                    "(Metaflow's uv environment), or run this step without @%s."
                )
                % (step, what, self.name, self.name)
            )
        others = [
            deco.name for deco in decos if deco is not self and deco.name in COMPUTE_DECORATORS
        ]
        if others:
            raise SandboxException(
                _(
                    "Step *%s* has more than one compute decorator (@%s and @%s). A step "
                    "runs in one place: keep only one of them (check --with options too)."
                )
                % (step, self.name, " and @".join(others))
            )
        self._check_environment_vars(step, decos)
        if flow_datastore.TYPE != "local" and flow_datastore.TYPE not in REMOTE_DATASTORES:
            raise SandboxException(
                _(
                    "@%s does not support the *%s* datastore; use --datastore=local "
                    "(local backend) or s3, azure, gs."
                )
                % (self.name, flow_datastore.TYPE)
            )

        if WORKLOAD_ENV not in os.environ and self._can("SHARES_HOST_FS"):
            # Before the run: an image that is not imported fails here, with
            # the command that imports it (issue 16). (Not in the task itself:
            # the image has no libsandbox.) A backend that shares the host's
            # file system runs the images of this machine's image store.
            from .sandbox_executor import local_image_error

            problem = local_image_error(self.attributes["image"])
            if problem:
                raise SandboxException(
                    _("Step *%s*: %s") % (step, problem),
                )

        # @resources: the larger value wins (Metaflow issue #467).
        asked_by: Dict[str, str] = {key: "@%s(%s=...)" % (self.name, key) for key in self._asked}
        for key in ("cpu", "memory", "disk", "gpu", "timeout"):
            # cpu, memory and disk not given: the METAFLOW_SANDBOX_* default.
            setting = key in ("cpu", "memory", "disk") and key not in self._asked
            _as_number(
                self.attributes[key],
                key,
                step,
                "METAFLOW_SANDBOX_" + key.upper() if setting else "",
            )
        for deco in decos:
            if isinstance(deco, ResourcesDecorator):
                for key in RESOURCES:
                    theirs = deco.attributes.get(key)
                    if theirs is None or theirs == "":
                        continue
                    # Checked as ours are: "4GB" is not dropped in favour of ours.
                    theirs = _as_number(theirs, key, step, "@resources(%s=...)" % key)
                    mine = self.attributes.get(key)
                    self.attributes[key] = str(max(float(mine or 0), theirs))
                    if _user_set(deco, key):
                        asked_by.setdefault(key, "@resources(%s=...)" % key)
        if self.attributes["gpu"] is not None and not float(self.attributes["gpu"]).is_integer():
            raise SandboxException(
                _("Invalid gpu value *%s* for step *%s*: it must be an integer.")
                % (self.attributes["gpu"], step)
            )
        # Rounded to whole seconds, 2.5 was a 2 s limit and 0.4 a 1 s one,
        # and the timeout's message named neither.
        timeout = self.attributes["timeout"]
        if timeout is not None and timeout != "" and not float(timeout).is_integer():
            raise SandboxException(
                "Invalid timeout value *%s* for step *%s*: it must be a whole number of "
                "seconds, as @timeout's are (for example timeout=%d)."
                % (timeout, step, max(1, math.ceil(float(timeout))))
            )

        if WORKLOAD_ENV not in os.environ:
            # Outside the sandbox only: the task inside it has no PyGObject to
            # ask the backend (and what it was given was checked already), and
            # host paths mean nothing there.
            self._check_resources(step, asked_by)
            self._check_shared_memory(step, decos)
            self._check_network_and_image(step)
            self._check_network_and_datastore(step, flow_datastore.TYPE)
            self._check_image(step)

        # @timeout and timeout=: the smaller one wins.
        self.run_time_limit = int(get_run_time_limit_for_task(decos))
        self._limit_given = bool(self.attributes["timeout"]) or any(
            isinstance(deco, TimeoutDecorator) for deco in decos
        )
        if WORKLOAD_ENV in os.environ:
            # In the task: the watch (_arm_timeout_watchdog) needs to know
            # whether @timeout's handler has run.
            for deco in decos:
                if isinstance(deco, TimeoutDecorator):
                    self._note_when_run(deco)
        self._timeout_secs = 0
        if self.attributes["timeout"]:
            secs = max(1, int(round(float(self.attributes["timeout"]))))
            if secs < self.run_time_limit:
                self._timeout_secs = secs
                # In the task, one SIGALRM: a @timeout with a longer limit is
                # shortened to ours (its message then names our duration).
                for deco in decos:
                    if isinstance(deco, TimeoutDecorator):
                        deco.secs = secs
                        deco.attributes.update(
                            {
                                "hours": secs // 3600,
                                "minutes": secs // 60 % 60,
                                "seconds": secs % 60,
                            }
                        )
                        self._timeout_secs = 0
            self.run_time_limit = min(self.run_time_limit, secs)
        if WORKLOAD_ENV not in os.environ:
            self._check_lifetime(step, decos)

    def _check_lifetime(self, step: str, decos) -> None:
        """A hosted sandbox lives REMOTE_LIFETIME_S at the most (the
        executor caps its time to live there): a time limit the user gave
        that it cannot outlast is refused, since the sandbox would vanish
        under the step before the limit ends it."""
        if self._can("SHARES_HOST_FS") or _capabilities(self.attributes["backend"]) is None:
            return
        given = []
        if self.attributes["timeout"]:
            given.append("@%s(timeout=...)" % self.name)
        given += ["@timeout" for deco in decos if isinstance(deco, TimeoutDecorator)]
        most = REMOTE_LIFETIME_S - REMOTE_TTL_MARGIN_S
        if given and self.run_time_limit > most:
            raise SandboxException(
                "Step *%s* has a time limit of %d seconds (%s), but a sandbox of the %s "
                "backend lives %d hours at the most, and %d seconds of that are kept "
                "for cleaning up: give it a limit of %d seconds or less, or run the step "
                "on the local backend."
                % (
                    step,
                    self.run_time_limit,
                    " and ".join(given),
                    self.attributes["backend"],
                    REMOTE_LIFETIME_S // 3600,
                    REMOTE_TTL_MARGIN_S,
                    most,
                )
            )

    def _check_environment_vars(self, step: str, decos) -> None:
        """A variable that env= and @environment(vars=...) both set, to
        different values: refused, since one of the two would be dropped
        without a word (env= is applied last). So is one that the sandbox
        sets itself for the task (SANDBOX_SET_ENV), which replaced the
        user's value."""
        mine = self.attributes["env"] or {}
        given = [("@%s(env=...)" % self.name, mine)]
        for deco in decos:
            if deco.name == "environment" and isinstance(deco.attributes.get("vars"), dict):
                given.append(("@environment(vars=...)", deco.attributes["vars"]))
        for where, variables in given:
            own = sorted(str(k) for k in variables if _sandbox_sets(str(k)))
            if own:
                raise SandboxException(
                    "Step *%s* sets %s in %s, but the sandbox sets %s itself for every "
                    "sandboxed task (where Metaflow, the flow's code and its run are), so the "
                    "value would be dropped: remove %s (call a program elsewhere by its "
                    "absolute path; put modules in the flow's code package)."
                    % (
                        step,
                        ", ".join(own),
                        where,
                        "them" if len(own) > 1 else "it",
                        "them" if len(own) > 1 else "it",
                    )
                )
        for deco in decos:
            if deco.name != "environment":
                continue
            theirs = deco.attributes.get("vars")
            if not isinstance(theirs, dict):
                continue
            clash = sorted(k for k in mine if k in theirs and str(theirs[k]) != mine[k])
            if clash:
                raise SandboxException(
                    "Step *%s* sets %s in both @environment(vars=...) and @%s(env=...), "
                    "to different values: set each variable in one of them."
                    % (step, ", ".join(clash), self.name)
                )

    def _can(self, capability: str) -> bool:
        """Whether the step's backend reports @capability (False for an
        unknown backend, which preflight reports before the run)."""
        return capability in (_capabilities(self.attributes["backend"]) or ())

    def _check_resources(self, step: str, asked_by: Dict[str, str]) -> None:
        """Each backend applies a request or refuses it here, before the run,
        as its capabilities say; what a backend ignores is not sent (nor
        recorded as the task's)."""
        backend = self.attributes["backend"]
        capabilities = _capabilities(backend)
        if capabilities is None:
            return
        has_image = bool(self.attributes["image"]) and not str(self.attributes["image"]).startswith(
            "snapshot:"
        )
        needs_image = "LIMITS_NEED_IMAGE" in capabilities
        for key in RESOURCES:
            if self.attributes[key] is None or self.attributes[key] == "":
                continue
            applies = RESOURCE_CAPABILITIES[key] in capabilities
            if applies and (has_image or not needs_image):
                continue
            if key not in asked_by:
                self.attributes[key] = None
                continue
            if applies:
                msg = _(
                    "Step *%s* asks for %s=%s with %s, but the %s backend sizes a sandbox "
                    "from its snapshot: give @%s an image= (for example "
                    'image="python:3.12-slim") to choose %s, or remove %s.'
                ) % (
                    step,
                    key,
                    self.attributes[key],
                    asked_by[key],
                    backend,
                    self.name,
                    key,
                    asked_by[key],
                )
            else:
                msg = _(
                    "Step *%s* asks for %s=%s with %s, but the %s backend cannot apply %s: "
                    "remove %s, or run the step on a backend that applies it."
                ) % (step, key, self.attributes[key], asked_by[key], backend, key, asked_by[key])
            raise SandboxException(msg)

    def _check_shared_memory(self, step: str, decos) -> None:
        """@resources(shared_memory=N), the size of /dev/shm (MB), was
        dropped without a word. The local backend's /dev/shm holds a
        quarter of the step's memory limit: N up to that is honoured, more
        is refused naming the memory that gives it. No other backend sizes
        /dev/shm: refused there."""
        for deco in decos:
            if not isinstance(deco, ResourcesDecorator) or not _user_set(deco, "shared_memory"):
                continue
            asked = _as_number(
                deco.attributes.get("shared_memory"),
                "shared_memory",
                step,
                "@resources(shared_memory=...)",
            )
            if asked is None:
                continue
            backend = self.attributes["backend"]
            shown = "%g" % asked
            if backend != "local":
                raise SandboxException(
                    _(
                        "Step *%s* asks for shared_memory=%s with @resources(shared_memory=...), "
                        "but the %s backend cannot size /dev/shm: remove shared_memory, or run "
                        "the step on the local backend, where /dev/shm holds a quarter of the "
                        "step's memory."
                    )
                    % (step, shown, backend)
                )
            memory = self.attributes["memory"]
            if memory is None or memory == "" or asked <= float(memory) / 4:
                continue
            raise SandboxException(
                _(
                    "Step *%s* asks for shared_memory=%s with @resources(shared_memory=...), "
                    "but on the local backend /dev/shm holds a quarter of the step's memory "
                    "(memory=%g gives %g MB): ask for memory=%d or more (with @resources or "
                    "@sandbox), or remove shared_memory."
                )
                % (step, shown, float(memory), float(memory) / 4, math.ceil(asked * 4))
            )

    def _check_network_and_image(self, step: str) -> None:
        """network= and image= the backend cannot honour, as its
        capabilities say, are refused before the run: a backend without
        NETWORK_POLICY gives its sandboxes whatever network it has (on or
        off, whatever was asked), one without IMAGES (nor this machine's
        image store, SHARES_HOST_FS) runs its own image, and only the local
        backend has this machine's root (image="host"). Without network=,
        runtime_init warns that "no network" cannot be promised."""
        backend = self.attributes["backend"]
        capabilities = _capabilities(backend)
        if capabilities is None:
            return
        if "NETWORK_POLICY" not in capabilities and not _user_set(self, "network"):
            # Not sent on (the task's --with), where it would read as given.
            self.attributes["network"] = None
        elif "NETWORK_POLICY" not in capabilities:
            raise SandboxException(
                _(
                    "Step *%s* asks for network=%s, but the %s backend cannot turn a "
                    "sandbox's network on or off: remove network= from @%s, or run the "
                    "step on a backend that can (local, daytona, e2b)."
                )
                % (step, self.attributes["network"], backend, self.name)
            )
        image = self.attributes["image"]
        if not image:
            return
        given = (
            "@%s(image=...)" % self.name if _user_set(self, "image") else "METAFLOW_SANDBOX_IMAGE"
        )
        if "SHARES_HOST_FS" not in capabilities and image == "host":
            raise SandboxException(
                _(
                    'Step *%s* asks for image="host" with %s, this machine\'s own root, '
                    "which only the local backend has: remove it to run on the %s "
                    "backend's default image, or name an image."
                )
                % (step, given, backend)
            )
        if "SHARES_HOST_FS" not in capabilities and "IMAGES" not in capabilities:
            raise SandboxException(
                _(
                    "Step *%s* asks for image=%s with %s, but the %s backend runs its own "
                    "image and cannot run another: remove it, or run the step on a backend "
                    "that runs images (local, daytona, e2b)."
                )
                % (step, image, given, backend)
            )

    def _check_network_and_datastore(self, step: str, datastore_type: str) -> None:
        """A step with a remote datastore reads and writes it over the
        network itself, so its sandbox has network whatever network= says:
        network=False given by the user (not the default) cannot be
        honoured and is refused, where the step got network without a word."""
        if datastore_type not in REMOTE_DATASTORES or self.attributes["network"] is None:
            return
        if not _launches_the_run():
            # A task's or the trampoline's process gets every attribute from
            # the runtime's --with spec, given or not: asked in the run only.
            return
        if self.attributes["network"] or not _user_set(self, "network"):
            return
        raise SandboxException(
            "Step *%s* asks for network=False with @%s(network=...), but with the %s "
            "datastore the step reads and writes the datastore over the network itself, "
            "so its sandbox has network access: remove network=False, or run the flow "
            "with --datastore=local to keep the step off the network."
            % (step, self.name, datastore_type)
        )

    def _check_image(self, step: str) -> None:
        image = self.attributes["image"]
        # Names and digests are looked up in the image store (local_image_error).
        # A root file system directory: for a backend that shares the host's
        # file system (local).
        if not image or not os.path.isabs(image) or not self._can("SHARES_HOST_FS"):
            return
        if not os.path.isdir(image):
            raise SandboxException(
                _(
                    "Step *%s*: @%s(image=%s) is not usable on the local backend, which "
                    'accepts image="host" (the default: this machine\'s own root), the '
                    "absolute path of a root file system directory, or the name of an image "
                    "imported with `sandboxctl image import`."
                )
                % (step, self.name, image)
            )
        if not os.path.exists(os.path.join(image, "bin", "sh")):
            raise SandboxException(
                _(
                    "Step *%s*: @%s(image=%s) has no bin/sh, so it is not a root file "
                    "system the local backend can run a step in."
                )
                % (step, self.name, image)
            )

    # -- LAUNCH ----------------------------------------------------------------

    def runtime_init(self, flow, graph, package, run_id) -> None:
        self.flow = flow
        self.graph = graph
        self.package = package
        self.run_id = run_id
        if getattr(self, "statically_defined", False):
            # Metaflow attaches --with NAME:... only to steps without @NAME:
            # said here, since the attributes change nothing for this step.
            for spec in _with_specs(self.name):
                sys.stderr.write(
                    _(
                        "--with %s does not change step %s, whose @%s is in the flow's code "
                        "(Metaflow applies --with only to steps without that decorator): give "
                        "those values to its @%s(...)."
                    )
                    % (spec, self.step, self.name, self.name)
                    + "\n"
                )
        # Fail before any task runs if PyGObject, the typelib, the backend or its
        # configuration (bubblewrap, API keys) is missing.
        from .sandbox_executor import preflight

        preflight(self.attributes["backend"])
        caps = _capabilities(self.attributes["backend"])
        if caps is not None and "NETWORK_POLICY" not in caps:
            # network= itself is refused (step_init); its default cannot be
            # promised either: said, not dropped.
            sys.stderr.write(
                _(
                    "Step %s runs on the %s backend, which cannot turn a sandbox's network "
                    "off: the step has whatever network that backend gives its sandboxes."
                )
                % (self.step, self.attributes["backend"])
                + "\n"
            )
        # What the runtime reads of the tasks' artifacts is written by code in
        # sandboxes: rebuilt as plain data only (sandbox_safeload.py).
        from .sandbox_safeload import install

        install()
        # A remote backend with the local datastore: the trampoline copies each
        # task's inputs in and its outputs back (sandbox_sync.py).
        caps = _capabilities(self.attributes["backend"]) or frozenset()
        reuse = str(getattr(metaflow_config, "SANDBOX_REUSE", True)).strip().lower()
        if (
            "SHARES_HOST_FS" not in caps
            and SandboxDecorator.pool_dir is None
            and reuse not in ("0", "false", "no", "off")
        ):
            # Hosted sandboxes are slow to create and to fill with the code
            # package: the run's tasks take turns with them (sandbox_pool.py).
            import atexit

            from .sandbox_pool import abandoned_pool_dirs, new_pool_dir

            # The pools of runs that were killed before they could drain
            # theirs: their sandboxes would otherwise live to their time to
            # live, and the directories for ever.
            for abandoned in abandoned_pool_dirs():
                from .sandbox_executor import destroy_pooled

                destroy_pooled(abandoned, abandoned=True)
            SandboxDecorator.pool_dir = new_pool_dir()
            atexit.register(SandboxDecorator._drain_pool)
            # The runtime ends its run on Ctrl-C (runtime_finished); SIGTERM
            # and SIGHUP would end this process without it.
            for signum in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(signum) == signal.SIG_DFL:
                    try:
                        signal.signal(signum, SandboxDecorator._drain_and_die)
                    except ValueError:  # not the main thread
                        pass
        if self.step == "start" and SandboxDecorator.pool_dir is not None:
            # The run's first task: its sandbox is made while the runtime
            # builds the code package and starts the task.
            from .sandbox_executor import prepare_first_sandbox

            prepare_first_sandbox(self, run_id)

    def runtime_task_created(
        self, task_datastore, task_id, split_index, input_paths, is_cloned, ubf_context
    ) -> None:
        if not is_cloned:
            from .sandbox_executor import direct_capable, remote_capable

            # A task started directly needs no package location (nor waits
            # for the package, built in the background as without @sandbox);
            # nor does a remote task without the trampoline, which gets it
            # once it is there (sandbox_executor.remote_launch); the
            # trampoline's launch saves it (runtime_step_cli).
            if not direct_capable(self) and not remote_capable(self):
                self._save_package_once(self.flow_datastore, self.package)

    def runtime_step_cli(self, cli_args, retry_count, max_user_code_retries, ubf_context) -> None:
        if retry_count > max_user_code_retries:
            # The @catch fallback attempt runs locally, as with @kubernetes.
            return
        from .sandbox_executor import direct_launch, remote_launch

        if direct_launch(self, cli_args, retry_count):
            return
        if remote_launch(self, cli_args, retry_count):
            return
        if self.step == "start":
            # The trampoline does not take a prepared sandbox.
            from .sandbox_executor import stop_prepare

            stop_prepare(wait=False)
        self._save_package_once(self.flow_datastore, self.package)
        cli_args.commands = ["sandbox", "step"]
        options = cli_args.command_options
        options["code-package-metadata"] = self.package_metadata
        options["code-package-sha"] = self.package_sha
        options["code-package-url"] = self.package_url
        options["decorator"] = self.name
        for key in ("backend", "image", "cpu", "memory", "disk", "gpu"):
            options[key] = self.attributes[key]
        if self.attributes["env"]:
            options["sandbox-env"] = json.dumps(self.attributes["env"])
        options["network"] = bool(self.attributes["network"])
        options["run-time-limit"] = self.run_time_limit
        cli_args.entrypoint[0] = sys.executable
        if SandboxDecorator.pool_dir is not None:
            from .sandbox_pool import POOL_ENV

            cli_args.env[POOL_ENV] = SandboxDecorator.pool_dir

    def runtime_finished(self, exception) -> None:
        # The code package extracted for direct launches (once per run).
        from .sandbox_executor import remove_code_dirs

        remove_code_dirs()
        # Every sandbox of the run's pool, also after a failure or Ctrl-C
        # (the runtime has stopped its tasks by now); after a run that went
        # well, with its bytecode kept for the next run.
        SandboxDecorator._drain_pool(keep_bytecode=exception is None)

    @staticmethod
    def _drain_and_die(signum, frame) -> None:
        SandboxDecorator._drain_pool()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    @staticmethod
    def _drain_pool(keep_bytecode: bool = False) -> None:
        pool_dir = SandboxDecorator.pool_dir
        if pool_dir is None:
            return
        SandboxDecorator.pool_dir = None
        from .sandbox_executor import destroy_pooled, stop_prepare

        stop_prepare()

        destroy_pooled(pool_dir, keep_bytecode)

    @classmethod
    def _save_package_once(cls, flow_datastore, package) -> None:
        # Also called from the runtime's thread that waits for the package
        # for a remote task started before it was built (sandbox_executor.
        # remote_launch): one saves it, the other waits for that.
        with _PACKAGE_LOCK:
            if SandboxDecorator.package_url is not None:
                return
            # FEAT_ALWAYS_UPLOAD_CODE_PACKAGE: Metaflow >= 2.16 only.
            if getattr(metaflow_config, "FEAT_ALWAYS_UPLOAD_CODE_PACKAGE", False):
                url, sha = package.package_url(), package.package_sha()
            else:
                url, sha = flow_datastore.save_data([package.blob], len_hint=1)[0]
            if getattr(flow_datastore, "TYPE", None) == "local":
                _restore_package_blob(url, sha, package.blob)
            SandboxDecorator.package_metadata = getattr(package, "package_metadata", None)
            SandboxDecorator.package_sha = sha
            SandboxDecorator.package_url = url

    @staticmethod
    def _package_pending(package) -> bool:
        """True while Metaflow (>= 2.16) is still building the run's code
        package in its background thread (nothing saved by us yet); never
        blocks. A packaging failure is raised here, as _save_package_once
        would."""
        if SandboxDecorator.package_url is not None:
            return False
        probe = getattr(package, "package_sha", None)
        if not callable(probe):
            return False  # built before the runtime started
        return probe(timeout=0) is None

    # -- TASK (inside the sandbox) ----------------------------------------------

    def task_pre_step(
        self,
        step_name,
        task_datastore,
        metadata,
        run_id,
        task_id,
        flow,
        graph,
        retry_count,
        max_retries,
        ubf_context,
        inputs,
    ) -> None:
        self.metadata = metadata
        self.task_datastore = task_datastore
        if WORKLOAD_ENV not in os.environ:
            return
        if os.environ.pop("MF_SANDBOX_ANNOUNCE", None):
            # Started directly by sandboxctl (no trampoline to say it).
            sys.stderr.write(
                _("Task is starting in sandbox %s (backend %s).")
                % (
                    os.environ.get("METAFLOW_SANDBOX_ID", "?"),
                    os.environ.get("METAFLOW_SANDBOX_BACKEND_NAME", "?"),
                )
                + "\n"
            )
        if (
            getattr(self, "_timeout_secs", 0)
            and ubf_context != "ubf_control"
            and retry_count <= max_retries
        ):
            # timeout= as @timeout does it: an exception in the step, which
            # @retry retries and @catch catches.
            self._timed_step = step_name
            signal.signal(signal.SIGALRM, self._on_timeout)
            signal.alarm(self._timeout_secs)
        if (
            getattr(self, "_limit_given", False)
            and ubf_context != "ubf_control"
            and retry_count <= max_retries
        ):
            self._arm_timeout_watchdog(self.run_time_limit)
        try:
            from metaflow.metadata_provider import MetaDatum
        except ImportError:  # Metaflow < 2.12
            from metaflow.metadata import MetaDatum

        entries: Dict[str, str] = {
            "sandbox-id": os.environ.get("METAFLOW_SANDBOX_ID", ""),
            "sandbox-backend": os.environ.get("METAFLOW_SANDBOX_BACKEND_NAME", ""),
            "sandbox-spec": os.environ.get("METAFLOW_SANDBOX_SPEC", "{}"),
        }
        metadata.register_metadata(
            run_id,
            step_name,
            task_id,
            [
                MetaDatum(
                    field=key,
                    value=value,
                    type=key,
                    tags=["attempt_id:%d" % retry_count],
                )
                for key, value in entries.items()
                if value
            ],
        )

    def _note_when_run(self, deco) -> None:
        """@deco's (a @timeout's) SIGALRM handler, which its task_pre_step
        installs, records that it ran before it raises the timeout."""
        original = deco._sigalrm_handler

        def handler(signum, frame):
            self._timeout_fired = True
            return original(signum, frame)

        deco._sigalrm_handler = handler

    def _arm_timeout_watchdog(self, limit: int) -> None:
        """TIMEOUT_KILL_GRACE_S after the step's time limit, unless the step
        has ended by then (task_post_step, task_exception) or the timeout's
        handler has run (it raised the exception; a step that caught it
        goes on, with its processes, as without the sandbox), kills the
        processes the step started: its main thread is waiting for one in
        C (os.system), where the handler cannot run, and now gets the
        exception at once, where it waited for the sandbox's backstop a
        minute later."""
        done = threading.Event()
        self._step_ended = done

        def watch() -> None:
            if done.wait(limit + TIMEOUT_KILL_GRACE_S):
                return
            if not getattr(self, "_timeout_fired", False):
                _kill_descendants(os.getpid())

        threading.Thread(target=watch, name="sandbox-timeout-watch", daemon=True).start()

    def _step_over(self) -> None:
        ended = getattr(self, "_step_ended", None)
        if ended is not None:
            ended.set()

    def _on_timeout(self, signum, frame) -> None:
        self._timeout_fired = True
        secs = self._timeout_secs
        msg = _("Step %s timed out after %d hours, %d minutes, %d seconds (@%s(timeout=%d)).") % (
            self._timed_step,
            secs // 3600,
            secs // 60 % 60,
            secs % 60,
            self.name,
            secs,
        )
        self.logger(msg)
        raise SandboxTimeoutException(msg)

    def task_post_step(self, step_name, flow, graph, retry_count, max_user_code_retries) -> None:
        self._step_over()
        if getattr(self, "_timed_step", None):
            signal.alarm(0)

    def task_exception(
        self, exception, step_name, flow, graph, retry_count, max_user_code_retries
    ) -> None:
        self._step_over()
        if getattr(self, "_timed_step", None):
            signal.alarm(0)

    def task_finished(self, step_name, flow, graph, is_task_ok, retry_count, max_retries) -> None:
        # With a remote datastore and local metadata, hand the metadata back
        # through the datastore (the trampoline copies it into the local root).
        if WORKLOAD_ENV not in os.environ:
            return
        metadata = getattr(self, "metadata", None)
        task_datastore = getattr(self, "task_datastore", None)
        flow_datastore = getattr(self, "flow_datastore", None)
        if (
            metadata is not None
            and metadata.TYPE == "local"
            and task_datastore is not None
            and flow_datastore is not None
            and flow_datastore.TYPE != "local"
        ):
            from metaflow.metadata_provider.util import (
                sync_local_metadata_to_datastore,
            )
            from metaflow.metaflow_config import DATASTORE_LOCAL_DIR

            sync_local_metadata_to_datastore(DATASTORE_LOCAL_DIR, task_datastore)


def _launches_the_run() -> bool:
    """Whether this process is the runtime of `run` or `resume` (not a
    task's `step` or the trampoline's `sandbox step`, which the runtime
    starts with each decorator's attributes spelt out)."""
    argv = sys.argv[1:]
    return "step" not in argv and any(word in ("run", "resume") for word in argv)


def _with_specs(name: str) -> list:
    """The --with NAME:ATTR=... options of this process's command line
    (before or after run/resume) that give attributes."""
    specs = []
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        if arg == "--with" and i + 1 < len(argv):
            spec = argv[i + 1]
        elif arg.startswith("--with="):
            spec = arg[len("--with=") :]
        else:
            continue
        head, sep, attrs = spec.partition(":")
        if head == name and sep and attrs.strip():
            specs.append(spec)
    return specs


def _decorated_step(deco) -> Any:
    """The step function DECO is attached to, while Metaflow initialises the
    decorators of every step (its loop variable, `step` or `flowstep` before
    2.16, a few frames up), or None where this Metaflow initialises them
    otherwise."""
    frame = sys._getframe(1)
    for _depth in range(8):
        frame = frame.f_back
        if frame is None:
            break
        for name in ("step", "flowstep"):
            step = frame.f_locals.get(name)
            decos = getattr(step, "decorators", None)
            if isinstance(decos, list) and any(d is deco for d in decos):
                return step
    return None


def _refuse_environment_decorators(deco) -> None:
    """@pypi and @conda on a sandboxed step: refused before Metaflow's own
    check, which would send the user to --environment=pypi or conda (that
    step_init then refuses too) rather than to --environment=uv."""
    step = _decorated_step(deco)
    if step is None:
        return
    # Those in the flow's source: --environment=pypi/conda adds its own to
    # every step, which step_init refuses naming the environment.
    env_decos = [
        d.name
        for d in step.decorators
        if d.name in ("conda", "pypi") and getattr(d, "statically_defined", False)
    ]
    if env_decos:
        raise SandboxException(
            _(
                "Step *%s* uses %s, which @%s does not support: give the flow a "
                "pyproject.toml and uv.lock and run it with --environment=uv instead "
                "(Metaflow's uv environment), or run this step without @%s."
            )
            % (step.__name__, "@" + env_decos[0], deco.name, deco.name)
        )


class DaytonaDecorator(SandboxDecorator):
    """
    Runs this step in a Daytona sandbox: @sandbox(backend="daytona").

    Takes the same parameters as @sandbox. Needs DAYTONA_API_KEY. Works with the
    local datastore (each task's data is copied in and out) and with s3,
    azure and gs (the step uses the datastore directly).
    """

    name = "daytona"
    _alias_backend = "daytona"

    # Metaflow calls init() only when the class itself defines it.
    def init(self) -> None:
        self._init_attributes()


class E2BDecorator(SandboxDecorator):
    """
    Runs this step in an E2B sandbox: @sandbox(backend="e2b").

    Takes the same parameters as @sandbox. Needs E2B_API_KEY. Works with the
    local datastore (each task's data is copied in and out) and with s3,
    azure and gs (the step uses the datastore directly).
    """

    name = "e2b"
    _alias_backend = "e2b"

    def init(self) -> None:
        self._init_attributes()
