"""What a WSGI application can import, found without running it (`cheroot-wasm build-python`).

componentize-py snapshots the interpreter once the entry module has run, so a component
holds only the modules imported by then. Applications and libraries also import at request
time (inside functions, with ``importlib.import_module``, by names in settings), so the
build imports, ahead of time, every module this scan finds the application able to import.

Input (stdin, JSON): ``app`` (the module), ``include`` (modules to add), ``own`` (the
application's directories), ``third`` (directories of installed packages). Output (stdout,
JSON): ``modules`` to import, in the order found, each ``[name, importers, named]``, where
``named`` says the application or a library (not only the standard library) names it
outright, so that a failure to import it deserves a warning; ``unavailable``, the modules
named that way that cannot work inside a WASI component, each ``[name, importers]``; and
``absent``, the names referenced that exist nowhere, which the component is not to report
as missing when a request probes for them.

Sources are parsed with ``ast``, never executed; modules are located by walking the
directories (own, third, then the standard library, as componentize-py orders them), so no
package ``__init__`` runs. The standard library located is the one of the ``python3`` that
runs this scan, which may be older than the component's (CPython 3.14): the import at build
time decides what really is there. sdk/python/tests/test_scan_imports.py runs it this way
on small applications (pytest).

How far it goes:

* the application's own code (``own`` directories): every import, wherever it is written
  (module level, functions, ``try``/``if``), ``importlib.import_module``/``__import__``
  with a literal name, and string literals naming a module, or an attribute of one
  (``"mysite.settings"``, ``"polls.apps.PollsConfig"``); a package of its own is taken
  whole (frameworks such as Django import ``app.models``, ``app.admin`` by convention),
  its tests excepted;
* installed packages: the same, for what the application reaches, string literals
  included (Django's default settings name the views and backends it loads);
* the standard library: the imports of every module reached, recursively, except the
  fallbacks in ``except`` clauses (the C accelerators they stand in for are built into the
  component) and development tools (``pydoc``, ``unittest``, ``tkinter``, ...) that only
  the standard library itself names; string literals are not followed there;
* modules that cannot work in WASI (no C extension built for it: ``ssl``, ``ctypes``,
  ``lzma``, ...) are never imported; naming one outright (not in a ``try`` that catches
  ``ImportError``) is reported.
"""

import ast
import json
import os
import re
import site
import sys
import sysconfig

#: Modules that cannot be imported in the component (checked in componentize-py 0.25.1's
#: CPython 3.14): C extensions not built for WASI, and what needs them.
UNAVAILABLE = {
    "ssl", "_ssl", "ctypes", "_ctypes", "lzma", "_lzma", "bz2", "_bz2", "tkinter",
    "_tkinter", "turtle", "turtledemo", "curses", "_curses", "_curses_panel", "readline",
    "_posixsubprocess", "_posixshmem", "_multiprocessing", "pwd", "grp", "termios", "fcntl",
    "resource", "mmap", "_hashlib", "dbm.gnu", "dbm.ndbm", "_gdbm", "_dbm", "pty", "tty",
    "crypt", "_crypt", "spwd", "nis", "syslog", "_uuid", "compression.zstd", "_zstd",
    "_interpreters", "concurrent.interpreters", "msvcrt", "winreg", "winsound", "_winapi",
    "nt", "_overlapped", "_msi", "msilib", "_scproxy", "ossaudiodev",
}

#: Standard-library modules left out when only the standard library names them: tools for
#: development, other platforms, and modules whose import has effects.
STDLIB_ONLY_IF_NAMED = {
    "pydoc", "pydoc_data", "pdb", "bdb", "doctest", "unittest", "idlelib", "test",
    "lib2to3", "ensurepip", "venv", "_pyrepl", "code", "codeop", "cProfile", "profile",
    "pstats", "trace", "timeit", "tabnanny", "pyclbr", "modulefinder", "multiprocessing",
    "concurrent.futures.process", "webbrowser", "antigravity", "this", "__hello__",
    "__phello__", "_osx_support", "_aix_support", "_android_support", "_ios_support",
    "_apple_support", "nturl2path", "distutils", "_pydecimal", "_pyio", "_pydatetime",
    "_pylong", "sqlite3.dump", "xmlrpc", "compileall", "py_compile", "zipapp", "rlcompleter",
    "getpass", "tkinter", "turtle", "turtledemo", "ntpath",
}

