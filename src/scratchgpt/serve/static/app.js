"use strict";
// The scratchgpt playground: plain JavaScript over the JSON API of `scratchgpt serve` (api.py lists
// the endpoints). No framework and no build step: the browser runs this file as it is.

const $ = (selector) => document.querySelector(selector);

const state = {
  runs: [],           // the summaries of GET /api/runs
  run: null,          // the selected run's summary
  generation: null,   // the AbortController of the generation streaming now
  pollTimer: null,    // the next refresh of the training curves
  records: [],        // the selected run's metrics records, for redrawing on resize
  attention: null,    // {panels, translation} of the last POST /api/attention
  pick: null,         // {panel, layer, head}: the map the token strip and the big map show
  query: 0,           // the pinned query row (a click); hovering shows others for a moment
  zoom: null,         // where the big map's cells are, to find the row under the mouse
};

// ---------------------------------------------------------------------------------------------
// Small helpers

/** A new element: el("td", {className: "x"}, child, "text"). */
function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** Spaces and newlines are tokens too: make them visible in labels. */
function visible(token) {
  return token.replaceAll(" ", "␣").replaceAll("\n", "↵").replaceAll("\t", "⇥");
}

const percent = (p) => `${(100 * p).toFixed(1)}%`;
const whole = (x) => Math.round(x).toLocaleString("en");
const FAMILIES = {gpt: "GPT", bigram: "bigram", encoder: "encoder", seq2seq: "encoder-decoder"};

/** The number in an input, or null when it is empty. */
function numberIn(selector) {
  const input = $(selector);
  if (input.validity.badInput) throw new Error(`${input.id} is not a number`);
  return input.value === "" ? null : Number(input.value);
}

/** The body without its null fields: the server then uses its defaults. */
const withoutNulls = (body) => Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null));

// ---------------------------------------------------------------------------------------------
// Talking to the server. Every refusal is JSON {"error": "one line"} with a 4xx or 503 status.

async function request(path, body, signal) {
  const options = body === undefined ? {signal} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body), signal};
  let response;
  try {
    response = await fetch(path, options);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new Error(`cannot reach the server (${e.message})`);
  }
  if (!response.ok) throw new Error(await errorOf(response));
  return response;
}

async function errorOf(response) {
  try {
    return (await response.json()).error ?? `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status} ${response.statusText}`;  // not our JSON: a proxy's page, say
  }
}

const api = async (path, body) => (await request(path, body)).json();
const runPath = (name, rest = "") => `/api/runs/${encodeURIComponent(name)}${rest}`;

/** The server-sent events of a streamed response, as {event, data}. EventSource cannot POST, so
 * we read the stream ourselves: events are separated by a blank line, each has an `event:` line
 * and a `data:` line of JSON. */
async function* serverEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      yield parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
}

function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  return {event, data: JSON.parse(data.join("\n"))};
}

// ---------------------------------------------------------------------------------------------
// The error line: one visible line, never an alert.

function showError(e) {
  const line = $("#error");
  line.textContent = e.message ?? String(e);
  line.hidden = false;
}

function clearError() {
  $("#error").hidden = true;
  $("#error").textContent = "";
}

