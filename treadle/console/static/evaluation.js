// An evaluation's charts, and a BINARY evaluation's cut-off slider. The
// threshold table comes with the page (counts of actual 1s and 0s scoring
// at or above each kept score); a move of the slider is one binary search
// in typed arrays, so the figures follow within the frame.
"use strict";

const COLOURS = {positive: "#0b63c5", negative: "#d9730d", cut: "#b42318", grid: "#e3e6ec", line: "#5c6577"};

function chartSize(element, ratio = 0.6) {
  const width = Math.max(240, element.clientWidth);
  return {width, height: Math.round(Math.min(360, Math.max(200, width * ratio)))};
}

// A chart that follows its box's width.
function chart(element, options, data) {
  const plot = new uPlot({...chartSize(element), ...options}, data, element);
  new ResizeObserver(() => plot.setSize(chartSize(element))).observe(element);
  return plot;
}

function axis(label) {
  return {label, stroke: COLOURS.line, grid: {stroke: COLOURS.grid, width: 1}, ticks: {stroke: COLOURS.grid}};
}

function bars(label, colour, fill) {
  return {label, stroke: colour, fill, width: 1, paths: uPlot.paths.bars({size: [1, Infinity], align: 0}),
          points: {show: false}};
}

function verticalLine(plot, value, colour) {
  const ctx = plot.ctx;
  const x = Math.round(plot.valToPos(value, "x", true));
  ctx.save();
  ctx.strokeStyle = colour;
  ctx.lineWidth = 2 * uPlot.pxRatio;
  ctx.setLineDash([6 * uPlot.pxRatio, 4 * uPlot.pxRatio]);
  ctx.beginPath();
  ctx.moveTo(x, plot.bbox.top);
  ctx.lineTo(x, plot.bbox.top + plot.bbox.height);
  ctx.stroke();
  ctx.restore();
}

// -- BINARY -------------------------------------------------------------------
function binary(view) {
  const table = view.table;
  const scores = Float64Array.from(table.scores);
  const atOrAbove1 = Float64Array.from(table.tp);
  const atOrAbove0 = Float64Array.from(table.fp);
  const n = scores.length;
  const positives = table.positives, negatives = table.negatives;

  // The first kept score >= the cut-off: a score at the cut-off is a 1.
  const firstAtOrAbove = (cut) => {
    let low = 0, high = n;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (scores[middle] < cut) low = middle + 1; else high = middle;
    }
    return low;
  };
  const countsAt = (cut) => {
    const i = firstAtOrAbove(cut);
    const tp = i < n ? atOrAbove1[i] : 0, fp = i < n ? atOrAbove0[i] : 0;
    return {tp, fp, fn: positives - tp, tn: negatives - fp};
  };

  const rate = (a, b) => (b ? (a / b).toFixed(4) : "—");
  const count = (v) => (Number.isInteger(v) ? v.toLocaleString("en-US")
    : v.toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2}));
  const cells = {};
  for (const name of ["accuracy", "precision", "recall", "fpr", "tp", "tn", "fp", "fn"]) {
    cells[name] = document.querySelector(`[data-figure="${name}"]`);
  }
  const slider = document.getElementById("cutoff-slider");
  const number = document.getElementById("cutoff");
  let cut = Number(number.value);
  let current = countsAt(cut);

  const show = () => {
    const c = current;
    cells.accuracy.textContent = rate(c.tp + c.tn, c.tp + c.tn + c.fp + c.fn);
    cells.precision.textContent = rate(c.tp, c.tp + c.fp);
    cells.recall.textContent = rate(c.tp, c.tp + c.fn);
    cells.fpr.textContent = rate(c.fp, c.fp + c.tn);
    for (const name of ["tp", "tn", "fp", "fn"]) {
      cells[name].textContent = count(c[name]);
      cells[name].dataset.value = String(c[name]);
    }
  };

  const charts = [];
  let frame = 0;
  const moveTo = (value, from) => {
    if (!Number.isFinite(value)) return;
    cut = Math.min(1, Math.max(0, value));
    current = countsAt(cut);
    show();
    if (from !== number) number.value = String(cut);
    if (from !== slider) slider.value = String(cut);
    // Charts redraw at most once a frame however fast the slider moves.
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; charts.forEach((c) => c.redraw(false, false)); });
  };
  slider.addEventListener("input", () => moveTo(Math.round(Number(slider.value) * 1000) / 1000, slider));
  number.addEventListener("input", () => moveTo(Number(number.value), number));
  if (new URLSearchParams(window.location.search).get("saved")) document.getElementById("saved").hidden = false;

  const histograms = view.histograms;
  if (histograms) {
    const edges = histograms.edges;
    const middles = edges.slice(0, -1).map((edge, i) => (edge + edges[i + 1]) / 2);
    charts.push(chart(document.getElementById("histogram-chart"), {
      scales: {x: {time: false, range: [0, 1]}, y: {range: (u, low, high) => [0, Math.max(1, high) * 1.05]}},
      axes: [axis("Score"), axis("Records")],
      series: [{label: "Score"}, bars("Actual 1", COLOURS.positive, "rgba(11, 99, 197, 0.45)"),
               bars("Actual 0", COLOURS.negative, "rgba(217, 115, 13, 0.40)")],
      legend: {live: false},
      hooks: {draw: [(plot) => verticalLine(plot, cut, COLOURS.cut)]},
    }, [middles, histograms.positives, histograms.negatives]));
  }

  const roc = view.roc;
  if (roc) {
    charts.push(chart(document.getElementById("roc-chart"), {
      scales: {x: {time: false, range: [0, 1]}, y: {range: [0, 1]}},
      axes: [axis("False positive rate"), axis("True positive rate")],
      series: [{label: "FPR"}, {label: "ROC", stroke: COLOURS.positive, width: 2, points: {show: false}},
               {label: "Baseline", stroke: COLOURS.line, width: 1, dash: [4, 4], points: {show: false}}],
      legend: {live: false},
      hooks: {draw: [(plot) => {
        // Where the cut-off stands on the curve.
        const x = plot.valToPos(negatives ? current.fp / negatives : 0, "x", true);
        const y = plot.valToPos(positives ? current.tp / positives : 0, "y", true);
        const ctx = plot.ctx;
        ctx.save();
        ctx.fillStyle = COLOURS.cut;
        ctx.beginPath();
        ctx.arc(x, y, 5 * uPlot.pxRatio, 0, 2 * Math.PI);
        ctx.fill();
        ctx.restore();
      }]},
    }, [roc.fpr, roc.tpr, roc.fpr]));
  }
}

// -- REGRESSION -------------------------------------------------------------------
function regression(view) {
  const histogram = view.residuals;
  const width = histogram.bin_width;
  const middles = histogram.lower_edges.map((edge) => edge + width / 2);
  chart(document.getElementById("residual-chart"), {
    scales: {x: {time: false}, y: {range: (u, low, high) => [0, Math.max(1, high) * 1.05]}},
    axes: [axis("Residual (actual − predicted)"), axis("Records")],
    series: [{label: "Residual"}, bars("Records", COLOURS.positive, "rgba(11, 99, 197, 0.45)")],
    legend: {live: false},
    hooks: {draw: [(plot) => verticalLine(plot, 0, COLOURS.line)]},
  }, [middles, histogram.weights]);
}

document.addEventListener("DOMContentLoaded", () => {
  const data = document.getElementById("evaluation-data");
  if (!data) return;
  const view = JSON.parse(data.textContent);
  if (view.model_type === "BINARY") binary(view);
  else if (view.model_type === "REGRESSION") regression(view);
});
