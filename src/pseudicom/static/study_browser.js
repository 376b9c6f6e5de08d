// pseudicom StudyBrowser view (anywidget ES module). Hand-written source, not generated.
// Thin view: draws the rows Python computed (pseudicom.widgets.browser.browser_rows) as a
// tree table; a click on a series or instance sets `selected_series` / `selected_instance`.
// Which series are unfolded to their instances is view state only.
// Colours come from JupyterLab's theme variables (--jp-*), so the table reads in light and dark
// themes alike; highlights are the theme's colour mixed into its background (color-mix).

const FG = "var(--jp-ui-font-color1, #222)";
const BG = "var(--jp-layout-color1, #fff)";
const tint = (c, pct) => `color-mix(in srgb, var(${c}) ${pct}%, ${BG})`;

const FLAG_LABELS = { burned_in: "burned-in text?", document: "document", face: "face?" };

function td(tr, text, style) {
  const c = document.createElement("td");
  c.textContent = text === null || text === undefined ? "" : String(text);
  c.style.cssText = "padding:2px 6px;" + (style || "");
  tr.append(c);
  return c;
}

function render({ model, el }) {
  el.classList.add("pseudicom-study-browser");
  const table = document.createElement("table");
  table.style.cssText = `border-collapse:collapse;font:12px var(--jp-ui-font-family, sans-serif);color:${FG};background:${BG}`;
  const head = document.createElement("tr");
  for (const h of ["", "date", "modality", "files", "frames", "flags", "details"]) {
    const th = document.createElement("th");
    th.textContent = h;
    th.style.cssText = `text-align:left;background:var(--jp-layout-color2, #eee);color:${FG};padding:2px 6px`;
    head.append(th);
  }
  const body = document.createElement("tbody");
  table.append(head, body);
  const message = document.createElement("div");   // why the table is empty, and what to do
  message.className = "psb-message";
  message.style.cssText = `font:12px var(--jp-ui-font-family, sans-serif);color:${FG};padding:2px 0`;
  el.append(message, table);
  const open = new Set();   // series rows unfolded to their instances

  function draw() {
    const rows = model.get("rows");
    const selSeries = model.get("selected_series"), selInstance = model.get("selected_instance");
    message.textContent = model.get("message");
    message.style.display = model.get("message") ? "" : "none";
    table.style.display = rows.length ? "" : "none";
    body.replaceChildren();
    for (const r of rows) {
      if (r.level === "instance" && !open.has(r.parent)) continue;
      const tr = document.createElement("tr");
      tr.dataset.level = r.level;
      const selected = (r.level === "series" && r.series_uid === selSeries) ||
                       (r.level === "instance" && r.path === selInstance);
      tr.style.cssText = "border-bottom:1px solid var(--jp-border-color2, #eee);" +
                         (selected ? `background:${tint("--jp-brand-color1", 25)};` : "") +
                         (r.level === "patient" ? "font-weight:bold;" : "") +
                         (r.level === "series" || r.level === "instance" ? "cursor:pointer;" : "");
      const first = td(tr, "", `padding-left:${6 + 16 * r.depth}px;white-space:nowrap`);
      if (r.level === "series") {
        const t = document.createElement("span");
        t.textContent = open.has(r.index) ? "▾ " : "▸ ";
        t.addEventListener("click", (e) => {
          e.stopPropagation();
          if (open.has(r.index)) open.delete(r.index); else open.add(r.index);
          draw();
        });
        first.append(t);
      }
      first.append(r.label);
      td(tr, r.date); td(tr, r.modality); td(tr, r.files, "text-align:right"); td(tr, r.frames, "text-align:right");
      const flags = td(tr, "");
      for (const [k, why] of Object.entries(r.flags || {})) {
        const s = document.createElement("span");
        s.className = "psb-flag";
        s.style.cssText = `background:${tint("--jp-error-color1", 22)};border-radius:3px;padding:0 3px;margin-right:3px`;
        s.textContent = "⚠ " + (FLAG_LABELS[k] || k);
        s.title = why;
        flags.append(s);
      }
      td(tr, r.detail, "font-style:italic");
      if (r.level === "series") {
        tr.addEventListener("click", () => {
          model.set("selected_series", r.series_uid);
          model.set("selected_instance", r.path);
          model.save_changes();
        });
      } else if (r.level === "instance") {
        tr.addEventListener("click", () => {
          model.set("selected_series", r.series_uid);
          model.set("selected_instance", r.path);
          model.save_changes();
        });
      }
      body.append(tr);
    }
  }
  model.on("change:rows", draw);
  model.on("change:selected_series", draw);
  model.on("change:selected_instance", draw);
  model.on("change:message", draw);
  draw();
}

export default { render };
