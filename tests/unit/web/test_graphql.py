"""The GraphQL schema is the contract's, word for word, and its limits refuse what they should
before anything runs (depth counted through fragments and introspection alike, cheaply)."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any

import pytest
from graphql import build_schema, get_introspection_query, lexicographic_sort_schema, print_schema

from updown import settings as settings_mod
from updown.web.graphql import schema

API_MD = Path(__file__).resolve().parents[3] / "docs" / "api.md"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def contract_sdl() -> str:
    text = API_MD.read_text(encoding="utf-8")
    block = text.split("## Products", 1)[1].split("```graphql", 1)[1].split("```", 1)[0]
    return re.sub(r"#.*", "", block)


def normalized(sdl: str) -> str:
    return print_schema(lexicographic_sort_schema(build_schema(sdl)))


def built(tmp_path: Path, **apps: Any) -> Any:
    settings = settings_mod.load(data_dir=tmp_path)
    return schema(dataclasses.replace(settings, apps=dataclasses.replace(settings.apps, **apps)))


def test_graphql_schema_is_the_contracts(tmp_path: Path) -> None:
    assert normalized(built(tmp_path).as_str()) == normalized(contract_sdl())


async def errors_of(s: Any, query: str) -> list[tuple[str, Any]]:
    result = await s.execute(query, context_value={})
    return [(e.message, (e.extensions or {}).get("code")) for e in result.errors or ()]


async def test_graphql_depth_limit_counts_introspection_and_fragments(tmp_path: Path) -> None:
    s = built(tmp_path, graphql_max_depth=4)
    deep = "{ __schema { types { fields { type { name } } } } }"
    assert await errors_of(s, deep) == [("the query is 5 fields deep; at most 4 are allowed", "InvalidRequest")]
    spread = "fragment F on __Type { fields { type { name } } } { __schema { types { ...F } } }"
    assert await errors_of(s, spread) == [("the query is 5 fields deep; at most 4 are allowed", "InvalidRequest")]
    assert await errors_of(s, "{ __schema { types { fields { name } } } }") == []


async def test_graphql_limits_of_many_spreads_are_cheap_and_count_every_spread(tmp_path: Path) -> None:
    # Each fragment spreads the next twice: 2**40 paths, measured with one visit per fragment.
    chain = [f"fragment F{i} on __Type {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40)]
    chain.append("fragment F40 on __Type { name }")
    query = " ".join(chain) + " { __schema { queryType { ...F0 } } }"
    s = built(tmp_path, graphql_max_depth=15, graphql_max_tokens=100_000)
    started = time.monotonic()
    assert await errors_of(s, query) == []
    aliased = query.replace("fragment F40 on __Type { name }", "fragment F40 on __Type { n: name }")
    assert await errors_of(s, aliased) == [(f"the query has {2**40} aliases; at most 15 are allowed", "InvalidRequest")]
    assert time.monotonic() - started < 2


async def test_graphql_standard_introspection_passes_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    assert await errors_of(built(tmp_path), get_introspection_query()) == []
    closed = await errors_of(built(tmp_path, graphql_introspection=False), get_introspection_query())
    assert closed
    assert all(code == "InvalidRequest" for _message, code in closed)


async def test_graphql_token_and_alias_limits(tmp_path: Path) -> None:
    s = built(tmp_path, graphql_max_aliases=2, graphql_max_tokens=40)
    aliases = "{ a: __typename b: __typename c: __typename }"
    assert await errors_of(s, aliases) == [("the query has 3 aliases; at most 2 are allowed", "InvalidRequest")]
    assert await errors_of(s, "{ a: __typename b: __typename }") == []
    long = "{ " + " ".join(["__typename"] * 50) + " }"
    assert [code for _m, code in await errors_of(s, long)] == ["InvalidRequest"]
