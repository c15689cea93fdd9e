// The admin page at /admin, for the admin group: the shop's products (GraphQL: list with drafts,
// create, update, delete; the image uploaded here to public/ with the upload widget, whose key
// fills imgKey once it is ready), events (POST/GET /events) and their attendees (by User ID).
// Others see "admins only"; the API refuses them anyway, whatever this page shows.
import * as api from "./api.js";
import { formatDate, formatPrice, h } from "./dom.js";
import { apiError, busy, clearErrors, fieldError, notice, requireFields } from "./forms.js";
import * as graphql from "./graphql.js";
import { startShell } from "./shell.js";
import { mountUploader } from "./uploader.js";

// API codes and the first word of a refusal ("price must be ...") → the field they are about.
const PRODUCT_FIELDS = { NoSuchKey: "imgKey", InvalidKey: "imgKey", InvalidContentType: "imgKey" };
const FIELD_WORD = /^(name|price|description|imgKey|startsAt|endsAt|userSub)\b/;

const stateLine = document.querySelector("[data-admin-state]");
const adminsOnly = document.querySelector("[data-admins-only]");
const body = document.querySelector("[data-admin-body]");

const productForm = document.querySelector("[data-product-form]");
const productTitle = productForm.querySelector("[data-product-form-title]");
const productSubmit = productForm.querySelector("[data-product-submit]");
const productCancel = productForm.querySelector("[data-product-cancel]");
const preview = productForm.querySelector("[data-product-preview]");
const productList = document.querySelector("[data-admin-products]");
const productsState = document.querySelector("[data-products-state]");
const confirmDialog = document.querySelector("[data-confirm-dialog]");

const eventForm = document.querySelector("[data-event-form]");
const eventList = document.querySelector("[data-admin-events]");
const eventsState = document.querySelector("[data-events-state]");

const attendeeForm = document.querySelector("[data-attendee-form]");
const eventSelect = attendeeForm.elements.eventId;
const attendeeList = document.querySelector("[data-attendees]");
const attendeesState = document.querySelector("[data-attendees-state]");
const attendeeListTitle = document.querySelector("[data-attendee-list-title]");

let editing = null;
let events = [];
let productUploader = null;

async function start() {
  let me;
  try {
    me = await api.get("/auth/me");
  } catch (error) {
    say(stateLine, `Could not check your groups: ${error.detail || error.message}`, { error: true });
    return;
  }
  say(stateLine, "");
  if (!(me.groups || []).includes("admin")) {
    adminsOnly.hidden = false;
    return;
  }
  body.hidden = false;
  mountProducts();
  mountEvents();
  mountAttendees();
  await Promise.all([loadProducts(), loadEvents()]);
}

// --- products ------------------------------------------------------------------------------

function mountProducts() {
  const uploaderRoot = document.getElementById("product-uploader");
  productUploader = mountUploader(uploaderRoot);
  uploaderRoot.addEventListener("upload:ready", (event) => {
    const record = event.detail;
    productForm.elements.imgKey.value = record.key;
    clearFieldError(productForm, "imgKey");
    showPreview(record.key, record.publicUrl);
  });
  productForm.elements.imgKey.addEventListener("change", () => showPreview(productForm.elements.imgKey.value.trim()));
  productCancel.addEventListener("click", () => resetProductForm());
  productForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(productForm);
    notice(productForm, "");
    const required = { name: "Give the product a name.", price: "Enter the price.", imgKey: "Upload an image, or enter the key of one." };
    if (!requireFields(productForm, required)) return;
    const values = productForm.elements;
    const price = Number(values.price.value.trim().replace(",", "."));
    if (!Number.isFinite(price) || price < 0) return fieldError(productForm, "price", "Enter the price as a number from 0 up, e.g. 9.50.");
    const input = {
      name: values.name.value.trim(),
      description: values.description.value.trim(),
      price,
      imgKey: values.imgKey.value.trim(),
      isLive: values.isLive.checked,
    };
    busy(productForm, async () => {
      try {
        const saved = editing ? await graphql.updateProduct(editing.id, input) : await graphql.createProduct(input);
        const verb = editing ? "Saved" : "Created";
        resetProductForm();
        notice(productForm, `${verb} “${saved.name}”${saved.isLive ? "" : " (a draft)"}.`);
        await loadProducts();
      } catch (error) {
        showError(productForm, error, PRODUCT_FIELDS);
      }
    });
  });
}

function showPreview(key, url) {
  const src = url || cdnUrl(key);
  preview.hidden = !src;
  if (src) preview.src = src;
  else preview.removeAttribute("src");
}

