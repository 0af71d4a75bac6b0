// The image viewer of the reader's case page.
//
// A case shows its 8-bit display copy first (fast), then its full rendering: a 16-bit PNG over
// the image's whole range, decoded here, and windowed on the image data through a lookup table.
// Window and level are in the image's own units (the rendering says how its grey levels map
// back: value = slope * grey + intercept), so typed numbers mean what the DICOM header's
// numbers mean. Tools: presets, invert, fit, actual size (1:1), zoom to the cursor, pan, a
// magnifier and a distance tool (mm where the pixel spacing is known, pixels otherwise).
// Zoom and window reset at each case unless pinned. Images come in as blobs and responses
// (from the network or this reader's offline copies): the page decides where each comes from.

// ---------- a PNG decoder for 8- and 16-bit grayscale (the browser's own decoder stops at 8) ----------
export async function decodeGrayPng(buffer) {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  const signature = [137, 80, 78, 71, 13, 10, 26, 10];
  if (!signature.every((b, i) => bytes[i] === b)) throw new Error("not a PNG");
  let at = 8, width = 0, height = 0, depth = 0, colour = -1, interlace = 0;
  const idat = [];
  while (at < bytes.length) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (type === "IHDR") {
      width = view.getUint32(at + 8); height = view.getUint32(at + 12);
      depth = bytes[at + 16]; colour = bytes[at + 17]; interlace = bytes[at + 20];
    } else if (type === "IDAT") idat.push(bytes.subarray(at + 8, at + 8 + length));
    else if (type === "IEND") break;
    at += 12 + length;
  }
  if (colour !== 0 || interlace !== 0 || (depth !== 8 && depth !== 16)) throw new Error("not an 8- or 16-bit grayscale PNG");
  const stream = new Blob(idat).stream().pipeThrough(new DecompressionStream("deflate"));
  const raw = new Uint8Array(await new Response(stream).arrayBuffer());
  const bpp = depth / 8, stride = width * bpp;
  const out = new Uint16Array(width * height);
  let prev = new Uint8Array(stride), line = new Uint8Array(stride);
  for (let y = 0; y < height; y += 1) {
    const start = y * (stride + 1), filter = raw[start];
    for (let i = 0; i < stride; i += 1) {
      const x = raw[start + 1 + i], a = i >= bpp ? line[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
      let v;
      if (filter === 0) v = x;
      else if (filter === 1) v = x + a;
      else if (filter === 2) v = x + b;
      else if (filter === 3) v = x + ((a + b) >> 1);
      else { const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c); v = x + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c); }
      line[i] = v & 255;
    }
    const row = y * width;
    if (bpp === 2) for (let x = 0; x < width; x += 1) out[row + x] = (line[2 * x] << 8) | line[2 * x + 1];
    else for (let x = 0; x < width; x += 1) out[row + x] = line[x] * 257;
    [prev, line] = [line, prev];
  }
  return { width, height, grey: out };
}

// The DICOM linear window function (PS3.3 C.11.2.1.2) over every grey level of a rendering.
export function windowLut(center, width, slope, intercept, invert) {
  const lut = new Uint8Array(65536);
  const w = Math.max(width, 1), low = center - 0.5 - (w - 1) / 2, high = center - 0.5 + (w - 1) / 2;
  const flip = (slope < 0) !== invert;  // MONOCHROME1 is already inverted in the rendering's greys
  for (let g = 0; g < 65536; g += 1) {
    const v = slope * g + intercept;
    let y = v <= low ? 0 : v > high ? 255 : Math.round(((v - (center - 0.5)) / (w - 1) + 0.5) * 255);
    if (w <= 1) y = v <= center - 0.5 ? 0 : 255;
    lut[g] = flip ? 255 - y : y;
  }
  return lut;
}

// Window presets: the file's own window first, then the study's (backend.studies.presets):
// absolute ones (a centre and width in the images' units) or ranges of each image's own grey
// levels (percentiles), as projection radiographs have no fixed units.
export function viewerPresets(study = []) {
  return [{ key: "default", label: "File default" }, ...study.map((p) => (
    p.center !== undefined ? { key: p.key, label: p.label, center: p.center, width: p.width }
      : { key: p.key, label: p.label, from: p.from_percentile / 100, to: p.to_percentile / 100 }))];
}

