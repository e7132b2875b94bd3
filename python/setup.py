"""metaflow-libsandbox: run Metaflow steps in libsandbox sandboxes.

Built with setuptools on purpose: Metaflow finds installed extensions through
the ``top_level.txt`` that setuptools writes into the .dist-info (see
docs/metaflow.md and the extension spec, "setuptools vs hatchling").
"""

from setuptools import find_namespace_packages, setup

setup(
    name="metaflow-libsandbox",
    version="0.2.0",
    description="Metaflow @sandbox step decorator backed by libsandbox (GObject)",
    license="LGPL-2.1-or-later",
    packages=find_namespace_packages(include=["metaflow_extensions.*"]),
    python_requires=">=3.8",
    # PyGObject and the Sandbox-1.0 typelib come from the distribution
    # (python3-gi, gir1.2-sandbox-1.0); they are only needed on the machine
    # that launches the flow, never inside the sandbox.
    install_requires=["metaflow>=2.15.21"],
    zip_safe=False,
)
