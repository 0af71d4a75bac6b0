// Research pages: start a PIE regeneration run; follow a run live (polls the JSON API).

const $ = (sel) => document.querySelector(sel);

async function api(method, url, body) {
  const response = await fetch(url, {
    method, credentials: "same-origin",
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}

// ----- start a run -----
const form = $("#start-run");
if (form) {
  const showSource = () => {
    const source = form.elements.source.value;
    form.querySelectorAll("[data-source]").forEach((el) => { el.hidden = el.dataset.source !== source; });
  };
  form.elements.source.addEventListener("change", showSource);
  showSource();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = new FormData(form);
    const source = f.get("source");
    const params = {
      k_star: Number(f.get("k_star")), percentile: Number(f.get("percentile")), min_keep: Number(f.get("min_keep")),
      measure: f.get("measure"),
    };
    if (source === "train") {
      params.seeds = String(f.get("seeds")).split(",").map((s) => s.trim()).filter(Boolean).map(Number);
      params.model = f.get("model");
      params.image_size = Number(f.get("image_size"));
      params.epochs = Number(f.get("epochs"));
      params.patience = Number(f.get("patience"));
      params.batch_size = Number(f.get("batch_size"));
      params.lr = Number(f.get("lr"));
      if (f.get("pretrained")) params.pretrained = f.get("pretrained");
    } else if (source === "store") {
      params.store_path = f.get("store_path");
    } else {
      params.reference_dir = f.get("reference_dir");
      if (f.get("reference_labels")) params.reference_labels = f.get("reference_labels");
    }
    try {
      const run = await api("POST", "/api/runs", {
        dataset_id: Number(f.get("dataset_id")), name: f.get("name"), source, executor: f.get("executor"), params,
      });
      window.location.href = `/research/runs/${run.id}`;
    } catch (err) { $("#message").textContent = err.message; }
  });
}

// ----- follow a run -----
const panel = $("#run");
if (panel) {
  const id = panel.dataset.runId;
  const live = new Set(["queued", "running"]);
  const show = (run) => {
    const status = $("#run-status");
    status.textContent = run.status;
    status.className = `badge status-${run.status}`;
    $("#run-stage").textContent = run.stage;
    $("#run-progress").value = run.progress;
    $("#run-percent").textContent = `${Math.round(run.progress * 100)}%`;
    $("#run-error").textContent = run.error || "";
    const log = $("#run-log");
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = run.log;
    if (atEnd) log.scrollTop = log.scrollHeight;
    $("#run-timings").replaceChildren(...Object.entries(run.timings).flatMap(([k, v]) => {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = `${v} s`;
      return [dt, dd];
    }));
    $("#run-worker").textContent = `attempts ${run.attempts}` + (run.worker_id ? ` · worker ${run.worker_id}` : "");
    if (run.result_pie_set_id && !$("#run-result a")) {
      const a = document.createElement("a");
      a.className = "button primary"; a.href = `/research/piesets/${run.result_pie_set_id}`;
      a.textContent = "Open the new PIE set and its report";
      $("#run-result").replaceChildren(a);
    }
    const ordinal = (n) => n + ((n % 100 >= 10 && n % 100 <= 20) ? "th" : ({ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th"));
    const place = run.queue_position ? `${ordinal(run.queue_position)} in the queue` : "";
    const alive = live.has(run.status) ? `${run.workers_alive} worker${run.workers_alive === 1 ? "" : "s"} alive` : "";
    $("#run-queue").textContent = [place, alive].filter(Boolean).join(" · ");
    $("#run-hint").textContent = run.hint || "";
    $("#run-hint").hidden = !run.hint;
    $("#cancel-run").hidden = !live.has(run.status);
    return live.has(run.status);
  };
  const poll = async () => {
    try {
      if (show(await api("GET", `/api/runs/${id}`))) setTimeout(poll, 2000);
    } catch (err) { $("#run-error").textContent = err.message; setTimeout(poll, 5000); }
  };
  $("#cancel-run").addEventListener("click", async () => {
    try { show(await api("POST", `/api/runs/${id}/cancel`)); } catch (err) { $("#run-error").textContent = err.message; }
  });
  const logBox = $("#run-log"); logBox.scrollTop = logBox.scrollHeight;
  setTimeout(poll, 2000);
}