/** The /cdn URL of a key under public/, or "" for any other key. */
function cdnUrl(key) {
  if (!key || !key.startsWith("public/")) return "";
  return `/cdn/${key.slice("public/".length).split("/").map(encodeURIComponent).join("/")}`;
}

function resetProductForm() {
  editing = null;
  productForm.reset();
  clearErrors(productForm);
  notice(productForm, "");
  showPreview("");
  productUploader?.clearFinished();
  productTitle.textContent = "New product";
  productSubmit.textContent = "Create product";
  productCancel.hidden = true;
}

function editProduct(product) {
  resetProductForm();
  editing = product;
  const values = productForm.elements;
  values.name.value = product.name || "";
  values.price.value = String(product.price ?? "");
  values.description.value = product.description || "";
  values.imgKey.value = product.imgKey || "";
  values.isLive.checked = Boolean(product.isLive);
  showPreview(product.imgKey, product.imgUrl);
  productTitle.textContent = `Edit “${product.name}”`;
  productSubmit.textContent = "Save changes";
  productCancel.hidden = false;
  values.name.focus();
}

async function loadProducts() {
  say(productsState, "Loading products…");
  try {
    const products = await graphql.listProducts({ includeDrafts: true });
    productList.replaceChildren(...products.map(productRow));
    say(productsState, products.length ? "" : "No products yet: create the first one above.");
  } catch (error) {
    say(productsState, `Could not load the products: ${error.detail || error.message}`, { error: true, retry: loadProducts });
  }
}

function productRow(product) {
  const status = h("p", { class: "card-status", role: "status" });
  return h(
    "li",
    { class: "admin-item", dataset: { productId: product.id } },
    h("img", { class: "admin-thumb", src: product.imgUrl, alt: "", loading: "lazy" }),
    h(
      "div",
      { class: "admin-item-body" },
      h("span", { class: "file-name" }, product.name),
      h("span", { class: "file-facts" }, formatPrice(product.price)),
      h("span", { class: `badge ${product.isLive ? "level-public" : ""}` }, product.isLive ? "Live" : "Draft"),
    ),
    h(
      "div",
      { class: "card-actions" },
      h("button", { type: "button", class: "secondary small", onclick: () => editProduct(product), "aria-label": `Edit ${product.name}` }, "Edit"),
      h("button", { type: "button", class: "secondary small", onclick: () => removeProduct(product, status), "aria-label": `Delete ${product.name}` }, "Delete"),
    ),
    status,
  );
}

function removeProduct(product, status) {
  confirmDialog.querySelector("[data-confirm-text]").textContent = `“${product.name}” leaves the shop for good (its image stays in storage).`;
  confirmDialog.returnValue = "";
  confirmDialog.showModal();
  confirmDialog.addEventListener(
    "close",
    async () => {
      if (confirmDialog.returnValue !== "delete") return;
      try {
        await graphql.deleteProduct(product.id);
        if (editing && editing.id === product.id) resetProductForm();
        await loadProducts();
        say(productsState, `Deleted “${product.name}”.`);
      } catch (error) {
        status.textContent = error.detail || error.message;
        status.classList.add("error");
      }
    },
    { once: true },
  );
}

// --- events --------------------------------------------------------------------------------

function mountEvents() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const hint = document.getElementById("event-startsAt-hint");
  if (zone && hint) hint.textContent = `Date and time, in your time zone (${zone}).`;
  eventForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(eventForm);
    notice(eventForm, "");
    if (!requireFields(eventForm, { name: "Give the event a name.", startsAt: "Enter when the event starts." })) return;
    const values = eventForm.elements;
    const startsAt = isoOf(values.startsAt.value);
    if (!startsAt) return fieldError(eventForm, "startsAt", "Enter a date and time, e.g. 2026-06-01 18:00.");
    const body = { name: values.name.value.trim(), startsAt };
    if (values.endsAt.value) {
      const endsAt = isoOf(values.endsAt.value);
      if (!endsAt) return fieldError(eventForm, "endsAt", "Enter a date and time, or leave it empty.");
      if (endsAt < startsAt) return fieldError(eventForm, "endsAt", "The event cannot end before it starts.");
      body.endsAt = endsAt;
    }
    busy(eventForm, async () => {
      try {
        const made = await api.post("/events", body);
        eventForm.reset();
        notice(eventForm, `Created “${made.name}”. Register its attendees below.`);
        await loadEvents(made.id);
      } catch (error) {
        showError(eventForm, error);
      }
    });
  });
}