#: Never imported: module bodies that run programs.
NEVER = {"__main__", "antigravity", "this", "__hello__", "__phello__"}

#: Submodules of the application's own packages that are not part of the application.
NOT_APPLICATION = re.compile(r"^(tests?|test_.*|.*_tests?|conftest|setup|__main__)$")

DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
NAME = re.compile(r"^[A-Za-z_]\w*$")

#: Functions whose string argument names a codec (`"idna"`, `"unicode-escape"`): codecs are
#: found by name, in the `encodings` package, when first used.
CODEC_CALLS = {"encode", "decode", "lookup", "getencoder", "getdecoder", "getreader",
               "getwriter", "getincrementalencoder", "getincrementaldecoder", "iterencode",
               "iterdecode"}


class Location:
    """Where a module is: its kind (own, third, stdlib, builtin), source file (None for
    compiled and namespace modules) and, for a package, its directories."""

    def __init__(self, kind, source, package_dirs):
        self.kind, self.source, self.package_dirs = kind, source, package_dirs


class Finder:
    """Locates modules by walking directories, as PathFinder would, without importing."""

    def __init__(self, roots):
        self.roots = roots  # [(kind, directory)] in search order
        self.cache = {}
        self.listings = {}

    def listing(self, directory):
        """The names in `directory` (cached: the scan asks about many names that are not
        there)."""
        if directory not in self.listings:
            try:
                self.listings[directory] = set(os.listdir(directory))
            except OSError:
                self.listings[directory] = set()
        return self.listings[directory]

    def find(self, name):
        if name not in self.cache:
            self.cache[name] = self._find(name)
        return self.cache[name]

    def _find(self, name):
        parent, _, last = name.rpartition(".")
        if parent:
            found = self.find(parent)
            if found is None or not found.package_dirs:
                return None
            return self._in_dirs(last, [(found.kind, d) for d in found.package_dirs])
        if name in sys.builtin_module_names:
            return Location("builtin", None, [])
        return self._in_dirs(name, self.roots)

    def _in_dirs(self, last, dirs):
        namespace = []
        for kind, d in dirs:
            names = self.listing(d)
            package = os.path.join(d, last)
            if last in names and os.path.isdir(package):
                if "__init__.py" in self.listing(package):
                    return Location(kind, os.path.join(package, "__init__.py"), [package])
                namespace.append((kind, package))
            if last + ".py" in names:
                return Location(kind, os.path.join(d, last + ".py"), [])
            if any(f.startswith(last + ".") and f.endswith((".so", ".pyd")) for f in names):
                return Location(kind, None, [])
        if namespace:
            return Location(namespace[0][0], None, [p for _, p in namespace])
        return None


#: Module-level functions that are a module's command line or self-test.
COMMAND_LINE_FUNCTIONS = {"main", "_main", "_test", "test", "_cli", "cli_main"}

#: Submodules of installed packages that serve their tests: followed only when a module
#: imports them as it loads, not from inside a function (`app.test_client()`).
TEST_SUPPORT = re.compile(r"^(testing|tests?|test_.*|conftest|__main__)$")

#: Names of flags that libraries set on other platforms (`if WIN: import msvcrt`).
OTHER_PLATFORM_FLAGS = {"WIN", "WINDOWS", "IS_WINDOWS", "MS_WINDOWS", "ON_WINDOWS", "IS_WIN",
                        "WIN32", "MSWINDOWS", "IS_MACOS", "MACOS", "IS_DARWIN", "TYPE_CHECKING"}


