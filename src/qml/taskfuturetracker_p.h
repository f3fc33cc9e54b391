// SPDX-License-Identifier: MIT
// Internal to the TaskPool QML module: what a TaskFuture learns from its executor.
#pragma once

#include <taskpool/qml.h>

#include <QMultiHash>
#include <QObject>

namespace TaskPool::detail {

//! One per executor that has TaskFutures (its child): routes the executor's per-task signals to
//! the TaskFutures of that task, so that a start or an end costs a hash lookup, not a signal to
//! every TaskFuture.
/*!
 * A TaskFuture settles from the executor's own terminal signal (taskFinished, taskFailed,
 * taskCanceled), which the executor emits before idle(): so when the executor says it is idle,
 * every TaskFuture it tracks has settled (tst_qml's regression14_10_* hold the executor to it). The tracker is found
 * through a dynamic property of the executor and checked with qobject_cast, never by looking for a child of some type.
 */
class TaskFutureTracker : public QObject {
    Q_OBJECT
public:
    //! The tracker of \a executor, made on first use.
    static TaskFutureTracker* of(TaskPoolExecutor* executor);
    //! The tracker of \a executor if it has one.
    static TaskFutureTracker* find(TaskPoolExecutor* executor);
    ~TaskFutureTracker() override;

    void add(quint64 taskId, TaskFuture* future) { m_futures.insert(taskId, future); }
    void remove(quint64 taskId, TaskFuture* future) { m_futures.remove(taskId, future); }

    //! For a JavaScript task: \a future is told of the start by the task itself, which works even
    //! once the executor is gone.
    static void startsItself(TaskFuture* future) { future->m_selfStart = true; }
    static void started(TaskFuture* future) { future->markStarted(); }

private:
    explicit TaskFutureTracker(TaskPoolExecutor* executor);
    QList<QPointer<TaskFuture>> futuresOf(quint64 taskId) const;

    QMultiHash<quint64, TaskFuture*> m_futures; // a TaskFuture removes itself when it settles or dies
};

} // namespace TaskPool::detail
