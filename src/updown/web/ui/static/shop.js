// The storefront at /shop: the live products (GraphQL listProducts) with their image from /cdn,
// name, price and description, for guests and signed-in users alike; loading, empty and error states.
import { formatPrice, h } from "./dom.js";
import * as graphql from "./graphql.js";
import * as session from "./session.js";
import { startShell } from "./shell.js";

startShell();
const list = document.querySelector("[data-products]");
const stateLine = document.querySelector("[data-shop-state]");
const guest = !session.current();

async function load() {
  say("Loading products…");
  list.setAttribute("aria-busy", "true");
  try {
    const products = await graphql.listProducts({ guest: true });
    list.replaceChildren(...products.map(card));
    const count = products.length;
    say(count ? `${count} product${count === 1 ? "" : "s"}.` : "No products in the shop yet. Come back soon.");
  } catch (error) {
    list.replaceChildren();
    say(`Could not load the products: ${error.detail || error.message}`, { error: true });
  } finally {
    list.removeAttribute("aria-busy");
  }
}

function card(product) {
  const image = h("img", {
    src: product.imgUrl,
    alt: product.name || "",
    loading: "lazy",
    decoding: "async",
    onerror: (event) => event.target.classList.add("broken"),
  });
  return h(
    "li",
    { class: "product-card", dataset: { productId: product.id } },
    h("div", { class: "product-image" }, image),
    h(
      "div",
      { class: "product-body" },
      h("h2", { class: "product-name" }, product.name || "Untitled"),
      h("p", { class: "product-price" }, formatPrice(product.price)),
      product.description ? h("p", { class: "product-description" }, product.description) : null,
    ),
  );
}

function say(message, { error = false } = {}) {
  stateLine.replaceChildren(message);
  stateLine.classList.toggle("error", error);
  stateLine.setAttribute("role", error ? "alert" : "status");
  if (error) stateLine.append(" ", h("button", { type: "button", class: "secondary small", onclick: () => load() }, "Try again"));
}

document.querySelector("[data-guest-note]").hidden = !guest;
load();
