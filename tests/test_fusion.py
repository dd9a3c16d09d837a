"""Hybrid fusion (`query.fuse`): the vector ranking's cosines as they are, plus the lexical
ranking's min-max normalised scores times `LEXICAL_WEIGHT`."""

from __future__ import annotations

import pytest

from codegraph import query
from codegraph.query import Hit


def hit(name: str, score: float) -> Hit:
    return Hit(f"{name}.py", 1, 5, name, score, f"def {name}(): ...", "repo")


def order(lexical: list[Hit], vector: list[Hit], weight: float | None = None) -> list[str]:
    return [h.symbol for h in query.fuse(lexical, vector, 10, weight)]


LEXICAL = [hit("b", 10.0), hit("c", 5.0), hit("a", 1.0)]  # a: last, normalised to 0


def test_a_vector_first_that_stands_out_keeps_its_place_against_the_lexical_first() -> None:
    # Min-max over the vector ranking would stretch a's lead to 1 - 0.6 and let b's lexical
    # first win; the cosine's own margin (0.2) is more than the lexical weight can make up.
    vector = [hit("a", 0.90), hit("b", 0.70), hit("c", 0.69), hit("d", 0.40)]
    assert order(LEXICAL, vector) == ["a", "b", "c", "d"]


def test_close_cosines_are_decided_by_the_lexical_ranking() -> None:
    vector = [hit("a", 0.72), hit("c", 0.71), hit("b", 0.70), hit("d", 0.40)]
    assert order(LEXICAL, vector) == ["b", "c", "a", "d"]
    assert order(LEXICAL, vector, 0.0) == ["a", "c", "b", "d"]  # weight 0: the vector ranking


def test_scores_are_the_cosine_plus_the_weighted_normalised_lexical_score() -> None:
    vector = [hit("a", 0.90), hit("b", 0.70), hit("d", 0.40)]
    lexical = [hit("b", 10.0), hit("e", 5.0), hit("a", 1.0)]
    fused = {h.symbol: h.score for h in query.fuse(lexical, vector, 10)}
    w = query.LEXICAL_WEIGHT
    assert fused["a"] == pytest.approx(0.90)
    assert fused["b"] == pytest.approx(0.70 + w)
    assert fused["d"] == pytest.approx(0.40)
    # Absent from the vector ranking: at most its last cosine, so scored that.
    assert fused["e"] == pytest.approx(0.40 + w * (5.0 - 1.0) / (10.0 - 1.0))
    assert list(fused) == ["a", "b", "e", "d"]


def test_one_ranking_empty() -> None:
    vector = [hit("a", 0.5), hit("b", 0.4)]
    assert order([], vector) == ["a", "b"]
    assert order(LEXICAL, []) == ["b", "c", "a"]
