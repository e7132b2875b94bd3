"""The runtime unpickles what a sandboxed step wrote only as plain data.

Metaflow's runtime reads a few artifacts of every task it has run
(``_transition``, ``_foreach_num_splits``, ``_foreach_stack``,
``_task_ok``...) to schedule the next ones, and reads them with
``pickle.loads``. A step in a sandbox writes those blobs itself (it can
write any file of the datastore it has mounted), so a blob whose pickle
calls ``os.system`` would run on this machine, as the runtime's user, the
moment the runtime looks at the task: the sandbox would be worth nothing.

``install()`` (called by the decorator's ``runtime_init``, in the runtime
process only: tasks, inside their sandboxes, load their inputs as usual)
replaces the ``pickle`` that Metaflow's artifact loading uses with one whose
``loads`` rebuilds only plain data: numbers, strings, bytes, containers, the
few Metaflow classes the runtime itself reads. Anything else, a function or
class of any other module in particular, is refused with an error that
names it; ``dumps`` and the rest are the real module's.
"""

import io
import pickle
from typing import Any, Dict, FrozenSet, Tuple

from metaflow.exception import MetaflowException

from .sandbox_i18n import _

# (module, name) the runtime may meet in its own artifacts: containers and
# scalars, Metaflow's foreach frames (a namedtuple), included files. Metaflow's own
# unbounded-foreach inputs are allowed too (_metaflow_foreach_input).
SAFE_GLOBALS: FrozenSet[Tuple[str, str]] = frozenset(
    [
        ("builtins", name)
        for name in (
            "bool",
            "bytearray",
            "bytes",
            "complex",
            "dict",
            "float",
            "frozenset",
            "int",
            "list",
            "range",
            "set",
            "slice",
            "str",
            "tuple",
        )
    ]
    + [("__builtin__", name) for name in ("set", "frozenset", "bytearray")]
    + [
        ("collections", "OrderedDict"),
        ("collections", "deque"),
        ("copyreg", "__newobj__"),
        ("copy_reg", "__newobj__"),
        ("metaflow.tuple_util", "ForeachFrame"),
        # IncludeFile parameters' values (a descriptor dict in an object of
        # no behaviour of its own), read to send the uploads along.
        ("metaflow.includefile", "IncludedFile"),
    ]
)


class RefusedArtifact(MetaflowException):
    """An artifact needed something other than plain data."""

    headline = "Artifact refused"


def _metaflow_foreach_input(module: str, name: str) -> bool:
    """An unbounded foreach's input class of Metaflow's own (the runtime
    reads the input of a foreach over one): rebuilt from its state only."""
    if not (module == "metaflow" or module.startswith("metaflow.")) or "." in name:
        return False
    try:
        import importlib

        from metaflow.unbounded_foreach import UnboundedForeachInput

        found = getattr(importlib.import_module(module), name, None)
    except Exception:
        return False
    return isinstance(found, type) and issubclass(found, UnboundedForeachInput)


# The most items a range may have, and bytes or a bytearray made from a
# number of bytes: the plain types that make something large from a small
# pickle (bytearray(10**10), list(range(10**10)) are a few bytes each). A
# step could otherwise have the runtime take all of this machine's memory.
MAX_ITEMS = 1 << 20


def _too_large(what: str) -> RefusedArtifact:
    return RefusedArtifact(
        _(
            "A task's artifact asks for a %(what)s of more than %(max)d items. The Metaflow "
            "runtime of a run with sandboxed steps refuses it, since a step in a sandbox "
            "could otherwise make this machine run out of memory; see docs/security.md, "
            "'Metaflow steps'."
        )
        % {"what": what, "max": MAX_ITEMS}
    )


def _checked_range(*args: Any) -> range:
    made = range(*args)
    try:
        ok = len(made) <= MAX_ITEMS
    except OverflowError:
        ok = False
    if not ok:
        raise _too_large("range")
    return made


