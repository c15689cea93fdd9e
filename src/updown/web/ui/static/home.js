// The `/` page: the authenticator when signed out, the uploader when signed in.
import { mountAuthenticator } from "./auth.js";
import * as session from "./session.js";
import { nextPath, startShell } from "./shell.js";
import { mountUploader } from "./uploader.js";

startShell();
const authRoot = document.querySelector("[data-authenticator]");
const workspace = document.querySelector("[data-workspace]");
let uploader = null;

const authenticator = mountAuthenticator(authRoot, {
  onSignedIn() {
    const next = nextPath();
    if (next) window.location.assign(next);
    else render();
  },
});

function render() {
  const signedIn = Boolean(session.current());
  const wasSignedIn = !workspace.hidden;
  authRoot.hidden = signedIn;
  workspace.hidden = !signedIn;
  if (signedIn && !uploader) uploader = mountUploader(document.getElementById("home-uploader"));
  // The form that had the focus is gone: move it to the heading of what replaced it.
  if (signedIn && !wasSignedIn && authRoot.contains(document.activeElement)) document.getElementById("upload-title").focus();
  if (!signedIn && wasSignedIn) authenticator.go("signin");
}

session.onChange(render);
render();
if (!session.current()) authenticator.go("signin", { focus: false });
