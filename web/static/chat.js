// The chat page, enhanced: answers stream in (Server-Sent Events over fetch, with a stop button), the
// conversation lives in this page (sessionStorage) and is sent back as `history` so follow-up questions have
// context; filters show as removable chips; each answer can be shared, copied and previewed per citation.
// Without this script the page still works: the form posts and the server renders the same markup.
// All data goes into the page as text nodes or attributes, never as HTML.
(function () {
  "use strict";

  var form = document.getElementById("ask-form");
  if (!form || !window.fetch || !window.TextDecoder || !window.ReadableStream || !window.AbortController) return; // the form still posts

  var STORAGE_KEY = "kamerbrieven-qa-gesprek";
  var FILTERS_KEY = "kamerbrieven-qa-filters";
  var FILTER_FIELDS = ["date_from", "date_to", "sender", "type"]; // as qa/server/pages/filters.py FILTER_FIELDS
  var CHIP_PREFIX = { date_from: "Vanaf ", date_to: "Tot en met ", sender: "Ministerie: ", type: "Soort: " };
  // The server's rules: how many earlier turns it takes, and what to say when a request breaks a rule.
  var HISTORY_TURNS = Number(form.getAttribute("data-history-turns")) || 10;
  var MESSAGES = parseJSON(form.getAttribute("data-messages"), {});
  var MONTHS = parseJSON(form.getAttribute("data-months"), []);
  var conversation = document.getElementById("conversation");
  var question = document.getElementById("question");
  var button = document.getElementById("ask-button");
  var stopButton = document.getElementById("stop-button");
  var statusLine = document.getElementById("status");
  var errorBox = document.getElementById("error");
  var examples = document.getElementById("examples");
  var newConversation = document.getElementById("new-conversation");
  var chipList = document.getElementById("active-filters");
  var filterCount = document.getElementById("filter-count");
  var preview = document.getElementById("cite-preview");
  var turns = [];
  var busy = null; // the AbortController of the answer being streamed

  function parseJSON(text, fallback) {
    try { return JSON.parse(text || ""); } catch (ignored) { return fallback; }
  }

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

  function list(tag, attributes, children) { return el.apply(null, [tag, attributes].concat(children)); }

  // --- links and labels (the same as the server's, qa/server/pages/) ---------------------

  function dutchDate(iso) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || "");
    return m && MONTHS[Number(m[2]) - 1] ? Number(m[3]) + " " + MONTHS[Number(m[2]) - 1] + " " + m[1] : iso;
  }

  function typeLabel(value) {
    var option = form.elements.type.querySelector('option[value="' + CSS.escape(value) + '"]');
    return option ? option.textContent : value;
  }

  function chips(filters) {
    return FILTER_FIELDS.filter(function (name) { return filters && filters[name]; }).map(function (name) {
      var value = filters[name];
      var shown = name.indexOf("date") === 0 ? dutchDate(value) : name === "type" ? typeLabel(value) : value;
      return { field: name, text: CHIP_PREFIX[name] + shown };
    });
  }

  function shareHref(turn) {
    var params = new URLSearchParams();
    params.append("q", turn.question);
    FILTER_FIELDS.forEach(function (name) { if (turn.filters && turn.filters[name]) params.append(name, turn.filters[name]); });
    (turn.context || []).forEach(function (earlier) { params.append("h", earlier); });
    return "/?" + params.toString();
  }

  // A letter link that lets the letter page link back to this turn ("terug").
  function withBack(href, back) {
    var cut = href.indexOf("#");
    var path = cut < 0 ? href : href.slice(0, cut);
    var fragment = cut < 0 ? "" : href.slice(cut);
    return path + (path.indexOf("?") < 0 ? "?" : "&") + new URLSearchParams({ terug: back }).toString() + fragment;
  }

  // --- rendering --------------------------------------------------------------------------

  function citationFor(turn, index, n) {
    var byPosition = turn.citations[index];
    if (byPosition && byPosition.n === n) return byPosition;
    return turn.citations.filter(function (c) { return c.n === n; })[0] || null;
  }

  function answerNodes(turn, back) {
    if (turn.error && !turn.answer) return [el("span", { class: "turn-error" }, turn.error)];
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
        ? el("a", { class: "cite", href: withBack(citation.href, back), "data-citation": index,
                    "aria-label": "Bron " + citation.n + ": " + (citation.title || citation.letter_id) }, match[0])
        : document.createTextNode(match[0]));
      last = match.index + match[0].length;
      index += 1;
    }
    nodes.push(document.createTextNode(turn.answer.slice(last)));
    // A generated sentence still being written: shown as it comes, marked unchecked, replaced once checked.
    if (turn.draft && !turn.done) nodes.push(el("span", { class: "draft", title: "Wordt gecontroleerd tegen de bron" }, (turn.answer ? " " : "") + turn.draft));
    return nodes;
  }

  function kindBadge(source) {
    return source.type_label ? el("span", { class: "kind kind-" + (source.type || "onbekend") }, source.type_label) : null;
  }

  // The sender, with its role (issue 15's register) when the sender does not say it already: "S.M. Beckerman (Kamerlid)".
  function meta(source) {
    var role = source.role && (source.sender || "").toLowerCase().indexOf(source.role.toLowerCase()) < 0 ? " (" + source.role + ")" : "";
    return [source.date_label, source.sender ? source.sender + role : null,
      source.section ? "§ " + source.section : null, "p. " + source.page].filter(Boolean).join(" · ");
  }

  function links(source, href) {
    return el("p", { class: "card-links" },
      el("a", { href: href }, "Lees in de brief"),
      source.url ? " · " : null,
      source.url ? el("a", { href: source.url, rel: "noopener noreferrer", target: "_blank" }, "Officiële publicatie",
        el("span", { class: "visually-hidden" }, " (opent in een nieuw venster)")) : null);
  }

  // Every quote of a cited passage, each linking to its own place in the letter.
  function sourceCard(source, back) {
    var first = source.citations[0];
    var href = withBack(first.href, back);
    var quotes = source.citations.map(function (c, i) {
      var many = source.citations.length > 1;
      return el("blockquote", null, c.quote, many ? " " : null,
        many ? el("a", { class: "quote-link", href: withBack(c.href, back) }, "citaat " + (i + 1) + " in de brief") : null);
    });
    return list("li", { class: "card", id: null }, [
      el("p", { class: "card-title" }, el("span", { class: "badge", "aria-hidden": "true" }, source.n),
        el("a", { href: href }, el("span", { class: "visually-hidden" }, "Bron " + source.n + ": "), first.title || first.letter_id)),
      el("p", { class: "meta" }, kindBadge(first), first.type_label ? " " : null, meta(first))].concat(quotes, [links(first, href)]));
  }

  function relatedCard(passage, back) {
    var text = passage.text.replace(/\s+/g, " ").trim();
    var href = withBack(passage.href, back);
    return el("li", { class: "card" },
      el("p", { class: "card-title" }, el("a", { href: href }, passage.title || passage.letter_id)),
      el("p", { class: "meta" }, kindBadge(passage), passage.type_label ? " " : null, meta(passage)),
      el("blockquote", null, text.length > 300 ? text.slice(0, 300) + "…" : text),
      links(passage, href));
  }

  function sources(turn) {
    var byNumber = {};
    var ordered = [];
    turn.citations.forEach(function (c) {
      if (!byNumber[c.n]) ordered.push(byNumber[c.n] = { n: c.n, citations: [] });
      if (!byNumber[c.n].citations.some(function (known) { return known.quote === c.quote; })) byNumber[c.n].citations.push(c);
    });
    return ordered.sort(function (a, b) { return a.n - b.n; });
  }

  function sourceNodes(turn, back) {
    var nodes = [];
    if (turn.notice && turn.done) nodes.push(el("p", { class: "notice" }, turn.notice));
    var kind = kindNode(turn);
    if (kind) nodes.push(kind);
    var note = confidenceNode(turn);
    if (note) nodes.push(note);
    var cited = sources(turn);
    if (cited.length) {
      nodes.push(el("h3", { class: "sources-title" }, "Bronnen"));
      nodes.push(list("ol", { class: "cards" }, cited.map(function (s) { return sourceCard(s, back); })));
    } else if (turn.abstained && turn.close && turn.close.length) {
      nodes.push(el("p", { class: "hint" }, "Deze passages komen het dichtst in de buurt, maar beantwoorden de vraag niet:"));
      nodes.push(list("ol", { class: "cards related" }, turn.close.map(function (p) { return relatedCard(p, back); })));
    }
    if (turn.done && turn.abstained && chips(turn.filters).length) {
      nodes.push(el("p", { class: "retry" }, el("button", { type: "button", class: "link-button", "data-retry": "" }, "Vraag het zonder filters")));
    }
    if (turn.done && !turn.error) nodes.push(actions(turn));
    return nodes;
  }

  // Which kind of answer this is, once a chat model is configured: generated and checked, or verbatim quotes.
  function kindNode(turn) {
    if (turn.error || !turn.done || !turn.mode) return null;
    var g = turn.generation;
    var text = turn.mode === "generative"
      ? "Geschreven door het taalmodel" + (g && g.model ? " (" + g.model + ")" : "") + (g ? "; " + g.kept + " van " + g.total + " zinnen gecontroleerd in de bron en behouden." : ".")
      : "Letterlijke zinnen uit de brieven.";
    return el("p", { class: "answer-kind answer-kind-" + turn.mode }, text);
  }

  function confidenceNode(turn) {
    if (turn.stopped) return el("p", { class: "decline-reason" }, "Gestopt: dit antwoord is niet compleet.");
    if (turn.error || !turn.done) return null;
    if (turn.abstained) return turn.reason ? el("p", { class: "decline-reason" }, turn.reason) : null;
    if (!turn.label) return null;
    return el("p", { class: "confidence confidence-" + turn.label },
      "Zekerheid: " + turn.label + " (" + Math.round(turn.confidence * 100) + "%)");
  }

  function actions(turn) {
    return el("p", { class: "turn-actions" },
      el("a", { class: "share", href: shareHref(turn) }, "Link naar deze vraag"),
      el("button", { type: "button", class: "link-button", "data-copy": "text" }, "Kopieer antwoord met bronnen"),
      el("button", { type: "button", class: "link-button", "data-copy": "markdown" }, "Kopieer als Markdown"));
  }

  // --- feedback: thumbs up/down and an optional comment, stored by POST /api/feedback (qa feedback list) ------

  // Drawn, not the emoji: without an emoji font (headless Chromium on Debian, many Linux desktops) those are empty
  // boxes (issue 29). The button's name is its hidden text; the drawing is hidden from screen readers.
  var THUMB = "M7 10v11H3V10h4zm0 0l4-8c1.7 0 3 1.3 3 3v4h5.5c1.2 0 2.1 1.1 1.9 2.3l-1.3 7.5c-.2 1-1 1.7-2 1.7H7";

  function thumb(down) {
    var SVG = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(SVG, "svg");
    var path = document.createElementNS(SVG, "path");
    [["viewBox", "0 0 24 24"], ["width", "18"], ["height", "18"], ["fill", "none"], ["stroke", "currentColor"], ["stroke-width", "2"],
     ["stroke-linecap", "round"], ["stroke-linejoin", "round"], ["aria-hidden", "true"], ["focusable", "false"], ["class", "icon"]]
      .forEach(function (pair) { svg.setAttribute(pair[0], pair[1]); });
    path.setAttribute("d", THUMB);
    if (down) path.setAttribute("transform", "rotate(180 12 12)");
    svg.appendChild(path);
    return svg;
  }

  function feedbackButton(value, label) {
    return el("button", { type: "button", class: "feedback-button", value: value, title: label },
      thumb(value === "down"), el("span", { class: "visually-hidden" }, label));
  }

  function feedbackNode(turn) {
    if (turn.feedback) return el("p", { class: "feedback-done", role: "status" }, "Bedankt voor uw feedback.");
    var comment = el("input", { type: "text", class: "feedback-comment", maxlength: 2000, "aria-label": "Toelichting (optioneel)",
                                placeholder: "Toelichting (optioneel)" });
    var note = el("span", { class: "feedback-error", "aria-live": "polite" });  // not role=alert: the page has one alert box
    var box = el("div", { class: "feedback", role: "group", "aria-label": "Feedback op dit antwoord" }, el("span", null, "Nuttig?"),
      feedbackButton("up", "Nuttig"), feedbackButton("down", "Niet nuttig"), comment, note);
    box.addEventListener("click", async function (event) {
      var button = event.target.closest ? event.target.closest("button") : null;
      if (!button) return;
      var body = { rating: button.value, question: turn.question, answer: turn.answer, comment: comment.value.trim() || null,
        abstained: Boolean(turn.abstained), citations: turn.citations.map(function (c) {
          return { n: c.n, letter_id: c.letter_id, passage_id: c.passage_id, quote: c.quote };
        }) };
      try {
        var response = await fetch("/api/feedback", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
        if (!response.ok) throw new Error(response.status === 429 ? "Even geduld: te veel verzoeken." : "De feedback kon niet worden opgeslagen.");
        turn.feedback = button.value;
        save();
        box.replaceWith(feedbackNode(turn));
      } catch (error) {
        note.textContent = error instanceof TypeError ? "De server is niet bereikbaar." : error.message;
      }
    });
    return box;
  }

  function renderTurn(turn) {
    var number = conversation.children.length + 1;
    var text = el("p", { class: "answer-text" });
    var sourcesBox = el("div", { class: "sources" });
    var answer = el("div", { class: "answer" }, el("span", { class: "visually-hidden" }, "Antwoord: "), text, sourcesBox);
    var filterChips = chips(turn.filters);
    var item = el("li", { class: "turn", id: "beurt-" + number },
      el("div", { class: "question" }, el("span", { class: "visually-hidden" }, "Vraag: "), el("p", null, turn.question)),
      filterChips.length ? list("ul", { class: "chips turn-filters", "aria-label": "Filters bij deze vraag" },
        filterChips.map(function (chip) { return el("li", { class: "chip" }, chip.text); })) : null,
      answer);
    var view = { item: item, answer: answer, text: text, sources: sourcesBox, back: "/#beurt-" + number };
    item.turn = turn;
    update(view, turn);
    conversation.appendChild(item);
    return view;
  }

  function update(view, turn) {
    view.answer.classList.toggle("abstained", Boolean(turn.abstained) && !turn.error);
    view.answer.classList.toggle("failed", Boolean(turn.error));
    view.answer.setAttribute("aria-busy", turn.done ? "false" : "true");
    view.text.replaceChildren.apply(view.text, answerNodes(turn, view.back));
    view.sources.replaceChildren.apply(view.sources, sourceNodes(turn, view.back));
    if (turn.done && !turn.error && !turn.stopped && !view.feedback) view.answer.appendChild(view.feedback = feedbackNode(turn));
  }

  // --- copying an answer with its sources ---------------------------------------------------

  function absolute(href) { return new URL(href, location.href).href; }

  function plainText(turn) {
    var lines = ["Vraag: " + turn.question, "", turn.answer, ""];
    var cited = sources(turn);
    if (cited.length) lines.push("Bronnen:");
    cited.forEach(function (s) {
      var c = s.citations[0];
      lines.push("[" + s.n + "] " + (c.title || c.letter_id) + " (" + [c.type_label, meta(c)].filter(Boolean).join(", ") + ")");
      s.citations.forEach(function (q) { lines.push("    „" + q.quote.replace(/\s+/g, " ") + "”"); });
      lines.push("    " + absolute(c.href) + (c.url ? "\n    Officiële publicatie: " + c.url : ""));
    });
    if (turn.reason) lines.push(turn.reason);
    lines.push("", "Link naar deze vraag: " + absolute(shareHref(turn)));
    return lines.join("\n");
  }

  function markdown(turn) {
    var escape = function (text) { return text.replace(/([\\`*_[\]<>])/g, "\\$1"); };
    var body = escape(turn.answer).replace(/\\\[(\d+)\\\]/g, "[^$1]");
    var lines = ["**Vraag:** " + escape(turn.question), "", body, ""];
    sources(turn).forEach(function (s) {
      var c = s.citations[0];
      var quotes = s.citations.map(function (q) { return "„" + escape(q.quote.replace(/\s+/g, " ")) + "”"; }).join(" … ");
      lines.push("[^" + s.n + "]: [" + escape(c.title || c.letter_id) + "](" + absolute(c.href) + "), " +
        [c.type_label, meta(c)].filter(Boolean).join(", ") + ": " + quotes + (c.url ? " ([officiële publicatie](" + c.url + "))" : ""));
    });
    if (turn.reason) lines.push(escape(turn.reason));
    lines.push("", "[Link naar deze vraag](" + absolute(shareHref(turn)) + ")");
    return lines.join("\n");
  }

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (ignored) { // no clipboard API (an insecure origin) or no permission: the old way
      var box = el("textarea", { class: "visually-hidden", readonly: "" });
      box.value = text;
      document.body.appendChild(box);
      box.select();
      var done = document.execCommand && document.execCommand("copy");
      box.remove();
      if (!done) throw new Error("Kopiëren lukte niet in deze browser.");
    }
  }

  // After a decline within filters: the same question again, without them.
  conversation.addEventListener("click", function (event) {
    var retry = event.target.closest("[data-retry]");
    if (!retry || busy) return;
    FILTER_FIELDS.forEach(function (name) { form.elements[name].value = ""; });
    showChips();
    ask(retry.closest(".turn").turn.question);
  });

  conversation.addEventListener("click", function (event) {
    var target = event.target.closest("[data-copy]");
    if (!target) return;
    var turn = target.closest(".turn").turn;
    var markdownWanted = target.getAttribute("data-copy") === "markdown";
    copy(markdownWanted ? markdown(turn) : plainText(turn)).then(function () {
      statusLine.textContent = markdownWanted ? "Antwoord met bronnen gekopieerd als Markdown." : "Antwoord met bronnen gekopieerd.";
    }, function (error) { showError(error.message); });
  });

  // --- a preview of each [n]: on hover, on keyboard focus, and on the first tap ---------------

  var previewFor = null;
  var touched = null; // the link a finger went down on, and whether its preview was open then

  function showPreview(link) {
    var turn = link.closest(".turn").turn;
    var citation = turn && turn.citations[Number(link.getAttribute("data-citation"))];
    if (!citation) return;
    preview.replaceChildren(
      el("p", { class: "preview-title" }, citation.title || citation.letter_id),
      el("p", { class: "meta" }, kindBadge(citation), citation.type_label ? " " : null, meta(citation)),
      el("blockquote", null, citation.quote),
      el("p", { class: "hint" }, "Enter of klik opent de brief bij dit citaat."));
    preview.hidden = false;
    var box = link.getBoundingClientRect();
    var width = Math.min(preview.offsetWidth, document.documentElement.clientWidth - 16);
    preview.style.left = Math.max(8, Math.min(box.left + window.scrollX, window.scrollX + document.documentElement.clientWidth - width - 8)) + "px";
    preview.style.top = (box.bottom + window.scrollY + 6) + "px";
    link.setAttribute("aria-describedby", "cite-preview");
    previewFor = link;
  }

  function hidePreview() {
    if (previewFor) previewFor.removeAttribute("aria-describedby");
    preview.hidden = true;
    previewFor = null;
  }

  if (preview) {
    conversation.addEventListener("pointerover", function (event) { // a mouse hovering; a touch is handled on click
      var link = event.pointerType !== "touch" && event.target.closest("a.cite");
      if (link && link !== previewFor) showPreview(link);
    });
    conversation.addEventListener("pointerout", function (event) {
      if (event.pointerType !== "touch" && previewFor && event.target.closest("a.cite") === previewFor && !previewFor.contains(event.relatedTarget)) hidePreview();
    });
    conversation.addEventListener("focusin", function (event) { if (event.target.matches("a.cite")) showPreview(event.target); });
    conversation.addEventListener("focusout", function (event) { if (event.target === previewFor) hidePreview(); });
    // A tap focuses the link (which shows the preview): whether it showed before this tap decides.
    conversation.addEventListener("pointerdown", function (event) {
      var link = event.target.closest("a.cite");
      touched = event.pointerType === "touch" && link ? { link: link, shown: link === previewFor } : null;
    });
    conversation.addEventListener("click", function (event) {
      var link = event.target.closest("a.cite");
      if (link && touched && touched.link === link && !touched.shown) { event.preventDefault(); showPreview(link); } // the second tap opens it
    });
    document.addEventListener("keydown", function (event) { if (event.key === "Escape" && previewFor) hidePreview(); });
  }

  // --- state ------------------------------------------------------------------------------

  function save() {
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(turns.filter(function (t) { return t.done; })));
      sessionStorage.setItem(FILTERS_KEY, JSON.stringify(readFilters()));
    } catch (ignored) { /* private mode: the conversation just is not kept */ }
  }

  function stored(key, fallback) {
    try { return JSON.parse(sessionStorage.getItem(key) || "null") || fallback; } catch (ignored) { return fallback; }
  }

  // A page the server answered (a share link /?q=…) starts the conversation afresh; otherwise the stored one.
  function restore() {
    var rendered = parseJSON(conversation.getAttribute("data-turns"), []);
    if (Array.isArray(rendered) && rendered.length) {
      turns = rendered;
      history.replaceState(null, "", "/" + location.hash); // a reload keeps the conversation, not the link
    } else {
      var kept = stored(STORAGE_KEY, []);
      turns = Array.isArray(kept) ? kept.filter(function (t) { return t && typeof t.question === "string" && Array.isArray(t.citations); }) : [];
      var filters = stored(FILTERS_KEY, {});
      var given = FILTER_FIELDS.some(function (name) { return form.elements[name].value; }); // by the server: keep those
      if (!given) FILTER_FIELDS.forEach(function (name) { if (typeof filters[name] === "string") form.elements[name].value = filters[name]; });
    }
    conversation.replaceChildren();
    turns.forEach(renderTurn);
    examples.hidden = turns.length > 0;
    showChips();
    save();
    var target = location.hash && document.getElementById(location.hash.slice(1));
    if (target) target.scrollIntoView({ block: "start" });
  }

  function answered() { return turns.filter(function (t) { return t.done && !t.error && !t.stopped; }); }

  function history_() {
    return answered().slice(-HISTORY_TURNS).map(function (t) { return { question: t.question, answer: t.answer }; });
  }

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  function setBusy(controller, message) {
    busy = controller;
    button.disabled = Boolean(controller);
    button.textContent = controller ? "Bezig…" : "Vraag";
    stopButton.hidden = !controller;
    statusLine.textContent = message || "";
  }

  function readFilters() {
    var filters = {};
    FILTER_FIELDS.forEach(function (name) {
      var value = form.elements[name].value.trim();
      if (value) filters[name] = value;
    });
    return filters;
  }

  // --- filters as chips -------------------------------------------------------------------

  function showChips() {
    var active = chips(readFilters());
    chipList.replaceChildren.apply(chipList, active.map(function (chip) {
      return el("li", { class: "chip", "data-field": chip.field }, chip.text,
        el("button", { type: "button", class: "chip-remove", "data-field": chip.field, "aria-label": "Filter " + chip.text + " verwijderen" }, "×"));
    }));
    chipList.hidden = active.length === 0;
    filterCount.textContent = active.length ? " (" + active.length + " actief)" : "";
  }

  chipList.addEventListener("click", function (event) {
    var remove = event.target.closest(".chip-remove");
    if (!remove) return;
    form.elements[remove.getAttribute("data-field")].value = "";
    showChips();
    save();
    var next = chipList.querySelector(".chip-remove");
    (next || question).focus();
  });
  FILTER_FIELDS.forEach(function (name) {
    form.elements[name].addEventListener("change", function () { showChips(); save(); });
  });

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
    hidePreview();
    text = text.trim();
    if (!text) { showError(MESSAGES.question_empty || "Typ eerst een vraag."); question.focus(); return; }
    var filters = readFilters();
    form.querySelector("details.filters").open = false; // the chips show them; the answer gets the room
    var previous = answered().slice(-1)[0];
    var turn = { question: text, answer: "", abstained: false, citations: [], passages: [], close: [], filters: filters,
                 context: [], done: false };
    var request = { question: text, k: 5, filters: filters, history: history_() };
    if (modeChoice) request.mode = modeChoice.value;
    var body = JSON.stringify(request);
    turns.push(turn);
    examples.hidden = true;
    var view = renderTurn(turn);
    view.item.scrollIntoView({ block: "start" }); // the top of the new answer, above the pinned question box
    question.value = "";
    var controller = new AbortController();
    setBusy(controller, "Bezig met zoeken in de brieven…");
    try {
      var response = await fetch("/api/ask/stream", {
        method: "POST", headers: { "Content-Type": "application/json", Accept: "text/event-stream" }, body: body,
        signal: controller.signal,
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
          // a follow-up read with the earlier questions: its share link carries them (h=…)
          if (previous && data.query && data.query !== text) turn.context = (previous.context || []).concat([previous.question]);
        } else if (event === "delta") {
          turn.answer += data.text;
        } else if (event === "token") { // the chat model's text as it comes, not yet checked
          turn.draft = (turn.draft || "") + data.text;
        } else if (event === "sentence") { // one sentence checked: kept (with its citations), marked, or removed
          turn.draft = "";
          if (data.text) turn.answer += (turn.answer ? " " : "") + data.text;
          turn.citations = turn.citations.concat(data.citations || []);
        } else if (event === "done") {
          if (data.mode) { // generative requests end with the whole answer: possibly the extractive fallback
            turn.mode = data.mode; turn.notice = data.notice || null; turn.generation = data.generation || null;
            turn.citations = data.citations || []; turn.passages = data.passages || [];
            turn.confidence = data.confidence || 0; turn.label = data.confidence_label || null;
            turn.reason = data.decline_reason || null; turn.close = data.close_passages || [];
          } else if (modeChoice) {
            turn.mode = "extractive"; // asked for verbatim quotes while a chat model was on offer: say which kind this is
          }
          turn.answer = data.answer; turn.abstained = data.abstained; turn.done = true; turn.draft = "";
        } else if (event === "error") {
          throw new Error(data.detail || "Er ging iets mis op de server.");
        }
        update(view, turn);
      });
      if (!turn.done) throw new Error("De verbinding werd verbroken voordat het antwoord compleet was.");
      showKamervragen(view, text, filters);
      followButton(view, text, filters);
      var count = sources(turn).length;
      setBusy(null, turn.abstained ? "Geen antwoord gevonden in de brieven."
        : "Antwoord ontvangen, met " + count + (count === 1 ? " bron." : " bronnen."));
    } catch (error) {
      if (error instanceof Rejected) { // nothing was asked: take the turn back, keep the question
        turns.pop();
        view.item.remove();
        examples.hidden = turns.length > 0;
        question.value = text;
        setBusy(null, "");
        showError(error.message);
        question.focus();
        return;
      }
      turn.done = true;
      question.value = text; // nothing lost: ask again with one key
      if (controller.signal.aborted) {
        turn.stopped = true;
        if (!turn.answer) turn.error = "Gestopt voordat er een antwoord was.";
        setBusy(null, "Gestopt.");
      } else {
        turn.error = error instanceof TypeError ? "De server is niet bereikbaar. Controleer de verbinding en probeer het opnieuw." : error.message;
        setBusy(null, "");
        showError(turn.error);
      }
      update(view, turn);
    }
    save();
    question.focus({ preventScroll: true });
  }

  stopButton.addEventListener("click", function () { if (busy) busy.abort(); });

  // "Volg deze vraag": save the question (POST /api/watches); new letters that answer it come in its Atom feed.
  function followButton(view, text, filters) {
    var box = el("p", { class: "follow" });
    var button = el("button", { type: "button", class: "button secondary follow-button" }, "Volg deze vraag");
    box.appendChild(button);
    button.addEventListener("click", async function () {
      button.disabled = true;
      try {
        var response = await fetch("/api/watches", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ question: text, filters: filters }) });
        if (!response.ok) {
          throw new Error(response.status === 503 ? "Volgen kan nu niet: de server kan op dit moment geen vragen bewaren. Probeer het later opnieuw."
            : "Volgen lukte niet. Probeer het opnieuw.");
        }
        var watch = await response.json();
        box.replaceChildren("U volgt deze vraag: beantwoordt een nieuwe brief haar, dan staat die in ",
          el("a", { href: watch.feed_url, type: "application/atom+xml" }, "de feed"), " en op ",
          el("a", { href: watch.page_url }, "de pagina van deze vraag"), ". Bewaar die link: wie hem heeft, kan meelezen.");
      } catch (error) {
        button.disabled = false;
        var shown = box.querySelector(".turn-error") || box.appendChild(el("span", { class: "turn-error" }));
        shown.textContent = " " + (error instanceof TypeError ? "De server is niet bereikbaar. Probeer het opnieuw." : error.message);
      }
    });
    view.answer.appendChild(box);
  }

  // "Eerder gestelde Kamervragen": the good matches of GET /api/kamervragen?panel=true, beside the answer.
  async function showKamervragen(view, text, filters) {
    var params = new URLSearchParams(Object.assign({ q: text, panel: "true" }, filters));
    params.delete("type");
    var panel = el("aside", { class: "kamervragen-panel", "aria-label": "Eerder gestelde Kamervragen", hidden: true });
    view.answer.appendChild(panel); // its place, before what follows the answer
    try {
      var response = await fetch("/api/kamervragen?" + params.toString(), { headers: { Accept: "application/json" } });
      var pairs = response.ok ? (await response.json()).pairs : [];
      if (!pairs.length) return;
      panel.replaceChildren(el("h3", null, "Eerder gestelde Kamervragen"),
        el.apply(null, ["ol", { class: "kv-list" }].concat(pairs.map(function (pair) {
          return el("li", { class: "kv card" },
            el("p", { class: "card-title" }, el("a", { class: "kv-open", href: pair.href }, pair.label + ": " + (pair.title || pair.letter_id))),
            el("p", { class: "meta" }, [pair.askers.length ? "Gesteld door " + pair.askers.join(", ") : null,
              "beantwoord " + pair.date_label + (pair.minister ? " door " + pair.minister : "")].filter(Boolean).join(" · ")),
            el("blockquote", { class: "kv-question" }, el("span", { class: "kv-label" }, pair.label), " " + pair.question),
            el("blockquote", { class: "kv-answer" }, el("span", { class: "kv-label" }, pair.answer_label), " " + pair.answer));
        }))));
      panel.hidden = false;
    } catch (ignored) { /* the panel is an extra: the answer stands without it */ }
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

  Array.prototype.forEach.call(document.querySelectorAll(".js-only"), function (node) { node.hidden = false; });
  // With a chat model on the server (/api/health says so), a choice between a generated and a verbatim answer.
  var modeChoice = null;
  function offerModes(health) {
    if (!health || !health.llm || modeChoice) return;
    modeChoice = el("select", { id: "answer-mode", name: "mode" },
      el("option", { value: "generative" }, "Geschreven door het taalmodel, gecontroleerd in de bron"),
      el("option", { value: "extractive" }, "Letterlijke zinnen uit de brieven"));
    if (!health.llm.reachable) modeChoice.value = "extractive";
    var label = el("label", { class: "answer-mode", for: "answer-mode" }, "Soort antwoord ", modeChoice);
    button.parentNode.insertBefore(label, button);
  }
  fetch("/api/health").then(function (r) { return r.ok ? r.json() : null; }).then(offerModes, function () { /* extractive only */ });

  restore();
})();
