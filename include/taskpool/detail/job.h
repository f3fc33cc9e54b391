// SPDX-License-Identifier: MIT
#pragma once
#ifndef TASKPOOL_INSIDE_PUBLIC_HEADER
#error "Do not include taskpool/detail headers directly; include <taskpool/taskpool.h>"
#endif

#include <taskpool/detail/scheduler.h>
#include <taskpool/taskpool_export.h>

#include <QString>

#include <atomic>
#include <coroutine>
#include <exception>
#include <functional>
#include <stop_token>
#include <thread>

namespace QCoro {
template <typename T> class Task;
}

namespace TaskPool::detail {

class ExecutorCore;
struct JobQueue;
struct JobControl;

//! A coroutine suspended until a job settles. It lives in the awaiting coroutine's frame, so a
//! settling job allocates nothing to wake it.
struct Waiter {
    std::coroutine_handle<> handle;
    QThread* thread = nullptr;
    Waiter* prev = nullptr;
    Waiter* next = nullptr;
};

//! A lock for a few pointer moves. A std::mutex would add 40 bytes to every queued job, and the
//! lock is contended only when a job settles in one thread while another registers a waiter.
class SpinLock {
public:
    void lock() noexcept
    {
        while (m_locked.exchange(true, std::memory_order_acquire)) {
            while (m_locked.load(std::memory_order_relaxed))
                std::this_thread::yield();
        }
    }
    void unlock() noexcept { m_locked.store(false, std::memory_order_release); }

private:
    std::atomic<bool> m_locked { false };
};

//! How a job settled, for the executor's lifecycle signals.
enum class Outcome : quint8 { Succeeded, Failed, Cancelled };

//! Where a job is in its executor's life (see docs/task-life.md): submitted (handed over from
//! another thread, not yet taken in), queued, held back by its key, released (queued again, with a
//! place of its key kept for it), running (its worker's from the moment it is taken: the start is
//! reported only once the state is whole), ended.
enum class Phase : quint8 { Submitted, Queued, Held, Released, Running, Ended };

//! One unit of work of an executor, type-erased, intrusively reference-counted.
/*!
 * "Settled" is the future's view (its outcome is final: a result, an exception or a cancellation);
 * "ended" is the executor's view (the task's coroutine returned, its worker slot is free). A task
 * cancelled while running settles at once and ends later.
 */
class TASKPOOL_EXPORT Job {
public:
    Job();
    Job(const Job&) = delete;
    Job& operator=(const Job&) = delete;

    void ref() noexcept { m_refs.fetch_add(1, std::memory_order_relaxed); }
    void deref() noexcept
    {
        if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
            delete this;
    }

    bool isSettled() const noexcept { return m_state.load(std::memory_order_acquire) == Settled; }
    //! True when the job has settled or is settling; a settle that another thread is in the middle
    //! of (a few statements, no user code but a result's copy) is waited out first.
    bool hasOutcome() const noexcept
    {
        quint8 state;
        while ((state = m_state.load(std::memory_order_acquire)) == Settling)
            std::this_thread::yield();
        return state == Settled;
    }
    //! Registers \a waiter; false (and nothing registered) when the job has already settled.
    bool addWaiter(Waiter& waiter);
    //! Unregisters a waiter whose coroutine is destroyed before it was resumed.
    void removeWaiter(Waiter& waiter) noexcept;

    //! Cancels the job from any thread; false when it had already settled. A running task's stop
    //! token is then stopped in the executor's thread (handed over there from any other).
    bool cancel();
    //! Settles the job failed with \a error unless it has settled already (a timeout).
    virtual void fail(std::exception_ptr error) = 0;
    //! The stop token passed to the task; the first call makes its stop source. Executor thread.
    std::stop_token stopToken();

    //! Starts the task inside a worker whose coroutine is \a worker. True when the task's coroutine
    //! is still running: it resumes \a worker when it ends, and the worker then calls finishRun().
    virtual bool run(std::coroutine_handle<> worker) = 0;
    //! Collects the outcome of a task whose coroutine ended after run() returned true.
    virtual void finishRun() = 0;
    //! The job will never start: settle it cancelled and drop callable and arguments.
    virtual void discard() = 0;
    //! True when the job's future was cancelled through some copy of it (possibly a plain QFuture).
    virtual bool isCancelRequested() const noexcept = 0;
    //! A watcher of the job's QFuture calling \a onCancel when a plain QFuture copy cancels it (Qt's
    //! only hook for that); null for a job without a QFuture. Made only for tasks taking a token.
    virtual QObject* watchCancel(std::function<void()> onCancel) { return (void)onCancel, nullptr; }
    //! How the job settled and, when it failed, why. Only valid once settled.
    virtual Outcome outcome(QString* message = nullptr) const = 0;
    //! How the job settled, as recorded when it did: final, whatever later happens to its QFuture
    //! (Qt lets a plain QFuture::cancel() flag even a finished future canceled). Once settled.
    Outcome settledAs() const noexcept { return m_settledAs; }

