"""``python flow.py ... sandbox step ...``: the per-attempt trampoline.

The runtime runs this command (on the launching machine) instead of ``step``
for every attempt of a sandboxed step.  It only parses options; the work is
done by sandbox_executor.run_step, imported when the command runs so that
``python flow.py --help`` works without PyGObject.
"""

from metaflow._vendor import click


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
@click.option("--num-parallel", default=None, type=int, help="Not supported.")
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
