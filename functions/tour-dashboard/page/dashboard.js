// The staff analytics dashboard: reads its parameters from the address bar, fetches the tour figures (the metrics and
// the trends, in one summary call) with the API key (x-api-key header only), and fills the figures, the charts and the
// attention table.
//
// Hooks the browser check (infra/local/dashboard_check.py) relies on; keep both sides equal:
// - every figure element carries data-metric="<JSON field>" and data-value="<JSON.stringify of the value>", or ""
//   when the value is null;
// - every chart is a <canvas data-chart="<name>">; once Chart.js has drawn it, data-points is the number of the
//   chart's values that are not zero (null counts as zero). See chartPoints below for each chart;
// - every attention row is <tr data-booking-id="...">;
// - document.body.dataset.state: "loading", then "ready", "error", "needs-key" or "needs-property".
"use strict";

(function () {
  const KEY_STORAGE = "tour-dashboard.api-key";
  // Charts that never draw (a hidden or zero-sized canvas) must end in an error, not in a page stuck on loading.
  const CHART_DRAW_TIMEOUT_MS = 10000;
  const MISSING = "—";

  const TOUR_TYPES = { in_person: "In person", virtual: "Virtual", self_guided: "Self-guided" };
  const LEAD_TIMES = { same_day: "Same day", one_to_two_days: "1-2 days ahead", three_days_or_more: "3+ days ahead" };
  const REMINDERS = { reminded: "Reminder reached them", not_reminded: "No reminder reached them" };
  const REASONS = {
    sync_pending: "Not in ResMan yet (retrying)",
    sync_failed: "ResMan never took it: enter it by hand",
    unconfirmed: "Within a day and not confirmed by staff",
    message_failed: "A message failed for good",
    resman_disagrees: "ResMan says otherwise (completed or no-show): say which holds",
  };
  const SYNC_STATUSES = { pending: "Waiting", synced: "In ResMan", failed: "Failed", rejected: "Refused by ResMan" };
  const FUNNEL_STEPS = [
    ["booked", "Booked"],
    ["confirmed", "Confirmed"],
    ["completed", "Completed"],
    ["applied", "Applied"],
    ["leased", "Leased"],
  ];
  const COLORS = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2"];

  const byId = (id) => document.getElementById(id);
  const charts = [];

  function setState(state) {
    document.body.dataset.state = state;
  }

  function showStatus(text) {
    const status = byId("status");
    status.textContent = text;
    status.hidden = !text;
  }

  function showError(text) {
    showStatus("");
    const error = byId("error");
    error.textContent = text;
    error.hidden = false;
    setState("error");
  }

  // --- Parameters -------------------------------------------------------------------------------------------------

  // A date in the browser's local calendar as YYYY-MM-DD (toISOString would give the UTC date).
  function localIsoDate(date) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  }

  function daysFromToday(days) {
    const date = new Date();
    date.setDate(date.getDate() + days);
    return localIsoDate(date);
  }

  function readParams() {
    const query = new URLSearchParams(window.location.search);
    return {
      propertyId: (query.get("property_id") || "").trim(),
      from: query.get("from") || daysFromToday(-29),
      to: query.get("to") || daysFromToday(7),
    };
  }

  function apiBase() {
    const meta = document.querySelector('meta[name="api-base"]');
    const base = meta ? meta.content.trim() : "";
    if (base.includes("{{")) {
      throw new Error("This page was served without the address of the metrics service (API_BASE).");
    }
    return base.replace(/\/+$/, "");
  }

  // The key arrives once in the address bar's fragment (#key=...), which browsers never send to a server. It moves
  // to sessionStorage and out of the address bar at once, so it is not bookmarked, shared or kept in history.
  function takeKeyFromFragment() {
    const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    const key = fragment.get("key");
    if (key === null) return;
    fragment.delete("key");
    const rest = fragment.toString();
    const address = window.location.pathname + window.location.search + (rest ? `#${rest}` : "");
    window.history.replaceState(window.history.state, "", address);
    if (key) saveKey(key);
  }

  // sessionStorage keeps the key for this tab only. A browser that refuses it (storage switched off) still gets a
  // working page: the key then lives in this page view alone.
  let keyInMemory = null;

  function saveKey(key) {
    keyInMemory = key;
    try {
      window.sessionStorage.setItem(KEY_STORAGE, key);
    } catch (_) {
      // Kept in memory only.
    }
  }

  function savedKey() {
    try {
      return window.sessionStorage.getItem(KEY_STORAGE) || keyInMemory;
    } catch (_) {
      return keyInMemory;
    }
  }

  function forgetKey() {
    keyInMemory = null;
    try {
      window.sessionStorage.removeItem(KEY_STORAGE);
    } catch (_) {
      // Nothing was stored.
    }
  }

  function askForKey(problem) {
    showStatus("");
    const keyProblem = byId("key-problem");
    keyProblem.textContent = problem || "";
    keyProblem.hidden = !problem;
    byId("report").hidden = true;
    byId("key-form").hidden = false;
    setState("needs-key");
    byId("api-key").focus();
  }

  // --- Fetching ---------------------------------------------------------------------------------------------------

  class KeyRefused extends Error {}

  async function getJson(path, params, key) {
    const url = `${apiBase()}${path}?${new URLSearchParams(params)}`;
    let response;
    try {
      response = await fetch(url, {
        headers: { "x-api-key": key, accept: "application/json" },
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      throw new Error(`Could not reach the metrics service (${error.message}).`);
    }
    if (response.status === 401 || response.status === 403) {
      throw new KeyRefused("That API key was not accepted. Check it and try again.");
    }
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      // An answer that is not JSON: the status alone says what went wrong.
    }
    if (!response.ok) {
      const message = body && body.error && body.error.message;
      throw new Error(message ? `${message} (HTTP ${response.status})` : `The metrics service answered HTTP ${response.status}.`);
    }
    if (body === null || typeof body !== "object") {
      throw new Error("The metrics service answered with something that is not JSON.");
    }
    return body;
  }

  // The metrics and the trends of the period in one call, read together by the service so they always agree.
  async function getSummary(query, key) {
    const summary = await getJson("/api/resman/tours/summary", query, key);
    const isObject = (value) => value !== null && typeof value === "object";
    if (!isObject(summary.metrics) || !isObject(summary.trends)) {
      throw new Error("The metrics service answered without the figures (no metrics or trends in its summary).");
    }
    return summary;
  }

  // --- Figures ----------------------------------------------------------------------------------------------------

  function formatCount(value) {
    return value.toLocaleString();
  }

  function formatRate(value) {
    const percent = value * 100;
    const digits = Number.isInteger(Math.round(percent * 10) / 10) ? 0 : 1;
    return `${percent.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits })}%`;
  }

  // Seconds the way a person says them: "0.4 s", "12 s", "4 min 10 s", "2 h 5 min", "3 days 4 h".
  function formatDuration(seconds) {
    if (seconds < 10) return `${seconds.toLocaleString(undefined, { maximumFractionDigits: 1 })} s`;
    if (seconds < 60) return `${Math.round(seconds)} s`;
    const whole = Math.round(seconds);
    const two = (big, bigUnit, small, smallUnit) => (small ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`);
    if (whole < 3600) return two(Math.floor(whole / 60), "min", whole % 60, "s");
    const minutes = Math.round(whole / 60);
    if (minutes < 24 * 60) return two(Math.floor(minutes / 60), "h", minutes % 60, "min");
    const hours = Math.round(minutes / 60);
    const days = Math.floor(hours / 24);
    return two(days, days === 1 ? "day" : "days", hours % 24, "h");
  }

  function formatScore(value) {
    return `${value.toLocaleString(undefined, { maximumFractionDigits: 1, minimumFractionDigits: 1 })} / 5`;
  }

  const FORMATS = { count: formatCount, rate: formatRate, duration: formatDuration, score: formatScore };

  // The brief's figures are always numbers (0 with nothing to count); the figure beside each says whether there was
  // anything to count, and the page shows a dash when there was not.
  const COUNTED_BY = { average_booking_time: "booking_time_p50", conversion_rate: "tour_to_lease_rate" };

  // A figure's field, which may sit in an object of the answer ("texts.sent").
  function fieldOf(all, field) {
    return field.split(".").reduce((found, key) => (found == null ? undefined : found[key]), all);
  }

  function fillFigures(metrics, trends) {
    const all = { ...trends, ...metrics };
    for (const element of document.querySelectorAll("[data-metric]")) {
      const field = element.dataset.metric;
      const value = fieldOf(all, field);
      const isNumber = typeof value === "number";
      const basis = COUNTED_BY[field];
      const known = isNumber && (basis === undefined || typeof all[basis] === "number");
      element.dataset.value = isNumber ? JSON.stringify(value) : "";
      element.textContent = known ? FORMATS[element.dataset.format](value) : MISSING;
      element.title = known ? "" : "No data yet";
      element.classList.toggle("no-data", !known);
    }
    markGoals(all);
  }

  // A figure with a goal (data-goal="<the goal's field>") says whether it is above it (the brief's "> 90%"):
  // data-meets "true" or "false" ("" with nothing to count), a colour, and the words beside it.
  function markGoals(all) {
    for (const element of document.querySelectorAll("[data-goal]")) {
      const field = element.dataset.metric;
      const value = all[field];
      const goal = all[element.dataset.goal];
      const known = typeof value === "number" && typeof goal === "number";
      const meets = known && value > goal;
      element.dataset.meets = known ? String(meets) : "";
      element.classList.toggle("meets-goal", known && meets);
      element.classList.toggle("below-goal", known && !meets);
      for (const verdict of document.querySelectorAll(`[data-goal-verdict="${field}"]`)) {
        verdict.textContent = !known ? "(no answers yet)" : meets ? "(met)" : "(not met yet)";
      }
    }
  }

  // --- Charts -----------------------------------------------------------------------------------------------------

  function shortDate(isoDate) {
    // Dates and local times from the API are the property's calendar: format them as they are, in UTC, so the
    // browser's own zone never shifts them.
    return new Date(`${isoDate}T00:00:00Z`).toLocaleDateString(undefined, { day: "numeric", month: "short", timeZone: "UTC" });
  }

  function hourLabel(hour) {
    return new Date(Date.UTC(2000, 0, 1, hour)).toLocaleTimeString(undefined, { hour: "numeric", timeZone: "UTC" });
  }

  function words(code) {
    const text = String(code).replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  // What each chart draws: its labels and values. data-points counts the values that are not zero.
  // - daily_bookings: one bar per date of the range, its count;
  // - tour_type_distribution: one slice per tour type in the answer, its count;
  // - funnel: booked, confirmed, completed, applied, leased;
  // - show_rate_by_hour: one bar per hour that had tours (tours > 0), its rate in percent; an hour whose tours all
  //   were no-shows draws a zero. So data-points = the hours whose rate is a non-zero number.
  // - show_rate_by_lead_time: one bar per lead (same day, 1-2 days, 3+ days), its rate in percent (none when the
  //   lead had no tours), counted the same way;
  // - show_rate_by_reminder: one bar per segment (a reminder reached the prospect, or none did), the same way. An
  //   older API without the field draws an empty chart, not a broken page.
  function chartData(trends) {
    // The known tour types in their usual order, then any type this page does not know yet.
    const known = Object.keys(TOUR_TYPES);
    const rank = (type) => (known.includes(type) ? known.indexOf(type) : known.length);
    const types = Object.keys(trends.tour_type_distribution).sort((a, b) => rank(a) - rank(b));
    const hours = (trends.show_rate_by_hour || []).filter((entry) => entry.tours > 0);
    return {
      daily_bookings: {
        labels: trends.daily_bookings.map((day) => shortDate(day.date)),
        values: trends.daily_bookings.map((day) => day.count),
      },
      tour_type_distribution: {
        labels: types.map((type) => TOUR_TYPES[type] || words(type)),
        values: types.map((type) => trends.tour_type_distribution[type]),
      },
      funnel: {
        labels: FUNNEL_STEPS.map(([, label]) => label),
        values: FUNNEL_STEPS.map(([step]) => trends.funnel[step]),
      },
      show_rate_by_hour: {
        labels: hours.map((entry) => hourLabel(entry.hour)),
        values: hours.map(ratePercent),
        details: hours.map(showsOfTours),
      },
      show_rate_by_lead_time: segmentChart(trends.show_rate_by_lead_time, LEAD_TIMES),
      show_rate_by_reminder: segmentChart(trends.show_rate_by_reminder, REMINDERS),
    };
  }

  // A show rate in percent, to a tenth; null (no tours) stays null and draws nothing.
  function ratePercent(entry) {
    return entry.rate === null ? null : Math.round(entry.rate * 1000) / 10;
  }

  function showsOfTours(entry) {
    return `${entry.shows} of ${entry.tours} tours`;
  }

  // A show-rate-by-segment answer ({segment, tours, shows, rate} each) as a chart: one bar per segment, named for a
  // leasing manager (a segment this page does not know yet in plain words). A missing answer draws no bar.
  function segmentChart(entries, names) {
    const segments = entries || [];
    return {
      labels: segments.map((entry) => names[entry.segment] || words(entry.segment)),
      values: segments.map(ratePercent),
      details: segments.map(showsOfTours),
    };
  }

  function chartConfig(name, data) {
    const dataset = { data: data.values, backgroundColor: COLORS[0], borderRadius: 3 };
    const integerTicks = { precision: 0 };
    switch (name) {
      case "daily_bookings":
        return {
          type: "bar",
          data: { labels: data.labels, datasets: [{ ...dataset, label: "Tours booked" }] },
          options: {
            plugins: { legend: { display: false } },
            scales: { x: { ticks: { autoSkip: true, maxRotation: 0 } }, y: { beginAtZero: true, ticks: integerTicks } },
          },
        };
      case "tour_type_distribution":
        return {
          type: "doughnut",
          data: { labels: data.labels, datasets: [{ data: data.values, label: "Bookings", backgroundColor: COLORS }] },
          options: { plugins: { legend: { position: "right" } } },
        };
      case "funnel":
        return {
          type: "bar",
          data: { labels: data.labels, datasets: [{ ...dataset, label: "Prospects", backgroundColor: COLORS.slice(0, 5) }] },
          options: {
            indexAxis: "y",
            plugins: { legend: { display: false } },
            scales: { x: { beginAtZero: true, ticks: integerTicks } },
          },
        };
      case "show_rate_by_hour":
      case "show_rate_by_lead_time":
      case "show_rate_by_reminder":
        return {
          type: "bar",
          data: { labels: data.labels, datasets: [{ ...dataset, label: "Show rate", backgroundColor: COLORS[1] }] },
          options: {
            plugins: {
              legend: { display: false },
              tooltip: {
                callbacks: {
                  label: (item) => `${item.formattedValue}% showed up (${data.details[item.dataIndex]})`,
                },
              },
            },
            scales: { y: { min: 0, max: 100, ticks: { callback: (value) => `${value}%` } } },
          },
        };
      default:
        throw new Error(`no chart named ${name}`);
    }
  }

  // The values a chart really shows: zero and null draw nothing. data-points is this count.
  function nonZeroCount(values) {
    return values.filter((value) => value !== null && value !== 0).length;
  }

  // Resolves once Chart.js has drawn the chart, after setting data-points on its canvas.
  function drawChart(canvas, name, data) {
    return new Promise((resolve) => {
      const config = chartConfig(name, data);
      config.options = {
        ...config.options,
        animation: false, // Screenshots and the browser check see the finished chart at once.
        responsive: true,
        maintainAspectRatio: false,
      };
      config.plugins = [
        {
          id: "drawnHook",
          afterRender(chart) {
            const points = nonZeroCount(chart.data.datasets[0].data);
            chart.canvas.dataset.points = String(points);
            chart.canvas.parentElement.querySelector(".chart-empty").hidden = points > 0;
            resolve();
          },
        },
      ];
      charts.push(new window.Chart(canvas, config));
    });
  }

  function drawCharts(trends) {
    while (charts.length) charts.pop().destroy();
    const data = chartData(trends);
    const drawn = Array.from(document.querySelectorAll("canvas[data-chart]"), (canvas) =>
      drawChart(canvas, canvas.dataset.chart, data[canvas.dataset.chart]),
    );
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("The charts could not be drawn.")), CHART_DRAW_TIMEOUT_MS);
    });
    return Promise.race([Promise.all(drawn), timeout]).finally(() => clearTimeout(timer));
  }

  // --- Attention table --------------------------------------------------------------------------------------------

  function localStart(text) {
    // "2026-11-30T09:00" in the property's zone: shown as it is, never converted to the browser's zone.
    const date = new Date(`${text}Z`);
    if (Number.isNaN(date.getTime())) return text;
    return date.toLocaleString(undefined, {
      weekday: "short", day: "numeric", month: "short", hour: "numeric", minute: "2-digit", timeZone: "UTC",
    });
  }

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function fillAttention(metrics) {
    const rows = metrics.needs_attention || [];
    const body = document.querySelector("#attention tbody");
    body.replaceChildren();
    for (const tour of rows) {
      const row = body.insertRow();
      row.dataset.bookingId = tour.booking_id;
      cell(row, localStart(tour.local_start));
      cell(row, TOUR_TYPES[tour.tour_type] || words(tour.tour_type));
      cell(row, words(tour.status));
      cell(row, SYNC_STATUSES[tour.sync_status] || words(tour.sync_status));
      cell(row, (tour.reasons || []).map((reason) => REASONS[reason] || words(reason)).join("; "));
      cell(row, tour.booking_id, "id");
    }
    byId("attention-start").textContent = `Local start (${metrics.time_zone})`;
    document.querySelector(".table-wrap").hidden = rows.length === 0;
    byId("attention-empty").hidden = rows.length !== 0;
  }

  // --- Page -------------------------------------------------------------------------------------------------------

  function fillParamsForm(params) {
    byId("property-id").value = params.propertyId;
    byId("from").value = params.from;
    byId("to").value = params.to;
  }

  function longDate(isoDate) {
    return new Date(`${isoDate}T00:00:00Z`).toLocaleDateString(undefined, {
      day: "numeric", month: "short", year: "numeric", timeZone: "UTC",
    });
  }

  // The properties this key reaches (its companies'), offered in the property field. A page whose list cannot be read
  // still works: the field just offers nothing.
  async function fillPropertyPicker(key) {
    let properties = [];
    try {
      properties = (await getJson("/api/resman/tours/properties", {}, key)).properties || [];
    } catch (_) {
      return [];
    }
    byId("property-list").replaceChildren(
      ...properties.map((property) => {
        const option = document.createElement("option");
        option.value = property.property_id;
        option.label = property.name;
        return option;
      }),
    );
    return properties;
  }

  function describePeriod(metrics, properties) {
    const known = properties.find((property) => property.property_id === metrics.property_id);
    const name = known ? known.name : `Property ${metrics.property_id}`;
    byId("period").textContent =
      `${name} · ${longDate(metrics.from)} to ${longDate(metrics.to)} · times in ${metrics.time_zone}`;
  }

  async function load() {
    const params = readParams();
    fillParamsForm(params);
    const key = savedKey();
    if (!params.propertyId) {
      // A key that reaches one property opens it; with more, the field offers them.
      const properties = key ? await fillPropertyPicker(key) : [];
      if (properties.length === 1) {
        const query = new URLSearchParams(window.location.search);
        query.set("property_id", properties[0].property_id);
        window.history.replaceState(window.history.state, "", `${window.location.pathname}?${query}`);
        return load();
      }
      showStatus("Choose a property and the dates to see its tour figures.");
      setState("needs-property");
      return;
    }
    if (!key) {
      askForKey("");
      return;
    }
    byId("key-form").hidden = true;
    byId("error").hidden = true;
    showStatus("Loading…");
    setState("loading");
    try {
      if (typeof window.Chart !== "function") {
        throw new Error("The chart library did not load (dashboard/assets/chart.umd.min.js).");
      }
      const query = { property_id: params.propertyId, from: params.from, to: params.to };
      const [{ metrics, trends }, properties] = await Promise.all([
        getSummary(query, key),
        fillPropertyPicker(key),
      ]);
      describePeriod(metrics, properties);
      fillFigures(metrics, trends);
      fillAttention(metrics);
      // Shown before drawing: Chart.js sizes each chart from its box, which has no size while hidden.
      byId("report").hidden = false;
      await drawCharts(trends);
      showStatus("");
      setState("ready");
    } catch (error) {
      if (error instanceof KeyRefused) {
        forgetKey();
        askForKey(error.message);
      } else {
        byId("report").hidden = true;
        showError(error.message || String(error));
      }
    }
  }

  byId("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = byId("api-key").value.trim();
    if (!key) return;
    saveKey(key);
    byId("api-key").value = "";
    load();
  });

  takeKeyFromFragment();
  load();
})();
