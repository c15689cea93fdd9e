// Form feedback: an error in words next to its field (aria-invalid + aria-describedby), or for
// the whole form; and which field an API error code belongs to.

const FIELD_OF_CODE = {
  UsernameExists: "email",
  UserNotFound: "email",
  InvalidPassword: "password",
  NotAuthorized: "password",
  CodeMismatch: "code",
  ExpiredCode: "code",
};

export function clearErrors(form) {
  for (const error of form.querySelectorAll("[data-error-for]")) {
    error.hidden = true;
    error.textContent = "";
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const formError = form.querySelector("[data-form-error]");
  if (formError) {
    formError.hidden = true;
    formError.textContent = "";
  }
}

export function fieldError(form, name, message) {
  const error = form.querySelector(`[data-error-for="${name}"]`);
  const input = form.elements.namedItem(name);
  if (!error || !input) return formError(form, message);
  error.textContent = message;
  error.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.focus();
}

export function formError(form, message) {
  const element = form.querySelector("[data-form-error]");
  if (!element) return;
  element.textContent = message;
  element.hidden = false;
}

export function notice(form, message) {
  const element = form.querySelector("[data-form-notice]");
  if (!element) return;
  element.textContent = message || "";
  element.hidden = !message;
}

/**
 * Shows an API error where it belongs: the field its code (or a validation detail such as
 * "email: ...") names, when the form has that field; else above the form.
 */
export function apiError(form, error, fieldMap = {}) {
  const detail = error.detail || error.message || "Something went wrong.";
  const named = /^([A-Za-z]+)(?:\.[A-Za-z0-9_]+)*:/.exec(detail);
  const candidates = [fieldMap[error.code], FIELD_OF_CODE[error.code], named && (fieldMap[named[1]] || named[1])];
  for (const name of candidates) {
    if (name && form.elements.namedItem(name)) return fieldError(form, name, sentence(error, detail));
  }
  formError(form, sentence(error, detail));
}

function sentence(error, detail) {
  if (error.code === "TooManyRequests" && error.retryAfter) {
    return `${detail} Try again in ${error.retryAfter} s.`;
  }
  return detail;
}

/** A required field left empty: says so next to it; returns whether all were filled. */
export function requireFields(form, labels) {
  for (const [name, message] of Object.entries(labels)) {
    const input = form.elements.namedItem(name);
    if (input && !String(input.value).trim()) {
      fieldError(form, name, message);
      return false;
    }
  }
  return true;
}

/** Disables a form's buttons while `work` runs, so a double click sends one request. */
export async function busy(form, work) {
  const buttons = [...form.querySelectorAll("button")];
  for (const button of buttons) button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    for (const button of buttons) button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}
