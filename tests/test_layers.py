"""The layers of DESIGN.md hold: who may import whom, and no import cycle anywhere.

Every module of ``pikdav/`` is read (not imported) and every import statement in it counts,
also the ones inside functions: an import hidden in a method is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pikdav"
HTTP_CLIENTS = ("requests", "urllib3", "boto3", "botocore")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str) -> set[str]:
    """Every module ``name`` imports: pikdav's own by module name, others by top-level name."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {_owner(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            submodules = {f"{base}.{alias.name}" for alias in node.names}
            if submodules <= MODULES.keys():
                found |= submodules  # `from . import x`: x, not the package's __init__
            else:
                found.add(_owner(base))
    return found - {name}


def _owner(imported: str) -> str:
    """The pikdav module an import names (or the top-level name of another package)."""
    while imported and imported not in MODULES:
        if "." not in imported:
            return imported
        imported = imported.rpartition(".")[0]
    return imported


GRAPH = {name: _imports(name) for name in MODULES}


def _in(layer: str, name: str) -> bool:
    return name == layer or name.startswith(layer + ".")


def test_no_module_takes_part_in_an_import_cycle():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(name: str) -> None:  # Tarjan's strongly connected components
        index[name] = low[name] = len(index)
        stack.append(name)
        for other in GRAPH[name] & MODULES.keys():
            if other not in index:
                visit(other)
                low[name] = min(low[name], low[other])
            elif other in stack:
                low[name] = min(low[name], index[other])
        if low[name] == index[name]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == name:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in MODULES:
        if name not in index:
            visit(name)
    assert cycles == []


def test_the_dav_layer_speaks_to_pikpak_only_through_vfs_and_never_over_http():
    for name, imported in GRAPH.items():
        if _in("pikdav.dav", name):
            assert not imported & set(HTTP_CLIENTS), name
            assert "pikdav.config" not in imported and "pikdav.assembly" not in imported, name


def test_vfs_knows_neither_dav_nor_the_config():
    for name, imported in GRAPH.items():
        if _in("pikdav.vfs", name):
            assert not {i for i in imported if _in("pikdav.dav", i)}, name
            assert not imported & {"pikdav.config", "pikdav.assembly"}, name
            assert not imported & set(HTTP_CLIENTS), name


def test_the_pikpak_client_depends_on_nothing_above_it():
    for name, imported in GRAPH.items():
        if _in("pikdav.pikpak", name):
            above = {i for i in imported if i.startswith("pikdav.")}
            above -= {i for i in imported if _in("pikdav.pikpak", i)}
            assert above <= {"pikdav.durable", "pikdav.logtext"}, (name, above)


def test_the_emulator_shares_only_the_pure_functions_with_the_client():
    allowed = {"pikdav.pikpak.identity", "pikdav.pikpak.gcid"}
    for name, imported in GRAPH.items():
        if _in("pikdav.emulator", name):
            client = {i for i in imported if _in("pikdav.pikpak", i)}
            assert client <= allowed, (name, client)


def test_the_emulator_takes_only_the_sign_function_from_the_clients_identities():
    """The salt tables and client ids are facts the emulator keeps its own copy of: a wrong
    table on the client's side must be refused by the emulator, not shared with it."""
    for name, path in MODULES.items():
        if _in("pikdav.emulator", name):
            used = {
                node.attr
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "identity"
            }
            assert used <= {"captcha_sign"}, (name, used)


def test_every_wait_goes_through_the_one_retry_policy():
    """``time.sleep`` only in pikdav.pikpak.retry (the emulator apart): every other wait is a
    RetryPolicy's, bounded and cancellable there."""
    for name, path in MODULES.items():
        if _in("pikdav.emulator", name) or name == "pikdav.pikpak.retry":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "time":
                assert "sleep" not in {a.name for a in node.names}, name
            if isinstance(node, ast.Attribute) and node.attr == "sleep":
                assert not (isinstance(node.value, ast.Name) and node.value.id == "time"), (
                    f"{name}:{node.lineno} sleeps outside pikdav.pikpak.retry"
                )
