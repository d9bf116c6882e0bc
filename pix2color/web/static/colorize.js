// The colorize page: send the chosen photo to the API, show grayscale | colorized | original.
"use strict";
const fileInput = document.getElementById("file");
const drop = document.getElementById("drop");
const statusLine = document.getElementById("status");
const errorLine = document.getElementById("error");
const result = document.getElementById("result");
let urls = [];

function selectedMode() {
  const checked = document.querySelector('input[name="mode"]:checked');
  return checked ? checked.value : "deterministic";
}

async function post(path, file) {
  const form = new FormData();
  form.append("image", file);
  form.append("mode", selectedMode());
  const response = await fetch(path, { method: "POST", body: form, headers: { Accept: "application/json" } });
  if (!response.ok) {
    let message = "the server answered " + response.status;
    try { message = (await response.json()).detail || message; } catch (ignored) { /* not JSON */ }
    throw new Error(message);
  }
  return URL.createObjectURL(await response.blob());
}

async function colorize(file) {
  urls.forEach((url) => URL.revokeObjectURL(url));
  urls = [];
  errorLine.hidden = true;
  result.hidden = true;
  statusLine.textContent = "Colorizing " + file.name + "…";
  try {
    const colorized = await post("/api/colorize?format=png", file);
    const gray = await post("/api/grayscale", file);
    const original = URL.createObjectURL(file);
    urls = [colorized, gray, original];
    document.getElementById("colorized").src = colorized;
    document.getElementById("gray").src = gray;
    document.getElementById("original").src = original;
    const download = document.getElementById("download");
    download.href = colorized;
    download.download = file.name.replace(/\.[^.]*$/, "") + "_colorized.png";
    result.hidden = false;
    statusLine.textContent = "Done: " + file.name;
  } catch (error) {
    statusLine.textContent = "";
    errorLine.textContent = error.message;  // text, never HTML
    errorLine.hidden = false;
  }
}

fileInput.addEventListener("change", () => { if (fileInput.files.length) colorize(fileInput.files[0]); });
["dragenter", "dragover"].forEach((name) => drop.addEventListener(name, (event) => {
  event.preventDefault();
  drop.classList.add("over");
}));
["dragleave", "drop"].forEach((name) => drop.addEventListener(name, (event) => {
  event.preventDefault();
  drop.classList.remove("over");
}));
drop.addEventListener("drop", (event) => {
  if (event.dataTransfer.files.length) colorize(event.dataTransfer.files[0]);
});
