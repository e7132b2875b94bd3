"""One task on a remote backend, without importing Metaflow (issue 14, 3c/3d).

``python -m metaflow_extensions.libsandbox.plugins.sandbox_remote TASK.json
-- PYTHON -u flow.py ... step ...``: the runtime starts this in place of the
``sandbox step`` trampoline for a remote backend with the local datastore
(sandbox_executor.remote_launch, which has written TASK.json into the run's
private pool directory and everything secret into this process's
environment). Where the trampoline imported Metaflow, parsed the flow and ran
a log-structuring runner and ``save_logs`` around the step, this process
loads only the standard library and libsandbox (gi), and the sandbox runs
one interpreter: the step itself. Per task it

* takes a free sandbox of the run's pool (sandbox_pool.py) or creates one,
* sends the task's inputs (and, to a new sandbox, the code package) as one
  tar file to the sandbox's work directory (one upload),
* runs one shell command that unpacks it as the datastore copy in place of
  the previous task's (no extract or cleanup exec of their own), unpacks the
  code package if this sandbox has not yet, and execs the step; its output
  streams to this process's own,
  which the runtime saves as the task's logs, as for a plain task,
* packs the task's outputs in the sandbox with one exec and brings them
  back with at most two plain downloads (sandbox_sync.fetch_packed_outputs),
  and hands the sandbox back to the pool, or destroys it when anything went
  wrong.
"""

import json
import os
import signal
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from .sandbox_i18n import _
from .sandbox_output import LineOutput

SECRETS_ENV = "MF_SANDBOX_SECRETS"
# Create errors worth another try (the provider was busy or unreachable;
# names of SandboxError codes), here and in the trampoline (sandbox_executor).
# Other errors (a bad spec, credentials) fail at once.
RETRYABLE_CREATE_ERRORS = ("FAILED", "RATE_LIMITED", "TIMEOUT", "UNAVAILABLE", "PROTOCOL")
CREATE_ATTEMPTS = 3
CREATE_BACKOFF_SECONDS = 2.0
# The tar of the task's inputs, unpacked by the task's command.
INPUTS_NAME = ".mf-inputs.tar"
# The run's IncludeFile uploads, unpacked at their absolute paths.
INCLUDE_NAME = ".mf-include.tar"
# The code package as the runtime's helper sends it (prepare), unpacked by
# the first task's command.
PACKAGE_NAME = ".mf-package.tgz"
# Bytecode of the code package from an earlier run (sandbox_executor's
# bytecode cache), sent to a new sandbox with the package.
BYTECODE_NAME = ".mf-bytecode.tgz"


# How long a task waits for the sandbox the runtime's helper is preparing
# (sandbox_pool.preparing), and how often it looks.
PREPARED_WAIT_S = 120.0
PREPARED_POLL_MS = 5
# How long the helper waits for the runtime to name the code package.
PACKAGE_WAIT_S = 600.0


def package_head(url: str, sha: Optional[str]) -> str:
    """The first lines of a task's command (sandbox_executor.remote_script):
    the code package's location in the task's datastore copy and its sha."""
    import shlex

    return "mf_code_url=%s\nmf_code_sha=%s\n" % (shlex.quote(url), shlex.quote(sha or ""))


def _echo(prefix: str, msg: str) -> None:
    sys.stderr.write("%s%s\n" % (prefix, msg))
    sys.stderr.flush()


def _fail(prefix: str, msg: str) -> None:
    """A failure that ends the task, under the headline Metaflow prints for
    the trampoline's SandboxExecutionError (the same words either way)."""
    _echo(prefix, "Sandbox error:")
    _echo(prefix, msg)


def _say_not_destroyed(sandbox_id: str, message: str) -> None:
    _echo(
        "",
        _("Could not destroy sandbox %s: %s -- remove it with `sandboxctl rm %s`.")
        % (sandbox_id, message, sandbox_id),
    )


# How long a call under way is still waited for once SIGINT, SIGTERM or
# SIGHUP came (Attempt.wait): a cancelled one ending, a destroy (which a
# signal does not cancel) being answered.
SIGNAL_GRACE_S = 5.0


def destroy_instance(instance, GLib, Sandbox=None, wait=None) -> None:
    """Destroys @instance; an error is said with what to do (one already
    gone is fine when @Sandbox is given), never raised. Every path that
    ends a sandbox goes through here: a task's end, a stale or abandoned
    pooled sandbox, an interrupted create. @wait: an attempt's
    (Attempt.wait), so that signals are seen meanwhile; without it the
    synchronous call."""
    try:
        if wait is None:
            instance.destroy(None)
        else:
            wait(instance, "destroy", None)
    except GLib.Error as ex:
        if Sandbox is not None and ex.matches(Sandbox.error_quark(), Sandbox.Error.NOT_FOUND):
            return
        _say_not_destroyed(instance.get_id(), ex.message)


