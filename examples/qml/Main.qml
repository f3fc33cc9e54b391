// SPDX-License-Identifier: MIT
// Jobs on a TaskPoolExecutor, seen from QML: C++ coroutine jobs (with progress, from the
// `backend`) and JavaScript jobs (functions returning a Promise) share one bounded pool. Every
// fifth job is urgent (priority 1: it starts before the queued normal ones), the pool can be
// paused, and cancelling a running JavaScript job aborts it through its abort signal.
import QtQuick
// The Basic style on every platform: its controls draw no images (the image-based indicators of
// other styles leak under the software renderer of Qt 6.4, used by the offscreen smoke test).
import QtQuick.Controls.Basic
import QtQuick.Layouts
import TaskPool

ApplicationWindow {
    id: window
    width: 720
    height: 540
    visible: true
    title: "TaskPool: QML jobs"

    // The C++ side (JobBackend): jobs, reports, screenshot and exit; set by main.cpp.
    required property var backend

    TaskPoolExecutor {
        id: pool
        maxWorkers: 3
        taskNamePrefix: "qml"
    }

    // The current batch: {name, kind, steps, fails, priority, future, started, aborted} per job;
    // `future` is a TaskFuture, `started` the job's place in the start order (0: not yet).
    property var jobs: []
    property int settled: 0
    property int startCount: 0
    // Each job's place in the start order, by index (a property, so that bindings follow it).
    property var startOrder: []
    property int peakActive: 0
    readonly property bool running: settled < jobs.length
    property int stepMs: 60

    signal jsJobRunning(int index)
    signal jobSettled(int index)
    signal batchFinished()

    Connections {
        target: pool
        function onActiveCountChanged() { window.peakActive = Math.max(window.peakActive, pool.activeCount) }
    }

    // A plain progress bar: `value` in 0..1, or a moving block while `busy`. (Drawn with
    // rectangles: the stock ProgressBar's indeterminate animation leaks scene graph nodes under
    // the software renderer of Qt 6.4, which the offscreen smoke test uses.)
    component Bar: Rectangle {
        id: bar
        property real value: 0
        property bool busy: false
        implicitHeight: 18
        radius: 3
        border.color: "#9a9a9a"
        color: "#f4f4f4"
        clip: true
        Rectangle {
            x: 1
            y: 1
            height: parent.height - 2
            radius: 2
            color: "#3d8fd6"
            width: bar.busy ? 0 : Math.max(0, Math.min(1, bar.value)) * (bar.width - 2)
        }
        Rectangle {
            id: pulse
            visible: bar.busy
            y: 1
            height: parent.height - 2
            width: bar.width / 4
            radius: 2
            color: "#3d8fd6"
            NumberAnimation on x {
                running: bar.busy
                loops: Animation.Infinite
                from: -pulse.width
                to: bar.width
                duration: 900
            }
        }
    }

    Component {
        id: timerComponent
        Timer { }
    }

    // A JavaScript job: a Promise settled by a timer after `ms`. The worker slot stays taken until
    // the Promise settles; a rejection fails the task with its message. It declares one parameter
    // more than it is given, so it receives the task's abort signal: a cancel (or a timeout, or
    // the pool's destruction) stops the timer and rejects at once, which frees the slot. An
    // XMLHttpRequest would be aborted the same way: `signal.onabort = function () { xhr.abort() }`.
    function jsJob(ms, fails, record, signal) {
        return new Promise(function (resolve, reject) {
            const timer = timerComponent.createObject(window, { interval: ms });
            signal.onabort = function () {
                timer.stop();
                timer.destroy();
                record.aborted = true;
                reject(signal.reason);
            };
            timer.triggered.connect(function () {
                timer.destroy();
                if (fails)
                    reject(new Error("this job fails on purpose"));
                else
                    resolve(ms);
            });
            timer.start();
            window.jsJobRunning(record.index);
        });
    }

    function start(count) {
        if (running)
            return;
        const list = [];
        for (let i = 0; i < count; ++i) {
            const priority = i % 5 === 4 ? 1 : 0;
            if (i % 4 === 3) {
                const fails = i % 8 === 7;
                const record = { index: i, name: "JS job " + (i + 1), kind: "JavaScript", steps: 0, fails: fails,
                                 priority: priority, started: 0, aborted: false };
                record.future = pool.submit({ priority: priority }, jsJob, stepMs * 12, fails, record);
                list.push(record);
            } else {
                const steps = 10 + (i * 7) % 15;
                list.push({
                    name: "C++ job " + (i + 1), kind: "C++", steps: steps, fails: false, priority: priority,
                    started: 0, aborted: false, future: window.backend.startJob(pool, steps, stepMs, priority)
                });
            }
        }
        settled = 0;
        startCount = 0;
        startOrder = [];
        peakActive = pool.activeCount;
        list.forEach(function (job, index) {
            // Connected before the delegates' bindings: they see the number when the status changes.
            const noteStart = function () {
                if (job.started === 0 && job.future.status === TaskFuture.Running) {
                    job.started = ++window.startCount;
                    const order = window.startOrder.slice();
                    order[index] = job.started;
                    window.startOrder = order;
                }
            };
            noteStart();
            job.future.statusChanged.connect(noteStart);
            job.future.finished.connect(function () {
                window.settled += 1;
                window.jobSettled(index);
                if (window.settled === list.length)
                    window.batchFinished();
            });
        });
        jobs = list;
    }

    function cancelJob(index) {
        jobs[index].future.cancel();
    }

    function cancelAll() {
        jobs.forEach(function (job) { job.future.cancel(); });
    }

    function statusName(status) {
        switch (status) {
        case TaskFuture.Pending: return "pending";
        case TaskFuture.Running: return "running";
        case TaskFuture.Finished: return "finished";
        case TaskFuture.Failed: return "failed";
        case TaskFuture.Cancelled: return "cancelled";
        }
        return "?";
    }

    ColumnLayout {
        anchors.fill: parent
        anchors.margins: 8
        spacing: 6

        RowLayout {
            Label { text: "Workers:" }
            SpinBox {
                id: workersBox
                from: 1
                to: 16
                value: pool.maxWorkers
                onValueModified: pool.maxWorkers = value
            }
            Label { text: "Jobs:" }
            SpinBox {
                id: jobCountBox
                from: 1
                to: 100
                value: 12
            }
            Item { Layout.fillWidth: true }
            Button {
                id: pauseButton
                text: pool.paused ? "Resume" : "Pause"
                onClicked: pool.paused ? pool.resume() : pool.pause()
            }
            Button {
                id: startButton
                text: "Start"
                enabled: !window.running
                onClicked: window.start(jobCountBox.value)
            }
            Button {
                id: cancelAllButton
                text: "Cancel all"
                enabled: window.running
                onClicked: window.cancelAll()
            }
        }

        Frame {
            Layout.fillWidth: true
            Layout.fillHeight: true
            padding: 2

            ListView {
                id: list
                anchors.fill: parent
                clip: true
                model: window.jobs
                delegate: RowLayout {
                    id: row
                    required property var modelData
                    required property int index
                    readonly property TaskFuture future: modelData.future
                    width: ListView.view.width
                    spacing: 8

                    Label {
                        text: row.modelData.name + (row.modelData.priority > 0 ? " ★" : "")
                        Layout.preferredWidth: 90
                        Layout.leftMargin: 4
                    }
                    Label {
                        // Where the job came in the start order (urgent jobs overtake queued ones).
                        text: window.startOrder[row.index] > 0 ? "#" + window.startOrder[row.index] : ""
                        Layout.preferredWidth: 30
                    }
                    Label {
                        Layout.preferredWidth: 190
                        elide: Text.ElideRight
                        text: {
                            const status = window.statusName(row.future.status);
                            if (row.future.status === TaskFuture.Finished)
                                return status + " (result " + row.future.result + ")";
                            if (row.future.status === TaskFuture.Failed)
                                return status + ": " + row.future.error;
                            return status;
                        }
                    }
                    Bar {
                        Layout.fillWidth: true
                        value: row.future.progress
                        // A JavaScript job reports no progress: busy while it runs.
                        busy: row.modelData.kind === "JavaScript" && row.future.status === TaskFuture.Running
                    }
                    Button {
                        text: "Cancel"
                        enabled: !row.future.done
                        onClicked: row.future.cancel()
                    }
                }
            }
        }

        Bar {
            id: overall
            Layout.fillWidth: true
            implicitHeight: 22
            // Bound to the pool's counts: what is neither running nor queued any more has settled.
            value: window.jobs.length > 0
                   ? (window.jobs.length - pool.activeCount - pool.pendingCount) / window.jobs.length : 0
        }
        Label {
            text: (pool.paused ? "PAUSED · " : "") + "active " + pool.activeCount + " · pending " + pool.pendingCount + " · workers "
                  + pool.workerCount + " of " + pool.maxWorkers + " · settled " + window.settled + " of "
                  + window.jobs.length + " · peak active " + window.peakActive
        }
    }

    // --auto-quit: drives the window as a user would and checks what it shows.
    QtObject {
        id: autoRun
        property int phase: 0
        property bool cancelled: false
        property var problems: []

        function expect(ok, what) {
            if (!ok)
                problems.push(what);
        }
        function count(status) {
            return window.jobs.filter(function (job) { return job.future.status === status; }).length;
        }
        property bool pausedOk: false
        property var cancelledJob: null
        function begin() {
            window.stepMs = 15;
            // Batch 1: 10 jobs on 3 workers, submitted while the pool is paused (nothing starts),
            // then resumed: the two urgent jobs start first. The first JavaScript job that runs
            // is cancelled, which aborts it through its signal.
            phase = 1;
            workersBox.value = 3;
            workersBox.valueModified();
            jobCountBox.value = 10;
            pauseButton.clicked();
            startButton.clicked();
            Qt.callLater(function () {
                pausedOk = pool.paused && pool.activeCount === 0 && pool.pendingCount === 10
                        && count(TaskFuture.Pending) === 10;
                pauseButton.clicked();
            });
        }
        function onJsJobRunning(index) {
            const job = window.jobs[index];
            if (phase === 1 && !cancelled && !job.fails) {
                cancelled = true;
                cancelledJob = job;
                window.cancelJob(index); // its timer is running: the abort signal stops it
            }
        }
        function onSettled(index) {
            if (phase === 1 && window.settled === 4)
                window.backend.screenshot(window);
            if (phase === 2 && !cancelled && count(TaskFuture.Finished) >= 4) {
                cancelled = true;
                cancelAllButton.clicked();
            }
        }
        function checkBatch1() {
            expect(pausedOk, "batch 1: jobs started while the pool was paused");
            expect(!pool.paused && pauseButton.text === "Pause", "batch 1: the pool did not resume");
            expect(window.jobs[4].started === 1 && window.jobs[9].started === 2,
                   "batch 1: the urgent jobs started #" + window.jobs[4].started + " and #" + window.jobs[9].started
                   + ", not first");
            window.jobs.forEach(function (job, i) {
                const status = job.future.status;
                if (job === cancelledJob) {
                    expect(status === TaskFuture.Cancelled && job.aborted,
                           job.name + ": " + window.statusName(status) + (job.aborted ? "" : ", not aborted"));
                } else if (job.fails) {
                    expect(status === TaskFuture.Failed && job.future.error.indexOf("on purpose") >= 0,
                           job.name + ": " + window.statusName(status) + " '" + job.future.error + "', not failed");
                } else if (job.kind === "C++") {
                    expect(status === TaskFuture.Finished && job.future.result === job.steps * (job.steps + 1) / 2
                           && job.future.progress === 1, job.name + ": " + window.statusName(status) + ", result "
                           + job.future.result);
                } else {
                    expect(status === TaskFuture.Finished && job.future.result === window.stepMs * 12,
                           job.name + ": " + window.statusName(status) + ", result " + job.future.result);
                }
            });
            expect(cancelledJob !== null, "batch 1: no JavaScript job was cancelled");
            expect(window.peakActive === 3, "batch 1: peak active " + window.peakActive + ", expected 3");
            window.backend.report("batch 1: " + count(TaskFuture.Finished) + " finished, " + count(TaskFuture.Failed)
                           + " failed, " + count(TaskFuture.Cancelled) + " cancelled ("
                           + (cancelledJob ? cancelledJob.name + (cancelledJob.aborted ? " aborted" : " NOT aborted")
                                           : "none") + "); urgent jobs started #" + window.jobs[4].started + " and #"
                           + window.jobs[9].started + "; peak active " + window.peakActive + " of 3 workers");
        }
        function checkBatch2() {
            const finished = count(TaskFuture.Finished), cancelledJobs = count(TaskFuture.Cancelled);
            const failed = window.jobs.filter(function (job) { return job.future.status === TaskFuture.Failed; });
            expect(failed.every(function (job) { return job.fails; }), "batch 2: a job failed unexpectedly");
            expect(finished + cancelledJobs + failed.length === window.jobs.length, "batch 2: a job did not settle");
            expect(finished >= 4 && cancelledJobs >= 10,
                   "batch 2: " + finished + " finished, " + cancelledJobs + " cancelled");
            expect(window.peakActive <= 5, "batch 2: peak active " + window.peakActive + " > 5");
            window.backend.report("batch 2: " + finished + " finished, " + failed.length + " failed, " + cancelledJobs
                           + " cancelled; peak active "
                           + window.peakActive + " of 5 workers");
        }
        function onBatch() {
            if (phase === 1) {
                checkBatch1();
                // Batch 2: 20 jobs on 5 workers (through the spin box), all cancelled after 4 finished.
                phase = 2;
                cancelled = false;
                workersBox.value = 5;
                workersBox.valueModified();
                expect(pool.maxWorkers === 5, "the spin box did not set maxWorkers");
                jobCountBox.value = 20;
                startButton.clicked();
            } else if (phase === 2) {
                checkBatch2();
                phase = 3;
                // Cancelled C++ jobs end at their next step: end() once the pool is idle (at once
                // if it is already).
                pool.whenIdle().then(function () { autoRun.end(); });
            }
        }
        function end() {
            phase = 4;
            const aborted = window.jobs.filter(function (job) { return job.aborted; }).length;
            window.backend.report("batch 2: " + aborted + " running JavaScript jobs were aborted by Cancel all");
            expect(pool.activeCount === 0 && pool.pendingCount === 0, "the pool is not idle");
            expect(startButton.enabled && !cancelAllButton.enabled, "the buttons did not come back");
            problems.forEach(function (problem) { window.backend.report("FAILED: " + problem); });
            window.backend.report(problems.length === 0 ? "auto-quit: OK" : "auto-quit: FAILED");
            window.backend.finish(problems.length === 0 ? 0 : 1);
        }
    }
    Connections {
        target: window
        enabled: window.backend.autoQuit
        function onJsJobRunning(index) { autoRun.onJsJobRunning(index) }
        function onJobSettled(index) { autoRun.onSettled(index) }
        function onBatchFinished() { autoRun.onBatch() }
    }
    Component.onCompleted: {
        if (window.backend.autoQuit)
            Qt.callLater(autoRun.begin);
    }
}