    const quint64 id; // unique in the process, increasing: the order of submission
    //! The executor's thread: set before the job is published, and again if the executor moves
    //! to another thread while the job waits.
    std::atomic<QThread*> thread { nullptr };
    JobControl* control = nullptr; // the options beyond the common case; set before publication
    int priority = 0; // set before publication
    //! Executor bookkeeping: the order in which the executor took the job in (the order in which
    //! submit() returned), wrapping; compared as a difference.
    quint32 arrival = 0;

    // Executor bookkeeping; touched only in the executor's thread.
    ExecutorCore* core = nullptr;
    JobQueue* queue = nullptr; // where it waits to start; null once taken
    Job* prev = nullptr;
    Job* next = nullptr;
    Phase phase = Phase::Submitted;
    bool reported = false; // the executor reported this job's terminal signal
    bool startReported = false; // taskStarted was emitted: the task runs, even if cancelled since

protected:
    virtual ~Job()
    {
        if (control)
            destroy(control);
    }
    static void destroy(JobControl* control); // out of line: the type is the executor's

    //! Claims the right to settle the job: exactly one caller (completion or cancel) gets true.
    bool beginSettle() noexcept
    {
        quint8 expected = Open;
        return m_state.compare_exchange_strong(expected, Settling, std::memory_order_acq_rel);
    }
    //! Publishes the outcome recorded since beginSettle() and wakes every waiter. The job counts as
    //! settled before finishStore() runs, so whatever a waiter can see through Qt's API
    //! (QFuture::isFinished(), a returned waitForFinished()) already holds of the job.
    void endSettle();
    //! Marks the outcome store finished (QFutureInterface::reportFinished()), between publishing
    //! the outcome and resuming the waiters.
    virtual void finishStore() { }
    //! Records a cancellation in the outcome store (the QFuture); called between begin/endSettle.
    virtual void markCancelled() = 0;
    //! Records how the job settles; called between begin/endSettle.
    void record(Outcome outcome) noexcept { m_settledAs = outcome; }
    //! Settles the job cancelled, unless it has settled already.
    bool settleCancelled()
    {
        if (!beginSettle())
            return false;
        markCancelled();
        endSettle();
        return true;
    }

private:
    enum : quint8 { Open, Settling, Settled };
    std::atomic<int> m_refs { 1 };
    std::atomic<quint8> m_state { Open };
    Outcome m_settledAs = Outcome::Succeeded; // written while Settling, read once Settled
    SpinLock m_waitersLock;
    Waiter* m_waiters = nullptr;
};

//! An owning reference to a Job.
class JobRef {
public:
    JobRef() = default;
    explicit JobRef(Job* job) noexcept : m_job(job) { } // adopts a reference
    JobRef(const JobRef& other) noexcept : m_job(other.m_job)
    {
        if (m_job)
            m_job->ref();
    }
    JobRef(JobRef&& other) noexcept : m_job(std::exchange(other.m_job, nullptr)) { }
    JobRef& operator=(JobRef other) noexcept
    {
        std::swap(m_job, other.m_job);
        return *this;
    }
    ~JobRef()
    {
        if (m_job)
            m_job->deref();
    }
    Job* get() const noexcept { return m_job; }
    Job* operator->() const noexcept { return m_job; }
    Job& operator*() const noexcept { return *m_job; }
    explicit operator bool() const noexcept { return m_job != nullptr; }

private:
    Job* m_job = nullptr;
};

//! Awaits a job settling; the base of Future's awaiter.
class TASKPOOL_EXPORT JobAwaiter {
public:
    explicit JobAwaiter(JobRef job) noexcept : m_job(std::move(job)) { }
    JobAwaiter(const JobAwaiter&) = delete;
    JobAwaiter& operator=(const JobAwaiter&) = delete;
    ~JobAwaiter()
    {
        if (m_registered)
            m_job->removeWaiter(m_waiter);
    }
    bool await_ready() const noexcept { return m_job->isSettled(); }
    bool await_suspend(std::coroutine_handle<> handle);
    //! Only the settling job resumes a registered waiter, and it has unregistered it already.
    void await_resume() noexcept { m_registered = false; }

protected:
    JobRef m_job;
    Waiter m_waiter;
    bool m_registered = false;
};

} // namespace TaskPool::detail