export function initViewer({ loadFull, presets = viewerPresets() } = {}) {
  const $ = (id) => document.getElementById(id);
  const stage = $("stage");
  const canvas = $("image");
  const ctx = canvas.getContext("2d");
  const overlay = $("overlay");
  const lens = $("magnifier");
  const view = { scale: 1, x: 0, y: 0, invert: false, center: null, width: null, preset: "default" };
  let info = null;        // the full rendering's description (rows, columns, slope, ...)
  let full = null;        // its decoded grey levels
  let sorted = null;      // its grey levels' percentiles, for the presets
  let imageData = null;
  let pinned = false;
  let measure = null;     // { active, points: [[x, y] in full-image pixels], cursor }
  let magnify = false;
  let pointer = null;     // the last pointer position over the stage
  let frame = 0;
  let loadToken = 0;

  const imageScale = () => (info ? info.columns / canvas.width : 1);  // full pixels per canvas pixel
  function applyView() {
    canvas.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
    canvas.style.imageRendering = view.scale * (window.devicePixelRatio || 1) >= 2 ? "pixelated" : "auto";
    $("invert").setAttribute("aria-pressed", String(view.invert));
    drawOverlay();
    drawLens();
  }
  function fit() {
    if (!canvas.width) return;
    const s = Math.min(stage.clientWidth / canvas.width, stage.clientHeight / canvas.height);
    view.scale = s;
    view.x = (stage.clientWidth - canvas.width * s) / 2;
    view.y = (stage.clientHeight - canvas.height * s) / 2;
    applyView();
  }
  function zoomTo(s, cx = stage.clientWidth / 2, cy = stage.clientHeight / 2) {
    s = Math.min(Math.max(s, 0.02), 64);
    view.x = cx - ((cx - view.x) * s) / view.scale;
    view.y = cy - ((cy - view.y) * s) / view.scale;
    view.scale = s;
    applyView();
  }
  const zoom = (factor, cx, cy) => zoomTo(view.scale * factor, cx, cy);
  // 1:1: one image pixel on one screen (device) pixel
  const actualSize = () => zoomTo((1 / (window.devicePixelRatio || 1)) * (canvas.width / (info ? info.columns : canvas.width)));

  // ---------- window / level on the image data ----------
  function paint() {
    frame = 0;
    if (!full) {  // the display copy: already through the default window; invert only
      if (imageData) {
        const src = imageData.data, out = new ImageData(imageData.width, imageData.height), dst = out.data;
        for (let i = 0; i < src.length; i += 4) { const v = view.invert ? 255 - src[i] : src[i]; dst[i] = dst[i + 1] = dst[i + 2] = v; dst[i + 3] = 255; }
        ctx.putImageData(out, 0, 0);
      }
      return;
    }
    const lut = windowLut(view.center, view.width, info.slope, info.intercept, view.invert);
    const out = ctx.createImageData(full.width, full.height);
    const px = new Uint32Array(out.data.buffer), grey = full.grey;
    for (let i = 0; i < grey.length; i += 1) { const v = lut[grey[i]]; px[i] = 0xff000000 | (v << 16) | (v << 8) | v; }
    ctx.putImageData(out, 0, 0);
    // what is on the canvas now (the window, and whether inverted): see stage.dataset.window
    stage.dataset.painted = `${Math.round(view.center)}/${Math.round(view.width)}${view.invert ? "/inverted" : ""}`;
    drawLens();
  }
  const schedule = () => { if (!frame) frame = requestAnimationFrame(paint); };
  function showWindow() {
    const ready = Boolean(full);
    for (const id of ["window-center", "window-width", "preset"]) $(id).disabled = !ready;
    if (ready) {
      $("window-center").value = String(Math.round(view.center * 10) / 10);
      $("window-width").value = String(Math.round(view.width * 10) / 10);
      $("preset").value = view.preset;
    }
    stage.dataset.window = ready ? `${Math.round(view.center)}/${Math.round(view.width)}` : "";
  }
  function setWindow(center, width, preset = "custom") {
    if (!full) return;
    view.center = center;
    view.width = Math.max(width, 1);
    view.preset = preset;
    showWindow();
    schedule();
  }
  function percentile(q) {
    if (!sorted) {  // a histogram of the grey levels
      const counts = new Uint32Array(65536);
      for (let i = 0; i < full.grey.length; i += 1) counts[full.grey[i]] += 1;
      sorted = counts;
    }
    const target = q * full.grey.length;
    let seen = 0;
    for (let g = 0; g < 65536; g += 1) { seen += sorted[g]; if (seen >= target) return g; }
    return 65535;
  }
  function applyPreset(key) {
    const preset = presets.find((p) => p.key === key) || presets[0];
    if (!full) return;
    if (preset.center !== undefined) { setWindow(preset.center, preset.width, preset.key); return; }
    if (preset.from === undefined) { setWindow(info.window_center, info.window_width, preset.key); return; }
    const a = info.slope * percentile(preset.from) + info.intercept;
    const b = info.slope * percentile(preset.to) + info.intercept;
    setWindow((a + b) / 2, Math.abs(b - a) + 1, preset.key);
  }
  const nextPreset = () => {
    const i = presets.findIndex((p) => p.key === view.preset);
    applyPreset(presets[(i + 1) % presets.length].key);
  };

  // ---------- a case's images ----------
  async function drawDisplay(blob) {
    const bitmap = await createImageBitmap(blob);
    canvas.width = bitmap.width; canvas.height = bitmap.height;
    ctx.drawImage(bitmap, 0, 0);
    imageData = ctx.getImageData(0, 0, canvas.width, canvas.height);
    bitmap.close?.();
  }
  // Show a case: its display copy first, then the full rendering (loadFull); or, where the full
  // rendering is here already (fetched ahead: `ready` = { info, image }), that alone, at once.
  // Resolves true once the image is on screen, false if it cannot be.
  async function show(blob, ready = null) {
    const token = ++loadToken;
    const keep = pinned && canvas.width ? { rel: view.scale * canvas.width, x: view.x, y: view.y, center: view.center, width: view.width, preset: view.preset, invert: view.invert } : null;
    full = null; info = null; sorted = null; measure = measure && measure.active ? { active: true, points: [], cursor: null } : null;
    let decoded = null;
    try {
      if (ready) decoded = await decodeGrayPng(await ready.image.arrayBuffer());
      else await drawDisplay(blob);
    } catch (err) {
      if (!ready) { canvas.hidden = true; return false; }
      return show(blob);  // the copy fetched ahead cannot be decoded: the display copy, then the network
    }
    if (token !== loadToken) return false;
    canvas.hidden = false;
    if (!keep) { view.invert = false; view.preset = "default"; }
    else view.invert = keep.invert;
    if (decoded) {
      placeFull(decoded, ready.info, keep);
      fit();
    } else {
      fit();
      paint();
      stage.dataset.full = "loading";
    }
    if (keep) { view.scale = keep.rel / canvas.width; view.x = keep.x; view.y = keep.y; applyView(); }
    showWindow();
    if (!decoded) upgrade(token, keep);
    return true;
  }
  // The full rendering on the canvas, windowed on its data: the case's default window, or the
  // pinned one.
  function placeFull(decoded, fullInfo, keep) {
    info = fullInfo; full = decoded; imageData = null;
    canvas.width = full.width; canvas.height = full.height;
    if (keep && keep.center !== null) setWindow(keep.center, keep.width, keep.preset);
    else setWindow(info.window_center, info.window_width, "default");
    paint();
    stage.dataset.full = "shown";
  }
  // Then the full rendering, in place of the display copy at the same size on screen.
  async function upgrade(token, keep) {
    const loaded = loadFull ? await loadFull() : null;
    if (token !== loadToken) return;
    if (!loaded) { stage.dataset.full = "unavailable"; return; }
    try {
      const decoded = await decodeGrayPng(await loaded.image.arrayBuffer());
      if (token !== loadToken) return;
      const rel = view.scale * canvas.width;
      placeFull(decoded, loaded.info, keep);
      view.scale = rel / canvas.width;  // the same size on screen
      applyView();
    } catch (err) {
      stage.dataset.full = "unavailable";
    }
  }
  function clear() {
    loadToken += 1;
    full = null; info = null; imageData = null;
    canvas.hidden = true;
    showWindow();
  }
  function reset() {
    view.invert = false;
    if (full) applyPreset("default"); else paint();
    measure = null; $("measure").setAttribute("aria-pressed", "false");
    fit();
  }

  // ---------- the distance tool ----------
  const toImage = (sx, sy) => [((sx - view.x) / view.scale) * imageScale(), ((sy - view.y) / view.scale) * imageScale()];
  const toStage = ([ix, iy]) => [(ix / imageScale()) * view.scale + view.x, (iy / imageScale()) * view.scale + view.y];
  function distance(a, b) {
    const spacing = info && info.pixel_spacing_mm;
    const dx = b[0] - a[0], dy = b[1] - a[1];
    if (spacing) return { value: Math.hypot(dx * spacing[1], dy * spacing[0]), unit: "mm" };
    return { value: Math.hypot(dx, dy), unit: "px" };
  }
  function measureText() {
    if (!measure || measure.points.length < 2) return "";
    const d = distance(measure.points[0], measure.points[1]);
    return d.unit === "mm" ? `${d.value.toFixed(1)} mm` : `${d.value.toFixed(0)} px (no pixel spacing: pixels, not mm)`;
  }
  function drawOverlay() {
    const parts = [];
    if (measure) {
      const pts = [...measure.points];
      if (measure.cursor && pts.length === 1) pts.push(measure.cursor);
      const s = pts.map(toStage);
      if (s.length === 2) parts.push(`<line x1="${s[0][0]}" y1="${s[0][1]}" x2="${s[1][0]}" y2="${s[1][1]}" class="ruler"/>`);
      for (const [x, y] of s) parts.push(`<circle cx="${x}" cy="${y}" r="4" class="ruler-end"/>`);
      if (measure.active && measure.cursor) {
        const [cx, cy] = toStage(measure.cursor);
        parts.push(`<path d="M${cx - 10} ${cy}H${cx + 10}M${cx} ${cy - 10}V${cy + 10}" class="crosshair"/>`);
      }
      const text = measureText();
      if (text && s.length === 2) parts.push(`<text x="${(s[0][0] + s[1][0]) / 2 + 8}" y="${(s[0][1] + s[1][1]) / 2 - 8}" class="ruler-label">${text}</text>`);
    }
    overlay.innerHTML = parts.join("");
    $("measurement").textContent = measure && measure.points.length === 2 ? `Distance: ${measureText()}` : measure && measure.active ? "Distance tool: click two points (or move with the arrow keys and press Enter twice); Esc ends." : "";
  }
  function toggleMeasure(on = !(measure && measure.active)) {
    measure = on ? { active: true, points: [], cursor: toImage(stage.clientWidth / 2, stage.clientHeight / 2) } : (measure && measure.points.length === 2 ? { ...measure, active: false, cursor: null } : null);
    $("measure").setAttribute("aria-pressed", String(Boolean(measure && measure.active)));
    stage.classList.toggle("measuring", Boolean(measure && measure.active));
    drawOverlay();
  }
  function placePoint(point) {
    if (!measure || !measure.active) return;
    if (measure.points.length === 2) measure.points = [];
    measure.points.push(point);
    if (measure.points.length === 2) stage.dataset.distance = measureText();
    drawOverlay();
  }

  // ---------- the magnifier ----------
  function drawLens() {
    lens.hidden = !magnify;
    if (!magnify || !canvas.width) return;
    const at = pointer || [stage.clientWidth / 2, stage.clientHeight / 2];
    const size = lens.width, factor = 3;
    const [cx, cy] = [(at[0] - view.x) / view.scale, (at[1] - view.y) / view.scale];  // canvas pixels
    const span = size / (view.scale * factor);
    const lctx = lens.getContext("2d");
    lctx.imageSmoothingEnabled = false;
    lctx.fillStyle = "#000"; lctx.fillRect(0, 0, size, size);
    lctx.drawImage(canvas, cx - span / 2, cy - span / 2, span, span, 0, 0, size, size);
    lens.style.left = `${Math.min(at[0] + 20, stage.clientWidth - size)}px`;
    lens.style.top = `${Math.max(at[1] - size - 20, 0)}px`;
  }
  function toggleMagnifier() {
    magnify = !magnify;
    $("magnify").setAttribute("aria-pressed", String(magnify));
    drawLens();
  }

  // ---------- pointer ----------
  window.addEventListener("resize", fit);
  stage.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = stage.getBoundingClientRect();
    zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  let drag = null;
  const local = (e) => { const r = stage.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  stage.addEventListener("pointerdown", (e) => {
    if (e.target !== stage && e.target !== canvas && e.target !== overlay && !overlay.contains(e.target)) return;  // a control over the image
    const [sx, sy] = local(e);
    if (measure && measure.active && e.button === 0 && !e.shiftKey) { placePoint(toImage(sx, sy)); return; }
    drag = { sx, sy, vx: view.x, vy: view.y, c: view.center, w: view.width, wl: e.button === 2 || e.shiftKey };
    stage.setPointerCapture(e.pointerId);
    stage.classList.add("dragging");
  });
  stage.addEventListener("pointermove", (e) => {
    pointer = local(e);
    if (measure && measure.active) { measure.cursor = toImage(...pointer); drawOverlay(); }
    if (magnify) drawLens();
    if (!drag) return;
    const dx = pointer[0] - drag.sx, dy = pointer[1] - drag.sy;
    if (drag.wl && full) {  // window/level: right = wider, down = brighter (a lower level)
      const range = Math.abs(info.slope) * 65535 || 1;
      setWindow(drag.c - (dy * range) / 600, drag.w + (dx * range) / 600);
    } else if (!drag.wl) {
      view.x = drag.vx + dx; view.y = drag.vy + dy;
      applyView();
    }
  });
  stage.addEventListener("pointerleave", () => { pointer = null; });
  const endDrag = () => { drag = null; stage.classList.remove("dragging"); };
  stage.addEventListener("pointerup", endDrag);
  stage.addEventListener("pointercancel", endDrag);
  stage.addEventListener("contextmenu", (e) => e.preventDefault());

  // ---------- controls ----------
  $("zoom-in").addEventListener("click", () => zoom(1.25));
  $("zoom-out").addEventListener("click", () => zoom(0.8));
  $("fit").addEventListener("click", fit);
  $("actual").addEventListener("click", actualSize);
  $("reset").addEventListener("click", reset);
  $("invert").addEventListener("click", () => { view.invert = !view.invert; applyView(); schedule(); });
  $("magnify").addEventListener("click", toggleMagnifier);
  $("measure").addEventListener("click", () => toggleMeasure());
  $("pin").addEventListener("click", () => { pinned = !pinned; $("pin").setAttribute("aria-pressed", String(pinned)); });
  $("preset").replaceChildren(...presets.map((p) => Object.assign(document.createElement("option"), { value: p.key, textContent: p.label })),
    Object.assign(document.createElement("option"), { value: "custom", textContent: "Custom", disabled: true }));
  $("preset").addEventListener("change", (e) => applyPreset(e.target.value));
  const typed = () => {
    const c = Number($("window-center").value), w = Number($("window-width").value);
    if (Number.isFinite(c) && Number.isFinite(w) && w >= 1) setWindow(c, w);
  };
  $("window-center").addEventListener("change", typed);
  $("window-width").addEventListener("change", typed);
  showWindow();

  // The viewer's keys; true when `k` was one of them. While the distance tool is on, the arrows
  // move its crosshair (Shift: 10 image pixels at a time) and Enter places a point.
  function key(k, e = {}) {
    if (measure && measure.active) {
      const step = ((e.shiftKey ? 40 : 4) / view.scale) * imageScale();  // 4 (or 40) screen pixels
      const moves = { arrowleft: [-1, 0], arrowright: [1, 0], arrowup: [0, -1], arrowdown: [0, 1] };
      if (k in moves) {
        const c = measure.cursor || toImage(stage.clientWidth / 2, stage.clientHeight / 2);
        measure.cursor = [c[0] + moves[k][0] * step, c[1] + moves[k][1] * step];
        drawOverlay();
        return true;
      }
      if (k === "enter") { placePoint(measure.cursor || toImage(stage.clientWidth / 2, stage.clientHeight / 2)); return true; }
      if (k === "escape") { toggleMeasure(false); return true; }
    }
    if (e.shiftKey && k.startsWith("arrow")) {  // pan
      const d = 60;
      if (k === "arrowleft") view.x += d; else if (k === "arrowright") view.x -= d;
      else if (k === "arrowup") view.y += d; else view.y -= d;
      applyView();
      return true;
    }
    if (k === "+" || k === "=") zoom(1.25);
    else if (k === "-") zoom(0.8);
    else if (k === "0") fit();
    else if (k === "a") actualSize();
    else if (k === "i") $("invert").click();
    else if (k === "p") nextPreset();
    else if (k === "m") toggleMagnifier();
    else if (k === "d") toggleMeasure();
    else if (k === "k") $("pin").click();
    else if (k === "x") reset();
    else return false;
    return true;
  }
  const modal = () => Boolean(measure && measure.active);
  return { show, clear, key, modal, state: () => ({ ...view, full: Boolean(full), pinned }) };
}
