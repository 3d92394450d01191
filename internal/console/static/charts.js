// simwatch console: draws the usage charts. A page puts a chart's data in
// <script type="application/json" id="..."> and an element
// <div class="chart" data-source="that id">; this draws it with uPlot
// (vendored, loaded before this file). No inline script: the CSP allows
// only files from the console itself.
"use strict";
(function () {
  if (typeof uPlot === "undefined") { return; }

  function mb(v) {
    if (v == null) { return "—"; }
    var a = Math.abs(v);
    if (a >= 1024 * 1024) { return (v / 1024 / 1024).toFixed(1) + " TB"; }
    if (a >= 1024) { return (v / 1024).toFixed(1) + " GB"; }
    return v.toFixed(1) + " MB";
  }

  function opts(width) {
    var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined;
    return {
      width: width,
      height: 260,
      // Days are named by midnight UTC: show them as such in any zone.
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      scales: { x: { time: true }, mb: { auto: true }, day: { auto: true } },
      axes: [
        {},
        { scale: "mb", values: function (u, vals) { return vals.map(mb); }, size: 70 },
        { scale: "day", side: 1, grid: { show: false }, values: function (u, vals) { return vals.map(mb); }, size: 70 },
      ],
      series: [
        { value: "{YYYY}-{MM}-{DD}" },
        { label: "Daily", scale: "day", stroke: "#8a9bd1", fill: "rgba(138,155,209,0.35)", paths: bars, points: { show: false }, value: function (u, v) { return mb(v); } },
        { label: "This cycle", scale: "mb", stroke: "#2457c5", width: 2, value: function (u, v) { return mb(v); } },
        { label: "Allowance", scale: "mb", stroke: "#b3261e", width: 1.5, points: { show: false }, value: function (u, v) { return mb(v); } },
        { label: "Forecast", scale: "mb", stroke: "#b26a00", width: 2, dash: [6, 4], spanGaps: true, points: { show: false }, value: function (u, v) { return mb(v); } },
      ],
    };
  }

  function draw(el) {
    var src = document.getElementById(el.dataset.source);
    if (!src) { return; }
    var d;
    try { d = JSON.parse(src.textContent); } catch (e) { el.textContent = "The chart's data could not be read."; return; }
    if (!d || !d.x || d.x.length === 0) { el.textContent = "No usage to chart."; return; }
    var data = [d.x, d.daily, d.cumulative, d.allowance, d.forecast];
    var width = function () { return Math.max(280, el.clientWidth || 600); };
    var plot = new uPlot(opts(width()), data, el);
    var pending = false;
    window.addEventListener("resize", function () {
      if (pending) { return; }
      pending = true;
      window.requestAnimationFrame(function () {
        pending = false;
        plot.setSize({ width: width(), height: 260 });
      });
    });
  }

  var charts = document.querySelectorAll(".chart[data-source]");
  for (var i = 0; i < charts.length; i++) { draw(charts[i]); }
})();
