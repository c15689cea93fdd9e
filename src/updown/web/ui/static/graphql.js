// POST /graphql as the signed-in user (or a guest where a page allows it), and the product
// catalogue's operations. A GraphQL error arrives in a 200 answer: it becomes an ApiError whose
// `code` is the error's `extensions.code` (AccessDenied, NoSuchKey, InvalidRequest, ...).
import * as api from "./api.js";
import { ApiError } from "./http.js";

const PRODUCT = "id name description price isLive imgKey imgUrl";
const STATUS_OF_CODE = { NotAuthorized: 401, AccessDenied: 403, NotFound: 404, NoSuchKey: 404, InternalError: 500 };

/** Runs one operation; resolves to its `data`, rejects with ApiError for the first error. */
export async function run(document, variables = {}, { guest = false } = {}) {
  const answer = await api.post("/graphql", { query: document, variables }, { guest });
  const errors = (answer && answer.errors) || [];
  if (errors.length) {
    const code = (errors[0].extensions && errors[0].extensions.code) || "InvalidRequest";
    throw new ApiError(STATUS_OF_CODE[code] || 400, code, errors[0].message || "The request was refused.");
  }
  return (answer && answer.data) || {};
}

/** Live products (and, with `includeDrafts`, drafts too: admins only). */
export async function listProducts({ includeDrafts = false, guest = false } = {}) {
  const data = await run(
    `query ListProducts($drafts: Boolean) { listProducts(includeDrafts: $drafts) { ${PRODUCT} } }`,
    { drafts: includeDrafts },
    { guest },
  );
  return (data.listProducts || []).filter(Boolean);
}

export async function createProduct(input) {
  const data = await run(`mutation CreateProduct($input: ProductInput!) { createProduct(input: $input) { ${PRODUCT} } }`, {
    input,
  });
  return data.createProduct;
}

export async function updateProduct(id, input) {
  const data = await run(
    `mutation UpdateProduct($id: ID!, $input: ProductInput!) { updateProduct(id: $id, input: $input) { ${PRODUCT} } }`,
    { id, input },
  );
  return data.updateProduct;
}

export async function deleteProduct(id) {
  const data = await run("mutation DeleteProduct($id: ID!) { deleteProduct(id: $id) }", { id });
  return data.deleteProduct;
}
