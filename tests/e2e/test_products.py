"""Products e2e over POST /graphql: admins manage the catalogue, guests and users read it, nobody
without a token gets in; drafts stay invisible to all but admins; imgKey must name a ready image
under public/, and imgUrl serves it from /cdn; depth, aliases and introspection are limited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from tests.e2e.apps_helpers import admin
from tests.e2e.files_helpers import Caller, guest, initiate, png, upload, user
from tests.e2e.userpool_helpers import assert_problem
from tests.support.processes import Server, clean_env

FIELDS = "id name description price isLive imgKey imgUrl"
CREATE = f"mutation($input: ProductInput!) {{ createProduct(input: $input) {{ {FIELDS} }} }}"
UPDATE = f"mutation($id: ID!, $input: ProductInput!) {{ updateProduct(id: $id, input: $input) {{ {FIELDS} }} }}"
DELETE = "mutation($id: ID!) { deleteProduct(id: $id) }"
GET = f"query($id: ID!) {{ getProduct(id: $id) {{ {FIELDS} }} }}"
LIST = f"query($drafts: Boolean) {{ listProducts(includeDrafts: $drafts) {{ {FIELDS} }} }}"


@pytest.fixture(scope="module")
def boss(server: Server) -> Caller:
    with httpx.Client(base_url=server.url) as c:
        return admin(c, server)


@pytest.fixture(scope="module")
def shopper(server: Server) -> Caller:
    with httpx.Client(base_url=server.url) as c:
        return user(c, server)


@pytest.fixture(scope="module")
def image(server: Server, boss: Caller) -> dict[str, Any]:
    """A ready image under public/."""
    with httpx.Client(base_url=server.url, timeout=30) as c:
        return upload(c, boss, png(40, 30, seed=4), accessLevel="public", name="shop/mug.png")


def gql(client: httpx.Client, caller: Caller | None, query: str, **variables: Any) -> dict[str, Any]:
    headers = caller.headers if caller else {}
    r = client.post("/graphql", headers=headers, json={"query": query, "variables": variables})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


def product_input(image_key: str, **extra: Any) -> dict[str, Any]:
    return {"name": "Mug", "description": "Holds coffee", "imgKey": image_key, "price": 9.5, **extra}


def created(client: httpx.Client, boss: Caller, image_key: str, **extra: Any) -> dict[str, Any]:
    body = gql(client, boss, CREATE, input=product_input(image_key, **extra))
    assert "errors" not in body, body
    product: dict[str, Any] = body["data"]["createProduct"]
    return product


# --- who may call at all ----------------------------------------------------------------------


def test_graphql_without_a_token_is_401(client: httpx.Client) -> None:
    assert_problem(client.post("/graphql", json={"query": "{ listProducts { id } }"}), 401, "NotAuthorized")
    bad = client.post("/graphql", headers={"Authorization": "Bearer nope"}, json={"query": "{ __typename }"})
    assert_problem(bad, 401, "NotAuthorized")


def test_graphql_guest_and_user_tokens_both_read(client: httpx.Client, shopper: Caller) -> None:
    for caller in (guest(client), shopper):
        body = gql(client, caller, "{ listProducts { id } }")
        assert "errors" not in body, body
        assert isinstance(body["data"]["listProducts"], list)


def test_graphql_is_post_only(client: httpx.Client, shopper: Caller) -> None:
    r = client.get("/graphql", params={"query": "{ __typename }"}, headers=shopper.headers)
    assert r.status_code == 400, r.text
    assert "__typename" not in r.text
    form = client.post("/graphql", headers=shopper.headers, data={"query": "{ __typename }"})
    assert form.status_code in (400, 415), form.text


# --- mutations: admins only --------------------------------------------------------------------


def test_mutations_refused_for_users_and_guests(
    client: httpx.Client, boss: Caller, shopper: Caller, image: dict[str, Any]
) -> None:
    existing = created(client, boss, image["key"], isLive=True)
    for caller in (shopper, guest(client)):
        made = gql(client, caller, CREATE, input=product_input(image["key"]))
        assert made["data"] == {"createProduct": None}
        assert codes(made) == ["AccessDenied"]
        changed = gql(client, caller, UPDATE, id=existing["id"], input=product_input(image["key"], name="Hacked"))
        assert codes(changed) == ["AccessDenied"]
        gone = gql(client, caller, DELETE, id=existing["id"])
        assert codes(gone) == ["AccessDenied"]
    still = gql(client, shopper, GET, id=existing["id"])["data"]["getProduct"]
    assert still["name"] == "Mug"


def test_admin_creates_updates_and_deletes(
    client: httpx.Client, server: Server, boss: Caller, shopper: Caller, image: dict[str, Any]
) -> None:
    product = created(client, boss, image["key"], isLive=True, id="mug-1")
    assert product == {
        "id": "mug-1",
        "name": "Mug",
        "description": "Holds coffee",
        "price": 9.5,
        "isLive": True,
        "imgKey": image["key"],
        "imgUrl": f"{server.url}/cdn/shop/mug.png",
    }
    served = httpx.get(product["imgUrl"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert codes(gql(client, boss, CREATE, input=product_input(image["key"], id="mug-1"))) == ["Conflict"]
    changed = gql(client, boss, UPDATE, id="mug-1", input=product_input(image["key"], name="Big mug", price=12.0))
    assert "errors" not in changed, changed
    assert changed["data"]["updateProduct"]["name"] == "Big mug"
    assert changed["data"]["updateProduct"]["price"] == 12.0
    assert changed["data"]["updateProduct"]["isLive"] is True  # left out: kept
    assert gql(client, shopper, GET, id="mug-1")["data"]["getProduct"]["name"] == "Big mug"
    deleted = gql(client, boss, DELETE, id="mug-1")
    assert deleted == {"data": {"deleteProduct": "mug-1"}}
    assert gql(client, shopper, GET, id="mug-1")["data"] == {"getProduct": None}
    assert codes(gql(client, boss, DELETE, id="mug-1")) == ["NotFound"]
    missing = gql(client, boss, UPDATE, id="mug-1", input=product_input(image["key"]))
    assert codes(missing) == ["NotFound"]


@pytest.mark.parametrize(("price", "name"), [(-1.0, "Mug"), (1.0, ""), (1.0, "x" * 201)])
def test_create_refuses_bad_values(
    client: httpx.Client, boss: Caller, image: dict[str, Any], price: float, name: str
) -> None:
    body = gql(client, boss, CREATE, input=product_input(image["key"], price=price, name=name))
    assert codes(body) == ["InvalidRequest"]


# --- imgKey ------------------------------------------------------------------------------------


def test_product_image_cannot_be_replaced_by_another_user(
    client: httpx.Client, shopper: Caller, image: dict[str, Any]
) -> None:
    replace = {"accessLevel": "public", "name": "shop/mug.png", "contentType": "image/png", "size": 10}
    assert_problem(client.post("/storage/uploads", headers=shopper.headers, json=replace), 403, "AccessDenied")
    assert_problem(client.delete(f"/storage/files/{image['key']}", headers=shopper.headers), 403, "AccessDenied")


def test_img_key_must_name_a_ready_public_image(client: httpx.Client, boss: Caller) -> None:
    text = upload(client, boss, b"just text\n", content_type="text/plain", accessLevel="public", name="shop/a.txt")
    private = upload(client, boss, png(seed=6), accessLevel="private", name="mine.png")
    pending = initiate(client, boss, accessLevel="public", name="shop/later.png", contentType="image/png", size=10)
    assert pending.status_code == 201, pending.text
    cases = {
        "public/shop/no-such.png": "NoSuchKey",
        pending.json()["key"]: "NoSuchKey",  # initiated, never sent: not ready
        text["key"]: "InvalidContentType",
        private["key"]: "InvalidKey",
        "public/../private/x.png": "InvalidKey",
    }
    for key, code in cases.items():
        body = gql(client, boss, CREATE, input=product_input(key))
        assert body["data"] == {"createProduct": None}, key
        assert codes(body) == [code], (key, body)
        assert "Traceback" not in str(body)


# --- drafts ------------------------------------------------------------------------------------


def test_drafts_invisible_to_guests_and_users(
    client: httpx.Client, boss: Caller, shopper: Caller, image: dict[str, Any]
) -> None:
    draft = created(client, boss, image["key"], name="Secret mug")  # isLive left out: a draft
    assert draft["isLive"] is False
    live = created(client, boss, image["key"], name="Public mug", isLive=True)
    for caller in (guest(client), shopper):
        assert gql(client, caller, GET, id=draft["id"])["data"] == {"getProduct": None}
        for drafts in (False, True, None):
            ids = [p["id"] for p in gql(client, caller, LIST, drafts=drafts)["data"]["listProducts"]]
            assert live["id"] in ids
            assert draft["id"] not in ids
    assert gql(client, boss, GET, id=draft["id"])["data"]["getProduct"]["name"] == "Secret mug"
    assert draft["id"] not in [p["id"] for p in gql(client, boss, LIST, drafts=False)["data"]["listProducts"]]
    assert draft["id"] in [p["id"] for p in gql(client, boss, LIST, drafts=True)["data"]["listProducts"]]
    # Published: now everyone sees it.
    published = gql(client, boss, UPDATE, id=draft["id"], input=product_input(image["key"], isLive=True))
    assert published["data"]["updateProduct"]["isLive"] is True
    assert gql(client, shopper, GET, id=draft["id"])["data"]["getProduct"]["id"] == draft["id"]


# --- limits ------------------------------------------------------------------------------------


def test_depth_and_alias_limits(client: httpx.Client, shopper: Caller) -> None:
    # 17 fields deep through the recursive introspection types (the limit is 15).
    deep = "{ __schema { types " + "{ fields { type " * 7 + "{ name }" + " } }" * 7 + " } }"
    body = gql(client, shopper, deep)
    assert body.get("data") is None
    assert set(codes(body)) == {"InvalidRequest"}
    assert body["errors"][0]["message"] == "the query is 17 fields deep; at most 15 are allowed"
    many = "{ " + " ".join(f"a{i}: listProducts {{ id }}" for i in range(16)) + " }"
    body = gql(client, shopper, many)
    assert codes(body) == ["InvalidRequest"]
    assert "aliases" in body["errors"][0]["message"]
    huge = "{ " + " ".join(["__typename"] * 2100) + " }"
    assert codes(gql(client, shopper, huge)) == ["InvalidRequest"]


def test_introspection_on_by_default(client: httpx.Client, shopper: Caller) -> None:
    body = gql(client, shopper, get_introspection_query())
    assert "errors" not in body, body["errors"][:1]
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("closed")
    srv = Server(data_dir=root / "data", env=clean_env({"UPDOWN_APPS__GRAPHQL_INTROSPECTION": "false"})).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_introspection_can_be_turned_off(closed: Server) -> None:
    with httpx.Client(base_url=closed.url, timeout=30) as c:
        caller = guest(c)
        body = gql(c, caller, "{ __schema { queryType { name } } }")
        assert body.get("data") is None
        assert set(codes(body)) == {"InvalidRequest"}
        assert "introspection has been disabled" in body["errors"][0]["message"]
        typed = gql(c, caller, '{ __type(name: "Product") { name } }')
        assert typed.get("data") is None
        assert set(codes(typed)) == {"InvalidRequest"}
        # Queries still work.
        assert gql(c, caller, "{ listProducts { id } }")["data"] == {"listProducts": []}
