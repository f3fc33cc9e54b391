// SPDX-License-Identifier: MIT
#pragma once

#include "deadlines_p.h"
#include "keygate_p.h"
#include "ratewindow_p.h"
#include "taskqueue_p.h"

#include <taskpool/clock.h>
#include <taskpool/taskpool.h>

#include <QLoggingCategory>
#include <QThread>

#include <array>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <functional>
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
#define TASKPOOL_HOT [[gnu::always_inline]] inline // per task, on the path of every task
#else
#define TASKPOOL_TLS
#define TASKPOOL_HOT inline
#endif

namespace TaskPool::detail {

//! What a job needs beyond the common case: made before the job is published, only for a task that
//! takes a stop token or was given SubmitOptions, and deleted with the job.
struct JobControl {
    // Set before publication, read-only afterwards.
    std::optional<std::chrono::milliseconds> timeout;
    QString key;
    bool takesStop = false;
    QMetaObject::Connection context; // the context's destroyed() cancels the job
    // The executor's thread only, while the job runs.
    std::stop_source stop { std::nostopstate };
    std::unique_ptr<QObject> watcher; // a plain QFuture cancel stops the token too
};

//! The executor's state, and the life of its tasks (docs/task-life.md).
/*!
 * Every change of state is made whole first and reported after: a transition only posts its
 * signals to an outbox, which flush() empties in order once the state is consistent. A slot may
 * then do anything (submit, cancel, clear, change a limit, shut down, delete the executor, run a
 * nested event loop): it acts on a whole state, and what it posts is emitted after what was
 * posted before it. The scheduling policies (PriorityQueue, KeyGate, RateLimiter, Deadlines) know
 * nothing of signals; this class orchestrates them.
 *
 * The core outlives the TaskPoolExecutor object while work remains (every worker coroutine holds
 * it), which is how destroying the executor lets queued and running work finish. Everything but
 * the hand-over members (`m_incoming...`, `shutdown`, `thread`) belongs to the executor's thread.
 */
class ExecutorCore : public std::enable_shared_from_this<ExecutorCore> {
public:
    struct Worker;
    using TimeoutSet = Deadlines<Worker*>;
    struct Worker {
        int index;
        std::coroutine_handle<> idleHandle; // set while suspended waiting for work
        Job* job = nullptr; // the running task, when it was armed (it has a control or a timeout)
        std::optional<TimeoutSet::Entry> deadline; // its timeout, while armed
        std::chrono::milliseconds timeout {}; // the armed timeout, for the TimeoutError's message
        bool yieldDue = false; // it took in other threads' work: the event loop gets a turn next
    };

    ExecutorCore(TaskPoolExecutor* q, int maxWorkers, QString prefix);
    ~ExecutorCore()
    {
        QObject::disconnect(m_quitConnection);
        QObject::disconnect(m_homeFinishedConnection);
    }

    // Submission (the executor's thread, but for enqueueRemote()).
    void enqueue(Job* job);
    void enqueueRemote(Job* job);
    void takeIncoming();
    bool acceptIncoming(); // what other threads handed over, queued now; true if anything
    int pendingCount() const { return pending + m_remotePending.load(std::memory_order_acquire); }

    // A worker's life: take a job (counted running before anything is reported), run it, end it.
    Job* take(Worker& worker);
    bool shouldLeave(const Worker& worker) const;
    void park(Worker& worker, std::coroutine_handle<> handle);
    void watchCancel(Job* job); // a plain QFuture cancel of a running token-taking task stops it
    void end(Worker& worker, Job* job);
    void leave(Worker* worker);

