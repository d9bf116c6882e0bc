// A poll trial: photos shown larger than their own size are drawn with crisp pixels, not blurred.
"use strict";
function markEnlarged(picture) {
  if (!picture.naturalWidth) return;
  const scale = Math.min(picture.clientWidth / picture.naturalWidth, picture.clientHeight / picture.naturalHeight);
  picture.classList.toggle("enlarged", scale > 1);
}
const pictures = document.querySelectorAll(".pair img");
pictures.forEach((picture) => {
  if (picture.complete) markEnlarged(picture);
  picture.addEventListener("load", () => markEnlarged(picture));
});
window.addEventListener("resize", () => pictures.forEach(markEnlarged));
