from __future__ import annotations

from codegraph import lexical


def test_identifiers_split_at_camel_snake_acronyms_and_digits() -> None:
    assert lexical.split_identifier("parseHttpHeader") == ("parse", "http", "header")
    assert lexical.split_identifier("parse_http_header") == ("parse", "http", "header")
    assert lexical.split_identifier("HTTPServer") == ("http", "server")
    assert lexical.split_identifier("utf8_decode") == ("utf", "8", "decode")
    assert lexical.split_identifier("plain") == ()


def test_subtokens_and_query_terms() -> None:
    assert lexical.subtokens("x = getUserName(a_b)") == "get user name a b"
    assert lexical.query_terms("getUserName user") == ["getusername", "get", "user", "name"]
    # English stop words are left out of a query, unless nothing else is left.
    assert lexical.query_terms("Return the number of lines in a file") == [
        "return", "number", "lines", "file"]
    assert lexical.query_terms("is not") == ["is", "not"]


def test_fts_query_quotes_terms_so_operators_cannot_be_injected() -> None:
    assert lexical.fts_query(['a"b', "NEAR"]) == '"a""b" OR "NEAR"'
