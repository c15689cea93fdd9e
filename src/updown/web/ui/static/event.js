// An event's page at /events/{eventId}: its name and dates, its photos newest first (thumbnails
// from /cdn, title, description) for guests and users alike, and, for the event's registered
// attendees (GET /events/{id} answers `attending`), the upload widget with Title and Description.
import * as api from "./api.js";
import { formatDate, h } from "./dom.js";
import { ApiError } from "./http.js";
import * as session from "./session.js";
import { startShell } from "./shell.js";
import { mountUploader } from "./uploader.js";

startShell();
const root = document.querySelector("[data-event]");
const eventId = root.dataset.eventId;
const base = `/events/${encodeURIComponent(eventId)}`;
const stateLine = document.querySelector("[data-event-state]");
const nameHeading = document.querySelector("[data-event-name]");
const when = document.querySelector("[data-event-when]");
const uploadNote = document.querySelector("[data-upload-note]");
const uploadCard = document.querySelector("[data-photo-upload]");
const grid = document.querySelector("[data-photos]");
const photosState = document.querySelector("[data-photos-state]");
const signedIn = Boolean(session.current());

async function start() {
  let event;
  try {
    event = await api.get(base, { guest: true });
  } catch (error) {
    nameHeading.textContent = "Event not available";
    const missing = error instanceof ApiError && error.status === 404;
    say(stateLine, missing ? "There is no such event. Check the link you followed." : `Could not load the event: ${error.detail || error.message}`, {
      error: true,
      retry: !missing && (() => start()),
    });
    return;
  }
  say(stateLine, "");
  nameHeading.textContent = event.name;
  document.title = `updown: ${event.name}`;
  when.textContent = event.endsAt ? `${formatDate(event.startsAt)} – ${formatDate(event.endsAt)}` : formatDate(event.startsAt);
  if (event.attending) {
    uploadCard.hidden = false;
    const uploaderRoot = document.getElementById("event-uploader");
    mountUploader(uploaderRoot);
    uploaderRoot.addEventListener("upload:ready", () => loadPhotos());
  } else {
    uploadNote.hidden = false;
    uploadNote.replaceChildren(
      ...(signedIn
        ? ["Only the event's registered attendees can add photos. An admin registers you with the User ID on your ", h("a", { href: "/profile" }, "profile"), "."]
        : [h("a", { href: `/?next=${encodeURIComponent(window.location.pathname)}` }, "Sign in"), " as a registered attendee to add your photos."]),
    );
  }
  await loadPhotos();
}

async function loadPhotos() {
  if (!grid.children.length) say(photosState, "Loading photos…");
  grid.setAttribute("aria-busy", "true");
  try {
    const photos = await api.get(`${base}/photos`, { guest: true });
    // Newest first, whatever order the listing came in.
    photos.sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)));
    grid.replaceChildren(...photos.map(card));
    const count = photos.length;
    say(photosState, count ? `${count} photo${count === 1 ? "" : "s"}.` : "No photos yet.");
  } catch (error) {
    say(photosState, `Could not load the photos: ${error.detail || error.message}`, { error: true, retry: () => loadPhotos() });
  } finally {
    grid.removeAttribute("aria-busy");
  }
}

function card(photo) {
  const title = photo.title || "Untitled photo";
  return h(
    "li",
    { class: "event-photo" },
    h(
      "a",
      { class: "thumb", href: photo.url, "aria-label": `${title}: open the full photo` },
      h("img", {
        src: photo.thumbnailUrl,
        alt: title,
        loading: "lazy",
        decoding: "async",
        dataset: { photoId: photo.id },
        onerror: (event) => event.target.classList.add("broken"),
      }),
    ),
    h(
      "div",
      { class: "file-meta" },
      h("h3", { class: "photo-title" }, title),
      photo.description ? h("p", { class: "photo-description" }, photo.description) : null,
      h("span", { class: "file-facts" }, formatDate(photo.createdAt)),
    ),
  );
}

function say(line, message, { error = false, retry = null } = {}) {
  line.replaceChildren(message);
  line.classList.toggle("error", error);
  line.setAttribute("role", error ? "alert" : "status");
  if (retry) line.append(" ", h("button", { type: "button", class: "secondary small", onclick: retry }, "Try again"));
}

start();
