// The colorize page: send the chosen photo to the API, show grayscale | colorized | original.
"use strict";
const fileInput = document.getElementById("file");
const drop = document.getElementById("drop");
const statusLine = document.getElementById("status");
const errorLine = document.getElementById("error");
const result = document.getElementById("result");
const download = document.getElementById("download");
const pictures = ["gray", "colorized", "original"].map((id) => document.getElementById(id));
let urls = [];  // the object URLs the result shows, released when it is cleared
let photo = null;  // the photo shown or being colorized: a change of mode colorizes it again
let newest = 0;  // the number of the newest colorization asked for: answers to older ones are dropped

function selectedMode() {
  const checked = document.querySelector('input[name="mode"]:checked');
  return checked ? checked.value : "deterministic";
}

async function post(path, file, mode) {
  const form = new FormData();
  form.append("image", file);
  const url = path + (path.includes("?") ? "&" : "?") + "mode=" + encodeURIComponent(mode);
  const response = await fetch(url, { method: "POST", body: form, headers: { Accept: "application/json" } });
  if (!response.ok) {
    let message = "the server answered " + response.status;
    try { message = (await response.json()).detail || message; } catch (ignored) { /* not JSON */ }
    throw new Error(message);
  }
  return URL.createObjectURL(await response.blob());
}

// Whether this browser can show the image at `url` itself (Chromium cannot show TIFF, for one).
async function displayable(url) {
  const probe = new Image();
  probe.src = url;
  try { await probe.decode(); return true; } catch (ignored) { return false; }
}

// Nothing of an earlier photo stays: no images, no download link, no result area.
function clearResult() {
  result.hidden = true;
  pictures.forEach((picture) => picture.removeAttribute("src"));
  download.removeAttribute("href");
  urls.forEach((url) => URL.revokeObjectURL(url));
  urls = [];
}

async function colorize(file) {
  const number = ++newest;
  photo = file;
  clearResult();
  errorLine.hidden = true;
  errorLine.textContent = "";
  statusLine.textContent = "Colorizing " + file.name + "…";
  const made = [];
  try {
    const mode = selectedMode();
    made.push(await post("/api/colorize?format=png", file, mode));
    made.push(await post("/api/grayscale", file, mode));
    const own = URL.createObjectURL(file);
    made.push(own);
    if (!(await displayable(own))) made.push(await post("/api/original", file, mode));  // TIFF, say
  } catch (error) {
    made.forEach((url) => URL.revokeObjectURL(url));
    if (number === newest) {
      statusLine.textContent = "";
      errorLine.textContent = error.message;  // text, never HTML
      errorLine.hidden = false;
    }
    return;
  }
  if (number !== newest) {  // another photo or mode was asked for meanwhile
    made.forEach((url) => URL.revokeObjectURL(url));
    return;
  }
  const [colorized, gray, original] = [made[0], made[1], made[made.length - 1]];
  urls = made;
  document.getElementById("colorized").src = colorized;
  document.getElementById("gray").src = gray;
  document.getElementById("original").src = original;
  download.href = colorized;
  download.download = file.name.replace(/\.[^.]*$/, "") + "_colorized.png";
  result.hidden = false;
  statusLine.textContent = "Done: " + file.name;
}

document.querySelectorAll('input[name="mode"]').forEach((choice) => choice.addEventListener("change", () => {
  if (photo) colorize(photo);
}));
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
