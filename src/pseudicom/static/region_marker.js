// pseudicom RegionMarker view (anywidget ES module). Hand-written source, not generated.
// Thin view: draws the frame, the boxes and the suggestions; turns mouse drags into ONE
// trait update at the end of a drag, in IMAGE pixel coordinates [x0, y0, x1, y1] (x1/y1
// exclusive). All logic (validation, rules, the recipe, previews) lives in Python.

function toImage(canvas, event) {
  // mouse position -> image pixel coordinates, whatever the CSS size (zoom) of the canvas
  // (getBoundingClientRect includes the border; clientLeft/clientWidth give the drawing area)
  const rect = canvas.getBoundingClientRect();
  const x = (event.clientX - rect.left - canvas.clientLeft) * canvas.width / canvas.clientWidth;
  const y = (event.clientY - rect.top - canvas.clientTop) * canvas.height / canvas.clientHeight;
  return [Math.max(0, Math.min(canvas.width, x)), Math.max(0, Math.min(canvas.height, y))];
}

function inside(box, p) {
  return p[0] >= box[0] && p[0] < box[2] && p[1] >= box[1] && p[1] < box[3];
}

function el_(tag, attrs, text) {
  const e = document.createElement(tag);
  Object.assign(e, attrs || {});
  if (text !== undefined) e.textContent = text;
  return e;
}

// Colours of the controls come from JupyterLab's theme variables (--jp-*), for light and dark themes.
const FG = "var(--jp-ui-font-color1, #222)";
const BG = "var(--jp-layout-color1, #fff)";
const CONTROL = `color:${FG};background:${BG};border:1px solid var(--jp-border-color1, #ccc)`;

