// SPDX-License-Identifier: MIT
#pragma once

#include <taskpool/taskpool.h>

#include <QLoggingCategory>
#include <QThread>

#include <algorithm>
#include <array>
#include <atomic>
#include <coroutine>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

Q_DECLARE_LOGGING_CATEGORY(lcTaskPool)

namespace TaskPool::detail {

//! The executor's state. It outlives the TaskPoolExecutor object while work remains (every worker
//! coroutine holds it), which is how destroying the executor lets queued and running work finish.
//! Everything but `incoming`, `shutdown` and `thread` belongs to the executor's thread.
class ExecutorCore : public std::enable_shared_from_this<ExecutorCore> {
public:
    struct Worker {
        int index;
        std::coroutine_handle<> idleHandle; // set while suspended waiting for work
    };

    ExecutorCore(TaskPoolExecutor* q, int maxWorkers, QString prefix);

    // Submission.
    void enqueue(Job* job); // executor thread
    void enqueue(std::span<Job* const> jobs); // executor thread; adopts a reference to each
    void enqueueRemote(Job* job); // any other thread
    void takeIncoming();

    // Worker life.
    Job* take(Worker& worker);
    bool shouldLeave(const Worker& worker) const;
    void start(Worker& worker, Job* job);
    void end(Job* job);
    void leave(Worker* worker);
    void park(Worker& worker, std::coroutine_handle<> handle);

    void jobCancelled(Job* job);
    void beginShutdown(bool cancelFutures);
    void setMaxWorkers(int maxWorkers);
    bool hasWorker(int index) const { return size_t(index) < m_workers.size() && m_workers[index]; }
    bool hasQueued() const { return m_head != nullptr; }
    //! Keeps the core alive across enqueue()'s signals, whose slots may delete the executor (and
    //! with it the last owner of the core); free when nobody listens to them.
    std::shared_ptr<ExecutorCore> guard()
    {
        return listens(PendingCountChanged) || listens(WorkerCountChanged) ? shared_from_this() : nullptr;
    }
    QString workerName(int index) const { return prefix + u'_' + QString::number(index); }

    //! The signals emitted per task; emitting one nobody listens to still costs a call into
    //! QMetaObject::activate, so the executor counts listeners (connectNotify) and skips those.
    enum Signal {
        PendingCountChanged,
        ActiveCountChanged,
        TaskStarted,
        TaskFinished,
        TaskFailed,
        TaskCanceled,
        Idle,
        WorkerCountChanged,
        SignalCount
    };
    static int signalOf(const QMetaMethod& method);
    bool listens(Signal signal) const { return q && m_listeners[signal].load(std::memory_order_relaxed) > 0; }
    void countListener(const QMetaMethod& method, int delta);

    //! For the QML module: the core of \a executor, and whether its task \a taskId still waits to
    //! start (queued, or submitted from another thread and not taken yet). Executor thread; the
    //! newest tasks are looked at first, so a task just submitted is found at once.
    static ExecutorCore* of(TaskPoolExecutor* executor) { return executor->d.get(); }
    bool isWaiting(quint64 taskId)
    {
        for (Job* job = m_tail; job; job = job->prev) {
            if (job->id == taskId)
                return true;
        }
        std::lock_guard lock(m_incomingMutex);
        return std::any_of(m_incoming.begin(), m_incoming.end(), [taskId](Job* job) { return job->id == taskId; });
    }

    TaskPoolExecutor* q; // null once the executor object is gone: no more signals
    QThread* const thread;
    int maxWorkers;
    QString prefix;
    const QString defaultPrefix;
    int pending = 0;
    int active = 0;
    int workerCount = 0;
    std::atomic<bool> shutdown { false };
    std::vector<std::coroutine_handle<>> shutdownWaiters;

private:
    void accept(Job* job); // queued, owned by this executor
    void push(Job* job);
    Job* popFront();
    void unlink(Job* job);
    void drop(Job* job);
    void spawn();
    void wakeOrSpawn();
    void report(Job* job);
    void checkIdle();
    void emitPendingCountChanged()
    {
        if (listens(PendingCountChanged))
            Q_EMIT q->pendingCountChanged(pending);
    }
    void releaseIdleWorkers();

    Job* m_head = nullptr;
    Job* m_tail = nullptr;
    std::vector<Worker*> m_workers; // by index; null where no worker; as long as the most workers so far
    std::size_t m_firstFree = 0; // no free index below it
    std::vector<Worker*> m_idle;
    bool m_busy = false;
    bool m_idleDue = false; // idle() was due while a task's terminal signal was being emitted
    int m_reporting = 0; // report() calls on the stack
    std::array<std::atomic<int>, SignalCount> m_listeners {};

    std::mutex m_incomingMutex;
    std::vector<Job*> m_incoming;
    bool m_incomingPosted = false;
};

} // namespace TaskPool::detail
