// The web page: upload each dropped or chosen image, follow its job by long-polling
// the status endpoint, then preview and offer the results for download.
"use strict";

const TERMINAL = new Set(["SUCCESS", "FAILURE"]);
const KEY_STORAGE = "imgresize.apiKey";
const $ = (id) => document.getElementById(id);

function authHeaders() {
  const key = $("api-key").value.trim();
  return key ? { "X-API-Key": key } : {};
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

async function errorText(response) {
  try {
    const body = await response.json();
    return `${response.status} ${body.code}: ${body.message}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

function bytes(count) {
  return count < 1024 ? `${count} B` : `${(count / 1024).toFixed(count < 10240 ? 1 : 0)} KB`;
}

function formFor(file, lane) {
  const form = new FormData();
  form.append("file", file);
  form.append("priority", lane);
  const sizes = $("sizes").value.trim();
  if (sizes) {
    form.append("sizes", sizes);
  } else {
    for (const name of ["width", "height"]) {
      if ($(name).value) form.append(name, $(name).value);
    }
  }
  form.append("mode", $("mode").value);
  for (const name of ["format", "gravity", "quality"]) {
    if ($(name).value) form.append(name, $(name).value);
  }
  return form;
}

class Job {
  constructor(file, lane) {
    this.file = file;
    this.lane = lane;
    this.node = element("li", { class: "job" });
    this.node.dataset.lane = lane;
    this.node.append(element("h2", {}, file.name), element("span", { class: "lane" }, lane));
    this.state = element("span", { class: "state" });
    this.message = element("p", { class: "message" });
    this.results = element("div", { class: "results" });
    this.node.append(this.state, this.message, this.results);
    $("jobs").prepend(this.node);
    this.show("UPLOADING", bytes(file.size));
  }

  show(state, message = "") {
    this.state.textContent = state;
    this.state.dataset.state = state;
    this.node.dataset.state = state;
    this.message.textContent = message;
  }

  async run() {
    // format=auto picks from Accept; fetch() sends */*, so say what an <img> here takes.
    const accept = $("format").value === "auto" ? { Accept: "image/avif,image/webp,image/*,*/*" } : {};
    const response = await fetch("/api/v1/images/resize", {
      method: "POST", body: formFor(this.file, this.lane), headers: { ...authHeaders(), ...accept },
    });
    if (response.status !== 202) {
      this.show("ERROR", await errorText(response));
      return;
    }
    const { task_id: taskId } = await response.json();
    this.node.dataset.taskId = taskId;
    let status = { status: "PENDING" };
    while (!TERMINAL.has(status.status)) {
      this.show(status.status, status.attempts > 1 ? `attempt ${status.attempts}` : "");
      const poll = await fetch(`/api/v1/status/${taskId}?wait=20`, { headers: authHeaders() });
      if (!poll.ok) {
        this.show("ERROR", await errorText(poll));
        return;
      }
      status = await poll.json();
    }
    if (status.status === "FAILURE") {
      this.show("FAILURE", `${status.error.code}: ${status.error.message}`);
      return;
    }
    this.show("SUCCESS", `from ${status.result.source_width}×${status.result.source_height}`);
    const outputs = status.variants || [{ name: "", ...status.result }];
    for (const output of outputs) await this.preview(output);
  }

  async preview(output) {
    // Fetched with the API key, so previews work where the service asks for one.
    const response = await fetch(output.url, { headers: authHeaders() });
    if (!response.ok) {
      this.show("ERROR", await errorText(response));
      return;
    }
    const url = URL.createObjectURL(await response.blob());
    const extension = output.content_type.split("/")[1];
    const base = this.file.name.replace(/\.[^.]*$/, "");
    const figure = element("figure");
    const image = element("img", {
      class: "preview", src: url, alt: `${this.file.name} resized`,
      "data-width": output.width, "data-height": output.height,
    });
    const caption = element("figcaption");
    const label = `${output.name ? output.name + ": " : ""}${output.width}×${output.height}, ${bytes(output.size_bytes)}`;
    caption.append(element("span", {}, label));
    caption.append(element("a", {
      class: "download", href: url, download: `${base}${output.name ? "-" + output.name : ""}.${extension}`,
    }, "download"));
    figure.append(image, caption);
    this.results.append(figure);
  }
}

const BULK_FROM_FILES = 5;

function submit(files) {
  $("notice").hidden = true;
  const images = [...files].filter((f) => f.type.startsWith("image/") || f.type === "");
  if (images.length === 0) {
    $("notice").textContent = "Those were not images.";
    $("notice").hidden = false;
    return;
  }
  // A person waits for a few files; a folder's worth is an import, and goes to the bulk lane.
  const lane = images.length > BULK_FROM_FILES ? "bulk" : "interactive";
  for (const file of images) {
    const job = new Job(file, lane);
    job.run().catch((error) => job.show("ERROR", String(error)));
  }
}

// The size bounds are the service's settings, stated once: in its OpenAPI document.
async function applyLimits() {
  const response = await fetch("/openapi.json");
  if (!response.ok) return;
  const upload = (await response.json()).paths["/api/v1/images/resize"].post.requestBody.content;
  const fields = upload["multipart/form-data"].schema.properties;
  for (const name of ["width", "height"]) {
    if (fields[name] && fields[name].maximum) $(name).max = String(fields[name].maximum);
  }
  // Every gravity the service knows, the ones this page names first.
  const gravity = $("gravity");
  const named = new Set(Array.from(gravity.options, (option) => option.value));
  for (const value of (fields.gravity && fields.gravity.enum) || []) {
    if (!named.has(value)) gravity.append(element("option", { value }, value));
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  await applyLimits().catch(() => {});
  const key = $("api-key");
  key.value = localStorage.getItem(KEY_STORAGE) || "";
  key.addEventListener("change", () => localStorage.setItem(KEY_STORAGE, key.value.trim()));
  $("files").addEventListener("change", (event) => {
    submit(event.target.files);
    event.target.value = "";
  });
  const drop = $("drop");
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    submit(event.dataTransfer.files);
  });
  document.body.dataset.ready = "true";
});
