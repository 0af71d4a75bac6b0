// Coordinator pages: forms that call the JSON API (the session cookie authenticates).

const $ = (sel) => document.querySelector(sel);
const message = (text) => { const m = $("#message") || $("#preview"); if (m) m.textContent = text; };

async function api(method, url, body) {
  const response = await fetch(url, {
    method, credentials: "same-origin",
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error((data && data.error) || `${response.status} ${response.statusText}`);
    error.detail = data && data.detail;
    throw error;
  }
  return data;
}

// ----- the reader profile questions of a new study -----
// A question's key (its export column, profile_<key>) is made from its text.
const keyOf = (label, taken) => {
  let key = label.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "_").replace(/^[^a-z]+|_+$/g, "").slice(0, 36) || "question";
  for (let n = 2; taken.has(key); n += 1) key = `${key.replace(/_\d+$/, "")}_${n}`;
  taken.add(key);
  return key;
};
function profileFields() {
  const taken = new Set();
  return [...document.querySelectorAll("#profile-rows .profile-row")].map((row) => {
    const part = (name) => row.querySelector(`[data-part="${name}"]`);
    const field = { label: part("label").value.trim(), kind: part("kind").value, required: part("required").checked };
    field.key = keyOf(field.label, taken);
    if (field.kind === "integer") {
      if (part("minimum").value !== "") field.minimum = Number(part("minimum").value);
      if (part("maximum").value !== "") field.maximum = Number(part("maximum").value);
    }
    if (field.kind === "choice") field.choices = part("choices").value.split(",").map((c) => c.trim()).filter(Boolean);
    return field;
  });
}
const addProfile = $("#add-profile-field");
if (addProfile) {
  addProfile.addEventListener("click", () => {
    const row = $("#profile-row").content.firstElementChild.cloneNode(true);
    const kind = row.querySelector('[data-part="kind"]');
    const showParts = () => row.querySelectorAll("[data-for]").forEach((el) => { el.hidden = el.dataset.for !== kind.value; });
    kind.addEventListener("change", showParts);
    row.querySelector('[data-part="remove"]').addEventListener("click", () => { row.remove(); addProfile.focus(); });
    $("#profile-rows").append(row);
    showParts();
    row.querySelector('[data-part="label"]').focus();
  });
}

// ----- new study, with a live preview of the allocation -----
const create = $("#create-study");
if (create) {
  const design = () => {
    const f = new FormData(create);
    const body = {
      pie_set_id: Number(f.get("pie_set_id")), cases_per_reader: Number(f.get("cases_per_reader")),
      pie_fraction: Number(f.get("pie_fraction")), overlap_cases: Number(f.get("overlap_cases")),
      planned_readers: Number(f.get("planned_readers")), practice_cases: Number(f.get("practice_cases") || 0),
    };
    if (f.get("seed")) body.seed = Number(f.get("seed"));
    return body;
  };
  const preview = async () => {
    try {
      const p = await api("POST", "/api/studies/preview", design());
      $("#preview").textContent = `Each reader: ${p.pies_per_reader} PIEs + ${p.non_pies_per_reader} non-PIEs` +
        (p.overlap_pies + p.overlap_non_pies ? ` + ${p.overlap_pies + p.overlap_non_pies} shared` : "") +
        (p.practice_cases ? `, after ${p.practice_cases} practice cases` : "") +
        `. The PIE set (${p.pool_pies} PIEs, ${p.pool_non_pies} non-PIEs) serves up to ${p.max_readers ?? "any number of"} readers.` +
        (p.feasible ? "" : ` Not enough: ${p.problem}`);
    } catch (err) { $("#preview").textContent = err.message; }
  };
  // The power of the design: a seeded simulation on the server (a second or two), run once the
  // form has been still for a moment; an answer to an older form is dropped.
  let powerTimer = 0, powerAsked = 0;
  const power = async () => {
    const asked = ++powerAsked;
    const f = new FormData(create), d = design();
    const body = {
      readers: d.planned_readers, cases_per_reader: d.cases_per_reader, pie_fraction: d.pie_fraction,
      overlap_cases: d.overlap_cases, shift: Number(f.get("shift")), spread: Number(f.get("spread")),
      case_spread: Number(f.get("case_spread") || 0),
    };
    $("#power").textContent = "Simulating…";
    try {
      const p = await api("POST", "/api/studies/power", body);
      if (asked !== powerAsked) return;
      const pct = (r) => `${Math.round(100 * r.value)}% (${Math.round(100 * r.ci[0])}-${Math.round(100 * r.ci[1])}%)`;
      $("#power").textContent = `Power at P < ${p.alpha}: ${pct(p.scale)} for a 1-5 question, ${pct(p.scale_holm_first)} ` +
        `at P < ${(p.alpha / 3).toFixed(4)} (Holm's first step across the three questions), ${pct(p.agreement)} for agreement (yes/no). ` +
        `${p.method}.`;
    } catch (err) { if (asked === powerAsked) $("#power").textContent = err.message; }
  };
  const schedulePower = () => { clearTimeout(powerTimer); powerTimer = setTimeout(power, 600); };
  create.addEventListener("input", () => { preview(); schedulePower(); });
  preview();
  power();
  create.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const study = await api("POST", "/api/studies", {
        ...design(), name: new FormData(create).get("name"), profile_fields: profileFields(),
      });
      window.location.href = `/studies/${study.id}`;
    } catch (err) { $("#preview").textContent = err.message; }
  });
}

