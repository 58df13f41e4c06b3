// The mdtoken admin console: the Mass Deployment page.
//
// Plain script, no build step and no third-party code, served from the binary under a
// strict Content-Security-Policy. Every value from the server is written with
// textContent or as an SVG attribute, never parsed as HTML. The admin key lives only in
// sessionStorage for this tab and is sent as a Bearer credential.
"use strict";

(() => {
  const KEY_STORAGE = "mdtoken.adminKey";
  const ACTIVITY_REFRESH_MS = 15000;
  const DAY_MS = 86400000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const PLATFORMS = [
    { id: "windows", label: "Windows", note: "msiexec, from an elevated prompt or your deployment tool" },
    { id: "macos", label: "macOS", note: "installer, run as root" },
    { id: "linux", label: "Linux", note: "package install, run as root" },
  ];

  const $ = (id) => document.getElementById(id);

  const state = {
    deployment: null,
    activityTimer: 0,
    dialogOpener: null,
    busy: false,
  };

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  const UNAUTHORIZED_MESSAGE = "The admin key was not accepted. Check it and sign in again.";

  async function api(method, path, body) {
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (!key) {
      showSignIn(UNAUTHORIZED_MESSAGE);
      throw new ApiError(401, "unauthorized", UNAUTHORIZED_MESSAGE);
    }
    const init = {
      method,
      headers: { Authorization: "Bearer " + key, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (_) {
      throw new ApiError(0, "network", "The server could not be reached. Check that mdtoken serve is running, then try again.");
    }
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (res.status === 401) {
      forgetKey();
      showSignIn(UNAUTHORIZED_MESSAGE);
      throw new ApiError(401, "unauthorized", UNAUTHORIZED_MESSAGE);
    }
    if (!res.ok) {
      const code = data && typeof data.error === "string" ? data.error : "http_" + res.status;
      const message = data && typeof data.message === "string" && data.message
        ? data.message
        : "The server answered with status " + res.status + ".";
      throw new ApiError(res.status, code, message);
    }
    return data;
  }

  // ---------------------------------------------------------------- formatting

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  function todayUtc() {
    return new Date().toISOString().slice(0, 10);
  }

  function addDaysUtc(isoDate, days) {
    const d = new Date(isoDate + "T00:00:00Z");
    return new Date(d.getTime() + days * DAY_MS).toISOString().slice(0, 10);
  }

  function formatTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) +
      " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + " UTC";
  }

  // A bare-date expiry is stored as 00:00:00Z of the next day; show the day the admin chose.
  function formatExpiry(iso) {
    if (!iso) return "Never";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    if (d.getUTCHours() === 0 && d.getUTCMinutes() === 0 && d.getUTCSeconds() === 0) {
      return "End of " + new Date(d.getTime() - DAY_MS).toISOString().slice(0, 10) + " UTC";
    }
    return formatTime(iso);
  }

  // Compact forms for table cells; the column headers say the times are UTC.
  function formatCellTime(iso) {
    return iso ? formatTime(iso).replace(/ UTC$/, "") : "—";
  }

  function formatCellExpiry(iso) {
    const text = formatExpiry(iso);
    return text.startsWith("End of ") ? "Through " + text.slice(7).replace(/ UTC$/, "") : text.replace(/ UTC$/, "");
  }

  function relative(iso) {
    const ms = new Date(iso).getTime() - Date.now();
    if (Number.isNaN(ms)) return "";
    const abs = Math.abs(ms);
    let text;
    if (abs < 3600000) text = Math.max(1, Math.round(abs / 60000)) + " min";
    else if (abs < 2 * DAY_MS) text = Math.round(abs / 3600000) + " h";
    else text = Math.round(abs / DAY_MS) + " days";
    return ms >= 0 ? "in " + text : text + " ago";
  }

  function shortId(id) {
    return id && id.length > 12 ? id.slice(0, 10) + "…" : id || "—";
  }

  // ---------------------------------------------------------------- DOM helpers

  function el(tag, opts, children) {
    const node = document.createElement(tag);
    if (opts) {
      for (const [k, v] of Object.entries(opts)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "text") node.textContent = v;
        else if (k === "className") node.className = v;
        else if (k === "dataset") Object.assign(node.dataset, v);
        else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
        else node.setAttribute(k, v === true ? "" : v);
      }
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  function setText(id, text, title) {
    const node = $(id);
    node.textContent = text;
    if (title) node.title = title;
    else node.removeAttribute("title");
  }

  function badge(status) {
    return el("span", { className: "badge badge-" + status, text: status });
  }

  function showAlert(id, message) {
    const node = $(id);
    node.textContent = message || "";
    node.hidden = !message;
  }

  let toastTimer = 0;
  function announce(message) {
    const node = $("status");
    node.textContent = message;
    node.classList.add("toast-visible");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => node.classList.remove("toast-visible"), 4000);
  }

  // ---------------------------------------------------------------- copy

  function legacyCopy(text) {
    const area = el("textarea", { className: "copy-buffer", readonly: true, "aria-hidden": "true", tabindex: "-1" });
    area.value = text;
    document.body.append(area);
    const active = document.activeElement;
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (_) {
      ok = false;
    }
    area.remove();
    if (active && typeof active.focus === "function") active.focus();
    return ok;
  }

  async function copyText(text, what, button) {
    let ok = false;
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        ok = true;
      } catch (_) {
        ok = false;
      }
    }
    if (!ok) ok = legacyCopy(text);
    if (ok) {
      // Lets a test or an assistive tool confirm what went to the clipboard.
      button.dataset.copied = text;
      button.classList.add("copied");
      button.textContent = "Copied";
      announce("Copied " + what);
      setTimeout(() => {
        button.classList.remove("copied");
        button.textContent = "Copy";
      }, 2000);
    } else {
      announce("Could not copy the " + what + "; select it and copy it by hand");
    }
  }

  function renderCommands(container, commands, idPrefix) {
    container.replaceChildren();
    for (const p of PLATFORMS) {
      const text = commands && typeof commands[p.id] === "string" ? commands[p.id] : "";
      const codeId = idPrefix + "cmd-" + p.id;
      const headingId = idPrefix + "cmd-label-" + p.id;
      const button = el("button", {
        type: "button",
        className: "btn btn-secondary copy-btn",
        id: idPrefix + "copy-" + p.id,
        "aria-label": "Copy " + p.label + " command",
        "aria-describedby": headingId,
        text: "Copy",
      });
      button.addEventListener("click", () => copyText(text, p.label + " command", button));
      container.append(
        el("div", { className: "command", dataset: { os: p.id } }, [
          el("div", { className: "command-head" }, [
            el("div", {}, [
              el("span", { className: "command-os", id: headingId, text: p.label }),
              el("span", { className: "command-note", text: p.note }),
            ]),
            button,
          ]),
          el("pre", { className: "code", tabindex: "0", "aria-labelledby": headingId }, [
            el("code", { id: codeId, text }),
          ]),
        ]),
      );
    }
  }

  // ---------------------------------------------------------------- views

  function showSignIn(message) {
    stopActivity();
    closeDialogs();
    clearData();
    $("app-view").hidden = true;
    $("signin-view").hidden = false;
    showAlert("signin-error", message || "");
    const input = $("admin-key");
    input.value = "";
    input.setAttribute("aria-invalid", message ? "true" : "false");
    input.focus();
    document.title = "Sign in · mdtoken console";
  }

  function showApp() {
    $("signin-view").hidden = true;
    $("app-view").hidden = false;
    document.title = "Mass Deployment · mdtoken console";
  }

  function forgetKey() {
    sessionStorage.removeItem(KEY_STORAGE);
  }

  function clearData() {
    state.deployment = null;
    $("commands").replaceChildren();
    $("new-commands").replaceChildren();
    $("new-token").value = "";
    delete $("new-token-copy").dataset.copied;
    $("tokens-body").replaceChildren();
    $("keys-body").replaceChildren();
    $("activity-chart").replaceChildren();
    for (const id of ["current-name", "current-expires", "current-renews", "current-id", "current-key", "current-issued"]) {
      setText(id, "—");
    }
    setText("server-url", "");
    showAlert("page-error", "");
  }

  function closeDialogs() {
    for (const d of document.querySelectorAll("dialog[open]")) d.close();
  }

  // ---------------------------------------------------------------- deployment

  function renderDeployment(d) {
    state.deployment = d;
    const named = d.name && d.name.trim();
    setText("current-name", named ? d.name : "Unnamed");
    $("current-name").classList.toggle("muted", !named);
    setText("current-expires", d.expires_at ? formatExpiry(d.expires_at) + " (" + relative(d.expires_at) + ")" : "Never", d.expires_at || "");
    if (d.renews_at) {
      setText("current-renews", formatTime(d.renews_at) + " (" + relative(d.renews_at) + ")",
        "When this token expires, a new current token is generated and the install commands switch to it");
    } else {
      setText("current-renews", "Not needed: it never expires");
    }
    setText("current-id", d.token_id, d.token_id);
    setText("current-key", d.key_id, d.key_id);
    setText("current-issued", formatTime(d.issued_at), d.issued_at);
    setText("server-url", d.server_url || "");
    renderCommands($("commands"), d.commands, "");
    if (d.renewed) announce("The previous token had expired; a new current token was generated");
  }

  async function loadDeployment() {
    renderDeployment(await api("GET", "/v1/deployment"));
  }

  // ---------------------------------------------------------------- tokens

  function cell(label, children, className) {
    return el("td", { "data-label": label, className }, children);
  }

  function renderTokens(list) {
    const body = $("tokens-body");
    body.replaceChildren();
    const tokens = (list && list.tokens) || [];
    const currentId = state.deployment && state.deployment.token_id;
    setText("tokens-count", tokens.length === 1 ? "1 token" : tokens.length + " tokens");
    if (tokens.length === 0) {
      body.append(el("tr", {}, [el("td", { colspan: "7", className: "empty", text: "No tokens yet." })]));
      return;
    }
    for (const t of tokens) {
      const label = t.name && t.name.trim() ? t.name : "Unnamed";
      const nameCell = [el("span", { className: t.name ? "" : "muted", text: label })];
      if (t.token_id === currentId) nameCell.push(" ", el("span", { className: "badge badge-current", text: "current" }));
      let action = el("span", { className: "sr-only", text: "No action" });
      if (t.status === "active") {
        action = el("button", {
          type: "button",
          className: "btn btn-danger-ghost btn-small",
          "aria-label": "Revoke token " + label + " (" + shortId(t.token_id) + ")",
          dataset: { revoke: t.token_id },
          text: "Revoke",
        });
        action.addEventListener("click", () => revokeToken(t, label, action));
      }
      body.append(
        el("tr", { dataset: { tokenId: t.token_id, status: t.status } }, [
          cell("Name", nameCell, "cell-name"),
          cell("Token ID", [el("code", { className: "id", title: t.token_id, text: t.token_id })]),
          cell("Key", [el("code", { className: "id", title: t.key_id, text: shortId(t.key_id) })]),
          cell("Issued (UTC)", [el("span", { title: t.issued_at, text: formatCellTime(t.issued_at) })], "cell-time"),
          cell("Expires (UTC)", [el("span", { title: t.expires_at || "", text: formatCellExpiry(t.expires_at) })], "cell-time"),
          cell("Status", [badge(t.status)]),
          cell("", [action], t.status === "active" ? "cell-action" : "cell-action cell-none"),
        ]),
      );
    }
  }

  async function loadTokens() {
    renderTokens(await api("GET", "/v1/tokens"));
  }

  async function revokeToken(t, label, button) {
    const isCurrent = state.deployment && state.deployment.token_id === t.token_id;
    const ok = await confirmAction(
      "Revoke token?",
      "Devices presenting “" + label + "” (" + shortId(t.token_id) + ") will be refused from now on. This cannot be undone." +
        (isCurrent ? " It is the current token: a new one will be generated and the install commands will change." : ""),
      "Revoke token",
    );
    if (!ok) {
      button.focus();
      return;
    }
    try {
      await api("POST", "/v1/tokens/" + encodeURIComponent(t.token_id) + "/revoke");
      announce("Revoked token " + label);
      await refresh(["deployment", "tokens"]);
      $("tokens-title").focus();
    } catch (e) {
      reportError(e, "Revoking the token failed");
    }
  }

  // ---------------------------------------------------------------- keys

  function renderKeys(data) {
    const body = $("keys-body");
    body.replaceChildren();
    setText("ring-issuer", data.issuer || "—");
    setText("ring-audience", data.audience || "—");
    for (const k of data.keys || []) {
      let until;
      if (k.status === "active") until = "Signs new tokens";
      else if (k.verify_until) until = formatCellTime(k.verify_until) + " (" + relative(k.verify_until) + ")";
      else until = "No end: it signed a token that never expires";
      body.append(
        el("tr", { dataset: { kid: k.kid, status: k.status } }, [
          cell("Key ID", [el("code", { className: "id", title: k.kid, text: k.kid })]),
          cell("Status", [badge(k.status)]),
          cell("Created (UTC)", [el("span", { title: k.created_at, text: formatCellTime(k.created_at) })], "cell-time"),
          cell("Retired (UTC)", [el("span", { title: k.retired_at || "", text: formatCellTime(k.retired_at) })], "cell-time"),
          cell("Verifies until (UTC)", [el("span", { title: k.verify_until || "", text: until })]),
        ]),
      );
    }
    for (const k of data.revoked_keys || []) {
      body.append(
        el("tr", { dataset: { kid: k.kid, status: "revoked" } }, [
          cell("Key ID", [el("code", { className: "id", title: k.kid, text: k.kid })]),
          cell("Status", [badge("revoked")]),
          cell("Created (UTC)", [el("span", { text: "—" })]),
          cell("Retired (UTC)", [el("span", { title: k.revoked_at, text: "Revoked " + formatCellTime(k.revoked_at) })]),
          cell("Verifies until (UTC)", [el("span", { text: "Nothing: its tokens are refused" })]),
        ]),
      );
    }
  }

  async function loadKeys() {
    renderKeys(await api("GET", "/v1/keys"));
  }

  async function rotateKey() {
    const ok = await confirmAction(
      "Rotate the signing key?",
      "A new key will sign new tokens. The current key is retired: it keeps verifying the tokens it signed until the last of them expires, and its private half is deleted.",
      "Rotate key",
    );
    if (!ok) {
      $("rotate-button").focus();
      return;
    }
    try {
      const r = await api("POST", "/v1/keys/rotate");
      announce("Key rotated: new signing key " + shortId(r.new_key_id));
      await refresh(["keys", "tokens"]);
      $("rotate-button").focus();
    } catch (e) {
      reportError(e, "Rotating the key failed");
    }
  }

  // ---------------------------------------------------------------- activity

  function niceMax(n) {
    if (n <= 4) return 4;
    const p = Math.pow(10, Math.floor(Math.log10(n)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= n) return m * p;
    return 10 * p;
  }

  function renderActivity(data) {
    const minutes = (data && data.minutes) || [];
    const totals = { accepted: 0, expired: 0, rejected: 0 };
    let peak = 0;
    let peakMinute = null;
    for (const m of minutes) {
      totals.accepted += m.accepted;
      totals.expired += m.expired;
      totals.rejected += m.rejected;
      const sum = m.accepted + m.expired + m.rejected;
      if (sum > peak) {
        peak = sum;
        peakMinute = m.minute;
      }
    }
    setText("total-accepted", String(totals.accepted));
    setText("total-expired", String(totals.expired));
    setText("total-rejected", String(totals.rejected));
    setText("activity-updated", "Updated " + formatTime(new Date().toISOString()).slice(11));

    const max = niceMax(peak);
    const W = 600;
    const H = 160;
    const slot = W / Math.max(minutes.length, 1);
    const bar = Math.max(slot - 2, 1);
    const root = svg("svg", {
      viewBox: "0 0 " + W + " " + H,
      preserveAspectRatio: "none",
      class: "chart-svg",
      role: "img",
      "aria-labelledby": "activity-summary",
    });
    for (const f of [0.25, 0.5, 0.75, 1]) {
      const y = H - f * H;
      root.append(svg("line", { x1: 0, x2: W, y1: y, y2: y, class: "grid", "vector-effect": "non-scaling-stroke" }));
    }
    minutes.forEach((m, i) => {
      const g = svg("g", { class: "bar" });
      const title = svg("title", {});
      title.textContent = formatTime(m.minute).slice(11) + ": " + m.accepted + " accepted, " + m.expired +
        " expired, " + m.rejected + " other rejections";
      g.append(title);
      let y = H;
      for (const key of ["accepted", "expired", "rejected"]) {
        if (!m[key]) continue;
        const h = (m[key] / max) * H;
        y -= h;
        g.append(svg("rect", { x: i * slot + 1, y, width: bar, height: h, class: "seg seg-" + key }));
      }
      // A full-height transparent target so the tooltip works on empty minutes too.
      g.append(svg("rect", { x: i * slot, y: 0, width: slot, height: H, class: "hit" }));
      root.append(g);
    });
    root.append(svg("line", { x1: 0, x2: W, y1: H, y2: H, class: "axis", "vector-effect": "non-scaling-stroke" }));

    const total = totals.accepted + totals.expired + totals.rejected;
    const summary = total === 0
      ? "No activation requests in the last hour."
      : "Last hour: " + totals.accepted + " accepted, " + totals.expired + " refused as expired, " + totals.rejected +
        " other rejections. Busiest minute " + formatTime(peakMinute).slice(11) + " with " + peak + ".";
    const chart = $("activity-chart");
    chart.replaceChildren(
      el("p", { id: "activity-summary", className: "sr-only", text: summary }),
      el("div", { className: "chart-frame" }, [
        el("div", { className: "chart-y", "aria-hidden": "true" }, [
          el("span", { text: String(max) }),
          el("span", { text: String(max / 2) }),
          el("span", { text: "0" }),
        ]),
        el("div", { className: "chart-plot" }, [
          root,
          total === 0 ? el("p", { className: "chart-empty", text: "No activations in the last hour" }) : "",
        ]),
      ]),
      el("div", { className: "chart-x", "aria-hidden": "true" }, [
        el("span", { text: "60 min ago" }),
        el("span", { text: "30 min ago" }),
        el("span", { text: "now" }),
      ]),
    );
  }

  async function loadActivity() {
    renderActivity(await api("GET", "/v1/activity"));
  }

  function startActivity() {
    stopActivity();
    state.activityTimer = setInterval(() => {
      if (document.visibilityState === "visible" && sessionStorage.getItem(KEY_STORAGE)) {
        loadActivity().catch(() => {});
      }
    }, ACTIVITY_REFRESH_MS);
  }

  function stopActivity() {
    if (state.activityTimer) clearInterval(state.activityTimer);
    state.activityTimer = 0;
  }

  // ---------------------------------------------------------------- loading

  const LOADERS = { deployment: loadDeployment, tokens: loadTokens, keys: loadKeys, activity: loadActivity };

  // The deployment loads first: it may renew the current token, which the list then shows.
  async function refresh(parts) {
    const wanted = parts || ["deployment", "tokens", "keys", "activity"];
    if (wanted.includes("deployment")) await loadDeployment();
    await Promise.all(wanted.filter((p) => p !== "deployment").map((p) => LOADERS[p]()));
    showAlert("page-error", "");
    document.body.dataset.loaded = String(Date.now());
  }

  function reportError(e, context) {
    if (e instanceof ApiError && e.status === 401) return;
    const message = context + ": " + (e && e.message ? e.message : String(e));
    showAlert("page-error", message);
    announce(message);
  }

  // ---------------------------------------------------------------- confirm dialog

  function confirmAction(title, message, okLabel) {
    const dialog = $("confirm-dialog");
    setText("confirm-title", title);
    setText("confirm-message", message);
    setText("confirm-ok", okLabel);
    dialog.returnValue = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.showModal();
      // The safe choice has the focus, so Enter alone never destroys anything.
      $("confirm-cancel").focus();
    });
  }

  // ---------------------------------------------------------------- generate dialog

  function setGenerateStep(result) {
    $("generate-step-form").hidden = result;
    $("generate-step-result").hidden = !result;
    $("generate-submit").hidden = result;
    $("generate-cancel").hidden = result;
    $("generate-done").hidden = !result;
  }

  function openGenerate(event) {
    const dialog = $("generate-dialog");
    state.dialogOpener = event && event.currentTarget ? event.currentTarget : document.activeElement;
    $("generate-form").reset();
    const date = $("expiry-date");
    date.min = todayUtc();
    date.value = "";
    date.disabled = true;
    date.removeAttribute("aria-invalid");
    $("new-token").value = "";
    $("new-commands").replaceChildren();
    showAlert("generate-error", "");
    setGenerateStep(false);
    setBusy(false);
    dialog.showModal();
    $("token-name").focus();
  }

  function onGenerateClosed() {
    // The token is shown once: drop it from the page when the dialog closes.
    $("new-token").value = "";
    delete $("new-token-copy").dataset.copied;
    $("new-commands").replaceChildren();
    const opener = state.dialogOpener;
    state.dialogOpener = null;
    if (opener && document.contains(opener)) opener.focus();
  }

  function onExpiryToggle() {
    const enabled = $("expiry-enabled").checked;
    const date = $("expiry-date");
    date.disabled = !enabled;
    date.min = todayUtc();
    if (enabled) {
      if (!date.value) date.value = addDaysUtc(todayUtc(), 90);
      date.focus();
    } else {
      date.removeAttribute("aria-invalid");
      showAlert("generate-error", "");
    }
  }

  function setBusy(busy) {
    state.busy = busy;
    const submit = $("generate-submit");
    submit.disabled = busy;
    submit.textContent = busy ? "Generating…" : "Generate Token";
  }

  // Returns the request body, or null after showing why the form cannot be sent.
  function readGenerateForm() {
    const name = $("token-name").value.trim();
    const body = {};
    if (name) body.name = name;
    const date = $("expiry-date");
    date.removeAttribute("aria-invalid");
    if (!$("expiry-enabled").checked) {
      body.expires_at = null;
      return body;
    }
    const value = date.value;
    let problem = "";
    if (!value || !/^\d{4}-\d{2}-\d{2}$/.test(value)) {
      problem = "Choose an expiry date, or untick “Enable expiry date” for a token that never expires.";
    } else if (value < todayUtc()) {
      problem = "The expiry date " + value + " is in the past. Choose today (" + todayUtc() + ", UTC) or a later date.";
    }
    if (problem) {
      date.setAttribute("aria-invalid", "true");
      showAlert("generate-error", problem);
      date.focus();
      return null;
    }
    body.expires_at = value;
    return body;
  }

  async function submitGenerate(event) {
    event.preventDefault();
    if (state.busy) return;
    showAlert("generate-error", "");
    const body = readGenerateForm();
    if (!body) return;
    setBusy(true);
    let minted;
    try {
      minted = await api("POST", "/v1/tokens", body);
    } catch (e) {
      setBusy(false);
      if (e instanceof ApiError && e.status === 401) return;
      showAlert("generate-error", "The server refused the token: " + e.message);
      if (e.status === 422 && body.expires_at) $("expiry-date").setAttribute("aria-invalid", "true");
      return;
    }
    setBusy(false);
    const named = minted.name && minted.name.trim();
    setText("new-name", named ? minted.name : "Unnamed");
    setText("new-expires", formatExpiry(minted.expires_at), minted.expires_at || "");
    $("new-token").value = minted.token;
    renderCommands($("new-commands"), minted.commands, "new-");
    setGenerateStep(true);
    $("new-token-copy").focus();
    announce("Token generated; the install commands now carry it");
    refresh(["deployment", "tokens", "keys"]).catch((e) => reportError(e, "Refreshing the page failed"));
  }

  // ---------------------------------------------------------------- sign-in

  async function signIn(event) {
    event.preventDefault();
    const input = $("admin-key");
    const key = input.value.trim();
    if (!key) {
      showAlert("signin-error", "Enter an admin API key.");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    const button = $("signin-button");
    button.disabled = true;
    button.textContent = "Signing in…";
    sessionStorage.setItem(KEY_STORAGE, key);
    try {
      await loadDeployment();
      input.value = "";
      showAlert("signin-error", "");
      showApp();
      await refresh(["tokens", "keys", "activity"]);
      startActivity();
      $("main").focus();
      announce("Signed in");
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) {
        forgetKey();
        showAlert("signin-error", "Could not sign in: " + e.message);
        $("app-view").hidden = true;
        $("signin-view").hidden = false;
      }
    } finally {
      button.disabled = false;
      button.textContent = "Sign in";
    }
  }

  function signOut() {
    forgetKey();
    showSignIn("");
    announce("Signed out. The admin key was removed from this tab.");
  }

  // ---------------------------------------------------------------- start

  function init() {
    $("signin-form").addEventListener("submit", signIn);
    $("signout-button").addEventListener("click", signOut);
    $("generate-open").addEventListener("click", openGenerate);
    $("generate-form").addEventListener("submit", submitGenerate);
    $("expiry-enabled").addEventListener("change", onExpiryToggle);
    $("new-token-copy").addEventListener("click", (e) => copyText($("new-token").value, "token", e.currentTarget));
    $("rotate-button").addEventListener("click", rotateKey);
    const dialog = $("generate-dialog");
    dialog.addEventListener("close", onGenerateClosed);
    for (const b of dialog.querySelectorAll("[data-close]")) b.addEventListener("click", () => dialog.close());
    $("admin-key").addEventListener("input", (e) => e.currentTarget.setAttribute("aria-invalid", "false"));
    $("expiry-date").addEventListener("input", () => {
      $("expiry-date").removeAttribute("aria-invalid");
      showAlert("generate-error", "");
    });

    if (sessionStorage.getItem(KEY_STORAGE)) {
      showApp();
      refresh()
        .then(startActivity)
        .catch((e) => reportError(e, "Loading the console failed"));
    } else {
      showSignIn("");
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