def wasi_value(test):
    """What an `if` test is inside the component (`sys.platform` is "wasi", `os.name`
    "posix", `TYPE_CHECKING` false), when it is that simple; otherwise None."""
    if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__" \
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant) \
            and test.comparators[0].value == "__main__":
        return not isinstance(test.ops[0], ast.Eq)  # `if __name__ == "__main__":` a script's
    if isinstance(test, (ast.Name, ast.Attribute)):
        name = test.id if isinstance(test, ast.Name) else test.attr
        return False if name.upper().lstrip("_") in OTHER_PLATFORM_FLAGS else None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        value = wasi_value(test.operand)
        return None if value is None else not value
    if isinstance(test, ast.BoolOp):
        values = [wasi_value(v) for v in test.values]
        if isinstance(test.op, ast.And):
            return False if False in values else (True if all(v is True for v in values) else None)
        return True if True in values else (False if all(v is False for v in values) else None)
    platform = {"platform": "wasi", "name": "posix"}
    def subject(node):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and (node.value.id, node.attr) in (("sys", "platform"), ("os", "name")):
            return platform[node.attr]
        return None
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and subject(test.left) is not None:
        value, op, other = subject(test.left), test.ops[0], test.comparators[0]
        try:
            other = ast.literal_eval(other)
        except ValueError:
            return None
        if isinstance(op, ast.Eq):
            return value == other
        if isinstance(op, ast.NotEq):
            return value != other
        if isinstance(op, ast.In):
            return value in other
        if isinstance(op, ast.NotIn):
            return value not in other
        return None
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Attribute) \
            and test.func.attr == "startswith" and subject(test.func.value) is not None \
            and len(test.args) == 1:
        try:
            prefix = ast.literal_eval(test.args[0])
        except ValueError:
            return None
        if isinstance(prefix, (str, tuple)):
            return subject(test.func.value).startswith(prefix)
    return None


def suffix_of(node):
    """`".base"` for `"%s.base" % x` or `f"{x}.base"`, else None."""
    text = None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) \
            and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
        text = node.left.value
        if not text.startswith("%s."):
            return None
        text = text[3:]
    elif isinstance(node, ast.JoinedStr) and len(node.values) == 2 \
            and isinstance(node.values[0], ast.FormattedValue) \
            and isinstance(node.values[1], ast.Constant) and node.values[1].value.startswith("."):
        text = node.values[1].value[1:]
    return text if text and DOTTED.match("x." + text) else None


