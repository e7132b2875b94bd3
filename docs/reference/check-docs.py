#!/usr/bin/python3
"""Fails if any public symbol of Sandbox-1.0.gir lacks documentation.

Checks every class, interface, record, enumeration, bitfield, callback,
function and constant, and inside them every constructor, method, virtual
method, function, property, signal and enum member, with each parameter and
non-void return value. Prints TAP: one test per top-level symbol.

Usage: check-docs.py [GIR]   (default: $TOP_BUILDDIR/introspection/Sandbox-1.0.gir)
SPDX-License-Identifier: LGPL-2.1-or-later
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET

CORE = "{http://www.gtk.org/introspection/core/1.0}"
GLIB = "{http://www.gtk.org/introspection/glib/1.0}"

TOP_KINDS = ("class", "interface", "record", "enumeration", "bitfield",
             "callback", "function", "constant", GLIB + "boxed")
MEMBER_KINDS = ("constructor", "method", "virtual-method", "function",
                "property", GLIB + "signal", "member")
CALLABLES = ("constructor", "method", "virtual-method", "function",
             "callback", GLIB + "signal")


def has_doc(elem: ET.Element) -> bool:
    doc = elem.find(CORE + "doc")
    return doc is not None and (doc.text or "").strip() != ""


def kind_of(elem: ET.Element) -> str:
    return elem.tag.replace(CORE, "").replace(GLIB, "glib:")


def check_callable(elem: ET.Element, path: str, missing: list[str]) -> None:
    params = elem.find(CORE + "parameters")
    if params is not None:
        for p in params.findall(CORE + "parameter"):
            if not has_doc(p):
                missing.append(f"parameter '{p.get('name')}' of {path}")
    ret = elem.find(CORE + "return-value")
    if ret is not None:
        t = ret.find(CORE + "type")
        void = t is not None and t.get("name") == "none"
        if not void and not has_doc(ret):
            missing.append(f"return value of {path}")


def check_symbol(elem: ET.Element, ns: str) -> tuple[str, list[str]]:
    name = elem.get("name") or elem.get(GLIB + "name") or "?"
    path = f"{ns}.{name}"
    missing: list[str] = []
    if not has_doc(elem):
        missing.append(f"{kind_of(elem)} {path}")
    if kind_of(elem) in ("callback", "function"):
        check_callable(elem, path, missing)
    for child in elem:
        if child.tag.replace(CORE, "") not in MEMBER_KINDS and child.tag not in MEMBER_KINDS:
            continue
        cname = child.get("name")
        cpath = f"{path}.{cname}"
        if not has_doc(child):
            missing.append(f"{kind_of(child)} {cpath}")
        if child.tag.replace(CORE, "") in CALLABLES or child.tag in CALLABLES:
            check_callable(child, cpath, missing)
    return path, missing


def main() -> int:
    if len(sys.argv) > 1:
        gir = sys.argv[1]
    else:
        gir = os.path.join(os.environ.get("TOP_BUILDDIR", "."), "introspection", "Sandbox-1.0.gir")
    if not os.path.exists(gir):
        print("1..0 # SKIP no GIR at " + gir + " (configure --enable-introspection)")
        return 0
    root = ET.parse(gir).getroot()
    namespace = root.find(CORE + "namespace")
    assert namespace is not None
    ns = namespace.get("name") or "?"
    symbols = []
    for elem in namespace:
        if elem.tag.replace(CORE, "") not in TOP_KINDS and elem.tag not in TOP_KINDS:
            continue
        # Class structs (SandboxBackendClass) only carry the virtual methods,
        # which are checked on the class itself.
        if elem.get(GLIB + "is-gtype-struct-for"):
            continue
        symbols.append(elem)
    print(f"1..{len(symbols) + 1}")
    # A GIR with nearly nothing in it means the scanner saw no headers.
    ok = len(symbols) >= 5
    print(f"{'ok' if ok else 'not ok'} 1 - {gir} has {len(symbols)} public symbols")
    failed = 0 if ok else 1
    for i, elem in enumerate(symbols, start=2):
        path, missing = check_symbol(elem, ns)
        if missing:
            failed += 1
            print(f"not ok {i} - {path} is documented")
            for m in missing:
                print(f"# undocumented: {m}")
        else:
            print(f"ok {i} - {path} is documented")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
