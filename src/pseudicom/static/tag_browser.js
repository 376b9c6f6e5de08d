// pseudicom TagBrowser view (anywidget ES module). Hand-written source, not generated.
// Thin view: renders the rows Python computed (pseudicom.widgets.tags.preview_actions),
// sends the search text (trait `query`) and each drop-down change (trait `_edit`).
// Which rows match the search is computed in Python (`_visible`); collapsing sequences is
// view state only.
// Colours come from JupyterLab's theme variables (--jp-*): readable in light and dark themes.
// Long values are cut with an ellipsis and carry the whole value as a tooltip (title).

const FG = "var(--jp-ui-font-color1, #222)";
const BG = "var(--jp-layout-color1, #fff)";
// the action column comes right after the element's name and tag, so it stays on screen at
// 1024 px; values are cut to a narrow column (the tooltip has them whole); the rule text wraps
const CUT = "max-width:12em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap";
const PHI_BG = `color-mix(in srgb, var(--jp-error-color1, #f44336) 16%, ${BG})`;

function cell(tr, text, style) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (style) td.style.cssText = style;
  tr.append(td);
  return td;
}

function render({ model, el }) {
  el.classList.add("pseudicom-tag-browser");
  const top = document.createElement("div");
  top.style.cssText = `display:flex;gap:8px;align-items:center;font:12px var(--jp-ui-font-family, sans-serif);margin:4px 0;color:${FG}`;
  const search = document.createElement("input");
  search.type = "search"; search.placeholder = "search keyword, tag or value"; search.size = 30;
  search.className = "ptb-search";
  search.style.cssText = `color:${FG};background:${BG};border:1px solid var(--jp-border-color1, #ccc)`;
  const message = document.createElement("span");
  message.className = "ptb-message";
  top.append(search, message);
  const scroller = document.createElement("div");
  scroller.className = "ptb-scroller";
  scroller.style.cssText = `max-height:420px;overflow:auto;border:1px solid var(--jp-border-color1, #ccc);background:${BG}`;
  const table = document.createElement("table");
  table.style.cssText = `border-collapse:collapse;font:12px var(--jp-code-font-family, monospace);width:100%;color:${FG}`;
  const head = document.createElement("tr");
  for (const h of ["element", "tag", "action", "before", "after", "VR", "rule"]) {
    const th = document.createElement("th");
    th.textContent = h;
    th.style.cssText = `position:sticky;top:0;background:var(--jp-layout-color2, #eee);color:${FG};text-align:left;padding:2px 4px`;
    head.append(th);
  }
  const body = document.createElement("tbody");
  table.append(head, body);
  scroller.append(table);
  el.append(top, scroller);

  const expanded = new Set();   // sequence rows the user opened (view state)
  let timer = null;

  function hiddenByParent(rows, r) {
    for (let p = r.parent; p >= 0; p = rows[p].parent) if (!expanded.has(p)) return true;
    return false;
  }

  function draw() {
    const rows = model.get("rows");
    const visible = model.get("_visible");
    const searching = model.get("query").trim() !== "";
    const choices = model.get("actions");
    body.replaceChildren();
    for (const i of visible) {
      const r = rows[i];
      if (!r || (!searching && hiddenByParent(rows, r))) continue;
      const tr = document.createElement("tr");
      tr.dataset.path = r.path;
      tr.style.cssText = (r.phi ? `background:${PHI_BG};` : "") + "border-bottom:1px solid var(--jp-border-color2, #eee)";
      if (r.phi) tr.classList.add("ptb-phi");
      const name = r.keyword || (r.private ? `private (${r.creator || "no creator"})` : r.tag);
      const td = cell(tr, "", `padding-left:${4 + 14 * r.depth}px;white-space:nowrap`);
      if (r.is_sequence) {
        const t = document.createElement("span");
        t.textContent = expanded.has(r.index) || searching ? "▾ " : "▸ ";
        t.style.cursor = "pointer";
        t.addEventListener("click", () => {
          if (expanded.has(r.index)) expanded.delete(r.index); else expanded.add(r.index);
          draw();
        });
        td.append(t);
      }
      td.append(name);
      cell(tr, r.tag);
      const actionTd = cell(tr, "");   // next to the name, so it stays on screen on narrow displays
      const creatorElement = r.private && parseInt(r.tag.slice(6, 10), 16) < 0x1000;
      if (r.action === "add" || creatorElement || r.action === "quarantined" || r.action === "excluded") {
        actionTd.textContent = r.action;
      } else {
        const select = document.createElement("select");
        select.style.cssText = `color:${FG};background:${BG};border:1px solid var(--jp-border-color1, #ccc)`;
        const options = r.private ? ["", "remove", "keep"] : choices.slice();
        if (!options.includes(r.action)) options.push(r.action);
        for (const a of options) {
          const o = document.createElement("option");
          o.value = a; o.textContent = a === "" ? "(profile default)" : a;
          if (a === r.action) o.selected = true;
          select.append(o);
        }
        select.addEventListener("change", () => {
          model.set("_edit", { index: r.index, action: select.value, n: Date.now() });
          model.save_changes();
        });
        actionTd.append(select);
      }
      cell(tr, r.before, CUT).title = r.before_full || r.before || "";
      cell(tr, r.after, CUT).title = r.after_full || r.after || "";
      cell(tr, r.VR);
      cell(tr, r.rule, "font-size:11px;font-style:italic;min-width:10em;max-width:18em;white-space:normal").title = r.rule;
      body.append(tr);
    }
    message.textContent = `${visible.length} of ${rows.length} elements. ${model.get("message")}`;
  }

  search.value = model.get("query");
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { model.set("query", search.value); model.save_changes(); }, 200);
  });
  model.on("change:rows", draw);
  model.on("change:_visible", draw);
  model.on("change:message", draw);
  model.on("change:query", () => { if (search.value !== model.get("query")) search.value = model.get("query"); });
  draw();
}

export default { render };
