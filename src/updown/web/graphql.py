"""``POST /graphql``: the product catalogue's GraphQL surface (Strawberry). Types and wiring only:
the rules live in ``apps/products.py``.

The schema is the contract's (docs/api.md → Products). Every caller is a guest or a user (a bearer
token; without one the answer is HTTP 401 before any GraphQL runs). An error of ours reaches the
client as a GraphQL error whose ``extensions.code`` is its API code (``AccessDenied``,
``NoSuchKey``, ...); any other failure is masked as ``InternalError``. Documents are limited in tokens,
depth and aliases before they run; introspection can be turned off (``apps.graphql_introspection``).
Queries go by POST only (no GET, no multipart: nothing a cross-site form can send), and no IDE is served.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, TypeVar

import anyio.to_thread
import strawberry
from fastapi import Depends
from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    SchemaExtension,
)
from strawberry.fastapi import GraphQLRouter
from strawberry.types import ExecutionContext, Info

from updown.apps.products import ProductData, ProductInfo
from updown.auth.principal import Principal
from updown.errors import ServerError, UpdownError
from updown.runtime import Runtime
from updown.settings import Settings
from updown.web.deps import RuntimeDep, requires
from updown.web.routes.events import cdn_url

log = logging.getLogger("updown.web")
T = TypeVar("T")


@strawberry.type
class Product:
    id: strawberry.ID
    name: str | None
    description: str | None
    price: float | None
    is_live: bool | None
    img_key: str | None
    img_url: str | None


@strawberry.input
class ProductInput:
    # UNSET, not None: the schema shows the contract's optional fields without a default.
    id: strawberry.ID | None = strawberry.UNSET
    name: str
    description: str | None = strawberry.UNSET
    img_key: str
    price: float
    is_live: bool | None = strawberry.UNSET


def _context(info: Info) -> tuple[Runtime, Principal]:
    context: dict[str, Any] = info.context
    return context["runtime"], context["principal"]


def _product(settings: Settings, p: ProductInfo) -> Product:
    return Product(
        id=strawberry.ID(p.id),
        name=p.name,
        description=p.description,
        price=p.price,
        is_live=p.is_live,
        img_key=p.img_key,
        img_url=cdn_url(settings, p.img_key),
    )


def _data(value: ProductInput) -> ProductData:
    return ProductData(
        name=value.name,
        img_key=value.img_key,
        price=value.price,
        description=_given(value.description),
        is_live=_given(value.is_live),
        id=None if not value.id else str(value.id),
    )


def _given(value: T | None) -> T | None:
    return None if value is strawberry.UNSET else value


@strawberry.type
class Query:
    @strawberry.field
    async def get_product(self, info: Info, id: strawberry.ID) -> Product | None:
        runtime, principal = _context(info)
        found = await anyio.to_thread.run_sync(runtime.products.get, principal, str(id))
        return None if found is None else _product(runtime.settings, found)

    @strawberry.field
    async def list_products(self, info: Info, include_drafts: bool | None = False) -> list[Product | None] | None:
        runtime, principal = _context(info)
        found = await anyio.to_thread.run_sync(
            lambda: runtime.products.all(principal, include_drafts=bool(include_drafts))
        )
        return [_product(runtime.settings, p) for p in found]


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_product(self, info: Info, input: ProductInput) -> Product | None:
        runtime, principal = _context(info)
        made = await anyio.to_thread.run_sync(runtime.products.create, principal, _data(input))
        return _product(runtime.settings, made)

    @strawberry.mutation
    async def update_product(self, info: Info, id: strawberry.ID, input: ProductInput) -> Product | None:
        runtime, principal = _context(info)
        changed = await anyio.to_thread.run_sync(runtime.products.update, principal, str(id), _data(input))
        return _product(runtime.settings, changed)

    @strawberry.mutation
    async def delete_product(self, info: Info, id: strawberry.ID) -> strawberry.ID | None:
        runtime, principal = _context(info)
        gone = await anyio.to_thread.run_sync(runtime.products.delete, principal, str(id))
        return strawberry.ID(gone)


class ErrorCodes(SchemaExtension):
    """Gives every error an ``extensions.code``: ours keep theirs, validation errors (depth, unknown
    fields...) get ``InvalidRequest``, anything unexpected is masked as ``InternalError``."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [_coded(e) for e in errors]


