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
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}

// ----- new study, with a live preview of the allocation -----
const create = $("#create-study");
if (create) {
  const design = () => {
    const f = new FormData(create);
    const body = {
      pie_set_id: Number(f.get("pie_set_id")), cases_per_reader: Number(f.get("cases_per_reader")),
      pie_fraction: Number(f.get("pie_fraction")), overlap_cases: Number(f.get("overlap_cases")),
      planned_readers: Number(f.get("planned_readers")),
    };
    if (f.get("seed")) body.seed = Number(f.get("seed"));
    return body;
  };
  const preview = async () => {
    try {
      const p = await api("POST", "/api/studies/preview", design());
      $("#preview").textContent = `Each reader: ${p.pies_per_reader} PIEs + ${p.non_pies_per_reader} non-PIEs` +
        (p.overlap_pies + p.overlap_non_pies ? ` + ${p.overlap_pies + p.overlap_non_pies} shared` : "") +
        `. The PIE set (${p.pool_pies} PIEs, ${p.pool_non_pies} non-PIEs) serves up to ${p.max_readers ?? "any number of"} readers.` +
        (p.feasible ? "" : ` Not enough: ${p.problem}`);
    } catch (err) { $("#preview").textContent = err.message; }
  };
  create.addEventListener("input", preview);
  preview();
  create.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const study = await api("POST", "/api/studies", { ...design(), name: new FormData(create).get("name") });
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
  $("#enroll").addEventListener("submit", async (e) => {
    e.preventDefault();
    const names = new FormData(e.target).get("names").split("\n").map((s) => s.trim()).filter(Boolean);
    try { showLinks(await api("POST", `/api/studies/${id}/readers`, { display_names: names })); e.target.reset(); }
    catch (err) { message(err.message); }
  });
  // Live progress: refresh the readers table every few seconds without reloading the page.
  const refresh = async () => {
    try {
      for (const r of await api("GET", `/api/studies/${id}/progress`)) {
        const row = document.querySelector(`#progress tr[data-reader-id="${r.reader_id}"]`);
        if (!row) continue;
        row.cells[1].textContent = `${r.done} / ${r.total}`;
        const bar = row.querySelector("progress");
        bar.value = r.done;
        bar.setAttribute("aria-label", `${r.display_name}: ${r.done} of ${r.total}`);
        row.cells[3].textContent = r.last_activity ? r.last_activity.slice(0, 16).replace("T", " ") : "–";
        row.cells[4].textContent = r.median_seconds_per_case == null ? "–" : Math.round(r.median_seconds_per_case);
      }
    } catch (err) { /* keep the last figures; the next round tries again */ }
  };
  setInterval(refresh, Number(page.dataset.refreshMs || 10000));
  document.querySelectorAll("[data-reissue]").forEach((button) => button.addEventListener("click", async () => {
    try { showLinks([await api("POST", `/api/studies/${id}/readers/${button.dataset.reissue}/reissue`)]); }
    catch (err) { message(err.message); }
  }));
}
