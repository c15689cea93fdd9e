// The gallery at /files: my files by access level, other users' protected files (by identity id)
// and public files (guests too); thumbnails, sizes and dates; open, download, delete (confirmed),
// copy between levels, use as profile photo; empty, loading and error states; "Load more" pages
// through any number of files with the API's cursor.
import * as api from "./api.js";
import { baseName, formatBytes, formatDate, h } from "./dom.js";
import { clearErrors, fieldError } from "./forms.js";
import { ApiError } from "./http.js";
import * as session from "./session.js";
import { startShell } from "./shell.js";
import * as storage from "./storage.js";

const LEVELS = ["private", "protected", "public"];
const LEVEL_NAMES = { private: "Private", protected: "Protected", public: "Public" };

startShell();
const params = new URLSearchParams(window.location.search);
const pageSize = Math.min(100, Math.max(1, Number(params.get("limit")) || 24));
const grid = document.querySelector("[data-gallery-grid]");
const stateLine = document.querySelector("[data-gallery-state]");
const loadMore = document.querySelector("[data-load-more]");
const tabs = document.querySelector("[data-level-tabs]");
const othersForm = document.querySelector("[data-others-form]");
const confirmDialog = document.querySelector("[data-confirm-dialog]");
const viewer = document.querySelector("[data-viewer]");
const guest = !session.current();
const view = { level: "private", identityId: "", cursor: null, generation: 0, me: null };

function start() {
  if (guest) {
    for (const tab of tabs.querySelectorAll("[data-level]")) tab.hidden = tab.dataset.level !== "public";
    document.querySelector("[data-guest-note]").hidden = false;
  }
  const wanted = params.get("level");
  const level = guest ? "public" : [...LEVELS, "others"].includes(wanted) ? wanted : "private";
  view.identityId = params.get("identityId") || "";
  othersForm.elements.identityId.value = view.identityId;
  tabs.addEventListener("click", (event) => {
    const tab = event.target.closest("[data-level]");
    if (tab) select(tab.dataset.level);
  });
  tabs.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const visible = [...tabs.querySelectorAll("[data-level]")].filter((t) => !t.hidden);
    const index = visible.findIndex((t) => t.dataset.level === view.level);
    const next = visible[(index + (event.key === "ArrowRight" ? 1 : visible.length - 1)) % visible.length];
    select(next.dataset.level);
    next.focus();
  });
  othersForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(othersForm);
    const id = othersForm.elements.identityId.value.trim();
    if (!id) return fieldError(othersForm, "identityId", "Enter the identity ID of the user whose files you want to see.");
    view.identityId = id;
    select("others");
  });
  loadMore.addEventListener("click", () => load());
  storage
    .whoAmI({ guest })
    .then((me) => (view.me = me))
    .catch(() => {})
    .finally(() => select(level));
}

