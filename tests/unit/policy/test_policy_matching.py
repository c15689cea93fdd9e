"""Wildcard matching: a table of traps, a property check against a regex oracle, and linearity."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from updown.policy.matching import QMARK, Glob, _build_segment, _Fixed, compile_glob, match_segments
from updown.policy.variables import Literal, Text, Variable

CASES = [
    # pattern, subject, matches
    ("*", "", True),
    ("*", "anything/at/all", True),
    ("", "", True),
    ("", "a", False),
    ("abc", "abc", True),
    ("abc", "abcd", False),
    ("abc", "ab", False),
    ("ab*", "ab", True),
    ("ab*", "abxyz", True),
    ("ab*", "a", False),
    ("*yz", "xyz", True),
    ("*yz", "yzx", False),
    ("a*b*c", "abc", True),
    ("a*b*c", "axxbyyc", True),
    ("a*b*c", "acb", False),
    ("a*a", "a", False),
    ("a*a", "aa", True),
    ("a**b", "ab", True),
    ("?", "", False),
    ("?", "x", True),
    ("?", "xy", False),
    ("a?c", "abc", True),
    ("a?c", "ac", False),
    ("??", "ab", True),
    ("a*?", "a", False),
    ("a*?", "ab", True),
    ("*?b?*", "xxabcx", True),
    ("*?b?*", "b", False),
    ("*a?c*", "xxabxabcxx", True),
    ("*a?c*", "xxabxabdxx", False),
    ("x*??*y", "xaby", True),
    ("x*??*y", "xay", False),
    ("x*a?c*y", "xa?cy", True),
    ("pre*mid?le*suf", "pre--middle--suf", True),
    ("pre*mid?le*suf", "pre--midle--suf", False),
    ("*?", "", False),
    ("*??", "a", False),
    ("*?x?*", "aaxaa", True),
    ("*?x?*", "xa", False),
    ("a?b*", "a", False),
    ("*a?b", "b", False),
    ("arn:aws:s3:::files/public/*", "arn:aws:s3:::files/public/a.jpg", True),
    ("arn:aws:s3:::files/public/*", "arn:aws:s3:::files/PUBLIC/a.jpg", False),
]


@pytest.mark.parametrize(("pattern", "subject", "expected"), CASES)
def test_glob_table_pattern_matches_as_listed(pattern: str, subject: str, expected: bool) -> None:
    assert compile_glob(pattern).match(subject) is expected


def _oracle_regex(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def _oracle(pattern: str, subject: str) -> bool:
    return re.fullmatch(_oracle_regex(pattern), subject, flags=re.DOTALL) is not None


@given(st.text(alphabet="ab*?", max_size=10), st.text(alphabet="ab", max_size=12))
def test_glob_random_pattern_agrees_with_regex_oracle(pattern: str, subject: str) -> None:
    assert compile_glob(pattern).match(subject) is _oracle(pattern, subject)


@given(
    st.text(alphabet="ab*?", max_size=6),
    st.text(alphabet="ab*?", min_size=1, max_size=3),
    st.text(alphabet="ab*?", max_size=6),
    st.text(alphabet="ab*?", max_size=12),
)
def test_glob_variable_value_is_literal_even_with_wildcards(head: str, value: str, tail: str, subject: str) -> None:
    glob = Glob((Text(head), Variable("aws:username"), Text(tail)))
    # The oracle: the pattern's own wildcards as regex, the variable's value escaped.
    regex = _oracle_regex(head) + re.escape(value) + _oracle_regex(tail)
    expected = re.fullmatch(regex, subject, flags=re.DOTALL) is not None
    assert glob.match(subject, {"aws:username": value}) is expected


def test_glob_escaped_literal_star_is_not_a_wildcard() -> None:
    glob = Glob((Text("a"), Literal("*"), Text("b")))
    assert (glob.match("a*b"), glob.match("axb")) == (True, False)


def test_glob_missing_variable_value_does_not_match() -> None:
    glob = Glob((Text("private/"), Variable("identity-id"), Text("/*")))
    assert glob.match("private/x/a") is False
    assert glob.match("private/x/a", {"identity-id": "x"}) is True


def test_glob_variable_with_question_mark_template_matches() -> None:
    glob = Glob((Text("p/"), Variable("identity-id"), Text("/?.jpg")))
    values = {"identity-id": "me"}
    assert (glob.match("p/me/a.jpg", values), glob.match("p/me/ab.jpg", values)) == (True, False)
    assert glob.match("p/me/a.jpg") is False


def test_glob_variable_in_middle_segment_is_found_after_a_star() -> None:
    glob = Glob((Text("*/"), Variable("identity-id"), Text("/*")))
    assert glob.match("x/y/me/z", {"identity-id": "me"}) is True
    assert glob.match("x/y/mex/z", {"identity-id": "me"}) is False


def test_glob_fold_case_lowers_the_pattern() -> None:
    glob = compile_glob("S3:Get*", fold_case=True)
    assert (glob.match("s3:getobject"), glob.match("s3:putobject")) == (True, False)


def test_glob_repr_and_source_show_the_pattern() -> None:
    glob = Glob((Text("a/"), Variable("identity-id"), Text("/*")))
    assert glob.source == "a/${identity-id}/*"
    assert repr(glob) == "Glob('a/${identity-id}/*')"
    assert glob.variables == frozenset({"identity-id"})


def test_glob_many_stars_on_long_subject_finishes_without_backtracking() -> None:
    # A backtracking matcher needs about n**k steps here (k = 25 stars); ours scans once.
    pattern = "*a" * 25 + "b"
    subject = "a" * 200_000
    assert compile_glob(pattern).match(subject) is False
    assert compile_glob("*a?" * 25 + "b").match(subject) is False
    assert compile_glob(pattern).match(subject + "b") is True


def test_match_segments_single_segment_needs_equal_length() -> None:
    assert match_segments(["ab"], "ab") is True
    assert match_segments(["ab"], "abc") is False


def test_fixed_segment_past_the_end_does_not_match() -> None:
    segment = _build_segment(["a", QMARK])
    assert isinstance(segment, _Fixed)
    assert (segment.at("ab", 0), segment.at("a", 0), segment.at("xab", 2)) == (True, False, False)