/** A button's work: the button waits while it runs, and any error goes to the error line. */
async function busy(button, work) {
  clearError();
  button.disabled = true;
  try {
    await work();
  } catch (e) {
    showError(e);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Runs: the picker, the URL hash (#run=NAME) and the panels each run's abilities allow.

function runLabel(run) {
  if (run.error) return `${run.name} — unreadable`;
  const family = FAMILIES[run.kind] ?? run.kind;
  return `${run.name} — ${family} · ${run.task} · step ${run.step.toLocaleString("en")}`;
}

function shapeLine(run) {
  const s = run.shape ?? {};
  const parts = [s.n_layer && `${s.n_layer} layers × ${s.n_head} heads`, s.n_embd && `width ${s.n_embd}`,
    `block ${s.block_size}`, `vocabulary ${s.vocab_size}`];
  return parts.filter(Boolean).join(" · ");
}

async function loadRuns() {
  const {limits} = await api("/api/health");  // the server's limits, so the inputs can say them
  $("#max-new-tokens").max = limits.max_new_tokens;
  $("#max-new-tokens").title = `at most ${whole(limits.max_new_tokens)} on this server`;
  const runs = await listRuns();
  if (!runs.length) throw new Error("this server has no runs yet: train one (scratchgpt train), then reload");
  const wanted = runs.find((run) => run.name === hashRun() && !run.error);
  const newest = runs.find((run) => !run.error);  // the server lists the newest first
  await selectRun((wanted ?? newest ?? runs[0]).name);
}

/** Fill the picker from GET /api/runs (the newest first), keeping the selected run; returns the runs. */
async function listRuns() {
  const {runs} = await api("/api/runs");
  state.runs = runs;
  $("#run").replaceChildren(...runs.map((run) =>
    el("option", {value: run.name, textContent: runLabel(run), disabled: Boolean(run.error)})));
  if (state.run) $("#run").value = state.run.name;
  return runs;
}

const hashRun = () => new URLSearchParams(location.hash.slice(1)).get("run");

async function selectRun(name) {
  stopGeneration();
  clearTimeout(state.pollTimer);
  clearError();
  state.run = state.runs.find((run) => run.name === name);
  $("#run").value = name;
  history.replaceState(null, "", `#${new URLSearchParams({run: name})}`);
  showPanels();
  setExamples();
  clearResults();
  if (state.run.error) return showError(state.run.error);
  await refreshTraining();
}

function showPanels() {
  const run = state.run;
  const abilities = run.has_model ? run.abilities ?? [] : [];
  for (const node of document.querySelectorAll("[data-ability]")) {
    node.hidden = !abilities.includes(node.dataset.ability);
  }
  $("#no-model").hidden = Boolean(run.has_model || run.error);
  $("#attention-target-field").hidden = run.kind !== "seq2seq";
  $("#run-info").textContent = run.error ? "" : shapeLine(run);
}

// Example inputs for each task, so that every panel works with one click.
const REVIEWS = ["The food was outstanding and the staff were friendly.",
  "We waited an hour and the soup was cold.", "The room was fine and the prices were fair."];
const EXAMPLES = {
  speakers: ["But soft, what light through yonder window breaks?", "Now is the winter of our discontent",
    "O, she doth teach the torches to burn bright!"],
  names: ["Good morrow, Romeo; where is Juliet?", "I will go with Gloucester to the king."],
  classify: REVIEWS,
  regress: REVIEWS,
  dates: ["13th September 1997", "04/05/1980", "30-Sep-2021"],
  numbers: ["40213", "7", "999999"],
  copy: ["attention", "transformer"],
  reverse: ["attention", "transformer"],
  pairs: ["Hello.", "How are you?"],
};
const SHAKESPEARE = "ROMEO:\nBut soft, what light through yonder window breaks?";

function setExamples() {
  const run = state.run;
  const lines = EXAMPLES[run.task] ?? [];
  $("#predict-texts").value = lines.join("\n");
  $("#translate-texts").value = lines.join("\n");
  $("#attention-target").value = "";
  // Self-attention models see at most block_size tokens ([CLS] and [SEP] around an encoder's).
  const fits = (run.shape?.block_size ?? 32) - (run.kind === "encoder" ? 2 : 0);
  const ownExamples = run.kind === "seq2seq" || ["sequence", "token"].includes(run.head);  // not raw play text
  const text = ownExamples ? lines[0] ?? "" : SHAKESPEARE;
  $("#attention-text").value = text.slice(0, fits);
}

function clearResults() {
  for (const id of ["#output", "#fill-results", "#predict-results", "#translate-results"]) $(id).replaceChildren();
  $("#output").dataset.state = "idle";
  $("#token-count").textContent = $("#speed").textContent = "";
  clearAttention();
}

// ---------------------------------------------------------------------------------------------
// Generate: the continuation streamed token by token.

function generationSettings() {
  const seed = numberIn("#seed");
  if (seed !== null && !Number.isSafeInteger(seed)) {
    throw new Error("seed: the page can send whole numbers up to 9007199254740991");
  }
  return withoutNulls({
    run: state.run.name, prompt: $("#prompt").value, stream: true,
    temperature: Number($("#temperature").value), top_k: numberIn("#top-k"), top_p: numberIn("#top-p"),
    max_new_tokens: numberIn("#max-new-tokens"), seed, cache: $("#cache").value,
  });
}

/** Show the prompt in the output; return the text node the generated tokens are appended to. */
function startOutput(prompt) {
  const generated = document.createTextNode("");
  $("#output").replaceChildren(el("span", {className: "prompt", textContent: prompt}),
    el("span", {className: "generated"}, generated));
  return generated;
}

async function generate() {
  clearError();
  const output = $("#output");
  let body;
  try {
    body = generationSettings();
  } catch (e) {
    return showError(e);
  }
  const controller = new AbortController();
  state.generation = controller;
  setGenerating(true);
  output.replaceChildren();
  output.dataset.state = "running";
  $("#speed").textContent = "";
  let tokens = 0;
  try {
    const response = await request("/api/generate", body, controller.signal);
    const generated = startOutput(body.prompt);
    for await (const {event, data} of serverEvents(response)) {
      if (event === "token") {
        generated.appendData(data.text);
        tokens += 1;
        $("#token-count").textContent = `${whole(tokens)} tokens`;
        followOutput();
      } else if (event === "done") {
        $("#token-count").textContent = `${whole(data.tokens)} tokens`;
        $("#speed").textContent = `${whole(data.tokens_per_second ?? 0)} tokens/s (${data.seconds.toFixed(2)} s)`;
        output.dataset.state = "done";
      } else if (event === "error") {
        throw new Error(data.error);
      }
    }
    if (output.dataset.state !== "done") throw new Error("the server closed the stream before the end");
  } catch (e) {
    if (e.name === "AbortError") {
      output.dataset.state = "stopped";
      $("#speed").textContent = "stopped";
    } else {
      output.dataset.state = "error";
      showError(e);
    }
  } finally {
    state.generation = null;
    setGenerating(false);
  }
}

/** Closing the connection is the whole protocol: the server cancels the job when it sees it. */
function stopGeneration() {
  state.generation?.abort();
}

function setGenerating(running) {
  $("#generate").disabled = running;
  $("#stop").disabled = !running;
  if (running) $("#token-count").textContent = "";
}

let following = false;
/** Keep the newest text in view, once per frame however many tokens arrived in it. */
function followOutput() {
  if (following) return;
  following = true;
  requestAnimationFrame(() => {
    const output = $("#output");
    output.scrollTop = output.scrollHeight;
    following = false;
  });
}

// ---------------------------------------------------------------------------------------------
// Fill, predict, translate: one request, one table of results.

/** Rows of label | probability bar | percentage. */
function bars(pairs) {
  return el("table", {className: "bars"}, ...pairs.map(([label, p]) => el("tr", {},
    el("td", {className: "label", textContent: label}),
    el("td", {className: "bar"}, el("span", {style: `width: ${(100 * p).toFixed(1)}%`})),
    el("td", {className: "number", textContent: percent(p)}))));
}

async function fillMasks() {
  const {masks} = await api("/api/fill", withoutNulls({
    run: state.run.name, text: $("#fill-text").value, top_k: numberIn("#fill-top-k")}));
  $("#fill-results").replaceChildren(...masks.map((guesses, i) => el("div", {className: "result"},
    el("h3", {textContent: `[MASK] ${i + 1}`}),
    bars(guesses.map(({token, probability}) => [visible(token), probability])))));
}

const linesOf = (selector) => $(selector).value.split("\n").filter((line) => line.trim());

async function predictTexts() {
  const texts = linesOf("#predict-texts");
  const {results} = await api("/api/predict", {run: state.run.name, texts});
  $("#predict-results").replaceChildren(...results.map((result, i) =>
    el("div", {className: "result"}, ...describe(texts[i], result))));
}

/** A prediction as elements: a class and its probabilities, a score, a tagger's words with their tags (and
 * entities), or the text with its spans. */
function describe(text, result) {
  if ("tags" in result) {
    const words = result.words.map((word, i) => [i ? " " : "", word, el("sub", {textContent: result.tags[i]})]);
    const found = result.spans.map((span) => `${span.type}: ${span.text}`).join("; ");
    return [el("p", {}, ...words.flat()), ...(found ? [el("p", {className: "muted", textContent: found})] : [])];
  }
  if ("score" in result) {
    const score = el("p", {className: "answer", textContent: `score ${result.score.toFixed(2)}`});
    return [el("p", {textContent: text}), score];
  }
  if ("label" in result) {
    const ranked = Object.entries(result.probabilities).sort((a, b) => b[1] - a[1]);
    return [el("p", {textContent: text}), el("p", {className: "answer", textContent: result.label}), bars(ranked)];
  }
  const pieces = [];
  let at = 0;
  for (const span of result.spans) {
    pieces.push(text.slice(at, span.start),
      el("mark", {textContent: span.text, title: result.labels[span.start]}));
    at = span.end;
  }
  pieces.push(text.slice(at));
  const found = result.spans.length ? `${result.spans.length} span(s) found` : "no spans found";
  return [el("p", {className: "spans"}, ...pieces), el("p", {className: "muted", textContent: found})];
}

async function translateTexts() {
  const texts = linesOf("#translate-texts");
  const {translations} = await api("/api/translate", withoutNulls({
    run: state.run.name, texts, beam: numberIn("#beam")}));
  $("#translate-results").replaceChildren(el("table", {className: "translations"},
    ...translations.map((translation, i) => el("tr", {},
      el("td", {textContent: texts[i]}), el("td", {className: "arrow", textContent: "→"}),
      el("td", {className: "answer", textContent: translation})))));
}

// ---------------------------------------------------------------------------------------------
// The attention explorer: every layer and head as a heatmap, one of them enlarged with its tokens.

// viridis, the colour map of the lecture's plots: dark purple (0) to yellow (1), at nine stops.
const VIRIDIS = [[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]];

/** The colour of each byte 0..255 (weight = byte / 255), interpolated between the stops. */
const COLOURS = Array.from({length: 256}, (_, byte) => {
  const x = (byte / 255) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(x), VIRIDIS.length - 2);
  const t = x - i;
  return VIRIDIS[i].map((c, j) => Math.round(c + t * (VIRIDIS[i + 1][j] - c)));
});

const PANEL_TITLES = {
  encoder: "Encoder: source → source",
  decoder: "Decoder: target → earlier target",
  cross: "Cross: target → source",
};

/** A panel with its weights as bytes: shape (layers, heads, R, K), row-major, weight = byte / 255. */
function decodePanel(panel) {
  const [layers, heads, R, K] = panel.shape;
  const bytes = Uint8Array.from(atob(panel.weights), (c) => c.charCodeAt(0));
  return {...panel, layers, heads, R, K, bytes};
}

/** The R × K weights of one layer and head (a view, not a copy). */
function mapOf(panel, layer, head) {
  const size = panel.R * panel.K;
  return panel.bytes.subarray((layer * panel.heads + head) * size, (layer * panel.heads + head + 1) * size);
}

function panelTitle(panel) {
  if (panel.name) return PANEL_TITLES[panel.name] ?? panel.name;
  return state.run.kind === "gpt" ? "Causal: each token reads the earlier ones" : "Each token reads every token";
}

async function showAttention() {
  const name = state.run.name;
  const body = {run: name, text: $("#attention-text").value};
  const target = $("#attention-target").value;
  if (state.run.kind === "seq2seq" && target) body.target = target;
  const answer = await api("/api/attention", body);
  if (name !== state.run.name) return;  // the user picked another run meanwhile
  state.attention = {panels: answer.panels.map(decodePanel), translation: answer.translation};
  const translation = $("#attention-translation");
  translation.hidden = answer.translation === null;
  translation.textContent = `Translation: ${answer.translation}`;
  drawMaps();
  state.query = state.attention.panels[0].R - 1;  // the last token: in a GPT, it reads all the others
  pickMap(0, 0, 0);
  $("#attention-maps").dataset.state = "drawn";
}

function clearAttention() {
  state.attention = null;
  $("#attention-maps").replaceChildren();
  $("#attention-maps").dataset.state = "empty";
  $("#attention-detail").hidden = true;
  $("#attention-translation").hidden = true;
}

/** Every panel as a grid of small heatmaps: rows are layers, columns heads, as many as fit. */
function drawMaps() {
  const room = $("#attention-panel").clientWidth - 90;
  const groups = state.attention.panels.map((panel, p) => {
    const size = Math.max(36, Math.min(88, Math.floor(room / panel.heads) - 6));
    const grid = el("div", {className: "map-grid"});
    grid.style.gridTemplateColumns = `auto repeat(${panel.heads}, ${size}px)`;
    grid.append(el("span"), ...Array.from({length: panel.heads}, (_, h) =>
      el("span", {className: "axis", textContent: `head ${h}`})));
    for (let layer = 0; layer < panel.layers; layer++) {
      grid.append(el("span", {className: "axis", textContent: `layer ${layer}`}));
      for (let head = 0; head < panel.heads; head++) grid.append(heatmap(panel, p, layer, head));
    }
    return el("div", {className: "map-group"}, el("h3", {textContent: panelTitle(panel)}), grid);
  });
  $("#attention-maps").replaceChildren(...groups);
}

/** One head's map as a canvas of K × R pixels, scaled up by CSS (pixelated). */
function heatmap(panel, p, layer, head) {
  const canvas = el("canvas", {className: "heatmap", width: panel.K, height: panel.R,
    title: `${panel.name || "self-attention"}, layer ${layer}, head ${head}: click to enlarge`});
  Object.assign(canvas.dataset, {panel: p, layer, head});
  const context = canvas.getContext("2d");
  const image = context.createImageData(panel.K, panel.R);
  mapOf(panel, layer, head).forEach((byte, i) => image.data.set([...COLOURS[byte], 255], 4 * i));
  context.putImageData(image, 0, 0);
  canvas.addEventListener("click", () => pickMap(p, layer, head));
  return canvas;
}

/** Choose the map that the token strip and the big map show. */
function pickMap(panel, layer, head) {
  state.pick = {panel, layer, head};
  for (const canvas of document.querySelectorAll(".heatmap")) {
    const d = canvas.dataset;
    canvas.classList.toggle("selected", +d.panel === panel && +d.layer === layer && +d.head === head);
  }
  const chosen = state.attention.panels[panel];
  state.query = Math.min(state.query, chosen.R - 1);
  $("#attention-detail").hidden = false;
  drawTokens(chosen);
  showQuery(state.query);
}

/** Self-attention: the queries and the keys are the same tokens. */
const isSelfAttention = (panel) =>
  panel.rows.length === panel.cols.length && panel.rows.every((t, i) => t === panel.cols[i]);

/** The tokens as a strip of chips. Self-attention: one strip, queries and keys alike; cross-attention:
 * the target's queries above the source's keys. Newlines break the strip as they break the text. */
function drawTokens(panel) {
  const strip = (tokens, role) => el("div", {className: "token-line"}, ...tokens.flatMap((token, i) => {
    const chip = el("span", {className: "token", textContent: visible(token)});
    Object.assign(chip.dataset, {index: i, role});
    return token.endsWith("\n") ? [chip, el("br")] : [chip];
  }));
  const tokens = $("#attention-tokens");
  if (isSelfAttention(panel)) {
    tokens.replaceChildren(strip(panel.rows, "query key"));
  } else {
    tokens.replaceChildren(el("p", {className: "strip-label", textContent: "queries (target)"}),
      strip(panel.rows, "query"), el("p", {className: "strip-label", textContent: "keys (source)"}),
      strip(panel.cols, "key"));
  }
}

/** Highlight where query row `row` looks: each key's background is as opaque as the square root of
 * its weight (so that small weights still show); the exact weight is in each key's tooltip. */
function showQuery(row) {
  const {panel: p, layer, head} = state.pick;
  const panel = state.attention.panels[p];
  const weights = mapOf(panel, layer, head).subarray(row * panel.K, (row + 1) * panel.K);
  const largest = Math.max(...weights, 1);
  for (const chip of document.querySelectorAll("#attention-tokens .token")) {
    const roles = chip.dataset.role.split(" ");
    const i = Number(chip.dataset.index);
    chip.classList.toggle("query", roles.includes("query") && i === row);
    if (roles.includes("key")) {
      chip.style.backgroundColor = weights[i] ? `rgba(245, 158, 11, ${Math.sqrt(weights[i] / 255).toFixed(3)})` : "";
      chip.title = `weight ${percent(weights[i] / 255)}`;
    }
  }
  const top = weights.indexOf(largest);
  $("#attention-selected").textContent = `${panel.name ? panel.name + ", " : ""}layer ${layer}, head ${head}` +
    ` · query ${row} “${visible(panel.rows[row])}” reads most “${visible(panel.cols[top] ?? "")}”` +
    ` (${percent(largest / 255)})`;
  drawZoom(panel, layer, head, row);
}

/** The chosen map, big, with its tokens on the axes and the query row outlined. */
function drawZoom(panel, layer, head, row) {
  const canvas = $("#attention-zoom");
  const context = canvas.getContext("2d");
  const font = "12px ui-monospace, 'DejaVu Sans Mono', Menlo, monospace";
  context.font = font;
  const labelWidth = (tokens) => Math.max(...tokens.map((t) => context.measureText(visible(t)).width));
  const rotate = panel.cols.some((t) => visible(t).length > 1);  // long column labels stand upright
  const left = labelWidth(panel.rows) + 12;
  const top = (rotate ? labelWidth(panel.cols) : 12) + 22;
  const room = Math.min(canvas.parentElement.clientWidth || 440, 480) - left - 8;  // the width there is
  const cell = Math.max(4, Math.min(22, Math.floor(room / panel.K)));
  const width = left + panel.K * cell + 8;
  const height = top + panel.R * cell + 8;
  const ratio = window.devicePixelRatio || 1;  // sharp text on high-density screens
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.font = font;
  state.zoom = {left, top, cell, rows: panel.R, scale: width};

  const weights = mapOf(panel, layer, head);
  weights.forEach((byte, i) => {
    context.fillStyle = `rgb(${COLOURS[byte]})`;
    context.fillRect(left + (i % panel.K) * cell, top + Math.floor(i / panel.K) * cell, cell, cell);
  });
  context.strokeStyle = "#f59e0b";
  context.lineWidth = 2;
  context.strokeRect(left - 1, top + row * cell - 1, panel.K * cell + 2, cell + 2);

  const every = Math.ceil(11 / cell);  // skip labels where the cells are smaller than the text
  context.fillStyle = "#374151";
  context.textBaseline = "middle";
  context.textAlign = "right";
  panel.rows.forEach((t, r) => r % every || context.fillText(visible(t), left - 6, top + (r + 0.5) * cell));
  panel.cols.forEach((t, k) => {
    if (k % every) return;
    const x = left + (k + 0.5) * cell;
    context.save();
    context.translate(x, top - 6);
    if (rotate) context.rotate(-Math.PI / 2);
    context.textAlign = rotate ? "left" : "center";
    context.fillText(visible(t), 0, 0);
    context.restore();
  });
  context.fillStyle = "#6b7280";
  context.textAlign = "left";
  context.textBaseline = "top";
  context.fillText("query ↓   key (read) →", 0, 2);
}

/** The row of the big map under the mouse, or null. */
function zoomRow(event) {
  const {left, top, cell, rows, scale} = state.zoom;
  const box = event.target.getBoundingClientRect();
  const x = (event.clientX - box.left) * (scale / box.width);
  const y = (event.clientY - box.top) * (scale / box.width);
  const row = Math.floor((y - top) / cell);
  return x >= left && row >= 0 && row < rows ? row : null;
}

function useOutput() {
  const fits = state.run.shape?.block_size ?? 32;
  const text = $("#output").textContent;
  if (text) $("#attention-text").value = text.slice(-fits);
}

// ---------------------------------------------------------------------------------------------
// Training: loss curves, learning rate and speed, drawn as SVG by the small chart below.

const SVG = "http://www.w3.org/2000/svg";
const REFRESH_MS = 3000;
const COLOURS_OF = {train: "#9db4d8", evalTrain: "#2f5fa7", val: "#d97706", final: "#b91c1c", other: "#4b5563"};

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** About `count` round ticks (1, 2 or 5 times a power of ten) covering lo..hi. */
function niceTicks(lo, hi, count) {
  if (lo === hi) [lo, hi] = [lo - (Math.abs(lo) * 0.1 || 1), hi + (Math.abs(hi) * 0.1 || 1)];
  const raw = (hi - lo) / Math.max(count, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const first = Math.floor(lo / step);
  const last = Math.ceil(hi / step);
  return Array.from({length: last - first + 1}, (_, i) => Number(((first + i) * step).toPrecision(12)));
}

function tickLabel(value) {
  if (Math.abs(value) >= 10000) return `${Number((value / 1000).toPrecision(4))}k`;
  if (value !== 0 && Math.abs(value) < 0.01) return Number(value.toPrecision(6)).toExponential().replace("e-", "e−");
  return String(Number(value.toPrecision(6)));
}

/** A line chart: series [{label, points: [[x, y]], colour, width, dots}], x from 0 to the last step. */
function lineChart(chart, {title, series, height, legend = true}) {
  const width = Math.max(chart.getBoundingClientRect().width, 240);
  const margin = {left: 54, right: 14, top: 30, bottom: 34};
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const heading = svg("text", {x: 4, y: 16, class: "chart-title"}, title);
  chart.replaceChildren(heading);
  if (legend) {
    const beside = drawLegend(chart, series, width, 14);
    if (beside.left < heading.getComputedTextLength() + 16) {  // no room beside the title: a line of its own
      beside.group.remove();
      drawLegend(chart, series, width, 34);
      margin.top += 20;
    }
  }
  const points = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (!points.length) {
    chart.append(svg("text", {x: width / 2, y: height / 2, class: "chart-empty"}, "no records yet"));
    return;
  }
  const xTicks = niceTicks(0, Math.max(...points.map((p) => p[0])), Math.floor(width / 90));
  const yTicks = niceTicks(Math.min(...points.map((p) => p[1])), Math.max(...points.map((p) => p[1])),
    Math.max(2, Math.floor(height / 45)));
  const [x0, x1, y0, y1] = [xTicks[0], xTicks.at(-1), yTicks[0], yTicks.at(-1)];
  const X = (x) => margin.left + ((x - x0) / (x1 - x0)) * (width - margin.left - margin.right);
  const Y = (y) => height - margin.bottom - ((y - y0) / (y1 - y0)) * (height - margin.top - margin.bottom);

  for (const y of yTicks) {
    chart.append(svg("line", {x1: X(x0), x2: X(x1), y1: Y(y), y2: Y(y), class: "grid"}),
      svg("text", {x: X(x0) - 6, y: Y(y), class: "tick y"}, tickLabel(y)));
  }
  for (const x of xTicks) {
    chart.append(svg("line", {x1: X(x), x2: X(x), y1: Y(y0), y2: Y(y0) + 4, class: "axis"}),
      svg("text", {x: X(x), y: Y(y0) + 16, class: "tick x"}, tickLabel(x)));
  }
  chart.append(svg("line", {x1: X(x0), x2: X(x1), y1: Y(y0), y2: Y(y0), class: "axis"}),
    svg("text", {x: X(x1), y: height - 2, class: "axis-label"}, "step"));

  for (const s of series) {
    if (s.points.length > 1) {
      const d = s.points.map(([x, y], i) => `${i ? "L" : "M"}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join("");
      chart.append(svg("path", {d, class: "series", stroke: s.colour, "stroke-width": s.width ?? 1.5}));
    }
    if (s.dots || s.points.length === 1) {  // a line of one point is a dot
      for (const [x, y] of s.points) {
        chart.append(svg("circle", {cx: X(x), cy: Y(y), r: s.dots ?? 2, fill: s.colour, class: "dot"}));
      }
    }
  }
}

/** The series' names at height y, from the right edge leftwards: {group, left} (where it ends). */
function drawLegend(chart, series, width, y) {
  const group = svg("g", {class: "legend"});
  chart.append(group);
  let right = width - 4;
  for (const s of [...series].reverse()) {
    const label = svg("text", {x: right, y}, s.label);
    group.append(label);
    right -= label.getComputedTextLength() + 6;
    group.append(s.dots && s.points.length < 2
      ? svg("circle", {cx: right - 5, cy: y, r: s.dots, fill: s.colour})
      : svg("line", {x1: right - 14, x2: right, y1: y, y2: y, stroke: s.colour, "stroke-width": 2.5}));
    right -= 26;
  }
  return {group, left: right + 20};
}

function drawCharts(records) {
  const train = records.filter((r) => r.kind === "train");
  const evals = records.filter((r) => r.kind === "eval");
  const final = records.find((r) => r.kind === "final");
  const along = (rows, key) => rows.filter((r) => r[key] != null).map((r) => [r.step, r[key]]);
  const loss = [
    {label: "train loss (batch)", points: along(train, "loss"), colour: COLOURS_OF.train, width: 1},
    {label: "train loss (eval)", points: along(evals, "train_loss"), colour: COLOURS_OF.evalTrain, dots: 3},
    {label: "val loss (eval)", points: along(evals, "val_loss"), colour: COLOURS_OF.val, dots: 3},
  ];
  if (final?.val_loss != null) {
    loss.push({label: "final val loss", points: [[final.step, final.val_loss]], colour: COLOURS_OF.final, dots: 5});
  }
  lineChart($("#loss-chart"), {title: "Loss (nats per token)", series: loss, height: 300});
  lineChart($("#lr-chart"), {title: "Learning rate", height: 140, legend: false,
    series: [{points: along(train, "lr"), colour: COLOURS_OF.other}]});
  lineChart($("#tokens-chart"), {title: "Tokens per second", height: 140, legend: false,
    series: [{points: along(train, "tokens_per_s"), colour: COLOURS_OF.other}]});
}

/** One line in the manner of BENCHMARKS.md: steps, seconds, speed and the scores at the end. */
function benchmarkLine(config, final) {
  if (!final) return "";
  const train = config?.train ?? {};
  const block = config?.model?.block_size;
  const parts = [`${whole(final.step)} steps`,
    train.batch_size && block && `batch × block ${train.batch_size} × ${block}`,
    final.train_seconds != null && `${final.train_seconds.toFixed(1)} train s`,
    final.tokens_per_s != null && `${whole(final.tokens_per_s)} tokens/s`,
    final.val_loss != null && `final val ${final.val_loss.toFixed(4)} nats` +
      (final.val_bpc != null ? ` (${final.val_bpc.toFixed(4)} bits/char)` : ""),
    final.best_estimated_val_loss != null && `best estimated val ${final.best_estimated_val_loss.toFixed(4)}`];
  for (const key of ["val_accuracy", "val_exact", "test_accuracy", "test_macro_f1", "test_exact", "test_chrf"]) {
    if (typeof final[key] === "number") parts.push(`${key.replace("_", " ")} ${Number(final[key].toPrecision(4))}`);
  }
  return parts.filter(Boolean).join(" · ");
}

/** Where the run's training is: finished, stopped (with how to resume it) or going on. */
function progressLine(run, records) {
  if (run.status === "finished") return "Training finished.";
  const last = records.at(-1);
  const at = last?.train_seconds != null ? ` after ${last.train_seconds.toFixed(0)} s` : "";
  if (run.status === "stopped") {
    const of = run.max_time ? `${at} of ${run.max_time} s` : ` of ${whole(run.max_iters)}`;
    return `Stopped at step ${whole(run.step)}${of} (resume with: scratchgpt train --resume --out ${run.path})`;
  }
  const limit = run.max_time ? `${run.max_time} s` : `${whole(run.max_iters)} steps`;
  return `Training: step ${whole(run.step)} of up to ${limit}${at} · refreshing every ${REFRESH_MS / 1000} s`;
}

/** config.json's model and train settings as compact key/value grids. */
function drawSettings(config) {
  const group = (title, settings) => el("div", {className: "settings-group"},
    el("h4", {textContent: title}),
    el("dl", {}, ...Object.entries(settings ?? {}).map(([key, value]) => el("div", {},
      el("dt", {textContent: key}),
      el("dd", {textContent: Array.isArray(value) ? value.join(", ") : String(value)})))));
  $("#settings").replaceChildren(group("model", config?.model), group("training", config?.train));
}

async function refreshTraining() {
  const name = state.run.name;
  try {
    const [details, {records}] = await Promise.all([api(runPath(name)), api(runPath(name, "/metrics"))]);
    if (name !== state.run.name) return;  // another run was picked meanwhile
    const hadModel = state.run.has_model;
    Object.assign(state.run, details);
    $("#run").selectedOptions[0].textContent = runLabel(state.run);
    if (hadModel !== details.has_model) showPanels();
    state.records = records;
    drawCharts(records);
    drawSettings(details.config);
    $("#benchmark").textContent = benchmarkLine(details.config, details.final);
    $("#training-state").textContent = progressLine(details, records);
    $("#training-panel").dataset.state = "drawn";
    if (details.status === "training") state.pollTimer = setTimeout(refreshTraining, REFRESH_MS);
  } catch (e) {
    if (name !== state.run.name) return;
    $("#training-state").textContent = `Cannot refresh: ${e.message}; trying again in ${REFRESH_MS / 1000} s`;
    state.pollTimer = setTimeout(refreshTraining, REFRESH_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

function debounce(action, ms) {
  let timer;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(action, ms);
  };
}

function wire() {
  $("#run").addEventListener("change", (e) => selectRun(e.target.value));
  // The server finds runs started while the page is open: list them again when the picker opens.
  $("#run").addEventListener("focus", () => listRuns().catch(showError));
  window.addEventListener("hashchange", () => {
    const name = hashRun();
    if (name && name !== state.run?.name && state.runs.some((run) => run.name === name)) selectRun(name);
  });
  $("#temperature").addEventListener("input", (e) => { $("#temperature-value").value = e.target.value; });
  $("#generate").addEventListener("click", generate);
  $("#stop").addEventListener("click", stopGeneration);
  $("#fill-run").addEventListener("click", (e) => busy(e.target, fillMasks));
  $("#predict-run").addEventListener("click", (e) => busy(e.target, predictTexts));
  $("#translate-run").addEventListener("click", (e) => busy(e.target, translateTexts));
  $("#attention-run").addEventListener("click", (e) => busy(e.target, showAttention));
  $("#attention-use-output").addEventListener("click", useOutput);

  // Hovering a query shows its row for a moment; a click pins it.
  const tokens = $("#attention-tokens");
  const queryOf = (event) => event.target.closest?.(".token[data-role~=query]");
  tokens.addEventListener("mouseover", (e) => queryOf(e) && showQuery(Number(queryOf(e).dataset.index)));
  tokens.addEventListener("click", (e) => {
    if (!queryOf(e)) return;
    state.query = Number(queryOf(e).dataset.index);
    showQuery(state.query);
  });
  tokens.addEventListener("mouseleave", () => showQuery(state.query));
  const zoom = $("#attention-zoom");
  zoom.addEventListener("mousemove", (e) => {
    const row = zoomRow(e);
    if (row !== null) showQuery(row);
  });
  zoom.addEventListener("click", (e) => {
    const row = zoomRow(e);
    if (row !== null) state.query = row;
  });
  zoom.addEventListener("mouseleave", () => showQuery(state.query));
  window.addEventListener("resize", debounce(() => drawCharts(state.records), 200));
}

wire();
loadRuns().catch(showError);
