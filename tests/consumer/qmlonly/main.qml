// Submits JavaScript tasks to a TaskPoolExecutor and checks their results: Qt.exit(0) when they
// are right, Qt.exit(1) otherwise.
import QtQml
import TaskPool

QtObject {
    id: root

    property TaskPoolExecutor pool: TaskPoolExecutor {
        maxWorkers: 2
    }

    function fail(message) {
        console.error("qmlonly: " + message)
        Qt.exit(1)
    }

    Component.onCompleted: {
        const product = root.pool.submit(function (x, y) { return x * y }, 6, 7)
        const greeting = root.pool.submit(function (name) { return Promise.resolve("hello " + name) }, "pool")
        product.then(function (value) {
            if (value !== 42)
                return root.fail("6 x 7 gave " + value)
            greeting.then(function (text) {
                if (text !== "hello pool")
                    return root.fail("the greeting was '" + text + "'")
                console.log("qmlonly: 6 x 7 = " + value + ", " + text + ", maxWorkers " + root.pool.maxWorkers)
                Qt.exit(0)
            }, function (error) { root.fail("the greeting failed: " + error.message) })
        }, function (error) { root.fail("6 x 7 failed: " + error.message) })
    }
}
