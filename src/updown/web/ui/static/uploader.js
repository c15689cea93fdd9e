// The upload widget (our StorageManager), one module for every page that takes files.
//
// Drag-and-drop or the file picker; each file is checked against the page's accepted types, count
// and size; its bytes go straight to the presigned URL of POST /storage/uploads, with one
// <progress> per file fed by XHR upload events. Files over the multipart threshold go in parts,
// a few at once; the plan is kept in localStorage, so after a reload or a dropped connection the
// same file picked again resumes: GET /storage/uploads/{id} says which parts arrived, and only the
// others are sent. Cancel and retry per file; then complete, and the server's processing status
// (processing → ready, or rejected with its reason).
//
// Where the bytes go is the widget's target (data-target):
// - "storage" (the default): POST /storage/uploads, as above;
// - "event" (with data-event-id): an event's photos. POST /events/{id}/photos/initiate-upload
//   with the extra fields {title, description} and the type answers {photoId, s3PutObjectUrl};
//   the bytes go there in one PUT with only Content-Type set; there is no complete call: the
//   photo is ready once GET /events/{id}/photos lists it, so that is what is polled.
// Extra fields: the named inputs of the widget's [data-role=fields] (rendered by the macro's call
// block), read when files are picked (a required one left empty refuses them, in words next to
// it); or a page's own `fields()` hook given to mountUploader, answering an object, or null to
// refuse. Each file keeps the values it was picked with.
//
// Configured by data- attributes on its element (templates/_uploader.html): data-target,
// data-event-id, data-accept, data-max-files, data-max-size, data-level,
// data-multipart-threshold, data-part-size, data-concurrency. Fires "upload:ready" on the element
// (detail: the file record, or for the event target the listed photo).
import * as api from "./api.js";
import { baseName, formatBytes, h } from "./dom.js";
import { clearErrors, fieldError } from "./forms.js";
import { ApiError } from "./http.js";
import * as session from "./session.js";

