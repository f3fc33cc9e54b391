// The QML side of tst_qml: an executor, bindings on its counts, and jobs whose Promise the test
// settles by name (no timers: the test decides when each job ends).
import QtQml
import TaskPool

QtObject {
    id: root

    property TaskPoolExecutor pool: TaskPoolExecutor {
        maxWorkers: 2
        taskNamePrefix: "Qml"
    }
    // Bindings that must follow the executor as tasks start and end.
    property int active: pool ? pool.activeCount : -1
    property int pending: pool ? pool.pendingCount : -1
    property int workers: pool ? pool.workerCount : -1
    property bool shut: pool ? pool.isShutdown : true
    property int maxActive: 0
    onActiveChanged: maxActive = Math.max(maxActive, active)

    // Slots for the futures and values a test keeps (QML objects take no new properties).
    property var a; property var b; property var c; property var d; property var f; property var o
    property var f1; property var f2; property var f3; property var f4; property var f5; property var f6
    property var f7; property var fs; property var s; property var s2; property var ok; property var bad
    property var gone; property var adopt; property var events; property var w; property var x
    property var y; property var p; property var dyn

    // The scheduling controls as bindings, and how often each change was notified.
    property bool paused: pool ? pool.paused : false
    property bool rateLimited: pool ? pool.rateLimited : false
    property int rateLimit: pool ? pool.rateLimit : -1
    property int rateWindow: pool ? pool.rateWindow : -1
    property int maxPerKey: pool ? pool.maxPerKey : -1
    property int timeout: pool ? pool.timeout : -1
    property var notified: ({})
    function notify(what) { root.notified[what] = (root.notified[what] || 0) + 1; }
    property Connections notifications: Connections {
        target: root.pool
        function onPausedChanged() { root.notify("paused"); }
        function onRateLimitChanged() { root.notify("rateLimit"); }
        function onRateLimitedChanged() { root.notify("rateLimited"); }
        function onMaxPerKeyChanged() { root.notify("maxPerKey"); }
        function onTimeoutChanged() { root.notify("timeout"); }
    }

    property var log: []
    property var handles: ({})
    property int running: 0
    property int maxRunning: 0

    // A job that runs until the test settles it: returns a Promise and records its start.
    function later(name) {
        return new Promise(function (resolve, reject) {
            root.log.push("start " + name);
            root.running += 1;
            root.maxRunning = Math.max(root.maxRunning, root.running);
            root.handles[name] = {
                resolve: function (v) { root.running -= 1; resolve(v); },
                reject: function (e) { root.running -= 1; reject(e); }
            };
        });
    }
    function settle(name, ok, value) {
        var handle = root.handles[name];
        delete root.handles[name];
        if (ok)
            handle.resolve(value);
        else
            handle.reject(value);
        return true;
    }
    // A job that takes the task's abort signal (its last declared parameter): it runs until the
    // test settles it, or until the signal is set, when it logs the reason and rejects with it.
    property var abortSignals: ({})
    function abortable(name, signal) {
        return new Promise(function (resolve, reject) {
            root.log.push("start " + name);
            root.abortSignals[name] = signal;
            signal.onabort = function (event) {
                root.log.push("abort " + name + " " + signal.reason.name + (event.target === signal ? "" : " (bad target)"));
                delete root.handles[name];
                reject(signal.reason);
            };
            root.handles[name] = { resolve: resolve, reject: reject };
        });
    }
    function has(name) { return root.handles[name] !== undefined; }
    function text() { return root.log.join(","); }
}
