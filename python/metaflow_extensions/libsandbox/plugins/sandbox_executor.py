"""Runs one task attempt in a libsandbox instance (the trampoline's work).

Every sandbox operation goes through ``gi.repository.Sandbox``; ``gi`` is
imported inside the functions below, never at module level.

Data flow for the local backend and the local datastore (zero copy): the
datastore root is bind-mounted read-write at the same absolute path, so the
task reads its inputs and writes artifacts, metadata, logs and DONE.lock
directly where the runtime and the client expect them; the code package blob
is read from the datastore and extracted in <workdir>/metaflow.

With the host's root, the runtime does not even start this trampoline: it
runs `sandboxctl run ... -- python flow.py step ...` (direct_launch), with
the flow's files copied once per run and mounted read-only.

A remote backend (daytona, e2b, ...) with the local datastore: the same
absolute path is filled in the sandbox with the task's inputs before the step
and its outputs come back afterwards (sandbox_sync.py).
"""

import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from metaflow import util
from metaflow.exception import METAFLOW_EXIT_DISALLOW_RETRY, MetaflowException

from .sandbox_decorator import REMOTE_LIFETIME_S, REMOTE_TTL_MARGIN_S, WORKLOAD_ENV
from .sandbox_i18n import _
from .sandbox_output import LineOutput
from .sandbox_remote import (
    Attempt,
    create_with_retries,
    destroy_by_id,
    destroy_many,
    die_of,
    interrupted,
    say_kept_for_debugging,
    say_term_signal,
    step_outcome,
)

LOG_DIR = ".logs"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RUNNER_MODULE = "metaflow_extensions.libsandbox.plugins.sandbox_runner"

# Host variables the step may need that are not secrets of another system.
# Everything else must be given with @environment or @sandbox(env=...).
PASSTHROUGH_PREFIXES = ("METAFLOW_",)
PASSTHROUGH_NAMES = ("LANG", "LC_ALL", "TZ")
# Credentials for a remote datastore travel by environment, never on a command line.
REMOTE_DATASTORE_PREFIXES = {
    "s3": ("AWS_",),
    "azure": ("AZURE_",),
    "gs": ("GOOGLE_", "GCLOUD_", "CLOUDSDK_"),
}
# Names of secrets among the variables passed to the step. They go into the
# sandbox's own environment (the spec, sent with the create request), never
# into the command: some backends (Daytona) can only pass a command's
# variables on its command line, which every process in the sandbox can read.
SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "CREDENTIAL", "_KEY")


def is_secret(name: str, datastore_type: str) -> bool:
    """Whether the variable @name carries a credential (or may)."""
    upper = name.upper()
    if upper.startswith(REMOTE_DATASTORE_PREFIXES.get(datastore_type, ())):
        return True
    return any(word in upper for word in SECRET_WORDS)


_CAPABILITIES: Dict[str, FrozenSet[str]] = {}
# `sandboxctl backends --json NAME`, once per backend and process: its
# entry (capabilities, configured, message, workdir), or None when no
# backend has that name
_SANDBOXCTL_BACKENDS: Dict[str, Optional[Dict[str, Any]]] = {}
_NO_ANSWER: Dict[str, Any] = {}


def _gi_loaded() -> bool:
    """Whether this process has loaded the library through gi: only then
    can it have a backend of its own (one written in Python and registered
    here, which no sandboxctl process knows)."""
    return "gi.repository.Sandbox" in sys.modules


def _sandboxctl_backend(backend: str) -> Optional[Dict[str, Any]]:
    """sandboxctl's word on @backend: {"capabilities": frozenset, "configured":
    bool, "message": str or None, "workdir": str or None}; None when no
    backend has that name; _NO_ANSWER when sandboxctl cannot say (none
    installed, or one too old to print capabilities). It loads only that
    backend: a few milliseconds of CPU, where importing gi for the same
    answer costs the run tens (issue 14, row 3a)."""
    if backend not in _SANDBOXCTL_BACKENDS:
        import subprocess

        tool = sandboxctl_tool()
        if tool is None:
            return _NO_ANSWER
        try:
            proc = subprocess.run(
                [tool, "backends", "--json", backend],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                timeout=60,
            )
            if proc.returncode == 3:
                _SANDBOXCTL_BACKENDS[backend] = None  # unknown backend
                return None
            if proc.returncode != 0:
                return _NO_ANSWER
            entries = json.loads(proc.stdout)
            entry = entries[0] if len(entries) == 1 else {}
            if entry.get("name") != backend or not isinstance(entry.get("capabilities"), list):
                return _NO_ANSWER
            _SANDBOXCTL_BACKENDS[backend] = {
                "capabilities": frozenset(str(c) for c in entry["capabilities"]),
                "configured": bool(entry["configured"]),
                "message": entry.get("message"),
                "workdir": entry.get("workdir"),
            }
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            subprocess.SubprocessError,
        ):
            return _NO_ANSWER
    return _SANDBOXCTL_BACKENDS[backend]


def backend_capabilities(backend: str) -> Optional[FrozenSet[str]]:
    """The names of the Sandbox.BackendCapabilities flags the backend
    reports (e.g. "MOUNTS"), or None if no backend has that name (preflight
    says so, with the names that exist). What a backend can do is the
    library's to say -- or, for a backend written in Python, its own
    do_get_capabilities' -- not a list of backend names here. Without gi
    loaded in this process, sandboxctl answers (the same library)."""
    if backend not in _CAPABILITIES and not _gi_loaded():
        entry = _sandboxctl_backend(backend)
        if entry:
            _CAPABILITIES[backend] = entry["capabilities"]
    if backend in _CAPABILITIES:
        return _CAPABILITIES[backend]
    _Gio, GLib, Sandbox = _load_gi()
    if backend not in _CAPABILITIES:
        try:
            mask = int(Sandbox.Backend.new_for_name(backend).get_capabilities())
        except GLib.Error as ex:
            if ex.matches(Sandbox.error_quark(), Sandbox.Error.UNKNOWN_BACKEND):
                return None
            raise
        flags = Sandbox.BackendCapabilities
        _CAPABILITIES[backend] = frozenset(
            name
            for name in dir(flags)
            if name.isupper() and int(getattr(flags, name)) and mask & int(getattr(flags, name))
        )
    return _CAPABILITIES[backend]


def _can(backend: str, capability: str) -> bool:
    """Whether the backend reports @capability, the name of a
    Sandbox.BackendCapabilities flag (e.g. "MOUNTS")."""
    return capability in (backend_capabilities(backend) or ())


def _sandboxctl_can_create(backend: str) -> bool:
    """Whether a sandboxctl process can create @backend: every backend but
    one that this process defined in Python (Sandbox.Backend.register from
    a flow or a module), which exists in this process only."""
    if not _gi_loaded():
        # No backend of this process's own: sandboxctl's list is the truth.
        entry = _sandboxctl_backend(backend)
        if entry is not _NO_ANSWER:
            return entry is not None
    _Gio, _GLib, Sandbox = _load_gi()
    try:
        cls = type(Sandbox.Backend.new_for_name(backend))
    except Exception:
        return False
    # Types written in C (built in or a GIO module) are wrapped in __gi__.
    return cls.__module__ == "__gi__" or cls.__module__.startswith("gi.")


def needs_network(options: "SandboxOptions", datastore_type: str) -> bool:
    """A step with a remote datastore reads and writes it over the network
    itself, so its sandbox gets network even when network= is off."""
    return bool(options.network) or datastore_type != "local"