// ----- one study -----
const page = $("#study");
if (page) {
  const id = page.dataset.studyId;
  document.querySelectorAll("[data-status]").forEach((button) => button.addEventListener("click", async () => {
    try { await api("POST", `/api/studies/${id}/status`, { status: button.dataset.status }); window.location.reload(); }
    catch (err) { message(err.message); }
  }));
  const showLinks = (invitations) => {
    const box = $("#links");
    box.replaceChildren(...invitations.map((inv) => {
      const row = document.createElement("p");
      const input = Object.assign(document.createElement("input"), { value: inv.invitation_url, readOnly: true, size: 60 });
      input.setAttribute("aria-label", `Invitation link for ${inv.reader.display_name}`);
      const copy = Object.assign(document.createElement("button"), { type: "button", textContent: "Copy" });
      copy.addEventListener("click", async () => { input.select(); await navigator.clipboard?.writeText(input.value); copy.textContent = "Copied"; });
      row.append(`${inv.reader.display_name}: `, input, " ", copy);
      return row;
    }));
    const note = document.createElement("p");
    note.textContent = "Each link is shown only now: copy and send it to its reader.";
    box.append(note);
  };
  const enroll = async (names, allowDuplicates) => {
    try {
      const body = { display_names: names, allow_duplicate_names: allowDuplicates };
      showLinks(await api("POST", `/api/studies/${id}/readers`, body));
      $("#enroll").reset();
      await refresh();
    } catch (err) {
      const twice = err.detail && err.detail.duplicates;
      if (twice && !allowDuplicates && window.confirm(
        `Already in this study: ${twice.join(", ")}. Enroll another reader with the same name? ` +
        "They would get their own cases and link, and be told apart only by their reader id.")) {
        await enroll(names, true);
      } else {
        message(err.message);
      }
    }
  };
  $("#enroll").addEventListener("submit", async (e) => {
    e.preventDefault();
    const names = new FormData(e.target).get("names").split("\n").map((s) => s.trim()).filter(Boolean);
    await enroll(names, false);
  });

  // The readers table: live progress every few seconds, new readers and link changes at once.
  const cell = (text) => Object.assign(document.createElement("td"), { textContent: text });
  const button = (kind, r, text, label) => {
    const b = Object.assign(document.createElement("button"), { type: "button", className: "link", textContent: text });
    b.dataset[kind] = r.reader_id;
    b.setAttribute("aria-label", `${label} ${r.display_name}`);
    return b;
  };
  const newRow = (r) => {
    const row = document.createElement("tr");
    row.dataset.readerId = r.reader_id;
    row.dataset.name = r.display_name;
    const bar = Object.assign(document.createElement("progress"), { max: r.total, value: r.done });
    const barCell = document.createElement("td");
    barCell.append(bar);
    const linkCell = document.createElement("td");
    linkCell.append(Object.assign(document.createElement("span"), { className: "link-state" }), " ",
      button("revoke", r, "withdraw", "Withdraw the link of"), " ", button("reissue", r, "new link", "A new link for"));
    row.append(cell(r.display_name), cell(""), barCell, cell(""), cell(""), linkCell);
    $("#progress tbody .empty")?.remove();
    $("#progress tbody").append(row);
    return row;
  };
  const refresh = async () => {
    try {
      for (const r of await api("GET", `/api/studies/${id}/progress`)) {
        const row = document.querySelector(`#progress tr[data-reader-id="${r.reader_id}"]`) || newRow(r);
        row.cells[1].textContent = `${r.done} / ${r.total}`;
        const bar = row.querySelector("progress");
        bar.max = r.total;
        bar.value = r.done;
        bar.setAttribute("aria-label", `${r.display_name}: ${r.done} of ${r.total}`);
        row.cells[3].textContent = r.last_activity ? r.last_activity.slice(0, 16).replace("T", " ") : "–";
        row.cells[4].textContent = r.median_seconds_per_case == null ? "–" : Math.round(r.median_seconds_per_case);
        row.querySelector(".link-state").textContent = r.revoked ? "withdrawn" : "";
        row.querySelector("[data-revoke]").hidden = r.revoked;
      }
    } catch (err) { /* keep the last figures; the next round tries again */ }
  };
  setInterval(refresh, Number(page.dataset.refreshMs || 10000));

  $("#progress").addEventListener("click", async (e) => {
    const target = e.target.closest("button[data-revoke], button[data-reissue]");
    if (!target) return;
    const name = target.closest("tr").dataset.name;
    try {
      if (target.dataset.revoke) {
        if (!window.confirm(
          `Withdraw the link of ${name}? It stops working at once, and an open reading screen can ` +
          "no longer save: answers it has not sent yet stay in that browser, and are sent only if " +
          `${name} is given a new link and opens it there. Answers already saved are kept.`)) return;
        await api("POST", `/api/studies/${id}/readers/${target.dataset.revoke}/revoke`);
        message(`The link of ${name} is withdrawn.`);
      } else {
        if (!window.confirm(
          `Make a new link for ${name}? The current link stops working and an open reading screen ` +
          "is signed out: answers waiting there are kept in that browser and sent once " +
          `${name} opens the new link in it. Cases and saved answers stay.`)) return;
        showLinks([await api("POST", `/api/studies/${id}/readers/${target.dataset.reissue}/reissue`)]);
      }
      await refresh();
    } catch (err) { message(err.message); }
  });
}
