/* Kangaroo live pages (/dashboard/ and /tv/): one websocket, reconnecting with backoff.
 *
 * Every event has an id. The server's hello and each tick say up to which id ("complete")
 * it has sent the page every event; after a reconnect the page asks for everything after
 * the last such id ("resume") before going on live, and skips any id it has already shown,
 * so no arrival is missed or shown twice. Not after the highest id shown: events do not
 * arrive in id order, and one with a lower id may still have been on its way.
 *
 * The server sends a "tick" every hello.tick_seconds, after catching the page up from the
 * database on anything the live channel lost. A page that hears nothing for three ticks
 * takes its connection for dead and reconnects (then resumes).
 *
 * Close codes (the server's list is in kangaroo/consumers.py):
 *   4401 unauthenticated, 4410 revoked: the session or key no longer admits this page.
 *        The dashboard reloads once, so the server can send it to the sign-in page; the
 *        TV forgets its key and asks for one. Neither reconnects on its own.
 *   4403 refused: not allowed here; stop.
 *   anything else (a restart, a network cut, 4400): reconnect with backoff and resume.
 *
 * The TV greets: recognitions and reception's check-ins only, each person at most once per
 * the TV box's cool-down (hello.tv.cooldown_seconds), the newest large and the older ones smaller and fading; it
 * shows no figures. The dashboard shows arrivals and alerts as cards, naming the camera and
 * its direction; devices going offline or coming back go to the device panel, whose states
 * come from hello.devices (a state the server adds later shows up once it has a label).
 * The lagging boxes figure comes again in a "devices" message whenever it changes: a box
 * falls behind the gallery, or catches up, without an event to tell.
 */
