// pseudicom ImageViewer view (anywidget ES module). Hand-written source, not generated.
// A stack viewer: slices of a series (mouse wheel, slider, arrow/page keys), frames of a
// multi-frame image (slider, left/right keys, cine play), window centre/width by drag with the
// left mouse button or by preset, zoom (0 = fit to the cell).
// Python sends the pixels of each (slice, frame) once, on request, as real-world values
// (Int16 or Float32, or RGB bytes); windowing is done here, so scrolling and window changes need
// no round trip. The view asks for the shown slice and prefetches its neighbours. The pixels
// travel as custom messages with binary buffers, not traits: a trait would keep one slice only
// and would store pixel data in the saved notebook's widget state.
// Colours of the controls come from JupyterLab's theme variables (--jp-*).

const FG = "var(--jp-ui-font-color1, #222)";
const BG = "var(--jp-layout-color1, #fff)";
const CONTROL = `color:${FG};background:${BG};border:1px solid var(--jp-border-color1, #ccc)`;
const PREFETCH = 8;      // neighbours asked for on each side of the shown slice
const CACHE = 160;       // decoded (slice, frame) pixel arrays kept in the view

function make(tag, props, text) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  if (text !== undefined) e.textContent = text;
  return e;
}

function windowInto(rgba, values, center, width) {
  // DICOM linear VOI (PS3.3 C.11.2.1.2), the same formula as pseudicom.widgets.image.window_image
  const lo = center - 0.5, span = Math.max(width - 1, 1e-9);
  for (let i = 0, j = 0; i < values.length; i++, j += 4) {
    let y = width > 1 ? ((values[i] - lo) / span + 0.5) : (values[i] > lo ? 1 : 0);
    y = Math.round(y * 255);
    y = y < 0 ? 0 : y > 255 ? 255 : y;
    rgba[j] = rgba[j + 1] = rgba[j + 2] = y; rgba[j + 3] = 255;
  }
}

