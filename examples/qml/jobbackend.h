// SPDX-License-Identifier: MIT
#pragma once

#include <taskpool/qml.h>

#include <QObject>

//! The C++ side of the QML example: coroutine jobs that report progress through their QPromise,
//! run on the executor of a QML `TaskPoolExecutor` and handed to QML as TaskFutures.
class JobBackend : public QObject {
    Q_OBJECT
    Q_PROPERTY(bool autoQuit READ autoQuit CONSTANT)

public:
    explicit JobBackend(bool autoQuit, QString screenshot, QObject* parent = nullptr);

    bool autoQuit() const { return m_autoQuit; }

    //! Submits a job of \a steps steps of \a stepMs milliseconds to the executor of \a pool (a QML
    //! TaskPoolExecutor) with \a priority (higher starts first); its result is 1 + 2 + ... + steps.
    //! Null (and a QML warning) for anything that is not a TaskPoolExecutor.
    Q_INVOKABLE TaskPool::TaskFuture* startJob(QObject* pool, int steps, int stepMs, int priority = 0);
    //! A line on standard output (the --auto-quit report).
    Q_INVOKABLE void report(const QString& line);
    //! Saves a picture of \a window to the --screenshot file, if one was asked for.
    Q_INVOKABLE void screenshot(QObject* window);
    //! Ends the application with \a status.
    Q_INVOKABLE void finish(int status);

private:
    bool m_autoQuit;
    QString m_screenshot;
};
