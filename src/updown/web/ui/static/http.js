// HTTP to updown's JSON API: one request function, and ApiError for every problem+json answer.

/** An API error in words: `code` is the stable machine string, `detail` the sentence to show. */
export class ApiError extends Error {
  constructor(status, code, detail, retryAfter = null) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }

  static from(status, body, retryAfter) {
    if (body && typeof body === "object" && body.code) {
      return new ApiError(status, body.code, body.detail || body.title || `Error ${status}`, retryAfter);
    }
    return new ApiError(status, `HTTP${status}`, `The server answered ${status}. Try again in a moment.`, retryAfter);
  }
}

export const OFFLINE = "NetworkError";

/**
 * Sends a JSON request; resolves to the decoded body (null for 204), rejects with ApiError.
 * @param {string} method
 * @param {string} url
 * @param {{body?: unknown, token?: string|null, signal?: AbortSignal}} [options]
 */
export async function requestJson(method, url, { body, token, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
      credentials: "omit",
    });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(0, OFFLINE, "The server could not be reached. Check your connection and try again.");
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const retry = Number(response.headers.get("retry-after")) || null;
    throw ApiError.from(response.status, data, retry);
  }
  return data;
}
