"""The house's layers hold: the import contracts (``.importlinter``) and no cross-app import hidden in a function.

An import made inside a function hides a dependency from every tool that draws the structure, so a circle or an
arrow running back up goes unseen. Across apps it is allowed only in ``apps.py`` (``AppConfig.ready()`` runs once
the app registry is ready, which models need) or where a comment on the line or the line above says why the app
registry requires it.
"""

import ast
import subprocess
import sys
from pathlib import Path

from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]
LOCAL_APPS = sorted(config.name for config in apps.get_app_configs() if Path(config.path).resolve().parent == ROOT)


def test_the_layers_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache", "--config", str(ROOT / ".importlinter")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def hidden_imports(source: str, *, app: str) -> list[tuple[int, str]]:
    """(line, module) of each import of another local app made inside a function, without a comment naming the
    app registry as the reason."""
    tree = ast.parse(source)
    lines = source.splitlines()
    found = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if in_function and isinstance(child, ast.Import | ast.ImportFrom):
                modules = [a.name for a in child.names] if isinstance(child, ast.Import) else [child.module or ""]
                for module in modules:
                    top = module.split(".")[0]
                    if child.__dict__.get("level", 0) == 0 and top in LOCAL_APPS and top != app:
                        context = " ".join(lines[max(child.lineno - 2, 0) : child.end_lineno])
                        if "app registry" not in context:
                            found.append((child.lineno, module))
            visit(child, inner)

    visit(tree, False)
    return found


def test_no_cross_app_import_is_hidden_in_a_function():
    hidden = []
    for app in LOCAL_APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts or path.name == "apps.py":
                continue
            for line, module in hidden_imports(path.read_text(), app=app):
                hidden.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert hidden == [], "\n".join(hidden)


def test_the_hidden_import_check_sees_one():
    source = "def f():\n    from profiles.models import Profile\n    return Profile\n"
    assert hidden_imports(source, app="segments") == [(2, "profiles.models")]
    assert hidden_imports(source, app="profiles") == []
    excused = "def f():\n    # the app registry is not ready when this module is imported\n    from profiles import m\n"
    assert hidden_imports(excused, app="segments") == []