function select(level) {
  view.level = level;
  for (const tab of tabs.querySelectorAll("[data-level]")) {
    const selected = tab.dataset.level === level;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  othersForm.hidden = level !== "others";
  const query = new URLSearchParams({ level });
  if (level === "others" && view.identityId) query.set("identityId", view.identityId);
  if (params.get("limit")) query.set("limit", String(pageSize));
  window.history.replaceState(null, "", `/files?${query}`);
  view.cursor = null;
  view.generation += 1;
  grid.replaceChildren();
  loadMore.hidden = true;
  if (level === "others" && !view.identityId) {
    say("Enter the identity ID of another user to see their protected files.");
    return;
  }
  load();
}

async function load() {
  const generation = view.generation;
  const others = view.level === "others";
  say("Loading files…");
  grid.setAttribute("aria-busy", "true");
  loadMore.disabled = true;
  try {
    const page = await storage.listFiles({
      level: others ? "protected" : view.level,
      identityId: others ? view.identityId : undefined,
      cursor: view.cursor,
      limit: pageSize,
      guest,
    });
    if (generation !== view.generation) return;
    const cards = page.items.map((file) => card(file));
    grid.append(...cards.map((c) => c.element));
    view.cursor = page.nextCursor || null;
    loadMore.hidden = !view.cursor;
    const count = grid.children.length;
    if (count === 0) say(emptyMessage());
    else say(`${count} file${count === 1 ? "" : "s"}${view.cursor ? ", more to load" : ""}.`);
    await storage.eachLimited(cards, 6, (c) => c.loadThumbnail());
  } catch (error) {
    if (generation !== view.generation) return;
    if (others && error instanceof ApiError && (error.status === 400 || error.status === 403)) {
      fieldError(othersForm, "identityId", error.detail);
      say("");
      return;
    }
    if (guest && error instanceof ApiError && error.status === 403) {
      // The guest role's policies decide; the default ones may not grant s3:ListBucket on public/.
      say("This server does not let guests list public files. Sign in to browse them.", { error: true });
      return;
    }
    say(`Could not load the files: ${error.detail || error.message}`, { error: true, retry: true });
  } finally {
    if (generation === view.generation) {
      grid.removeAttribute("aria-busy");
      loadMore.disabled = false;
    }
  }
}

function emptyMessage() {
  if (view.level === "others") return "This user has no protected files.";
  if (guest) return "No public files yet.";
  return `No ${LEVEL_NAMES[view.level].toLowerCase()} files yet. Upload some on the Upload page.`;
}

function say(message, { error = false, retry = false } = {}) {
  stateLine.replaceChildren(message);
  stateLine.classList.toggle("error", error);
  stateLine.setAttribute("role", error ? "alert" : "status");
  if (retry) {
    stateLine.append(" ", h("button", { type: "button", class: "secondary small", onclick: () => load() }, "Try again"));
  }
}

function isMine(file) {
  return Boolean(view.me && file.identityId === view.me.identityId);
}

/** One file's card: thumbnail (img[data-key]), name, size, date and actions. */
function card(file) {
  const name = baseName(file.key);
  const image = String(file.contentType).startsWith("image/");
  const thumb = image
    ? h("img", { alt: name, loading: "lazy", decoding: "async", dataset: { key: file.key } })
    : h("span", { class: "file-badge large", dataset: { key: file.key } }, name.split(".").pop().slice(0, 4).toUpperCase());
  const status = h("p", { class: "card-status", role: "status" });
  const actions = h("div", { class: "card-actions" });
  const element = h(
    "li",
    { class: "file-card", dataset: { fileKey: file.key } },
    h("button", { type: "button", class: "thumb", "aria-label": `Open ${name}`, onclick: () => open(file) }, thumb),
    h(
      "div",
      { class: "file-meta" },
      h("span", { class: "file-name", title: file.key }, name),
      h("span", { class: "file-facts" }, `${formatBytes(file.size)} · ${formatDate(file.lastModified)}`),
      h("span", { class: `badge level-${file.accessLevel}` }, LEVEL_NAMES[file.accessLevel] || file.accessLevel),
    ),
    actions,
    status,
  );
  const tell = (message, isError = false) => {
    status.textContent = message;
    status.classList.toggle("error", isError);
  };
  const act = (label, work) =>
    h("button", {
      type: "button",
      class: "secondary small",
      onclick: async (event) => {
        const button = event.currentTarget;
        button.disabled = true;
        try {
          await work();
        } catch (error) {
          tell(error.detail || error.message, true);
        } finally {
          button.disabled = false;
        }
      },
    }, label);
  actions.append(act("Open", () => open(file)), act("Download", () => download(file)));
  if (!guest) {
    const targets = LEVELS.filter((level) => !(level === file.accessLevel && isMine(file)));
    actions.append(
      h(
        "details",
        { class: "copy-menu" },
        h("summary", { class: "button secondary small" }, "Copy to…"),
        h(
          "div",
          { class: "menu" },
          ...targets.map((level) =>
            act(LEVEL_NAMES[level], async () => {
              const copied = await storage.copyFile(file.key, storage.keyAt(file, level, view.me.identityId));
              tell(`Copied to ${LEVEL_NAMES[level].toLowerCase()}: ${baseName(copied.key)}.`);
              element.querySelector("details").open = false;
            }),
          ),
        ),
      ),
    );
    if (image && isMine(file)) {
      actions.append(
        act("Use as profile photo", async () => {
          await api.patch("/auth/me/attributes", { picture: file.key });
          tell("This is now your profile photo.");
        }),
      );
    }
    if (isMine(file)) actions.append(act("Delete", () => remove(file, element, tell)));
  }
  const loadThumbnail = async () => {
    try {
      const src = await storage.thumbnailSrc(file, { guest });
      if (src && thumb.tagName === "IMG") thumb.src = src;
    } catch {
      thumb.classList.add("broken");
    }
  };
  return { element, loadThumbnail };
}

async function open(file) {
  const url = file.publicUrl || (await storage.fileUrl(file.key, { guest }));
  if (String(file.contentType).startsWith("image/")) {
    viewer.querySelector("[data-viewer-title]").textContent = baseName(file.key);
    const img = viewer.querySelector("[data-viewer-image]");
    img.alt = baseName(file.key);
    img.src = url;
    viewer.showModal();
  } else {
    window.open(url, "_blank", "noopener");
  }
}

async function download(file) {
  const url = await storage.fileUrl(file.key, { download: true, guest });
  const link = h("a", { href: url, download: baseName(file.key), hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
}

function remove(file, element, tell) {
  confirmDialog.querySelector("[data-confirm-text]").textContent =
    `“${baseName(file.key)}” and its thumbnails will be deleted for good.`;
  confirmDialog.returnValue = "";
  confirmDialog.showModal();
  return new Promise((resolve) => {
    confirmDialog.addEventListener(
      "close",
      async () => {
        if (confirmDialog.returnValue === "delete") {
          try {
            await storage.deleteFile(file.key);
            element.remove();
            const count = grid.children.length;
            say(count ? `Deleted ${baseName(file.key)}.` : emptyMessage());
          } catch (error) {
            tell(error.detail || error.message, true);
          }
        }
        resolve();
      },
      { once: true },
    );
  });
}

start();
