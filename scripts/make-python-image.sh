#!/bin/sh
# Builds a Debian image with python3 and pip-installed Metaflow, packed as an
# OCI image layout that `sandboxctl image import` takes (docs/metaflow.md,
# "Local sandboxes on an image"). Needs mmdebstrap (apt-get install
# mmdebstrap), a Debian mirror, pip on this machine with access to an index
# (PIP names it, default "python3 -m pip"), and root or a working unshare
# mode for mmdebstrap.
#
# Usage: scripts/make-python-image.sh OUT_DIR [SUITE] [METAFLOW_SPEC]
#   OUT_DIR        the OCI layout to write (created; must not exist)
#   SUITE          Debian suite, default bookworm
#   METAFLOW_SPEC  pip requirement, default metaflow
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -eu
out=${1:?usage: make-python-image.sh OUT_DIR [SUITE] [METAFLOW_SPEC]}
suite=${2:-bookworm}
metaflow=${3:-metaflow}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The wheels are fetched here, by this machine's pip (its index, proxy and
# certificates), for the image's Python (bookworm: 3.11), and installed in
# the image without network access.
${PIP:-python3 -m pip} download --quiet --dest "$tmp/wheels" \
  --only-binary=:all: --python-version "${PYTHON_VERSION:-3.11}" \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any \
  "$metaflow"

# One layer: the whole root file system as a tar, made by mmdebstrap.
mmdebstrap --variant=minbase --include=python3,python3-pip,ca-certificates \
  --customize-hook="mkdir -p \"\$1/tmp/wheels\"" \
  --customize-hook="sync-in $tmp/wheels /tmp/wheels" \
  --customize-hook='chroot "$1" sh -c "env -u PIP_FIND_LINKS -u PIP_CERT python3 -m pip install --no-index --find-links /tmp/wheels --break-system-packages --no-cache-dir /tmp/wheels/*.whl"' \
  --customize-hook='rm -rf "$1"/tmp/wheels "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
  "$suite" "$tmp/layer.tar"

python3 - "$tmp/layer.tar" "$out" <<'PY'
import hashlib, json, os, shutil, sys
layer, out = sys.argv[1], sys.argv[2]
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, h), "wb") as f:
        f.write(data)
    return "sha256:" + h, len(data)
h = hashlib.sha256()
with open(layer, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
layer_digest = "sha256:" + h.hexdigest()
shutil.copyfile(layer, os.path.join(blobs, h.hexdigest()))
config = {"architecture": "amd64", "os": "linux",
          "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                             "LANG=C.UTF-8"],
                     "Cmd": ["python3"]},
          "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}
config_digest, config_size = put(json.dumps(config).encode())
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest, "size": os.path.getsize(layer)}]}
manifest_digest, manifest_size = put(json.dumps(manifest).encode())
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "digest": manifest_digest, "size": manifest_size,
         "platform": {"os": "linux", "architecture": "amd64"}}]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
print(out)
PY