(function () {
  "use strict";

  var body = document.body;
  var mode = body.dataset.mode; // "dashboard" or "tv"
  var labels = JSON.parse(document.getElementById("live-labels").textContent);
  var cards = document.getElementById("cards");
  var connection = document.getElementById("connection");
  var screens = document.getElementById("live-screens");
  screens = screens ? JSON.parse(screens.textContent) : {};
  var MAX_CARDS = mode === "tv" ? 6 : 12;
  var MAX_DEVICE_LOG = 8;
  var greeted = {}; // TV: subject id -> when (ms) they were last greeted

  var lastId = 0;
  var resumeAfter = Number(sessionStorage.getItem("kangaroo.resumeAfter") || 0);
  var shown = new Set();
  var arrived = new Set();
  var devices = {};
  var hello = null;
  var attempt = 0;
  var socket = null;
  var watchdog = null;
  var RELOAD_GUARD_MS = 60000;

  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, function (match, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : match;
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text; // never innerHTML: names are user data
    return node;
  }

  function localTime(iso) {
    // 24-hour time in the company's zone, in the page's language (not the browser's).
    var options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (hello && hello.time_zone) options.timeZone = hello.time_zone;
    return new Date(iso).toLocaleTimeString(document.documentElement.lang || [], options);
  }

  function localDay(date) {
    var options = { year: "numeric", month: "2-digit", day: "2-digit" };
    if (hello && hello.time_zone) options.timeZone = hello.time_zone;
    return date.toLocaleDateString("en-CA", options);
  }

  function setConnection(state, text) {
    connection.className = "connection " + state;
    connection.textContent = text;
  }

  // A door's recognition, or reception's check-in by hand: both are someone arriving.
  function greets(event) {
    return (event.kind === "recognized" || event.kind === "checked_in") && !!event.subject;
  }

  function greeting(event) {
    var subject = event.subject;
    var values = { name: subject.name, company: hello ? hello.company : "" };
    if (hello && hello.tv && hello.tv.greetings[subject.type]) {
      return format(hello.tv.greetings[subject.type], values);
    }
    var key = subject.type === "vip" ? "welcome_vip" : subject.type === "visitor" ? "welcome_visitor" : "welcome";
    return format(labels[key], values);
  }

  function avatar(subject) {
    if (subject && subject.photo_url) {
      var img = el("img", "avatar");
      img.src = subject.photo_url;
      img.alt = "";
      return img;
    }
    return el("div", "avatar initial", subject && subject.name ? subject.name.charAt(0) : "?");
  }

  function place(event) {
    // The camera (screen) and its direction, not the box that relayed it.
    var screen = event.screen && screens[event.screen];
    var where = screen ? screen.name : event.device_name || "";
    var direction = labels.directions[event.direction || (screen && screen.direction) || ""];
    return direction ? where + " · " + direction : where;
  }

  function card(event) {
    var node = el("article", "card " + event.kind);
    node.dataset.eventId = event.id;
    var deviceName = place(event);
    if (greets(event)) {
      node.classList.add("type-" + event.subject.type);
      node.appendChild(avatar(event.subject));
      var text = el("div", "text");
      text.appendChild(el("h2", "name", event.subject.name));
      text.appendChild(el("p", "greeting", greeting(event)));
      node.appendChild(text);
    } else if (event.kind === "stranger") {
      if (event.snapshot_url) {
        var shot = el("img", "avatar snapshot");
        shot.src = event.snapshot_url;
        shot.alt = "";
        node.appendChild(shot);
      } else {
        node.appendChild(el("div", "avatar initial", "?"));
      }
      var said = el("div", "text");
      said.appendChild(el("p", "alert", format(labels.stranger, { device: deviceName })));
      node.appendChild(said);
    } else if (event.kind === "visitor_outside_window") {
      node.appendChild(avatar(event.subject));
      node.appendChild(el("p", "alert", format(labels.outside_window, { name: event.subject.name })));
    } else {
      node.appendChild(el("p", "notice", format(labels[event.kind] || "{device}", { device: deviceName })));
    }
    if (mode === "dashboard" && event.kind === "checked_in") {
      node.querySelector(".text").appendChild(el("p", "where", labels.checked_in));
    } else if (mode === "dashboard" && deviceName && event.kind === "recognized") {
      node.querySelector(".text").appendChild(el("p", "where", deviceName));
    }
    if (event.corrected) {
      node.classList.add("corrected");
      node.appendChild(el("span", "corrected-tag", labels.corrected));
    }
    node.appendChild(el("time", "when", localTime(event.happened_at)));
    return node;
  }

  function logDevice(event) {
    var log = document.getElementById("device-log");
    if (!log) return;
    var item = el("li", "device-change " + event.kind);
    item.dataset.eventId = event.id;
    item.appendChild(el("time", "when", localTime(event.happened_at)));
    item.appendChild(el("span", "what", format(labels[event.kind] || "{device}", { device: event.device_name || "" })));
    log.insertBefore(item, log.firstChild);
    while (log.children.length > MAX_DEVICE_LOG) log.removeChild(log.lastChild);
  }

  function shownCard(id) {
    return cards.querySelector('[data-event-id="' + Number(id) + '"]');
  }

  // A stranger's face belongs to a known unknown person: say how often they came today, or
  // drop the alert for a person HR chose to ignore.
  function strangerSeen(seen) {
    var node = shownCard(seen.event);
    if (!node) return;
    if (seen.ignored) { node.remove(); return; }
    var line = node.querySelector(".seen") || node.querySelector(".text").appendChild(el("p", "seen"));
    line.textContent = seen.seen_today === 1 ? labels.seen_once : format(labels.seen_today, { count: seen.seen_today });
  }

  // An admin corrected who an event is about: its card shows the corrected event, so the
  // screen does not keep the wrong name.
  function corrected(events, arrivedToday) {
    var today = localDay(new Date());
    if (arrivedToday) arrived = new Set(arrivedToday);
    events.forEach(function (event) {
      var node = shownCard(event.id);
      if (greets(event) && event.subject.id && localDay(new Date(event.happened_at)) === today) {
        arrived.add(event.subject.id);
      }
      if (!node) return;
      if (mode === "tv" && !greets(event)) { node.remove(); return; }
      node.replaceWith(card(event));
    });
    updateFigures();
  }

  function updateFigures() {
    var arrivals = document.getElementById("arrivals");
    if (arrivals) arrivals.textContent = String(arrived.size);
    var status = document.getElementById("device-status");
    if (!status || !hello) return;
    status.textContent = "";
    var reported = 0;
    Object.keys(devices).forEach(function (state) {
      if (state !== "never_seen") reported += devices[state];
    });
    if (reported === 0) {
      // Nothing has reported yet: say so, instead of "0 online · 0 offline".
      status.appendChild(el("span", "device-none", format(labels.devices_none, { count: devices.never_seen || 0 })));
      return;
    }
    labels.device_states.forEach(function (pair) {
      var state = pair[0];
      if (!devices[state] && state !== "online") return;
      var figure = el("span", "device-state state-" + state);
      figure.appendChild(el("b", null, String(devices[state] || 0)));
      figure.appendChild(document.createTextNode(" " + pair[1]));
      status.appendChild(figure);
    });
  }

  function greetedRecently(event) {
    // The TV greets a person once per cool-down, however many cameras see them.
    var cooldown = hello && hello.tv ? hello.tv.cooldown_seconds * 1000 : 0;
    var when = new Date(event.happened_at).getTime();
    var last = greeted[event.subject.id];
    if (last !== undefined && Math.abs(when - last) < cooldown) return true;
    greeted[event.subject.id] = when;
    return false;
  }

  function show(events) {
    events.sort(function (a, b) { return a.id - b.id; });
    var today = localDay(new Date());
    events.forEach(function (event) {
      if (shown.has(event.id)) return;
      shown.add(event.id);
      if (event.id > lastId) lastId = event.id;
      if (greets(event) && event.subject.id && localDay(new Date(event.happened_at)) === today) {
        arrived.add(event.subject.id);
      }
      var counted = hello && event.id > (hello.devices_as_of || 0);
      if (counted && event.kind === "device_offline") {
        devices.online = Math.max(0, (devices.online || 0) - 1);
        devices.offline = (devices.offline || 0) + 1;
      }
      if (counted && event.kind === "device_online") {
        devices.online = (devices.online || 0) + 1;
        if (devices.offline) devices.offline -= 1;
        else if (devices.never_seen) devices.never_seen -= 1;
      }
      if (mode === "tv") {
        if (!greets(event)) return; // the TV greets; alerts are for staff
        if (event.subject.id && greetedRecently(event)) return;
      } else if (event.kind === "device_offline" || event.kind === "device_online") {
        logDevice(event);
        return;
      }
      cards.insertBefore(card(event), cards.firstChild);
      while (cards.children.length > MAX_CARDS) cards.removeChild(cards.lastChild);
    });
    updateFigures();
    // Panels of other apps (the dashboard's "expected today") follow the events from here.
    document.dispatchEvent(new CustomEvent("kangaroo:events", { detail: events }));
  }

  function heard() {
    // Every message proves the connection alive; silence for three ticks does not.
    if (watchdog) clearTimeout(watchdog);
    var tick = hello && hello.tick_seconds ? hello.tick_seconds : 5;
    watchdog = setTimeout(function () { abandon(socket); }, (3 * tick + 2) * 1000);
  }

  function abandon(dead) {
    // A half-open connection may take minutes to report its close: do not wait for it.
    if (!dead || dead !== socket) return;
    dead.onclose = null;
    dead.onmessage = null;
    try { dead.close(); } catch (ignored) { /* already closing */ }
    socket = null;
    reconnectLater();
  }

  function reconnectLater() {
    if (watchdog) { clearTimeout(watchdog); watchdog = null; }
    setConnection("connecting", labels.reconnecting);
    // Back off: 1 s, 2 s, 4 s ... up to 30 s, with jitter so a restarted server is not
    // hit by every screen at the same instant.
    var delay = Math.min(30000, 1000 * Math.pow(2, attempt)) * (0.75 + Math.random() * 0.5);
    attempt += 1;
    setTimeout(connect, delay);
  }

  function stop() {
    if (watchdog) { clearTimeout(watchdog); watchdog = null; }
    socket = null;
    setConnection("refused", labels.refused);
  }

  function signInAgain() {
    // The dashboard page is behind the admin sign-in: reloading it shows the sign-in page
    // when the session ended. Once a minute at most, so a refusal cannot loop.
    var last = Number(sessionStorage.getItem("kangaroo.reloadedAt") || 0);
    if (Date.now() - last > RELOAD_GUARD_MS) {
      sessionStorage.setItem("kangaroo.reloadedAt", String(Date.now()));
      location.reload();
    }
  }

  function lagging(count) {
    devices.lagging = count;
    updateFigures();
  }

  function completeUpTo(id) {
    if (typeof id !== "number" || id <= 0) return;
    resumeAfter = id;
    sessionStorage.setItem("kangaroo.resumeAfter", String(id));
  }

  function onHello(message) {
    hello = message;
    attempt = 0;
    setConnection("live", labels.live);
    arrived = new Set(message.arrived_today);
    devices = {};
    Object.keys(message.devices || {}).forEach(function (state) { devices[state] = message.devices[state] || 0; });
    if (message.tv) {
      document.getElementById("tv-name").textContent = message.company;
      body.classList.toggle("dark", message.tv.theme === "dark");
    }
    updateFigures();
    if (resumeAfter > 0) {
      socket.send(JSON.stringify({ type: "resume", after: resumeAfter }));
    } else {
      show(message.recent || []);
      completeUpTo(message.complete);
    }
  }

  function tvKey() {
    var match = /(?:^|[#&])key=([^&]+)/.exec(location.hash);
    if (match) {
      localStorage.setItem("kangaroo.tvKey", decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname); // keep the key out of the address bar
    }
    return localStorage.getItem("kangaroo.tvKey");
  }

  function connect() {
    var key = null;
    if (mode === "tv") {
      key = tvKey();
      if (!key) { askForKey(); return; }
    }
    var query = "";
    var screen = new URLSearchParams(location.search).get("screen");
    if (mode === "dashboard" && screen) query = "?screen=" + encodeURIComponent(screen);
    // The TV answers to its key alone, even in a browser signed in to the admin.
    if (mode === "tv") query = "?as=tv";
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/events/" + query);
    socket.onopen = function () {
      if (key) socket.send(JSON.stringify({ type: "auth", key: key }));
    };
    socket.onmessage = function (message) {
      var data = JSON.parse(message.data);
      if (data.type === "hello") onHello(data);
      else if (data.type === "events") show(data.events);
      else if (data.type === "stranger_seen") strangerSeen(data);
      else if (data.type === "event_corrected") corrected(data.events, data.arrived_today);
      else if (data.type === "devices") lagging(data.lagging);
      else if (data.type === "tick") completeUpTo(data.complete);
      heard();
    };
    socket.onclose = function (closed) {
      var code = closed.code;
      if (code === 4401 || code === 4403 || code === 4410) {
        stop();
        if (mode === "tv" && code !== 4403) {
          localStorage.removeItem("kangaroo.tvKey");
          askForKey();
        } else if (mode === "dashboard" && code !== 4403) {
          signInAgain();
        }
        return;
      }
      reconnectLater();
    };
  }

  function askForKey() {
    var form = document.getElementById("key-form");
    form.hidden = false;
    document.getElementById("key-input").value = "";
    form.onsubmit = function (submitted) {
      submitted.preventDefault();
      localStorage.setItem("kangaroo.tvKey", document.getElementById("key-input").value.trim());
      form.hidden = true;
      connect();
    };
  }

  // Picking a screen reloads the page for it (a listener here, not an inline handler: the
  // Content-Security-Policy allows no inline script).
  document.querySelectorAll("[data-submit-on-change]").forEach(function (field) {
    field.addEventListener("change", function () { field.form.submit(); });
  });

  window.kangarooLive = {
    lastId: function () { return lastId; },
    shownIds: function () { return Array.from(shown); },
    devices: function () { return devices; },
  };
  connect();
})();
