// SPDX-License-Identifier: MIT
// A QML-only application: no TaskPool header, no TaskPool call and no QML import path of its own.
// It loads main.qml (`import TaskPool`), which runs tasks on a TaskPoolExecutor and exits with 0
// when their results are right. Exit code 1 when the module does not load or a result is wrong, 2
// when it hangs.
#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QQmlApplicationEngine>
#include <QTimer>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

int main(int argc, char* argv[])
{
    QCoreApplication app(argc, argv);
    QQmlApplicationEngine engine;
    // The module must come from the linked library: no import path may hold it.
    for (const QString& path : engine.importPathList()) {
        if (QFileInfo::exists(QDir(path).filePath(QStringLiteral("TaskPool/qmldir")))) {
            std::fprintf(stderr, "qmlonly: the import path %s holds the TaskPool module: nothing to test\n",
                         qPrintable(path));
            return 1;
        }
    }
    engine.load(QUrl(QStringLiteral("qrc:/qmlonly/main.qml")));
    if (engine.rootObjects().isEmpty()) {
        std::fprintf(stderr, "qmlonly: main.qml did not load\n");
        return 1;
    }
    QTimer::singleShot(10s, &app, [] {
        std::fprintf(stderr, "qmlonly: timed out\n");
        QCoreApplication::exit(2);
    });
    return app.exec();
}
