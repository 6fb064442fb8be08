// The chat page, enhanced: answers stream in (Server-Sent Events over fetch), and the conversation
// lives in this page (sessionStorage), sent back as `history` so follow-up questions have context.
// All data goes into the page as text nodes or attributes, never as HTML.
(function () {
  "use strict";

  var form = document.getElementById("ask-form");
  if (!form || !window.fetch || !window.TextDecoder || !window.ReadableStream) return; // the form still posts

  var STORAGE_KEY = "kamerbrieven-qa-gesprek";
  // The server's rules: how many earlier turns it takes, and what to say when a request breaks a rule.
  var HISTORY_TURNS = Number(form.getAttribute("data-history-turns")) || 10;
  var MESSAGES = {};
  try { MESSAGES = JSON.parse(form.getAttribute("data-messages") || "{}"); } catch (ignored) { /* plain fallbacks */ }
  var conversation = document.getElementById("conversation");
  var question = document.getElementById("question");
  var button = document.getElementById("ask-button");
  var statusLine = document.getElementById("status");
  var errorBox = document.getElementById("error");
  var examples = document.getElementById("examples");
  var newConversation = document.getElementById("new-conversation");
  var turns = [];
  var busy = false;

  function el(tag, attributes) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      var value = attributes[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "class") node.className = value;
      else node.setAttribute(name, String(value));
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // --- rendering --------------------------------------------------------------------------

  function citationFor(turn, index, n) {
    var byPosition = turn.citations[index];
    if (byPosition && byPosition.n === n) return byPosition;
    return turn.citations.filter(function (c) { return c.n === n; })[0] || null;
  }

  function answerNodes(turn) {
    if (turn.error) return [el("span", { class: "turn-error" }, turn.error)];
    if (!turn.answer) return turn.done ? [] : [el("span", { class: "loading" }, "Bezig met zoeken in de brieven…")];
    var nodes = [];
    var marker = /\[(\d+)\]/g;
    var last = 0;
    var index = 0;
    var match;
    while ((match = marker.exec(turn.answer)) !== null) {
      nodes.push(document.createTextNode(turn.answer.slice(last, match.index)));
      var citation = citationFor(turn, index, Number(match[1]));
      nodes.push(citation
        ? el("a", { class: "cite", href: citation.href,
                    "aria-label": "Bron " + citation.n + ": " + (citation.title || citation.letter_id) }, match[0])
        : document.createTextNode(match[0]));
      last = match.index + match[0].length;
      index += 1;
    }
    nodes.push(document.createTextNode(turn.answer.slice(last)));
    return nodes;
  }

  // href, date_label and url (a web link or null) come from the server, as on the pages it renders.
  function card(source, n, excerpt) {
    var href = source.href;
    var meta = [source.date_label, source.sender, source.section ? "§ " + source.section : null, "p. " + source.page]
      .filter(Boolean).join(" · ");
    var official = source.url;
    return el("li", { class: "card" },
      el("p", { class: "card-title" },
        n ? el("span", { class: "badge", "aria-hidden": "true" }, n) : null,
        el("a", { href: href }, n ? el("span", { class: "visually-hidden" }, "Bron " + n + ": ") : null, source.title || source.letter_id)),
      el("p", { class: "meta" }, meta),
      el("blockquote", null, excerpt),
      el("p", { class: "card-links" },
        el("a", { href: href }, "Lees in de brief"),
        official ? " · " : null,
        official ? el("a", { href: official, rel: "noopener noreferrer", target: "_blank" }, "Officiële publicatie",
          el("span", { class: "visually-hidden" }, " (opent in een nieuw venster)")) : null));
  }

  function sourceNodes(turn) {
    if (turn.error) return [];
    var nodes = [];
    var note = confidenceNode(turn);
    if (note) nodes.push(note);
    var seen = {};
    var cited = turn.citations.filter(function (c) { return seen[c.n] ? false : (seen[c.n] = true); });
    if (cited.length) {
      nodes.push(el("h3", { class: "sources-title" }, "Bronnen"));
      nodes.push(el.apply(null, ["ol", { class: "cards" }].concat(cited.map(function (c) {
        return card(c, c.n, c.quote);
      }))));
    } else if (turn.abstained && turn.close && turn.close.length) {
      nodes.push(el("p", { class: "hint" }, "Deze passages komen het dichtst in de buurt, maar beantwoorden de vraag niet:"));
      nodes.push(el.apply(null, ["ol", { class: "cards related" }].concat(turn.close.map(function (p) {
        var text = p.text.replace(/\s+/g, " ");
        return card(p, null, text.length > 300 ? text.slice(0, 300) + "…" : text);
      }))));
    }
    return nodes;
  }

  function confidenceNode(turn) {
    if (turn.error || !turn.done) return null;
    if (turn.abstained) return turn.reason ? el("p", { class: "decline-reason" }, turn.reason) : null;
    if (!turn.label) return null;
    return el("p", { class: "confidence confidence-" + turn.label },
      "Zekerheid: " + turn.label + " (" + Math.round(turn.confidence * 100) + "%)");
  }

  function renderTurn(turn) {
    var text = el("p", { class: "answer-text" });
    var sources = el("div", { class: "sources" });
    var answer = el("div", { class: "answer" }, el("span", { class: "visually-hidden" }, "Antwoord: "), text, sources);
    var item = el("li", { class: "turn" },
      el("div", { class: "question" }, el("span", { class: "visually-hidden" }, "Vraag: "), el("p", null, turn.question)),
      answer);
    var view = { item: item, answer: answer, text: text, sources: sources };
    update(view, turn);
    conversation.appendChild(item);
    return view;
  }

  function update(view, turn) {
    view.answer.classList.toggle("abstained", Boolean(turn.abstained) && !turn.error);
    view.answer.classList.toggle("failed", Boolean(turn.error));
    view.answer.setAttribute("aria-busy", turn.done ? "false" : "true");
    view.text.replaceChildren.apply(view.text, answerNodes(turn));
    view.sources.replaceChildren.apply(view.sources, sourceNodes(turn));
  }

  // --- state ------------------------------------------------------------------------------

  function save() {
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(turns.filter(function (t) { return t.done; })));
    } catch (ignored) { /* private mode: the conversation just is not kept */ }
  }

  function restore() {
    if (conversation.children.length) return; // a page rendered by the server already shows its turns
    try {
      var stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "[]");
      if (Array.isArray(stored)) turns = stored.filter(function (t) { return t && typeof t.question === "string"; });
    } catch (ignored) { turns = []; }
    turns.forEach(renderTurn);
    examples.hidden = turns.length > 0;
  }

  function history() {
    return turns.filter(function (t) { return t.done && !t.error; }).slice(-HISTORY_TURNS)
      .map(function (t) { return { question: t.question, answer: t.answer }; });
  }

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  function setBusy(value, message) {
    busy = value;
    button.disabled = value;
    button.textContent = value ? "Bezig…" : "Vraag";
    statusLine.textContent = message || "";
  }

  function readFilters() {
    var filters = {};
    ["date_from", "date_to", "sender", "type"].forEach(function (name) {
      var value = form.elements[name].value.trim();
      if (value) filters[name] = value;
    });
    return filters;
  }

  // --- asking -----------------------------------------------------------------------------

  async function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      buffer = (buffer + decoder.decode(chunk.value || new Uint8Array(), { stream: !chunk.done })).replace(/\r\n/g, "\n");
      var cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        var block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        var event = "message";
        var data = [];
        block.split("\n").forEach(function (line) {
          if (line.indexOf("event:") === 0) event = line.slice(6).trim();
          else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
        });
        if (data.length) onEvent(event, JSON.parse(data.join("\n")));
      }
      if (chunk.done) return;
    }
  }

  function Rejected(message) { this.message = message; }

  async function problem(response) {
    var detail = "";
    var code = null;
    try { var body = await response.json(); detail = body.detail || ""; code = body.code || null; } catch (ignored) { /* not JSON */ }
    if (code && MESSAGES[code]) return new Rejected(MESSAGES[code]); // a rule of the server's, in its own words
    if (response.status === 413) return "De vraag en het gesprek samen zijn te lang. Begin een nieuw gesprek.";
    if (response.status >= 400 && response.status < 500) return "De vraag kon niet worden verwerkt. " + detail;
    return "Er ging iets mis op de server (" + response.status + "). Probeer het opnieuw.";
  }

  async function ask(text) {
    showError("");
    text = text.trim();
    if (!text) { showError(MESSAGES.question_empty || "Typ eerst een vraag."); question.focus(); return; }
    var filters = readFilters();
    var turn = { question: text, answer: "", abstained: false, citations: [], passages: [], close: [], done: false };
    var body = JSON.stringify({ question: text, k: 5, filters: filters, history: history() });
    turns.push(turn);
    examples.hidden = true;
    var view = renderTurn(turn);
    view.item.scrollIntoView({ block: "nearest" });
    question.value = "";
    setBusy(true, "Bezig met zoeken in de brieven…");
    try {
      var response = await fetch("/api/ask/stream", {
        method: "POST", headers: { "Content-Type": "application/json", Accept: "text/event-stream" }, body: body,
      });
      if (!response.ok) {
        var failure = await problem(response);
        throw failure instanceof Rejected ? failure : new Error(failure);
      }
      await readEvents(response, function (event, data) {
        if (event === "sources") {
          turn.citations = data.citations; turn.passages = data.passages; turn.abstained = data.abstained;
          turn.confidence = data.confidence || 0; turn.label = data.confidence_label || null;
          turn.reason = data.decline_reason || null; turn.close = data.close_passages || [];
        } else if (event === "delta") {
          turn.answer += data.text;
        } else if (event === "done") {
          turn.answer = data.answer; turn.abstained = data.abstained; turn.done = true;
        } else if (event === "error") {
          throw new Error(data.detail || "Er ging iets mis op de server.");
        }
        update(view, turn);
      });
      if (!turn.done) throw new Error("De verbinding werd verbroken voordat het antwoord compleet was.");
      var sources = new Set(turn.citations.map(function (c) { return c.n; })).size;
      setBusy(false, turn.abstained ? "Geen antwoord gevonden in de brieven."
        : "Antwoord ontvangen, met " + sources + (sources === 1 ? " bron." : " bronnen."));
    } catch (error) {
      if (error instanceof Rejected) { // nothing was asked: take the turn back, keep the question
        turns.pop();
        view.item.remove();
        examples.hidden = turns.length > 0;
        question.value = text;
        setBusy(false, "");
        showError(error.message);
        question.focus();
        return;
      }
      var message = error instanceof TypeError ? "De server is niet bereikbaar. Controleer de verbinding en probeer het opnieuw." : error.message;
      turn.error = message;
      turn.done = true;
      question.value = text; // nothing lost: ask again with one key
      update(view, turn);
      setBusy(false, "");
      showError(message);
    }
    save();
    question.focus();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    var submitter = event.submitter;
    ask(submitter && submitter.name === "example" ? submitter.value : question.value);
  });

  question.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit(button) : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });

  newConversation.addEventListener("click", function (event) {
    event.preventDefault();
    if (busy) return;
    turns = [];
    save();
    conversation.replaceChildren();
    examples.hidden = false;
    showError("");
    statusLine.textContent = "Nieuw gesprek gestart.";
    question.value = "";
    question.focus();
  });

  restore();
})();