function render({ model, el }) {
  el.classList.add("pseudicom-image-viewer");
  el.style.cssText = `color:${FG};font:12px var(--jp-ui-font-family, sans-serif)`;
  const bar = make("div", { className: "piv-bar" });
  bar.style.cssText = "display:flex;gap:6px;align-items:center;flex-wrap:wrap;margin:4px 0";
  const sliceIn = make("input", { type: "range", min: 0, step: 1, title: "slice (wheel, ↑/↓, PgUp/PgDn)", className: "piv-slice" });
  const frameIn = make("input", { type: "range", min: 0, step: 1, title: "frame (←/→)", className: "piv-frame" });
  const play = make("button", { className: "piv-play", title: "cine" }, "▶ play");
  const preset = make("select", { className: "piv-preset", title: "window preset" });
  const zoom = make("select", { className: "piv-zoom", title: "zoom" });
  for (const [v, t] of [[0, "fit"], [0.5, "50%"], [1, "100%"], [2, "200%"], [4, "400%"]]) zoom.append(make("option", { value: v }, t));
  const rules = make("label", {}, ""), rulesBox = make("input", { type: "checkbox" });
  rules.append(rulesBox, " pixel rules");
  const sugg = make("label", {}, ""), suggBox = make("input", { type: "checkbox" });
  sugg.append(suggBox, " suggestions");
  for (const c of [play, preset, zoom]) c.style.cssText = CONTROL;
  bar.append(sliceIn, frameIn, play, "window", preset, "zoom", zoom, rules, sugg);
  const label = make("div", { className: "piv-label" });
  const message = make("div", { className: "piv-message" });
  message.style.cssText = `font-weight:bold;padding:3px 4px;margin:2px 0;border-left:3px solid var(--jp-warn-color1, #f90);` +
                          `background:color-mix(in srgb, var(--jp-warn-color1, #f90) 15%, ${BG})`;
  const follow = make("button", { className: "piv-follow" }, "follow");
  follow.style.cssText = CONTROL + ";margin-left:6px";
  const box = make("div", { className: "piv-box" });
  box.style.cssText = "overflow:auto;max-width:100%";
  const canvas = make("canvas", { tabIndex: 0, className: "piv-canvas" });
  canvas.style.cssText = "display:block;image-rendering:pixelated;cursor:ns-resize;border:1px solid var(--jp-border-color1, #888)";
  box.append(canvas);
  el.append(bar, label, message, box);

  const cache = new Map();   // "slice,frame" -> {kind, rows, cols, data}
  const pending = new Set();
  let shown = null;          // key of the pixels on the canvas
  let local = null;          // {center, width} while dragging (not yet sent)
  let timer = null;
  const key = (s, f) => `${s},${f}`;

  function want(s, f) {
    const n = model.get("n_slices"), nf = model.get("n_frames"), keys = [];
    const add = (a, b) => { if (a >= 0 && a < n && b >= 0 && b < nf && !cache.has(key(a, b)) && !pending.has(key(a, b))) keys.push([a, b]); };
    add(s, f);
    for (let d = 1; d <= PREFETCH; d++) { if (n > 1) { add(s + d, f); add(s - d, f); } if (nf > 1) { add(s, f + d); add(s, f - d); } }
    if (keys.length) { keys.forEach((k) => pending.add(key(...k))); model.send({ type: "want", keys }); }
  }

  model.on("msg:custom", (msg, buffers) => {
    if (msg.type === "reset") { cache.clear(); pending.clear(); shown = null; draw(); return; }
    if (msg.type !== "pixels") return;
    const buf = buffers[0].buffer.slice(buffers[0].byteOffset, buffers[0].byteOffset + buffers[0].byteLength);
    const data = msg.kind === "int16" ? new Int16Array(buf) : msg.kind === "float32" ? new Float32Array(buf) : new Uint8Array(buf);
    const k = key(msg.slice, msg.frame);
    pending.delete(k);
    cache.set(k, { kind: msg.kind, rows: msg.rows, cols: msg.cols, data });
    if (cache.size > CACHE) cache.delete(cache.keys().next().value);   // oldest first
    if (msg.slice === model.get("slice") && msg.frame === model.get("frame")) draw();
  });

  function scale() {
    const z = model.get("zoom"), cols = model.get("cols"), rows = model.get("rows");
    if (z > 0) return z;
    const avail = Math.max(100, (el.parentElement || el).clientWidth - 4);
    return Math.min(avail / cols, 480 / rows);
  }

  function draw() {
    const s = model.get("slice"), f = model.get("frame"), px = cache.get(key(s, f));
    const cols = model.get("cols"), rows = model.get("rows"), z = scale();
    canvas.style.width = `${Math.round(cols * z)}px`; canvas.style.height = `${Math.round(rows * z)}px`;
    drawLabel();
    if (!px) { want(s, f); return; }
    if (canvas.width !== px.cols || canvas.height !== px.rows) { canvas.width = px.cols; canvas.height = px.rows; }
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(px.cols, px.rows);
    if (px.kind === "rgb") {
      for (let i = 0, j = 0; i < px.data.length; i += 3, j += 4) { img.data[j] = px.data[i]; img.data[j + 1] = px.data[i + 1]; img.data[j + 2] = px.data[i + 2]; img.data[j + 3] = 255; }
    } else {
      const w = local || { center: model.get("center"), width: model.get("width") };
      windowInto(img.data, px.data, w.center, w.width);
    }
    ctx.putImageData(img, 0, 0);
    for (const o of model.get("outlines")) {
      ctx.save(); ctx.strokeStyle = o.colour; ctx.lineWidth = Math.max(1, 2 / z);
      if (o.kind === "suggestion") ctx.setLineDash([4 / z, 3 / z]);
      ctx.strokeRect(o.box[0] + 0.5, o.box[1] + 0.5, o.box[2] - o.box[0] - 1, o.box[3] - o.box[1] - 1);
      ctx.restore();
    }
    shown = key(s, f);
    canvas.dataset.shown = shown;   // tests wait on this
    want(s, f);                     // keep the neighbours coming
  }

  function drawLabel() {
    const s = model.get("slice"), n = model.get("n_slices"), f = model.get("frame"), nf = model.get("n_frames");
    const pos = model.get("positions")[s];
    const w = local || { center: model.get("center"), width: model.get("width") };
    const parts = [model.get("title")];
    if (n > 1) parts.push(`slice ${s + 1}/${n}` + (pos === null || pos === undefined ? "" : ` at ${pos.toFixed(1)} mm`));
    if (nf > 1) parts.push(`frame ${f + 1}/${nf}`);
    if (!model.get("colour")) parts.push(`window ${Math.round(w.center)}/${Math.round(w.width)}`);
    label.textContent = parts.join(" · ");
  }

  function layout() {
    const n = model.get("n_slices"), nf = model.get("n_frames");
    sliceIn.max = Math.max(0, n - 1); sliceIn.value = model.get("slice");
    frameIn.max = Math.max(0, nf - 1); frameIn.value = model.get("frame");
    sliceIn.style.display = n > 1 ? "" : "none";
    frameIn.style.display = nf > 1 ? "" : "none";
    play.style.display = n > 1 || nf > 1 ? "" : "none";
    preset.replaceChildren(...model.get("presets").map((p) => make("option", { value: p }, p)));
    if (!model.get("presets").includes(model.get("preset"))) preset.append(make("option", { value: model.get("preset") }, model.get("preset")));
    preset.value = model.get("preset");
    preset.style.display = model.get("colour") ? "none" : "";
    zoom.value = String(model.get("zoom"));
    rulesBox.checked = model.get("show_rules"); suggBox.checked = model.get("show_suggestions");
    message.replaceChildren(model.get("message"));
    if (model.get("can_follow")) message.append(follow);
    message.style.display = model.get("message") ? "" : "none";
    box.style.display = n > 0 ? "" : "none";
    draw();
  }

  function go(s, f) {
    const n = model.get("n_slices"), nf = model.get("n_frames");
    s = Math.max(0, Math.min(n - 1, s)); f = Math.max(0, Math.min(nf - 1, f));
    if (s === model.get("slice") && f === model.get("frame")) return;
    model.set("slice", s); model.set("frame", f); model.save_changes();
    sliceIn.value = s; frameIn.value = f;
    draw();
  }

  canvas.addEventListener("wheel", (e) => { e.preventDefault(); go(model.get("slice") + Math.sign(e.deltaY), model.get("frame")); }, { passive: false });
  canvas.addEventListener("keydown", (e) => {
    const s = model.get("slice"), f = model.get("frame"), step = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10 }[e.key];
    if (step !== undefined) go(s + step, f);
    else if (e.key === "ArrowRight" || e.key === "ArrowLeft") go(s, f + (e.key === "ArrowRight" ? 1 : -1));
    else if (e.key === "Home" || e.key === "End") go(e.key === "Home" ? 0 : model.get("n_slices") - 1, f);
    else return;
    e.preventDefault(); e.stopPropagation();   // JupyterLab's notebook shortcuts would take them
  });
  for (const input of [sliceIn, frameIn]) input.addEventListener("keydown", (e) => e.stopPropagation());
  sliceIn.addEventListener("input", () => go(Number(sliceIn.value), model.get("frame")));
  frameIn.addEventListener("input", () => go(model.get("slice"), Number(frameIn.value)));

  let drag = null;   // window by left-button drag: right = wider, down = higher centre
  canvas.addEventListener("mousedown", (e) => {
    if (e.button !== 0 || model.get("colour")) return;
    e.preventDefault(); canvas.focus();
    drag = { x: e.clientX, y: e.clientY, center: model.get("center"), width: model.get("width") };
  });
  function onMove(e) {
    if (!drag) return;
    const k = Math.max(drag.width, 10) / 200;
    local = { center: drag.center + (e.clientY - drag.y) * k, width: Math.max(1, drag.width + (e.clientX - drag.x) * k) };
    draw();
  }
  function onUp() {
    if (!drag) return;
    drag = null;
    if (local) { model.set("center", local.center); model.set("width", local.width); model.set("preset", "custom"); model.save_changes(); }
    local = null;
  }
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);

  play.addEventListener("click", () => {
    if (timer) { clearInterval(timer); timer = null; play.textContent = "▶ play"; return; }
    play.textContent = "■ stop";
    timer = setInterval(() => {
      const nf = model.get("n_frames");
      if (nf > 1) go(model.get("slice"), (model.get("frame") + 1) % nf);
      else go((model.get("slice") + 1) % model.get("n_slices"), 0);
    }, Math.max(20, model.get("frame_time_ms")));
  });
  preset.addEventListener("change", () => { model.set("preset", preset.value); model.save_changes(); });
  zoom.addEventListener("change", () => { model.set("zoom", Number(zoom.value)); model.save_changes(); });
  rulesBox.addEventListener("change", () => { model.set("show_rules", rulesBox.checked); model.save_changes(); });
  suggBox.addEventListener("change", () => { model.set("show_suggestions", suggBox.checked); model.save_changes(); });
  follow.addEventListener("click", () => { model.set("_follow", model.get("_follow") + 1); model.save_changes(); });

  for (const t of ["n_slices", "n_frames", "presets", "preset", "zoom", "show_rules", "show_suggestions", "message", "can_follow", "colour"])
    model.on(`change:${t}`, layout);
  for (const t of ["slice", "frame", "center", "width", "outlines", "title", "positions", "rows", "cols"])
    model.on(`change:${t}`, () => { sliceIn.value = model.get("slice"); frameIn.value = model.get("frame"); draw(); });
  const resize = new ResizeObserver(() => { if (model.get("zoom") === 0) draw(); });
  resize.observe(el);
  layout();
  return () => {
    window.removeEventListener("mousemove", onMove);
    window.removeEventListener("mouseup", onUp);
    if (timer) clearInterval(timer);
    resize.disconnect();
  };
}

export default { render };
