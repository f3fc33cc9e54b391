// SPDX-License-Identifier: MIT
#pragma once

#include <taskpool/taskpool.h>

#include <QHash>
#include <QLoggingCategory>
#include <QThread>
#include <QTimer>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <vector>

Q_DECLARE_LOGGING_CATEGORY(lcTaskPool)

#if defined(__GNUC__) || defined(__clang__)
#define TASKPOOL_TLS __attribute__((tls_model("initial-exec")))
#else
#define TASKPOOL_TLS
#endif

namespace TaskPool::detail {

//! What a job needs beyond the common case: made before the job is published, only for a task that
//! takes a stop token or was given SubmitOptions, and deleted with the job.
struct JobControl {
    // Set before publication, read-only afterwards (a cancel from another thread reads `owner`).
    std::weak_ptr<ExecutorCore> owner; // where a cancel from another thread is handed over
    std::optional<std::chrono::milliseconds> timeout;
    QString key;
    bool takesStop = false;
    QMetaObject::Connection context; // the context's destroyed() cancels the job
    // The executor's thread only, while the job runs.
    std::stop_source stop { std::nostopstate };
    std::unique_ptr<QObject> watcher; // a plain QFuture cancel stops the token too
};

//! Queued jobs in submission order: one per priority, and one per saturated key.
struct JobQueue {
    Job* head = nullptr;
    Job* tail = nullptr;
    bool bucket = false; // a priority's queue, erased once empty (the priority-0 one is kept)
};

//! The executor's state. It outlives the TaskPoolExecutor object while work remains (every worker
//! coroutine holds it), which is how destroying the executor lets queued and running work finish.
//! Everything but `incoming`, `shutdown` and `thread` belongs to the executor's thread.
class ExecutorCore : public std::enable_shared_from_this<ExecutorCore> {
public:
    using Clock = std::chrono::steady_clock;
    struct Worker;
    using Deadlines = std::multimap<Clock::time_point, Worker*>;
    struct Worker {
        int index;
        std::coroutine_handle<> idleHandle; // set while suspended waiting for work
        Job* job = nullptr; // the running task, when it was armed (it has a control or a timeout)
        std::optional<Deadlines::iterator> deadline; // its timeout, while armed
        std::chrono::milliseconds timeout {}; // the armed timeout, for the TimeoutError's message
    };

    ExecutorCore(TaskPoolExecutor* q, int maxWorkers, QString prefix);

    // Submission.
    void enqueue(Job* job); // executor thread
    void enqueue(std::span<Job* const> jobs); // executor thread; adopts a reference to each
    void enqueueRemote(Job* job); // any other thread
    void cancelRemote(JobRef job); // any other thread: hands a cancel over to this one
    void takeIncoming();

    // Worker life.
    Job* take(Worker& worker);
    bool shouldLeave(const Worker& worker) const;
    void start(Worker& worker, Job* job);
    void end(Worker& worker, Job* job);
    void watchCancel(Job* job); // a plain QFuture cancel of a running token-taking task stops it
    void leave(Worker* worker);
    void park(Worker& worker, std::coroutine_handle<> handle);

    void jobCancelled(Job* job);
    void beginShutdown(bool cancelFutures);
    void setMaxWorkers(int maxWorkers);
    bool hasWorker(int index) const { return size_t(index) < m_workers.size() && m_workers[index]; }
    bool hasQueued() const { return pending > 0; }

    // Scheduling controls.
    int clear();
    void setPaused(bool paused);
    void setRateLimit(int starts, std::chrono::milliseconds window);
    void setKeyLimit(const QString& key, int limit);
    void setMaxPerKey(int limit);
    int keyLimit(const QString& key) const { return m_keyLimits.value(key, maxPerKey); }
    static void releaseControls(Job* job); // the context connection and the watcher

    //! A coroutine waiting for the counts to drop (pendingBelow(), whenIdle()).
    struct CountWaiter {
        int pendingBelow; // 0: until idle
        std::coroutine_handle<> handle;
    };
    bool countsReached(const CountWaiter& waiter) const
    {
        return waiter.pendingBelow > 0 ? pending < waiter.pendingBelow : pending == 0 && active == 0;
    }
    void addCountWaiter(CountWaiter* waiter) { m_countWaiters.push_back(waiter); }
    void removeCountWaiter(CountWaiter* waiter) { std::erase(m_countWaiters, waiter); }
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
        bool found = false;
        forEachQueue([&](JobQueue& queue) {
            for (Job* job = queue.tail; job && !found; job = job->prev)
                found = job->id == taskId;
        });
        if (found)
            return true;
        std::lock_guard lock(m_incomingMutex);
        return std::any_of(m_incoming.begin(), m_incoming.end(), [taskId](Job* job) { return job->id == taskId; });
    }

