"""The official daytona SDK's stateful code interpreter against the emulator.

sandbox.code_interpreter: run_code over the execute WebSocket (stdout,
stderr and errors as the daemon's messages, the timeout close code),
globals that persist between runs of one context and stay apart between
contexts, envs for one run only, and the contexts' REST calls (create with
a working directory, list without the default context, delete).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from daytona import AsyncDaytona, Daytona, DaytonaError, DaytonaTimeoutError, Sandbox


@pytest.fixture(scope="module")
def sandbox(daytona: Daytona) -> Iterator[Sandbox]:
    box = daytona.create(timeout=60)
    yield box
    daytona.delete(box, timeout=60)


def test_output_streams_and_state(sandbox: Sandbox) -> None:
    seen: list[str] = []
    first = sandbox.code_interpreter.run_code(
        "import sys\ntotal = 40\nprint('to stdout')\nsys.stderr.write('to stderr\\n')",
        on_stdout=lambda m: seen.append(m.output),
    )
    assert first.stdout == "to stdout\n"
    assert first.stderr == "to stderr\n"
    assert first.error is None
    assert "".join(seen) == "to stdout\n"
    # The default context keeps its globals (and imports) between runs.
    second = sandbox.code_interpreter.run_code("total += 2\nprint(total, sys.version_info[0])")
    assert second.stdout == "42 3\n"


def test_errors_are_reported_and_the_context_survives(sandbox: Sandbox) -> None:
    failed = sandbox.code_interpreter.run_code("kept = 'yes'\nraise KeyError('missing')")
    assert failed.error is not None
    assert failed.error.name == "KeyError"
    assert "missing" in failed.error.value
    assert "KeyError" in failed.error.traceback
    assert sandbox.code_interpreter.run_code("print(kept)").stdout == "yes\n"


def test_envs_apply_to_one_run(sandbox: Sandbox) -> None:
    code = "import os\nprint(os.environ.get('RUN_FLAVOUR', 'unset'))"
    assert sandbox.code_interpreter.run_code(code, envs={"RUN_FLAVOUR": "mint"}).stdout == "mint\n"
    assert sandbox.code_interpreter.run_code(code).stdout == "unset\n"


def test_timeout_closes_with_the_daemons_code(sandbox: Sandbox) -> None:
    with pytest.raises(DaytonaTimeoutError):
        sandbox.code_interpreter.run_code("import time\ntime.sleep(30)", timeout=1)
    # The context is usable afterwards.
    assert sandbox.code_interpreter.run_code("print('after')").stdout == "after\n"


def test_contexts_are_apart(sandbox: Sandbox) -> None:
    sandbox.fs.create_folder("ctx-dir", "755")
    ctx = sandbox.code_interpreter.create_context(cwd="ctx-dir")
    other = sandbox.code_interpreter.create_context()
    try:
        assert ctx.id and ctx.id != other.id
        assert ctx.language == "python"
        assert ctx.cwd.endswith("/ctx-dir")
        sandbox.code_interpreter.run_code("secret = 7", context=ctx)
        assert sandbox.code_interpreter.run_code("print(secret)", context=ctx).stdout == "7\n"
        assert sandbox.code_interpreter.run_code(
            "import os; print(os.getcwd())", context=ctx
        ).stdout == (ctx.cwd + "\n")
        leaked = sandbox.code_interpreter.run_code("print(secret)", context=other)
        assert leaked.error is not None and leaked.error.name == "NameError"

        listed = {c.id for c in sandbox.code_interpreter.list_contexts()}
        assert {ctx.id, other.id} <= listed
        assert "default" not in listed
    finally:
        sandbox.code_interpreter.delete_context(ctx)
        sandbox.code_interpreter.delete_context(other)
    assert not {ctx.id, other.id} & {c.id for c in sandbox.code_interpreter.list_contexts()}
    with pytest.raises(DaytonaError):
        sandbox.code_interpreter.delete_context(ctx)


def test_async_client(sandbox: Sandbox) -> None:
    async def scenario() -> tuple[str, str]:
        async with AsyncDaytona() as client:
            box = await client.get(sandbox.id)
            await box.code_interpreter.run_code("shared = 'from async'")
            result = await box.code_interpreter.run_code("print(shared)")
            return result.stdout, box.id

    stdout, _ = asyncio.run(scenario())
    assert stdout == "from async\n"
