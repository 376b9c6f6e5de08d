// pseudicom TagBrowser view (anywidget ES module). Hand-written source, not generated.
// Thin view: renders the rows Python computed (pseudicom.widgets.tags.preview_actions),
// sends the search text (trait `query`) and each drop-down change (trait `_edit`).
// Which rows match the search is computed in Python (`_visible`); collapsing sequences is
// view state only.

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
  top.style.cssText = "display:flex;gap:8px;align-items:center;font:12px sans-serif;margin:4px 0";
  const search = document.createElement("input");
  search.type = "search"; search.placeholder = "search keyword, tag or value"; search.size = 30;
  search.className = "ptb-search";
  const message = document.createElement("span");
  message.className = "ptb-message";
  top.append(search, message);
  const scroller = document.createElement("div");
  scroller.style.cssText = "max-height:420px;overflow:auto;border:1px solid #ccc";
  const table = document.createElement("table");
  table.style.cssText = "border-collapse:collapse;font:12px monospace;width:100%";
  const head = document.createElement("tr");
  for (const h of ["element", "tag", "VR", "before", "action", "after", "rule"]) {
    const th = document.createElement("th");
    th.textContent = h;
    th.style.cssText = "position:sticky;top:0;background:#eee;text-align:left;padding:2px 4px";
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
      tr.style.cssText = (r.phi ? "background:#fff0f0;" : "") + "border-bottom:1px solid #eee";
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
      cell(tr, r.tag); cell(tr, r.VR);
      cell(tr, r.before, "max-width:16em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap");
      const actionTd = cell(tr, "");
      const creatorElement = r.private && parseInt(r.tag.slice(6, 10), 16) < 0x1000;
      if (r.action === "add" || creatorElement || r.action === "quarantined" || r.action === "excluded") {
        actionTd.textContent = r.action;
      } else {
        const select = document.createElement("select");
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
      cell(tr, r.after, "max-width:16em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap");
      cell(tr, r.rule, "color:#666;font-size:11px;max-width:24em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap").title = r.rule;
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
