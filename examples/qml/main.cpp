// SPDX-License-Identifier: MIT
// A Qt Quick front end for the TaskPool QML module: jobs written in JavaScript and in C++ on one
// QML TaskPoolExecutor, with live status, progress, counts and cancellation.
//
//   taskpool-quick                    the window; press Start
//   taskpool-quick --auto-quit        runs two batches (one partly cancelled), checks the outcome
//                                     and exits (0 when it was as expected)
#include "jobbackend.h"

#include <QCommandLineParser>
#include <QGuiApplication>
#include <QQmlApplicationEngine>
#include <QQuickWindow>
#include <QTimer>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

int main(int argc, char* argv[])
{
    QGuiApplication app(argc, argv);
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Jobs on a QML TaskPoolExecutor, in a Qt Quick window."));
    parser.addHelpOption();
    const QCommandLineOption autoQuit(QStringLiteral("auto-quit"),
                                      QStringLiteral("Run a batch, cancel one job, run a second batch and cancel it "
                                                     "all, check the outcome and exit (0 when it was as expected)."));
    const QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                        QStringLiteral("With --auto-quit: save a picture of the window to <file> "
                                                       "during the first batch."),
                                        QStringLiteral("file"));
    parser.addOptions({ autoQuit, screenshot });
    parser.process(app);

    // Without a GPU (offscreen, CI) the software renderer still draws and grabs the window.
    if (QGuiApplication::platformName() == QLatin1String("offscreen")
        && qEnvironmentVariableIsEmpty("QT_QUICK_BACKEND"))
        QQuickWindow::setGraphicsApi(QSGRendererInterface::Software);

    JobBackend backend(parser.isSet(autoQuit), parser.value(screenshot));
    QQmlApplicationEngine engine;
    // The TaskPool module as built in this build tree (an installed one is found on its own).
    engine.addImportPath(QStringLiteral(TASKPOOL_QML_IMPORT_DIR));
    engine.setInitialProperties({ { QStringLiteral("backend"), QVariant::fromValue(&backend) } });
    QObject::connect(
        &engine, &QQmlApplicationEngine::objectCreationFailed, &app, [] { QCoreApplication::exit(2); },
        Qt::QueuedConnection);
    engine.load(QUrl(QStringLiteral("qrc:/taskpool-quick/Main.qml")));
    if (engine.rootObjects().isEmpty())
        return 2;
    if (backend.autoQuit()) {
        QTimer::singleShot(60s, &app, [] {
            std::printf("auto-quit: FAILED (timed out)\n");
            QCoreApplication::exit(3);
        });
    }
    return app.exec();
}
