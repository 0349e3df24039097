// Dataset export: a zip in the chosen layout, filtered by round and outcome.

import { toast } from "../toast.js";
import { adminDownload } from "./client.js";
import { status } from "./dom.js";

export class ExportPanel {
  constructor(root) {
    this.root = root;
    root.querySelector("form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.download(new FormData(event.target));
    });
  }

  async download(form) {
    const query = new URLSearchParams();
    for (const [key, value] of form) if (value) query.set(key, value);
    status(this.root, "Preparing the export…");
    try {
      const name = await adminDownload(`/api/admin/export?${query}`, `fool-the-model-${form.get("format")}.zip`);
      status(this.root, `Downloaded ${name}.`);
      toast(`Downloaded ${name}.`, "good");
    } catch (error) {
      status(this.root, error.message);
    }
  }
}