    // Transitions from outside.
    void jobCancelled(Job* job); // its future settled cancelled, in this thread
    void beginShutdown(bool cancelFutures);
    int clear();
    void setMaxWorkers(int maxWorkers);
    void setPaused(bool paused);
    void setRateLimit(int starts, std::chrono::milliseconds window);
    void setKeyLimit(const QString& key, int limit);
    void setMaxPerKey(int limit);
    void setClock(std::shared_ptr<Clock> clock);
    static void releaseControls(Job* job); // the context connection and the watcher
    //! Connects to QCoreApplication::aboutToQuit().
    void watchQuit();
    //! Watches the end of the executor's thread \a home (its QThread may be deleted after).
    void watchHome(QThread* home);
    //! The application quits (aboutToQuit(), in the application's thread).
    void applicationQuits();
    //! Stops everything and waits for running tasks (quitTimeout), in the executor's thread.
    void finishAtQuit();
    //! The executor object is about to move to another thread (QEvent::ThreadChange, in this one).
    void beginMove();
    //! The executor's thread is the current one if it is moving here: for calls made in the new
    //! thread before its loop turned.
    void claimHome();
    //! The executor object is destroyed while moving: its work stays in the destroying thread.
    void claimHomeOnDestruction()
    {
        if (!thread.load(std::memory_order_acquire))
            arrive();
    }
    //! The executor object is destroyed: a due move is off (its work stays where it is).
    void abandonMove()
    {
        m_moveDue = false;
        updateThrottle();
    }
    //! Runs \a fn in the executor's thread: now when this is it, else posted there. Dropped while
    //! the executor moves: its first turn in the new thread takes in everything.
    template <typename Fn> void atHome(Fn fn)
    {
        QThread* home = thread.load(std::memory_order_acquire);
        // Its thread has ended: nothing else runs the core any more (and the QThread may be gone).
        if (home == QThread::currentThread() || m_homeFinished.load(std::memory_order_acquire))
            return fn();
        if (!home) {
            std::lock_guard lock(m_incomingMutex);
            if (!thread.load(std::memory_order_relaxed)) {
                m_whileMoving.emplace_back(std::move(fn)); // run on arrival
                return;
            }
            home = thread.load(std::memory_order_relaxed);
        }
        postTo(home, std::function<void()>(std::move(fn)));
    }
    static void postTo(QThread* home, std::function<void()> fn);
    //! \a job's context is being destroyed: cancels it, its reports left to the event loop.
    static void contextDestroyed(Job* job);

    bool hasWorker(int index) const { return size_t(index) < m_workers.size() && m_workers[index]; }
    bool hasQueued() const { return pending > 0; }
    int keyLimit(const QString& key) const { return m_localKeys.limit(key); }
    int maxPerKey() const { return m_localKeys.defaultLimit(); }
    int rateLimit() const { return m_localRate.limit(); }
    std::chrono::milliseconds rateWindow() const { return m_localRate.window(); }
    QString workerName(int index) const { return prefix + u'_' + QString::number(index); }
    //! For the QML module: whether task \a taskId still waits to start (submitted or queued).
    bool isWaiting(quint64 taskId);
    static ExecutorCore* of(TaskPoolExecutor* executor) { return executor->d.get(); }

    //! A coroutine waiting for the counts to drop (pendingBelow(), whenIdle()).
    struct CountWaiter {
        int pendingBelow; // 0: until idle
        std::coroutine_handle<> handle;
        QThread* thread = QThread::currentThread(); // where it awaits, resumed there (a move)
    };
    bool countsReached(const CountWaiter& waiter) const
    {
        return waiter.pendingBelow > 0 ? pendingCount() < waiter.pendingBelow : pendingCount() == 0 && active == 0;
    }
    void addCountWaiter(CountWaiter* waiter) { m_countWaiters.push_back(waiter); }
    void removeCountWaiter(CountWaiter* waiter) { std::erase(m_countWaiters, waiter); }

    //! The executor's signals. Emitting one nobody listens to still costs a call into
    //! QMetaObject::activate, so the executor counts listeners (connectNotify) and posts nothing for
    //! a signal without any.
    enum Signal : quint8 {
        PendingCountChanged,
        ActiveCountChanged,
        TaskStarted,
        TaskFinished,
        TaskFailed,
        TaskCanceled, // both spellings
        Idle,
        WorkerCountChanged,
        MaxWorkersChanged,
        IsShutdownChanged,
        PausedChanged,
        RateLimitChanged,
        RateLimitedChanged,
        MaxPerKeyChanged,
        SignalCount
    };
    static int signalOf(const QMetaMethod& method);
    bool listens(Signal signal) const { return m_listening.load(std::memory_order_relaxed) & (1u << signal); }
    void countListener(const QMetaMethod& method, int delta);
    //! The executor object is gone: nothing more is posted.
    void stopReporting() { m_listening.store(0, std::memory_order_relaxed); }
    //! Emits what was posted, in order; re-entrant (a slot's own transitions flush too). First it
    //! brings the derived rateLimited up to date, while a rate limit is set.
    TASKPOOL_HOT void flush()
    {
        if (!m_outbox.empty() | m_idleDue | m_rateActive | m_moveDue)
            flushSlow();
    }

