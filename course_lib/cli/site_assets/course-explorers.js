/* Precomputed explorers of the course's website: no kernel, no network.
 *
 * Every explorer is a <div class="course-explorer"> holding a <script type="application/json">
 * with its specification (written by course_lib/site.py). The images were decoded by the
 * course's models when the site was built; moving a slider only shows another one:
 *
 * - kind "traversal": images tiled in sprites (one square frame per slider value); a slider per
 *   latent sets that latent to a grid value, the others stay at the posterior mean mu(x) of the
 *   chosen start image; every renderer (a decoder, a generator) shows its frame side by side.
 * - kind "stages": one image per saved training stage (the traversal grid at that stage); the
 *   slider swaps the image and the per-latent labels.
 *
 * Each explorer writes what it shows into data-* attributes of its root (data-state), which the
 * browser test reads.
 */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") {
        node.textContent = attrs[key];
      } else {
        node.setAttribute(key, attrs[key]);
      }
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function fmt(value) {
    var text = Number(value).toFixed(2);
    return value >= 0 ? "+" + text : text.replace("-", "\u2212");
  }

  function nearest(values, target) {
    var best = 0;
    values.forEach(function (v, i) {
      if (Math.abs(v - target) < Math.abs(values[best] - target)) { best = i; }
    });
    return best;
  }

  /* A square viewport showing one frame of a sprite (rows x cols frames of `frame` pixels). */
  function Viewport(label, frame, scale) {
    this.size = frame * scale;
    this.img = el("img", {alt: label, draggable: "false"});
    this.box = el("div", {"class": "cx-viewport"}, [this.img]);
    this.box.style.width = this.size + "px";
    this.box.style.height = this.size + "px";
    this.root = el("figure", {"class": "cx-view"}, [this.box, el("figcaption", {text: label})]);
  }
  Viewport.prototype.show = function (sprite, row, col) {
    if (this.img.getAttribute("src") !== sprite.src) { this.img.setAttribute("src", sprite.src); }
    this.img.style.width = (sprite.cols * this.size) + "px";
    this.img.style.height = (sprite.rows * this.size) + "px";
    this.img.style.transform = "translate(" + (-col * this.size) + "px, " + (-row * this.size) + "px)";
    this.box.setAttribute("data-frame", sprite.src + "#" + row + "," + col);
  };

  function traversal(root, spec) {
    var D = spec.dims, V = spec.values.length, name = spec.dimName || "z";
    var start = 0, active = null;  /* active: [latent, value index] or null (every latent at mu) */
    var inputView = new Viewport("input x", spec.frame, spec.scale);
    var views = spec.renderers.map(function (r) { return new Viewport(r.name, spec.frame, spec.scale); });
    var sliders = [], readouts = [], rows = [];
    var status = el("p", {"class": "cx-status"});
    var startButtons = spec.starts.map(function (s, i) {
      var b = el("button", {type: "button", "class": "cx-start", text: s.label});
      b.addEventListener("click", function () { start = i; active = null; update(); });
      return b;
    });
    var reset = el("button", {type: "button", "class": "cx-reset", text: "back to \u03bc(x)"});
    reset.addEventListener("click", function () { active = null; update(); });
    for (var j = 0; j < D; j++) {
      (function (j) {
        var slider = el("input", {type: "range", min: "0", max: String(V - 1), step: "1",
                                  "aria-label": name + j, "data-latent": String(j)});
        var readout = el("output", {"class": "cx-readout"});
        slider.addEventListener("input", function () { active = [j, Number(slider.value)]; update(); });
        var row = el("div", {"class": "cx-slider"}, [el("label", {text: name + j}), slider, readout]);
        sliders.push(slider); readouts.push(readout); rows.push(row);
      })(j);
    }

    function update() {
      var s = spec.starts[start];
      startButtons.forEach(function (b, i) { b.classList.toggle("cx-selected", i === start); });
      inputView.show(spec.base, 0, start);
      var dead = [];
      for (var j = 0; j < D; j++) {
        var mine = active !== null && active[0] === j;
        var index = mine ? active[1] : nearest(spec.values, s.mu[j]);
        sliders[j].value = String(index);
        readouts[j].textContent = mine ? fmt(spec.values[index]) : "\u03bc " + fmt(s.mu[j]);
        var off = s.sigma && s.sigma[j] > spec.deadSigma;
        rows[j].classList.toggle("cx-dead", !!off);
        rows[j].classList.toggle("cx-active", mine);
        rows[j].title = off ? "\u03c3 = " + s.sigma[j].toFixed(2) + " > " + spec.deadSigma +
          ": posterior \u2248 prior for this image, probably unused" : "";
        if (off) { dead.push(name + j); }
      }
      views.forEach(function (v, r) {
        if (active === null) {
          v.show(spec.base, r + 1, start);
        } else {
          v.show(spec.renderers[r], start * D + active[0], active[1]);
        }
      });
      var what = active === null ? "every latent at \u03bc(x): the reconstruction" :
        name + active[0] + " = " + fmt(spec.values[active[1]]) + ", the others at \u03bc(x)";
      status.textContent = what + (dead.length ? "; greyed: " + dead.join(", ") +
        " (\u03c3 > " + spec.deadSigma + ", switched off for this image)" : "");
      root.setAttribute("data-state", start + ":" + (active === null ? "mu" : active.join(",")));
    }

    var controls = el("div", {"class": "cx-controls"},
      [el("div", {"class": "cx-starts"}, [el("span", {text: "start image: "})].concat(startButtons))]
        .concat(rows).concat([reset]));
    var pictures = el("div", {"class": "cx-pictures"}, [inputView.root].concat(views.map(function (v) { return v.root; })));
    root.appendChild(el("div", {"class": "cx-body"}, [controls, el("div", {}, [pictures, status])]));
    update();
  }

  function stages(root, spec) {
    var n = spec.stages.length;
    var slider = el("input", {type: "range", min: "0", max: String(n - 1), step: "1", value: String(n - 1),
                              "aria-label": "training stage"});
    var label = el("span", {"class": "cx-stage-label"});
    var img = el("img", {alt: "traversal grid at the chosen stage", "class": "cx-grid", draggable: "false"});
    var labels = el("div", {"class": "cx-row-labels"});
    var body = el("div", {"class": "cx-stage-body"}, [labels, img]);
    var rowLabels = [];
    for (var j = 0; j < spec.dims; j++) {
      var l = el("div", {"class": "cx-row-label"});
      labels.appendChild(l);
      rowLabels.push(l);
    }
    function update() {
      var i = Number(slider.value), st = spec.stages[i];
      if (img.getAttribute("src") !== st.src) { img.setAttribute("src", st.src); }
      /* the grid shrinks to the room beside the labels (never grows); the labels follow its rows */
      var room = body.clientWidth - labels.offsetWidth - 8;
      var scale = room > 0 ? Math.min(1, room / st.width) : 1;
      img.style.width = (st.width * scale) + "px";
      img.style.height = (st.height * scale) + "px";
      labels.style.height = (st.height * scale) + "px";
      label.textContent = "stage " + (i + 1) + " of " + n + ": step " + st.step + st.text;
      rowLabels.forEach(function (l, j) {
        var kl = st.kl[j];
        l.style.top = ((spec.rowTop + j * spec.rowHeight) * scale) + "px";
        l.style.height = (spec.frame * scale) + "px";
        l.style.lineHeight = (spec.frame * scale) + "px";
        l.textContent = "z" + j + " " + kl.toFixed(2) + " nats";
        l.classList.toggle("cx-on", kl > spec.onNats);
      });
      root.setAttribute("data-state", String(i));
    }
    slider.addEventListener("input", update);
    window.addEventListener("resize", update);
    root.appendChild(el("div", {"class": "cx-stage-controls"}, [el("label", {text: "stage"}), slider, label]));
    root.appendChild(body);
    root.appendChild(el("p", {"class": "cx-status", text: spec.legend}));
    update();
  }

  function setup(root) {
    var data = root.querySelector("script[type='application/json']");
    if (!data || root.getAttribute("data-ready")) { return; }
    var spec = JSON.parse(data.textContent);
    if (spec.kind === "traversal") {
      traversal(root, spec);
    } else if (spec.kind === "stages") {
      stages(root, spec);
    } else {
      throw new Error("unknown explorer kind " + spec.kind);
    }
    root.setAttribute("data-ready", "1");
  }

  function setupAll() {
    Array.prototype.forEach.call(document.querySelectorAll(".course-explorer"), setup);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setupAll);
  } else {
    setupAll();
  }
})();
