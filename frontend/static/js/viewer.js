// The image viewer of the reader's case page: fit, zoom at the cursor, pan, invert and a
// brightness/contrast window. Images come in as blobs (from the network or this reader's
// offline copies), so the page decides where each one comes from.

export function initViewer({ loadFull } = {}) {
  const $ = (id) => document.getElementById(id);
  const stage = $("stage");
  const img = $("image");
  const view = { scale: 1, x: 0, y: 0, invert: false, brightness: 100, contrast: 100 };
  let objectUrl = null;
  let displayBlob = null;

  function applyView() {
    img.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
    img.style.filter = `brightness(${view.brightness}%) contrast(${view.contrast}%)${view.invert ? " invert(1)" : ""}`;
    $("invert").setAttribute("aria-pressed", String(view.invert));
  }
  function fit() {
    if (!img.naturalWidth) return;
    const s = Math.min(stage.clientWidth / img.naturalWidth, stage.clientHeight / img.naturalHeight);
    view.scale = s;
    view.x = (stage.clientWidth - img.naturalWidth * s) / 2;
    view.y = (stage.clientHeight - img.naturalHeight * s) / 2;
    applyView();
  }
  function zoom(factor, cx = stage.clientWidth / 2, cy = stage.clientHeight / 2) {
    const s = Math.min(Math.max(view.scale * factor, 0.05), 40);
    view.x = cx - ((cx - view.x) * s) / view.scale;
    view.y = cy - ((cy - view.y) * s) / view.scale;
    view.scale = s;
    applyView();
  }
  function reset() {
    Object.assign(view, { invert: false, brightness: 100, contrast: 100 });
    $("brightness").value = 100; $("contrast").value = 100;
    fit();
  }
  // Show a blob; resolves true once it is decoded and on screen, false if it cannot be.
  function setSource(blob) {
    return new Promise((resolve) => {
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = URL.createObjectURL(blob);
      img.onload = () => { img.hidden = false; fit(); resolve(true); };
      img.onerror = () => { img.hidden = true; resolve(false); };
      img.src = objectUrl;
    });
  }
  function show(blob) {
    displayBlob = blob;
    $("full-res").setAttribute("aria-pressed", "false");
    reset();
    return setSource(blob);
  }
  function clear() {
    displayBlob = null;
    img.removeAttribute("src");
    img.hidden = true;
  }

  window.addEventListener("resize", fit);
  stage.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = stage.getBoundingClientRect();
    zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  let drag = null;
  stage.addEventListener("pointerdown", (e) => {
    if (e.target !== stage && e.target !== img) return;  // a control over the image (Try again)
    drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, b: view.brightness, c: view.contrast, wl: e.button === 2 || e.shiftKey };
    stage.setPointerCapture(e.pointerId);
    stage.classList.add("dragging");
  });
  stage.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (drag.wl) {  // window/level: horizontal = contrast, vertical = brightness
      view.contrast = Math.min(Math.max(drag.c + dx, 20), 400);
      view.brightness = Math.min(Math.max(drag.b - dy, 20), 300);
      $("brightness").value = view.brightness; $("contrast").value = view.contrast;
    } else {
      view.x = drag.vx + dx; view.y = drag.vy + dy;
    }
    applyView();
  });
  const endDrag = () => { drag = null; stage.classList.remove("dragging"); };
  stage.addEventListener("pointerup", endDrag);
  stage.addEventListener("pointercancel", endDrag);
  stage.addEventListener("contextmenu", (e) => e.preventDefault());
  $("zoom-in").addEventListener("click", () => zoom(1.25));
  $("zoom-out").addEventListener("click", () => zoom(0.8));
  $("fit").addEventListener("click", fit);
  $("reset").addEventListener("click", reset);
  $("invert").addEventListener("click", () => { view.invert = !view.invert; applyView(); });
  $("brightness").addEventListener("input", (e) => { view.brightness = Number(e.target.value); applyView(); });
  $("contrast").addEventListener("input", (e) => { view.contrast = Number(e.target.value); applyView(); });
  $("full-res").addEventListener("click", async () => {
    const full = $("full-res").getAttribute("aria-pressed") !== "true";
    if (full && loadFull) {
      const blob = await loadFull();
      if (!blob) return;
      $("full-res").setAttribute("aria-pressed", "true");
      await setSource(blob);
    } else if (displayBlob) {
      $("full-res").setAttribute("aria-pressed", "false");
      await setSource(displayBlob);
    }
  });

  // The viewer's keys; true when `k` was one of them.
  function key(k) {
    if (k === "+" || k === "=") zoom(1.25);
    else if (k === "-") zoom(0.8);
    else if (k === "0") fit();
    else if (k === "i") $("invert").click();
    else return false;
    return true;
  }
  return { show, clear, key };
}
