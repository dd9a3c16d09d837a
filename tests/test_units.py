"""Units of retrieval (codegraph.units): one per definition with its exact lines and qualified
name, module-level code in units of its own, a class without its methods' bodies, windows that
cover a long unit whole, and chunks (L2) that carry their unit."""

from __future__ import annotations

import textwrap

from codegraph.languages import Language, all_languages
from codegraph.languages.python import PYTHON
from codegraph.model import FileIR
from codegraph.snapshot import content_hash
from codegraph.units import (
    definition_units,
    lexical_head,
    path_words,
    plain_units,
    text_hash,
    unit_chunks,
    units_for,
    window_body,
)


def units(src: str):
    text = textwrap.dedent(src).lstrip("\n")
    return definition_units(text, PYTHON.extract(text))


SRC = '''
    import os

    X = 1

    @decorator
    class Shape(Base):
        sides = 0

        def area(self, scale: float) -> float:
            def helper():
                return scale * 2
            return helper()

        def perimeter(self):
            return self.sides

    def standalone(a, b):
        return a + b

    if __name__ == "__main__":
        standalone(1, 2)
    '''


def test_every_definition_is_a_unit_with_its_exact_lines_and_qualified_name() -> None:
    got = [(u.kind, u.name, u.start_line, u.end_line) for u in units(SRC)]
    assert got == [
        ("module", "", 1, 3),
        ("class", "Shape", 5, 15),  # decorators included
        ("method", "Shape.area", 9, 12),
        ("function", "Shape.area.helper", 10, 11),
        ("method", "Shape.perimeter", 14, 15),
        ("function", "standalone", 17, 18),
        ("module", "", 20, 21),
    ]


def test_a_class_unit_is_its_header_and_own_statements_with_its_methods_outlined() -> None:
    shape = next(u for u in units(SRC) if u.name == "Shape")
    assert "sides = 0" in shape.text and "class Shape(Base):" in shape.text
    assert "def area(self, scale: float) -> float ..." in shape.text
    assert "return self.sides" not in shape.text and "helper" not in shape.text


def test_a_function_keeps_what_it_nests_and_siblings_never_share_a_unit() -> None:
    by_name = {u.name: u for u in units(SRC) if u.name}
    assert "return scale * 2" in by_name["Shape.area"].text  # the closure is part of it
    defs = [u for u in units(SRC) if u.kind != "class"]
    for a in defs:
        for b in defs:
            if a is not b and a.name.rsplit(".", 1)[0] == b.name.rsplit(".", 1)[0] and a.name and b.name:
                assert a.end_line < b.start_line or b.end_line < a.start_line  # siblings: disjoint


def test_a_long_unit_is_windowed_whole_each_window_with_its_context_header() -> None:
    body = "".join(f"    value_{i} = compute(value_{i - 1}, {i})\n" for i in range(1, 120))
    text = f"def long_function(value_0):\n{body}    return value_119\n"
    [unit] = definition_units(text, PYTHON.extract(text))
    chunks = unit_chunks([unit], 600, 100)
    assert len(chunks) > 3
    assert {(c.start_line, c.end_line, c.symbol) for c in chunks} == {(1, 121, "long_function")}
    assert "".join(window_body(c.text) for c in chunks) == text  # all of it, once, in order
    assert chunks[0].text.splitlines()[0] == "long function"
    assert chunks[1].text.splitlines()[0] == "long function: def long_function(value_0)"
    assert all(c.text_hash == text_hash(c.text) for c in chunks)
    # Last, its name text: qualified name as words and signature, one line, no window lines.
    assert chunks[-1].text == "long function: def long_function(value_0)"
    assert window_body(chunks[-1].text) == "" and all("\n" in c.text for c in chunks[:-1])


