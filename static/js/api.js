// JSON over HTTP (docs/http-api.md). Failures become ServerErrors with a readable message,
// including the endpoints a given server does not have yet.

import { ServerError } from "./socket.js";

export async function api(path, { method = "GET", body, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ServerError("offline", "Cannot reach the server; check that it is running.");
  }
  if (response.ok) {
    return response.headers.get("Content-Type")?.includes("json") ? response.json() : response;
  }
  throw await errorFrom(response, path);
}

export async function errorFrom(response, path) {
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    // not JSON: fall through to a message from the status
  }
  if (payload?.error?.message) return new ServerError(payload.error.code, payload.error.message);
  if (response.status === 404) {
    return new ServerError("not_found", `This server does not offer ${path.split("?")[0]} yet.`);
  }
  if (response.status === 401 || response.status === 403) {
    return new ServerError("unauthorized", "The admin token was not accepted; log in again.");
  }
  return new ServerError("http", `The server answered ${response.status} for ${path}.`);
}