class References(ast.NodeVisitor):
    """The module names one source refers to: ``[(name, guarded, how)]``, where ``how`` is
    "import" (a statement or an import_module call), "string" or "codec"."""

    def __init__(self, package):
        self.package = package  # for relative imports
        self.found = []
        self.conditions = 0  # depth inside `if` bodies whose test is not known
        self.guards = []  # per enclosing try body: does it catch ImportError?
        self.fallback = 0  # depth inside except clauses
        self.functions = 0  # depth inside functions: what is found there is imported lazily

    def add(self, name, how):
        guarded = any(self.guards) or self.fallback > 0 or self.conditions > 0
        self.found.append((name, guarded, how, self.fallback > 0, self.functions > 0))

    def visit_FunctionDef(self, node):
        for decorator in node.decorator_list:
            self.visit(decorator)
        self.visit(node.args)
        if self.functions == 0 and node.name in COMMAND_LINE_FUNCTIONS:
            return  # a module's command line (`python -m ast`): not run by a WSGI application
        self.functions += 1
        for statement in node.body:
            self.visit(statement)
        self.functions -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node):
        # Branches for type checkers and other platforms are not taken in the component.
        taken = wasi_value(node.test)
        self.visit(node.test)
        self.conditions += taken is None
        if taken is not False:
            for statement in node.body:
                self.visit(statement)
        if taken is not True:
            for statement in node.orelse:
                self.visit(statement)
        self.conditions -= taken is None

    def visit_Lambda(self, node):
        self.visit(node.args)
        self.functions += 1
        self.visit(node.body)
        self.functions -= 1

    def absolute(self, module, level):
        if not level:
            return module
        parts = self.package.split(".") if self.package else []
        if level - 1 >= len(parts):
            return None
        base = parts[: len(parts) - (level - 1)]
        return ".".join(base + ([module] if module else [])) or None

    def visit_Import(self, node):
        for alias in node.names:
            self.add(alias.name, "import")

    def visit_ImportFrom(self, node):
        base = self.absolute(node.module, node.level)
        if base is None:
            return
        self.add(base, "import")
        for alias in node.names:
            if alias.name != "*":
                self.add(f"{base}.{alias.name}", "from")

    def visit_Try(self, node):
        catches = any(
            handler.type is None
            or any(
                isinstance(n, ast.Name)
                and n.id in ("ImportError", "ModuleNotFoundError", "Exception", "BaseException")
                for n in ast.walk(handler.type)
            )
            for handler in node.handlers
        )
        self.guards.append(catches)
        for statement in node.body:
            self.visit(statement)
        self.guards.pop()
        self.fallback += 1
        for handler in node.handlers:
            self.visit(handler)
        self.fallback -= 1
        for statement in node.orelse + node.finalbody:
            self.visit(statement)

    visit_TryStar = visit_Try

    def visit_Call(self, node):
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        first = node.args[0] if node.args else None
        literal = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
        if called in ("import_module", "__import__") and literal:
            package = node.args[1] if len(node.args) > 1 else None
            for keyword in node.keywords:
                if keyword.arg == "package":
                    package = keyword.value
            if literal.startswith("."):
                level = len(literal) - len(literal.lstrip("."))
                if isinstance(package, ast.Constant) and isinstance(package.value, str):
                    resolved = References(package.value).absolute(literal[level:], level)
                else:  # `package=__package__` or `__name__`: this module's own package
                    resolved = self.absolute(literal[level:], level)
                if resolved:
                    self.add(resolved, "import")
            else:
                self.add(literal, "import")
        elif called in CODEC_CALLS and literal:
            self.add(literal, "codec")
        for keyword in node.keywords:
            value = keyword.value
            if keyword.arg in ("encoding", "charset") and isinstance(value, ast.Constant) \
                    and isinstance(value.value, str):
                self.add(value.value, "codec")
        self.generic_visit(node)

    def visit_arguments(self, node):
        # `def f(s, charset="utf-8")`: a default codec name.
        named = node.posonlyargs + node.args
        pairs = list(zip(named[len(named) - len(node.defaults):], node.defaults))
        pairs += [(a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults) if d is not None]
        for arg, default in pairs:
            if ("encoding" in arg.arg or "charset" in arg.arg) and isinstance(default, ast.Constant) \
                    and isinstance(default.value, str):
                self.add(default.value, "codec")
        self.generic_visit(node)

    def visit_BinOp(self, node):
        # `"%s.base" % engine`, `f"{app}.templatetags"`: names made from a setting (Django's
        # database backends, template tag libraries); the suffix applies to the packages
        # strings name, see `Scan.suffixes`.
        if suffix_of(node):
            self.add(suffix_of(node), "suffix")
        self.generic_visit(node)

    def visit_JoinedStr(self, node):
        if suffix_of(node):
            self.add(suffix_of(node), "suffix")
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and len(node.value) < 200 and \
                (DOTTED.match(node.value) or NAME.match(node.value)):
            self.add(node.value, "string")