def _sized(kind: type) -> Any:
    """KIND (bytes, bytearray), refusing a size over MAX_ITEMS."""

    def make(*args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], int) and args[0] > MAX_ITEMS:
            raise _too_large(kind.__name__)
        return kind(*args, **kwargs)

    return make


_CHECKED = {
    ("builtins", "range"): _checked_range,
    ("builtins", "bytes"): _sized(bytes),
    ("builtins", "bytearray"): _sized(bytearray),
    ("__builtin__", "bytearray"): _sized(bytearray),
}


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _CHECKED:
            return _CHECKED[(module, name)]
        if (module, name) == ("__main__", "ForeachFrame"):
            # Metaflow names its foreach frames' class after __main__ (so
            # that a client without the flow unpickles them): Metaflow's own.
            from metaflow.tuple_util import ForeachFrame

            return ForeachFrame
        if (module, name) in SAFE_GLOBALS or _metaflow_foreach_input(module, name):
            return super().find_class(module, name)
        raise RefusedArtifact(
            _(
                "A task's artifact needs %(name)s to be rebuilt. The Metaflow runtime of a "
                "run with sandboxed steps rebuilds only plain data (numbers, strings, "
                "containers) from what a task wrote, since a step in a sandbox could "
                "otherwise run code on this machine through it. Keep the flow's control "
                "artifacts (what self.next is given, foreach lists) plain; see "
                "docs/security.md, 'Metaflow steps'."
            )
            % {"name": "%s.%s" % (module, name)}
        )


def plain_loads(data: bytes, **kwargs: Any) -> Any:
    """pickle.loads that rebuilds only SAFE_GLOBALS."""
    return _PlainUnpickler(io.BytesIO(data), **kwargs).load()


class _PickleForRuntime:
    """The pickle module, but loads/load rebuild plain data only."""

    UnpicklingError = pickle.UnpicklingError

    def __getattr__(self, name: str) -> Any:
        return getattr(pickle, name)

    @staticmethod
    def loads(data: bytes, **kwargs: Any) -> Any:
        return plain_loads(data, **kwargs)

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return _PlainUnpickler(file, **kwargs).load()


# The most bytes an artifact of the datastore may inflate to when the
# runtime reads it: its own control artifacts are tiny, and a step's gzip
# blob of a few MiB would otherwise inflate a thousandfold in the runtime's
# memory (a "zip bomb" as _transition).
MAX_INFLATED = 256 << 20


