// The profile at /profile: the user's attributes (GET /auth/me), a display name, and a profile
// photo chosen from the user's images or uploaded here. The photo's key is saved in the `picture`
// attribute (PATCH /auth/me/attributes), so it is there on every device and after signing in again.
import * as api from "./api.js";
import { baseName, h } from "./dom.js";
import { apiError, clearErrors, notice } from "./forms.js";
import { startShell } from "./shell.js";
import * as storage from "./storage.js";
import { mountUploader } from "./uploader.js";

const stateLine = document.querySelector("[data-profile-state]");
const body = document.querySelector("[data-profile-body]");
const photo = document.querySelector("[data-profile-photo]");
const empty = document.querySelector("[data-avatar-empty]");
const removeButton = document.querySelector("[data-remove-photo]");
const nameForm = document.querySelector("[data-name-form]");
const choicesCard = document.querySelector("[data-photo-choices]");
const choices = document.querySelector("[data-choices]");
const choicesState = document.querySelector("[data-choices-state]");
const uploadCard = document.querySelector("[data-photo-upload]");
let me = null;

async function start() {
  try {
    me = await api.get("/auth/me");
  } catch (error) {
    stateLine.textContent = `Could not load your profile: ${error.detail || error.message}`;
    stateLine.classList.add("error");
    stateLine.setAttribute("role", "alert");
    return;
  }
  stateLine.textContent = "";
  body.hidden = false;
  choicesCard.hidden = false;
  uploadCard.hidden = false;
  renderAttributes();
  nameForm.elements.name.value = me.attributes?.name || "";
  await showPhoto(me.attributes?.picture);
  const uploaderRoot = document.getElementById("profile-uploader");
  mountUploader(uploaderRoot);
  uploaderRoot.addEventListener("upload:ready", (event) => usePhoto(event.detail.key));
  loadChoices();
}

function renderAttributes() {
  const rows = [
    ["Email", me.email],
    ["Email verified", me.emailVerified ? "yes" : "no"],
    ["Groups", (me.groups || []).join(", ") || "none"],
    ["User ID", me.sub],
    ["Identity ID", me.identityId],
  ];
  for (const [name, value] of Object.entries(me.attributes || {})) rows.push([name, value]);
  document
    .querySelector("[data-attributes]")
    .replaceChildren(...rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", { class: "mono-if-id" }, String(value))]));
}

/** Shows the photo whose key is `key` (its thumbnail), or the empty avatar. */
async function showPhoto(key) {
  removeButton.hidden = !key;
  if (!key) {
    photo.hidden = true;
    photo.removeAttribute("src");
    delete photo.dataset.key;
    empty.hidden = false;
    empty.textContent = "No photo yet";
    return;
  }
  try {
    const file = await storage.getFile(key);
    photo.src = await storage.thumbnailSrc(file);
    photo.dataset.key = key;
    photo.hidden = false;
    empty.hidden = true;
  } catch (error) {
    photo.hidden = true;
    empty.hidden = false;
    empty.textContent = `Your photo (${baseName(key)}) cannot be shown: ${error.detail || error.message}`;
  }
}

async function usePhoto(key) {
  try {
    me = await api.patch("/auth/me/attributes", { picture: key });
    renderAttributes();
    await showPhoto(key);
    choicesState.textContent = `Profile photo set to ${baseName(key)}.`;
    for (const button of choices.querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(button.dataset.choice === key));
    }
  } catch (error) {
    choicesState.textContent = `Could not set the photo: ${error.detail || error.message}`;
  }
}

/** The user's images at every level (their own public ones included), to pick from. */
async function loadChoices() {
  choicesState.textContent = "Loading your images…";
  const images = [];
  try {
    for (const level of ["protected", "private", "public"]) {
      const page = await storage.listFiles({ level, limit: 60 });
      images.push(
        ...page.items.filter(
          (f) => String(f.contentType).startsWith("image/") && (level !== "public" || f.identityId === me.identityId),
        ),
      );
    }
  } catch (error) {
    choicesState.textContent = `Could not list your images: ${error.detail || error.message}`;
    return;
  }
  const picture = me.attributes?.picture;
  const items = images.map((file) => {
    const img = h("img", { alt: "", dataset: { key: file.key } });
    const button = h(
      "button",
      {
        type: "button",
        class: "choice",
        "aria-pressed": String(file.key === picture),
        dataset: { choice: file.key },
        onclick: () => usePhoto(file.key),
      },
      img,
      h("span", { class: "file-name" }, `Use ${baseName(file.key)}`),
    );
    return { element: h("li", {}, button), img, file };
  });
  choices.replaceChildren(...items.map((i) => i.element));
  choicesState.textContent = items.length ? "" : "No images yet: upload one below.";
  await storage.eachLimited(items, 6, async ({ img, file }) => {
    const src = await storage.thumbnailSrc(file).catch(() => null);
    if (src) img.src = src;
  });
}

removeButton.addEventListener("click", async () => {
  me = await api.patch("/auth/me/attributes", { picture: null });
  renderAttributes();
  await showPhoto(null);
  for (const button of choices.querySelectorAll("button")) button.setAttribute("aria-pressed", "false");
});

nameForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(nameForm);
  notice(nameForm, "");
  const name = nameForm.elements.name.value.trim();
  try {
    me = await api.patch("/auth/me/attributes", { name: name || null });
    renderAttributes();
    notice(nameForm, "Saved.");
  } catch (error) {
    apiError(nameForm, error, { InvalidRequest: "name" });
  }
});

if (startShell({ requireUser: true })) start();