def _coded(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        extensions = dict(error.extensions or {})
        extensions.setdefault("code", "InvalidRequest")
        return GraphQLError(
            error.message, error.nodes, error.source, error.positions, error.path, extensions=extensions
        )
    if isinstance(original, UpdownError) and not isinstance(original, ServerError):
        message, code = original.detail, original.code
    else:
        message, code = ServerError.title, ServerError.code
    return GraphQLError(message, error.nodes, error.source, error.positions, error.path, extensions={"code": code})


def document_limits(max_depth: int, max_aliases: int) -> type[ASTValidationRule]:
    """A validation rule refusing operations nested deeper than ``max_depth`` fields, or holding
    more than ``max_aliases`` aliased fields once fragments are spread.

    Unlike Strawberry's QueryDepthLimiter it counts introspection fields too: in a schema as flat
    as this one, the recursive introspection types (``__Type.fields.type.fields…``) are where a
    deep query would do its harm. Unlike its MaxAliasesLimiter, each fragment is measured once:
    a chain of fragments each spreading the next twice costs a visit per fragment, not 2**n.
    """

    class DocumentLimits(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fragments: dict[str, tuple[int, int]] = {}

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: object) -> None:
            depth, aliases = self.measure(node.selection_set, frozenset())
            if depth > max_depth:
                self.report_error(
                    GraphQLError(f"the query is {depth} fields deep; at most {max_depth} are allowed", node)
                )
            if aliases > max_aliases:
                self.report_error(
                    GraphQLError(f"the query has {aliases} aliases; at most {max_aliases} are allowed", node)
                )

        def measure(self, selections: SelectionSetNode | None, spreading: frozenset[str]) -> tuple[int, int]:
            """(depth, aliases) of a selection set, fragments spread."""
            deepest = aliases = 0
            for sel in selections.selections if selections is not None else ():
                if isinstance(sel, FieldNode):
                    depth, inner = self.measure(sel.selection_set, spreading)
                    deepest, aliases = max(deepest, depth + 1), aliases + inner + (sel.alias is not None)
                elif isinstance(sel, InlineFragmentNode):
                    depth, inner = self.measure(sel.selection_set, spreading)
                    deepest, aliases = max(deepest, depth), aliases + inner
                elif isinstance(sel, FragmentSpreadNode):
                    depth, inner = self.fragment(sel.name.value, spreading)
                    deepest, aliases = max(deepest, depth), aliases + inner
            return deepest, aliases

        def fragment(self, name: str, spreading: frozenset[str]) -> tuple[int, int]:
            if name not in self.fragments:
                found = self.context.get_fragment(name)
                if found is None or name in spreading:  # unknown or a cycle: other rules report it
                    return 0, 0
                self.fragments[name] = self.measure(found.selection_set, spreading | {name})
            return self.fragments[name]

    return DocumentLimits


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # A refusal of ours is an answer, not a fault: only unexpected failures are logged.
        for error in errors:
            original = error.original_error
            if original is not None and not isinstance(original, GraphQLError | UpdownError):
                log.error("graphql: %s", error.message, exc_info=original)
            elif isinstance(original, ServerError):
                log.error("graphql: %s", original.detail, exc_info=original)


def schema(settings: Settings) -> strawberry.Schema:
    """The catalogue's schema with this configuration's limits."""
    a = settings.apps
    limits = document_limits(a.graphql_max_depth, a.graphql_max_aliases)
    # Factories, not instances: Strawberry makes fresh extensions for every request. The token
    # limit applies while parsing, before any rule walks the document.
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=a.graphql_max_tokens),
        lambda: AddValidationRules([limits]),
        ErrorCodes,
    ]
    if not a.graphql_introspection:
        extensions.append(DisableIntrospection)
    return _Schema(query=Query, mutation=Mutation, extensions=extensions)


async def _context_getter(runtime: RuntimeDep, principal: Principal = Depends(requires("graphql"))) -> dict[str, Any]:
    return {"runtime": runtime, "principal": principal}


def router(settings: Settings) -> GraphQLRouter[Any, None]:
    """The ``/graphql`` router: POST only, no IDE, a guest or user bearer token required."""
    return GraphQLRouter(
        schema(settings),
        graphql_ide=None,
        allow_queries_via_get=False,
        context_getter=_context_getter,
        include_in_schema=True,
        tags=["graphql"],
    )
