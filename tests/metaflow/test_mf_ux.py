"""Flows as Metaflow users write them, run with @sandbox: what a plain run
gives must hold in a sandbox too (IncludeFile, parameters), and an argument
that would change nothing is refused rather than ignored.

The flows are written by the tests themselves, next to the run.
"""

import re
import subprocess
import time

import pytest

from conftest import PYTHON, use_backend

INCLUDE_FLOW = """
from metaflow import FlowSpec, IncludeFile, Parameter, current, step


class IncludeFlow(FlowSpec):
    data = IncludeFile("data", default="data.csv", is_text=True)
    alpha = Parameter("alpha", default=0.5, type=float)

    @step
    def start(self):
        self.rows = self.data.strip().splitlines()
        print("start rows=%d alpha=%s retry=%d" % (len(self.rows), self.alpha, current.retry_count))
        self.next(self.end)

    @step
    def end(self):
        # A later step reads the parameter again (not only start).
        print("end rows=%d first=%s" % (len(self.data.splitlines()), self.data.splitlines()[1]))


if __name__ == "__main__":
    IncludeFlow()
"""

NETWORK_FLOW = """
import os
from metaflow import FlowSpec, sandbox, step

KW = eval(os.environ.get("SBX_KW", "{}"))


class NetworkFlow(FlowSpec):
    @sandbox(**KW)
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NetworkFlow()
"""


def _write(mf, name: str, text: str) -> str:
    (mf.cwd / name).write_text(text, encoding="utf-8")
    return name


@pytest.mark.parametrize(
    "backend, direct",
    [("local", "1"), ("local", "0"), ("daytona", "1"), ("daytona", "0")],
    ids=["local-direct", "local-trampoline", "daytona-pool", "daytona-trampoline"],
)
def test_include_file_read_in_the_sandbox(mf, emulators, backend, direct):
    """IncludeFile uploads beside the datastore root (DATATOOLS_LOCALROOT,
    <sysroot>/data): every sandboxed step must read it there, as a plain
    task does (it failed with "Uploaded file ... does not exist")."""
    flow = _write(mf, "include_flow.py", INCLUDE_FLOW)
    (mf.cwd / "data.csv").write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    emu = use_backend(mf, emulators, backend)
    proc = mf.run(
        flow,
        "run",
        "--with",
        "sandbox",
        "--alpha",
        "2.5",
        extra_env={"METAFLOW_SANDBOX_DIRECT": direct},
    )
    assert "start rows=3 alpha=2.5 retry=0" in proc.output
    assert "end rows=3 first=1,2" in proc.output
    # The upload is where the test expects it, outside the mounted root.
    assert list((mf.base / "data" / "IncludeFlow").iterdir())
    if emu is None:
        mf.assert_no_sandboxes("IncludeFlow")
    else:
        assert emu.wait_live(0, 30) == 0


@pytest.mark.parametrize(
    "how",
    [{"SBX_KW": '{"network": "maybe"}'}, {"SBX_KW": "{}", "--with": "sandbox:network=maybe"}],
    ids=["decorator", "with"],
)
def test_network_that_is_not_a_boolean_is_refused(mf, how):
    """network="maybe" used to be read as False: the step ran without the
    network the user asked for, silently."""
    flow = _write(mf, "network_flow.py", NETWORK_FLOW)
    args = ["run"] + (["--with", how["--with"]] if "--with" in how else [])
    proc = mf.run(flow, *args, extra_env={"SBX_KW": how["SBX_KW"]}, expect_ok=False)
    assert "@sandbox(network=...) must be True or False, got maybe." in proc.output, proc.output
    assert "Task is starting" not in proc.output


RETRY_FLOW = """
from metaflow import FlowSpec, catch, current, retry, step


class RetryUxFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky)

    @retry(times=2)
    @step
    def flaky(self):
        print("attempt %d of task %s" % (current.retry_count, current.task_id))
        if current.retry_count < 2:
            raise RuntimeError("flaky failure on attempt %d" % current.retry_count)
        self.attempts = current.retry_count
        self.next(self.broken)

    @catch(var="err")
    @step
    def broken(self):
        raise ValueError("always broken")
        self.next(self.end)

    @step
    def end(self):
        print("attempts=%d caught=%s" % (self.attempts, "always broken" in str(self.err)))


if __name__ == "__main__":
    RetryUxFlow()
"""


