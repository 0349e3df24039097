// Short messages that come and go: results, pushes from the server and readable errors.

const region = () => document.getElementById("toasts");

// kind: "info" | "good" | "bad" | "error"
export function toast(text, kind = "info", timeoutMs = 5000) {
  const item = document.createElement("div");
  item.className = `toast toast-${kind}`;
  item.setAttribute("role", kind === "error" ? "alert" : "status");
  item.textContent = text;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.addEventListener("click", () => item.remove());
  item.append(close);
  region().append(item);
  setTimeout(() => item.remove(), timeoutMs);
  return item;
}

// Every failure reaches the player as a sentence, never only the console.
export function showError(error) {
  const text = error?.message || "Something went wrong; please try again.";
  console.warn("server error", error?.code, text);
  return toast(text, "error", 8000);
}