    TaskPoolExecutor* q; // null once the executor object is gone: no more signals
    const QLoggingCategory& log = lcTaskPool(); // looked up once, not per task
    //! The executor's thread; null while it moves to another (moveToThread(), when idle).
    std::atomic<QThread*> thread;
    int maxWorkers;
    QString prefix;
    const QString defaultPrefix;
    int pending = 0; // queued and held
    int active = 0; // taken by a worker and not ended
    int workerCount = 0;
    std::atomic<bool> shutdown { false };
    std::vector<std::pair<std::coroutine_handle<>, QThread*>> shutdownWaiters; // resumed where they await
    std::optional<std::chrono::milliseconds> defaultTimeout;
    bool paused = false;
    bool rateLimited = false;
    std::atomic<int> quitTimeout { 5000 }; // ms the application's quit waits for running tasks (read there)

private:
    //! One signal to emit, with its arguments as they were when it was posted.
    struct Report {
        Signal signal;
        int value = 0;
        quint64 taskId = 0;
        QString text {};
        JobRef job {}; // the task whose start is reported
    };
    struct KeyState {
        JobQueue held; // tasks of the key held back, in start order (priority, then submission)
        int released = 0; // held tasks put back in the queue, each with a place of the key kept
    };

    //! Posts a signal, if anybody listens: the common case costs one load and a test.
    TASKPOOL_HOT void post(Signal signal, int value = 0, quint64 taskId = 0)
    {
        if (listens(signal))
            m_outbox.push_back({ signal, value, taskId });
    }
    void post(Signal signal, quint64 taskId, QString text, JobRef job = {})
    {
        if (listens(signal))
            m_outbox.push_back({ signal, 0, taskId, std::move(text), std::move(job) });
    }
    void flushSlow();
    void flushReports();
    bool readyToMove() const;
    void maybeMove(); // a due move is made once nothing runs
    void arrive(); // in the new thread
    void updateThrottle();
    //! Emits what was posted from the event loop (once, however often it is asked).
    void flushLater();
    void emitReport(const Report& report);

    void accept(Job* job);
    void acceptAll(const std::vector<Job*>& jobs);
    //! The first queued job that may start (its key has room); holds back jobs of full keys.
    Job* nextStartable()
    {
        Job* job = m_queue.top();
        if (!job || !job->control || job->control->key.isEmpty())
            return job;
        return nextStartableSlow(job);
    }
    Job* nextStartableSlow(Job* job);
    //! Takes a queued or held job out of the queues; its key gets back a candidate.
    TASKPOOL_HOT void dequeue(Job* job)
    {
        if (job->phase == Phase::Queued && !job->control) {
            --pending;
            m_queue.remove(job);
        } else {
            dequeueSlow(job);
        }
    }
    void dequeueSlow(Job* job);
    void refill(const QString& key); // moves held jobs back while the key has room for them
    void refillAll();
    void arm(Worker& worker, Job* job); // stop source, timeout
    void postStart(const Worker& worker, Job* job); // a start's three reports
    void disarm(Worker& worker);
    bool admitRate();
    void updateRateLimited();
    void timeOut();
    static void requestStop(Job* job);
    int dropQueued(); // every queued and held job, as a snapshot
    void drop(Job* job); // a job that will never start
    //! Its terminal signal, once settled (and nothing but a flag when nobody listens).
    TASKPOOL_HOT void report(Job* job)
    {
        constexpr quint32 terminal = 1u << TaskFinished | 1u << TaskFailed | 1u << TaskCanceled;
        if (job->reported || !job->isSettled())
            return;
        job->reported = true;
        if ((m_listening.load(std::memory_order_relaxed) & terminal) || log.isDebugEnabled())
            reportSlow(job);
    }
    void reportSlow(Job* job);
    void dispatch(); // wakes as many workers as queued work may use
    void wakeOrSpawn();
    void spawn();
    void releaseIdleWorkers();
    TASKPOOL_HOT void checkIdle()
    {
        if (!m_countWaiters.empty())
            notifyCountWaiters();
        if (m_busy && active == 0 && pendingCount() == 0) {
            m_busy = false;
            m_idleDue = listens(Idle); // emitted at the end of the outermost flush
        }
    }
    TASKPOOL_HOT void countsChanged()
    {
        if (!m_countWaiters.empty())
            notifyCountWaiters();
        post(PendingCountChanged, pendingCount());
    }
    void notifyCountWaiters();

