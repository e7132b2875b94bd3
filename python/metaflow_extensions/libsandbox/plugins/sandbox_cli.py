"""``python flow.py ... sandbox step ...``: the per-attempt trampoline.

The runtime runs this command (on the launching machine) instead of ``step``
for every attempt of a sandboxed step.  It only parses options; the work is
done by sandbox_executor.run_step, imported when the command runs so that
``python flow.py --help`` works without PyGObject.
"""

from metaflow._vendor import click

from .sandbox_i18n import _


@click.group()
def cli():
    pass


@cli.group(help="Commands related to libsandbox sandboxes (@sandbox).")
def sandbox():
    pass


@sandbox.command(
    help="Execute a single task in a sandbox. This runs the top-level step command "
    "inside a libsandbox instance. Typically you do not call this command directly; "
    "it is used internally by Metaflow."
)
@click.argument("step-name")
@click.option("--code-package-metadata", default=None, help="Code package metadata.")
@click.option("--code-package-sha", default=None, help="Code package key.")
@click.option("--code-package-url", default=None, help="Code package location.")
@click.option("--decorator", default="sandbox", help="Decorator name (for messages).")
@click.option("--backend", default="local", help="libsandbox backend name.")
@click.option("--image", default=None, help="Sandbox image or root directory.")
@click.option("--cpu", default=None, help="CPUs for the sandbox.")
@click.option("--memory", default=None, help="Memory (MB) for the sandbox.")
@click.option("--disk", default=None, help="Disk (MB) for the sandbox.")
@click.option("--gpu", default=None, help="GPUs for the sandbox.")
@click.option("--sandbox-env", default=None, help="JSON dictionary of extra environment variables.")
@click.option("--network", is_flag=True, default=False, help="Allow network access.")
@click.option(
    "--run-time-limit",
    default=5 * 24 * 60 * 60,
    type=int,
    help="Run time limit in seconds for the step.",
)
# Options of the top-level `step` command, passed through.
@click.option("--run-id", help="Passed to the top-level 'step'.")
@click.option("--task-id", help="Passed to the top-level 'step'.")
@click.option("--input-paths", help="Passed to the top-level 'step'.")
@click.option("--split-index", help="Passed to the top-level 'step'.")
@click.option("--clone-path", help="Passed to the top-level 'step'.")
@click.option("--clone-run-id", help="Passed to the top-level 'step'.")
@click.option("--tag", multiple=True, default=None, help="Passed to the top-level 'step'.")
@click.option("--namespace", default=None, help="Passed to the top-level 'step'.")
@click.option("--retry-count", default=0, help="Passed to the top-level 'step'.")
@click.option("--max-user-code-retries", default=0, help="Passed to the top-level 'step'.")
@click.option(
    "--ubf-context",
    default=None,
    type=click.Choice([None, "ubf_control", "ubf_task"]),
    help="Unbounded foreach context (not supported in sandboxes).",
)
@click.option("--num-parallel", default=None, type=int, help="Passed to the top-level 'step'.")
@click.pass_context
def step(
    ctx,
    step_name,
    code_package_metadata=None,
    code_package_sha=None,
    code_package_url=None,
    decorator="sandbox",
    backend="local",
    image=None,
    cpu=None,
    memory=None,
    disk=None,
    gpu=None,
    sandbox_env=None,
    network=False,
    run_time_limit=None,
    num_parallel=None,
    **kwargs,
):
    if num_parallel is not None:
        # @parallel's control task: it starts the other nodes itself, in the
        # same sandbox (Metaflow's local multi-node mode).
        kwargs["num_parallel"] = num_parallel
    from .sandbox_executor import SandboxOptions, run_step

    options = SandboxOptions(
        decorator=decorator,
        backend=backend,
        image=image,
        cpu=cpu,
        memory=memory,
        disk=disk,
        gpu=gpu,
        env=sandbox_env,
        network=network,
        run_time_limit=run_time_limit,
        code_package_metadata=code_package_metadata,
        code_package_sha=code_package_sha,
        code_package_url=code_package_url,
    )
    run_step(ctx, step_name, options, kwargs)


def _selection(ctx, run_id, step_name, task_id, backend):
    from .sandbox_admin import find, flow_backends

    labels = {"flow": ctx.obj.flow.name}
    for key, value in (("run_id", run_id), ("step", step_name), ("task_id", task_id)):
        if value:
            labels[key] = str(value)
    return find(flow_backends(ctx.obj.graph, backend), labels)


_select_options = [
    click.option("--step", "step_name", default=None, help="Only the sandboxes of this step."),
    click.option("--task-id", default=None, help="Only the sandboxes of this task."),
    click.option("--backend", default=None, help="Also look on this backend."),
]


def _with_select_options(func):
    for option in reversed(_select_options):
        func = option(func)
    return func


@sandbox.command("list", help="List the live sandboxes of this flow (of a run, step or task).")
@click.option("--run-id", default=None, help="Only the sandboxes of this run.")
@_with_select_options
@click.pass_context
def list_sandboxes(ctx, run_id=None, step_name=None, task_id=None, backend=None):
    found = _selection(ctx, run_id, step_name, task_id, backend)
    echo = ctx.obj.echo
    if not found:
        echo(_("No live sandboxes of flow %s.") % ctx.obj.flow.name)
        return
    for name, instance, labels in found:
        echo(
            "%s  %s  %s/%s/%s  attempt %s"
            % (
                instance.get_id(),
                name,
                labels.get("run_id", "?"),
                labels.get("step", "?"),
                labels.get("task_id", "?"),
                labels.get("attempt", "?"),
            )
        )


@sandbox.command("kill", help="Destroy the live sandboxes of a run (or of a step or task of it).")
@click.option("--run-id", required=True, help="The run whose sandboxes to destroy.")
@_with_select_options
@click.pass_context
def kill_sandboxes(ctx, run_id=None, step_name=None, task_id=None, backend=None):
    from .sandbox_admin import kill
    from .sandbox_executor import SandboxExecutionError

    found = _selection(ctx, run_id, step_name, task_id, backend)
    destroyed, errors = kill(found)
    for sandbox_id in destroyed:
        ctx.obj.echo(_("Destroyed sandbox %s.") % sandbox_id)
    if not found:
        ctx.obj.echo(_("No live sandboxes of run %s.") % run_id)
    if errors:
        raise SandboxExecutionError("\n".join(errors))