def test_every_named_unit_has_one_name_text_and_module_level_code_none() -> None:
    text = "import os\n\n\nclass TextWrapper:\n    def _split(self, text):\n        return text.split()\n"
    chunks = unit_chunks(definition_units(text, PYTHON.extract(text)), 600, 100)
    names = [(c.symbol, c.text) for c in chunks if "\n" not in c.text]
    assert names == [("TextWrapper", "text wrapper: class TextWrapper"),
                     ("TextWrapper._split", "text wrapper split: def _split(self, text)")]
    assert [c.symbol for c in chunks if "\n" in c.text] == ["", "TextWrapper", "TextWrapper._split"]


def test_a_units_texts_depend_on_that_unit_alone() -> None:
    a = "def f(x):\n    return x + 1\n\n\ndef g(y):\n    return y * 2\n"
    b = "def f(x):\n    return x + 1\n\n\ndef g(y):\n    return y * 3\n"
    ca = unit_chunks(definition_units(a, PYTHON.extract(a)), 600, 100)
    cb = unit_chunks(definition_units(b, PYTHON.extract(b)), 600, 100)
    # A body edit changes only g's window: f's texts and g's name text stay.
    assert [c for c in ca if c.symbol == "f"] == [c for c in cb if c.symbol == "f"]
    ga, gb = [c.text for c in ca if c.symbol == "g"], [c.text for c in cb if c.symbol == "g"]
    assert len(ga) == len(gb) == 2 and ga[0] != gb[0] and ga[1] == gb[1] == "g: def g(y)"


def test_every_text_is_placed_by_its_files_path() -> None:
    assert path_words("click/termui.py") == "click termui"
    assert path_words("json/__init__.py") == "json"
    assert path_words("src/lib/httpClient.ts") == "http client"
    assert path_words("net/http/server.go") == "net http server"
    assert path_words("Makefile") == "makefile" and path_words("") == ""
    text = "def f(x):\n    return x + 1\n\n\nx = f(1)\n"
    chunks = unit_chunks(definition_units(text, PYTHON.extract(text)), 600, 100, "pkg/tools.py")
    # The windows are placed by the path; the name text is the unit's name and signature alone.
    assert [c.text.split("\n")[0] for c in chunks] == ["pkg tools f", "f: def f(x)",
                                                         "pkg tools module-level code"]
    # Equal bytes under two paths: two contents, each unit's windows embedded with its own path;
    # the lines, names and windows are the same.
    other = unit_chunks(definition_units(text, PYTHON.extract(text)), 600, 100, "app/main.py")
    assert [window_body(c.text) for c in other] == [window_body(c.text) for c in chunks]
    windows = [c for c in chunks if "\n" in c.text]
    assert not {c.text_hash for c in other} & {c.text_hash for c in windows}
    data = text.encode()
    assert content_hash(data, "pkg/tools.py") != content_hash(data, "app/main.py")
    assert content_hash(data, "pkg/tools.py") == content_hash(data, "pkg/tools.py")


def test_the_lexical_head_holds_name_qualified_name_and_signature_whole_and_split() -> None:
    area = next(u for u in units(SRC) if u.name == "Shape.area")
    head = lexical_head(area)
    assert head.startswith("area Shape.area def area(self, scale: float) -> float")


def test_files_without_a_language_or_ir_are_line_windows() -> None:
    text = "".join(f"line {i}\n" for i in range(600))
    got = plain_units(text, 500)
    assert len(got) > 1 and "".join(u.text for u in got) == text
    assert units_for(None, text, None) == plain_units(text)
    assert plain_units("") == [] and units("") == []


def test_a_language_without_its_own_units_gets_the_default_from_its_symbols() -> None:
    class Bare(Language):  # a language plug-in that does not define `units`
        name = "bare"

        def extract(self, text: str) -> FileIR:
            return PYTHON.extract(text)

    text = "class C:\n    def f(self):\n        return 1\n\nx = 1\n"
    ir = PYTHON.extract(text)
    got = units_for(Bare(), text, ir)
    assert got == definition_units(text, ir)
    assert [(u.name, u.kind) for u in got] == [("C", "class"), ("C.f", "method"), ("", "module")]
    # Every shipped language is a `Language` subclass: its units come from the interface.
    assert all(Language in type(lang).__mro__ for lang in all_languages())