/** A datetime-local value (the reader's local time) as an ISO 8601 instant, or "" if invalid. */
function isoOf(local) {
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

async function loadEvents(select = eventSelect.value) {
  say(eventsState, "Loading events…");
  try {
    events = await api.get("/events");
  } catch (error) {
    say(eventsState, `Could not load the events: ${error.detail || error.message}`, { error: true, retry: () => loadEvents() });
    return;
  }
  eventList.replaceChildren(...events.map(eventRow));
  say(eventsState, events.length ? "" : "No events yet: create the first one above.");
  eventSelect.replaceChildren(
    h("option", { value: "" }, events.length ? "Choose an event" : "No events yet"),
    ...events.map((e) => h("option", { value: e.id }, `${e.name} (${formatDate(e.startsAt)})`)),
  );
  eventSelect.value = events.some((e) => e.id === select) ? select : "";
  await loadAttendees();
}

function eventRow(event) {
  return h(
    "li",
    { class: "admin-item", dataset: { eventId: event.id } },
    h(
      "div",
      { class: "admin-item-body" },
      h("a", { class: "file-name", href: `/events/${encodeURIComponent(event.id)}` }, event.name),
      h("span", { class: "file-facts" }, event.endsAt ? `${formatDate(event.startsAt)} – ${formatDate(event.endsAt)}` : formatDate(event.startsAt)),
    ),
    h(
      "div",
      { class: "card-actions" },
      h(
        "button",
        {
          type: "button",
          class: "secondary small",
          "aria-label": `Attendees of ${event.name}`,
          onclick: async () => {
            eventSelect.value = event.id;
            await loadAttendees();
            attendeeForm.elements.userSub.focus();
          },
        },
        "Attendees",
      ),
    ),
  );
}

// --- attendees -----------------------------------------------------------------------------

function mountAttendees() {
  eventSelect.addEventListener("change", () => loadAttendees());
  attendeeForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(attendeeForm);
    notice(attendeeForm, "");
    if (!requireFields(attendeeForm, { eventId: "Choose the event.", userSub: "Enter the attendee's User ID." })) return;
    const eventId = eventSelect.value;
    const userSub = attendeeForm.elements.userSub.value.trim();
    busy(attendeeForm, async () => {
      try {
        const added = await api.post(`/events/${encodeURIComponent(eventId)}/attendees`, { userSub });
        attendeeForm.elements.userSub.value = "";
        notice(attendeeForm, `Registered ${added.email || added.userSub}.`);
        await loadAttendees();
      } catch (error) {
        showError(attendeeForm, error, { NotFound: "userSub" });
      }
    });
  });
}

async function loadAttendees() {
  const event = events.find((e) => e.id === eventSelect.value);
  attendeeList.replaceChildren();
  attendeeListTitle.textContent = event ? `Registered for ${event.name}` : "Registered attendees";
  if (!event) {
    say(attendeesState, "Choose an event to see and register its attendees.");
    return;
  }
  say(attendeesState, "Loading attendees…");
  try {
    const attendees = await api.get(`/events/${encodeURIComponent(event.id)}/attendees`);
    if (eventSelect.value !== event.id) return;
    attendeeList.replaceChildren(
      ...attendees.map((a) =>
        h(
          "li",
          { class: "admin-item", dataset: { userSub: a.userSub } },
          h(
            "div",
            { class: "admin-item-body" },
            h("span", { class: "file-name" }, a.email || "(no email)"),
            h("span", { class: "file-facts mono" }, a.userSub),
            h("span", { class: "file-facts" }, `Registered ${formatDate(a.addedAt)}`),
          ),
        ),
      ),
    );
    say(attendeesState, attendees.length ? "" : "Nobody is registered yet.");
  } catch (error) {
    say(attendeesState, `Could not load the attendees: ${error.detail || error.message}`, { error: true, retry: () => loadAttendees() });
  }
}

// --- shared --------------------------------------------------------------------------------

/** An API refusal next to the field it names ("price must be ..."), else as `apiError` places it. */
function showError(form, error, fieldMap = {}) {
  const detail = error.detail || error.message || "";
  const word = FIELD_WORD.exec(detail);
  const name = fieldMap[error.code] || (word && word[1]);
  if (name && form.elements.namedItem(name)) return fieldError(form, name, detail);
  apiError(form, error, fieldMap);
}

function clearFieldError(form, name) {
  const error = form.querySelector(`[data-error-for="${name}"]`);
  if (error) {
    error.hidden = true;
    error.textContent = "";
  }
  form.elements.namedItem(name)?.removeAttribute("aria-invalid");
}

function say(line, message, { error = false, retry = null } = {}) {
  line.replaceChildren(message);
  line.classList.toggle("error", error);
  line.setAttribute("role", error ? "alert" : "status");
  if (retry) line.append(" ", h("button", { type: "button", class: "secondary small", onclick: () => retry() }, "Try again"));
}

if (startShell({ requireUser: true })) start();
