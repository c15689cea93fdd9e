"""Wildcard patterns (``*`` any run, ``?`` one character) compiled once, matched without backtracking.

A pattern is cut at its stars into segments. The first segment must sit at the start, the last at
the end, and each middle one is taken at its leftmost place after the previous one: leftmost is
always the best choice, so the matcher never goes back. The cost is O(len(subject) × len(pattern))
at worst, linear in the subject for a pattern fixed at load; no regular expression is involved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from updown.policy.variables import Literal, Text, Token, Variable, variables_in


class _QMark:
    """The ``?`` wildcard inside a segment template."""

    __slots__ = ()


QMARK: Final = _QMark()
NO_VALUES: Final[Mapping[str, str]] = {}


class _Fixed:
    """A segment holding ``?``: a fixed length with literal pieces at fixed offsets."""

    __slots__ = ("length", "pieces")

    def __init__(self, length: int, pieces: tuple[tuple[int, str], ...]) -> None:
        self.length = length
        self.pieces = pieces

    def at(self, subject: str, index: int) -> bool:
        if index + self.length > len(subject):
            return False
        return all(subject.startswith(lit, index + off) for off, lit in self.pieces)

    def find(self, subject: str, start: int, end: int) -> int:
        last = end - self.length
        if not self.pieces:
            return start if start <= last else -1
        # Jump between occurrences of the first literal piece with str.find, then check the rest.
        off0, lit0 = self.pieces[0]
        index = start
        while index <= last:
            hit = subject.find(lit0, index + off0, last + off0 + len(lit0))
            if hit < 0:
                return -1
            index = hit - off0
            if self.at(subject, index):
                return index
            index += 1
        return -1


_Segment = str | _Fixed
_Part = str | _QMark | Variable


def _seg_len(seg: _Segment) -> int:
    return len(seg) if isinstance(seg, str) else seg.length


def _seg_at(seg: _Segment, subject: str, index: int) -> bool:
    return subject.startswith(seg, index) if isinstance(seg, str) else seg.at(subject, index)


def _seg_find(seg: _Segment, subject: str, start: int, end: int) -> int:
    return subject.find(seg, start, end) if isinstance(seg, str) else seg.find(subject, start, end)


def _build_segment(parts: Sequence[str | _QMark]) -> _Segment:
    if not any(isinstance(p, _QMark) for p in parts):
        return "".join(p for p in parts if isinstance(p, str))
    pieces: list[tuple[int, str]] = []
    offset = 0
    run: list[str] = []
    for part in parts:
        if isinstance(part, str):
            run.append(part)
            continue
        if run:
            text = "".join(run)
            pieces.append((offset, text))
            offset += len(text)
            run = []
        offset += 1
    if run:
        text = "".join(run)
        pieces.append((offset, text))
        offset += len(text)
    return _Fixed(offset, tuple(p for p in pieces if p[1]))


def _merge_text(parts: Sequence[_Part]) -> tuple[_Part, ...]:
    """Join runs of literal characters so a template resolves in a few steps."""
    merged: list[_Part] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + part
        else:
            merged.append(part)
    return tuple(merged)


def match_segments(segments: Sequence[_Segment], subject: str) -> bool:
    """Whether ``subject`` matches the star-separated ``segments`` (see the module docstring)."""
    if len(segments) == 1:
        only = segments[0]
        return _seg_len(only) == len(subject) and _seg_at(only, subject, 0)
    first, last = segments[0], segments[-1]
    size = len(subject)
    head, tail = _seg_len(first), _seg_len(last)
    if head + tail > size:
        return False
    if not (_seg_at(first, subject, 0) and _seg_at(last, subject, size - tail)):
        return False
    pos, end = head, size - tail
    for seg in segments[1:-1]:
        found = _seg_find(seg, subject, pos, end)
        if found < 0:
            return False
        pos = found + _seg_len(seg)
    return True


_EXACT, _PREFIX, _SUFFIX, _GENERAL, _TEMPLATE, _TEXT_TEMPLATE = range(6)


class Glob:
    """A compiled wildcard pattern, possibly holding policy variables.

    ``fold_case`` lower-cases the pattern (for actions); the caller passes a lower-cased subject.
    """

    __slots__ = ("_kind", "_segments", "_templates", "_text", "source", "variables")

    def __init__(self, tokens: Sequence[Token], *, fold_case: bool = False) -> None:
        self.source = "".join(f"${{{t.name}}}" if isinstance(t, Variable) else t.text for t in tokens)
        self.variables = variables_in(tokens)
        templates: list[list[_Part]] = [[]]
        for token in tokens:
            if isinstance(token, Variable):
                templates[-1].append(token)
            elif isinstance(token, Literal):
                templates[-1].append(token.text)
            else:
                text = token.text.lower() if fold_case else token.text
                for char in text:
                    if char == "*":
                        templates.append([])
                    elif char == "?":
                        templates[-1].append(QMARK)
                    else:
                        templates[-1].append(char)
        self._templates = tuple(_merge_text(t) for t in templates)
        self._text = ""
        self._segments: tuple[_Segment, ...] = ()
        if self.variables:
            has_qmark = any(isinstance(p, _QMark) for t in self._templates for p in t)
            self._kind = _TEMPLATE if has_qmark else _TEXT_TEMPLATE
            return
        segments = tuple(_build_segment([p for p in t if not isinstance(p, Variable)]) for t in templates)
        self._segments = segments
        self._kind = _GENERAL
        if all(isinstance(s, str) for s in segments):
            if len(segments) == 1:
                self._kind, self._text = _EXACT, str(segments[0])
            elif len(segments) == 2 and segments[1] == "":
                self._kind, self._text = _PREFIX, str(segments[0])
            elif len(segments) == 2 and segments[0] == "":
                self._kind, self._text = _SUFFIX, str(segments[1])

    def match(self, subject: str, values: Mapping[str, str] = NO_VALUES) -> bool:
        """Whether ``subject`` matches; a variable missing from ``values`` means no match."""
        kind = self._kind
        if kind == _PREFIX:
            return subject.startswith(self._text)
        if kind == _EXACT:
            return subject == self._text
        if kind == _SUFFIX:
            return subject.endswith(self._text)
        if kind == _GENERAL:
            return match_segments(self._segments, subject)
        if kind == _TEXT_TEMPLATE:
            return self._match_text_template(subject, values)
        segments: list[_Segment] = []
        for template in self._templates:
            parts: list[str | _QMark] = []
            for part in template:
                if isinstance(part, Variable):
                    value = values.get(part.name)
                    if value is None:
                        return False
                    # Substituted values are literal: a "*" in an identity id never widens a match.
                    parts.append(value)
                else:
                    parts.append(part)
            segments.append(_build_segment(parts))
        return match_segments(segments, subject)

    def _match_text_template(self, subject: str, values: Mapping[str, str]) -> bool:
        # The common shape, "arn:...:files/private/${id}/*": variables and text, no "?".
        texts: list[str] = []
        for template in self._templates:
            parts: list[str] = []
            for part in template:
                if isinstance(part, Variable):
                    value = values.get(part.name)
                    if value is None:
                        return False
                    parts.append(value)
                else:
                    parts.append(str(part))
            texts.append("".join(parts))
        if len(texts) == 2 and not texts[1]:
            return subject.startswith(texts[0])
        return match_segments(texts, subject)

    def __repr__(self) -> str:
        return f"Glob({self.source!r})"


def compile_glob(pattern: str, *, fold_case: bool = False) -> Glob:
    """A Glob for plain text (no policy variables): ``*`` and ``?`` are the only specials."""
    return Glob((Text(pattern),), fold_case=fold_case)
