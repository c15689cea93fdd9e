// The JSON API as the signed-in user, or as a guest where a page allows it; a 401 refreshes the
// tokens once and retries (a token may die early: sign-out elsewhere, a sleeping laptop).
import { ApiError, requestJson } from "./http.js";
import * as session from "./session.js";

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {{guest?: boolean, signal?: AbortSignal}} [options] guest: fall back to a guest token
 */
export async function call(method, path, body, { guest = false, signal } = {}) {
  let token = await session.accessToken();
  const asGuest = !token;
  if (asGuest) {
    if (!guest) throw new ApiError(401, "NotAuthorized", "Your session has ended. Sign in again.");
    token = await session.guestToken();
  }
  try {
    return await requestJson(method, path, { body, token, signal });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    const renewed = asGuest ? await session.guestToken({ renew: true }) : await session.accessToken({ force: true });
    if (!renewed) throw error;
    return requestJson(method, path, { body, token: renewed, signal });
  }
}

export const get = (path, options) => call("GET", path, undefined, options);
export const post = (path, body, options) => call("POST", path, body, options);
export const patch = (path, body, options) => call("PATCH", path, body, options);
export const del = (path, options) => call("DELETE", path, undefined, options);

/** A path segment list for `/storage/files/{key}`: each segment encoded, the slashes kept. */
export function keyPath(key) {
  return key.split("/").map(encodeURIComponent).join("/");
}
