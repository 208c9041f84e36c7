// Draws the overview's charts with the vendored Chart.js, from the JSON the page carries
// (<script type="application/json" id="chart-data">). The tables beside each chart hold the
// same numbers, for keyboards and screen readers.
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("chart-data");
    if (!holder || typeof Chart === "undefined") { return; }
    var data = JSON.parse(holder.textContent);
    var quiet = { animation: false, responsive: true, plugins: { legend: { display: false } } };
    function bars(id, series, horizontal) {
      var canvas = document.getElementById(id);
      if (!canvas || !series.labels.length) { return; }
      new Chart(canvas, {
        type: "bar",
        data: { labels: series.labels, datasets: [{ label: "cases", data: series.values, backgroundColor: "#0b5cad" }] },
        options: Object.assign({ indexAxis: horizontal ? "y" : "x" }, quiet)
      });
    }
    bars("chart-outcomes", data.outcomes, false);
    bars("chart-reasons", data.first_reasons, true);
    var trend = document.getElementById("chart-trend");
    if (trend && data.trend.labels.length) {
      new Chart(trend, {
        type: "line",
        data: { labels: data.trend.labels, datasets: [
          { label: "median business hours", data: data.trend.values, borderColor: "#0b5cad" }
        ] },
        options: { animation: false, responsive: true, plugins: { legend: { display: true } } }
      });
    }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
