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
    function has(name) { return root.handles[name] !== undefined; }
    function text() { return root.log.join(","); }
}
