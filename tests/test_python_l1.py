"""L1 for Python: per-file extraction and cross-file resolution on small real packages."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from codegraph.languages.python import PYTHON
from codegraph.languages.python.resolve import module_names
from codegraph.model import Edge


def extract(src: str):
    return PYTHON.extract(textwrap.dedent(src).lstrip("\n"))


def test_symbols_have_kinds_qualified_local_names_lines_signatures_and_docstrings() -> None:
    ir = extract('''
        """Module doc."""
        LIMIT: int = 10
        a, b = 1, 2

        @decorator
        class Shape(Base, metaclass=Meta):
            """A shape."""

            def area(self, scale: float = 1.0) -> float:
                """Area."""
                def helper():
                    return 2
                return helper()

        async def fetch(url):
            return url
        ''')
    by_name = {s.local_name: s for s in ir.symbols}
    assert by_name[""].kind == "module" and by_name[""].docstring == "Module doc."
    assert by_name["LIMIT"].kind == "variable" and by_name["a"].kind == by_name["b"].kind == "variable"
    shape = by_name["Shape"]
    assert (shape.kind, shape.start_line, shape.end_line) == ("class", 5, 13)  # decorator included
    assert shape.bases == ("Base",) and shape.docstring == "A shape."
    assert shape.signature == "class Shape(Base, metaclass=Meta)"
    area = by_name["Shape.area"]
    assert area.kind == "method" and area.signature == "def area(self, scale: float = 1.0) -> float"
    assert area.docstring == "Area."
    assert by_name["Shape.area.helper"].kind == "function"
    assert by_name["fetch"].signature == "async def fetch(url)"


def test_imports_record_level_module_name_alias_and_scope() -> None:
    ir = extract('''
        import os.path, json as j
        from ..pkg import thing as other, more
        from . import sibling
        from .star import *

        def f():
            import re
        ''')
    got = [(i.module, i.name, i.alias, i.level, i.scope) for i in ir.imports]
    assert got == [
        ("os.path", None, None, 0, ""),
        ("json", None, "j", 0, ""),
        ("pkg", "thing", "other", 2, ""),
        ("pkg", "more", None, 2, ""),
        ("", "sibling", None, 1, ""),
        ("star", "*", None, 1, ""),
        ("re", None, None, 0, "f"),
    ]


def test_call_sites_carry_their_enclosing_scope() -> None:
    ir = extract('''
        setup()

        class C:
            def m(self):
                self.n()
                super().m()
                os.path.join("a")
                make()()
        ''')
    got = [(c.scope, c.callee, c.line) for c in ir.calls]
    assert ("", "setup", 1) in got
    assert ("C.m", "self.n", 5) in got and ("C.m", "super().m", 6) in got
    assert ("C.m", "os.path.join", 7) in got
    assert ("C.m", "make", 8) in got  # the outer call of make()() has no dotted name: not recorded
    assert len([c for c in got if c[1] == "make"]) == 1


def test_syntax_errors_still_yield_what_can_be_parsed() -> None:
    ir = extract('''
        def good():
            return 1

        def broken(:
            pass

        class AfterTheError:
            pass
        ''')
    names = {s.local_name for s in ir.symbols}
    assert "good" in names and "AfterTheError" in names
    assert ir.syntax_errors >= 1


def test_literal_all_is_read() -> None:
    assert extract('__all__ = ["a", "b"]\n').all_names == ["a", "b"]
    assert extract("__all__ = names()\n").all_names is None


def test_module_names_follow_packages_and_name_a_package_root() -> None:
    paths = ["src/pkg/__init__.py", "src/pkg/sub/__init__.py", "src/pkg/sub/mod.py", "tools/run.py"]
    assert module_names(paths, "repo") == {
        "src/pkg/__init__.py": "pkg",
        "src/pkg/sub/__init__.py": "pkg.sub",
        "src/pkg/sub/mod.py": "pkg.sub.mod",
        "tools/run.py": "run",
    }
    assert module_names(["__init__.py", "a.py", "sub/b.py", "sub/__init__.py"], "json") == {
        "__init__.py": "json", "a.py": "json.a", "sub/b.py": "json.sub.b", "sub/__init__.py": "json.sub",
    }


@dataclass
class _Whole:
    edges: list[Edge]
    file_deps: dict[str, set[tuple[str, str]]]


def _resolve(repo: Path) -> _Whole:
    paths = sorted(str(p.relative_to(repo)) for p in repo.rglob("*.py"))
    irs = {p: PYTHON.extract((repo / p).read_text()) for p in paths}
    modules = module_names(paths, repo.name)
    resolver = PYTHON.resolver(modules, irs.__getitem__)
    results = [resolver.resolve_file(p) for p in paths]
    return _Whole([e for r in results for e in r.edges], {r.path: r.deps for r in results})


def test_cross_file_resolution_of_the_shop_package(shop_repo: Path) -> None:
    res = _resolve(shop_repo)
    edges = {(e.kind, e.src, e.dst) for e in res.edges}
    # imports: relative, `from . import module`, aliases, re-exports through __init__.py
    assert ("imports", "shop.checkout", "shop.pricing") in edges
    assert ("imports", "shop.checkout", "shop.models.Customer") in edges
    assert ("imports", "app", "shop.models.Customer") in edges  # via shop/__init__.py
    assert ("imports", "app", "shop.pricing.total_price") in edges  # via a star import
    assert ("imports", "app", "shop.checkout.checkout") in edges  # aliased
    # calls: through module aliases, imported classes, re-exports, nested functions
    assert ("calls", "shop.checkout.checkout", "shop.pricing.total_price") in edges
    assert ("calls", "shop.checkout.checkout", "shop.models.Customer") in edges
    assert ("calls", "app.main", "shop.checkout.checkout") in edges
    assert ("calls", "app.main", "shop.pricing.total_price") in edges
    assert ("calls", "shop.checkout.helper", "shop.checkout.helper.inner") in edges
    assert ("calls", "shop.checkout.helper.inner", "shop.checkout.checkout") in edges
    # self / super through resolved bases
    assert ("calls", "shop.models.Base.save", "shop.models.Base.validate") in edges
    assert ("calls", "shop.models.Customer.validate", "shop.models.Base.validate") in edges
    assert ("calls", "shop.models.Customer.validate", "shop.models.Customer.has_email") in edges
    assert ("inherits", "shop.models.Customer", "shop.models.Base") in edges
    # methods on local variables, through the class they were constructed from (Customer
    # inherits save from Base); a class call is a constructor edge
    assert ("calls", "shop.checkout.checkout", "shop.models.Base.save") in edges
    kinds = {(e.src, e.dst): e.call_kind for e in res.edges if e.kind == "calls"}
    assert kinds["shop.checkout.checkout", "shop.models.Customer"] == "constructor"
    assert kinds["shop.checkout.checkout", "shop.models.Base.save"] == "direct"
    # the reverse-dependency index: app uses shop/__init__.py's Customer and total_price
    assert ("shop/__init__.py", "Customer") in res.file_deps["app.py"]
    assert ("shop/models.py", "Customer") in res.file_deps["app.py"]


def test_star_import_respects_all_and_private_names(tmp_path: Path) -> None:
    from conftest import write_tree

    repo = write_tree(tmp_path / "r", {
        "lib.py": "__all__ = ['public']\ndef public(): pass\ndef also_public(): pass\ndef _private(): pass\n",
        "use.py": "from lib import *\npublic()\nalso_public()\n_private()\n",
    })
    calls = {e.dst for e in _resolve(repo).edges if e.kind == "calls"}
    assert calls == {"lib.public"}


def test_import_cycles_and_reexport_chains_terminate(tmp_path: Path) -> None:
    from conftest import write_tree

    repo = write_tree(tmp_path / "r", {
        "a.py": "from b import thing\nfrom b import loop\n",
        "b.py": "from c import thing\nfrom a import loop\n",
        "c.py": "def thing(): pass\n",
        "d.py": "from a import thing, loop\nthing()\nloop()\n",
    })
    res = _resolve(repo)
    calls = {(e.src, e.dst) for e in res.edges if e.kind == "calls"}
    assert calls == {("d", "c.thing")}