def destroy_by_id(backend, GLib, Sandbox, sandbox_id: str, wait=None) -> None:
    """Destroys the sandbox @sandbox_id of @backend (a Sandbox.Backend);
    one already gone is fine. @wait: as for destroy_instance."""
    try:
        if wait is None:
            instance = backend.get_instance(sandbox_id, None)
        else:
            instance = wait(backend, "get_instance", sandbox_id, None)
    except GLib.Error as ex:
        if ex.matches(Sandbox.error_quark(), Sandbox.Error.NOT_FOUND):
            return
        _say_not_destroyed(sandbox_id, ex.message)
        return
    destroy_instance(instance, GLib, Sandbox, wait)


def destroy_many(GLib, Sandbox, targets: List[Tuple[str, str]], most: int) -> List[str]:
    """Destroys the sandboxes @targets ([(backend name, id)]), at most
    @most at a time, each as destroy_by_id does (one already gone is fine)
    but all on one main loop of a context of their own (the library's
    asynchronous calls: no thread); a failure is said with its id and what
    to do, and the others go on. Returns the ids not destroyed."""
    backends: Dict[str, Any] = {}
    failed: List[str] = []
    pending = []
    for name, sandbox_id in reversed(targets):
        if name not in backends:
            try:
                backends[name] = Sandbox.Backend.new_for_name(name)
            except GLib.Error as ex:
                backends[name] = ex
        if isinstance(backends[name], GLib.Error):
            failed.append(sandbox_id)
            _say_not_destroyed(sandbox_id, backends[name].message)
        else:
            pending.append((name, sandbox_id))
    if not pending:
        return failed
    context = GLib.MainContext.new()
    loop = GLib.MainLoop.new(context, False)
    running = [0]

    def finished(sandbox_id: str, error: Optional[str] = None) -> None:
        if error is not None:
            failed.append(sandbox_id)
            _say_not_destroyed(sandbox_id, error)
        running[0] -= 1
        start_next()

    def why(ex) -> Optional[str]:
        """What a failed call says; None for a sandbox already gone."""
        if isinstance(ex, GLib.Error):
            if ex.matches(Sandbox.error_quark(), Sandbox.Error.NOT_FOUND):
                return None
            return ex.message
        return "%s: %s" % (type(ex).__name__, ex)

    def destroyed(instance, res, sandbox_id: str) -> None:
        try:
            instance.destroy_finish(res)
        except Exception as ex:
            finished(sandbox_id, why(ex))
            return
        finished(sandbox_id)

    def found(backend, res, sandbox_id: str) -> None:
        try:
            instance = backend.get_instance_finish(res)
            instance.destroy_async(None, destroyed, sandbox_id)
        except Exception as ex:
            finished(sandbox_id, why(ex))

    def start_next() -> None:
        while pending and running[0] < most:
            name, sandbox_id = pending.pop()
            running[0] += 1
            backends[name].get_instance_async(sandbox_id, None, found, sandbox_id)
        if not pending and running[0] == 0:
            loop.quit()

    context.push_thread_default()
    try:
        start_next()
        if running[0]:
            loop.run()
    finally:
        context.pop_thread_default()
    return failed


def die_of(signum: int) -> None:
    """Ends this process by @signum (no core file), so that the runtime
    reports a task's signal as it does a local task's (-11: "Task failed
    with a segmentation fault.")."""
    from .sandbox_runner import no_core_dump

    sys.stdout.flush()
    sys.stderr.flush()
    no_core_dump()
    try:
        signal.signal(signum, signal.SIG_DFL)
    except (OSError, ValueError):
        pass  # SIGKILL, SIGSTOP: no handler to reset
    os.kill(os.getpid(), signum)


def step_outcome(
    prefix: str,
    signal_received: Optional[int],
    result,
    error,
    time_limit,
    disallow_retry: int,
    sandbox_id: str,
) -> Tuple[int, int, bool]:
    """What a step's exec came to, said the same way by the remote task's
    process and the trampoline: (exit status, signal that killed the step,
    whether it ran to its end, so that its outputs are to be fetched)."""
    if signal_received is not None:
        return interrupted(prefix, signal_received, sandbox_id), 0, False
    if error is not None or result is None:
        _fail(
            prefix,
            _("Running the task in the sandbox failed: %s") % getattr(error, "message", error),
        )
        return disallow_retry, 0, False
    if result.get_timed_out():
        _echo(
            prefix,
            _("The task ran longer than its time limit of %s seconds and was killed.") % time_limit,
        )
        return 1, 0, False
    return exit_and_signal(result) + (True,)


def exit_and_signal(result) -> Tuple[int, int]:
    """(exit status, signal) of the task's command. The command dies of
    the step's signal (its script re-raises it, as the runner does); a
    backend that reports only the status its shell saw gives 128 + the
    signal (Daytona: its session shell runs the command), which was taken
    for an exit status: a step that crashed (SIGSEGV) or was killed out of
    memory failed with no word of it (session mfx21)."""
    code, signum = result.get_exit_code(), result.get_term_signal()
    if not signum and 128 < code < 160:
        return code, code - 128
    return code, signum


def say_term_signal(prefix: str, term_signal: int) -> None:
    """Names the signal that killed a step (a segmentation fault is said by
    the runtime itself)."""
    if term_signal and term_signal != signal.SIGSEGV:
        _echo(
            prefix,
            _("The task was killed by signal %d%s.")
            % (term_signal, " (out of memory?)" if term_signal == 9 else ""),
        )


