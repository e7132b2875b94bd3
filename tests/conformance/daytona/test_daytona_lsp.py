"""The official daytona SDK's language-server calls against the emulator.

create_lsp_server("python", project): start, did_open, document_symbols
(classes, methods, functions, variables with their ranges, a file whose
last line does not parse yet), sandbox_symbols across the project's files,
did_close, stop; queries before start and for a language without a server
are refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from daytona import Daytona, DaytonaError, Sandbox

SOURCE = b"""class Shelf:
    capacity = 3

    def add(self, item):
        return item


def count_items(shelf):
    return 0


inventory = Shelf()
inventory.
"""


@pytest.fixture(scope="module")
def sandbox(daytona: Daytona) -> Iterator[Sandbox]:
    box = daytona.create(timeout=60)
    yield box
    daytona.delete(box, timeout=60)


def test_symbols_of_a_document_and_of_the_project(sandbox: Sandbox) -> None:
    project = f"lsp-{uuid.uuid4().hex[:6]}"
    sandbox.fs.create_folder(f"{project}/pkg", "755")
    sandbox.fs.upload_file(SOURCE, f"{project}/shelf.py")
    sandbox.fs.upload_file(b"def shelf_factory():\n    pass\n", f"{project}/pkg/more.py")
    server = sandbox.create_lsp_server("python", project)
    server.start()
    try:
        server.did_open(f"{project}/shelf.py")
        symbols = {s.name: s for s in server.document_symbols(f"{project}/shelf.py")}
        # LSP SymbolKind: 5 class, 6 method, 12 function, 13 variable.
        assert {n: s.kind for n, s in symbols.items()} == {
            "Shelf": 5,
            "capacity": 13,
            "add": 6,
            "count_items": 12,
            "inventory": 13,
        }
        where = symbols["count_items"].location
        assert where.uri.endswith(f"/{project}/shelf.py") and where.uri.startswith("file:///")
        assert (where.range.start.line, where.range.start.character) == (7, 0)
        assert where.range.end.line == 8

        found = {
            (s.name, s.location.uri.rsplit("/", 1)[-1]) for s in server.sandbox_symbols("shelf")
        }
        assert found == {("Shelf", "shelf.py"), ("shelf_factory", "more.py")}
        server.did_close(f"{project}/shelf.py")
    finally:
        server.stop()
    # Stopped: queries are refused until it is started again.
    with pytest.raises(DaytonaError):
        server.document_symbols(f"{project}/shelf.py")


def test_unserved_language_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(DaytonaError, match="language server"):
        sandbox.create_lsp_server("typescript", "somewhere").start()
