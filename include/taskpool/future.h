// SPDX-License-Identifier: MIT
#pragma once

#define TASKPOOL_INSIDE_PUBLIC_HEADER
#include <taskpool/detail/futurestate.h>
#include <taskpool/detail/job.h>
#undef TASKPOOL_INSIDE_PUBLIC_HEADER

#include <taskpool/errors.h>

#include <QFuture>

#include <exception>

namespace TaskPool {

class TaskPoolExecutor;

namespace detail {

    //! Awaits a pool future through its job (no watcher), any other QFuture through a watcher.
    template <typename T> class FutureAwaiter : public JobAwaiter {
    public:
        FutureAwaiter(const QFuture<T>& future, JobRef job) :
            JobAwaiter(std::move(job)), m_future(future), m_watching(m_job ? nullptr : new WatcherAwaiter<T>(future))
        {
        }
        bool await_ready() const { return m_watching ? m_watching->await_ready() : JobAwaiter::await_ready(); }
        bool await_suspend(std::coroutine_handle<> handle)
        {
            if (!m_watching)
                return JobAwaiter::await_suspend(handle);
            m_watching->await_suspend(handle);
            return true;
        }
        T await_resume()
        {
            if (m_watching)
                return m_watching->await_resume();
            JobAwaiter::await_resume();
            return resultOf(m_future);
        }

    private:
        QFuture<T> m_future;
        std::unique_ptr<WatcherAwaiter<T>> m_watching;
    };

} // namespace detail

//! The future of a task submitted to a TaskPoolExecutor: a QFuture<T> with Python's Future API.
/*!
 * It *is* a QFuture<T>: QFutureWatcher, `.then()`, `.onFailed()`, `.onCanceled()` and QCoro take
 * it as it is; `QtFuture::whenAll/whenAny` take it sliced to `QFuture<T>`. On top of that:
 *
 * - `co_await future` returns the result, rethrows the task's exception, or throws
 *   CancelledError. It never hangs and never reads a missing result. A pool future wakes its
 *   awaiters itself (no QFutureWatcher per await); a Future made from any other QFuture is
 *   awaited through a watcher.
 * - cancel() cancels *at once*: a queued task never starts, a running task's future finishes
 *   immediately while its coroutine is told through its QPromise (if it took one) and otherwise
 *   runs on with its result discarded, keeping its worker slot until it really ends.
 *   A cancel made through a plain QFuture copy or a QFutureWatcher (Qt offers no hook for it) is
 *   honoured when the executor reaches the task (it never starts) or when its coroutine ends.
 *
 * All members are thread-safe; a coroutine awaiting from another thread is resumed in its own
 * thread (which needs a running event loop).
 */
template <typename T> class Future : public QFuture<T> {
public:
    //! The result type, as QFuture<T>'s.
    using value_type = T;

    //! An invalid future (as QFuture()).
    Future() = default;
    //! Wraps any QFuture, so that it can be awaited and queried like a pool future.
    Future(const QFuture<T>& future) : QFuture<T>(future) { }

    //! Cancels the task (see the class description); false when it had already settled.
    bool cancel()
    {
        if (m_job)
            return m_job->cancel();
        if (detail::isSettled(*this))
            return false;
        QFuture<T>::cancel();
        return true;
    }
    //! True when the future was cancelled; unlike QFuture::isCanceled(), false when it failed.
    bool cancelled() const { return detail::isCancelled<T>(*this); }
    //! True when the future has its final outcome: a result, an exception or a cancellation.
    bool done() const { return m_job ? m_job->isSettled() : detail::isSettled<T>(*this); }
    //! The task's exception; null when it succeeded or has not settled yet.
    /*! \throws CancelledError when the future was cancelled (as Python's Future.exception()). */
    std::exception_ptr exception() const
    {
        if (!done())
            return nullptr;
        if (cancelled())
            throw CancelledError();
        return detail::failure<T>(*this);
    }

    //! The identifier of the task in its executor's lifecycle signals; 0 for a foreign future.
    quint64 taskId() const { return m_job ? m_job->id : 0; }

    //! Awaits the outcome: see the class description.
    detail::FutureAwaiter<T> operator co_await() const { return detail::FutureAwaiter<T>(*this, m_job); }

private:
    friend class TaskPoolExecutor;
    Future(const QFuture<T>& future, detail::JobRef job) : QFuture<T>(future), m_job(std::move(job)) { }

    detail::JobRef m_job;
};

} // namespace TaskPool