const RESUME_KEY = "updown.uploads";
const PART_RETRIES = 3;
const RETRY_DELAYS_MS = [500, 1500, 4000];
const POLL_DELAYS_MS = [300, 600, 1000, 2000, 3000];
// How long an event photo may take to be listed before the widget says something is wrong.
const PHOTO_WAIT_MS = 120_000;
const MAX_PARTS = 10_000;
const TYPE_NAMES = {
  "image/jpeg": "JPEG",
  "image/png": "PNG",
  "image/gif": "GIF",
  "image/webp": "WebP",
  "image/avif": "AVIF",
  "image/heic": "HEIC",
  "application/pdf": "PDF",
  "text/plain": "text",
  "text/csv": "CSV",
  "application/json": "JSON",
  "application/zip": "ZIP",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation": "PowerPoint",
  "video/mp4": "MP4",
  "video/quicktime": "QuickTime",
  "audio/mpeg": "MP3",
};
const ALIASES = { "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "application/x-zip-compressed": "application/zip" };
const ACTIVE = new Set(["queued", "uploading", "completing", "processing"]);

/**
 * Starts the widget on `root` (an element rendered by the uploader macro).
 * @param {HTMLElement} root
 * @param {{fields?: () => (Record<string, string>|null)}} [options] fields: the extra-fields hook
 */
export function mountUploader(root, options = {}) {
  return new Uploader(root, options);
}

class Uploader {
  constructor(root, options = {}) {
    this.root = root;
    this.options = options;
    this.fieldset = root.querySelector("[data-role=fields]");
    this.input = root.querySelector("[data-role=input]");
    this.dropzone = root.querySelector("[data-role=dropzone]");
    this.list = root.querySelector("[data-role=list]");
    this.hint = root.querySelector("[data-role=hint]");
    this.error = root.querySelector("[data-role=error]");
    this.levelSelect = root.querySelector("[data-role=level]");
    this.resumable = root.querySelector("[data-role=resumable]");
    this.items = [];
    const d = root.dataset;
    this.maxFiles = Number(d.maxFiles) || 10;
    this.threshold = Number(d.multipartThreshold) || 8 * 1024 * 1024;
    this.partSize = Number(d.partSize) || 5 * 1024 * 1024;
    this.concurrency = Math.min(4, Math.max(1, Number(d.concurrency) || 3));
    this.target = d.target === "event" ? eventTarget(d.eventId || "") : STORAGE_TARGET;
    this.setLevel(d.level || "private", d.accept || "", Number(d.maxSize) || Infinity);

    this.input.addEventListener("change", () => {
      this.add([...this.input.files]);
      this.input.value = "";
    });
    if (this.levelSelect) {
      this.levelSelect.addEventListener("change", () => {
        const option = this.levelSelect.selectedOptions[0];
        this.setLevel(option.value, option.dataset.accept || d.accept, Number(option.dataset.maxSize) || Infinity);
      });
    }
    for (const type of ["dragenter", "dragover"]) {
      this.dropzone.addEventListener(type, (event) => {
        event.preventDefault();
        this.dropzone.classList.add("dragging");
      });
    }
    for (const type of ["dragleave", "dragend"]) {
      this.dropzone.addEventListener(type, () => this.dropzone.classList.remove("dragging"));
    }
    this.dropzone.addEventListener("drop", (event) => {
      event.preventDefault();
      this.dropzone.classList.remove("dragging");
      this.add([...(event.dataTransfer?.files || [])]);
    });
    // A connection that comes back resumes what it interrupted.
    window.addEventListener("online", () => {
      for (const item of this.items) if (item.state === "failed" && item.retryable) item.start();
    });
    this.renderResumable();
  }

  setLevel(level, accept, maxSize) {
    this.level = level;
    this.accept = accept.split(",").map((t) => t.trim().toLowerCase()).filter(Boolean);
    this.maxSize = maxSize;
    this.input.accept = this.accept.join(",");
    const names = [...new Set(this.accept.map((t) => TYPE_NAMES[t] || t))];
    const limit = Number.isFinite(maxSize) ? `, up to ${formatBytes(maxSize)} each` : "";
    this.hint.textContent = `${names.join(", ")}${limit}; at most ${this.maxFiles} at a time.`;
    this.renderResumable();
  }

  /** Takes picked or dropped files: each is checked, then queued, or shown refused with why. */
  add(files) {
    this.error.hidden = true;
    if (!files.length) return;
    const fields = this.fields();
    if (fields === null) return;
    const room = this.maxFiles - this.items.filter((item) => ACTIVE.has(item.state)).length;
    if (files.length > room) {
      const left = files.length - Math.max(0, room);
      this.error.textContent =
        `You can upload ${this.maxFiles} file${this.maxFiles === 1 ? "" : "s"} at a time: ` +
        `${left} ${left === 1 ? "was" : "were"} not added.`;
      this.error.hidden = false;
      files = files.slice(0, Math.max(0, room));
    }
    for (const file of files) {
      const item = new Item(this, file, fields);
      this.items.push(item);
      this.list.append(item.row);
      const problem = this.check(file, item.type);
      if (problem) item.refuse(problem);
      else item.start();
    }
  }

  /** The extra fields' values for the files being added, or null (said next to the field) to refuse them. */
  fields() {
    if (this.options.fields) return this.options.fields();
    if (!this.fieldset) return {};
    clearErrors(this.fieldset);
    const values = {};
    for (const input of this.fieldset.querySelectorAll("input[name], textarea[name], select[name]")) {
      const value = input.type === "checkbox" ? String(input.checked) : input.value.trim();
      if (input.required && !value) {
        const label = this.fieldset.querySelector(`label[for="${input.id}"]`)?.textContent.trim().toLowerCase() || input.name;
        fieldError(this.fieldset, input.name, input.dataset.missing || `Fill in the ${label} first.`);
        return null;
      }
      values[input.name] = value;
    }
    return values;
  }

  check(file, type) {
    const label = `“${file.name}”`;
    if (!type) return `${label} is not accepted here: its type is unknown. Accepted: ${this.acceptedNames()}.`;
    if (!this.accepts(type)) {
      return `${label} is not accepted here: ${TYPE_NAMES[type] || type} files are not allowed. Accepted: ${this.acceptedNames()}.`;
    }
    if (file.size > this.maxSize) {
      return `${label} is too large: ${formatBytes(file.size)}; the limit is ${formatBytes(this.maxSize)}.`;
    }
    return null;
  }

  accepts(type) {
    return this.accept.some((pattern) =>
      pattern.endsWith("/*") ? type.startsWith(pattern.slice(0, -1)) : pattern === type,
    );
  }

  acceptedNames() {
    return [...new Set(this.accept.map((t) => TYPE_NAMES[t] || t))].join(", ");
  }

  remove(item) {
    this.items = this.items.filter((other) => other !== item);
    item.row.remove();
  }

  /** Removes the rows of files no longer in flight (ready, refused, failed...): the page moved on. */
  clearFinished() {
    for (const item of [...this.items]) if (!ACTIVE.has(item.state)) item.remove();
  }

  /** The interrupted multipart uploads of this user: "pick the same file again to go on". */
  renderResumable() {
    if (!this.resumable) return;
    const list = this.resumable.querySelector("[data-role=resumable-list]");
    const records = resumeRecords().filter((r) => r.owner === owner() && !this.items.some((i) => i.uploadId === r.uploadId));
    list.replaceChildren(
      ...records.map((record) =>
        h(
          "li",
          { dataset: { uploadId: record.uploadId } },
          h("span", { class: "upload-name" }, record.name),
          ` ${formatBytes(record.size)}, ${record.level}: ${Object.keys(record.etags || {}).length} of ${record.parts.length} parts sent `,
          h("button", {
            type: "button",
            class: "link",
            onclick: () => {
              forgetResume(record.uploadId);
              this.renderResumable();
            },
          }, "Discard"),
        ),
      ),
    );
    this.resumable.hidden = records.length === 0;
  }
}

/** One file in the widget: its row, its transfer and its processing status. */
class Item {
  constructor(widget, file, fields = {}) {
    this.widget = widget;
    this.file = file;
    this.fields = fields;
    this.type = canonicalType(file.type);
    this.level = widget.level;
    this.state = "queued";
    this.requests = new Set();
    this.uploadId = null;
    this.retryable = false;
    this.preview = this.type.startsWith("image/") ? URL.createObjectURL(file) : null;
    this.progress = h("progress", { max: Math.max(1, file.size), value: 0, "aria-label": `Upload progress of ${file.name}` });
    this.status = h("p", { class: "upload-status", role: "status" }, "Waiting…");
    this.cancelButton = h("button", { type: "button", class: "secondary small", onclick: () => this.cancel() }, "Cancel");
    this.retryButton = h("button", { type: "button", class: "secondary small", hidden: true, onclick: () => this.start() }, "Retry");
    this.removeButton = h("button", { type: "button", class: "secondary small", hidden: true, onclick: () => this.remove() }, "Remove");
    this.row = h(
      "li",
      { class: "upload", dataset: { state: "queued", name: file.name } },
      h(
        "div",
        { class: "upload-preview", "aria-hidden": "true" },
        this.preview
          ? h("img", { src: this.preview, alt: "", onerror: (event) => event.target.replaceWith(badge(file.name)) })
          : badge(file.name),
      ),
      h(
        "div",
        { class: "upload-body" },
        h("div", { class: "upload-head" }, h("span", { class: "upload-name" }, file.name), h("span", { class: "upload-size" }, formatBytes(file.size))),
        fields.title ? h("p", { class: "upload-caption" }, fields.title) : null,
        this.progress,
        this.status,
      ),
      h("div", { class: "upload-actions" }, this.cancelButton, this.retryButton, this.removeButton),
    );
  }

  setState(state, message, { alert = false } = {}) {
    this.state = state;
    this.row.dataset.state = state;
    this.status.textContent = message;
    this.status.setAttribute("role", alert ? "alert" : "status");
    this.status.classList.toggle("error", alert);
    const active = ACTIVE.has(state);
    this.cancelButton.hidden = !active || state === "processing";
    this.retryButton.hidden = !(state === "failed" || state === "cancelled");
    this.removeButton.hidden = active;
  }

  refuse(message) {
    this.progress.remove();
    this.setState("refused", message, { alert: true });
  }

  showProgress(sent) {
    const total = Math.max(1, this.file.size);
    const value = Math.min(total, sent);
    this.progress.value = value;
    const percent = Math.floor((value / total) * 100);
    this.progress.dataset.percent = String(percent);
    this.status.textContent = `Uploading… ${percent} %`;
  }

  async start() {
    this.aborted = false;
    this.retryable = false;
    this.setState("uploading", "Starting…");
    try {
      const target = this.widget.target;
      // A retry after the bytes went through (complete or polling failed) does not send them again.
      this.sent = this.sent || (await target.send(this));
      if (this.aborted) return;
      await target.finish(this, this.sent);
    } catch (error) {
      if (this.aborted) return;
      if (error instanceof ApiError && error.code === "UploadRejected") {
        this.rejected(error.detail);
        return;
      }
      this.retryable = Boolean(error.retryable) || (error instanceof ApiError && (error.status === 0 || error.status >= 500));
      this.setState("failed", `Upload failed: ${error.detail || error.message}`, { alert: true });
    }
  }

  cancel() {
    this.aborted = true;
    this.sent = null;
    for (const xhr of this.requests) xhr.abort();
    this.requests.clear();
    // Nothing to tell the server: an intent left open expires and cleanup removes its parts.
    if (this.uploadId) forgetResume(this.uploadId);
    this.setState("cancelled", "Cancelled.");
    this.widget.renderResumable();
  }

  remove() {
    if (ACTIVE.has(this.state)) this.cancel();
    if (this.preview) URL.revokeObjectURL(this.preview);
    this.widget.remove(this);
  }

  async initiate(extra) {
    const body = {
      accessLevel: this.level,
      name: await uploadName(this.level, this.file.name),
      contentType: this.type,
      size: this.file.size,
      ...extra,
    };
    const grant = await api.post("/storage/uploads", body);
    this.uploadId = grant.uploadId;
    this.row.dataset.uploadId = grant.uploadId;
    this.row.dataset.key = grant.key;
    return grant;
  }

  async sendPut() {
    const grant = await this.initiate({ mode: "put" });
    const headers = {};
    for (const [name, value] of Object.entries(grant.put.headers || {})) {
      // The browser sets these itself (and refuses to be told).
      if (!["content-length", "host"].includes(name.toLowerCase())) headers[name] = value;
    }
    this.showProgress(0);
    await this.xhrPut(grant.put.url, this.file, headers, (loaded) => this.showProgress(loaded));
    this.showProgress(this.file.size);
    return { parts: undefined };
  }

  async sendMultipart() {
    let record = findResume(this.file, this.level);
    let received = new Map();
    if (record) {
      const state = await api.get(`/storage/uploads/${record.uploadId}`).catch((error) => {
        if (error instanceof ApiError && error.status === 404) return null;
        throw error;
      });
      if (!state || state.status === "expired" || state.status === "rejected") {
        forgetResume(record.uploadId);
        record = null;
      } else {
        this.uploadId = record.uploadId;
        this.row.dataset.uploadId = record.uploadId;
        this.row.dataset.key = record.key;
        if (state.status !== "pending") return { landed: true };
        // The server's list is the truth: a part this tab thinks it sent may never have arrived.
        received = new Map((state.parts || []).map((p) => [p.partNumber, p.etag]));
      }
    }
    if (!record) {
      const partSize = Math.max(this.widget.partSize, Math.ceil(this.file.size / MAX_PARTS));
      const grant = await this.initiate({ mode: "multipart", partSize });
      record = {
        uploadId: grant.uploadId,
        key: grant.key,
        owner: owner(),
        level: this.level,
        name: this.file.name,
        size: this.file.size,
        lastModified: this.file.lastModified,
        type: this.type,
        partSize: grant.multipart.partSize,
        parts: grant.multipart.parts,
        expiresAt: Date.parse(grant.expiresAt) || Date.now() + 3600_000,
        etags: {},
      };
      saveResume(record);
    }
    this.widget.renderResumable();
    this.row.dataset.parts = String(record.parts.length);
    this.row.dataset.resumedParts = String(received.size);
    await this.sendParts(record, received);
    const parts = record.parts.map((p) => ({ partNumber: p.partNumber, etag: received.get(p.partNumber) }));
    return { parts };
  }

  /** Sends the parts not in `received`, `concurrency` at once; each retried on a dropped connection. */
  async sendParts(record, received) {
    const size = this.file.size;
    const sizeOf = (n) => Math.max(0, Math.min(record.partSize, size - (n - 1) * record.partSize));
    let sent = [...received.keys()].reduce((sum, n) => sum + sizeOf(n), 0);
    const inFlight = new Map();
    const update = () => this.showProgress(sent + [...inFlight.values()].reduce((a, b) => a + b, 0));
    update();
    const queue = record.parts.filter((p) => !received.has(p.partNumber));
    let failure = null;
    const worker = async () => {
      while (queue.length && !failure && !this.aborted) {
        const part = queue.shift();
        const start = (part.partNumber - 1) * record.partSize;
        const blob = this.file.slice(start, start + sizeOf(part.partNumber));
        try {
          const etag = await this.withRetries(() =>
            this.xhrPut(part.url, blob, {}, (loaded) => {
              inFlight.set(part.partNumber, loaded);
              update();
            }),
          );
          inFlight.delete(part.partNumber);
          received.set(part.partNumber, etag);
          sent += sizeOf(part.partNumber);
          record.etags[part.partNumber] = etag;
          saveResume(record);
          update();
        } catch (error) {
          inFlight.delete(part.partNumber);
          failure = failure || error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.widget.concurrency, queue.length) }, worker));
    this.widget.renderResumable();
    if (failure) throw failure;
    if (this.aborted) throw new TransferError("cancelled", false);
  }

  async withRetries(send) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await send();
      } catch (error) {
        if (this.aborted || !error.retryable || attempt >= PART_RETRIES) throw error;
        await sleep(RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)]);
      }
    }
  }

  /** PUT `body` to a presigned URL; resolves to the answer's ETag. Upload events feed `onProgress`. */
  xhrPut(url, body, headers, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.requests.add(xhr);
      xhr.open("PUT", url);
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded));
      xhr.addEventListener("load", () => {
        this.requests.delete(xhr);
        if (xhr.status >= 200 && xhr.status < 300) {
          resolve((xhr.getResponseHeader("ETag") || "").replace(/"/g, ""));
        } else {
          reject(s3Error(xhr));
        }
      });
      xhr.addEventListener("error", () => {
        this.requests.delete(xhr);
        reject(new TransferError("the connection to the storage was lost", true));
      });
      xhr.addEventListener("abort", () => {
        this.requests.delete(xhr);
        reject(new TransferError("cancelled", false));
      });
      xhr.send(body);
    });
  }

  /** Completes the upload and follows processing until the file is ready or rejected. */
  async finish({ parts, landed }) {
    this.cancelButton.hidden = true;
    this.setState("completing", "Checking the file…");
    let answer;
    if (landed) {
      answer = await api.get(`/storage/uploads/${this.uploadId}`);
    } else {
      answer = await api.post(`/storage/uploads/${this.uploadId}/complete`, parts ? { parts } : undefined);
    }
    forgetResume(this.uploadId);
    this.widget.renderResumable();
    this.progress.value = this.progress.max;
    this.progress.dataset.percent = "100";
    for (let attempt = 0; ; attempt += 1) {
      if (this.aborted) return;
      const status = answer.status;
      if (status === "ready") return this.ready(answer.file || answer);
      if (status === "rejected") return this.rejected(answer.reason);
      if (status === "expired") throw new TransferError("the upload expired before its bytes arrived; retry to start again", false);
      this.setState("processing", "Uploaded · processing…");
      await sleep(POLL_DELAYS_MS[Math.min(attempt, POLL_DELAYS_MS.length - 1)]);
      answer = await api.get(`/storage/uploads/${this.uploadId}`);
    }
  }

  ready(record) {
    this.record = record;
    this.setState("ready", "Ready");
    if (record.key) this.row.dataset.key = record.key;
    this.widget.root.dispatchEvent(new CustomEvent("upload:ready", { detail: record, bubbles: true }));
  }

  rejected(reason) {
    this.setState("rejected", `Rejected: ${reason || "the file is not what it claims to be"}`, { alert: true });
  }
}