def test_retry_attempts_start_like_the_first(mf):
    """Every @retry attempt (default minutes_between_retries=2, which the
    local runtime does not wait for) is started directly with sandboxctl as
    the first one is, not through the slower `sandbox step` trampoline,
    whose lines carry a [sbx-...] prefix; current.retry_count and @catch as
    in a plain run."""
    flow = _write(mf, "retry_flow.py", RETRY_FLOW)
    proc = mf.run(flow, "run", "--with", "sandbox")
    for attempt in range(3):
        assert re.search(r"\] attempt %d of task \d+" % attempt, proc.output), proc.output
    assert "attempts=2 caught=True" in proc.output
    starts = re.findall(r"\] (\[sbx-\w+\] )?Task is starting in sandbox", proc.output)
    # start, three attempts of flaky, broken's sandboxed attempt, end.
    assert len(starts) == 6, proc.output
    assert starts == [""] * 6, "an attempt went through the trampoline:\n" + proc.output
    mf.assert_no_sandboxes("RetryUxFlow")


ARGS_FLOW = """
import os
from metaflow import FlowSpec, environment, sandbox, step

KW = eval(os.environ.get("SBX_KW", "{}"))
VARS = eval(os.environ.get("SBX_VARS", "{}"))


class ArgsUxFlow(FlowSpec):
    @environment(vars=VARS)
    @sandbox(**KW)
    @step
    def start(self):
        print("ARGS-STEP-RAN", flush=True)
        print("env SAME=%s N=%s" % (os.environ.get("SAME"), os.environ.get("N")))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ArgsUxFlow()
"""


@pytest.mark.parametrize(
    "kw, extra, needles",
    [
        ({"image": 123}, {}, ["@sandbox(image=...) must be a string, got 123"]),
        ({"memory": True}, {}, ["Invalid memory value True", "memory is in MB"]),
        ({"timeout": True}, {}, ["Invalid timeout value True", "timeout is in seconds"]),
        ({"memory": "4GB"}, {}, ["Invalid memory value 4GB", "memory=4096 for 4 GB"]),
        ({"cpu": "nan"}, {}, ["Invalid cpu value nan", "greater than 0"]),
        # (mfx23) Rounded without a word: 2.5 was a 2 s limit.
        ({"timeout": 2.5}, {}, ["Invalid timeout value 2.5", "whole number of seconds"]),
        ({"env": {"A=B": "1"}}, {}, ["variable name 'A=B'", "without '='"]),
        ({"env": {"": "1"}}, {}, ["variable name ''", "non-empty"]),
        ({"env": {"A": None}}, {}, ["gives A the value None", "give a string"]),
        ({"memory": 10**10}, {}, ["Invalid memory value 10000000000", "at most 2147483647"]),
        ({"disk": "3e9"}, {}, ["Invalid disk value 3e9", "at most 2147483647"]),
        (
            {},
            {"--with": "resources:memory=4GB"},
            ["Invalid memory value 4GB", "It comes from @resources(memory=...)", "in MB"],
        ),
        (
            {"env": {"SAME": "mine"}},
            {"SBX_VARS": '{"SAME": "theirs"}'},
            ["sets SAME in both @environment(vars=...) and @sandbox(env=...)"],
        ),
        # (mfx23) Variables the sandbox sets itself for the task replaced
        # the user's value without a word.
        (
            {"env": {"PATH": "/opt/tool/bin:/usr/bin", "N": "1"}},
            {},
            ["sets PATH in @sandbox(env=...)", "the sandbox sets it itself", "remove it"],
        ),
        (
            {},
            {"SBX_VARS": '{"METAFLOW_RUN_ID": "mine", "PYTHONIOENCODING": "latin-1"}'},
            ["sets METAFLOW_RUN_ID, PYTHONIOENCODING in @environment(vars=...)", "remove them"],
        ),
    ],
    ids=[
        "image-int",
        "memory-bool",
        "timeout-bool",
        "memory-unit",
        "cpu-nan",
        "timeout-fraction",
        "env-name-equals",
        "env-name-empty",
        "env-none",
        "memory-huge",
        "disk-huge",
        "resources-unit",
        "env-clash",
        "env-path",
        "vars-sandbox-set",
    ],
)
def test_wrong_arguments_refused_before_the_run(mf, kw, extra, needles):
    """Each of these used to be dropped, misread (True as a 1 s time limit,
    None as the string "None"), or to fail with a Python traceback in the
    runtime or the task: refused before any task starts, naming the
    argument and what it takes."""
    flow = _write(mf, "args_flow.py", ARGS_FLOW)
    args = ["run"] + (["--with", extra["--with"]] if "--with" in extra else [])
    env = {"SBX_KW": repr(kw), "SBX_VARS": extra.get("SBX_VARS", "{}")}
    proc = mf.run(flow, *args, extra_env=env, expect_ok=False)
    for needle in needles:
        assert needle in proc.output, proc.output[-3000:]
    assert "Sandbox error" in proc.output, proc.output[-3000:]
    assert "Traceback" not in proc.output, proc.output[-3000:]
    assert "Task is starting" not in proc.output
    assert "ARGS-STEP-RAN" not in proc.output


