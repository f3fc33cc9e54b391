// SPDX-License-Identifier: MIT
#pragma once

#define TASKPOOL_INSIDE_PUBLIC_HEADER
#include <taskpool/detail/futurestate.h>
#include <taskpool/detail/job.h>
#undef TASKPOOL_INSIDE_PUBLIC_HEADER

#include <taskpool/errors.h>

#include <QFuture>
#include <QPointer>
#include <QThread>

#include <exception>
#include <memory>

namespace TaskPool {

class TaskPoolExecutor;
template <typename T> class Future;

namespace detail {
    template <typename T> struct Within;

    //! Whether a pool job has its final outcome, readable in this thread. A cancel made through a
    //! plain QFuture copy (Qt has no hook for it) is honoured here, when it is first seen; a settle
    //! in progress in another thread is waited out.
    template <typename T> bool settledNow(Job& job, const QFuture<T>& future)
    {
        if (job.hasOutcome())
            return true;
        if (!future.isCanceled()) // cancelled through a copy (or, a moment ago, failed)
            return false;
        job.cancel();
        return true;
    }

    //! The outcome of a settled pool job, as it was recorded when it settled.
    template <typename T> T resultOfSettled(const Job& job, const QFuture<T>& future)
    {
        switch (job.settledAs()) {
        case Outcome::Cancelled:
            throw CancelledError();
        case Outcome::Failed:
            std::rethrow_exception(failure(future, true));
        case Outcome::Succeeded:
            break;
        }
        if constexpr (!std::is_void_v<T>)
            return future.result();
    }

    //! Awaits a pool future through its job (no watcher), any other QFuture through a watcher.
    template <typename T> class FutureAwaiter : public JobAwaiter {
    public:
        FutureAwaiter(const QFuture<T>& future, JobRef job) :
            JobAwaiter(std::move(job)), m_future(future), m_watching(m_job ? nullptr : new WatcherAwaiter<T>(future))
        {
        }
        bool await_ready() const { return m_watching ? m_watching->await_ready() : settledNow(*m_job, m_future); }
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
            return resultOfSettled(*m_job, m_future);
        }

    private:
        QFuture<T> m_future;
        std::unique_ptr<WatcherAwaiter<T>> m_watching;
    };

    //! Who resumes a coroutine awaiting Future::within(): the future settling or the context going,
    //! whichever comes first; nobody once the awaiter is gone.
    struct WithinState {
        std::coroutine_handle<> handle;
        QThread* thread;
        bool fired = false;
        void fire()
        {
            if (!std::exchange(fired, true))
                resumeLater(handle, thread);
        }
    };

    template <typename F> Detached fireWhenSettled(F future, std::shared_ptr<WithinState> state)
    {
        try {
            co_await future;
        } catch (...) {
            // the outcome is read by the awaiter
        }
        state->fire();
    }

    template <typename T> class WithinAwaiter {
    public:
        template <typename F>
        WithinAwaiter(const F& future, const QObject* context) : m_future(future), m_context(context)
        {
        }
        WithinAwaiter(const WithinAwaiter&) = delete;
        WithinAwaiter& operator=(const WithinAwaiter&) = delete;
        ~WithinAwaiter() { release(); }
        bool await_ready() const { return !m_context; }
        void await_suspend(std::coroutine_handle<> handle)
        {
            m_state = std::make_shared<WithinState>(WithinState { handle, QThread::currentThread() });
            m_connection = QObject::connect(m_context, &QObject::destroyed, [state = m_state] { state->fire(); });
            fireWhenSettled(m_future, m_state);
        }
        T await_resume()
        {
            release();
            if (!m_context)
                throw CancelledError(); // the context is gone: nothing after the co_await runs
            auto outcome = m_future.operator co_await();
            if (!outcome.await_ready())
                throw std::logic_error("Future::within(): resumed before the future settled");
            return outcome.await_resume();
        }

    private:
        void release()
        {
            QObject::disconnect(m_connection);
            if (m_state)
                m_state->fired = true; // a later settle resumes nobody
        }
        Future<T> m_future;
        QPointer<const QObject> m_context;
        std::shared_ptr<WithinState> m_state;
        QMetaObject::Connection m_connection;
    };

