"""Tests of build-python's import scan (sdk/python/build/scan_imports.py).

Each test writes a small application into a temporary directory and runs the scan the way
host/src/cli/build_python.rs does: the file's source as ``python -I -c SOURCE``, the job as
JSON on stdin (``app``, ``include``, ``own``, ``third``), the answer as JSON on stdout
(``modules`` as ``[name, importers, named]``, ``unavailable``, ``absent``). The standard
library the scan also reaches is left out of the assertions: they look only at the modules
the test wrote (or names it chose), and require exactly those.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCAN = Path(__file__).resolve().parent.parent / "build" / "scan_imports.py"


def write(root, files):
    """Writes `files` ({relative path: source}) under `root`."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


def scan(app, own, third=(), include=()):
    """The scan's answer for `app`, as build_python.rs gets it."""
    job = {
        "app": app,
        "include": list(include),
        "own": [str(d) for d in own],
        "third": [str(d) for d in third],
    }
    done = subprocess.run(
        [sys.executable, "-I", "-c", SCAN.read_text()],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def ours(answer, *dirs):
    """The modules found that live in `dirs`: {name: (importers, named)}."""
    tops = {p.name[:-3] if p.name.endswith(".py") else p.name for d in dirs for p in d.iterdir()}
    return {
        name: (importers, named)
        for name, importers, named in answer["modules"]
        if name.split(".")[0] in tops
    }


def absent(answer, prefix):
    return {name for name in answer["absent"] if name.startswith(prefix)}


def test_a_plain_top_level_import_is_followed(tmp_path):
    write(tmp_path, {
        "plain_app.py": """
            import plain_helper
            application = plain_helper.application
        """,
        "plain_helper.py": """
            import plain_deeper
            application = None
        """,
        "plain_deeper.py": "",
        "plain_bystander.py": "",  # in the directory, imported by nobody
    })
    answer = scan("plain_app", [tmp_path])
    assert ours(answer, tmp_path) == {
        "plain_app": ([], True),
        "plain_helper": (["plain_app"], True),
        "plain_deeper": (["plain_helper"], True),
    }
    assert [name for name, *_ in answer["modules"]][:1] == ["plain_app"]
    assert answer["unavailable"] == []


def test_an_import_inside_a_function_is_found(tmp_path):
    write(tmp_path, {
        "lazy_app.py": """
            def view(environ, start_response):
                import lazy_in_function
                return lazy_in_function.body

            class Views:
                def get(self):
                    from lazy_in_method import handler
                    return handler

            later = lambda: __import__("lazy_in_lambda")
        """,
        "lazy_in_function.py": "body = []",
        "lazy_in_method.py": "handler = None",
        "lazy_in_lambda.py": "",
        "lazy_unused.py": "",
    })
    assert ours(scan("lazy_app", [tmp_path]), tmp_path) == {
        "lazy_app": ([], True),
        "lazy_in_function": (["lazy_app"], True),
        "lazy_in_method": (["lazy_app"], True),
        "lazy_in_lambda": (["lazy_app"], True),
    }


def test_a_module_level_main_is_a_command_line_and_is_not_followed(tmp_path):
    write(tmp_path, {
        "cli_app.py": """
            def main():
                import cli_only
            def serve():
                import cli_served
        """,
        "cli_only.py": "",
        "cli_served.py": "",
    })
    assert ours(scan("cli_app", [tmp_path]), tmp_path) == {
        "cli_app": ([], True),
        "cli_served": (["cli_app"], True),
    }


def test_modules_named_by_a_string_literal_in_an_import_call_are_found(tmp_path):
    # In `third` (an installed package's directory) a bare string naming a single module is
    # not taken for a module: only the import calls name these.
    own, third = tmp_path / "own", tmp_path / "third"
    write(own, {
        "named_app.py": """
            import importlib

            def view():
                importlib.import_module("named_by_import_module")
                __import__("named_by_dunder_import")
                return "named_by_plain_string"
        """,
    })
    write(third, {
        "named_by_import_module.py": "",
        "named_by_dunder_import.py": "",
        "named_by_plain_string.py": "",
    })
    assert ours(scan("named_app", [own], [third]), own, third) == {
        "named_app": ([], True),
        "named_by_import_module": (["named_app"], True),
        "named_by_dunder_import": (["named_app"], True),
    }


@pytest.mark.parametrize("preferred_exists", [True, False])
def test_a_try_import_except_import_error_fallback(tmp_path, preferred_exists):
    files = {
        "fallback_app.py": """
            try:
                import fallback_fast as impl
            except ImportError:
                import fallback_slow as impl
        """,
        "fallback_slow.py": "",
    }
    if preferred_exists:
        files["fallback_fast.py"] = ""
    write(tmp_path, files)
    answer = scan("fallback_app", [tmp_path])
    # Both are imported ahead when they exist; neither is needed for certain (a failure to
    # import either is no warning), and a missing one is only absent.
    expected = {"fallback_app": ([], True), "fallback_slow": (["fallback_app"], False)}
    if preferred_exists:
        expected["fallback_fast"] = (["fallback_app"], False)
    assert ours(answer, tmp_path) == expected
    assert absent(answer, "fallback_") == (set() if preferred_exists else {"fallback_fast"})


def test_relative_imports_inside_a_package(tmp_path):
    write(tmp_path, {
        "relpkg/__init__.py": "",
        "relpkg/views.py": """
            from .helpers import greet
            from .sub.deep import thing
        """,
        "relpkg/helpers.py": "greet = None",
        "relpkg/sub/__init__.py": "",
        "relpkg/sub/deep.py": """
            from .. import helpers
            from ..sub import sibling
            thing = None
        """,
        "relpkg/sub/sibling.py": "",
        "relpkg/unrelated.py": "",  # in the package, imported by nobody
        "relpkg/tests.py": "",  # a package's tests are not the application
    })
    found = ours(scan("relpkg.views", [tmp_path]), tmp_path)
    # The application's own package is taken whole (tests excepted) ...
    assert set(found) == {
        "relpkg",
        "relpkg.views",
        "relpkg.helpers",
        "relpkg.sub",
        "relpkg.sub.deep",
        "relpkg.sub.sibling",
        "relpkg.unrelated",
    }
    # ... and the relative imports, resolved, say who imports what and so which modules the
    # application needs for certain (`named`): all but the one nobody imports.
    assert {name for name, (_, named) in found.items() if not named} == {"relpkg.unrelated"}
    assert "relpkg.views" in found["relpkg.helpers"][0]
    assert "relpkg.views" in found["relpkg.sub.deep"][0]
    assert "relpkg.sub.deep" in found["relpkg.helpers"][0]
    assert "relpkg.sub.deep" in found["relpkg.sub.sibling"][0]
    assert found["relpkg.unrelated"] == (["relpkg"], False)


def test_a_module_that_does_not_exist_is_absent_and_the_rest_still_found(tmp_path):
    write(tmp_path, {
        "gone_app.py": """
            import importlib
            import gone_module
            import gone_parent.child
            from gone_package import thing
            import gone_present

            def view():
                import gone_lazily
                importlib.import_module("gone_by_name")
        """,
        "gone_present.py": "",
    })
    answer = scan("gone_app", [tmp_path])
    assert ours(answer, tmp_path) == {
        "gone_app": ([], True),
        "gone_present": (["gone_app"], True),
    }
    # `import gone_parent.child` is recorded under its full name only.
    assert absent(answer, "gone_") == {
        "gone_module",
        "gone_parent.child",
        "gone_package",
        "gone_lazily",
        "gone_by_name",
    }
    assert answer["unavailable"] == []


def test_an_application_module_that_does_not_exist_is_only_absent(tmp_path):
    write(tmp_path, {"other.py": ""})
    answer = scan("gone_application", [tmp_path])
    assert ours(answer, tmp_path) == {}
    assert absent(answer, "gone_") == {"gone_application"}


def test_a_module_that_cannot_work_in_wasi_is_reported_when_needed(tmp_path):
    write(tmp_path, {
        "wasi_app.py": """
            import ssl
            try:
                import ctypes
            except ImportError:
                ctypes = None
        """,
    })
    answer = scan("wasi_app", [tmp_path])
    names = [name for name, *_ in answer["modules"]]
    assert "ssl" not in names and "ctypes" not in names
    assert answer["unavailable"] == [["ssl", ["wasi_app"]]]
    assert "ssl" in answer["absent"] and "ctypes" not in answer["absent"]