class Scan:
    def __init__(self, finder, own_dirs):
        self.finder = finder
        self.own_dirs = own_dirs
        self.order = []  # modules to import, in the order found
        self.importers = {}  # module -> [importer]
        self.named = set()  # needed for certain: see `needed`
        self.edges = {}  # importer -> the modules it names outright
        self.absent = set()
        self.unavailable = {}  # module -> [importer], named outright
        self.scanned = set()
        self.own = set()  # the application's own modules
        self.suffixes = set()  # from `import_module("%s.base" % name)`
        self.by_string = set()  # packages a string literal names
        self.queue = []
        self.codecs = self._codec_table()

    def _codec_table(self):
        """Codec name → `encodings` module, as `encodings.search_function` finds it."""
        location = self.finder.find("encodings")
        table = {}
        if location is None or not location.package_dirs:
            return table
        names = {f[:-3] for d in location.package_dirs for f in os.listdir(d) if f.endswith(".py")}
        try:
            from encodings.aliases import aliases
        except ImportError:
            aliases = {}
        for name in names:
            table[name] = name
        for alias, name in aliases.items():
            if name in names:
                table[alias] = name
        return table

    def codec(self, text):
        import encodings
        key = encodings.normalize_encoding(text).lower().replace("-", "_")
        name = self.codecs.get(key)
        return f"encodings.{name}" if name and name != "__init__" else None

    def add(self, name, importer, strong):
        """Adds `name` (and its parents) to what the component imports; `strong`: the
        importer names it outright."""
        if name in NEVER or name.split(".")[-1] in NEVER:
            return
        if strong:
            self.edges.setdefault(importer, set()).add(name)
        if name in UNAVAILABLE or name.split(".")[0] in UNAVAILABLE:
            if strong:
                self.unavailable.setdefault(name, [])
                if importer and importer not in self.unavailable[name]:
                    self.unavailable[name].append(importer)
            return
        if importer is not None:
            importers = self.importers.setdefault(name, [])
            if importer not in importers:
                importers.append(importer)
        if name in self.scanned:
            return
        self.scanned.add(name)
        parent = name.rpartition(".")[0]
        if parent:
            self.add(parent, importer, False)
        location = self.finder.find(name)
        if location is None:
            self.absent.add(name)
            return
        self.order.append(name)
        if location.kind == "own":
            self.own.add(name)
        if location.source:
            self.queue.append((name, location))
        if location.kind == "own" and location.package_dirs:
            for directory in location.package_dirs:
                for entry in sorted(os.listdir(directory)):
                    sub = entry[:-3] if entry.endswith(".py") else entry
                    path = os.path.join(directory, entry)
                    is_module = entry.endswith(".py") and sub != "__init__"
                    is_package = os.path.isfile(os.path.join(path, "__init__.py"))
                    if (is_module or is_package) and NAME.match(sub) and not NOT_APPLICATION.match(sub):
                        self.add(f"{name}.{sub}", name, False)

    def run(self, app, includes):
        self.add(app, None, True)
        for name in includes:
            self.add(name, None, True)
            self.add(name, "--include", True)
        while self.queue:
            name, location = self.queue.pop(0)
            self.visit(name, location)
        # `import_module("%s.base" % setting)`: the submodule of each package named by a
        # string (a setting) that has one.
        done = set()
        while self.by_string - done or self.queue:
            for package in sorted(self.by_string - done):
                done.add(package)
                if not self.finder.find(package).package_dirs:
                    continue
                for suffix in sorted(x for x in self.suffixes if not x.startswith("__")):
                    if self.finder.find(f"{package}.{suffix}"):
                        self.add(f"{package}.{suffix}", package, False)
                    else:  # probed for at run time (Django's `templatetags`): keep quiet
                        self.absent.add(f"{package}.{suffix}")
            while self.queue:
                self.visit(*self.queue.pop(0))
        # Imported by C code, which no scan sees: `datetime.strptime` and `time.strptime`
        # import _strptime; the socket module encodes every host name with the idna codec.
        by_c_code = [("_strptime", "datetime.strptime")]
        if "socket" in self.scanned:
            by_c_code.append(("encodings.idna", "socket.getaddrinfo"))
        for name, importer in by_c_code:
            if name not in self.scanned and self.finder.find(name):
                self.add(name, importer, False)
        while self.queue:
            self.visit(*self.queue.pop(0))

    def visit(self, name, location):
        try:
            with open(location.source, "rb") as f:
                tree = ast.parse(f.read(), location.source)
        except (OSError, SyntaxError, ValueError):
            return
        is_package = bool(location.package_dirs)
        visitor = References(name if is_package else name.rpartition(".")[0])
        visitor.visit(tree)
        stdlib = location.kind in ("stdlib", "builtin")
        top = name.split(".")[0]
        for ref, guarded, how, fallback, lazy in visitor.found:
            if how == "suffix":
                self.suffixes.add(ref)
                continue
            if how == "codec":
                module = self.codec(ref)
                if module:
                    self.add(module, name, False)
                continue
            if how == "string":
                if stdlib:
                    continue
                target = self._string_target(ref, location.kind)
                if target and (location.kind == "own" or target.split(".")[0] == top):
                    self.by_string.add(target)
                    self.add(target, name, location.kind == "own")
                continue
            found = self.finder.find(ref)
            if found is None:
                if how == "import" and ref.split(".")[0] not in UNAVAILABLE and ref not in UNAVAILABLE:
                    self.absent.add(ref)
                elif how == "import" and not stdlib:  # an unavailable module not on this host
                    self.add(ref, name, self._outright(location, guarded, lazy))
                continue
            if location.kind == "third" and lazy and found.kind == "third" and (
                ref.split(".")[0] != top or TEST_SUPPORT.match(ref.rpartition(".")[2])
            ):
                continue  # another package's, or test support, imported inside a function
            if stdlib and fallback:
                continue
            if found.kind == "stdlib" and self._tool(ref) and ref not in self.scanned:
                # Development tools only when the application, or a library as it loads,
                # imports them.
                if not (location.kind == "own" or (location.kind == "third" and not lazy and not guarded)):
                    continue
            self.add(ref, name, self._outright(location, guarded, lazy))

    @staticmethod
    def _outright(location, guarded, lazy):
        """Whether an import names its module outright, so that its failure deserves a
        warning: one the application writes unguarded, or a library as it loads."""
        return not guarded and (location.kind == "own" or (location.kind == "third" and not lazy))

    def needed(self):
        """The modules the application certainly imports: itself, what `--include` names,
        and, recursively, what those name outright. Only their failures are worth a
        warning; the rest are optional (an `if`, a `try`, a function of a library)."""
        todo = [None]
        while todo:
            for name in self.edges.get(todo.pop(), ()):
                if name not in self.named:
                    self.named.add(name)
                    todo.append(name)
                    parent = name.rpartition(".")[0]
                    while parent and parent not in self.named:
                        self.named.add(parent)
                        parent = parent.rpartition(".")[0]

    def unavailable_named(self):
        """The unavailable modules that the application needs, with who imports them: those
        its own modules, or modules it certainly imports, import outright (an optional
        module of a library that needs one, such as a terminal helper, is left out)."""
        out = []
        for name, importers in sorted(self.unavailable.items()):
            needs = [i for i in importers if i in self.named or i == "--include"]
            if needs:
                out.append([name, needs[:3]])
        return out

    @staticmethod
    def _tool(name):
        parts = name.split(".")
        return any(".".join(parts[: i + 1]) in STDLIB_ONLY_IF_NAMED for i in range(len(parts)))

    def _string_target(self, text, kind):
        """The module a string literal names: itself, or the module an attribute path
        (`"pkg.mod.Class"`) starts with. Single names count only for the application's own
        top-level modules (Django's `INSTALLED_APPS = ["polls"]`)."""
        if "." not in text:
            found = self.finder.find(text)
            if kind == "own" and found and found.kind == "own" and not NOT_APPLICATION.match(text) \
                    and text not in ("manage", "setup"):
                return text
            return None
        candidate = text
        while "." in candidate:
            found = self.finder.find(candidate)
            if found is not None:
                return candidate if found.kind != "builtin" or candidate == text else None
            candidate = candidate.rpartition(".")[0]
        return None


