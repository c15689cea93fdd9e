// The authenticator on `/` (our withAuthenticator): sign in, sign up, confirm with the mailed
// code, forgot and reset password, and the new-password challenge of an admin-created user.
// Every API error is shown in words next to the field it is about.
import { apiError, busy, clearErrors, fieldError, notice, requireFields } from "./forms.js";
import { ApiError, requestJson } from "./http.js";
import * as session from "./session.js";

const TITLES = {
  signin: "Sign in",
  signup: "Create account",
  confirm: "Confirm your account",
  forgot: "Reset your password",
  reset: "Reset your password",
  newpassword: "Choose a new password",
};
const EMAIL = { email: "Enter your email." };

/** Wires the authenticator's forms; `onSignedIn()` runs once tokens are stored. */
export function mountAuthenticator(root, { onSignedIn }) {
  const forms = Object.fromEntries([...root.querySelectorAll("form[data-view]")].map((f) => [f.dataset.view, f]));
  const title = root.querySelector("[data-auth-title]");
  const tabs = root.querySelector("[data-auth-tabs]");
  // Kept in memory only, so that confirming right after sign-up signs in without asking again.
  const state = { email: "", password: "", challenge: null };

  function go(view, { message = "", focus = true } = {}) {
    for (const [name, form] of Object.entries(forms)) {
      form.hidden = name !== view;
      clearErrors(form);
      notice(form, "");
    }
    title.textContent = TITLES[view];
    tabs.hidden = view !== "signin" && view !== "signup";
    for (const tab of tabs.querySelectorAll("[role=tab]")) {
      const selected = tab.dataset.goto === view;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
    }
    const form = forms[view];
    const email = form.elements.namedItem("email");
    if (email && state.email) email.value = state.email;
    if (message) notice(form, message);
    if (focus) ([...form.querySelectorAll("input")].find((input) => !input.value) || form.querySelector("input"))?.focus();
  }

  root.addEventListener("click", (event) => {
    const target = event.target.closest("[data-goto]");
    if (!target) return;
    event.preventDefault();
    go(target.dataset.goto);
  });
  tabs.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const next = forms.signin.hidden ? "signin" : "signup";
    go(next, { focus: false });
    tabs.querySelector(`[data-goto="${next}"]`).focus();
  });

  async function signIn(email, password) {
    const answer = await requestJson("POST", "/auth/signin", { body: { email, password } });
    if (answer.challenge === "NEW_PASSWORD_REQUIRED") {
      state.challenge = answer.session;
      go("newpassword");
      return;
    }
    state.password = "";
    session.save(answer);
    onSignedIn();
  }

  handle(forms.signin, async (form, values) => {
    if (!requireFields(form, { ...EMAIL, password: "Enter your password." })) return;
    state.email = values.email;
    try {
      await signIn(values.email, values.password);
    } catch (error) {
      if (error instanceof ApiError && error.code === "UserNotConfirmed") {
        state.password = values.password;
        go("confirm", { message: "Your account is not confirmed yet. Enter the code we emailed you, or ask for a new one." });
        return;
      }
      throw error;
    }
  });

  handle(forms.signup, async (form, values) => {
    if (!requireFields(form, { ...EMAIL, password: "Choose a password.", confirm: "Type the password again." })) return;
    if (values.password !== values.confirm) return fieldError(form, "confirm", "The passwords do not match.");
    const answer = await requestJson("POST", "/auth/signup", { body: { email: values.email, password: values.password } });
    state.email = values.email;
    state.password = values.password;
    const where = answer.delivery && answer.delivery.destination;
    forms.confirm.querySelector("[data-confirm-intro]").textContent =
      `We emailed a code to ${where || values.email}. Enter it below to confirm your account.`;
    go("confirm");
  });

  handle(forms.confirm, async (form, values) => {
    if (!requireFields(form, { ...EMAIL, code: "Enter the code from the email." })) return;
    await requestJson("POST", "/auth/confirm", { body: { email: values.email, code: values.code.trim() } });
    if (state.password && state.email === values.email) {
      await signIn(values.email, state.password);
    } else {
      state.email = values.email;
      go("signin", { message: "Your account is confirmed. Sign in." });
    }
  });

  forms.confirm.querySelector("[data-action=resend]").addEventListener("click", () => {
    const form = forms.confirm;
    clearErrors(form);
    if (!requireFields(form, EMAIL)) return;
    busy(form, async () => {
      try {
        await requestJson("POST", "/auth/resend-code", { body: { email: form.elements.email.value.trim() } });
        notice(form, "We sent a new code. It replaces the one before.");
      } catch (error) {
        apiError(form, error);
      }
    });
  });

  handle(forms.forgot, async (form, values) => {
    if (!requireFields(form, EMAIL)) return;
    await requestJson("POST", "/auth/forgot-password", { body: { email: values.email } });
    state.email = values.email;
    go("reset");
  });

  handle(forms.reset, async (form, values) => {
    if (!requireFields(form, { ...EMAIL, code: "Enter the code from the email.", password: "Choose a new password." })) {
      return;
    }
    await requestJson("POST", "/auth/reset-password", {
      body: { email: values.email, code: values.code.trim(), newPassword: values.password },
    });
    state.email = values.email;
    forms.signin.elements.password.value = "";
    go("signin", { message: "Your password has been changed. Sign in with the new one." });
  });

  handle(forms.newpassword, async (form, values) => {
    if (!requireFields(form, { password: "Choose a new password.", confirm: "Type the password again." })) return;
    if (values.password !== values.confirm) return fieldError(form, "confirm", "The passwords do not match.");
    try {
      const tokens = await requestJson("POST", "/auth/challenge", {
        body: { session: state.challenge, newPassword: values.password },
      });
      state.challenge = null;
      session.save(tokens);
      onSignedIn();
    } catch (error) {
      if (error instanceof ApiError && error.code === "NotAuthorized") {
        go("signin", { message: "That took too long and the sign-in has expired. Sign in again." });
        return;
      }
      throw error;
    }
  });

  return { go };
}

/** Submits `form` through `work(form, values)`; API errors land next to their field. */
function handle(form, work) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form);
    notice(form, "");
    const values = {};
    for (const [name, value] of new FormData(form)) values[name] = name === "email" ? String(value).trim() : String(value);
    busy(form, async () => {
      try {
        await work(form, values);
      } catch (error) {
        if (error instanceof ApiError) apiError(form, error);
        else throw error;
      }
    });
  });
}