# For --environment=uv: the host's proxy settings, and on the local backend
# (which sees the host's /etc) its certificate settings; UV_* as well.
UV_PASSTHROUGH = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
UV_LOCAL_PASSTHROUGH = ("SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "REQUESTS_CA_BUNDLE")
# uv's own certificate settings (UV_NATIVE_TLS is the older name): when the
# user sets none, a remote sandbox's uv uses the sandbox's certificate store.
UV_TLS_SETTINGS = ("UV_SYSTEM_CERTS", "UV_NATIVE_TLS", "SSL_CERT_FILE", "SSL_CERT_DIR")


# Metaflow variables that describe the launching machine, not the sandbox.
NOT_PASSED = frozenset(
    {
        "METAFLOW_SANDBOX_WORKLOAD",
        "METAFLOW_SANDBOX_ID",
        "METAFLOW_SANDBOX_BACKEND_NAME",
        "METAFLOW_SANDBOX_SPEC",
        "METAFLOW_SANDBOX_POOL",
    }
)


class SandboxExecutionError(MetaflowException):
    headline = "Sandbox error"


@dataclass
class SandboxOptions:
    decorator: str
    backend: str
    image: Optional[str]
    cpu: Optional[str]
    memory: Optional[str]
    disk: Optional[str]
    gpu: Optional[str]
    env: Optional[str]
    network: bool
    run_time_limit: Optional[int]
    code_package_metadata: Optional[str]
    code_package_sha: Optional[str]
    code_package_url: Optional[str]


# ---------------------------------------------------------------------------
# gi / libsandbox access


def local_image_error(image: Optional[str]) -> Optional[str]:
    """Why the local backend cannot use IMAGE, or None if it can.

    Accepted: unset, "host", an absolute rootfs directory, or NAME:TAG or a
    digest of an image imported with `sandboxctl image import` (issue 16).
    """
    if not image or image == "host" or os.path.isabs(image):
        return None
    Gio, GLib, Sandbox = _load_gi()
    try:
        Sandbox.ImageStore.new(None).lookup(image, None)
    except GLib.Error as ex:
        # Its message names the command that imports the image.
        return ex.message
    return None


def _load_gi(load: bool = True):
    """Imports PyGObject and the Sandbox-1.0 typelib, or explains what to
    install. With @load False, only checks that both are there: PyGObject
    imported and the typelib found, but neither the typelib nor libsandbox
    loaded (a few ms instead of ~80)."""
    try:
        import gi
    except ImportError:
        raise SandboxExecutionError(
            _(
                "@sandbox needs PyGObject, which %s cannot import. Install it "
                "(Debian/Ubuntu: sudo apt-get install python3-gi; Fedora: sudo dnf install "
                "python3-gobject) and run the flow with that Python; a virtualenv must be "
                "created with --system-site-packages to see it."
            )
            % sys.executable
        ) from None
    try:
        gi.require_version("Sandbox", "1.0")
        if not load:
            return None
        from gi.repository import Sandbox  # noqa: F401
    except (ValueError, ImportError) as ex:
        raise SandboxExecutionError(
            _(
                "@sandbox needs the libsandbox GObject-Introspection typelib Sandbox-1.0 "
                "(%s). Install libsandbox with its typelib (Debian/Ubuntu: sudo apt-get "
                "install gir1.2-sandbox-1.0), or for a build tree export "
                "GI_TYPELIB_PATH=<build>/introspection and "
                "LD_LIBRARY_PATH=<build>/libsandbox/.libs."
            )
            % ex
        ) from None
    from gi.repository import Gio, GLib, Sandbox

    return Gio, GLib, Sandbox


_PREFLIGHT_DONE: Dict[str, bool] = {}


def preflight(backend_name: str) -> None:
    """Checks, before any task runs, that the backend can be used from here."""
    if _PREFLIGHT_DONE.get(backend_name):
        return
    if not _gi_loaded():
        # sandboxctl knows it and whether it is configured, in a few ms;
        # gi itself is then loaded only by what needs it (the trampoline's
        # tasks), not by a run whose tasks sandboxctl starts. PyGObject and
        # the typelib are still checked here, before any task runs.
        entry = _sandboxctl_backend(backend_name)
        if entry:
            _load_gi(load=False)
            if not entry["configured"]:
                raise SandboxExecutionError(
                    _("The sandbox backend *%s* is not ready: %s")
                    % (backend_name, entry["message"])
                )
            _PREFLIGHT_DONE[backend_name] = True
            return
    Gio, GLib, Sandbox = _load_gi()
    # Only an unknown name lists the others: listing loads every backend,
    # and a task of the local backend should not load the remote ones.
    try:
        backend = Sandbox.Backend.new_for_name(backend_name)
    except GLib.Error as ex:
        if not ex.matches(Sandbox.error_quark(), Sandbox.Error.UNKNOWN_BACKEND):
            raise SandboxExecutionError(
                _("The sandbox backend *%s* is not ready: %s") % (backend_name, ex.message)
            ) from None
        known = list(Sandbox.Backend.list_names())
        raise SandboxExecutionError(
            _(
                "Unknown sandbox backend *%s*. Known backends: %s. Set it with "
                "@sandbox(backend=...), --with sandbox:backend=... or "
                "METAFLOW_SANDBOX_BACKEND."
            )
            % (backend_name, ", ".join(sorted(known)))
        ) from None
    try:
        backend.check_configured()
    except GLib.Error as ex:
        raise SandboxExecutionError(
            _("The sandbox backend *%s* is not ready: %s") % (backend_name, ex.message)
        ) from None
    _PREFLIGHT_DONE[backend_name] = True


# ---------------------------------------------------------------------------
# Building the command


def _echo(prefix: str, msg: str) -> None:
    sys.stderr.write("%s%s\n" % (prefix, msg))
    sys.stderr.flush()


def _real_under(path: str, root: str) -> bool:
    """_is_under for paths that are resolved already."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def _is_under(path: str, root: str) -> bool:
    return _real_under(os.path.realpath(path), os.path.realpath(root))


def include_file_roots(ds_root: str, mounted: List[str]) -> List[str]:
    """Where IncludeFile keeps the files it uploads with the local datastore,
    if a sandbox does not see it through @mounted: a task reads them at the
    same path (the parameter records it). That is DATATOOLS_LOCALROOT, by
    default <sysroot>/data beside the datastore root, or <datastore
    root>/data when no sysroot is configured."""
    try:
        from metaflow.metaflow_config import DATATOOLS_LOCALROOT, DATATOOLS_SUFFIX
    except ImportError:
        return []
    root = DATATOOLS_LOCALROOT or os.path.join(ds_root, DATATOOLS_SUFFIX or "data")
    root = os.path.realpath(root)
    if not os.path.isdir(root) or any(_is_under(root, m) for m in mounted):
        return []
    return [root]


def task_write_dirs(
    ds_root: str,
    card_roots: List[str],
    flow: str,
    run_id: str,
    step: str,
    task_id: str,
    gang: bool,
    cards: bool,
) -> List[str]:
    """The directories of the local datastore (resolved) that a task's
    sandbox may write, on top of the datastore and card roots it sees
    read-only: the task's own directory (data, metadata, logs, DONE.lock),
    its flow's content-addressed blobs (<Flow>/data) and, for a step with
    cards, its own card directory. A @parallel gang or an unbounded
    foreach's control task (@gang) makes its sibling tasks itself: the
    step's directory then. @card_roots: where the step's cards may go (see
    _card_roots). Made here when missing (the runtime made the
    task's with local metadata).

    The whole datastore was read-write before: a step rewrote other flows'
    and runs' artifacts, metadata, cards and DONE.lock files, which later
    runs, the client and the runtime read as theirs (docs/security.md)."""
    tail = [] if gang else [str(task_id)]
    dirs = [
        os.path.join(ds_root, flow, str(run_id), step, *tail),
        os.path.join(ds_root, flow, "data"),
    ]
    tail = [] if gang else ["tasks", str(task_id)]
    for card_root in card_roots if cards else []:
        dirs.append(os.path.join(card_root, flow, "runs", str(run_id), "steps", step, *tail))
    for path in dirs:
        os.makedirs(path, exist_ok=True)
        if os.path.realpath(path) != path:
            # A link on the way (left by an older version's sandbox) or a
            # name with "..": the mount would show the step another place.
            raise MetaflowException(
                _(
                    "The datastore directory %s is reached through a symbolic link "
                    "or '..'; a sandboxed task cannot be given it. Remove the link "
                    "(or rename the flow, run or step) and run again."
                )
                % path
            )
    return dirs


def uv_cache_dir(ds_root: str, flow: str) -> str:
    """The uv cache of FLOW's sandboxed tasks in a local datastore
    (--environment=uv): <datastore>/.uv-caches/<Flow>, one per flow. A step
    writes the cache its sandbox is given (uv needs it read-write, with
    links), and uv installs an unpacked wheel from it as it finds it: a
    cache shared by the datastore's flows let a step of one flow put its
    code in what the tasks of every other flow installed (session sec26).
    A new name: the old shared <datastore>/.uv-cache may hold such code."""
    return os.path.join(ds_root, ".uv-caches", flow)


def _make_uv_cache_dir(path: str) -> None:
    """Makes a flow's uv cache directory (uv_cache_dir) on the host, and
    refuses one reached through a link: the mount would give the step the
    link's target, read-write."""
    os.makedirs(path, mode=0o755, exist_ok=True)
    if os.path.realpath(path) != path:
        raise MetaflowException(
            _(
                "The uv cache directory %s is reached through a symbolic link or '..'; "
                "a sandboxed task cannot be given it. Remove the link and run again."
            )
            % path
        )


def _card_roots(ds_root: str, card_root: str) -> List[str]:
    """Where a task's cards go in a local datastore: <datastore>/mf.cards
    (found through the working directory's .metaflow) or the
    METAFLOW_CARD_LOCALROOT given, and with that variable set, Metaflow
    (2.19) writes them below the datastore root itself."""
    roots = [card_root]
    if os.environ.get("METAFLOW_CARD_LOCALROOT") and card_root != ds_root:
        roots.append(ds_root)
    return roots


_INCLUDE_UPLOADS: Dict[str, List[str]] = {}


def _include_upload_root() -> Optional[str]:
    """Where IncludeFile's local uploader puts what it uploads (resolved),
    or None when that cannot be told."""
    try:
        from metaflow.plugins.datatools.local import Local

        root = Local.get_root_from_config(lambda *args, **kwargs: None, create_on_absent=False)
    except Exception:  # noqa: BLE001 - another Metaflow: its configuration only
        try:
            from metaflow.metaflow_config import DATATOOLS_LOCALROOT as root
        except ImportError:
            root = None
    return os.path.realpath(root) if root else None


def include_file_uploads(flow, flow_datastore, run_id: str) -> List[str]:
    """The files this run's IncludeFile parameters uploaded to the local
    store (absolute paths, as their descriptors record them): a sandbox that
    does not share this machine's files gets a copy at the same path. Read
    once per run from its _parameters task (the values, also on resume).

    Only files of IncludeFile's own upload directory: the values are
    artifacts of the datastore, which a sandboxed step can rewrite (a local
    sandbox mounts it, a remote task's outputs are copied back into it), and
    a descriptor naming local:///root/.ssh/id_ed25519 had this machine send
    that file to every sandbox of the run (of a resumed run: the values are
    those of the run it resumes)."""
    key = "%s/%s" % (flow.name, run_id)
    if key in _INCLUDE_UPLOADS:
        return _INCLUDE_UPLOADS[key]
    found: List[str] = []
    upload_root = _include_upload_root()
    try:
        from metaflow.includefile import IncludeFile

        names = [var for var, param in flow._get_parameters() if isinstance(param, IncludeFile)]
    except (ImportError, AttributeError):
        names = []
    params_dir = os.path.join(flow_datastore.datastore_root, flow.name, str(run_id), "_parameters")
    task_ids = sorted(os.listdir(params_dir)) if names and os.path.isdir(params_dir) else []
    for task_id in task_ids:
        try:
            task_ds = flow_datastore.get_task_datastore(str(run_id), "_parameters", task_id)
        except Exception:  # noqa: BLE001 - not a task directory
            continue
        for name in names:
            try:
                value = task_ds[name]
            except Exception:  # noqa: BLE001 - a parameter without a value
                continue
            descriptor = getattr(value, "descriptor", value)
            if isinstance(descriptor, str):
                try:
                    descriptor = json.loads(descriptor)
                except ValueError:
                    continue
            url = descriptor.get("url") if isinstance(descriptor, dict) else None
            if isinstance(url, str) and url.startswith("local://"):
                path = url[len("local://") :]
                if (
                    upload_root is not None
                    and os.path.isabs(path)
                    and _real_under(os.path.realpath(path), upload_root)
                    and os.path.isfile(path)
                    and path not in found
                ):
                    found.append(path)
    _INCLUDE_UPLOADS[key] = found
    return found


# A local sandbox sees the host's root read-only, except these directories,
# which it gets fresh or empty (home directories are hidden): a Python
# environment (or extension) kept under one of them must be mounted to be
# seen at the same path.
_LOCAL_PRIVATE_DIRS = tuple(
    d
    for d in (
        "/tmp",
        "/var/tmp",
        "/run",
        "/dev",
        "/proc",
        "/root",
        "/home",
        os.path.expanduser("~"),
    )
    if d != "/"
)


def _hidden_python_paths(exclude: List[str]) -> List[str]:
    """The interpreter's prefixes and import paths that a local sandbox hides.

    sys.path[0] (the flow's own directory) is left out: the step runs from
    the code package. So is anything holding one of the @exclude mounts.
    """
    candidates = [sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    candidates += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    candidates += [p for p in sys.path[1:] if p and os.path.isabs(p)]
    # Tools the step's environment runs (--environment=uv).
    candidates += [os.path.dirname(os.path.realpath(p)) for p in (shutil.which("uv"),) if p]
    # Every path resolved once (this runs twice per task in the runtime):
    # the checks below compare resolved paths only.
    private = [os.path.realpath(d) for d in _LOCAL_PRIVATE_DIRS]
    excluded = [os.path.realpath(m) for m in exclude]
    found: List[str] = []
    seen = set()
    for path in candidates:
        path = os.path.realpath(path)
        if path in seen:
            continue
        seen.add(path)
        if not any(_real_under(path, d) for d in private) or not os.path.isdir(path):
            continue
        if any(_real_under(m, path) for m in excluded):
            continue
        if any(_real_under(path, kept) for kept in found):
            continue
        found = [kept for kept in found if not _real_under(kept, path)] + [path]
    return found


def _task_env(
    env: Dict[str, str],
    options: "SandboxOptions",
    flow_file: str,
    run_id: str,
    ds_type: str,
    metadata_type: str,
) -> None:
    """Adds to @env what every sandboxed task gets, however it is started
    (direct_launch, remote_launch, the trampoline's build_task): how
    Metaflow finds its flow, run, datastore and metadata, and what the
    extension's hooks read in the task."""
    env.update(
        {
            "METAFLOW_FLOW_FILENAME": flow_file,
            "METAFLOW_USER": util.get_username() or env.get("METAFLOW_USER", "unknown"),
            "METAFLOW_RUN_ID": str(run_id),
            "METAFLOW_DEFAULT_DATASTORE": ds_type,
            "METAFLOW_DEFAULT_METADATA": str(metadata_type),
            WORKLOAD_ENV: "1",
            "METAFLOW_SANDBOX_BACKEND_NAME": options.backend,
            "METAFLOW_SANDBOX_SPEC": _spec_summary(options, ds_type),
            "PYTHONUNBUFFERED": "x",
            "PYTHONIOENCODING": "utf-8",
        }
    )


def _host_pythonpath() -> str:
    """The launching process's PYTHONPATH with each entry made absolute
    (a task does not start in this directory); "" when unset."""
    return os.pathsep.join(
        os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    )


def _post_extract_env(metadata: Optional[str], dest_dir: str) -> Dict[str, str]:
    if metadata:
        try:
            from metaflow.package import MetaflowPackage

            return dict(MetaflowPackage.get_post_extract_env_vars(metadata, dest_dir))
        except (ImportError, AttributeError):
            pass
    return {"PYTHONPATH": dest_dir}


def _host_env(datastore_type: str, source: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    prefixes = PASSTHROUGH_PREFIXES + REMOTE_DATASTORE_PREFIXES.get(datastore_type, ())
    env = {}
    for key, value in (os.environ if source is None else source).items():
        if key in NOT_PASSED or key.startswith("METAFLOW_INPUT_PATHS"):
            continue
        if key.startswith(prefixes) or key in PASSTHROUGH_NAMES:
            env[key] = value
    return env


def _build_spec(
    Sandbox,
    options: SandboxOptions,
    labels: Dict[str, str],
    workdir: str,
    datastore_type: str = "local",
    secrets: Optional[Dict[str, str]] = None,
):
    spec = Sandbox.Spec()
    if options.image and options.image != "host":
        spec.set_image(options.image)
    spec.set_workdir(workdir)
    # What a backend cannot apply (its capabilities) is refused or dropped
    # by the decorator (SandboxDecorator._check_resources).
    if options.cpu:
        spec.set_cpu(float(options.cpu))
    if options.memory:
        spec.set_memory_mb(int(float(options.memory)))
    if options.disk:
        spec.set_disk_mb(int(float(options.disk)))
    if options.gpu:
        spec.set_gpu(int(float(options.gpu)))
    if options.run_time_limit:
        # The instance's TTL: a backstop if this process dies without cleaning up.
        ttl = int(options.run_time_limit) + REMOTE_TTL_MARGIN_S
        if not _can(options.backend, "SHARES_HOST_FS"):
            # Hosted services cap a sandbox's lifetime (E2B: 24 hours); a
            # longer limit the user gave is refused before the run
            # (SandboxDecorator._check_lifetime).
            ttl = min(ttl, REMOTE_LIFETIME_S)
        spec.set_timeout(ttl)
    spec.set_network(needs_network(options, datastore_type))
    # The task's sandbox is this process's alone: it ends with it, even if
    # the process is killed before it can destroy the sandbox. Except under
    # METAFLOW_SANDBOX_DEBUG, which keeps a failed task's sandbox (its time
    # to live and `sandboxctl gc` still end it).
    spec.set_die_with_owner(not _debug_enabled())
    for key, value in labels.items():
        spec.set_label(key, value)
    for key, value in (secrets or {}).items():
        spec.set_env(key, value)
    return spec


def _spec_summary(options: SandboxOptions, datastore_type: str) -> str:
    return json.dumps(
        {
            "backend": options.backend,
            "image": options.image,
            "cpu": options.cpu,
            "memory": options.memory,
            "disk": options.disk,
            "gpu": options.gpu,
            "network": needs_network(options, datastore_type),
            "timeout": options.run_time_limit,
        },
        sort_keys=True,
    )


def build_task(
    ctx, step_name: str, options: SandboxOptions, kwargs: Dict[str, Any], pooled: bool = False
):
    """Returns (labels, roots, mounts, env, secrets, script) for the attempt;
    no sandbox needed. @roots are shown read-only, @mounts read-write on top
    of them (task_write_dirs). @secrets are the variables that belong in the sandbox's own
    environment (the spec), @env those of the command. @pooled: the sandbox
    may be one of the run's pool (sandbox_pool.py), which keeps the code
    package unpacked for the run's next tasks."""
    obj = ctx.obj
    flow_datastore = obj.flow_datastore
    ds_type = flow_datastore.TYPE
    node = obj.graph[step_name]
    run_id, task_id = kwargs["run_id"], kwargs["task_id"]
    attempt = int(kwargs.get("retry_count") or 0)

    workdir = _workdir(options.backend)
    pkg_dir = workdir.rstrip("/") + "/metaflow"
    if ds_type == "local":
        log_dir = pkg_dir + "/" + LOG_DIR
    else:
        # Metaflow's own bootstrap makes <workdir>/metaflow and logs before that.
        log_dir = workdir.rstrip("/") + "/" + LOG_DIR

    # Environment: explicit only (the sandbox inherits nothing).
    env = _host_env(ds_type)
    env_deco = [deco for deco in node.decorators if deco.name == "environment"]
    if env_deco:
        env.update({k: str(v) for k, v in env_deco[0].attributes["vars"].items()})
    if options.env:
        env.update({str(k): str(v) for k, v in json.loads(options.env).items()})

    input_paths = kwargs.get("input_paths")
    if input_paths:
        max_size = 30 * 1024
        split_vars = {
            "METAFLOW_INPUT_PATHS_%d" % (i // max_size): input_paths[i : i + max_size]
            for i in range(0, len(input_paths), max_size)
        }
        kwargs["input_paths"] = "".join("${%s}" % s for s in split_vars)
        env.update(split_vars)

    local_image = _can(options.backend, "SHARES_HOST_FS") and options.image in (None, "", "host")
    python = sys.executable if local_image else _sandbox_python(step_name, obj.environment)
    sync = needs_sync(ds_type, options.backend)
    # --environment=uv: Metaflow's bootstrap syncs the code package's uv.lock
    # into <pkg>/.venv in the sandbox and the step runs there; the bootstrap
    # and the runner keep a plain interpreter. uv sync reaches the index.
    uv_env = getattr(obj.environment, "TYPE", None) == "uv"
    step_python = shlex.quote(python)
    if uv_env:
        if python.startswith("uv "):
            python = "python3"
        step_python = "uv run --no-sync python"
        options.network = True

    top_args = " ".join(util.dict_to_cli_options(ctx.parent.parent.params))
    step_args = " ".join(util.dict_to_cli_options(kwargs))
    flow_file = os.path.basename(sys.argv[0])
    step_cli = "%s -u %s %s step %s %s" % (
        step_python,
        shlex.quote(flow_file),
        top_args,
        step_name,
        step_args,
    )

    # Read-only roots, then the directories the task writes on top of them.
    roots: List[str] = []
    mounts: List[str] = []
    ds_root = flow_datastore.datastore_root
    if ds_type != "local":
        # This machine's local directories mean nothing in the sandbox: local
        # metadata and cards go to its own .metaflow, then back through the
        # remote datastore (task_finished, _sync_metadata).
        for key in ("METAFLOW_DATASTORE_SYSROOT_LOCAL", "METAFLOW_CARD_LOCALROOT"):
            env.pop(key, None)
        if obj.metadata.TYPE == "local":
            seed = _local_metadata_seed(obj.flow.name, str(run_id), step_name, str(task_id))
            env["MF_SANDBOX_META_SEED"] = json.dumps(seed)
    if ds_type == "local" and sync:
        ds_root = os.path.realpath(ds_root)
        if os.path.basename(ds_root) == ".metaflow":
            env["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = os.path.dirname(ds_root)
    elif ds_type == "local":
        ds_root = os.path.realpath(ds_root)
        roots.append(ds_root)
        # Cards find their root by searching for .metaflow from the cwd (the
        # bootstrap links <pkg>/.metaflow to the datastore root), unless the
        # user set METAFLOW_CARD_LOCALROOT, which is passed through: mount it.
        card_root = os.environ.get("METAFLOW_CARD_LOCALROOT")
        if card_root and not _is_under(card_root, ds_root):
            card_root = os.path.realpath(card_root)
            os.makedirs(card_root, exist_ok=True)
            roots.append(card_root)
        else:
            card_root = os.path.realpath(card_root or os.path.join(ds_root, "mf.cards"))
        # Read-only but for the task's own directories (task_write_dirs).
        gang = bool(kwargs.get("ubf_context") == "ubf_control" or kwargs.get("num_parallel"))
        cards = any(deco.name == "card" for deco in node.decorators)
        mounts += task_write_dirs(
            ds_root,
            _card_roots(ds_root, card_root),
            obj.flow.name,
            run_id,
            step_name,
            task_id,
            gang,
            cards,
        )
        if os.path.basename(ds_root) == ".metaflow":
            env["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = os.path.dirname(ds_root)

    _task_env(env, options, flow_file, run_id, ds_type, obj.metadata.TYPE)
    env.update(
        {
            "METAFLOW_CODE_SHA": options.code_package_sha or "",
            "METAFLOW_CODE_URL": options.code_package_url or "",
            "METAFLOW_CODE_DS": ds_type,
            # mflog / save_logs
            "MF_PATHSPEC": "/".join((obj.flow.name, str(run_id), step_name, str(task_id))),
            "MF_DATASTORE": ds_type,
            "MF_ATTEMPT": str(attempt),
            "MF_DATASTORE_ROOT": ds_root,
            "MFLOG_STDOUT": log_dir + "/mflog_stdout",
            "MFLOG_STDERR": log_dir + "/mflog_stderr",
            # Synced datastore: this trampoline stores the logs (it has Metaflow
            # loaded), not a save_logs interpreter in the sandbox.
            "MF_SANDBOX_SAVE_LOGS": "host" if sync else "sandbox",
            # for the runner (kept off every command line)
            "MF_SANDBOX_STEP_CLI": step_cli,
            "MF_SANDBOX_PYTHON": python,
        }
    )
    if local_image or os.path.isabs(python):
        # The chosen interpreter (and its venv's tools) first on PATH: Metaflow's
        # own commands for a remote datastore run "python".
        env["PATH"] = os.path.dirname(python) + ":" + DEFAULT_PATH
    uv = shutil.which("uv") if uv_env and local_image else None
    if uv:
        # The host's uv (mounted read-only if hidden, _hidden_python_paths).
        env["PATH"] = env["PATH"] + ":" + os.path.dirname(os.path.realpath(uv))
    if uv_env and ds_type == "local" and not sync:
        # One uv cache for the tasks of this flow (a mount of its own,
        # read-write), not the user's own cache, nor one the datastore's
        # other flows share: a step rewrites the cache its sandbox writes,
        # and whatever installs from it later runs what the step put there
        # (uv does not check an unpacked wheel again). It was
        # <datastore>/.uv-cache for every flow (session sec26).
        env["UV_CACHE_DIR"] = uv_cache_dir(ds_root, obj.flow.name)
        env["UV_LINK_MODE"] = "copy"
    if local_image and ds_type != "local":
        # The host's interpreter already has boto3 & co (it runs this flow);
        # Metaflow would otherwise pip-install them at every task start.
        env.setdefault("METAFLOW_SKIP_INSTALL_DEPENDENCIES", "1")
    if options.code_package_metadata:
        env["METAFLOW_CODE_METADATA"] = options.code_package_metadata
    env.update(_post_extract_env(options.code_package_metadata, pkg_dir))
    if local_image and _host_pythonpath():
        # The host's root, so the launching Python's own PYTHONPATH, after the
        # code package's, as an unsandboxed task (and the direct launch) sees
        # it: a module found there must not be missing only because the step
        # went through the trampoline (an image, a remote datastore, configs).
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (env.get("PYTHONPATH"), _host_pythonpath()) if p
        )

    script = _bootstrap_script(
        ds_type, options, pkg_dir, log_dir, obj.environment, ds_root, step_name, pooled
    )
    if sync:
        # What the task writes after this moment comes back (sandbox_sync).
        from .sandbox_sync import marker_path

        script = "touch %s\n%s" % (shlex.quote(marker_path(workdir)), script)
    if not _can(options.backend, "SHARES_HOST_FS"):
        # A hosted image need not have the work directory yet.
        script = "mkdir -p %s && cd %s\n%s" % (shlex.quote(workdir), shlex.quote(workdir), script)
    labels = {
        "flow": obj.flow.name,
        "run_id": str(run_id),
        "step": step_name,
        "task_id": str(task_id),
        "attempt": str(attempt),
    }
    secrets = {key: env.pop(key) for key in list(env) if is_secret(key, ds_type)}
    if uv_env:
        # What uv needs to reach the index from here (an index URL may carry
        # credentials: the sandbox's own environment, never a command line).
        names = UV_PASSTHROUGH + (
            UV_LOCAL_PASSTHROUGH if _can(options.backend, "SHARES_HOST_FS") else ()
        )
        for key, value in os.environ.items():
            if (key.startswith("UV_") and key not in env) or key in names:
                secrets.setdefault(key, value)
        if not _can(options.backend, "SHARES_HOST_FS") and not any(
            key in secrets or key in env for key in UV_TLS_SETTINGS
        ):
            # The host's certificate files are not the sandbox's: uv trusts
            # the sandbox's own store (its image's CAs), as pip and curl there
            # do, instead of the bundle compiled into it.
            secrets.update({"UV_SYSTEM_CERTS": "1", "UV_NATIVE_TLS": "1"})
    return labels, roots, mounts, env, secrets, script


def _local_metadata_seed(flow: str, run_id: str, step: str, task_id: str) -> Dict[str, str]:
    """The flow's, run's, step's and task's local-metadata records that the
    runtime wrote here, for the sandbox's own .metaflow (runner writes them).

    With a remote datastore and local metadata the task records its metadata
    in the sandbox; code that looks the task up there with the client (cards
    render that way) needs the objects above it to exist.
    """
    from metaflow.metaflow_config import DATASTORE_LOCAL_DIR
    from metaflow.plugins.datastores.local_storage import LocalStorage

    root = LocalStorage.get_datastore_root_from_config(lambda *a, **k: None, create_on_absent=False)
    seed: Dict[str, str] = {}
    if not root:
        return seed
    parts = [flow, run_id, step, task_id]
    for depth in range(1, len(parts) + 1):
        rel = os.path.join(*parts[:depth], "_meta", "_self.json")
        try:
            with open(os.path.join(root, rel), encoding="utf-8") as f:
                seed[os.path.join(DATASTORE_LOCAL_DIR, rel)] = f.read()
        except OSError:
            pass
    return seed


def needs_sync(ds_type: str, backend: str) -> bool:
    """Local datastore, but the sandbox cannot mount it: copy in and out."""
    return ds_type == "local" and not _can(backend, "MOUNTS")


def _sandbox_python(step_name: str, environment) -> str:
    from metaflow.metaflow_config import SANDBOX_PYTHON

    if SANDBOX_PYTHON:
        return SANDBOX_PYTHON
    python = environment.executable(step_name)
    # Metaflow's default is "python", which many images lack; python3 is usual.
    return "python3" if python == "python" else python


def _debug_enabled() -> bool:
    from metaflow.metaflow_config import SANDBOX_DEBUG

    return bool(SANDBOX_DEBUG) and str(SANDBOX_DEBUG).lower() not in ("0", "false", "no")


_DEFAULT_WORKDIRS: Dict[str, Optional[str]] = {}


def backend_default_workdir(backend: str) -> Optional[str]:
    """Where the backend's sandboxes work when the spec names no workdir
    (Sandbox.Backend.dup_default_workdir: local /workspace, E2B the user's
    home), or None when it cannot tell before a sandbox exists or no
    backend has that name."""
    if backend not in _DEFAULT_WORKDIRS and not _gi_loaded():
        entry = _sandboxctl_backend(backend)
        if entry and "workdir" in entry:
            _DEFAULT_WORKDIRS[backend] = entry["workdir"]
    if backend in _DEFAULT_WORKDIRS:
        return _DEFAULT_WORKDIRS[backend]
    _Gio, GLib, Sandbox = _load_gi()
    if backend not in _DEFAULT_WORKDIRS:
        try:
            _DEFAULT_WORKDIRS[backend] = Sandbox.Backend.new_for_name(backend).dup_default_workdir()
        except GLib.Error as ex:
            if ex.matches(Sandbox.error_quark(), Sandbox.Error.UNKNOWN_BACKEND):
                return None
            raise
    return _DEFAULT_WORKDIRS[backend]


def _workdir(backend: str = "local") -> str:
    """METAFLOW_SANDBOX_WORKDIR, else the backend's own default workdir (one
    its commands can write), else /workspace, which the backend makes."""
    from metaflow.metaflow_config import SANDBOX_WORKDIR

    return SANDBOX_WORKDIR or backend_default_workdir(backend) or "/workspace"


def code_marker(pkg_dir: str) -> str:
    """The file of a pooled sandbox that names the code package unpacked
    in <pkg_dir>."""
    return os.path.dirname(pkg_dir.rstrip("/")) + "/.mf-code-sha"


def _bootstrap_script(
    ds_type,
    options: SandboxOptions,
    pkg_dir,
    log_dir,
    environment,
    ds_root,
    step_name,
    pooled: bool = False,
) -> str:
    """The shell script run in the sandbox: get the package, then the runner."""
    q = shlex.quote
    lines = ["set -e", "mkdir -p %s" % q(log_dir), "cd %s" % q(pkg_dir)]
    if ds_type == "local":
        # The blob lies in the mounted datastore: extract it in place.
        if not options.code_package_url:
            raise SandboxExecutionError(
                _("No code package location was given to the sandbox trampoline.")
            )
        untar = "tar --warning=no-timestamp --no-same-owner -xzf %s -C" % q(
            options.code_package_url
        )
        if pooled and options.code_package_sha:
            # Unpacked once per sandbox (the blob is sent only then, see
            # _send_inputs); the run's tasks then share the directory one
            # after the other, with its bytecode, as plain local tasks share
            # the flow's directory.
            marker, sha = q(code_marker(pkg_dir)), q(options.code_package_sha)
            lines[1:1] = [
                'if [ "$(cat %s 2>/dev/null)" != %s ]; then rm -rf %s %s && mkdir -p %s && '
                "%s %s && echo %s > %s; fi"
                % (marker, sha, marker, q(pkg_dir), q(pkg_dir), untar, q(pkg_dir), sha, marker)
            ]
        else:
            lines.append(untar + " .")
        # What Metaflow finds searching upwards for .metaflow (cards, a bare
        # local datastore lookup): the mounted datastore root itself.
        lines.append("ln -sfn %s .metaflow" % q(ds_root))
        if getattr(environment, "TYPE", None) == "uv":
            # What Metaflow's uv bootstrap does (uv.lock and pyproject.toml out
            # of the package, uv sync into ./.venv), without its list of
            # extension names to skip: a PYTHONPATH extension's name
            # (_pythonpath_0) is not a valid package name for uv.
            lines.append(
                '"$MF_SANDBOX_PYTHON" -c "import shutil; '
                "from metaflow.packaging_sys import MetaflowCodeContent as C, ContentType as T; "
                "[shutil.copy(C.get_filename(f, T.OTHER_CONTENT), f) "
                "for f in ('uv.lock', 'pyproject.toml')]\""
            )
            # uv itself: the image's (or the host's, on local), else from PyPI.
            lines.append(
                "command -v uv >/dev/null 2>&1 || { "
                '"$MF_SANDBOX_PYTHON" -m pip install --quiet --disable-pip-version-check '
                '--target .uv-tool uv && export PATH="$PWD/.uv-tool/bin:$PATH"; }'
            )
            lines.append("uv sync --quiet --frozen --no-dev --no-install-package metaflow")
            # And what Metaflow itself imports (requests; a datastore's client).
            from metaflow.metaflow_config import get_pinned_conda_libs

            pins = sorted(get_pinned_conda_libs(None, ds_type))
            if pins:
                lines.append("uv pip install --quiet %s" % " ".join(q(p) for p in pins))
    else:
        # Remote datastore: Metaflow's own download-and-extract commands (as
        # @kubernetes runs them), which create and enter ./metaflow themselves.
        cmds = environment.get_package_commands(
            options.code_package_url, ds_type, options.code_package_metadata
        )
        cmds += environment.bootstrap_commands(step_name, ds_type)
        # Their quoting is written for a `bash -c "..."` that goes through shlex.
        init = shlex.split('bash -c "%s"' % " && ".join(_posix_commands(cmds)))[2]
        lines = [
            "set -e",
            "cd %s" % q(os.path.dirname(pkg_dir.rstrip("/"))),
            "mkdir -p %s" % q(log_dir),
            "%s || exit 1" % init,
        ]
    if not _can(options.backend, "SHARES_HOST_FS") or options.image not in (None, "", "host"):
        # An image has only what was put in it (a remote backend's default
        # one too): say what is missing rather than fail with "not found",
        # a SyntaxError or a traceback.
        image = image_label(options.image, options.backend)
        lines[1:1] = _image_checks_before(image)
        lines.extend(_image_checks_after(image))
    lines.append('exec "$MF_SANDBOX_PYTHON" -m %s' % RUNNER_MODULE)
    return "\n".join(lines) + "\n"


def _posix_commands(cmds: List[str]) -> List[str]:
    """Metaflow's task commands (written for bash, as @kubernetes runs them)
    for POSIX sh, which is all an image may have: its log function
    (mflog.BASH_MFLOG) cuts a time stamp with bash's ${T:0:26}, which sh
    refuses ("Bad substitution"), ending the task before it starts."""
    return [cmd.replace("${T:0:26}", "$(printf %.26s $T)") for cmd in cmds]


RECIPE = "docs/metaflow.md, Local sandboxes on an image"


def _fail(message: str, code: Optional[int], *args: str) -> str:
    """Shell: print MESSAGE (a printf format: %s takes ARGS) on stderr, exit
    CODE (None: go on)."""
    fmt = message.replace("\\", "\\\\") + "\\n"
    end = "" if code is None else " exit %d;" % code
    return "{ printf -- %s %s >&2;%s }" % (shlex.quote(fmt), " ".join(args), end)


def image_label(image: Optional[str], backend: str) -> str:
    """How the checks' messages name the task's image: its name, or the
    backend's default image."""
    if image and image != "host":
        return image
    return "(the %s backend's default)" % backend


def _image_checks_before(image: str, python: str = '"$MF_SANDBOX_PYTHON"') -> List[str]:
    """Shell lines: the tools that unpack the code package and the
    interpreter @python (a shell word) are in the image."""
    names = {"image": image.replace("%", "%%"), "recipe": RECIPE}
    return [
        "for t in tar gzip mkdir ln; do command -v $t >/dev/null 2>&1 || "
        + _fail(
            _(
                "The image %(image)s has no %(tool)s, which unpacks the code package: add "
                "tar, gzip and coreutils to it (%(recipe)s)."
            )
            % dict(names, tool="%s"),
            127,
            '"$t"',
        )
        + "; done",
        "command -v %s >/dev/null 2>&1 || " % python
        + _fail(
            _(
                "The image %(image)s has no Python interpreter %(python)s: add python3 to it "
                "(Debian: apt-get install python3), or set METAFLOW_SANDBOX_PYTHON to the "
                "interpreter it has (%(recipe)s)."
            )
            % dict(names, python="%s"),
            127,
            python,
        ),
    ]


# The oldest Python the extension runs on (python/setup.py's
# python_requires), which is also what the task in an image needs: Metaflow
# and the extension come with the code package, and run there.
MIN_PYTHON = (3, 8)


def python_version_check(image: str, python: str = '"$MF_SANDBOX_PYTHON"') -> str:
    """A shell line that stops the task (status 1) when the interpreter
    @python (a shell word) is older than MIN_PYTHON, naming its version:
    an older one fails "import metaflow" with a SyntaxError deep in
    Metaflow, which says nothing of the version. Compared on what
    `python -V` prints (Python 2 prints it on stderr); it costs no import.
    Every path that runs a step on an image has it: the trampoline's
    script (_bootstrap_script) and the remote task's command
    (remote_script)."""
    old = "|".join(
        ['"Python 2."*']
        + [
            '"Python %d.%d" | "Python %d.%d."*' % (MIN_PYTHON[0], m, MIN_PYTHON[0], m)
            for m in range(MIN_PYTHON[1])
        ]
    )
    return (
        'mf_pyv=$(%s -V 2>&1 || true); case "$mf_pyv" in %s) ' % (python, old)
        + _fail(
            _(
                "The image %(image)s has %(found)s, too old for Metaflow and @sandbox, which "
                "need Python %(min)s or newer: use an image with a newer python3, or set "
                "METAFLOW_SANDBOX_PYTHON to a newer interpreter in it (%(recipe)s)."
            )
            % {
                "image": image.replace("%", "%%"),
                "found": "%s",
                "min": "%d.%d" % MIN_PYTHON,
                "recipe": RECIPE,
            },
            1,
            '"$mf_pyv"',
        )
        + " ;; esac"
    )


def metaflow_import_check(
    image: str, python: str = '"$MF_SANDBOX_PYTHON"', code: Optional[int] = 1
) -> str:
    """A shell command that says what to install, after Python's own error,
    when @python (a shell word) cannot import Metaflow from the code
    package, and then exits with @code (None: goes on)."""
    return '%s -c "import metaflow" || ' % python + _fail(
        _(
            "The image %(image)s cannot run Metaflow (the error is above): install "
            "Metaflow's dependencies in it, for example pip install metaflow==%(version)s "
            "(%(recipe)s)."
        )
        % {
            "image": image.replace("%", "%%"),
            "version": _metaflow_version(),
            "recipe": RECIPE,
        },
        code,
    )


def _image_checks_after(image: str) -> List[str]:
    # Python's own error (on stderr) comes first, then what to do.
    return [python_version_check(image), metaflow_import_check(image)]


def _metaflow_version() -> str:
    try:
        from metaflow.metaflow_version import get_version

        return str(get_version()).split("+")[0]
    except Exception:  # noqa: BLE001 - only for a hint in a message
        return "<the version you run>"


# ---------------------------------------------------------------------------
# Direct launch: a backend that shares the host's file system and mounts
# (local), the local datastore, the host's root


def sandboxctl_tool() -> Optional[str]:
    """The sandboxctl program: $SANDBOXCTL (a build tree), else on PATH."""
    tool = os.environ.get("SANDBOXCTL") or shutil.which("sandboxctl")
    return tool if tool and os.access(tool, os.X_OK) else None


# id(package) -> the directory of its code, once per run (this process)
_CODE_DIRS: Dict[int, str] = {}


def _safe_member(member) -> bool:
    name = member.name
    parts = name.split("/")
    if os.path.isabs(name) or ".." in parts or not (member.isfile() or member.isdir()):
        return False
    # The copy of Metaflow and its extensions: the task imports the host's
    # own installation (with its bytecode), as an unsandboxed task does.
    return parts[0] != ".mf_code"


def _user_files(package, flow, environment) -> Optional[List[Any]]:
    """The (path, name) of the flow's own files that the code package holds,
    without waiting for the package to be built (it is built in the
    background, as in an unsandboxed run); None when only the package
    knows (a decorator, mutator or environment adds files to it, or an
    older Metaflow)."""
    from metaflow.decorators import FlowDecorator, StepDecorator
    from metaflow.metaflow_environment import MetaflowEnvironment

    walk = getattr(package, "_user_code_tuples", None)
    if walk is None or getattr(flow, "_flow_mutators", None):
        return None
    if type(environment).add_to_package is not MetaflowEnvironment.add_to_package:
        return None
    for step in flow:
        if any(type(d).add_to_package is not StepDecorator.add_to_package for d in step.decorators):
            return None
    for decos in getattr(flow, "_flow_decorators", {}).values():
        if any(type(d).add_to_package is not FlowDecorator.add_to_package for d in decos):
            return None
    try:
        return list(walk())
    except Exception:  # a private method of Metaflow's: any surprise means no
        return None


def _copy_user_files(files, dest: str) -> None:
    for src, name in files:
        parts = name.split("/")
        if os.path.isabs(name) or ".." in parts or not os.path.isfile(src):
            continue
        target = os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(src, target)
        if os.stat(src).st_mode & 0o111:
            os.chmod(target, 0o755)


def _extract_user_files(blob, dest: str) -> None:
    import io
    import tarfile

    if hasattr(blob, "getvalue"):  # a BytesIO in some Metaflow versions
        blob = blob.getvalue()
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for member in tar:
            if _safe_member(member):
                tar.extract(member, dest, set_attrs=False)
                if member.isfile() and member.mode & 0o111:
                    os.chmod(os.path.join(dest, member.name), 0o755)


def code_dir(deco, ds_root: str, writable: List[str]) -> Optional[str]:
    """The flow's code for this run, put once on the host into a private
    directory that every task's sandbox mounts read-only; None when it
    cannot be (then the trampoline extracts the package in each sandbox)."""
    package = deco.package
    if id(package) in _CODE_DIRS:
        return _CODE_DIRS[id(package)]
    import atexit
    import tarfile
    import tempfile

    if not _CODE_DIRS:
        atexit.register(remove_code_dirs)  # also when the run is interrupted
        _remove_stale_code_dirs(tempfile.gettempdir())
    path = tempfile.mkdtemp(prefix="%s%d-" % (CODE_DIR_PREFIX, os.getpid()))
    if any(_is_under(path, w) or _is_under(w, path) for w in writable):
        # A task could reach it through a read-write mount.
        shutil.rmtree(path, ignore_errors=True)
        return None
    try:
        files = _user_files(package, deco.flow, deco.environment)
        if files is not None:
            _copy_user_files(files, path)
        else:
            _extract_user_files(package.blob, path)
        # What Metaflow finds searching upwards for .metaflow (cards): the
        # datastore root, mounted at its own path.
        if not os.path.lexists(os.path.join(path, ".metaflow")):
            os.symlink(ds_root, os.path.join(path, ".metaflow"))
    except (OSError, tarfile.TarError):
        shutil.rmtree(path, ignore_errors=True)
        return None
    _CODE_DIRS[id(package)] = path
    return path


CODE_DIR_PREFIX = "metaflow-sandbox-code-"


def _remove_stale_code_dirs(tmp: str) -> None:
    """Removes the code directories of earlier runs that ended without
    removing them (killed: atexit never ran), named after their pid."""
    try:
        names = os.listdir(tmp)
    except OSError:
        return
    for name in names:
        pid = name[len(CODE_DIR_PREFIX) :].split("-", 1)[0]
        if not name.startswith(CODE_DIR_PREFIX) or not pid.isdigit():
            continue
        path = os.path.join(tmp, name)
        try:
            if os.lstat(path).st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)  # still running (or the pid was reused): keep it
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def remove_code_dirs() -> None:
    while _CODE_DIRS:
        shutil.rmtree(_CODE_DIRS.popitem()[1], ignore_errors=True)


def _runtime_config_file() -> Optional[str]:
    """The file of flow config values that the runtime is about to pass the
    task (Worker._config_file_name, set before the decorators' hooks run and
    added to the command after them); None if it cannot be found."""
    frame = sys._getframe(1)
    for _depth in range(6):
        frame = frame.f_back
        if frame is None:
            break
        worker = frame.f_locals.get("self")
        name = getattr(worker, "_config_file_name", None)
        if type(worker).__name__ == "Worker" and name:
            name = os.path.realpath(name)
            return name if os.path.isfile(name) and ":" not in name else None
    return None


def _launcher_run_id_file() -> Optional[str]:
    """The --run-id-file of the `run` or `resume` command that launches the
    tasks (this process, whose command line has it), or None."""
    argv = sys.argv[1:]
    if not any(word in ("run", "resume") for word in argv):
        return None
    value = None
    for i, word in enumerate(argv):
        if word == "--run-id-file" and i + 1 < len(argv):
            value = argv[i + 1]
        elif word.startswith("--run-id-file="):
            value = word.split("=", 1)[1]
    return value or None


def _launcher_files(code: str) -> List[str]:
    """What a step finds in its working directory outside a sandbox and
    would miss in the code package: the launcher's --run-id-file (written
    before any task starts; Metaflow's own tests read it there). A relative
    one is copied into the run's code directory (the task's working
    directory, whose `.metaflow` link keeps cards where they belong); an
    absolute one is returned, to be mounted read-only at its own path."""
    path = _launcher_run_id_file()
    if not path or not os.path.isfile(path):
        return []
    if os.path.isabs(path):
        return [os.path.realpath(path)] if ":" not in path else []
    rel = os.path.normpath(path)
    if rel.startswith(".."):
        return []
    target = os.path.join(code, rel)
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 16)
        if not os.path.lexists(target):
            os.makedirs(os.path.dirname(target) or code, exist_ok=True)
            with open(target, "wb") as f:
                f.write(data)
    except OSError:
        pass
    return []


# Above this many top-level entries the code directory is mounted whole.
_CODE_MOUNTS_MAX = 64


def _code_mounts(code: str, pkg_dir: str, writable: List[str], cards: bool = True) -> List[str]:
    """sandboxctl --mount options that show the run's code (read-only) in
    PKG_DIR, the step's working directory: each top-level entry mounted on
    its own, so that the directory itself stays writable inside the sandbox
    (a step may write scratch files where it runs, as it can outside, and
    Metaflow's own tests do), while the code cannot be changed.

    The `.metaflow` link to the datastore root (code_dir) is where cards are
    staged (Metaflow searches upwards from the working directory): a mount
    would follow the link, so the datastore root itself is mounted there,
    read-only as at its own path, with the task's own directories under it
    (@writable, task_write_dirs) read-write without links, or cards would
    be lost. A step without cards (@cards false) needs no such mount: it
    finds its datastore through METAFLOW_DATASTORE_SYSROOT_LOCAL."""
    try:
        names = sorted(os.listdir(code))
    except OSError:
        names = []
    if not names or len(names) > _CODE_MOUNTS_MAX:
        return ["--mount", "%s:%s:ro" % (code, pkg_dir)]
    argv: List[str] = []
    for name in names:
        path = os.path.join(code, name)
        if name == ".metaflow" and os.path.islink(path):
            if not cards:
                continue
            real = os.path.realpath(path)
            argv += ["--mount", "%s:%s:ro" % (real, pkg_dir + "/" + name)]
            for sub in writable:
                if _real_under(sub, real) and sub != real:
                    inside = pkg_dir + "/" + name + sub[len(real) :]
                    argv += ["--mount", "%s:%s:nolinks" % (sub, inside)]
        else:
            argv += ["--mount", "%s:%s:ro" % (path, pkg_dir + "/" + name)]
    return argv


def direct_capable(deco) -> bool:
    """Whether the step's tasks can be started directly (direct_launch),
    as far as the step alone tells."""
    from metaflow.metaflow_config import SANDBOX_DIRECT

    attrs = deco.attributes
    if str(SANDBOX_DIRECT).strip().lower() in ("0", "false", "no", "off"):
        return False
    if _debug_enabled():
        # METAFLOW_SANDBOX_DEBUG keeps a failed task's sandbox: the trampoline's.
        return False
    if attrs["image"] not in (None, "", "host") or deco.flow_datastore.TYPE != "local":
        return False
    # The host's root and read-only mounts of the code and the interpreter,
    # by a sandboxctl process; the datastore's without links (an older
    # sandboxctl, which does not report that capability, cannot).
    backend = attrs["backend"]
    if not (
        _can(backend, "SHARES_HOST_FS")
        and _can(backend, "MOUNTS")
        and _can(backend, "MOUNT_NO_LINKS")
    ):
        return False
    return _sandboxctl_can_create(backend) and sandboxctl_tool() is not None


def direct_launch(deco, cli_args, retry_count: int) -> bool:
    """Rewrites the task's command into `sandboxctl run ... -- python -u
    flow.py step ...` when the step can run that way: then the task is what
    an unsandboxed task is (one interpreter, its output saved as logs by the
    runtime) plus entering the sandbox, and the code package is extracted
    once per run and mounted read-only. Returns False (the trampoline runs
    the task) for anything else: other backends or images, a remote
    datastore, flow configs (the runtime passes them in a file of the
    host's /tmp), no sandboxctl. A @retry attempt starts the same way
    (the runtime retries at once, whatever minutes_between_retries says)."""
    attrs = deco.attributes
    if not direct_capable(deco) or cli_args.commands != ["step"]:
        return False
    # A @parallel gang and --environment=uv (synced in the sandbox): the
    # trampoline's.
    if cli_args.command_options.get("ubf-context") or cli_args.command_options.get("num-parallel"):
        return False
    if cli_args.top_level_options.get("environment") not in (None, "local"):
        return False
    if any(d.name == "parallel" for d in deco.graph[deco.step].decorators):
        return False
    config_file = None
    if cli_args.top_level_options.get("config-value"):
        config_file = _runtime_config_file()
        if config_file is None:
            return False
    node = deco.graph[deco.step]
    tool = sandboxctl_tool()
    # sandboxctl's --mount takes HOST[:SANDBOX][:ro|:nolinks].
    paths = _hidden_python_paths(exclude=[]) + [deco.flow_datastore.datastore_root]
    if any(":" in p for p in paths):
        return False

    ds_root = os.path.realpath(deco.flow_datastore.datastore_root)
    # Read-only roots, and the task's own directories on top (task_write_dirs).
    roots = [ds_root]
    card_root = os.environ.get("METAFLOW_CARD_LOCALROOT")
    if card_root and not _is_under(card_root, ds_root):
        card_root = os.path.realpath(card_root)
        os.makedirs(card_root, exist_ok=True)
        roots.append(card_root)
    else:
        card_root = os.path.realpath(card_root or os.path.join(ds_root, "mf.cards"))
    include_roots = include_file_roots(ds_root, roots)
    if any(":" in p for p in include_roots):
        return False
    code = code_dir(deco, ds_root, roots)
    if code is None:
        return False
    launcher_files = _launcher_files(code)

    opts = cli_args.command_options
    run_id, task_id = str(opts["run-id"]), str(opts["task-id"])
    cards = any(d.name == "card" for d in node.decorators)
    try:
        writable = task_write_dirs(
            ds_root,
            _card_roots(ds_root, card_root),
            deco.flow.name,
            run_id,
            deco.step,
            task_id,
            False,
            cards,
        )
    except (MetaflowException, OSError):
        return False  # the trampoline says why
    if any(":" in p for p in writable):
        return False
    backend = attrs["backend"]
    options = SandboxOptions(
        decorator=deco.name,
        backend=backend,
        image=None,
        cpu=None if attrs["cpu"] is None else str(attrs["cpu"]),
        memory=None if attrs["memory"] is None else str(attrs["memory"]),
        disk=None if attrs["disk"] is None else str(attrs["disk"]),
        gpu=None if attrs["gpu"] is None else str(attrs["gpu"]),
        env=None,
        network=bool(attrs["network"]),
        run_time_limit=deco.run_time_limit if deco.run_time_limit > 0 else None,
        code_package_metadata=deco.package_metadata,
        code_package_sha=deco.package_sha,
        code_package_url=deco.package_url,
    )
    workdir = _workdir(backend)
    pkg_dir = workdir.rstrip("/") + "/metaflow"
    flow_file = os.path.basename(cli_args.entrypoint[-1])

    env = _host_env("local")
    env_deco = [d for d in node.decorators if d.name == "environment"]
    if env_deco:
        env.update({k: str(v) for k, v in env_deco[0].attributes["vars"].items()})
    if attrs["env"]:
        env.update({str(k): str(v) for k, v in attrs["env"].items()})
    if _host_pythonpath():
        # The host's Metaflow and extensions, as for an unsandboxed task.
        env["PYTHONPATH"] = _host_pythonpath()
    if os.path.basename(ds_root) == ".metaflow":
        env["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = os.path.dirname(ds_root)
    _task_env(env, options, flow_file, run_id, "local", cli_args.top_level_options.get("metadata"))
    env.update(
        {
            "PATH": os.path.dirname(sys.executable) + ":" + DEFAULT_PATH,
            # The step announces its sandbox (task_pre_step).
            "MF_SANDBOX_ANNOUNCE": "1",
        }
    )
    # METAFLOW_CODE_*: as for an unsandboxed task, set (above, from this
    # environment) once the runtime has the package, or from our own upload.
    if options.code_package_url:
        env.update(
            {
                "METAFLOW_CODE_SHA": options.code_package_sha or "",
                "METAFLOW_CODE_URL": options.code_package_url,
                "METAFLOW_CODE_DS": "local",
            }
        )
        if options.code_package_metadata:
            env["METAFLOW_CODE_METADATA"] = options.code_package_metadata

    argv = [tool, "run", "--backend", backend, "--workdir", workdir, "--cwd", pkg_dir]
    # A step killed by a signal looks so to the runtime ("segmentation fault").
    argv += ["--id-env", "METAFLOW_SANDBOX_ID", "--raise-signal"]
    labels = {
        "flow": deco.flow.name,
        "run_id": run_id,
        "step": deco.step,
        "task_id": task_id,
        "attempt": str(retry_count),
    }
    for key, value in labels.items():
        argv += ["--label", "%s=%s" % (key, value)]
    if options.cpu:
        argv += ["--cpu", str(float(options.cpu))]
    sizes = (("--memory", options.memory), ("--disk", options.disk), ("--gpu", options.gpu))
    for flag, value in sizes:
        if value:
            argv += [flag, str(int(float(value)))]
    if options.run_time_limit:
        argv += ["--timeout", str(int(options.run_time_limit) + 600)]
        # A backstop: @timeout itself fires inside the task first.
        argv += ["--cmd-timeout", str(int(options.run_time_limit) + 60)]
    if needs_network(options, "local"):
        argv.append("--network")
    # First, so that the read-write mounts below stay on top of these.
    for path in _hidden_python_paths(exclude=roots):
        argv += ["--mount", "%s:ro" % path]
    for path in roots:
        argv += ["--mount", "%s:ro" % path]
    for path in writable:
        # No link, FIFO or socket where host processes write (see run()).
        argv += ["--mount", "%s:nolinks" % path]
    sysroot_set = os.path.basename(ds_root) == ".metaflow"
    argv += _code_mounts(code, pkg_dir, writable, cards or not sysroot_set)
    for path in launcher_files:
        argv += ["--mount", "%s:ro" % path]
    # IncludeFile parameters, read where the launcher uploaded them.
    for path in include_roots:
        argv += ["--mount", "%s:ro" % path]
    if config_file:
        # Flow configs: the runtime passes the step --local-config-file, a
        # file in the host's /tmp; the sandbox sees it read-only, same path.
        argv += ["--mount", "%s:ro" % config_file]
    for key, value in sorted(env.items()):
        if is_secret(key, "local"):
            # Off the command line: sandboxctl passes its own value on.
            cli_args.env[key] = value
            argv += ["--env", key]
        else:
            argv += ["--env", "%s=%s" % (key, value)]
    argv += ["--", sys.executable, "-u", flow_file]
    cli_args.entrypoint = argv
    return True


REMOTE_MODULE = "metaflow_extensions.libsandbox.plugins.sandbox_remote"


def _remote_where(deco):
    """(the run's pool directory, the datastore root, the sandbox's workdir)
    when the tasks of @deco's step can run without the trampoline on a
    remote backend (remote_launch), else None."""
    from metaflow.metaflow_config import SANDBOX_DIRECT

    from .sandbox_decorator import SandboxDecorator

    backend = deco.attributes["backend"]
    pool_dir = SandboxDecorator.pool_dir
    if str(SANDBOX_DIRECT).strip().lower() in ("0", "false", "no", "off") or pool_dir is None:
        return None
    if deco.flow_datastore.TYPE != "local":
        return None
    if _can(backend, "SHARES_HOST_FS") or not needs_sync("local", backend):
        return None
    if any(d.name == "parallel" for d in deco.graph[deco.step].decorators):
        return None
    root = os.path.realpath(deco.flow_datastore.datastore_root)
    workdir = _workdir(backend).rstrip("/") or "/"
    if root == "/" or _real_under(workdir, root) or _real_under(root, workdir):
        return None
    return pool_dir, root, workdir


def remote_capable(deco) -> bool:
    """Whether the step's tasks can run on a remote backend without the
    trampoline (remote_launch), as far as the step alone tells."""
    return _remote_where(deco) is not None


def _remote_options(deco) -> SandboxOptions:
    attrs = deco.attributes
    return SandboxOptions(
        decorator=deco.name,
        backend=attrs["backend"],
        image=attrs["image"] or None,
        cpu=None if attrs["cpu"] is None else str(attrs["cpu"]),
        memory=None if attrs["memory"] is None else str(attrs["memory"]),
        disk=None if attrs["disk"] is None else str(attrs["disk"]),
        gpu=None if attrs["gpu"] is None else str(attrs["gpu"]),
        env=None,
        network=bool(attrs["network"]),
        run_time_limit=deco.run_time_limit if deco.run_time_limit > 0 else None,
        code_package_metadata=deco.package_metadata,
        code_package_sha=deco.package_sha,
        code_package_url=deco.package_url,
    )


def _remote_env(deco, source: Dict[str, str]) -> Dict[str, str]:
    """The step's variables from the host's (@source), @environment and
    @sandbox(env=...): those among them that are secrets go into the
    sandbox's own environment and into its pool key."""
    env = _host_env("local", source)
    env_deco = [d for d in deco.graph[deco.step].decorators if d.name == "environment"]
    if env_deco:
        env.update({k: str(v) for k, v in env_deco[0].attributes["vars"].items()})
    if deco.attributes["env"]:
        env.update({str(k): str(v) for k, v in deco.attributes["env"].items()})
    return env


def _remote_pool_key(options: SandboxOptions, secrets: Dict[str, str], workdir: str, debug: bool):
    from .sandbox_pool import pool_key as make_pool_key

    return make_pool_key(
        backend=options.backend,
        image=options.image,
        cpu=options.cpu,
        memory=options.memory,
        disk=options.disk,
        gpu=options.gpu,
        network=needs_network(options, "local"),
        run_time_limit=options.run_time_limit,
        secrets=secrets,
        workdir=workdir,
        debug=debug,
    )


def _remote_spec(options: SandboxOptions) -> Dict[str, Any]:
    ttl = None
    if options.run_time_limit:
        # The instance's TTL: a backstop if the task's process dies without
        # cleaning up. Hosted services cap a sandbox's lifetime (E2B: 24 hours).
        ttl = min(int(options.run_time_limit) + REMOTE_TTL_MARGIN_S, REMOTE_LIFETIME_S)
    return {
        "image": options.image if options.image != "host" else None,
        "cpu": options.cpu,
        "memory": options.memory,
        "disk": options.disk,
        "gpu": options.gpu,
        "ttl": ttl,
        "network": needs_network(options, "local"),
    }


# The runtime's helper that prepares the run's first remote sandbox
# (prepare_first_sandbox): its process and the file through which the
# runtime names the code package once it has it.
_PREPARED: Dict[str, Any] = {}


def prepare_first_sandbox(deco, run_id: str) -> None:
    """Called by the runtime (runtime_init) for the start step: when its
    task will run on a remote backend without the trampoline, starts a
    helper (`python -m ...sandbox_remote --prepare JOB`) that creates the
    task's sandbox in the run's pool now, while the runtime builds the code
    package and starts the task, and then unpacks the package in it
    (_feed_prepared). The task takes it from the pool (waiting for it while
    the helper works); the run's end destroys it whatever happened
    (stop_prepare, then the pool's drain). METAFLOW_SANDBOX_PREPARE: auto
    (the default: when the backend's last create on this machine took
    PREPARE_MIN_CREATE_S or more, or was never measured), 1 (always) or 0
    (never)."""
    from metaflow.metaflow_config import SANDBOX_PREPARE

    mode = str(SANDBOX_PREPARE).strip().lower()
    if mode in ("0", "false", "no", "off") or _PREPARED:
        return
    where = _remote_where(deco)
    if where is None:
        return
    if mode == "auto" and not _create_is_slow(deco.attributes["backend"]):
        return
    pool_dir, root, workdir = where
    import subprocess
    import tempfile

    from .sandbox_remote import SECRETS_ENV

    options = _remote_options(deco)
    env = _remote_env(deco, dict(os.environ))
    secrets = {key: value for key, value in env.items() if is_secret(key, "local")}
    debug = _debug_enabled()
    package_file = os.path.join(pool_dir, "package.ready")
    job = {
        "backend": options.backend,
        "workdir": workdir,
        "root": root,
        "spec": _remote_spec(options),
        "labels": {
            "flow": deco.flow.name,
            "run_id": str(run_id),
            "step": deco.step,
            "task_id": "prepared",
            "attempt": "0",
            "pool": "1",
        },
        "debug": debug,
        "pool_dir": pool_dir,
        "pool_key": _remote_pool_key(options, secrets, workdir, debug),
        "package_file": package_file,
    }
    from .sandbox_pool import prepare_lease

    job["launched"] = time.time()
    # The pool entry is made and locked here, before the helper starts: a
    # first task that starts before the helper is up (a busy machine) then
    # waits for it instead of creating a second sandbox. The helper
    # inherits the descriptor, and with it the lock.
    lease = prepare_lease(pool_dir, job["pool_key"], options.backend)
    job.update(lease_fd=lease.fd, lease_path=lease.path, lease_info=lease.info)
    fd, job_file = tempfile.mkstemp(prefix="prepare-", suffix=".job", dir=pool_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(job, f)
    try:
        env = dict(os.environ, **{SECRETS_ENV: json.dumps(secrets)})
        proc = subprocess.Popen(
            _remote_module_argv(env) + ["--prepare", job_file],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None if debug else subprocess.DEVNULL,
            close_fds=True,
            pass_fds=(lease.fd,),
        )
    except OSError:
        os.unlink(job_file)
        lease.drop()
        return
    # The lock is the helper's now (it dies with it).
    lease.release()
    _PREPARED.update(proc=proc, package_file=package_file, fed=False)


# METAFLOW_SANDBOX_PREPARE=auto: prepare when the backend's last create on
# this machine took at least this long (or was never measured). Below it,
# a second interpreter's start costs about what the overlap saves.
PREPARE_MIN_CREATE_S = 0.25


def _create_is_slow(backend: str) -> bool:
    from .sandbox_remote import create_time_file

    try:
        with open(create_time_file(backend), encoding="utf-8") as f:
            return float(f.read().strip()) >= PREPARE_MIN_CREATE_S
    except (OSError, ValueError):
        return True


def _feed_prepared(url: str, sha: str, bytecode: Optional[str], pkg_dir: str):
    """Names the code package to the helper (once a run), as soon as the
    runtime has it: the helper sends it (and its bytecode) to the sandbox
    it made, where the first task's command unpacks it."""
    if not _PREPARED or _PREPARED["fed"]:
        return
    _PREPARED["fed"] = True
    path = _PREPARED["package_file"]
    package = {
        "package_url": url,
        "package_sha": sha,
        "bytecode": bytecode,
        "pkg_dir": pkg_dir,
    }
    try:
        with open(path + ".part", "w", encoding="utf-8") as f:
            json.dump(package, f)
        os.rename(path + ".part", path)
    except OSError:
        pass


def stop_prepare(timeout: float = 60.0, wait: bool = True) -> None:
    """The end of the run, before the pool's drain: the helper, if it is
    still at work, stops (SIGTERM: it ends what it is doing and destroys
    its sandbox) and is waited for, so that the drain sees any sandbox it
    left. Without @wait (the start task does not run remotely without the
    trampoline, which does not wait for a prepared sandbox): only the
    SIGTERM."""
    proc = _PREPARED.get("proc")
    if proc is None:
        return
    if not wait:
        if not _PREPARED.get("fed") and proc.poll() is None:
            _PREPARED["fed"] = True
            proc.terminate()
        return
    _PREPARED["proc"] = None
    if proc.poll() is None:
        try:
            proc.terminate()
            proc.wait(timeout)
        except Exception:  # noqa: BLE001 (subprocess.TimeoutExpired, OSError)
            proc.kill()
            proc.wait()


def remote_launch(deco, cli_args, retry_count: int) -> bool:
    """Rewrites the task's command into `python -m ...sandbox_remote TASK.json
    -- python -u flow.py step ...` for a remote backend with the local
    datastore and the run's sandbox pool: that process loads libsandbox but
    not Metaflow (the trampoline imports Metaflow and the flow again, a
    plain task's start on top of the step's), and the sandbox runs the step
    as its one interpreter, its output streaming to the runtime, which saves
    it as the task's logs (no runner, no save_logs). Everything the task
    needs is computed here, in the runtime that has it at hand, and written
    to a file of the run's private pool directory; the secrets go into that
    process's environment. Returns False (the trampoline runs the task) for
    anything else: a remote datastore, --environment=uv, @parallel, flow
    configs, METAFLOW_SANDBOX_DIRECT=0 or no pool."""
    from .sandbox_decorator import SandboxDecorator

    if cli_args.commands != ["step"]:
        return False
    where = _remote_where(deco)
    if where is None:
        return False
    pool_dir, root, workdir = where
    attrs = deco.attributes
    backend = attrs["backend"]
    opts = cli_args.command_options
    if opts.get("ubf-context") or opts.get("num-parallel"):
        return False
    if cli_args.top_level_options.get("environment") not in (None, "local"):
        return False
    if cli_args.top_level_options.get("config-value"):
        return False

    # The run's first task starts while Metaflow is still building the code
    # package (its background thread): the task's process makes or takes
    # its sandbox meanwhile and waits for the package's location, which a
    # thread of the runtime writes once the package is saved
    # (_package_later). Otherwise the package's location is in the task.
    pending = SandboxDecorator._package_pending(deco.package)
    if not pending:
        SandboxDecorator._save_package_once(deco.flow_datastore, deco.package)
    run_id, task_id = str(opts["run-id"]), str(opts["task-id"])
    options = _remote_options(deco)
    if pending:
        options.code_package_metadata = getattr(deco.package, "package_metadata", None)
    elif not options.code_package_url:
        return False
    pkg_dir = workdir.rstrip("/") + "/metaflow"
    flow_file = os.path.basename(cli_args.entrypoint[-1])
    python = _sandbox_python(deco.step, deco.environment)

    # The step's environment: what the trampoline would have passed, from
    # the environment the runtime gives a task.
    env = _remote_env(deco, dict(os.environ, **cli_args.env))
    if os.path.basename(root) == ".metaflow":
        env["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = os.path.dirname(root)
    _task_env(env, options, flow_file, run_id, "local", cli_args.top_level_options.get("metadata"))
    env.update(
        {
            "METAFLOW_CODE_SHA": options.code_package_sha or "",
            "METAFLOW_CODE_URL": options.code_package_url or "",
            "METAFLOW_CODE_DS": "local",
            # The step announces its sandbox (task_pre_step).
            "MF_SANDBOX_ANNOUNCE": "1",
        }
    )
    if os.path.isabs(python):
        env["PATH"] = os.path.dirname(python) + ":" + DEFAULT_PATH
    if options.code_package_metadata:
        env["METAFLOW_CODE_METADATA"] = options.code_package_metadata
    env.update(_post_extract_env(options.code_package_metadata, pkg_dir))
    secrets = {key: env.pop(key) for key in list(env) if is_secret(key, "local")}

    from .sandbox_sync import marker_path

    debug = _debug_enabled()
    pool_key = _remote_pool_key(options, secrets, workdir, debug)
    marker = marker_path(workdir)
    sha = options.code_package_sha or ""
    if pending:
        # The task's process puts the package's location before the script.
        script = remote_script(
            workdir, root, None, None, deco.flow.name, image_label(options.image, backend)
        )
        bytecode = None
        package_file = _package_later(deco, pool_dir, python, options.image, pkg_dir)
    else:
        script = remote_script(
            workdir,
            root,
            options.code_package_url,
            sha,
            deco.flow.name,
            image_label(options.image, backend),
        )
        bytecode = bytecode_cache_file(sha, python, options.image) if sha else None
        package_file = None
        _feed_prepared(options.code_package_url, sha, bytecode, pkg_dir)
    input_paths = opts.get("input-paths")
    task = {
        "backend": backend,
        "workdir": workdir,
        "spec": _remote_spec(options),
        "labels": {
            "flow": deco.flow.name,
            "run_id": run_id,
            "step": deco.step,
            "task_id": task_id,
            "attempt": str(retry_count),
            # It may serve the run's later tasks (`sandbox list/kill --run-id`).
            "pool": "1",
        },
        "debug": debug,
        "pool_dir": pool_dir,
        "pool_key": pool_key,
        "root": root,
        "flow": deco.flow.name,
        "input_tasks": [p for p in util.decompress_list(input_paths) if p] if input_paths else [],
        "package_url": options.code_package_url,
        "package_sha": sha,
        # Where the runtime names the package once it has it (pending).
        "package_file": package_file,
        "include_files": include_file_uploads(deco.flow, deco.flow_datastore, run_id),
        "marker": marker,
        "script": script,
        # The script packs the outputs (remote_script with the flow).
        "packed": True,
        "env": env,
        "cmd_timeout_ms": (int(options.run_time_limit) + 60) * 1000
        if options.run_time_limit
        else None,
        "run_time_limit": options.run_time_limit,
        "flow_file": flow_file,
        "disallow_retry": METAFLOW_EXIT_DISALLOW_RETRY,
        "pkg_dir": pkg_dir,
        "bytecode": bytecode,
    }
    import tempfile

    fd, task_file = tempfile.mkstemp(prefix="task-", suffix=".todo", dir=pool_dir)
    # (The task's timeline under METAFLOW_SANDBOX_DEBUG starts here.)
    task["launched"] = time.time()
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(task, f)
    from .sandbox_remote import SECRETS_ENV

    # Off every command line; the task's process puts them in the sandbox's
    # own environment (the create request), never in the command.
    cli_args.env[SECRETS_ENV] = json.dumps(secrets)
    cli_args.entrypoint = _remote_module_argv(cli_args.env) + [
        task_file,
        "--",
        python,
        "-u",
        flow_file,
    ]
    return True


# Remote tasks started before the code package was built (remote_launch):
# the files where the runtime's thread names it to them, once it has it.
_LATER: Dict[str, Any] = {"lock": None, "waiting": [], "done": None}


def _package_later(deco, pool_dir: str, python: str, image: Optional[str], pkg_dir: str) -> str:
    """A file of the run's pool directory that will name the code package
    to a task started before it was built: {"package_url", "package_sha",
    "bytecode"} (the bytecode cache for the task's interpreter and image),
    or {"error"}. Written (atomically) by a thread of the runtime that
    waits for Metaflow's package thread and saves the package, as the
    runtime's main thread would have before starting the task; the prepared
    sandbox's helper is fed from it too."""
    import tempfile
    import threading

    from .sandbox_decorator import SandboxDecorator

    fd, path = tempfile.mkstemp(prefix="package-", suffix=".json", dir=pool_dir)
    os.close(fd)
    os.unlink(path)
    if _LATER["lock"] is None:
        _LATER["lock"] = threading.Lock()
    entry = (path, python, image, pkg_dir)
    with _LATER["lock"]:
        if _LATER["done"] is None:
            _LATER["waiting"].append(entry)
            if len(_LATER["waiting"]) == 1:
                flow_datastore, package = deco.flow_datastore, deco.package

                def publish():
                    try:
                        SandboxDecorator._save_package_once(flow_datastore, package)
                        result = {
                            "package_url": SandboxDecorator.package_url,
                            "package_sha": SandboxDecorator.package_sha or "",
                        }
                    except Exception as ex:  # noqa: BLE001 (what the package thread raised)
                        result = {"error": str(ex) or type(ex).__name__}
                    with _LATER["lock"]:
                        _LATER["done"] = result
                        waiting, _LATER["waiting"] = _LATER["waiting"], []
                    for item in waiting:
                        _write_package_file(result, *item)

                threading.Thread(target=publish, name="sandbox-package", daemon=True).start()
            return path
        result = _LATER["done"]
    _write_package_file(result, *entry)
    return path


def _write_package_file(
    result: Dict[str, Any], path: str, python: str, image: Optional[str], pkg_dir: str
) -> None:
    data = dict(result)
    if "error" not in data:
        sha = data["package_sha"]
        data["bytecode"] = bytecode_cache_file(sha, python, image) if sha else None
        _feed_prepared(data["package_url"], sha, data["bytecode"], pkg_dir)
    try:
        with open(path + ".part", "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.rename(path + ".part", path)
    except OSError:
        pass  # the run's end removed the pool directory


_REMOTE_PATH: List[Optional[str]] = []


def _remote_module_argv(env: Dict[str, str]) -> List[str]:
    """`python -S -m ...sandbox_remote`, with the directories of this
    extension and of gi on @env's PYTHONPATH: that process needs nothing
    else, and without `site` it starts ~10 ms sooner (the .pth files of the
    installation, what they import). Without -S if gi cannot be found."""
    if not _REMOTE_PATH:
        import importlib.util

        path = None
        try:
            spec = importlib.util.find_spec("gi")
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            ours = os.path.dirname(
                os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            )
            gi_dir = os.path.dirname(os.path.dirname(spec.origin))
            path = os.pathsep.join(dict.fromkeys([ours, gi_dir]))
        _REMOTE_PATH.append(path)
    path = _REMOTE_PATH[0]
    if path is None:
        return [sys.executable, "-m", REMOTE_MODULE]
    old = env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = path + (os.pathsep + old if old else "")
    return [sys.executable, "-S", "-m", REMOTE_MODULE]


# The environment variable that marks the processes of a task in a pooled
# sandbox (remote_script).
TASK_MARK_ENV = "MF_SANDBOX_TASK"


def kill_marked_processes(mark: str) -> str:
    """Shell lines (sh or bash, also under set -e) that SIGKILL every
    process whose environment has TASK_MARK_ENV=@mark (a shell word), twice,
    for processes that were forking; none of this shell's own processes has
    it. Needs grep -z (GNU or BusyBox); without it nothing is killed."""
    loop = (
        'for mf_p in $(grep -lzxF "%s=%s" /proc/[0-9]*/environ 2>/dev/null); do '
        'mf_p=${mf_p#/proc/}; kill -9 "${mf_p%%/environ}" 2>/dev/null || true; mf_k=1; done'
        % (TASK_MARK_ENV, mark.strip('"'))
    )
    # The second look only after the first found one (the usual step leaves
    # nothing running: one grep).
    return "mf_k=\n" + loop + '\nif [ -n "$mf_k" ]; then ' + loop + "; fi"


def remote_script(
    workdir: str,
    root: str,
    package_url: Optional[str],
    sha: Optional[str],
    flow: Optional[str] = None,
    image: Optional[str] = None,
) -> str:
    """The one command a remote task runs (sandbox_remote.py): the tar of
    the task's inputs, sent as one file, becomes the datastore copy at
    @root, in place of the previous task's copy (a pooled sandbox), in this
    command and not in round trips of their own; the code package is
    unpacked once per sandbox; then the step ("$@") replaces the shell.
    With @flow, the shell stays: after the step it packs the step's outputs
    for sandbox_sync.fetch_packed_outputs(packed=True) (no exec of their
    own), then ends as the step did (its exit status, or its signal). With
    no step ("$@" empty: the prepared sandbox, sandbox_remote.prepare) it
    ends after the unpacking. With @image (image_label: how messages name
    the image), the command that unpacks the code package in a sandbox
    first checks the step's interpreter ("$1") is recent enough, and, if
    the step then fails, whether the interpreter can import Metaflow at
    all, saying what to install (as _bootstrap_script does on local
    images; it costs a successful task nothing)."""
    from .sandbox_remote import BYTECODE_NAME, INCLUDE_NAME, INPUTS_NAME, PACKAGE_NAME
    from .sandbox_sync import marker_path, pack_files, pack_script

    q = shlex.quote
    from .sandbox_remote import package_head

    pkg_dir = workdir.rstrip("/") + "/metaflow"
    inputs = workdir.rstrip("/") + "/" + INPUTS_NAME
    includes = workdir.rstrip("/") + "/" + INCLUDE_NAME
    code_mark = code_marker(pkg_dir)
    bytecode = workdir.rstrip("/") + "/" + BYTECODE_NAME
    # The package as the runtime's helper sent it (sandbox_remote.prepare),
    # else the blob in the task's datastore copy.
    sent = workdir.rstrip("/") + "/" + PACKAGE_NAME
    untar = 'tar --warning=no-timestamp --no-same-owner -xzf "$pkg" -C %s' % q(pkg_dir)
    lines = [
        "set -e",
        # (Each command below that is not a builtin costs a process start in
        # the sandbox, ~1 ms on a provider's VM: a pooled sandbox skips what
        # the previous task already did.)
        "cd %s 2>/dev/null || { mkdir -p %s && cd %s; }" % (q(workdir), q(workdir), q(workdir)),
        # The previous task's copy is moved aside and removed in the
        # background while this task runs (removing it took ~40 ms of the
        # command on the emulators' disk); the command waits for it before
        # it ends, so nothing outlives it.
        'old=; if [ -e %s ]; then old=%s.mf-old-$$; mv %s "$old"; fi' % (q(root), q(root), q(root)),
        "mkdir -p %s" % q(root),
        'if [ -n "$old" ]; then rm -rf "$old" </dev/null >/dev/null 2>&1 & fi',
        # (The inputs' tar is removed with the package's, below: a command
        # that fails before then fails its task, whose sandbox is destroyed.)
        "if [ -f %s ]; then tar -x --no-same-owner -f %s -C %s; fi"
        % (q(inputs), q(inputs), q(root)),
        # IncludeFile uploads, at their absolute paths (include_file_uploads).
        "if [ -f %s ]; then tar -x --no-same-owner -f %s -C / && rm -f %s; fi"
        % (q(includes), q(includes), q(includes)),
        # What the task writes after this moment comes back (sandbox_sync).
        ": > %s" % q(marker_path(workdir)),
        'pkg="$mf_code_url"; if [ -f %s ]; then pkg=%s; fi' % (q(sent), q(sent)),
        "mf_have=; { read -r mf_have < %s; } 2>/dev/null || true" % q(code_mark),
        'mf_new=; if [ "$mf_have" != "$mf_code_sha" ]; then mf_new=1',
    ]
    if image is not None:
        lines.append('if [ "$#" -gt 0 ]; then %s; fi' % python_version_check(image, '"$1"'))
    lines += [
        "rm -rf %s %s && mkdir -p %s" % (q(code_mark), q(pkg_dir), q(pkg_dir)),
        # The package's modules (.mf_code: nearly all its files, and their
        # bytecode) in the sandbox's memory when it has a /dev/shm to write:
        # creating ~450 files on a disk costs several times what it costs on
        # a tmpfs (0.14 / 0.04 s on ext4 here). The rest stays in the
        # directory on the disk, the step's working directory. Else, or if
        # that fails (no room), all of it on the disk, as before.
        'mem=$(mktemp -d /dev/shm/mf-code.XXXXXX 2>/dev/null) && mkdir "$mem/metaflow" %s && '
        'ln -s "$mem/metaflow" %s || { [ -z "$mem" ] || rm -rf "$mem"; mem=; }'
        % (q(pkg_dir + "/.mf_code"), q(pkg_dir + "/.mf_code/metaflow")),
        'if ! %s --keep-directory-symlink; then [ -n "$mem" ]; rm -rf "$mem" %s; '
        "mkdir -p %s; %s; fi" % (untar, q(pkg_dir), q(pkg_dir), untar),
        'echo "$mf_code_sha" > %s; fi' % q(code_mark),
        "rm -f %s %s" % (q(sent), q(inputs)),
        # The package's bytecode from an earlier run (bytecode_cache_file).
        "if [ -f %s ]; then tar --keep-directory-symlink -xzf %s -C %s || true; rm -f %s; fi"
        % (q(bytecode), q(bytecode), q(pkg_dir), q(bytecode)),
        "cd %s" % q(pkg_dir),
        # What Metaflow finds searching upwards for .metaflow (cards); a
        # pooled sandbox has it from the run's previous task (same root).
        "[ -L .metaflow ] || ln -sfn %s .metaflow" % q(root),
    ]
    # The package's location first (package_head); without @package_url
    # (not built yet) the task's process puts it there.
    head = package_head(package_url, sha) if package_url is not None else ""
    if flow is None:
        lines += ["wait", 'exec "$@"']
        return head + "\n".join(lines) + "\n"
    blobs, rest, listing = pack_files(workdir)
    lines[2:2] = ["rm -f %s %s %s" % (q(blobs), q(rest), q(listing))]
    lines += [
        '[ "$#" -gt 0 ] || { wait; exit 0; }',
        "rc=0",
        # The step and every process it starts carry a mark of this task;
        # what still runs after the step (a daemon, a Popen left running)
        # is killed before the outputs are packed and the sandbox serves the
        # run's next task, as a local sandbox ends with its task.
        # (No $RANDOM: POSIX sh has none.)
        "mf_mark=$$.%s" % os.urandom(6).hex(),
        '%s="$mf_mark" "$@" || rc=$?' % TASK_MARK_ENV,
    ]
    if image is not None:
        lines.append(
            'if [ "$rc" -eq 1 ] && [ -n "$mf_new" ]; then %s; fi'
            % metaflow_import_check(image, '"$1"', None)
        )
    lines += [
        kill_marked_processes('"$mf_mark"'),
        # In a subshell (a fork; no shell started again).
        "( set -- %s %s %s %s %s\n%s) > %s"
        % (
            q(root),
            q(marker_path(workdir)),
            q(flow),
            q(blobs),
            q(rest),
            pack_script(),
            q(listing),
        ),
        "wait",
        # The step's signal, as if it had been exec'd (sandbox_remote
        # reports it: "killed by signal 9 (out of memory?)").
        'if [ "$rc" -gt 128 ] && [ "$rc" -lt 160 ]; then ulimit -c 0; '
        'kill -s "$(kill -l "$rc")" $$; fi',
        'exit "$rc"',
    ]
    return head + "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Running it


class _Attempt(Attempt):
    """One sandboxed attempt of the trampoline: create, exec, destroy on
    every path. The main loop, the signals that cancel it, create(),
    wait() and destroy() are the remote task's (sandbox_remote.Attempt)."""

    def __init__(self, Gio, GLib, Sandbox, backend_name: str) -> None:
        super().__init__(Gio, GLib, Sandbox, backend_name)
        self.result = None
        self.error = None

    def execute(self, command) -> None:
        if self.signal_received is not None:
            return
        try:
            self.result = self.wait(self.instance, "exec", command, self.cancellable)
        except self.GLib.Error as ex:
            self.error = ex


def _keep_for_debugging(instance, options: SandboxOptions, run_id) -> None:
    """METAFLOW_SANDBOX_DEBUG: a failed task's sandbox stays (until its time to
    live runs out) for a look inside."""
    ttl = int(options.run_time_limit) + REMOTE_TTL_MARGIN_S if options.run_time_limit else 0
    if ttl and not _can(options.backend, "SHARES_HOST_FS"):
        ttl = min(ttl, REMOTE_LIFETIME_S)  # as _build_spec gave it
    say_kept_for_debugging(
        instance.get_id(), options.backend, ttl, os.path.basename(sys.argv[0]), str(run_id)
    )


def run_step(ctx, step_name: str, options: SandboxOptions, kwargs: Dict[str, Any]) -> None:
    # This process (the task's, on the launching machine) reads artifacts
    # that sandboxed steps wrote (the run's IncludeFile values): rebuilt as
    # plain data only, as in the runtime (sandbox_safeload.py). It runs no
    # user code of its own; the step runs in the sandbox.
    from .sandbox_safeload import install

    install()
    try:
        _run_step(ctx, step_name, options, kwargs)
    except MetaflowException:
        raise
    except Exception as ex:
        # A library error nobody expected: still a sandbox problem, with its
        # own headline rather than Metaflow's "Internal error".
        raise SandboxExecutionError(
            _("Running the task on the %s backend failed: %s")
            % (options.backend, getattr(ex, "message", None) or ex)
        ) from ex


def _create_with_retries(attempt, spec, labels, Sandbox, GLib, backend: str) -> None:
    """Creates the sandbox; transient failures are retried with back-off
    (sandbox_remote.create_with_retries). A signal ends it: the task ends
    as interrupted, with no sandbox left (Attempt.create)."""

    def create() -> None:
        attempt.error = None
        attempt.create(spec, labels)

    failure = create_with_retries(
        create,
        GLib,
        Sandbox,
        backend,
        lambda: attempt.signal_received is not None,
        attempt.sleep,
    )
    if failure is not None and attempt.signal_received is not None:
        sys.exit(interrupted("", attempt.signal_received, None))
    if failure is not None:
        final, message = failure
        error = SandboxExecutionError(message)
        if final:
            error.retryable = False
        raise error from None


def _run_step(ctx, step_name: str, options: SandboxOptions, kwargs: Dict[str, Any]) -> None:
    obj = ctx.obj
    run_id, task_id = kwargs["run_id"], kwargs["task_id"]

    if options.run_time_limit is not None and options.run_time_limit <= 0:
        options.run_time_limit = None

    # No sleep between @retry attempts: the local runtime retries at once,
    # with or without @sandbox.

    input_paths = kwargs.get("input_paths")
    from .sandbox_pool import POOL_ENV

    pool_dir = os.environ.get(POOL_ENV)
    try:
        Gio, GLib, Sandbox = _load_gi()
        # The run's pool (sandbox_pool.py): remote backends only, and not
        # @parallel (its control task starts the others in its sandbox).
        pooled = bool(pool_dir) and not _can(options.backend, "SHARES_HOST_FS")
        pooled = pooled and kwargs.get("num_parallel") is None
        labels, roots, mounts, env, secrets, script = build_task(
            ctx, step_name, options, kwargs, pooled
        )
    except MetaflowException as ex:
        _echo("", "%s: %s" % (ex.headline, ex))
        sys.exit(METAFLOW_EXIT_DISALLOW_RETRY)

    attempt = _Attempt(Gio, GLib, Sandbox, options.backend)
    workdir = _workdir(options.backend)
    pool_key = None
    if pooled:
        from .sandbox_pool import pool_key as make_pool_key

        # A pooled sandbox may serve later tasks of the run: its labels name
        # the task that created it, and "pool" says that it may serve others
        # (`sandbox list/kill --run-id` finds it).
        labels["pool"] = "1"
        pool_key = make_pool_key(
            backend=options.backend,
            image=options.image,
            cpu=options.cpu,
            memory=options.memory,
            disk=options.disk,
            gpu=options.gpu,
            network=needs_network(options, obj.flow_datastore.TYPE),
            run_time_limit=options.run_time_limit,
            secrets=secrets,
            workdir=workdir,
            debug=_debug_enabled(),
        )
    spec = _build_spec(Sandbox, options, labels, workdir, obj.flow_datastore.TYPE, secrets)
    if _can(options.backend, "SHARES_HOST_FS"):
        # First, so that the read-write mounts below stay on top of these.
        for path in _hidden_python_paths(exclude=roots):
            spec.add_mount(path, None, True)
        if obj.flow_datastore.TYPE == "local" and roots:
            # IncludeFile parameters, read where the launcher uploaded them.
            for path in include_file_roots(roots[0], roots):
                spec.add_mount(path, None, True)
    # The datastore (and card) roots: read-only, but for the task's own
    # directories mounted below (task_write_dirs).
    for path in roots:
        spec.add_mount(path, None, True)
    # The datastore (and card) roots are the host's, written to by host
    # processes after the step (the runtime, other tasks, often as root):
    # the step may make no link, FIFO or socket there for them to follow
    # or hang on (docs/security.md). The direct launch does the same
    # (sandboxctl --mount ...:nolinks).
    no_links = _can(options.backend, "MOUNT_NO_LINKS")
    for path in mounts:
        if no_links:
            spec.add_mount_full(path, None, Sandbox.MountFlags.NO_LINKS)
        else:
            spec.add_mount(path, None, False)
    uv_cache = env.get("UV_CACHE_DIR")
    if uv_cache and any(_is_under(uv_cache, path) for path in roots):
        # uv's cache links its entries to its archives: a mount of its own,
        # read-write (the datastore root is read-only), without the rule.
        # Only sandboxes of this flow use that cache, and a link made there
        # cannot be moved into the datastore (a rename between two mounts
        # fails).
        _make_uv_cache_dir(uv_cache)
        spec.add_mount(uv_cache, None, False)

    attempt.install_signal_handlers()
    exit_code = METAFLOW_EXIT_DISALLOW_RETRY
    term_signal = 0
    lease = None
    try:
        try:
            if pool_dir and pool_key:
                lease = _pooled_instance(attempt, pool_dir, pool_key, options.backend)
            if attempt.instance is None:
                if pool_dir and pool_key:
                    from .sandbox_pool import create_lease

                    lease = create_lease(pool_dir, pool_key, options.backend)
                _create_with_retries(attempt, spec, labels, Sandbox, GLib, options.backend)
                if lease is not None:
                    lease.write(id=attempt.instance.get_id())
        except SandboxExecutionError as ex:
            _sync_metadata(obj, run_id, step_name, task_id)
            if getattr(ex, "retryable", True):
                raise
            # Another attempt would fail the same way.
            _echo("", "%s: %s" % (ex.headline, ex))
            sys.exit(METAFLOW_EXIT_DISALLOW_RETRY)
        sandbox_id = attempt.instance.get_id()
        prefix = "[%s] " % sandbox_id
        _echo(
            prefix,
            _("Task is starting in sandbox %s (backend %s).") % (sandbox_id, options.backend),
        )
        env["METAFLOW_SANDBOX_ID"] = sandbox_id
        env["MF_SANDBOX_LOG_PREFIX"] = prefix

        sync = needs_sync(obj.flow_datastore.TYPE, options.backend)
        stats = None
        if sync:
            from .sandbox_sync import SyncStats

            stats = SyncStats()
            # A pooled sandbox that has the code package unpacked does not
            # get it again.
            has_code = lease is not None and options.code_package_sha in lease.info.get("code", [])
            try:
                sent_blobs = _send_inputs(
                    Gio,
                    Sandbox,
                    attempt,
                    obj,
                    run_id,
                    step_name,
                    task_id,
                    input_paths,
                    options,
                    stats,
                    prefix,
                    send_code=not has_code,
                )
            except (GLib.Error, OSError, RuntimeError) as ex:
                if attempt.signal_received is not None:
                    sys.exit(interrupted(prefix, attempt.signal_received, sandbox_id))
                _echo(
                    prefix,
                    _("Could not copy the task's inputs into the sandbox: %s")
                    % getattr(ex, "message", ex),
                )
                sys.exit(METAFLOW_EXIT_DISALLOW_RETRY)

        # An image need not have bash (the script is POSIX sh; Metaflow's
        # own commands for a remote datastore are made so, _posix_commands).
        command = Sandbox.Command.new(["/bin/sh", "-c", script])
        command.set_cwd(workdir if _can(options.backend, "SHARES_HOST_FS") else "/")
        for key, value in env.items():
            command.set_env(key, value)
        # What the task leaves running is killed before its pooled sandbox
        # serves another task (_clean_for_next_task).
        task_mark = "%d.%s" % (os.getpid(), os.urandom(6).hex())
        command.set_env(TASK_MARK_ENV, task_mark)
        if options.run_time_limit:
            # A backstop: @timeout itself fires inside the task first.
            command.set_timeout_ms((int(options.run_time_limit) + 60) * 1000)
        sys.stdout.flush()
        sys.stderr.flush()
        output = LineOutput()
        command.set_stdout_stream(output.stream(1))
        command.set_stderr_stream(output.stream(2))

        try:
            attempt.execute(command)
        finally:
            output.close(1.0 if attempt.signal_received is not None else 30.0)

        exit_code, term_signal, ran = step_outcome(
            prefix,
            attempt.signal_received,
            attempt.result,
            attempt.error,
            options.run_time_limit,
            METAFLOW_EXIT_DISALLOW_RETRY,
            sandbox_id,
        )
        if ran and sync:
            _save_logs_from_sandbox(Gio, Sandbox, attempt, obj, options, kwargs, step_name, prefix)
            if not _fetch_outputs(
                Gio,
                Sandbox,
                attempt,
                obj,
                options,
                sent_blobs,
                stats,
                prefix,
                exit_code != 0,
                (str(kwargs["run_id"]), step_name, str(kwargs["task_id"])),
            ):
                # No DONE.lock came back: a failed attempt, retried if allowed.
                exit_code = exit_code or 1
        say_term_signal(prefix, term_signal)
    finally:
        failed = exit_code != 0 or term_signal
        kept = debugged = False
        if failed and _debug_enabled() and attempt.instance and attempt.signal_received is None:
            _keep_for_debugging(attempt.instance, options, run_id)
            debugged = True
        elif (
            lease is not None
            and not failed
            and attempt.signal_received is None
            # (The run may have ended without this task: no pool to go back to.)
            and os.path.exists(lease.path)
            and _clean_for_next_task(attempt, Sandbox, obj, options, workdir, task_mark)
            and os.path.exists(lease.path)
        ):
            # Back to the pool, for the run's next task with the same sandbox.
            code = [options.code_package_sha] if options.code_package_sha else []
            lease.write(code=code)
            kept = True
        attempt.end(lease, kept, debugged)
    _sync_metadata(obj, run_id, step_name, task_id)
    if term_signal:
        # Die of the same signal, as a local task would.
        die_of(term_signal)
    sys.exit(exit_code)


def _pooled_instance(attempt, pool_dir: str, key: str, backend: str):
    """Takes a free sandbox of the run's pool for this task (its lease, with
    attempt.instance set), or returns None. Sandboxes found too old or gone
    are destroyed and dropped on the way."""
    from .sandbox_pool import acquire

    stale, lease = acquire(pool_dir, key)
    for old in stale:
        # On the attempt's main loop, as every call of the attempt: a
        # signal is seen meanwhile (Attempt).
        destroy_by_id(
            attempt.backend, attempt.GLib, attempt.Sandbox, old.sandbox_id or "", attempt.wait
        )
        old.drop()
    if lease is None:
        return None
    if lease.info.pop("preparing", None) is not None:
        lease.note()  # taken: no task waits for it (sandbox_pool.preparing)
    try:
        attempt.instance = attempt.wait(
            attempt.backend, "get_instance", lease.sandbox_id, attempt.cancellable
        )
    except attempt.GLib.Error as ex:
        if attempt.signal_received is not None or not ex.matches(
            attempt.Sandbox.error_quark(), attempt.Sandbox.Error.NOT_FOUND
        ):
            # Still the run's (an interrupt, a provider that did not answer
            # now: not known to be gone): its drain destroys it. Dropped
            # from the pool, it was left running.
            lease.release()
            return None
        # Ended on its own (its time to live, the provider): make another.
        lease.drop()
        return None
    return lease


def _clean_for_next_task(
    attempt, Sandbox, obj, options: SandboxOptions, workdir: str, task_mark: str
) -> bool:
    """Kills what the task left running (its processes carry @task_mark)
    and removes what it left in its pooled sandbox for itself (its logs, the
    datastore files sent and written); the unpacked code package stays for
    the next task. False if that failed."""
    pkg_dir = workdir.rstrip("/") + "/metaflow"
    paths = [pkg_dir + "/" + LOG_DIR, pkg_dir + "/.metaflow", workdir.rstrip("/") + "/" + LOG_DIR]
    if obj.flow_datastore.TYPE == "local":
        from .sandbox_sync import marker_path

        paths += [os.path.realpath(obj.flow_datastore.datastore_root), marker_path(workdir)]
    else:
        # Metaflow's own bootstrap downloads the package into a new directory.
        paths.append(pkg_dir)
    script = kill_marked_processes(shlex.quote(task_mark)) + '\nexec rm -rf -- "$@"'
    command = Sandbox.Command.new(["/bin/sh", "-c", script, "sh"] + paths)
    command.set_cwd("/")
    attempt.result = None
    attempt.error = None
    attempt.execute(command)
    return (
        attempt.signal_received is None
        and attempt.error is None
        and attempt.result is not None
        and attempt.result.get_exit_code() == 0
    )


def destroy_pooled(pool_dir: str, keep_bytecode: bool = False, abandoned: bool = False) -> None:
    """The end of a run: destroys every sandbox of its pool, at most
    DRAIN_CONCURRENCY at a time, and the pool. @abandoned: the pool of a
    run that ended without doing so (only the sandboxes no task still
    holds)."""
    from .sandbox_pool import DRAIN_CONCURRENCY, drain

    try:
        Gio, GLib, Sandbox = _load_gi()
    except SandboxExecutionError:
        if not abandoned:
            shutil.rmtree(pool_dir, ignore_errors=True)
        return
    drain(
        pool_dir,
        lambda targets: destroy_many(GLib, Sandbox, targets, DRAIN_CONCURRENCY),
        (lambda info: _save_bytecode(Gio, Sandbox, GLib, info)) if keep_bytecode else None,
        only_free=abandoned,
    )


# The bytecode a remote sandbox's Python wrote for the code package (its
# Metaflow, the extensions, the flow's modules), kept per package, sandbox
# interpreter and image: the first task of the next run in a new sandbox
# gets it with the package instead of compiling every module it imports
# (0.3-0.5 s of CPU). The package's files have a fixed mtime, so a .pyc is
# valid exactly for the same package; the package's sha is in the key.
BYTECODE_CACHE_KEEP = 16


def bytecode_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "libsandbox", "metaflow-bytecode")


def bytecode_cache_file(package_sha: str, python: str, image: Optional[str]) -> Optional[str]:
    """Where the bytecode of this package for this interpreter and image is
    kept; None when METAFLOW_SANDBOX_BYTECODE_CACHE is 0."""
    from metaflow.metaflow_config import SANDBOX_BYTECODE_CACHE

    if str(SANDBOX_BYTECODE_CACHE).strip().lower() in (
        "0",
        "false",
        "no",
        "off",
    ):
        return None
    import hashlib

    key = hashlib.sha256(json.dumps([package_sha, python, image or ""]).encode()).hexdigest()[:40]
    return os.path.join(bytecode_cache_dir(), key + ".tgz")


def _save_bytecode(Gio, Sandbox, GLib, info: Dict[str, Any]) -> None:
    """Before a pooled sandbox goes: keeps the bytecode its tasks wrote, if
    the cache has none for its package yet. Best effort (a few tenths of a
    second, once per package, interpreter and image)."""
    target = info.get("bytecode")
    pkg_dir = info.get("pkg_dir")
    if not target or not pkg_dir or os.path.exists(target):
        return
    import tempfile

    remote = "/tmp/.mf-bytecode-%s.tgz" % os.getpid()
    # .mf_code/metaflow may be a link to the sandbox's memory (remote_script).
    script = (
        "cd \"$1\" && { find . -path '*/__pycache__/*.pyc' -type f -print0; "
        "[ ! -L .mf_code/metaflow ] || "
        "find -H .mf_code/metaflow -path '*/__pycache__/*.pyc' -type f -print0; } | "
        'tar -czf "$2" --null -T -'
    )
    try:
        instance = Sandbox.Backend.new_for_name(info["backend"]).get_instance(info["id"], None)
        result = instance.exec(
            Sandbox.Command.new(["/bin/sh", "-c", script, "sh", pkg_dir, remote]), None
        )
        if not result.get_success():
            return
        cache = os.path.dirname(target)
        os.makedirs(cache, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, suffix=".part")
        os.close(fd)
        try:
            instance.download(remote, Gio.File.new_for_path(tmp), None)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        # The oldest go: one file per package version that ran remotely.
        kept = sorted(
            (os.path.join(cache, n) for n in os.listdir(cache) if n.endswith(".tgz")),
            key=lambda p: os.stat(p).st_mtime,
        )
        for old in kept[:-BYTECODE_CACHE_KEEP]:
            os.unlink(old)
    except (GLib.Error, OSError, KeyError):
        pass


def _send_inputs(
    Gio,
    Sandbox,
    attempt,
    obj,
    run_id,
    step_name,
    task_id,
    input_paths,
    options,
    stats,
    prefix,
    send_code: bool = True,
):
    from .sandbox_sync import _count_files, send_inputs, upload_set

    root = os.path.realpath(obj.flow_datastore.datastore_root)
    paths, blobs, nbytes = upload_set(
        root,
        obj.flow.name,
        str(run_id),
        step_name,
        str(task_id),
        input_paths,
        options.code_package_url if send_code else None,
    )
    stats.up_files = _count_files(root, paths)
    stats.up_bytes = nbytes
    stats.blobs_up = len(blobs)
    send_inputs(
        Gio, Sandbox, attempt.instance, root, paths, attempt.cancellable, stats, attempt.wait
    )
    includes = include_file_uploads(obj.flow, obj.flow_datastore, str(run_id))
    if includes:
        # IncludeFile uploads, at their absolute paths (beside the root).
        send_inputs(
            Gio,
            Sandbox,
            attempt.instance,
            "/",
            [p.lstrip("/") for p in includes],
            attempt.cancellable,
            stats,
            attempt.wait,
        )
    if _debug_enabled():
        _echo(
            prefix,
            _("sent %d files (%d blobs, %d bytes) to %s")
            % (stats.up_files, stats.blobs_up, stats.up_bytes, root),
        )
    return blobs


def _fetch_outputs(
    Gio,
    Sandbox,
    attempt,
    obj,
    options,
    sent_blobs,
    stats,
    prefix,
    quiet: bool = False,
    task: Tuple[str, str, str] = ("", "", ""),
) -> bool:
    """Brings the task's outputs back (only its own files: @task is its
    run id, step name and task id); False when that failed, which is
    said unless @quiet (after a failed step, what it said is the news)."""
    from .sandbox_sync import fetch_outputs, list_outputs, marker_path, task_prefixes

    root = os.path.realpath(obj.flow_datastore.datastore_root)
    try:
        marker = marker_path(_workdir(options.backend))
        outputs = list_outputs(
            Sandbox, attempt.instance, root, marker, attempt.cancellable, attempt.wait
        )
        fetch_outputs(
            Gio,
            Sandbox,
            attempt.instance,
            root,
            obj.flow.name,
            outputs,
            sent_blobs,
            attempt.cancellable,
            stats,
            attempt.wait,
            task_prefixes(obj.flow.name, *task),
        )
    except (attempt.GLib.Error, OSError, RuntimeError) as ex:
        if not quiet:
            _echo(
                prefix,
                _("Could not copy the task's results back from the sandbox: %s")
                % getattr(ex, "message", ex),
            )
        return False
    if _debug_enabled():
        # Once per task, on one line; users without the debug switch see none.
        _echo(prefix, stats.summary())
    return True


# The most of a task's log stream that this process stores from a sandbox.
MAX_LOG_BYTES = 1 << 30


def _save_logs_from_sandbox(
    Gio, Sandbox, attempt, obj, options, kwargs, step_name: str, prefix: str
) -> None:
    """What `python -m metaflow.mflog.save_logs` did in the sandbox (a third
    Metaflow import there, 0.7-1.2 s a task), done here: the runner's two
    mflog files come back in one tar stream and this process, which has
    Metaflow loaded, stores them as the task's logs. Best effort, as
    save_logs is: a failure costs the stored logs, not the task."""
    import tempfile

    from metaflow.mflog import TASK_LOG_SOURCE

    from .sandbox_sync import _pipe_transfer

    log_dir = _workdir(options.backend).rstrip("/") + "/metaflow/" + LOG_DIR
    names = ["mflog_stdout", "mflog_stderr"]
    try:
        with tempfile.TemporaryDirectory(prefix="mf-sandbox-logs-") as tmp:
            dest = Gio.File.new_for_path(tmp)
            _pipe_transfer(
                Gio,
                lambda out: attempt.wait(
                    attempt.instance, "download_archive", log_dir, names, out, attempt.cancellable
                ),
                lambda inp: Sandbox.archive_extract(
                    inp, dest, Sandbox.ArchiveFlags.NONE, attempt.cancellable
                ),
                threaded="consumer",
            )
            data: Dict[str, bytes] = {}
            for stream, name in zip(("stdout", "stderr"), names):
                path = os.path.join(tmp, name)
                if os.path.exists(path):
                    with open(path, "rb") as f:
                        # The sandbox's file may be sparse (its holes are
                        # kept): no more of it than this in memory.
                        data[stream] = f.read(MAX_LOG_BYTES)
        if data:
            task_ds = obj.flow_datastore.get_task_datastore(
                kwargs["run_id"],
                step_name,
                kwargs["task_id"],
                int(kwargs.get("retry_count") or 0),
                mode="w",
            )
            task_ds.save_logs(TASK_LOG_SOURCE, data)
    except Exception as ex:  # noqa: BLE001 - best effort, as save_logs
        if _debug_enabled():
            _echo(prefix, "Could not store the task's logs: %s" % getattr(ex, "message", ex))


def _sync_metadata(obj, run_id, step_name, task_id) -> None:
    """Remote datastore + local metadata: copy the task's metadata back."""
    if obj.metadata.TYPE != "local" or obj.flow_datastore.TYPE == "local":
        return
    try:
        from metaflow.metaflow_config import DATASTORE_LOCAL_DIR
        from metaflow.plugins.datastores.local_storage import LocalStorage

        task_ds = obj.flow_datastore.get_task_datastore(run_id, step_name, task_id)
        key = task_ds.load_metadata(["local_metadata"])["local_metadata"]
        _, tarball = next(task_ds.parent_datastore.load_data([key]))
        copy_task_metadata(
            tarball,
            DATASTORE_LOCAL_DIR,
            LocalStorage.get_datastore_root_from_config(lambda *a, **k: None),
            (obj.flow.name, str(run_id), step_name, str(task_id)),
        )
    except Exception as ex:  # best effort, as in @kubernetes
        _echo("", _("Could not copy the task's metadata back: %s") % ex)


# The most bytes one metadata file of a task may have (they are small JSON
# files): a gzip bomb in the tarball is not inflated past it.
MAX_METADATA_FILE = 16 << 20


def copy_task_metadata(
    tarball: bytes, local_dir: str, dest_root: str, task: Tuple[str, ...]
) -> int:
    """What Metaflow's sync_local_metadata_from_datastore does, for a
    tarball that the task's sandbox made: only the _meta files of the task,
    of its step, run and flow (those only if missing here), written as
    regular files. Metaflow's extracts the whole tarball with its symbolic
    links (a link then a file through it writes any file of this machine)
    and copies what the links lead to. Returns how many files were written."""
    import io
    import tarfile

    top = os.path.basename(local_dir.rstrip("/"))
    written = 0
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member in tar:
            parts = [p for p in member.name.split("/") if p not in ("", ".")]
            if not member.isreg() or len(parts) < 4 or parts[0] != top:
                continue
            rel, name = parts[1:-2], parts[-1]
            if (
                parts[-2] != "_meta"
                or tuple(rel) != task[: len(rel)]
                or name.startswith(".")
                or member.size > MAX_METADATA_FILE
            ):
                continue
            dest_dir = os.path.join(dest_root, *rel, "_meta")
            dest = os.path.join(dest_dir, name)
            if len(rel) < len(task) and os.path.lexists(dest):
                continue  # the flow's, run's, step's: this machine's own
            f = tar.extractfile(member)
            if f is None:
                continue
            data = f.read(MAX_METADATA_FILE + 1)
            os.makedirs(dest_dir, exist_ok=True)
            tmp = os.path.join(dest_dir, ".%s.sbx-%d" % (name, os.getpid()))
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data[:MAX_METADATA_FILE])
                os.replace(tmp, dest)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
            written += 1
    return written
