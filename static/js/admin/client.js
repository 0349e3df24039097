// The admin's HTTP client: the token lives in sessionStorage (this tab only), and a refused
// token sends the admin back to the login form.

import { api, errorFrom } from "../api.js";
import { ServerError } from "../socket.js";

const TOKEN_KEY = "ftm.adminToken";

export const adminToken = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export async function adminApi(path, options = {}) {
  try {
    return await api(path, { ...options, token: adminToken.get() });
  } catch (error) {
    if (error.code === "unauthorized") {
      adminToken.clear();
      window.dispatchEvent(new CustomEvent("admin-logout", { detail: error }));
    }
    throw error;
  }
}

// Downloads need the Authorization header too, so they go through fetch and a blob link.
export async function adminDownload(path, fallbackName) {
  let response;
  try {
    response = await fetch(path, { headers: { Authorization: `Bearer ${adminToken.get()}` } });
  } catch {
    throw new ServerError("offline", "Cannot reach the server; check that it is running.");
  }
  if (!response.ok) throw await errorFrom(response, path);
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return name;
}
