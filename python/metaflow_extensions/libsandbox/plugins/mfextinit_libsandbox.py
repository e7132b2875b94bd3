"""Metaflow plugin registration for the libsandbox extension.

Nothing here (nor in the modules it names) may import ``gi`` at module level:
Metaflow imports these modules in processes without PyGObject, including the
task inside the sandbox, and one failing extension import drops them all.
"""

STEP_DECORATORS_DESC = [
    ("sandbox", ".sandbox_decorator.SandboxDecorator"),
    ("daytona", ".sandbox_decorator.DaytonaDecorator"),
    ("e2b", ".sandbox_decorator.E2BDecorator"),
]

# The trampoline `python flow.py ... sandbox step ...`.  Declared in both lists:
# Metaflow >= 2.19.23 reads TRAMPOLINE_CLIS_DESC (phase TRAMPOLINE), older
# versions only know CLIS_DESC.
CLIS_DESC = [("sandbox", ".sandbox_cli.cli")]
TRAMPOLINE_CLIS_DESC = [("sandbox", ".sandbox_cli.cli")]
