// What every page shares: the header's account area, sign-out, the silent token refresh, and the
// Admin link, shown to the admin group only (cosmetic: the API refuses everyone else anyway).
import * as session from "./session.js";

/**
 * Starts the page shell. `requireUser`: a page for signed-in users only; without a session the
 * browser goes to the sign-in page, and comes back here after.
 */
export function startShell({ requireUser = false } = {}) {
  session.startAutoRefresh();
  const account = document.querySelector("[data-account]");
  const email = document.querySelector("[data-account-email]");
  const signOutButton = document.querySelector("[data-sign-out]");
  const adminLink = document.querySelector("[data-admin-link]");
  const render = (current) => {
    account.hidden = !current;
    email.textContent = current ? current.email : "";
    if (adminLink) adminLink.hidden = !(current && session.groups().includes("admin"));
  };
  render(session.current());
  session.onChange((current) => {
    render(current);
    if (!current && requireUser) goToSignIn();
  });
  signOutButton.addEventListener("click", async () => {
    signOutButton.disabled = true;
    await session.signOut();
    signOutButton.disabled = false;
    window.location.assign("/");
  });
  if (requireUser && !session.current()) {
    goToSignIn();
    return false;
  }
  return true;
}

function goToSignIn() {
  const next = window.location.pathname + window.location.search;
  window.location.assign(`/?next=${encodeURIComponent(next)}`);
}

/** Where to go after signing in: a same-origin path from ?next=, else null. */
export function nextPath() {
  const next = new URLSearchParams(window.location.search).get("next");
  return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : null;
}