def interrupted(prefix: str, signum: int, sandbox_id: Optional[str]) -> int:
    """Says the task was interrupted (before its sandbox existed: no
    @sandbox_id); the exit status a signal gives."""
    if sandbox_id is None:
        _echo(prefix, _("Interrupted (signal %d) while the sandbox was being created.") % signum)
    else:
        _echo(prefix, _("Interrupted (signal %d): destroying sandbox %s.") % (signum, sandbox_id))
    return 128 + signum


def _load_gi():
    import gi

    gi.require_version("Sandbox", "1.0")
    from gi.repository import Gio, GLib, Sandbox

    return Gio, GLib, Sandbox


class Marks:
    """Where a task's time went (METAFLOW_SANDBOX_DEBUG): seconds from the
    runtime's launch (@launched, time.time()) to this process at work, then
    between each mark."""

    def __init__(self, launched: Optional[float]) -> None:
        now = time.time()
        self.items = [("start", now - launched)] if launched else []
        self.last = time.monotonic()

    def add(self, what: str) -> None:
        now = time.monotonic()
        self.items.append((what, now - self.last))
        self.last = now

    def summary(self) -> str:
        return "times: " + ", ".join("%s %.3f s" % item for item in self.items)


class Attempt:
    """The task's sandbox calls, run on one main loop so that SIGINT,
    SIGTERM and SIGHUP cancel what is under way. No synchronous call while
    the signal handlers are installed: GLib runs them only on the main
    loop, which a synchronous call does not iterate (it runs a context of
    its own), so a signal that came during one was not seen until it
    returned, and never when it did not."""

    def __init__(self, Gio, GLib, Sandbox, backend_name: str) -> None:
        self.Gio, self.GLib, self.Sandbox = Gio, GLib, Sandbox
        self.backend = Sandbox.Backend.new_for_name(backend_name)
        self.loop = GLib.MainLoop()
        self.cancellable = Gio.Cancellable()
        self.instance = None
        self.signal_received: Optional[int] = None
        self._sources: List[int] = []
        self._sleeping = False
        self._sleep_source = 0
        # A wait is under way: a signal ends the loop's run, so that the
        # wait starts counting its grace.
        self._waiting = False

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._sources.append(
                self.GLib.unix_signal_add(self.GLib.PRIORITY_HIGH, signum, self._on_signal, signum)
            )

    def remove_signal_handlers(self) -> None:
        for source in self._sources:
            self.GLib.source_remove(source)
        self._sources = []

    def _on_signal(self, signum) -> bool:
        if self.signal_received is None:
            self.signal_received = signum
        # Every call under way on the main loop ends (a create too: the
        # backend deletes what it had made), and so does a sleep.
        self.cancellable.cancel()
        if self._sleeping or self._waiting:
            self.loop.quit()
        return True

    def sleep(self, ms: float) -> None:
        """@ms milliseconds on the main loop; a signal ends it at once."""
        if self.signal_received is not None:
            return

        def done():
            self._sleep_source = 0
            self.loop.quit()
            return False

        self._sleep_source = self.GLib.timeout_add(max(0, int(ms)), done)
        self._sleeping = True
        try:
            self.loop.run()
        finally:
            self._sleeping = False
            if self._sleep_source:
                self.GLib.source_remove(self._sleep_source)
                self._sleep_source = 0

    def create(self, spec, labels: Dict[str, str]) -> None:
        """Creates the attempt's sandbox (self.instance). Cancellable: a
        SIGINT, SIGTERM or SIGHUP ends it, and the backend deletes what it
        had made; what a backend may still have left (a sandbox created at
        the last moment, a backend that does not delete) is found by the
        attempt's @labels and destroyed. A create used to be left to run
        on: a sandbox whose start never ended (its workdir command hung, as
        on a Daytona image without `mv`) held the task's process through
        every SIGTERM."""
        try:
            self.instance = self.wait(self.backend, "create", spec, self.cancellable)
        except self.GLib.Error:
            if self.signal_received is not None:
                self.destroy_labelled(labels)
            raise

    def destroy_labelled(self, labels: Dict[str, str]) -> None:
        """Destroys every sandbox of the backend that has all of @labels
        (those of one task attempt: its own); errors are said, not raised."""
        try:
            found = self.wait(self.backend, "list", labels, None)
        except self.GLib.Error:
            return
        for instance in found or ():
            destroy_instance(instance, self.GLib, self.Sandbox, self.wait)

    def _run_until(self, finished: Callable[[], bool]) -> bool:
        """Runs the main loop until finished(); once a signal came, for
        SIGNAL_GRACE_S more at the most, so that the task's process ends
        within seconds of a signal whatever the provider does (a call the
        signal cancelled that does not end, a destroy that is not
        answered). Returns finished()."""
        expired: List[bool] = []
        timer = 0

        def expire() -> bool:
            expired.append(True)
            self.loop.quit()
            return False

        self._waiting = True
        try:
            while not finished() and not expired:
                if self.signal_received is not None and not timer:
                    timer = self.GLib.timeout_add(int(SIGNAL_GRACE_S * 1000), expire)
                self.loop.run()
        finally:
            self._waiting = False
            if timer and not expired:
                self.GLib.source_remove(timer)
        return finished()

    def _gave_up(self):
        """The error of a call given up on SIGNAL_GRACE_S after a signal."""
        return self.GLib.Error(
            _("no answer %g s after the interrupt (signal %d)")
            % (SIGNAL_GRACE_S, self.signal_received),
            "g-io-error-quark",
            int(self.Gio.IOErrorEnum.TIMED_OUT),
        )

    def wait(self, source, name: str, *args):
        """source.<name>_async(*args) on the main loop; what <name>_finish
        returns (or raises). Once a signal came, the call is waited for
        SIGNAL_GRACE_S more at the most (_run_until); the calls that end
        sandboxes pass no cancellable, so that a signal does not stop
        them."""
        box: Dict[str, Any] = {}

        def done(obj, res):
            try:
                box["result"] = getattr(obj, name + "_finish")(res)
            except self.GLib.Error as ex:
                box["error"] = ex
            box["done"] = True
            if not box.get("abandoned"):
                self.loop.quit()

        getattr(source, name + "_async")(*args, done)
        if not self._run_until(lambda: "done" in box):
            # Its callback may still come: it must not end a later wait.
            box["abandoned"] = True
            raise self._gave_up()
        if "error" in box:
            raise box["error"]
        return box.get("result")

    def wait_all(self, calls: List[Tuple[Any, str, tuple]]) -> List[Any]:
        """Runs each source.<name>_async(*args) of @calls at the same time
        on the main loop; what their _finish return (the first error is
        raised once all have ended). Bounded after a signal as wait()."""
        box: List[Any] = [None] * len(calls)
        left = [len(calls)]
        abandoned: List[bool] = []

        def done_for(i: int, name: str):
            def done(obj, res):
                try:
                    box[i] = (True, getattr(obj, name + "_finish")(res))
                except self.GLib.Error as ex:
                    box[i] = (False, ex)
                left[0] -= 1
                if left[0] == 0 and not abandoned:
                    self.loop.quit()

            return done

        for i, (source, name, args) in enumerate(calls):
            getattr(source, name + "_async")(*args, done_for(i, name))
        if calls and not self._run_until(lambda: left[0] == 0):
            abandoned.append(True)
            raise self._gave_up()
        for ok, value in box:
            if not ok:
                raise value
        return [value for _ok, value in box]

    def end(self, lease, kept: bool, debugged: bool = False) -> None:
        """A task's last step, on every path: its sandbox goes back to the
        run's pool (@kept: @lease is released), stays for debugging
        (@debugged), or is destroyed; the signal handlers are removed."""
        if not kept and not debugged:
            self.destroy()
        if lease is not None:
            if kept:
                lease.release()
            else:
                lease.drop()
        self.remove_signal_handlers()

    def destroy(self) -> None:
        if self.instance is not None:
            destroy_instance(self.instance, self.GLib, wait=self.wait)