/** The default target: the storage API (single PUT or multipart, resumable; complete; status). */
const STORAGE_TARGET = {
  send(item) {
    const multipart = item.file.size > item.widget.threshold;
    item.row.dataset.mode = multipart ? "multipart" : "put";
    return multipart ? item.sendMultipart() : item.sendPut();
  },
  finish(item, sent) {
    return item.finish(sent);
  },
};

/** An event's photos: initiate-upload, one PUT with only Content-Type, then wait to be listed. */
function eventTarget(eventId) {
  const base = `/events/${encodeURIComponent(eventId)}`;
  return {
    async send(item) {
      item.row.dataset.mode = "put";
      const grant = await api.post(`${base}/photos/initiate-upload`, {
        title: item.fields.title || "",
        description: item.fields.description || "",
        contentType: item.type,
      });
      item.row.dataset.photoId = grant.photoId;
      item.showProgress(0);
      // The URL binds the type and the photo's metadata: Content-Type is the one header to send.
      await item.xhrPut(grant.s3PutObjectUrl, item.file, { "Content-Type": item.type }, (loaded) => item.showProgress(loaded));
      item.showProgress(item.file.size);
      return { photoId: grant.photoId };
    },
    async finish(item, { photoId }) {
      item.cancelButton.hidden = true;
      item.progress.value = item.progress.max;
      item.progress.dataset.percent = "100";
      const deadline = Date.now() + PHOTO_WAIT_MS;
      for (let attempt = 0; ; attempt += 1) {
        if (item.aborted) return;
        item.setState("processing", "Uploaded · processing…");
        const photos = await api.get(`${base}/photos`);
        const photo = (photos || []).find((p) => p.id === photoId);
        if (photo) return item.ready(photo);
        if (Date.now() > deadline) {
          // The listing shows ready photos only: one processing refused never appears in it.
          throw new TransferError(
            "the photo was sent but is still not listed: processing may have refused it (is it a valid image?). Retry to check again",
            false,
          );
        }
        await sleep(POLL_DELAYS_MS[Math.min(attempt, POLL_DELAYS_MS.length - 1)]);
      }
    },
  };
}