def test_network_false_with_a_remote_datastore_is_refused(mf):
    """(mfx23) A step with a remote datastore reaches it over the network
    itself, so its sandbox has network whatever network= says: an explicit
    network=False was overridden without a word; refused before the run.
    The default (METAFLOW_SANDBOX_NETWORK, off) is not an explicit ask."""
    flow = _write(mf, "args_flow.py", ARGS_FLOW)
    s3 = {"METAFLOW_DATASTORE_SYSROOT_S3": "s3://mf-sandbox-unreachable/prefix"}
    env = dict(s3, SBX_KW=repr({"network": False}))
    proc = mf.run(flow, "--datastore=s3", "run", extra_env=env, expect_ok=False)
    for needle in (
        "asks for network=False with @sandbox(network=...)",
        "with the s3 datastore",
        "--datastore=local",
    ):
        assert needle in proc.output, proc.output[-3000:]
    assert "Task is starting" not in proc.output
    assert "ARGS-STEP-RAN" not in proc.output
    # Without network= the step is not refused (it would start and reach
    # for the unreachable bucket: only validation is looked at here).
    proc = mf.run(flow, "--datastore=s3", "check", extra_env=dict(s3, SBX_KW="{}"))
    assert "asks for network=False" not in proc.output


@pytest.mark.parametrize(
    "setting, value, needles",
    [
        ("METAFLOW_SANDBOX_NETWORK", "no", ["METAFLOW_SANDBOX_NETWORK=no is not understood"]),
        ("METAFLOW_SANDBOX_REUSE", "off", ["METAFLOW_SANDBOX_REUSE=off is not understood"]),
        (
            "METAFLOW_SANDBOX_PREPARE",
            "maybe",
            ["METAFLOW_SANDBOX_PREPARE=maybe is not understood: set it to auto, 1 or 0."],
        ),
        (
            "METAFLOW_SANDBOX_MEMORY",
            "4GB",
            ["Invalid memory value 4GB", "It comes from METAFLOW_SANDBOX_MEMORY", "in MB"],
        ),
        # (mfx23) A relative workdir failed in each task, naming a --mount.
        (
            "METAFLOW_SANDBOX_WORKDIR",
            "work",
            ["METAFLOW_SANDBOX_WORKDIR=work is not understood", "an absolute path other than /"],
        ),
        (
            "METAFLOW_SANDBOX_WORKDIR",
            "/workspace/../etc",
            ["METAFLOW_SANDBOX_WORKDIR=/workspace/../etc is not understood", "components"],
        ),
    ],
    ids=[
        "network-no",
        "reuse-off",
        "prepare-maybe",
        "memory-unit",
        "workdir-relative",
        "workdir-dotdot",
    ],
)
def test_settings_metaflow_would_misread_are_refused(mf, setting, value, needles):
    """Metaflow reads a boolean setting as true for any word but 0, false
    and "": METAFLOW_SANDBOX_NETWORK=no gave the step the network. Refused
    before the run (not a traceback from `import metaflow`), as is a
    default resource that is not a number, naming the setting."""
    flow = _write(mf, "args_flow.py", ARGS_FLOW)
    proc = mf.run(flow, "run", extra_env={setting: value}, expect_ok=False)
    for needle in needles:
        assert needle in proc.output, proc.output[-3000:]
    assert "Sandbox error" in proc.output, proc.output[-3000:]
    assert "Traceback" not in proc.output, proc.output[-3000:]
    assert "ARGS-STEP-RAN" not in proc.output