    std::shared_ptr<Clock> m_clock;
    PriorityQueue m_queue;
    std::map<QString, KeyState> m_keys; // keys with held or released tasks
    // The limits of this executor; the core asks them only through their interfaces, so that a
    // gate or limiter shared with other processes can take their place.
    LocalKeyGate m_localKeys;
    LocalRateWindow m_localRate;
    KeyGate* m_keyGate = &m_localKeys;
    RateLimiter* m_rateLimiter = &m_localRate;
    std::unique_ptr<Clock::Alarm> m_rateAlarm;
    QMetaObject::Connection m_quitConnection; // to aboutToQuit(): cut when the core goes
    QMetaObject::Connection m_homeFinishedConnection; // to its thread's finished()
    std::atomic<bool> m_homeFinished { false }; // its thread ended (the QThread may be gone)
    TimeoutSet m_timeouts;
    std::vector<CountWaiter*> m_countWaiters;
    std::vector<Worker*> m_workers; // by index; null where no worker; as long as the most workers so far
    std::size_t m_firstFree = 0; // no free index below it
    std::vector<Worker*> m_idle;
    bool m_busy = false;
    quint32 m_arrivals = 0; // jobs taken in so far (Job::arrival)
    std::vector<Report> m_outbox;
    std::size_t m_outHead = 0; // m_outbox[m_outHead..] is still to emit
    bool m_flushing = false; // a flush is emitting
    int m_flushLevel = 0; // how deep in event processing it emits (loop level and ready-queue drains)
    bool m_idleDue = false; // it became idle: idle() ends the outermost flush
    int m_deferring = 0; // reports wait for the event loop (a context is being destroyed)
    bool m_flushPosted = false; // a flush from the event loop is due
    bool m_deferredToLoop = false; // a context's reports wait: every flush until then is the loop's
    bool m_moveDue = false; // the object moved to another thread: the executor follows once nothing runs
    std::vector<std::function<void()>> m_whileMoving; // told while moving (m_incomingMutex): run on arrival
    bool m_rateActive = false; // a rate limit is set, or rateLimited still says so
    bool m_throttled = false; // paused, or a rate limit is set: take() looks at either only then
    std::mutex m_listenersMutex;
    std::array<int, SignalCount> m_listeners {};
    std::atomic<quint32> m_listening { 0 }; // a bit per signal with listeners

    std::mutex m_incomingMutex;
    std::vector<Job*> m_incoming; // submitted from other threads, not taken in yet
    std::atomic<int> m_remotePending { 0 }; // their number, counted as pending from submit()'s return
    bool m_incomingPosted = false;
};

//! How many drains of this thread's ready queue are on its stack (src/scheduler.cpp): one more
//! than a flush saw means a slot is processing events (a worker was resumed inside its loop).
int drainDepth();

//! Starts the coroutine of \a worker (src/worker.cpp); it yields at once.
void startWorker(std::shared_ptr<ExecutorCore> core, ExecutorCore::Worker* worker);

//! The worker running a task's start in this thread, for TaskPoolExecutor::currentWorkerName().
struct CurrentWorker {
    const ExecutorCore* core = nullptr;
    int index = -1;
};
extern TASKPOOL_TLS thread_local CurrentWorker currentWorker; // see readyQueue's

} // namespace TaskPool::detail