def _build_spec(Sandbox, task: Dict[str, Any], secrets: Dict[str, str]):
    s = task["spec"]
    spec = Sandbox.Spec()
    if s.get("image"):
        spec.set_image(s["image"])
    spec.set_workdir(task["workdir"])
    if s.get("cpu"):
        spec.set_cpu(float(s["cpu"]))
    if s.get("memory"):
        spec.set_memory_mb(int(float(s["memory"])))
    if s.get("disk"):
        spec.set_disk_mb(int(float(s["disk"])))
    if s.get("gpu"):
        spec.set_gpu(int(float(s["gpu"])))
    if s.get("ttl"):
        spec.set_timeout(int(s["ttl"]))
    spec.set_network(bool(s.get("network")))
    spec.set_die_with_owner(not task.get("debug"))
    for key, value in task["labels"].items():
        spec.set_label(key, value)
    for key, value in secrets.items():
        spec.set_env(key, value)
    return spec


def create_time_file(backend: str) -> str:
    """Where the time the backend's last create took on this machine is
    kept (sandbox_executor.prepare_first_sandbox reads it)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "libsandbox", "create-seconds-%s" % backend.replace("/", "_"))


def record_create_time(backend: str, seconds: float) -> None:
    path = create_time_file(backend)
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = "%s.%d" % (path, os.getpid())
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("%.3f\n" % seconds)
        os.replace(tmp, path)
    except OSError:
        pass


def create_with_retries(
    create: Callable[[], None],
    GLib,
    Sandbox,
    backend: str,
    interrupted: Callable[[], bool],
    sleep: Callable[[float], None] = lambda ms: time.sleep(ms / 1000.0),
) -> Optional[Tuple[bool, str]]:
    """Calls @create, again after 2 and 4 s (@sleep, in milliseconds: the
    attempt's, which a signal ends) when it fails in a way that may pass (a
    busy or unreachable provider; not a refused image or credentials) and
    the task was not @interrupted. None once it worked, else (final,
    message): final when another attempt of the task would fail the same
    way (no @retry then). Shared by the task's process here and the
    trampoline (sandbox_executor)."""
    retryable = {int(getattr(Sandbox.Error, name)) for name in RETRYABLE_CREATE_ERRORS}
    domain = GLib.quark_to_string(Sandbox.error_quark())
    for n in range(CREATE_ATTEMPTS):
        try:
            create()
            return None
        except GLib.Error as ex:
            if ex.domain == domain and ex.code not in retryable:
                return True, _("Could not create a sandbox on the %s backend: %s") % (
                    backend,
                    ex.message,
                )
            if n + 1 == CREATE_ATTEMPTS or interrupted():
                return False, _("Could not create a sandbox on the %s backend (%d tries): %s") % (
                    backend,
                    n + 1,
                    ex.message,
                )
            delay = CREATE_BACKOFF_SECONDS * (2**n)
            _echo(
                "",
                _("Could not create a sandbox on the %s backend: %s -- trying again in %g s.")
                % (backend, ex.message, delay),
            )
            sleep(delay * 1000)
            if interrupted():
                return False, _("Could not create a sandbox on the %s backend: %s") % (
                    backend,
                    ex.message,
                )
    return None


def _create(attempt: Attempt, spec, task: Dict[str, Any]) -> Optional[str]:
    """Creates the sandbox (create_with_retries); None, or the message of
    a failure that another attempt of the task would repeat (prefixed
    "!")."""
    backend = task["backend"]

    def create() -> None:
        started = time.monotonic()
        attempt.create(spec, task["labels"])
        record_create_time(backend, time.monotonic() - started)

    failure = create_with_retries(
        create,
        attempt.GLib,
        attempt.Sandbox,
        backend,
        lambda: attempt.signal_received is not None,
        attempt.sleep,
    )
    if failure is None:
        return None
    final, message = failure
    return ("!" if final else "") + message


def _take_sandbox(attempt: Attempt, task: Dict[str, Any], spec):
    """(lease, error message or None): a free sandbox of the run's pool, or
    a new one, held by this process. Under METAFLOW_SANDBOX_DEBUG, why a
    task created its own sandbox though the runtime prepared one (or a
    pooled one was passed over) is said on its stderr."""
    from .sandbox_pool import acquire, create_lease, preparing

    pool_dir, key, backend = task["pool_dir"], task["pool_key"], task["backend"]
    debug = bool(task.get("debug"))
    started = time.monotonic()
    deadline = started + PREPARED_WAIT_S
    # Sandboxes of the pool the provider would not show now (not gone:
    # drain() destroys them at the run's end); not taken again.
    skipped: List[str] = []
    waited = False
    while True:
        stale, lease = acquire(pool_dir, key, skip=skipped)
        for old in stale:
            if debug:
                _echo("", "pool: sandbox %s is too old for a task: destroyed" % old.sandbox_id)
            destroy_by_id(
                attempt.backend,
                attempt.GLib,
                attempt.Sandbox,
                old.sandbox_id or "",
                attempt.wait,
            )
            old.drop()
        if lease is not None:
            instance, ex = _get_pooled(attempt, lease.sandbox_id)
            if ex is None:
                attempt.instance = instance
                if lease.take_mark():
                    lease.how = "prepared"
                return lease, None
            if attempt.signal_received is not None:
                # Still the run's: back to its pool, whose drain destroys it.
                lease.release()
                return None, ex.message
            if ex.matches(attempt.Sandbox.error_quark(), attempt.Sandbox.Error.NOT_FOUND):
                # Ended on its own (its time to live, the provider): make another.
                if debug:
                    _echo("", "pool: sandbox %s is gone (%s)" % (lease.sandbox_id, ex.message))
                lease.take_mark()
                lease.drop()
                continue
            # Not known to be gone (a busy provider, a slow machine): it
            # stays listed, so that the run's end destroys it, and nobody
            # waits for it any more. It used to be dropped from the pool
            # and left running.
            if debug:
                _echo(
                    "",
                    "pool: sandbox %s did not answer (%s): left to the run's end"
                    % (lease.sandbox_id, ex.message),
                )
            lease.take_mark()
            skipped.append(lease.path)
            lease.release()
            continue
        # The runtime's helper is preparing a sandbox for this task (created
        # while the runtime built the code package, the package unpacked),
        # or has just made it ready: wait for it (look again) rather than
        # create a second one.
        if attempt.signal_received is not None:
            break
        if time.monotonic() > deadline:
            if debug:
                _echo("", "pool: the prepared sandbox was not ready within %g s" % PREPARED_WAIT_S)
            break
        if not preparing(pool_dir, key):
            if debug and waited:
                _echo(
                    "",
                    "pool: waited %.3f s for the prepared sandbox: another task took it, "
                    "or its helper ended without making it ready" % (time.monotonic() - started),
                )
            break
        waited = True
        attempt.sleep(PREPARED_POLL_MS)
    lease = create_lease(pool_dir, key, backend)
    lease.how = "created"
    error = _create(attempt, spec, task)
    if error is None:
        lease.write(id=attempt.instance.get_id())
    return lease, error


# How often a pooled sandbox that the provider did not show (an error other
# than "not found") is asked for again before it is passed over.
GET_POOLED_ATTEMPTS = 3


def _get_pooled(attempt: Attempt, sandbox_id: Optional[str]):
    """(instance, None) or (None, the last GLib.Error): the pooled sandbox
    @sandbox_id, asked for again after an error other than "not found"
    (a slow machine is no reason to give up a live sandbox)."""
    error = None
    for n in range(GET_POOLED_ATTEMPTS):
        try:
            return (
                attempt.wait(attempt.backend, "get_instance", sandbox_id, attempt.cancellable),
                None,
            )
        except attempt.GLib.Error as ex:
            error = ex
            if attempt.signal_received is not None or ex.matches(
                attempt.Sandbox.error_quark(), attempt.Sandbox.Error.NOT_FOUND
            ):
                break
            if n + 1 < GET_POOLED_ATTEMPTS:
                attempt.sleep(500 * (n + 1))
    return None, error


def _send_inputs(attempt: Attempt, root: str, paths: List[str], remote: str) -> None:
    """The tar of @paths (relative to @root) as one file at @remote: one
    upload, where upload_archive adds an extract exec (the task's command
    unpacks it)."""
    Gio, Sandbox = attempt.Gio, attempt.Sandbox
    if not paths:
        return
    from .sandbox_sync import private_dir

    with private_dir("mf-sandbox-in-") as tmp:
        local = Gio.File.new_for_path(os.path.join(tmp, "inputs.tar"))
        out = local.create(Gio.FileCreateFlags.PRIVATE, attempt.cancellable)
        try:
            Sandbox.archive_write(Gio.File.new_for_path(root), paths, out, attempt.cancellable)
        finally:
            out.close(None)
        attempt.wait(attempt.instance, "upload", local, remote, attempt.cancellable)


def say_kept_for_debugging(
    sandbox_id: str, backend: str, ttl: int, flow_file: str, run_id: str
) -> None:
    """METAFLOW_SANDBOX_DEBUG: where the failed task's sandbox is and how to
    get into it (the trampoline's words too)."""
    # "local" is sandboxctl's default --backend, not a property of the backend.
    ctl = "sandboxctl" if backend == "local" else "sandboxctl --backend " + backend
    _echo(
        "",
        _(
            "METAFLOW_SANDBOX_DEBUG: sandbox %s of the failed task is kept (time to live: %s). "
            "Open a shell in it: %s exec %s -- sh. Remove it: %s rm %s, or for the whole "
            "run: python %s sandbox kill --run-id %s"
        )
        % (
            sandbox_id,
            (_("%d s") % ttl) if ttl else _("the backend's"),
            ctl,
            sandbox_id,
            ctl,
            sandbox_id,
            flow_file,
            run_id,
        ),
    )


def _keep_for_debugging(sandbox_id: str, task: Dict[str, Any]) -> None:
    say_kept_for_debugging(
        sandbox_id,
        task["backend"],
        int(task["spec"].get("ttl") or 0),
        task["flow_file"],
        task["labels"]["run_id"],
    )


def run(task: Dict[str, Any], step_argv: List[str], secrets: Dict[str, str]) -> int:
    """Runs the task; returns the exit status for the runtime (a negative
    number: die of that signal)."""
    from .sandbox_sync import SyncStats, fetch_packed_outputs, task_prefixes, upload_set

    marks = Marks(task.get("launched"))
    Gio, GLib, Sandbox = _load_gi()
    marks.add("gi")
    disallow_retry = int(task["disallow_retry"])
    attempt = Attempt(Gio, GLib, Sandbox, task["backend"])
    spec = _build_spec(Sandbox, task, secrets)
    root, workdir = task["root"], task["workdir"].rstrip("/") or "/"
    attempt.install_signal_handlers()
    exit_code = disallow_retry
    term_signal = 0
    lease = None
    try:
        lease, error = _take_sandbox(attempt, task, spec)
        if error is not None and attempt.signal_received is not None:
            # The create was cancelled (and its sandbox deleted).
            exit_code = interrupted("", attempt.signal_received, None)
            return exit_code
        if error is not None:
            _fail("", error.lstrip("!"))
            # A failure that another attempt would repeat is not retried.
            exit_code = disallow_retry if error.startswith("!") else 1
            return exit_code
        sandbox_id = attempt.instance.get_id()
        marks.add("sandbox (%s)" % lease.how)
        prefix = "[%s] " % sandbox_id
        if task.get("package_file"):
            # Started before the runtime had the code package: its location
            # comes now (sandbox_executor._package_later).
            error = _package_arrived(attempt, task)
            marks.add("package wait")
            if attempt.signal_received is not None:
                exit_code = interrupted(prefix, attempt.signal_received, sandbox_id)
                return exit_code
            if error is not None:
                _fail(prefix, error)
                return exit_code
        stats = SyncStats()
        # The package unpacked by an earlier task, or sent by the helper.
        has_code = bool(task["package_sha"]) and task["package_sha"] in (
            lease.info.get("code", []) + lease.info.get("sent", [])
        )
        paths, _sent_blobs, nbytes = upload_set(
            root,
            task["flow"],
            task["labels"]["run_id"],
            task["labels"]["step"],
            task["labels"]["task_id"],
            None,
            None if has_code else task["package_url"],
            input_tasks=task["input_tasks"],
        )
        stats.up_bytes = nbytes
        try:
            _send_inputs(attempt, root, paths, workdir.rstrip("/") + "/" + INPUTS_NAME)
            includes = [p.lstrip("/") for p in task.get("include_files") or ()]
            _send_inputs(attempt, "/", includes, workdir.rstrip("/") + "/" + INCLUDE_NAME)
        except (GLib.Error, OSError, RuntimeError) as ex:
            if attempt.signal_received is not None:
                exit_code = interrupted(prefix, attempt.signal_received, sandbox_id)
                return exit_code
            _echo(
                prefix,
                _("Could not copy the task's inputs into the sandbox: %s")
                % getattr(ex, "message", ex),
            )
            return exit_code

        bytecode = task.get("bytecode")
        if not has_code and bytecode and os.path.isfile(bytecode):
            try:
                attempt.wait(
                    attempt.instance,
                    "upload",
                    Gio.File.new_for_path(bytecode),
                    workdir.rstrip("/") + "/" + BYTECODE_NAME,
                    attempt.cancellable,
                )
            except GLib.Error:
                pass  # the task compiles what it imports, as without it
        marks.add("inputs")
        env = dict(task["env"], METAFLOW_SANDBOX_ID=sandbox_id)
        # POSIX sh: an image need not have bash (alpine's has BusyBox sh only).
        command = Sandbox.Command.new(["/bin/sh", "-c", task["script"], "sh"] + step_argv)
        command.set_cwd("/")
        for key, value in env.items():
            command.set_env(key, value)
        if task.get("cmd_timeout_ms"):
            command.set_timeout_ms(int(task["cmd_timeout_ms"]))
        sys.stdout.flush()
        sys.stderr.flush()
        output = LineOutput()
        command.set_stdout_stream(output.stream(1))
        command.set_stderr_stream(output.stream(2))
        result = None
        exec_error = None
        if attempt.signal_received is None:
            try:
                result = attempt.wait(attempt.instance, "exec", command, attempt.cancellable)
            except GLib.Error as ex:
                exec_error = ex
        # Interrupted: what the step printed last matters less than ending.
        output.close(1.0 if attempt.signal_received is not None else 30.0)
        marks.add("step")
        exit_code, term_signal, ran = step_outcome(
            prefix,
            attempt.signal_received,
            result,
            exec_error,
            task.get("run_time_limit"),
            disallow_retry,
            sandbox_id,
        )
        if ran:
            try:
                fetch_packed_outputs(
                    Gio,
                    Sandbox,
                    attempt.instance,
                    root,
                    task["flow"],
                    task["marker"],
                    workdir,
                    attempt.cancellable,
                    stats,
                    attempt.wait,
                    attempt.wait_all,
                    packed=bool(task.get("packed")),
                    prefixes=task_prefixes(
                        task["flow"],
                        task["labels"]["run_id"],
                        task["labels"]["step"],
                        task["labels"]["task_id"],
                    ),
                )
                marks.add("outputs")
                if task.get("debug"):
                    _echo(prefix, stats.summary())
                    _echo(prefix, marks.summary())
            except (GLib.Error, OSError, RuntimeError) as ex:
                if not exit_code:
                    # (After a failed step, what it said is the news.)
                    _echo(
                        prefix,
                        _("Could not copy the task's results back from the sandbox: %s")
                        % getattr(ex, "message", ex),
                    )
                # No DONE.lock came back: a failed attempt, retried if allowed.
                exit_code = exit_code or 1
            say_term_signal(prefix, term_signal)
        return -term_signal if term_signal else exit_code
    finally:
        failed = exit_code != 0 or term_signal
        kept = debugged = False
        if attempt.instance is not None and lease is not None:
            if failed and task.get("debug") and attempt.signal_received is None:
                _keep_for_debugging(attempt.instance.get_id(), task)
                debugged = True
            elif not failed and attempt.signal_received is None and os.path.exists(lease.path):
                # Back to the pool, with the code package unpacked; the next
                # task's command replaces this task's datastore copy.
                lease.write(
                    code=[task["package_sha"]] if task["package_sha"] else [],
                    # Where the run's end keeps this package's bytecode.
                    bytecode=task.get("bytecode"),
                    pkg_dir=task.get("pkg_dir"),
                )
                kept = True
        attempt.end(lease, kept, debugged)


def _package_arrived(attempt: Attempt, task: Dict[str, Any]) -> Optional[str]:
    """Waits (on the main loop: signals end it) for the file in which the
    runtime names the code package, and completes @task with it: the
    package's location and sha, in the step's environment and at the head
    of its command, and its bytecode cache. None, or what went wrong."""
    path = task["package_file"]
    if not _wait_for_file(attempt, path, PACKAGE_WAIT_S):
        if attempt.signal_received is not None:
            return None
        return _("The runtime did not name the code package within %d s.") % PACKAGE_WAIT_S
    try:
        with open(path, encoding="utf-8") as f:
            package = json.load(f)
        os.unlink(path)
    except (OSError, ValueError) as ex:
        return _("Could not read the code package's location: %s") % ex
    if package.get("error"):
        return _("The code package could not be built: %s") % package["error"]
    url, sha = package["package_url"], package.get("package_sha") or ""
    task.update(package_url=url, package_sha=sha, bytecode=package.get("bytecode"))
    task["env"].update(METAFLOW_CODE_SHA=sha, METAFLOW_CODE_URL=url)
    task["script"] = package_head(url, sha) + task["script"]
    return None


def _wait_for_file(attempt: Attempt, path: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if attempt.signal_received is not None or time.monotonic() > deadline:
            return False
        attempt.sleep(PREPARED_POLL_MS)
    return True


def prepare(job: Dict[str, Any], secrets: Dict[str, str]) -> int:
    """The runtime's helper (sandbox_executor.prepare_first_sandbox): creates
    the sandbox that the run's first task will take from the pool while the
    runtime is still building the code package and starting that task, then,
    once the runtime has written the package's location to
    job["package_file"], sends it (and its bytecode), which the task's
    command unpacks (no exec here: on a backend whose create is quick, an
    exec of its own cost more than it saved). The sandbox is listed in the
    pool from the moment it exists (drain() destroys it whatever happens to
    this process); a task with the same pool key waits for it while this
    process holds it (sandbox_pool.preparing), and gets it once the package
    is there. Any failure destroys it: the task then creates its own, as
    without this helper. Returns 0 when the sandbox is ready."""
    from .sandbox_pool import Lease, prepare_lease

    marks = Marks(job.get("launched"))
    Gio, GLib, Sandbox = _load_gi()
    marks.add("gi")
    attempt = Attempt(Gio, GLib, Sandbox, job["backend"])
    attempt.install_signal_handlers()
    spec = _build_spec(Sandbox, job, secrets)
    if job.get("lease_fd") is not None:
        # Made (and locked) by the runtime before it started this process,
        # so that the first task waits for it however late this one starts.
        lease = Lease(int(job["lease_fd"]), job["lease_path"], dict(job["lease_info"]))
    else:
        lease = prepare_lease(job["pool_dir"], job["pool_key"], job["backend"])
    ready = False
    debug = bool(job.get("debug"))
    try:
        error = _create(attempt, spec, job)
        if error is not None or attempt.instance is None:
            if debug:
                _echo("", error.lstrip("!") if error else "")
            return 1
        sandbox_id = attempt.instance.get_id()
        # Its age (sandbox_pool.MAX_AGE_S) counts from now, not from the
        # runtime's making of the entry: a slow code package build (the
        # wait below) made a fresh sandbox look too old to give to a task.
        lease.note(id=sandbox_id, created=time.time())
        marks.add("create")
        if not _wait_for_file(attempt, job["package_file"], PACKAGE_WAIT_S):
            return 1
        marks.add("package wait")
        with open(job["package_file"], encoding="utf-8") as f:
            package = json.load(f)
        workdir = job["workdir"].rstrip("/") or "/"
        bytecode = package.get("bytecode")
        # The package and its bytecode at the same time, where the first
        # task's command unpacks them (sandbox_executor.remote_script): no
        # exec of their own.
        files = [(package["package_url"], workdir + "/" + PACKAGE_NAME)]
        if bytecode and os.path.isfile(bytecode):
            files.append((bytecode, workdir + "/" + BYTECODE_NAME))
        attempt.wait_all(
            [
                (
                    attempt.instance,
                    "upload",
                    (Gio.File.new_for_path(local), remote, attempt.cancellable),
                )
                for local, remote in files
            ]
        )
        marks.add("upload")
        if attempt.signal_received is not None:
            return 1
        if debug:
            _echo("[%s] " % sandbox_id, "prepared: " + marks.summary())
        lease.write(
            preparing=False,
            sent=[package["package_sha"]] if package.get("package_sha") else [],
            bytecode=bytecode,
            pkg_dir=package.get("pkg_dir"),
        )
        ready = True
        return 0
    except (GLib.Error, OSError, RuntimeError, ValueError, KeyError) as ex:
        if debug:
            _echo(
                "",
                _("Could not prepare a sandbox for the run's first task: %s")
                % getattr(ex, "message", ex),
            )
        return 1
    finally:
        if ready:
            lease.release()
        else:
            attempt.destroy()
            lease.drop()
        attempt.remove_signal_handlers()


def main(argv: List[str]) -> int:
    if len(argv) == 2 and argv[0] == "--prepare":
        with open(argv[1], encoding="utf-8") as f:
            job = json.load(f)
        try:
            os.unlink(argv[1])
        except OSError:
            pass
        return prepare(job, json.loads(os.environ.pop(SECRETS_ENV, "") or "{}"))
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: sandbox_remote TASK.json -- STEP-COMMAND...\n")
        return 2
    with open(argv[0], encoding="utf-8") as f:
        task = json.load(f)
    try:
        os.unlink(argv[0])
    except OSError:
        pass
    secrets = json.loads(os.environ.pop(SECRETS_ENV, "") or "{}")
    status = run(task, argv[2:], secrets)
    if status < 0:
        # Die of the step's signal, as a local task would.
        die_of(-status)
        return 128 - status
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