    TaskPoolExecutor* q; // null once the executor object is gone: no more signals
    const QLoggingCategory& log = lcTaskPool(); // looked up once, not per task
    QThread* const thread;
    int maxWorkers;
    QString prefix;
    const QString defaultPrefix;
    int pending = 0;
    int active = 0;
    int workerCount = 0;
    std::atomic<bool> shutdown { false };
    std::vector<std::coroutine_handle<>> shutdownWaiters;
    std::optional<std::chrono::milliseconds> defaultTimeout;
    bool paused = false;
    bool throttled = false; // paused or rate-limited: take() looks at either only then
    int rateLimit = 0;
    std::chrono::milliseconds rateWindow { 1000 };
    bool rateLimited = false;
    int maxPerKey = std::numeric_limits<int>::max();

private:
    struct KeyState {
        int running = 0;
        JobQueue held; // queued tasks of the key, held back while it is saturated
    };

    void accept(Job* job); // queued, owned by this executor
    // The queue operations every task goes through are inline, with the common case (priority 0,
    // no key) first: what a task that uses no scheduling control pays for them is a few compares.
    void link(JobQueue& queue, Job* job, Job* before)
    {
        job->queue = &queue;
        job->next = before;
        job->prev = before ? before->prev : queue.tail;
        (job->prev ? job->prev->next : queue.head) = job;
        (before ? before->prev : queue.tail) = job;
    }
    void push(Job* job)
    {
        if (job->priority != 0)
            return pushPrioritised(job);
        link(m_normal, job, nullptr);
        ++pending;
    }
    JobQueue& queueOf(int priority); // the queue of a priority, made when needed
    void pushPrioritised(Job* job);
    void pushInOrder(Job* job); // a held-back job back into its priority's queue
    void unlink(Job* job)
    {
        JobQueue& queue = *job->queue;
        (job->prev ? job->prev->next : queue.head) = job->next;
        (job->next ? job->next->prev : queue.tail) = job->prev;
        job->prev = job->next = nullptr;
        job->queue = nullptr;
        --pending;
        if (queue.bucket && !queue.head)
            m_byPriority.erase(job->priority);
    }
    //! The first queued job that may start, still queued; moves jobs of saturated keys aside.
    Job* nextStartable()
    {
        Job* job = m_normal.head;
        if (m_byPriority.empty() && (!job || !job->control || job->control->key.isEmpty()))
            return job;
        return nextStartableSlow();
    }
    Job* nextStartableSlow();
    JobQueue* topQueue();
    bool rateAllows();
    void recordStart();
    void setRateLimited(bool limited);
    void dispatch(); // wakes as many workers as queued work may use
    void keyEnded(const QString& key);
    void releaseHeld(const QString& key, KeyState& state);
    void arm(Worker& worker, Job* job); // timeout, watcher
    void disarm(Worker& worker);
    void timeOut();
    static void requestStop(Job* job);
    void dropAllQueued();
    void notifyCountWaiters();
    template <typename F> void forEachQueue(F&& f)
    {
        f(m_normal);
        for (auto& [priority, queue] : m_byPriority)
            f(queue);
        for (auto& [key, state] : m_keys)
            f(state.held);
    }
    void drop(Job* job);
    void spawn();
    void wakeOrSpawn();
    void report(Job* job);
    void checkIdle()
    {
        if (!m_countWaiters.empty())
            notifyCountWaiters();
        if (m_busy && active == 0 && pending == 0)
            becomeIdle();
    }
    void becomeIdle();
    void emitPendingCountChanged()
    {
        if (!m_countWaiters.empty())
            notifyCountWaiters();
        if (listens(PendingCountChanged))
            Q_EMIT q->pendingCountChanged(pending);
    }
    void releaseIdleWorkers();

    JobQueue m_normal; // priority 0: the common case needs no map look-up
    std::map<int, JobQueue, std::greater<>> m_byPriority; // the others, highest first
    std::map<QString, KeyState> m_keys; // keys with running or held tasks
    QHash<QString, int> m_keyLimits;
    std::deque<Clock::time_point> m_starts; // the last rateLimit starts, while a rate limit is set
    std::unique_ptr<QTimer> m_rateTimer;
    Deadlines m_deadlines;
    std::unique_ptr<QTimer> m_deadlineTimer;
    std::vector<CountWaiter*> m_countWaiters;
    std::vector<Worker*> m_workers; // by index; null where no worker; as long as the most workers so far
    std::size_t m_firstFree = 0; // no free index below it
    std::vector<Worker*> m_idle;
    bool m_busy = false;
    bool m_idleDue = false; // idle() was due while a task's terminal signal was being emitted
    int m_reporting = 0; // report() calls on the stack
    std::array<std::atomic<int>, SignalCount> m_listeners {};
    std::atomic<int> m_terminalListeners { 0 }; // of taskFinished, taskFailed and taskCancelled together

    std::mutex m_incomingMutex;
    std::vector<Job*> m_incoming;
    std::vector<JobRef> m_remoteCancels;
    bool m_incomingPosted = false;
};

} // namespace TaskPool::detail
