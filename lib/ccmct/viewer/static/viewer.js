/* ccmct view: one slide page. OpenSeadragon shows the Deep Zoom tiles; ONE canvas over it draws the
 * overlays (window.CCMCT_SLIDE, level-0 px) for the current viewport only. docs/viewer.md explains the
 * colours and keys. window.ccmctViewer exposes the drawn counts and the viewport for tests and scripts. */
(function () {
  "use strict";
  var D = window.CCMCT_SLIDE;
  var C = D.colors;
  var R = D.radius_l0;
  var DENSE = 6000; // more marks than this in view: drawn as small squares
  var state = {
    stage: 0, fnIndex: -1, fpIndex: -1, focus: null, drawn: null, redraws: 0, tilesLoaded: false,
    layers: {tp: true, fp: true, fn: true, hotspots: true, zones: true}
  };
  D.classes.forEach(function (c) { state.layers["gt" + c.id] = true; });

  // Per stage: FP indices best score first, FN points walked top-to-bottom.
  D.stages.forEach(function (s) {
    s.fpIndex = [];
    for (var i = 0; i < s.tp.length; i++) { if (!s.tp[i]) { s.fpIndex.push(i); } }
    var fn = [];
    for (var j = 0; j < s.fn.length; j += 2) { fn.push([s.fn[j], s.fn[j + 1]]); }
    fn.sort(function (a, b) { return a[1] - b[1] || a[0] - b[0]; });
    s.fnPoints = fn;
    s.nTP = s.tp.length - s.fpIndex.length;
  });

  var viewer = OpenSeadragon({
    id: "osd",
    prefixUrl: "../static/openseadragon/images/",
    tileSources: {
      Image: {
        xmlns: "http://schemas.microsoft.com/deepzoom/2008", Url: D.tiles.url, Format: D.tiles.format,
        Overlap: String(D.tiles.overlap_px), TileSize: String(D.tiles.tile_px),
        Size: {Width: String(D.width), Height: String(D.height)}
      }
    },
    drawer: "canvas",
    showNavigator: true,
    navigatorPosition: "TOP_RIGHT",
    maxZoomPixelRatio: 4,
    visibilityRatio: 0.5,
    animationTime: 0.6,
    gestureSettingsMouse: {clickToZoom: false, dblClickToZoom: true}
  });

  var wrap = document.getElementById("wrap");
  var canvas = document.getElementById("overlay");
  var ctx = canvas.getContext("2d");
  var info = document.getElementById("info");

  function transform() {
    var vp = viewer.viewport;
    var a = vp.imageToViewerElementCoordinates(new OpenSeadragon.Point(0, 0));
    var b = vp.imageToViewerElementCoordinates(new OpenSeadragon.Point(D.width, 0));
    return {x0: a.x, y0: a.y, s: (b.x - a.x) / D.width};
  }

  function resize() {
    var dpr = window.devicePixelRatio || 1;
    var w = wrap.clientWidth, h = wrap.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
      canvas.style.width = w + "px";
      canvas.style.height = h + "px";
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return {w: w, h: h};
  }

  // Draw the points of a flat [x0, y0, x1, y1, ...] array that fall in view; returns how many.
  function drawPoints(flat, pick, t, view, style) {
    var margin = R * 2, n = 0, xs = [], ys = [];
    var minX = (-t.x0) / t.s - margin, maxX = (view.w - t.x0) / t.s + margin;
    var minY = (-t.y0) / t.s - margin, maxY = (view.h - t.y0) / t.s + margin;
    for (var i = 0; i < flat.length; i += 2) {
      if (pick && !pick(i / 2)) { continue; }
      var x = flat[i], y = flat[i + 1];
      if (x < minX || x > maxX || y < minY || y > maxY) { continue; }
      xs.push(t.x0 + x * t.s);
      ys.push(t.y0 + y * t.s);
      n++;
    }
    ctx.strokeStyle = style.color;
    ctx.fillStyle = style.color;
    if (n > DENSE) { denseDots(xs, ys, n, style.color); return n; }
    var r = Math.max(style.minPx, style.radiusL0 * t.s);
    ctx.lineWidth = style.width || 2;
    ctx.setLineDash(style.dash || []);
    ctx.beginPath();
    for (var m = 0; m < n; m++) {
      ctx.moveTo(xs[m] + r, ys[m]);
      ctx.arc(xs[m], ys[m], r, 0, 2 * Math.PI);
    }
    if (style.fill) { ctx.fill(); } else { ctx.stroke(); }
    ctx.setLineDash([]);
    return n;
  }

  // Many marks in view: 2 x 2 device-pixel dots written into one pixel buffer (no path per mark),
  // composited once at the end of the redraw.
  var dense = null, denseCanvas = document.createElement("canvas");
  function denseDots(xs, ys, n, color) {
    var dpr = window.devicePixelRatio || 1, w = canvas.width, h = canvas.height;
    if (dense === null) { dense = new ImageData(w, h); }
    var r = parseInt(color.slice(1, 3), 16), g = parseInt(color.slice(3, 5), 16), b = parseInt(color.slice(5, 7), 16);
    var px = dense.data;
    for (var k = 0; k < n; k++) {
      var x0 = Math.round(xs[k] * dpr) - 1, y0 = Math.round(ys[k] * dpr) - 1;
      for (var dy = 0; dy < 2; dy++) {
        var y = y0 + dy;
        if (y < 0 || y >= h) { continue; }
        for (var dx = 0; dx < 2; dx++) {
          var x = x0 + dx;
          if (x < 0 || x >= w) { continue; }
          var o = (y * w + x) * 4;
          px[o] = r; px[o + 1] = g; px[o + 2] = b; px[o + 3] = 255;
        }
      }
    }
  }
  function flushDense(view) {
    if (dense === null) { return; }
    denseCanvas.width = dense.width;
    denseCanvas.height = dense.height;
    denseCanvas.getContext("2d").putImageData(dense, 0, 0);
    ctx.drawImage(denseCanvas, 0, 0, view.w, view.h);
    dense = null;
  }

  function drawBox(box, color, label, dash, t, view, bottom) {
    var x = t.x0 + box.x * t.s, y = t.y0 + box.y * t.s;
    ctx.lineWidth = 3;
    ctx.setLineDash(dash);
    ctx.strokeStyle = color;
    ctx.strokeRect(x, y, box.w * t.s, box.h * t.s);
    ctx.setLineDash([]);
    ctx.font = "bold 13px sans-serif";
    var width = ctx.measureText(label).width + 8;
    // label above the box (true) or below it (predicted), kept on screen
    var lx = Math.max(x, 2);
    var ly = bottom ? Math.min(y + box.h * t.s, view.h - 20) : Math.max(y - 18, 2);
    ctx.fillStyle = "rgba(0,0,0,0.65)";
    ctx.fillRect(lx, ly, width, 18);
    ctx.fillStyle = color;
    ctx.fillText(label, lx + 4, ly + 13);
  }

  function drawZones(t) {
    var n = 0;
    D.zones.forEach(function (z) {
      var p = z.points;
      if (p.length < 6) { return; }
      ctx.beginPath();
      ctx.moveTo(t.x0 + p[0] * t.s, t.y0 + p[1] * t.s);
      for (var i = 2; i < p.length; i += 2) { ctx.lineTo(t.x0 + p[i] * t.s, t.y0 + p[i + 1] * t.s); }
      ctx.closePath();
      ctx.lineWidth = z.tumour ? 3 : 2;
      ctx.setLineDash(z.tumour ? [] : [8, 6]);
      ctx.strokeStyle = z.tumour ? C.zone : C.zone_other;
      ctx.stroke();
      n++;
    });
    ctx.setLineDash([]);
    return n;
  }

  function redraw() {
    var started = performance.now();
    var view = resize();
    ctx.clearRect(0, 0, view.w, view.h);
    if (!viewer.world.getItemCount()) { return; }
    var t = transform();
    var s = D.stages[state.stage];
    var drawn = {tp: 0, fp: 0, fn: 0, gt: {}, hotspots: 0, zones: 0};
    if (state.layers.zones) { drawn.zones = drawZones(t); }
    D.classes.forEach(function (c) {
      drawn.gt[c.id] = state.layers["gt" + c.id] ?
        drawPoints(D.gt[String(c.id)], null, t, view, {color: C["gt" + c.id], radiusL0: 5, minPx: 2.5, fill: true}) : 0;
    });
    if (s) {
      if (state.layers.fn) {
        drawn.fn = drawPoints(s.fn, null, t, view, {color: C.fn, radiusL0: R * 1.15, minPx: 7, width: 3, dash: [5, 3]});
      }
      if (state.layers.tp) {
        drawn.tp = drawPoints(s.det, function (i) { return s.tp[i] === 1; }, t, view, {color: C.tp, radiusL0: R, minPx: 5, width: 2.5});
      }
      if (state.layers.fp) {
        drawn.fp = drawPoints(s.det, function (i) { return s.tp[i] === 0; }, t, view, {color: C.fp, radiusL0: R, minPx: 5, width: 2.5});
      }
      flushDense(view);
      if (state.layers.hotspots) {
        drawBox(D.hotspot_true, C.hotspot_true, "true 10-HPF hotspot: MC " + D.hotspot_true.count, [], t, view, false);
        drawBox(s.hotspot, C.hotspot_pred, "predicted hotspot: MC " + s.hotspot.count, [10, 6], t, view, true);
        drawn.hotspots = 2;
      }
    }
    if (state.focus) {
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#ffffff";
      ctx.beginPath();
      ctx.arc(t.x0 + state.focus[0] * t.s, t.y0 + state.focus[1] * t.s, Math.max(12, R * 1.6 * t.s), 0, 2 * Math.PI);
      ctx.stroke();
    }
    flushDense(view);
    state.drawn = drawn;
    state.redraws++;
    state.redrawMs = performance.now() - started;
    updateScaleBar(t);
    document.getElementById("counts").textContent = s ?
      "in view: TP " + drawn.tp + ", FP " + drawn.fp + ", FN " + drawn.fn +
      " | slide: TP " + s.counts.tp + ", FP " + s.counts.fp + ", FN " + s.counts.fn +
      (s.f1 === null ? "" : ", F1 " + s.f1.toFixed(3)) + (s.skipped ? " (empty result list: not counted)" : "") : "";
  }

  var scale = {um: 0, px: 0, label: ""};
  function updateScaleBar(t) {
    var umPerPx = D.mpp / t.s;
    var best = null;
    for (var e = -2; e <= 6; e++) {
      [1, 2, 5].forEach(function (m) {
        var um = m * Math.pow(10, e);
        if (um / umPerPx <= 150 && (best === null || um > best)) { best = um; }
      });
    }
    if (best === null) { best = 0.01; }
    var px = best / umPerPx;
    var label = best >= 1000 ? (best / 1000) + " mm" : (Math.round(best * 100) / 100) + " µm";
    scale = {um: best, px: px, label: label, um_per_px: umPerPx};
    document.getElementById("scalebar-bar").style.width = px + "px";
    document.getElementById("scalebar-label").textContent = label;
  }

  function goTo(x, y, text) {
    var vp = viewer.viewport;
    vp.zoomTo(vp.imageToViewportZoom(1), null, true);
    vp.panTo(vp.imageToViewportCoordinates(new OpenSeadragon.Point(x, y)), true);
    state.focus = [x, y];
    info.textContent = text;
    redraw();
  }

  function step(kind, delta) {
    var s = D.stages[state.stage];
    if (!s) { return null; }
    if (kind === "fn") {
      if (!s.fnPoints.length) { info.textContent = "no missed mitoses (FN) on this slide"; return null; }
      state.fnIndex = (state.fnIndex + delta + s.fnPoints.length) % s.fnPoints.length;
      var p = s.fnPoints[state.fnIndex];
      goTo(p[0], p[1], "FN " + (state.fnIndex + 1) + "/" + s.fnPoints.length + ": missed mitosis at (" + p[0] + ", " + p[1] + ")");
      return {x: p[0], y: p[1]};
    }
    if (!s.fpIndex.length) { info.textContent = "no false positives (FP) on this slide"; return null; }
    state.fpIndex = (state.fpIndex + delta + s.fpIndex.length) % s.fpIndex.length;
    var i = s.fpIndex[state.fpIndex];
    var x = s.det[2 * i], y = s.det[2 * i + 1];
    goTo(x, y, "FP " + (state.fpIndex + 1) + "/" + s.fpIndex.length + ": score " + s.score[i].toFixed(3) + " at (" + x + ", " + y + ")");
    return {x: x, y: y, score: s.score[i]};
  }

  function setStage(i) {
    state.stage = Math.max(0, Math.min(D.stages.length - 1, i));
    state.fnIndex = -1;
    state.fpIndex = -1;
    state.focus = null;
    document.getElementById("stage").value = String(state.stage);
    redraw();
  }

  function setLayer(name, on) {
    state.layers[name] = !!on;
    var box = document.querySelector("input[data-layer='" + name + "']");
    if (box) { box.checked = !!on; }
    redraw();
  }

  document.getElementById("stage").addEventListener("change", function (ev) { setStage(parseInt(ev.target.value, 10)); });
  Array.prototype.forEach.call(document.querySelectorAll("input[data-layer]"), function (box) {
    box.addEventListener("change", function () { setLayer(box.getAttribute("data-layer"), box.checked); });
  });
  document.getElementById("next-fn").addEventListener("click", function () { step("fn", 1); });
  document.getElementById("prev-fn").addEventListener("click", function () { step("fn", -1); });
  document.getElementById("next-fp").addEventListener("click", function () { step("fp", 1); });
  document.getElementById("prev-fp").addEventListener("click", function () { step("fp", -1); });
  document.getElementById("home").addEventListener("click", function () { state.focus = null; viewer.viewport.goHome(); });
  window.addEventListener("keydown", function (ev) {
    var tag = (ev.target && ev.target.tagName) || "";
    if (tag === "INPUT" || tag === "SELECT" || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var key = ev.key.toLowerCase(), back = ev.shiftKey ? -1 : 1, done = true;
    if (key === "n") { step("fn", back); }
    else if (key === "p") { step("fp", back); }
    else if (key === "s") { setStage((state.stage + 1) % Math.max(1, D.stages.length)); }
    else if (key === "h") { state.focus = null; viewer.viewport.goHome(); }
    else { done = false; }
    if (done) { ev.preventDefault(); ev.stopPropagation(); }
  }, true);

  ["animation", "update-viewport", "resize", "open"].forEach(function (name) { viewer.addHandler(name, redraw); });
  viewer.addHandler("open", function () {
    var item = viewer.world.getItemAt(0);
    if (D.region) {
      var r = D.region;
      viewer.viewport.fitBounds(viewer.viewport.imageToViewportRectangle(r[0], r[1], r[2], r[3]), true);
    }
    item.addHandler("fully-loaded-change", function (ev) { state.tilesLoaded = ev.fullyLoaded; });
    state.open = true;
    redraw();
  });
  window.addEventListener("resize", redraw);

  window.ccmctViewer = {
    viewer: viewer,
    data: D,
    isOpen: function () { return !!state.open; },
    tilesLoaded: function () { return state.tilesLoaded; },
    /* What the last redraw drew (in view, enabled layers) and the stage's totals. */
    counts: function () {
      var s = D.stages[state.stage];
      return {
        stage: state.stage, label: s ? s.label : null, redraws: state.redraws,
        drawn: state.drawn,
        marks: s ? {tp: s.nTP, fp: s.fpIndex.length, fn: s.fnPoints.length} : null,
        evaluation: s ? s.counts : null, f1: s ? s.f1 : null,
        hotspot_true: D.hotspot_true.count, hotspot_pred: s ? s.hotspot.count : null
      };
    },
    /* Viewport in level-0 px: centre, visible rectangle, zoom as screen px per level-0 px. */
    viewport: function () {
      var vp = viewer.viewport;
      var c = vp.viewportToImageCoordinates(vp.getCenter(true));
      var b = vp.viewportToImageRectangle(vp.getBounds(true));
      return {center_l0: [c.x, c.y], bounds_l0: [b.x, b.y, b.width, b.height],
              zoom: vp.viewportToImageZoom(vp.getZoom(true)), um_per_px: scale.um_per_px};
    },
    scaleBar: function () { return {um: scale.um, px: scale.px, label: scale.label}; },
    /* Redraw the overlay now; returns the milliseconds it took (the overlay alone, not the tiles). */
    redraw: function () { redraw(); return state.redrawMs; },
    /* Show level-0 px (x, y) at `zoom` screen px per level-0 px (no animation). */
    zoomTo: function (zoom, x, y) {
      var vp = viewer.viewport;
      vp.zoomTo(vp.imageToViewportZoom(zoom), null, true);
      if (x !== undefined) { vp.panTo(vp.imageToViewportCoordinates(new OpenSeadragon.Point(x, y)), true); }
      redraw();
      return this.viewport();
    },
    nextFN: function (delta) { return step("fn", delta || 1); },
    nextFP: function (delta) { return step("fp", delta || 1); },
    setStage: setStage,
    setLayer: setLayer,
    home: function () { state.focus = null; viewer.viewport.goHome(true); redraw(); }
  };
}());
