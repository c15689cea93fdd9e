// The storage calls the gallery and the profile share: listing, presigned URLs, thumbnails,
// delete and copy. Public files are read through /cdn/ (cacheable); the others through short-lived
// presigned URLs from POST /storage/files/{key}/url.
import * as api from "./api.js";

/** One page of files: {items, nextCursor}. `guest`: a guest may list public files. */
export function listFiles({ level, identityId, cursor, limit = 24, guest = false }) {
  const query = new URLSearchParams({ accessLevel: level, limit: String(limit) });
  if (identityId) query.set("identityId", identityId);
  if (cursor) query.set("cursor", cursor);
  return api.get(`/storage/files?${query}`, { guest });
}

export function getFile(key, { guest = false } = {}) {
  return api.get(`/storage/files/${api.keyPath(key)}`, { guest });
}

/** A presigned GET of `key`; `download` makes it an attachment. */
export async function fileUrl(key, { download = false, guest = false } = {}) {
  const answer = await api.post(`/storage/files/${api.keyPath(key)}/url`, { download }, { guest });
  return answer.url;
}

/**
 * What an <img> of the file shows: its thumbnail variant, else the image itself (a copy has no
 * variants), else null for files that are not images.
 */
export async function thumbnailSrc(file, { guest = false } = {}) {
  const thumbnail = file.variants && file.variants.thumbnail;
  if (thumbnail && file.variantUrls && file.variantUrls.thumbnail) return file.variantUrls.thumbnail;
  if (thumbnail) return fileUrl(thumbnail, { guest });
  if (!String(file.contentType).startsWith("image/")) return null;
  if (file.publicUrl) return file.publicUrl;
  return fileUrl(file.key, { guest });
}

export function deleteFile(key) {
  return api.del(`/storage/files/${api.keyPath(key)}`);
}

export function copyFile(source, destination) {
  return api.post("/storage/copy", { source, destination });
}

/** The key of `file` at another access level, for the caller `identityId`: same name. */
export function keyAt(file, level, identityId) {
  const parts = file.key.split("/");
  const name = (parts[0] === "public" ? parts.slice(1) : parts.slice(2)).join("/");
  return level === "public" ? `public/${name}` : `${level}/${identityId}/${name}`;
}

/** Who the caller is (identityId, role): a guest's or the signed-in user's identity. */
export function whoAmI({ guest = false } = {}) {
  return api.get("/identity/me", { guest });
}

/** Runs `work` over `items` with at most `limit` at once (presigning a page of thumbnails). */
export async function eachLimited(items, limit, work) {
  const queue = [...items];
  const run = async () => {
    while (queue.length) await work(queue.shift());
  };
  await Promise.all(Array.from({ length: Math.min(limit, queue.length) }, run));
}
