// SPDX-License-Identifier: MIT
#include "jobbackend.h"

#include <QCoreApplication>
#include <QCoro/QCoroTimer>
#include <QPromise>
#include <QQuickWindow>

#include <chrono>
#include <cstdio>

namespace {

//! `steps` steps of `stepTime`, with progress through the promise; stops early when cancelled.
QCoro::Task<void> work(QPromise<int>& promise, int steps, std::chrono::milliseconds stepTime)
{
    promise.setProgressRange(0, steps);
    int sum = 0;
    for (int step = 1; step <= steps; ++step) {
        if (promise.isCanceled())
            co_return;
        co_await QCoro::sleepFor(stepTime);
        sum += step;
        promise.setProgressValue(step);
    }
    promise.addResult(sum);
}

} // namespace

JobBackend::JobBackend(bool autoQuit, QString screenshot, QObject* parent) :
    QObject(parent), m_autoQuit(autoQuit), m_screenshot(std::move(screenshot))
{
}

TaskPool::TaskFuture* JobBackend::startJob(QObject* pool, int steps, int stepMs, int priority)
{
    auto* qmlPool = qobject_cast<TaskPool::QmlTaskPoolExecutor*>(pool);
    if (!qmlPool || qmlPool->isShutdown()) {
        qWarning("startJob: needs a TaskPoolExecutor that is not shut down");
        return nullptr;
    }
    TaskPool::TaskPoolExecutor* executor = qmlPool->executor();
    // The executor the QML item owns runs C++ coroutines too; QML sees the future as a TaskFuture.
    TaskPool::SubmitOptions options;
    options.priority = priority;
    const TaskPool::SubmitOptions& withPriority = options;
    return TaskPool::toTaskFuture(executor->submit(withPriority, work, steps, std::chrono::milliseconds(stepMs)),
                                  executor);
}

void JobBackend::report(const QString& line)
{
    std::printf("%s\n", qPrintable(line));
    std::fflush(stdout);
}

void JobBackend::screenshot(QObject* window)
{
    auto* quickWindow = qobject_cast<QQuickWindow*>(window);
    if (m_screenshot.isEmpty() || !quickWindow)
        return;
    const bool saved = quickWindow->grabWindow().save(m_screenshot);
    report(QStringLiteral("screenshot %1: %2")
               .arg(saved ? QStringLiteral("saved") : QStringLiteral("NOT saved"), m_screenshot));
}

void JobBackend::finish(int status)
{
    QCoreApplication::exit(status);
}
