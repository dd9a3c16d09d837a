"""L2: chunks follow the syntax tree, respect the budget, cover the file, merge small neighbours."""

from __future__ import annotations

import textwrap

from codegraph.chunking import chunk_plain_text, text_hash
from codegraph.languages.python import PYTHON


def chunks(src: str, max_chars: int = 400, min_chars: int = 60):
    return PYTHON.chunk(textwrap.dedent(src).lstrip("\n"), max_chars, min_chars)


def method(name: str, lines: int = 6) -> str:
    body = "\n".join(f"        value_{i} = compute_{name}_{i}(value_{i - 1})" for i in range(1, lines))
    return f"    def {name}(self, value_0):\n{body}\n        return value_{lines - 1}\n"


def test_a_function_that_fits_is_one_chunk_with_its_symbol() -> None:
    got = chunks('''
        import os

        def small(a, b):
            """Adds."""
            return a + b
        ''', max_chars=400, min_chars=10)
    assert [(c.symbol, c.start_line, c.end_line) for c in got] == [("", 1, 1), ("small", 3, 5)]


def test_a_large_class_splits_into_header_and_one_chunk_per_method() -> None:
    src = 'class Big:\n    """Docs."""\n\n' + "\n".join(method(n) for n in ("alpha", "beta", "gamma"))
    got = PYTHON.chunk(src, 420, 20)
    assert [c.symbol for c in got] == ["Big", "Big.alpha", "Big.beta", "Big.gamma"]
    assert got[0].text.startswith("class Big:") and "Docs." in got[0].text
    assert all(len(c.text) <= 420 for c in got)


def test_small_neighbours_of_one_scope_are_merged_within_the_budget() -> None:
    src = "\n".join(f"def f{i}():\n    return {i}\n" for i in range(10))
    got = PYTHON.chunk(src, 100, 60)
    assert 1 < len(got) < 10  # merged, but not past the budget
    assert all(len(c.text) <= 100 for c in got)
    assert all(c.symbol == "" for c in got if c.text.count("def ") > 1)  # a merged chunk names its scope


def test_chunks_cover_every_non_blank_line_exactly_once() -> None:
    src = ("# leading comment\nimport os\n\n"
           + "class K:\n" + "".join(method(n, 12) for n in ("a", "b")) + "\n# trailing\nX = 1\n")
    got = PYTHON.chunk(src, 300, 50)
    covered = [line for c in got for line in range(c.start_line, c.end_line + 1)]
    assert len(covered) == len(set(covered))
    non_blank = {i + 1 for i, line in enumerate(src.splitlines()) if line.strip()}
    assert non_blank <= set(covered)
    assert "".join(c.text for c in got).replace("\n", "") == src.replace("\n", "")


def test_an_oversized_statement_without_structure_is_cut_into_line_windows() -> None:
    src = "DATA = [\n" + "".join(f"    'item number {i}',\n" for i in range(200)) + "]\n"
    got = PYTHON.chunk(src, 500, 50)
    assert len(got) > 5 and all(len(c.text) <= 500 for c in got)


def test_content_hash_is_the_hash_of_the_text_and_stable() -> None:
    a = chunks("def f():\n    return 1\n")
    b = chunks("def f():\n    return 1\n")
    assert a == b and a[0].text_hash == text_hash(a[0].text)


def test_deep_nesting_falls_back_to_windows_instead_of_failing() -> None:
    src = "x = " + "(" * 3000 + "1" + ")" * 3000 + "\n"
    got = PYTHON.chunk(src, 500, 50)
    assert got and "".join(c.text for c in got) == src


def test_plain_text_files_are_cut_into_windows() -> None:
    text = "".join(f"line {i}\n" for i in range(300))
    got = chunk_plain_text(text, 200, 50)
    assert len(got) > 1 and "".join(c.text for c in got) == text