def roots(own, third):
    """Where modules are looked for, in componentize-py's order: the application's and
    installed directories, the site-packages of this Python (componentize-py bundles those
    too), then the standard library."""
    dirs = [("own", d) for d in own] + [("third", d) for d in third]
    if os.environ.get("VIRTUAL_ENV"):
        lib = os.path.join(os.environ["VIRTUAL_ENV"], "lib")
        for entry in sorted(os.listdir(lib)) if os.path.isdir(lib) else []:
            dirs.append(("third", os.path.join(lib, entry, "site-packages")))
    else:
        dirs += [("third", d) for d in [site.getusersitepackages()] + site.getsitepackages()]
    paths = sysconfig.get_paths()
    stdlib = [paths["stdlib"], paths["platstdlib"], os.path.join(paths["platstdlib"], "lib-dynload")]
    dirs += [("stdlib", d) for d in dict.fromkeys(stdlib)]
    return [(kind, os.path.abspath(d)) for kind, d in dirs if os.path.isdir(d)]


def main():
    job = json.load(sys.stdin)
    finder = Finder(roots(job["own"], job["third"]))
    scan = Scan(finder, job["own"])
    scan.run(job["app"], job.get("include", []))
    scan.needed()
    skip = set(job.get("skip", []))
    json.dump(
        {
            "modules": [
                [name, scan.importers.get(name, [])[:3], name in scan.named]
                for name in scan.order
                if name not in skip
            ],
            "unavailable": scan.unavailable_named(),
            "absent": sorted(scan.absent | set(scan.unavailable)),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