class TransferError extends Error {
  constructor(message, retryable, code = "") {
    super(message);
    this.detail = message;
    this.retryable = retryable;
    this.code = code;
  }
}

/** The data plane answers errors in S3 XML: <Error><Code>…</Code><Message>…</Message></Error>. */
function s3Error(xhr) {
  let code = "";
  let message = "";
  try {
    const doc = new DOMParser().parseFromString(xhr.responseText || "", "application/xml");
    code = doc.querySelector("Code")?.textContent || "";
    message = doc.querySelector("Message")?.textContent || "";
  } catch {
    // Not XML: say what the status was.
  }
  const retryable = xhr.status >= 500 || xhr.status === 408 || xhr.status === 429;
  const words = message || `the storage answered ${xhr.status}`;
  return new TransferError(code ? `${words} (${code})` : words, retryable, code);
}

function canonicalType(type) {
  const media = String(type || "").split(";")[0].trim().toLowerCase();
  return ALIASES[media] || media;
}

function badge(name) {
  return h("span", { class: "file-badge" }, extension(name));
}

function extension(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1, dot + 5).toUpperCase() : "FILE";
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

let identity = null;

/** The object name: the file's own, except under public/ (shared by everyone), where it goes
 * under a folder of the uploader's identity so that two people's "photo.jpg" do not collide. */
async function uploadName(level, fileName) {
  if (level !== "public") return fileName;
  identity = identity || (await api.get("/identity/me"));
  const id = String(identity.identityId).split(":").pop().slice(0, 8);
  return `${id}/${baseName(fileName)}`;
}

function owner() {
  return session.current()?.email || "";
}

function resumeRecords() {
  try {
    const all = JSON.parse(localStorage.getItem(RESUME_KEY) || "{}");
    const now = Date.now();
    return Object.values(all).filter((r) => r && r.expiresAt > now);
  } catch {
    return [];
  }
}

function findResume(file, level) {
  return resumeRecords().find(
    (r) =>
      r.owner === owner() && r.level === level && r.name === file.name && r.size === file.size &&
      r.lastModified === file.lastModified,
  );
}

function saveResume(record) {
  const all = Object.fromEntries(resumeRecords().map((r) => [r.uploadId, r]));
  all[record.uploadId] = record;
  localStorage.setItem(RESUME_KEY, JSON.stringify(all));
}

function forgetResume(uploadId) {
  const all = Object.fromEntries(resumeRecords().map((r) => [r.uploadId, r]));
  delete all[uploadId];
  localStorage.setItem(RESUME_KEY, JSON.stringify(all));
}