class _BoundedRead:
    """A GzipFile opened for reading whose whole-file read stops past
    MAX_INFLATED bytes (with RefusedArtifact)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __enter__(self) -> "_BoundedRead":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.close()

    def read(self, size: int = -1) -> bytes:
        want = MAX_INFLATED + 1 if size is None or size < 0 else min(size, MAX_INFLATED + 1)
        data = self._inner.read(want)
        if len(data) > MAX_INFLATED:
            raise RefusedArtifact(
                _(
                    "A task's artifact inflates to more than %(max)d bytes. The Metaflow runtime "
                    "of a run with sandboxed steps refuses it, since a step in a sandbox could "
                    "otherwise make this machine run out of memory; see docs/security.md, "
                    "'Metaflow steps'."
                )
                % {"max": MAX_INFLATED}
            )
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _GzipForRuntime:
    """The gzip module, but what GzipFile reads is bounded (_BoundedRead)."""

    def __getattr__(self, name: str) -> Any:
        import gzip

        return getattr(gzip, name)

    @staticmethod
    def GzipFile(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 (gzip's name)
        import gzip

        opened = gzip.GzipFile(*args, **kwargs)
        mode = kwargs.get("mode", args[1] if len(args) > 1 else "rb")
        return _BoundedRead(opened) if "r" in (mode or "rb") else opened


# The modules whose `pickle` loads artifacts: the serializer of Metaflow
# 2.16+, and the task datastore itself before it.
_ARTIFACT_LOADERS = (
    "metaflow.plugins.datastores.serializers.pickle_serializer",
    "metaflow.datastore.task_datastore",
)

_installed: Dict[str, Any] = {}


def install() -> int:
    """Makes the modules that load artifacts in this process use the plain
    loader; returns how many were changed (0 when none loads with pickle)."""
    import importlib

    changed = 0
    for name in _ARTIFACT_LOADERS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        current = getattr(module, "pickle", None)
        if current is pickle:
            _installed[name] = current
            module.pickle = _PickleForRuntime()  # type: ignore[attr-defined]
            changed += 1
        elif isinstance(current, _PickleForRuntime):
            changed += 1
    verify_blobs()
    guard_control_artifacts()
    # The content-addressed store inflates each blob whole (gzip) before it
    # is unpickled: bounded too.
    try:
        import gzip

        store = importlib.import_module(_BLOB_STORE)
    except ImportError:
        return changed
    if getattr(store, "gzip", None) is gzip:
        _installed[_BLOB_STORE + ":gzip"] = gzip
        store.gzip = _GzipForRuntime()  # type: ignore[attr-defined]
    return changed


_BLOB_STORE = "metaflow.datastore.content_addressed_store"


# The blobs' addresses: the content-addressed store names each blob by the
# SHA-1 of its bytes, and keeps a blob it finds under that name rather than
# write it again. A step in a local sandbox writes its flow's blobs
# (<Flow>/data, read-write in its sandbox: task_write_dirs) and could put
# any content under an existing address, which every later task, run or
# runtime of the flow storing or reading an equal value would then take.
_BLOBS_VERIFIED = "metaflow.datastore.content_addressed_store:load_blobs"


def _blob_mismatch(key: str) -> RefusedArtifact:
    return RefusedArtifact(
        _(
            "The datastore's blob %s does not hold what its content address says: it "
            "was changed after it was stored (a sandboxed step of this flow may have "
            "rewritten it), and is refused. Delete that blob file (and the runs that "
            "stored it) and run again; see docs/security.md, 'Metaflow steps'."
        )
        % key
    )


def verify_blobs() -> bool:
    """Makes the content-addressed store of this process check each blob it
    loads against its address (the SHA-1 of its bytes): a blob rewritten
    since it was stored is refused (RefusedArtifact), wherever it is read:
    the runtime, the trampoline, the tasks of a flow with sandboxed steps
    (SandboxDecorator.step_init). Returns whether the check is in place."""
    import hashlib
    import importlib

    if _BLOBS_VERIFIED in _installed:
        return True
    try:
        store = importlib.import_module(_BLOB_STORE)
    except ImportError:
        return False
    cls = getattr(store, "ContentAddressedStore", None)
    original = getattr(cls, "load_blobs", None)
    if original is None:
        return False

    def load_blobs(self: Any, keys: Any, *args: Any, **kwargs: Any) -> Any:
        for item in original(self, keys, *args, **kwargs):
            # A transfer (three items) passes the stored bytes on as they are.
            if len(item) == 2 and hashlib.sha1(item[1]).hexdigest() != item[0]:
                raise _blob_mismatch(str(item[0]))
            yield item

    load_blobs.__wrapped__ = original  # type: ignore[attr-defined]
    cls.load_blobs = load_blobs
    _installed[_BLOBS_VERIFIED] = original
    return True


# Metaflow's own artifacts, which Metaflow itself loads in a task from the
# tasks before it, before any code of the step runs (task.py: _init_foreach,
# _init_iteration, the parameters' _graph_info), and the runtime reads to
# schedule: plain data by Metaflow's own making (_foreach_values holds the
# items' short strings, _foreach_stack ForeachFrames of them). A step in a
# sandbox writes its own; a task on this machine (a step without @sandbox
# after a sandboxed one) unpickled them with pickle: a sandboxed foreach
# step's _foreach_values of os.system pickles ran on this machine in the
# body's tasks, which the runtime does not read it for (session sec26).
# _success (a bool) is read by Metaflow's own commands of the flow: `card
# server` answers the card viewer's data requests with the task's
# `successful`, on this machine; a step's os.system pickle there ran when
# the page was open (session sec28).
CONTROL_ARTIFACTS: FrozenSet[str] = frozenset(
    [
        "_transition",
        "_foreach_values",
        "_foreach_stack",
        "_foreach_num_splits",
        "_foreach_var",
        "_iteration_stack",
        "_task_ok",
        "_success",
        "_unbounded_foreach",
        "_graph_info",
    ]
)
_CONTROL_GUARDED = "metaflow.datastore.task_datastore:load_artifacts"
# The encodings Metaflow's pickle serializer reads (the blob store inflates
# the gzip ones): any other names a serializer that is not pickle.
_PICKLE_ENCODINGS = frozenset(["pickle-v2", "pickle-v4", "gzip+pickle-v2", "gzip+pickle-v4"])


def _refused_encoding(name: str, encoding: Any) -> RefusedArtifact:
    return RefusedArtifact(
        _(
            "Metaflow's artifact %(name)s is stored with the encoding %(encoding)s, not as a "
            "pickle: a task of a flow with sandboxed steps loads Metaflow's own artifacts as "
            "plain data only, since a step in a sandbox writes them; see docs/security.md, "
            "'Metaflow steps'."
        )
        % {"name": name, "encoding": encoding}
    )


def guard_control_artifacts() -> bool:
    """Makes the task datastore of this process load Metaflow's own
    artifacts (CONTROL_ARTIFACTS) as plain data (plain_loads), whatever
    loads them: the tasks of a flow with sandboxed steps, sandboxed or not
    (SandboxDecorator.step_init), and the runtime. Any other artifact loads
    as Metaflow loads it. Returns whether the guard is in place."""
    import importlib

    if _CONTROL_GUARDED in _installed:
        return True
    try:
        module = importlib.import_module("metaflow.datastore.task_datastore")
    except ImportError:
        return False
    cls = getattr(module, "TaskDataStore", None)
    original = getattr(cls, "load_artifacts", None)
    if original is None:
        return False

    def load_artifacts(self: Any, names: Any) -> Any:
        names = list(names)
        control = [n for n in names if n in CONTROL_ARTIFACTS]
        if not control or not getattr(self, "_info", None):
            yield from original(self, names)
            return
        for name in control:
            info = self._info.get(name, {})
            encoding = info.get("encoding", "gzip+pickle-v2")
            if encoding not in _PICKLE_ENCODINGS:
                raise _refused_encoding(name, encoding)
            key = self._objects[name]
            for _key, blob in self._ca_store.load_blobs([key]):
                yield name, plain_loads(blob)
        others = [n for n in names if n not in CONTROL_ARTIFACTS]
        if others:
            yield from original(self, others)

    load_artifacts.__wrapped__ = original  # type: ignore[attr-defined]
    cls.load_artifacts = load_artifacts
    _installed[_CONTROL_GUARDED] = original
    return True


def uninstall() -> None:
    """Puts the real pickle back (tests)."""
    import importlib

    for name, original in list(_installed.items()):
        if name == _BLOBS_VERIFIED:
            importlib.import_module(_BLOB_STORE).ContentAddressedStore.load_blobs = original
        elif name == _CONTROL_GUARDED:
            module = importlib.import_module("metaflow.datastore.task_datastore")
            module.TaskDataStore.load_artifacts = original
        elif name.endswith(":gzip"):
            importlib.import_module(name[: -len(":gzip")]).gzip = original  # type: ignore[attr-defined]
        else:
            importlib.import_module(name).pickle = original  # type: ignore[attr-defined]
        del _installed[name]
