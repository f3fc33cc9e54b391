// SPDX-License-Identifier: MIT
// Uses the installed package as a user would: submits a coroutine and checks its result, then
// loads the installed QML module from TaskPool_QML_IMPORT_DIR (the package's variable).
// Exit code 0 only on the right results; 1 on a wrong one or an exception, 2 when it hangs.
#include <taskpool/qml.h>
#include <taskpool/taskpool.h>

#include <QCoreApplication>
#include <QCoro/QCoroTimer>
#include <QQmlComponent>
#include <QQmlEngine>
#include <QTimer>

#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>

using namespace std::chrono_literals;

namespace {

QCoro::Task<int> multiply(int x, int y)
{
    QTimer timer;
    timer.setSingleShot(true);
    timer.start(10ms);
    co_await timer;
    co_return x* y;
}

QCoro::Task<int> check()
{
    TaskPool::TaskPoolExecutor executor(2);
    TaskPool::Future<int> callable = executor.submit(multiply, 6, 7);
    TaskPool::Future<int> awaitable = executor.submit(multiply(2, 3));
    const int a = co_await callable;
    const int b = co_await awaitable;
    co_await executor.shutdown();
    if (a != 42 || b != 6) {
        std::fprintf(stderr, "consumer: wrong results %d and %d (expected 42 and 6)\n", a, b);
        co_return 1;
    }
    std::printf("consumer: 6 x 7 = %d, 2 x 3 = %d\n", a, b);
    co_return 0;
}

// The TaskPool QML module, found through the package's import directory: the object QML makes is
// the TaskPool::Qml library's type (the plugin and the linked library agree).
int checkQml()
{
    QQmlEngine engine;
    engine.addImportPath(QStringLiteral(TASKPOOL_QML_IMPORT_DIR));
    QQmlComponent component(&engine);
    component.setData("import TaskPool\nTaskPoolExecutor { maxWorkers: 2 }", QUrl(QStringLiteral("consumer.qml")));
    std::unique_ptr<QObject> object(component.create());
    auto* pool = qobject_cast<TaskPool::QmlTaskPoolExecutor*>(object.get());
    if (!pool || pool->property("maxWorkers").toInt() != 2) {
        std::fprintf(stderr, "consumer: the QML module did not load from %s: %s\n", TASKPOOL_QML_IMPORT_DIR,
                     qPrintable(component.errorString()));
        return 1;
    }
    std::printf("consumer: QML TaskPoolExecutor from %s, maxWorkers %d\n", TASKPOOL_QML_IMPORT_DIR,
                pool->property("maxWorkers").toInt());
    return 0;
}

} // namespace

int main(int argc, char* argv[])
{
    QCoreApplication app(argc, argv);
    QTimer::singleShot(10s, &app, [] {
        std::fprintf(stderr, "consumer: timed out\n");
        QCoreApplication::exit(2);
    });
    auto task = [](QCoreApplication& app) -> QCoro::Task<void> {
        int code = 1;
        try {
            code = co_await check();
            if (code == 0)
                code = checkQml();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "consumer: exception: %s\n", e.what());
        }
        app.exit(code);
    }(app);
    return app.exec();
}