    //! What Future::within() returns: QCoro copies what it awaits, which an awaiter cannot be.
    template <typename T> struct Within {
        Future<T> future;
        const QObject* context;
        WithinAwaiter<T> operator co_await() const { return WithinAwaiter<T>(future, context); }
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
 *   awaited through a watcher. Awaiting copies the result: it never empties the future that
 *   other copies share, which is why T must be copyable (use a std::shared_ptr for move-only data).
 * - cancel() cancels *at once*: a queued task never starts, a running task's future finishes
 *   immediately while its coroutine is told through its QPromise (if it took one) and otherwise
 *   runs on with its result discarded, keeping its worker slot until it really ends.
 *   A cancel made through a plain QFuture copy or a QFutureWatcher (Qt offers no hook for it) is
 *   honoured as soon as anything looks at the future through this class (done(), cancelled(),
 *   exception(), co_await), when the executor reaches the task (it never starts), or when its
 *   coroutine ends, whichever comes first.
 * - Whatever Qt's API shows (isFinished(), a returned waitForFinished(), a watcher's finished())
 *   already holds of done(), cancelled(), exception() and co_await, in every thread.
 * - result(), results() and waitForFinished() block, as QFuture's do; in the executor's own thread
 *   a pool future that has not settled could then never settle (the thread that would run the task
 *   is the one blocked), so there they throw std::logic_error instead of hanging. `co_await` it, or
 *   use a QFutureWatcher or `.then()`. (A plain QFuture copy cannot tell: it blocks for ever.)
 *
 * All members are thread-safe; a coroutine awaiting from another thread is resumed in its own
 * thread (which needs a running event loop).
 */
template <typename T> class Future : public QFuture<T> {
    static_assert(detail::readableResult<T>, TASKPOOL_READABLE_RESULT_MESSAGE);

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
    bool cancelled() const
    {
        return m_job ? done() && m_job->settledAs() == detail::Outcome::Cancelled : detail::isCancelled<T>(*this);
    }
    //! True when the future has its final outcome: a result, an exception or a cancellation.
    bool done() const { return m_job ? detail::settledNow<T>(*m_job, *this) : detail::isSettled<T>(*this); }
    //! The task's exception; null when it succeeded or has not settled yet.
    /*! \throws CancelledError when the future was cancelled (as Python's Future.exception()). */
    std::exception_ptr exception() const
    {
        if (!done())
            return nullptr;
        if (cancelled())
            throw CancelledError();
        if (m_job)
            return m_job->settledAs() == detail::Outcome::Failed ? detail::failure<T>(*this, true) : nullptr;
        return detail::failure<T>(*this);
    }

    //! The identifier of the task in its executor's lifecycle signals; 0 for a foreign future.
    quint64 taskId() const { return m_job ? m_job->id : 0; }

    //! QFuture::result(), refusing to deadlock (see the class description).
    /*! \throws std::logic_error in the executor's thread while the task has not settled. */
    T result() const requires(!std::is_void_v<T>)
    {
        waitToRead();
        return QFuture<T>::result();
    }
    //! QFuture::results(), refusing to deadlock (see the class description).
    QList<T> results() const requires(!std::is_void_v<T>)
    {
        waitToRead();
        return QFuture<T>::results();
    }
    //! QFuture::resultAt(), refusing to deadlock (see the class description).
    T resultAt(int index) const requires(!std::is_void_v<T>)
    {
        waitToRead();
        return QFuture<T>::resultAt(index);
    }
    //! QFuture::takeResult(), refusing to deadlock (see the class description). It empties the
    //! result that every copy of this future shares; prefer result() or co_await.
    T takeResult() requires(!std::is_void_v<T>)
    {
        waitToRead();
        return QFuture<T>::takeResult();
    }
    //! QFuture::waitForFinished(), refusing to deadlock (see the class description).
    void waitForFinished()
    {
        checkBlocking();
        QFuture<T>::waitForFinished();
    }
    //! QFuture's result iteration, refusing to deadlock (see the class description): iterating
    //! waits for each result.
    auto begin() const requires(!std::is_void_v<T>)
    {
        checkBlocking();
        return QFuture<T>::begin();
    }
    //! QFuture::constBegin(), refusing to deadlock as begin() does.
    auto constBegin() const requires(!std::is_void_v<T>)
    {
        checkBlocking();
        return QFuture<T>::constBegin();
    }

    //! Awaits the outcome: see the class description.
    detail::FutureAwaiter<T> operator co_await() const { return detail::FutureAwaiter<T>(*this, m_job); }

    //! Awaits the outcome as long as \a context lives: `co_await future.within(this)`.
    /*!
     * Once \a context is destroyed, the awaiting coroutine resumes (from the event loop, soon
     * after) with CancelledError instead of the outcome, also when the future settled in between,
     * so code after the `co_await` never runs for a dead object; the future itself is untouched
     * (cancel it too, or submit with SubmitOptions::context). \a context must live in the awaiting
     * coroutine's thread.
     */
    detail::Within<T> within(const QObject* context) const { return detail::Within<T> { *this, context }; }

private:
    friend class TaskPoolExecutor;
    Future(const QFuture<T>& future, detail::JobRef job) : QFuture<T>(future), m_job(std::move(job)) { }

    //! checkBlocking(), then for a pool future its end: Qt 6.4's result() checks for an exception,
    //! then, under its lock, returns at once for a finished future, and reads a result a failure
    //! settled between the two has not got (it asserts in a debug Qt). waitForFinished() rethrows
    //! the failure instead. A pool future has one result, so waiting for its end loses nothing.
    void waitToRead() const
    {
        checkBlocking();
        if (m_job)
            QFuture<T>(*this).waitForFinished(); // a copy: Qt's waitForFinished() is not const
    }
    void checkBlocking() const
    {
        if (m_job && m_job->thread == QThread::currentThread() && !done())
            throw std::logic_error("TaskPool: blocking on a pool future in its executor's thread would never return "
                                   "(that thread runs the task); co_await the future, or use a QFutureWatcher or "
                                   ".then()");
    }

    detail::JobRef m_job;
};

namespace detail {

    // The waiting helpers' view of a Future: through it, a pool future's plain QFuture cancel is
    // honoured and its recorded outcome read (they take QFuture<T> too, which has neither).
    template <typename T> bool isSettled(const Future<T>& future)
    {
        return future.done();
    }
    template <typename T> bool isFailed(const Future<T>& future)
    {
        return future.done() && !future.cancelled() && future.exception();
    }

} // namespace detail

} // namespace TaskPool
