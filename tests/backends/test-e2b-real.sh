#!/bin/bash
# The e2b backend against the real E2B service. Runs only when a real key
# is given in E2B_REAL_API_KEY (not E2B_API_KEY: the emulator tests set that
# one themselves, and a key in a developer's shell must not make `make check`
# spend money). Optional: E2B_REAL_DOMAIN, E2B_REAL_TEMPLATE.
set -u
if [ -z "${E2B_REAL_API_KEY:-}" ]; then
    echo "1..0 # SKIP E2B_REAL_API_KEY is not set (the real E2B service is only tested with a real key)"
    exit 0
fi
exec "${GI_PYTHON:-/usr/bin/python3}" - <<'PY'
import os, sys, tempfile
import gi
gi.require_version("Sandbox", "1.0")
from gi.repository import Gio, GLib, Sandbox

n = 0
def ok(cond, name):
    global n
    n += 1
    print(("ok" if cond else "not ok"), n, "-", name, flush=True)

print("1..5")
for var in ("E2B_API_URL", "E2B_SANDBOX_URL"):
    os.environ.pop(var, None)
backend = Sandbox.Backend.new_for_name("e2b")
backend.props.api_key = os.environ["E2B_REAL_API_KEY"]
if os.environ.get("E2B_REAL_DOMAIN"):
    backend.props.domain = os.environ["E2B_REAL_DOMAIN"]
spec = Sandbox.Spec()
spec.set_timeout(120)
spec.set_label("libsandbox-test", "real")
if os.environ.get("E2B_REAL_TEMPLATE"):
    spec.set_image(os.environ["E2B_REAL_TEMPLATE"])
inst = backend.create(spec, None)
try:
    r = inst.exec(Sandbox.Command.new_shell("echo hi; exit 3"), None)
    ok(r.get_exit_status() == 3 and r.get_stdout().get_data() == b"hi\n", "exec")
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "up.txt")
        open(src, "w").write("payload\n")
        inst.upload(Gio.File.new_for_path(src), "/tmp/up.txt", None)
        back = os.path.join(d, "back.txt")
        inst.download("/tmp/up.txt", Gio.File.new_for_path(back), None)
        ok(open(back).read() == "payload\n", "upload/download")
    found = backend.list({"libsandbox-test": "real"}, None)
    ok(inst.get_id() in [i.get_id() for i in found], "list by label")
    c = Sandbox.Command.new_shell("sleep 30")
    c.set_timeout_ms(1000)
    r = inst.exec(c, None)
    ok(r.get_timed_out(), "command timeout")
finally:
    inst.destroy(None)
ok(inst.destroy(None), "destroy twice")
PY
