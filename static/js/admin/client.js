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

// The API's own 401 message speaks to scripts (it names the header); a person gets this.
const WRONG_TOKEN =
  "That admin token is not right. Copy it from the file admin_token in the server's data " +
  "directory (or from FTM_ADMIN_TOKEN, if the server was started with it) and try again.";

export async function adminApi(path, options = {}) {
  try {
    return await api(path, { ...options, token: adminToken.get() });
  } catch (error) {
    if (error.code === "unauthorized") {
      adminToken.clear();
      const refused = new ServerError("unauthorized", WRONG_TOKEN);
      window.dispatchEvent(new CustomEvent("admin-logout", { detail: refused }));
      throw refused;
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
