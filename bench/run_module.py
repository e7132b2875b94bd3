"""bench/run as a module, for the scripts beside it: its emulator() starts
an emulator as the table's rows do, tmpfs_dir() finds the tmpfs they use.

    import run_module
    br = run_module.load()
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path


def load():
    """bench/run (a script with no .py ending) loaded as the module bench_run."""
    if "bench_run" in sys.modules:
        return sys.modules["bench_run"]
    loader = importlib.machinery.SourceFileLoader("bench_run", str(Path(__file__).with_name("run")))
    spec = importlib.util.spec_from_loader("bench_run", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module  # (its dataclasses look themselves up there)
    loader.exec_module(module)
    return module
