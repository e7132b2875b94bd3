"""bench/run's emulators keep their sandboxes' files on a tmpfs (TAP).

bench/run gives the suite a private SANDBOX_LOCAL_ROOT in /tmp; the
emulators' sandboxes are local sandboxes, and with that root a Daytona
sandbox's /workspace (the Metaflow extension's work directory there) was on
this machine's disk while the local backend's runs (rows 1 and 3) and E2B's
work directory were on a tmpfs: row 3c measured the disk (docs/benchmarks.md,
"Remote backends, tenth look"). Starts the Daytona emulator as bench/run
does, with a root on a disk, writes a file in a sandbox's /workspace and
checks where it landed. It checks where files are, never how fast.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import run_module

BUILDDIR = Path(os.environ.get("TOP_BUILDDIR") or ".").resolve()


def request(url: str, key: str, body: dict | None = None, method: str | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read()
    return json.loads(text) if text else {}


def found_under(top: str, name: str) -> list[str]:
    return [os.path.join(d, name) for d, _dirs, files in os.walk(top) if name in files]


def main() -> int:
    print("1..2")
    emulator = BUILDDIR / "tests" / "emulators" / "daytona-emulator"
    br = run_module.load()
    tmpfs = br.tmpfs_dir()
    if not os.access(emulator, os.X_OK) or tmpfs is None:
        why = "no daytona-emulator built" if tmpfs else "no tmpfs ($XDG_RUNTIME_DIR, /dev/shm)"
        print(f"ok 1 # SKIP {why}\nok 2 # SKIP {why}")
        return 0
    # The suite's own root, as bench/run makes it: here in the build
    # directory, a disk wherever the build is not on a tmpfs.
    disk_root = tempfile.mkdtemp(prefix="bench-root-", dir=BUILDDIR)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAYTONA_", "E2B_"))}
    env["SANDBOX_LOCAL_ROOT"] = disk_root
    mark = f"bench-mark-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        with br.emulator(BUILDDIR, "daytona", env) as emu_env:
            api, key = emu_env["DAYTONA_API_URL"], emu_env["DAYTONA_API_KEY"]
            sid = request(f"{api}/sandbox", key, {})["id"]
            for _ in range(600):
                if request(f"{api}/sandbox/{sid}", key)["state"] == "started":
                    break
                time.sleep(0.05)
            toolbox = api.removesuffix("/api") + f"/toolbox/{sid}"
            request(f"{toolbox}/files/folder?path=/workspace&mode=0755", key, {}, "POST")
            out = request(
                f"{toolbox}/process/execute",
                key,
                {"command": f"sh -c 'echo x > /workspace/{mark}'"},
            )
            assert out.get("exitCode") == 0, out
            on_disk = found_under(disk_root, mark)
            on_tmpfs = [
                p
                for d in os.listdir(tmpfs)
                if d.startswith("bench-daytona-sbx-")
                for p in found_under(os.path.join(tmpfs, d), mark)
            ]
            request(f"{api}/sandbox/{sid}", key, None, "DELETE")
        ok = not on_disk
        print(
            f"{'ok' if ok else 'not ok'} 1 - the sandbox's /workspace is not in the suite's "
            f"root {disk_root} ({on_disk})"
        )
        ok = len(on_tmpfs) == 1
        print(
            f"{'ok' if ok else 'not ok'} 2 - it is in the emulator's own root in {tmpfs} "
            f"({on_tmpfs})"
        )
    finally:
        shutil.rmtree(disk_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