@pytest.mark.parametrize(
    "backend, kw, withs, given",
    [
        ("e2b", {}, ["timeout:hours=30"], "108000 seconds (@timeout)"),
        ("daytona", {"timeout": 90000}, [], "90000 seconds (@sandbox(timeout=...))"),
    ],
    ids=["e2b-timeout-decorator", "daytona-timeout-argument"],
)
def test_time_limit_longer_than_a_hosted_sandbox_lives(mf, emulators, backend, kw, withs, given):
    """A hosted sandbox lives 24 hours at the most (its time to live is
    capped there): a longer limit used to be accepted, and the sandbox
    would have vanished under the step before the limit ended it."""
    flow = _write(mf, "args_flow.py", ARGS_FLOW)
    use_backend(mf, emulators, backend)
    args = [a for w in withs for a in ("--with", w)] + ["run"]
    proc = mf.run(flow, *args, extra_env={"SBX_KW": repr(kw)}, expect_ok=False)
    for needle in (
        "has a time limit of " + given,
        "%s backend lives 24 hours at the most" % backend,
        "85800 seconds or less",
    ):
        assert needle in proc.output, proc.output[-3000:]
    assert "Task is starting" not in proc.output


def test_environment_and_env_agree(mf):
    """@environment and env= may both set a variable to the same value;
    a number in env= reaches the step as its string, as with @environment."""
    flow = _write(mf, "args_flow.py", ARGS_FLOW)
    env = {"SBX_KW": repr({"env": {"SAME": "x", "N": 3}}), "SBX_VARS": '{"SAME": "x"}'}
    proc = mf.run(flow, "run", extra_env=env)
    assert "env SAME=x N=3" in proc.output, proc.output[-3000:]
    mf.assert_no_sandboxes("ArgsUxFlow")


ORDER_FLOW = """
import sys
import time
from metaflow import FlowSpec, step


class OrderUxFlow(FlowSpec):
    @step
    def start(self):
        for i in range(1, 4):
            print("OUT-%d" % i, flush=True)
        print("ERR-early", file=sys.stderr, flush=True)
        time.sleep(1.5)
        print("ERR-late", file=sys.stderr, flush=True)
        time.sleep(1)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    OrderUxFlow()
"""


LINES_SCRIPT = r"""
import os, threading, time
from metaflow_extensions.libsandbox.plugins.sandbox_output import _forward_lines

src_r, src_w = os.pipe()
dst_r, dst_w = os.pipe()
thread = threading.Thread(target=_forward_lines, args=(src_r, dst_w))
thread.start()
os.write(src_w, b"one\ntwo\nthree\npart")
time.sleep(0.3)
got = [os.read(dst_r, 100)]  # one line only, however long it waited
for _ in range(2):
    got.append(os.read(dst_r, 100))
os.close(src_w)
thread.join(10)
got.append(os.read(dst_r, 100))
print(got)
"""


def test_output_forwarded_one_line_at_a_time(mf):
    """sandbox_output passes one line to the runtime's pipe, and the next
    only once the runtime has read it; a last line without its newline
    comes at the end."""
    out = subprocess.run(
        [PYTHON, "-c", LINES_SCRIPT], env=mf.env, capture_output=True, timeout=60, check=True
    )
    assert out.stdout.decode().strip() == "[b'one\\n', b'two\\n', b'three\\n', b'part']"


