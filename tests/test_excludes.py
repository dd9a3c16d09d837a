"""The scan's exclude matcher (one combined regex) answers exactly as pathspec does."""

from __future__ import annotations

import pathspec
from hypothesis import given, settings
from hypothesis import strategies as st

from codegraph.snapshot import ALWAYS_EXCLUDED, _matcher

_PARTS = st.sampled_from(["a", "b", "docs", "build", "x.py", "y.pyc", "README.md", ".git",
                          "__pycache__", "node_modules", "a.b", "z.md"])
_PATHS = st.lists(_PARTS, min_size=1, max_size=5).map("/".join)
_PATTERNS = st.sampled_from(["*.md", "docs/", "/build", "a/**/b", "b/*.py", "node_modules",
                             "**/x.py", "*.py[co]", "a/b/", "# comment", "", "z*"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PATTERNS, max_size=4), st.lists(_PATHS, min_size=1, max_size=20))
def test_combined_matcher_equals_pathspec(patterns: list[str], paths: list[str]) -> None:
    spec = pathspec.GitIgnoreSpec.from_lines([*ALWAYS_EXCLUDED, *patterns])
    matches = _matcher(spec)
    assert [matches(p) for p in paths] == [spec.match_file(p) for p in paths]


def test_negations_keep_pathspec_matching() -> None:
    spec = pathspec.GitIgnoreSpec.from_lines(["*.md", "!keep.md"])
    matches = _matcher(spec)
    assert matches("a.md") and not matches("keep.md")
