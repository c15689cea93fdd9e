// The session: the signed-in user's tokens (localStorage, shared by the tabs of this origin),
// refreshed silently before they expire, and a guest identity for browsing without signing in.
//
// Refresh tokens rotate and a reused one revokes the whole session, so two tabs must never
// refresh with the same token: the refresh runs under a Web Lock, and a tab that gets the lock
// after another one refreshed simply takes the new tokens from storage.
import { ApiError, requestJson } from "./http.js";

const KEY = "updown.session";
const GUEST_KEY = "updown.guest";
// The uploader's resumable plans hold presigned part URLs: signing out forgets them too.
const UPLOADS_KEY = "updown.uploads";
const LOCK = "updown.refresh";
const GROUPS_CLAIM = "cognito:groups";
const listeners = new Set();
let timer = null;

/** The stored session, or null: {accessToken, idToken, refreshToken, expiresAt, margin, email, groups}. */
export function current() {
  return read(KEY);
}

/** The signed-in user's groups as the ID token says (for showing links; the API decides access). */
export function groups() {
  const session = current();
  if (!session) return [];
  if (Array.isArray(session.groups)) return session.groups;
  const claimed = (decode(session.idToken) || {})[GROUPS_CLAIM];
  return Array.isArray(claimed) ? claimed : [];
}

/** Stores the tokens of a sign-in, challenge or refresh answer. */
export function save(tokens) {
  const ttl = Math.max(1, Number(tokens.expiresIn) || 3600) * 1000;
  const claims = decode(tokens.idToken) || {};
  const session = {
    accessToken: tokens.accessToken,
    idToken: tokens.idToken,
    refreshToken: tokens.refreshToken,
    expiresAt: Date.now() + ttl,
    // Refresh a minute before expiry, or at 4/5 of a short lifetime.
    margin: Math.min(60_000, ttl / 5),
    email: claims.email || "",
    groups: Array.isArray(claims[GROUPS_CLAIM]) ? claims[GROUPS_CLAIM] : [],
  };
  localStorage.setItem(KEY, JSON.stringify(session));
  schedule();
  emit();
  return session;
}

/** Forgets the session (this tab and, through the storage event, the others). */
export function clear() {
  localStorage.removeItem(KEY);
  if (timer) clearTimeout(timer);
  timer = null;
  emit();
}

/** Calls `listener(session|null)` whenever the session changes, in this tab or another. */
export function onChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** A valid access token of the signed-in user (refreshed first when near expiry), or null. */
export async function accessToken({ force = false } = {}) {
  const session = current();
  if (!session) return null;
  if (!force && fresh(session)) return session.accessToken;
  const renewed = await refresh(session.refreshToken);
  return renewed ? renewed.accessToken : null;
}

/** Rotates the refresh token; resolves to the new session, or null when the session has ended. */
export async function refresh(seenRefreshToken) {
  const run = async () => {
    const stored = current();
    if (!stored) return null;
    // Another tab refreshed while this one waited for the lock: use its tokens.
    if (stored.refreshToken !== seenRefreshToken && fresh(stored)) return stored;
    try {
      const tokens = await requestJson("POST", "/auth/refresh", { body: { refreshToken: stored.refreshToken } });
      return save(tokens);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        clear();
        return null;
      }
      throw error;
    }
  };
  if (navigator.locks && navigator.locks.request) return navigator.locks.request(LOCK, run);
  return run();
}

/** Starts the silent refresh timer for this tab (call once per page). */
export function startAutoRefresh() {
  window.addEventListener("storage", (event) => {
    if (event.key === KEY || event.key === null) {
      schedule();
      emit();
    }
  });
  // Timers are throttled in background tabs: check again when the tab comes back.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") tick();
  });
  schedule();
}

/** A guest bearer token (POST /identity/guest), kept for this tab until shortly before expiry. */
export async function guestToken({ renew = false } = {}) {
  const stored = readFrom(sessionStorage, GUEST_KEY);
  if (!renew && stored && stored.expiresAt - Date.now() > 30_000) return stored.token;
  const answer = await requestJson("POST", "/identity/guest");
  const guest = {
    token: answer.token,
    identityId: answer.identityId,
    expiresAt: Date.now() + (Number(answer.expiresIn) || 3600) * 1000,
  };
  sessionStorage.setItem(GUEST_KEY, JSON.stringify(guest));
  return guest.token;
}

/** Ends the session on the server (best effort) and here. */
export async function signOut() {
  const session = current();
  if (session) {
    try {
      const token = await accessToken();
      if (token) {
        await requestJson("POST", "/auth/signout", { body: { refreshToken: current()?.refreshToken }, token });
      }
    } catch {
      // The tokens are forgotten here whatever the server said; they expire on their own.
    }
  }
  localStorage.removeItem(UPLOADS_KEY);
  clear();
}

function fresh(session) {
  return session.expiresAt - Date.now() > session.margin;
}

function schedule() {
  if (timer) clearTimeout(timer);
  timer = null;
  const session = current();
  if (!session) return;
  const wait = Math.max(0, session.expiresAt - session.margin - Date.now());
  timer = setTimeout(tick, Math.min(wait, 2 ** 31 - 1));
}

async function tick() {
  const session = current();
  if (!session) return;
  if (fresh(session)) {
    schedule();
    return;
  }
  try {
    await refresh(session.refreshToken);
  } catch {
    // Offline or the server is down: try again in a little while; the token may still be valid.
    timer = setTimeout(tick, 15_000);
  }
}

function emit() {
  const session = current();
  for (const listener of listeners) listener(session);
}

function read(key) {
  return readFrom(localStorage, key);
}

function readFrom(storage, key) {
  try {
    const value = JSON.parse(storage.getItem(key) || "null");
    return value && typeof value === "object" ? value : null;
  } catch {
    return null;
  }
}

/** The claims of a JWT, without verifying it (the server verifies; this only reads email and groups). */
function decode(jwt) {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(payload + "=".repeat((4 - (payload.length % 4)) % 4));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}