@pytest.mark.parametrize(
    "backend, direct",
    [("local", "0"), ("daytona", "1"), ("e2b", "1")],
    ids=["local-trampoline", "daytona-pool", "e2b-pool"],
)
def test_stdout_reaches_the_console_as_printed(mf, emulators, backend, direct):
    """The runtime reads a task's pipes one line per wake-up through a
    buffered reader: lines that came in one chunk (a remote backend's
    output, the trampoline's) waited in its buffer, so the step's stdout
    showed up after the stderr it printed 1.5 s later, or at the step's end.
    Now every line is on the console (and in `logs`) in the order printed."""
    flow = _write(mf, "order_flow.py", ORDER_FLOW)
    emu = use_backend(mf, emulators, backend)
    proc = mf.run(flow, "run", "--with", "sandbox", extra_env={"METAFLOW_SANDBOX_DIRECT": direct})
    lines = [line for line in proc.output.splitlines() if "/start/" in line]
    where = {}
    for n, line in enumerate(lines):
        for word in ("OUT-1", "OUT-2", "OUT-3", "ERR-early", "ERR-late"):
            if line.endswith(word):
                where.setdefault(word, n)
    assert len(where) == 5, proc.output[-3000:]
    assert where["OUT-1"] < where["OUT-2"] < where["OUT-3"] < where["ERR-late"], "\n".join(lines)
    assert where["ERR-early"] < where["ERR-late"], "\n".join(lines)
    run_id = re.search(r"\[(\d+)/start/", proc.output).group(1)
    logs = mf.run(flow, "logs", "%s/start" % run_id).output
    assert re.search(r"OUT-1\s.*OUT-2\s.*OUT-3\s", logs, re.S), logs[-3000:]
    assert "ERR-late" in logs, logs[-3000:]
    if emu is None:
        mf.assert_no_sandboxes("OrderUxFlow")
    else:
        assert emu.wait_live(0, 30) == 0


CHILD_FLOW = """
import subprocess
import time
from metaflow import FlowSpec, catch, sandbox, step


class ChildUxFlow(FlowSpec):
    @catch(var="err")
    @sandbox(timeout=3)
    @step
    def start(self):
        # Ignores the signals that end a step, and holds the task's output.
        subprocess.Popen(["sh", "-c", "trap '' TERM INT HUP; sleep 120; echo CHILD-OUTLIVED"])
        print("CHILD-STARTED", flush=True)
        time.sleep(120)
        self.next(self.returns)

    @step
    def returns(self):
        subprocess.Popen(["sh", "-c", "trap '' TERM INT HUP; sleep 120; echo CHILD-OUTLIVED"])
        self.next(self.end)

    @step
    def end(self):
        print("caught=%s" % ("timed out" in str(self.err)))


if __name__ == "__main__":
    ChildUxFlow()
"""


@pytest.mark.parametrize("backend", ["local", "e2b"])
def test_processes_a_step_leaves_end_with_it(mf, emulators, backend):
    """A child that ignores SIGTERM and keeps the task's output open: a plain
    run waits for it (120 s here) after the step returns or times out. In a
    sandbox it ends with the attempt: the timeout= holds, @catch sees it,
    and the run ends well within the child's 120 s."""
    flow = _write(mf, "child_flow.py", CHILD_FLOW)
    emu = use_backend(mf, emulators, backend)
    started = time.monotonic()
    proc = mf.run(flow, "run", "--with", "sandbox")
    elapsed = time.monotonic() - started
    assert "CHILD-STARTED" in proc.output
    assert "caught=True" in proc.output, proc.output[-3000:]
    assert "CHILD-OUTLIVED" not in proc.output
    assert elapsed < 90, elapsed
    if emu is None:
        mf.assert_no_sandboxes("ChildUxFlow")
    else:
        assert emu.wait_live(0, 30) == 0


QUIET_CHILD_FLOW = """
import subprocess
import time
from metaflow import FlowSpec, catch, current, retry, step, timeout


class QuietChildUxFlow(FlowSpec):
    @catch(var="err")
    @retry(times=1, minutes_between_retries=0)
    @timeout(seconds=3)
    @step
    def start(self):
        # A child that keeps the task's output open and says nothing for
        # 4 s after the step's time limit.
        late = "sleep 7; echo LATE-ATTEMPT-%d; sleep 120" % current.retry_count
        subprocess.Popen(["sh", "-c", late])
        print("ATTEMPT-%d" % current.retry_count, flush=True)
        time.sleep(60)
        self.next(self.end)

    @step
    def end(self):
        print("caught=%s" % ("timed out" in str(self.err)))


if __name__ == "__main__":
    QuietChildUxFlow()
"""