function render({ model, el }) {
  el.classList.add("pseudicom-region-marker");
  const bar = el_("div", { className: "prm-bar" });
  bar.style.cssText = `display:flex;gap:6px;align-items:center;flex-wrap:wrap;margin:4px 0;font:12px var(--jp-ui-font-family, sans-serif);color:${FG}`;
  const frame = el_("input", { type: "range", min: 0, step: 1, title: "frame" });
  const frameLabel = el_("span");
  const zoom = el_("select", { title: "zoom" });
  for (const z of [0.5, 1, 2, 3, 4, 6]) zoom.append(el_("option", { value: z }, `${z * 100}%`));
  const scope = el_("select", { title: "which files the rule applies to" });
  scope.append(el_("option", { value: "file" }, "this file"));
  scope.append(el_("option", { value: "device" }, "same device & geometry"));
  const name = el_("input", { type: "text", size: 24, title: "rule name" });
  const accept = el_("button", {}, "accept suggestions");
  const del = el_("button", {}, "delete box");
  const preview = el_("label", {}, "");
  const previewBox = el_("input", { type: "checkbox" });
  preview.append(previewBox, " preview redacted");
  for (const c of [zoom, scope, name, accept, del]) c.style.cssText = CONTROL;
  bar.append(frame, frameLabel, "zoom", zoom, "rule", name, scope, accept, del, preview);
  const canvas = el_("canvas", { tabIndex: 0, className: "prm-canvas" });
  canvas.style.cssText = "cursor:crosshair;image-rendering:pixelated;border:1px solid var(--jp-border-color1, #888);display:block";
  const status = el_("div", { className: "prm-status" });
  status.style.cssText = `font:12px var(--jp-ui-font-family, sans-serif);color:${FG};margin-top:2px`;
  const hint = el_("div", { className: "prm-hint" });   // view-only messages (e.g. a box too small)
  hint.style.cssText = `font:12px var(--jp-ui-font-family, sans-serif);color:${FG};font-weight:bold`;
  el.append(bar, canvas, status, hint);

  let image = null;        // decoded frame (ImageBitmap or HTMLImageElement)
  let drag = null;         // {mode: "new"|"move", start, index, box}
  let selected = -1;       // index of the selected box (view state only)

  function loadImage() {
    const data = model.get("_png");
    if (!data || data.byteLength === 0) { image = null; draw(); return; }
    const blob = new Blob([data], { type: "image/png" });
    const img = new Image();
    img.onload = () => { image = img; draw(); URL.revokeObjectURL(img.src); };
    img.src = URL.createObjectURL(blob);
  }

  function layout() {
    const w = model.get("image_width"), h = model.get("image_height"), z = model.get("zoom");
    canvas.width = w; canvas.height = h;
    canvas.style.width = `${w * z}px`; canvas.style.height = `${h * z}px`;
    const n = model.get("n_frames");
    frame.max = Math.max(0, n - 1); frame.value = model.get("frame");
    frame.style.display = frameLabel.style.display = n > 1 ? "" : "none";
    frameLabel.textContent = `frame ${model.get("frame") + 1}/${n}`;
    zoom.value = String(z);
    scope.value = model.get("scope");
    name.value = model.get("rule_name");
    previewBox.checked = model.get("preview");
    status.textContent = model.get("status");
    draw();
  }

  function strokeBox(ctx, b, colour, dashed, thick) {
    const z = model.get("zoom");
    ctx.save();
    ctx.strokeStyle = colour; ctx.lineWidth = thick / z;
    if (dashed) ctx.setLineDash([4 / z, 3 / z]);
    ctx.strokeRect(b[0] + 0.5 / z, b[1] + 0.5 / z, b[2] - b[0] - 1 / z, b[3] - b[1] - 1 / z);
    ctx.restore();
  }

  function draw() {
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (image) ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    for (const s of model.get("suggestions")) strokeBox(ctx, s.box, "#ffd200", true, 1.5);
    model.get("boxes").forEach((b, i) => {
      const shown = drag && drag.mode === "move" && drag.index === i ? drag.box : b;
      strokeBox(ctx, shown, i === selected ? "#00e5ff" : "#ff3030", false, i === selected ? 3 : 2);
    });
    if (drag && drag.mode === "new" && drag.box) strokeBox(ctx, drag.box, "#ff3030", true, 2);
  }

  function setBoxes(boxes) {
    model.set("boxes", boxes);
    model.save_changes();     // one message to Python per finished gesture
  }

  canvas.addEventListener("mousedown", (e) => {
    if (e.button !== 0) return;
    e.preventDefault(); canvas.focus();
    const p = toImage(canvas, e);
    const boxes = model.get("boxes");
    const hit = boxes.findIndex((b) => inside(b, p));
    if (hit >= 0) {
      selected = hit;
      drag = { mode: "move", start: p, index: hit, box: boxes[hit].slice() };
    } else {
      const sugg = model.get("suggestions").find((s) => inside(s.box, p));
      if (sugg && e.detail >= 2) {   // double-click a suggestion: accept it
        setBoxes([...boxes, sugg.box.slice()]); selected = boxes.length; drag = null; return;
      }
      selected = -1;
      drag = { mode: "new", start: p, box: null };
    }
    draw();
  });

  function onMove(e) {
    if (!drag) return;
    const p = toImage(canvas, e);
    if (drag.mode === "new") {
      drag.box = [Math.floor(Math.min(drag.start[0], p[0])), Math.floor(Math.min(drag.start[1], p[1])),
                  Math.ceil(Math.max(drag.start[0], p[0])), Math.ceil(Math.max(drag.start[1], p[1]))];
    } else {
      const b = model.get("boxes")[drag.index];
      const w = b[2] - b[0], h = b[3] - b[1];
      const dx = Math.round(p[0] - drag.start[0]), dy = Math.round(p[1] - drag.start[1]);
      const x0 = Math.max(0, Math.min(canvas.width - w, b[0] + dx));
      const y0 = Math.max(0, Math.min(canvas.height - h, b[1] + dy));
      drag.box = [x0, y0, x0 + w, y0 + h];
    }
    draw();
  }

  function onUp() {
    if (!drag) return;
    const d = drag; drag = null;
    const boxes = model.get("boxes").map((b) => b.slice());
    if (d.mode === "new" && d.box && d.box[2] - d.box[0] >= 2 && d.box[3] - d.box[1] >= 2) {
      boxes.push(d.box); selected = boxes.length - 1; setBoxes(boxes); hint.textContent = "";
    } else if (d.mode === "new") {   // a click or a tiny drag: say why no box appeared
      const w = d.box ? d.box[2] - d.box[0] : 0, h = d.box ? d.box[3] - d.box[1] : 0;
      hint.textContent = `no box: the drag covered ${w}×${h} image pixels; a box needs at least 2×2. Drag further.`;
    } else if (d.mode === "move" && d.box && d.box.some((v, i) => v !== boxes[d.index][i])) {
      boxes[d.index] = d.box; setBoxes(boxes);
    }
    draw();
  }
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);

  function deleteSelected() {
    const boxes = model.get("boxes");
    if (selected < 0 || selected >= boxes.length) return;
    setBoxes(boxes.filter((_, i) => i !== selected)); selected = -1; draw();
  }
  canvas.addEventListener("keydown", (e) => {
    if (e.key === "Delete" || e.key === "Backspace") { e.preventDefault(); deleteSelected(); }
  });
  del.addEventListener("click", deleteSelected);
  accept.addEventListener("click", () => {
    const have = new Set(model.get("boxes").map((b) => b.join(",")));
    const add = model.get("suggestions").map((s) => s.box).filter((b) => !have.has(b.join(",")));
    if (add.length) setBoxes([...model.get("boxes"), ...add]);
  });
  // JupyterLab's notebook shortcuts take arrow keys from the page; keep them for the slider
  frame.addEventListener("keydown", (e) => e.stopPropagation());
  frame.addEventListener("input", () => { frameLabel.textContent = `frame ${Number(frame.value) + 1}/${model.get("n_frames")}`; });
  frame.addEventListener("change", () => { model.set("frame", Number(frame.value)); model.save_changes(); });
  zoom.addEventListener("change", () => { model.set("zoom", Number(zoom.value)); model.save_changes(); });
  scope.addEventListener("change", () => { model.set("scope", scope.value); model.save_changes(); });
  name.addEventListener("change", () => { model.set("rule_name", name.value); model.save_changes(); });
  previewBox.addEventListener("change", () => { model.set("preview", previewBox.checked); model.save_changes(); });

  model.on("change:_png", loadImage);
  for (const t of ["image_width", "image_height", "zoom", "n_frames", "frame", "scope", "rule_name", "preview", "status"])
    model.on(`change:${t}`, layout);
  model.on("change:boxes", draw);
  model.on("change:suggestions", draw);
  layout();
  loadImage();
  return () => {   // cleanup when the view is removed
    window.removeEventListener("mousemove", onMove);
    window.removeEventListener("mouseup", onUp);
  };
}

export default { render };
