// SPDX-License-Identifier: MIT
// Run by qmltestrunner (the qml_module_* tests), a program that does not link TaskPool::Qml: the
// module must load through the import path alone, plugin and libraries included.
import QtQuick
import QtTest
import TaskPool

TestCase {
    id: test
    name: "TaskPoolModule"

    TaskPoolExecutor {
        id: pool
        maxWorkers: 2
        taskNamePrefix: "Module"
    }

    function later(value) {
        return new Promise(function (resolve) { Qt.callLater(function () { resolve(value); }); });
    }

    function test_runsTasks() {
        compare(pool.maxWorkers, 2);
        const product = pool.submit(function (a, b) { return a * b; }, 6, 7);
        const promised = pool.submit(test.later, "later");
        const failing = pool.submit(function () { throw new Error("no"); });
        compare(product.status, TaskFuture.Pending); // tasks start from the event loop
        tryCompare(product, "status", TaskFuture.Finished);
        tryCompare(promised, "status", TaskFuture.Finished);
        tryCompare(failing, "status", TaskFuture.Failed);
        compare(product.result, 42);
        compare(promised.result, "later");
        compare(failing.error, "no");
        tryCompare(pool, "activeCount", 0);
        verify(pool.workerNames.every(function (name) { return name.startsWith("Module_"); }));
    }
}