@pytest.mark.parametrize(
    "backend, direct",
    [("local", "0"), ("e2b", "0"), ("daytona", "0")],
    ids=["local-trampoline", "e2b-trampoline", "daytona-trampoline"],
)
def test_quiet_child_does_not_hold_a_timed_out_step(mf, emulators, backend, direct):
    """A step times out (@timeout, retried once, then caught), leaving a
    child that holds its output open without a word. The sandbox's runner
    waited 10 s for each of the two pipes after the step had exited: each
    attempt ended 20 s past its limit on Daytona and E2B, and what the
    child printed in that time (LATE-ATTEMPT-N, 4 s after the limit) was
    taken as the task's output. The wait now ends once the pipes are quiet
    for half a second (up to 10 s while output keeps coming)."""
    flow = _write(mf, "quiet_child_flow.py", QUIET_CHILD_FLOW)
    emu = use_backend(mf, emulators, backend)
    proc = mf.run(flow, "run", "--with", "sandbox", extra_env={"METAFLOW_SANDBOX_DIRECT": direct})
    assert "ATTEMPT-0" in proc.output and "ATTEMPT-1" in proc.output, proc.output[-3000:]
    assert "caught=True" in proc.output, proc.output[-3000:]
    assert "LATE-ATTEMPT" not in proc.output, proc.output[-3000:]
    if emu is None:
        mf.assert_no_sandboxes("QuietChildUxFlow")
    else:
        assert emu.wait_live(0, 30) == 0


LINGER_FLOW = """
import os
import subprocess
import time
from metaflow import FlowSpec, step

LOOP = "trap '' TERM INT HUP; while true; do date +%s.%N >> /tmp/linger-mark; sleep 0.1; done"


class LingerUxFlow(FlowSpec):
    @step
    def start(self):
        # A daemon of its own session, as a careless step leaves one.
        subprocess.Popen(
            ["sh", "-c", LOOP],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.sandbox = os.environ.get("METAFLOW_SANDBOX_ID")
        time.sleep(0.5)
        self.next(self.end)

    @step
    def end(self):
        def marks():
            with open("/tmp/linger-mark") as f:
                return len(f.read().splitlines())

        before = marks()
        time.sleep(1)
        same = self.sandbox == os.environ.get("METAFLOW_SANDBOX_ID")
        print("same-sandbox=%s grew=%s" % (same, marks() > before))


if __name__ == "__main__":
    LingerUxFlow()
"""


@pytest.mark.parametrize(
    "backend, direct",
    [("e2b", "1"), ("daytona", "0")],
    ids=["e2b-pool", "daytona-trampoline"],
)
def test_processes_a_task_leaves_do_not_run_on_in_the_pool(mf, emulators, backend, direct):
    """On Daytona and E2B a task that went well leaves its sandbox to the
    run's next task: a process it left running (here in a session of its
    own) went on running beside the next task. It is killed when its task
    ends, as on the local backend, where the sandbox ends with the task."""
    flow = _write(mf, "linger_flow.py", LINGER_FLOW)
    emu = use_backend(mf, emulators, backend)
    # The pool holds one sandbox (on e2b the one prepared ahead, which start
    # takes), which end gets from start.
    proc = mf.run(flow, "run", "--with", "sandbox", extra_env={"METAFLOW_SANDBOX_DIRECT": direct})
    assert "same-sandbox=True" in proc.output, proc.output[-3000:]
    assert "grew=False" in proc.output, proc.output[-3000:]
    assert emu.wait_live(0, 30) == 0


ALIAS_FLOW = """
import os
from metaflow import FlowSpec, e2b, step


class AliasUxFlow(FlowSpec):
    @e2b(backend=os.environ["METAFLOW_TEST_ALIAS_BACKEND"])
    @step
    def start(self):
        print("backend=%s" % os.environ.get("METAFLOW_SANDBOX_BACKEND_NAME"))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    AliasUxFlow()
"""


def test_alias_backend_in_any_case(mf, emulators):
    """@e2b(backend="E2B") names the alias's own backend (backend= is read
    in any case elsewhere): it was refused as another backend."""
    flow = _write(mf, "alias_flow.py", ALIAS_FLOW)
    use_backend(mf, emulators, "e2b")
    proc = mf.run(flow, "run", extra_env={"METAFLOW_TEST_ALIAS_BACKEND": "E2B"})
    assert "backend=e2b" in proc.output, proc.output[-3000:]
    proc = mf.run(
        flow, "run", extra_env={"METAFLOW_TEST_ALIAS_BACKEND": "daytona"}, expect_ok=False
    )
    assert "@e2b always runs on the e2b backend; remove backend=daytona" in proc.output
