// Data insights: draws the histograms and bar charts of a datasource's
// statistics with uPlot, from the JSON block #insights-data. Charts are
// drawn when they scroll into view, so a page with many attributes is
// ready at once. Values from the data reach the page only as text: uPlot
// draws axis labels on its canvas, and captions are set as textContent.
"use strict";

(() => {
  const ACCENT = "#0b63c5";
  const HEIGHT = 200;
  const numberFormat = new Intl.NumberFormat(undefined, {maximumSignificantDigits: 4});
  const countFormat = new Intl.NumberFormat();
  const short = (text, most) => (text.length > most ? text.slice(0, most - 1) + "…" : text);

  function bars(labels) {
    // Bars centred on 0..n-1; the x axis names them.
    return {
      x: labels.map((_, i) => i),
      scale: {time: false, range: () => [-0.5, labels.length - 0.5]},
      axis: {
        splits: () => labels.map((_, i) => i),
        values: (u, splits) => splits.map((i) => short(String(labels[i] ?? ""), 14)),
        rotate: labels.length > 4 ? -35 : 0,
        size: labels.length > 4 ? 70 : 40,
        gap: 4,
      },
      describe: (i) => String(labels[i] ?? ""),
      size: [0.7, 60],
      caption: "",
    };
  }

  function histogram(h) {
    const starts = h.counts.map((_, i) => h.start + (i + 0.5) * h.width);
    const end = h.start + h.counts.length * h.width;
    return {
      x: starts,
      scale: {time: false, range: () => [h.start, end]},
      axis: {values: (u, splits) => splits.map((v) => numberFormat.format(v)), size: 40},
      describe: (i) => `${numberFormat.format(h.start + i * h.width)} to ${numberFormat.format(h.start + (i + 1) * h.width)}`,
      size: [1, Infinity],
      caption: `${h.counts.length} bins of width ${numberFormat.format(h.width)}`,
    };
  }

  // The caption says what the bar under the pointer counts (no legend).
  function readout(caption, layout, counts) {
    return (u) => {
      const i = u.cursor.idx;
      caption.textContent = i == null ? layout.caption
        : `${layout.describe(i)}: ${countFormat.format(counts[i])} records`;
    };
  }

  function draw(element, layout, counts, caption) {
    element.replaceChildren();
    const width = Math.max(200, element.clientWidth);
    if (caption) caption.textContent = layout.caption;
    const options = {
      width, height: HEIGHT,
      legend: {show: false},
      cursor: {points: {show: false}, drag: {x: false, y: false}},
      hooks: caption ? {setCursor: [readout(caption, layout, counts)]} : {},
      scales: {x: layout.scale, y: {range: (u, min, max) => [0, Math.max(1, max) * 1.05]}},
      axes: [
        {stroke: "#5c6577", grid: {show: false}, ...layout.axis},
        {stroke: "#5c6577", values: (u, splits) => splits.map((v) => countFormat.format(v)),
         size: (u, values) => 14 + 7 * Math.max(3, ...(values || []).map((v) => v.length))},
      ],
      series: [
        {},
        {label: "Records", fill: ACCENT + "cc", stroke: ACCENT, width: 0, points: {show: false},
         paths: uPlot.paths.bars({size: layout.size, align: 0})},
      ],
    };
    const plot = new uPlot(options, [layout.x, counts], element);
    element.plot = plot;
    return plot;
  }

  function show(element, chart) {
    const caption = document.querySelector(`[data-caption-for="${element.dataset.chart}"]`);
    if (chart.kind === "histogram") {
      const select = document.querySelector(`[data-bins-for="${element.dataset.chart}"]`);
      const pick = () => {
        const levels = Object.keys(chart.histograms);
        const wanted = select && chart.histograms[select.value] ? select.value : levels[levels.length - 1];
        draw(element, histogram(chart.histograms[wanted]), chart.histograms[wanted].counts, caption);
      };
      if (select) select.addEventListener("change", pick);
      pick();
    } else {
      draw(element, bars(chart.labels), chart.counts, caption);
    }
  }

  function resize() {
    for (const element of document.querySelectorAll(".chart")) {
      if (element.plot) element.plot.setSize({width: Math.max(200, element.clientWidth), height: HEIGHT});
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const source = document.getElementById("insights-data");
    if (!source || typeof uPlot === "undefined") return;
    const charts = JSON.parse(source.textContent);
    const elements = document.querySelectorAll(".chart[data-chart]");
    const observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        observer.unobserve(entry.target);
        const chart = charts[entry.target.dataset.chart];
        if (chart) show(entry.target, chart);
      }
    }, {rootMargin: "300px 0px"});
    for (const element of elements) observer.observe(element);
    let pending = null;
    window.addEventListener("resize", () => {
      window.clearTimeout(pending);
      pending = window.setTimeout(resize, 150);
    });
  });
})();
