// SPDX-License-Identifier: MIT
#pragma once
#ifndef TASKPOOL_INSIDE_PUBLIC_HEADER
#error "Do not include taskpool/detail headers directly; include <taskpool/taskpool.h>"
#endif

#include <taskpool/detail/job.h>
#include <taskpool/future.h>

#include <QCoro/QCoroTask>
#include <QFutureInterface>
#include <QPromise>

#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <variant>

namespace TaskPool::detail {

// ---- what a task returns, and what awaiting it gives --------------------------------------------

//! Anything a QCoro::Task can co_await: awaitables, and the Qt types QCoro adapts through its
//! documented awaiter_type extension point (QFuture, QNetworkReply *, QTimer *, ...).
template <typename T>
concept QCoroAwaitable = QCoro::Awaitable<std::remove_cvref_t<T>> || QFutureType<T> || requires
{
    typename QCoro::detail::awaiter_type<std::remove_cvref_t<T>>::type;
};

template <typename A> struct AwaitResult {
    using type = std::decay_t<decltype(std::declval<A&>().await_resume())>;
};
template <typename A>
requires requires(A a)
{
    a.operator co_await();
}
struct AwaitResult<A> {
    using type = typename AwaitResult<decltype(std::declval<A&>().operator co_await())>::type;
};
template <typename A>
requires requires
{
    typename QCoro::detail::awaiter_type<A>::type;
}
struct AwaitResult<A> {
    using type = typename AwaitResult<typename QCoro::detail::awaiter_type<A>::type>::type;
};
template <QFutureType A> struct AwaitResult<A> {
    using type = typename FutureValue<A>::type;
};
template <typename T> struct AwaitResult<QCoro::Task<T>> {
    using type = T;
};

//! What `co_await`ing (or, for a plain value, just taking) an R gives.
template <typename R> struct ValueOf {
    using type = R;
};
template <typename R>
requires QCoroAwaitable<R>
struct ValueOf<R> {
    using type = typename AwaitResult<std::remove_cvref_t<R>>::type;
};

// ---- the QPromise<T>& first-parameter convention ------------------------------------------------

template <typename F> struct Signature {
};
template <typename F>
requires requires
{
    &F::operator();
}
struct Signature<F> : Signature<decltype(&F::operator())> { };
template <typename R, typename... A> struct Signature<R (*)(A...)> {
    using args = std::tuple<A...>;
};
template <typename R, typename... A> struct Signature<R (*)(A...) noexcept> : Signature<R (*)(A...)> {
};
template <typename R, typename C, typename... A> struct Signature<R (C::*)(A...)> : Signature<R (*)(A...)> {
};
template <typename R, typename C, typename... A> struct Signature<R (C::*)(A...) const> : Signature<R (*)(A...)> {
};
template <typename R, typename C, typename... A> struct Signature<R (C::*)(A...) noexcept> : Signature<R (*)(A...)> {
};
template <typename R, typename C, typename... A>
struct Signature<R (C::*)(A...) const noexcept> : Signature<R (*)(A...)> {
};

template <typename Tuple> struct PromiseOfFirst {
};
template <typename T, typename... A> struct PromiseOfFirst<std::tuple<QPromise<T>&, A...>> {
    using type = T;
};

//! The T of a callable whose first parameter is QPromise<T>& (as with QtConcurrent::run).
template <typename F>
concept TakesPromise = !std::is_member_function_pointer_v<F> && requires
{
    typename PromiseOfFirst<typename Signature<F>::args>::type;
};

// ---- the work a job runs ------------------------------------------------------------------------

//! fn(args...), called with the decayed copies moved in (as std::thread does).
template <typename Fn, typename... Args> struct Call {
    Fn fn;
    std::tuple<Args...> args;
    decltype(auto) invoke()
    {
        return std::apply([this](Args&... a) -> decltype(auto) { return std::invoke(std::move(fn), std::move(a)...); },
                          args);
    }
    using Return = decltype(std::declval<Call&>().invoke());
    using Value = typename ValueOf<Return>::type;
};

//! fn(promise, args...) for a callable that reports through a QPromise<T>&.
template <typename T, typename Fn, typename... Args> struct PromiseCall {
    Fn fn;
    std::tuple<Args...> args;
    std::optional<QPromise<T>> promise {}; // made when the task starts, dropped after it settled
    decltype(auto) invoke()
    {
        return std::apply(
            [this](Args&... a) -> decltype(auto) { return std::invoke(std::move(fn), *promise, std::move(a)...); },
            args);
    }
};

//! An awaitable handed over as it is.
template <typename A> struct Await {
    A awaitable;
    A&& invoke() { return std::move(awaitable); }
};

template <typename Work> inline constexpr bool isPromiseCall = false;
template <typename T, typename Fn, typename... Args>
inline constexpr bool isPromiseCall<PromiseCall<T, Fn, Args...>> = true;

// ---- jobs whose outcome is a QFuture ------------------------------------------------------------

//! The text of an exception, for signals and logs.
TASKPOOL_EXPORT QString describe(const std::exception_ptr& error);

//! A job whose outcome goes into a QFuture<T>: what submit() creates.
template <typename T> class FutureJob : public Job {
public:
    using value_type = T;
    QFuture<T> future() const { return m_fi.future(); }
    bool isCancelRequested() const noexcept override { return m_fi.isCanceled(); }
    Outcome outcome(QString* message) const override
    {
        if (message && settledAs() == Outcome::Failed)
            *message = describe(failure(future(), true));
        return settledAs();
    }

protected:
    // Started at submission, as QtConcurrent::run does: Qt's blocking waits (result(),
    // waitForFinished()) only wait for a started future. The executor's taskStarted signal tells
    // when the task really starts.
    FutureJob() { m_fi.reportStarted(); }
    void started() { }
    void markCancelled() override
    {
        m_fi.cancel();
        this->record(Outcome::Cancelled);
    }
    void finishStore() override { m_fi.reportFinished(); }
    void settleFailed(std::exception_ptr error)
    {
        if (beginSettle()) {
            m_fi.reportException(error);
            recordFromStore();
            endSettle();
        }
    }
    template <typename... U> void settleResult(U&&... value)
    {
        if (beginSettle()) {
            try {
                (m_fi.reportResult(std::forward<U>(value)), ...);
            } catch (...) {
                // The result's copy or move threw, or Qt's result store could not allocate: the
                // future fails with that exception rather than staying half-settled.
                m_fi.reportException(std::current_exception());
            }
            recordFromStore();
            endSettle();
        }
    }
    //! What the store holds decides: a QPromise task may have set an exception itself, and Qt drops
    //! results and exceptions reported after a cancel made through a plain QFuture copy.
    void recordFromStore()
    {
        if (m_fi.hasException())
            this->record(Outcome::Failed);
        else if (std::is_void_v<T> ? m_fi.isCanceled() : m_fi.resultCount() == 0)
            this->record(Outcome::Cancelled);
        else
            this->record(Outcome::Succeeded);
    }

    //! The producer side of the future. Like QPromise, it drops the continuation (`.then()`,
    //! `QtFuture::whenAll`...) when it goes: the continuation may own copies of this very future,
    //! a cycle that would otherwise keep both alive.
    struct Producer : QFutureInterface<T> {
        ~Producer() { this->cleanContinuation(); }
    };
    // Not Pending: Qt never clears that flag on a future cancelled before it started, and its
    // blocking waits would then wait forever.
    mutable Producer m_fi;
};

//! The coroutine a task's job awaits in place of what the task returned: a QCoro::Task as it is,
//! anything else awaitable wrapped in one (one more frame, only for those).
template <typename V, typename R> QCoro::Task<V> awaitIn(R awaitable)
{
    if constexpr (std::is_void_v<V>)
        co_await std::move(awaitable);
    else
        co_return co_await std::move(awaitable);
}

template <typename V, typename R> QCoro::Task<V> asTask(R&& returned)
{
    if constexpr (std::is_same_v<std::remove_cvref_t<R>, QCoro::Task<V>>)
        return std::move(returned);
    else if constexpr (QFutureType<R>)
        return awaitIn<V>(Future<V>(std::forward<R>(returned))); // never one watcher for a pool future
    else
        return awaitIn<V>(std::remove_cvref_t<R>(std::forward<R>(returned)));
}

//! Runs a Work (what to call or await) and settles the outcome store of Base (FutureJob, ValueJob).
/*!
 * No coroutine frame of its own: a plain callable runs inside run(); a task's coroutine gets the
 * worker as its continuation, and the worker collects the outcome (finishRun()) when it resumes.
 */
template <typename Base, typename Work> class TaskJob final : public Base {
    using T = typename Base::value_type;
    using R = decltype(std::declval<Work&>().invoke());
    using V = typename ValueOf<R>::type;
    static constexpr bool awaits = QCoroAwaitable<R>;

public:
    template <typename... A> explicit TaskJob(A&&... a) : m_work(Work { std::forward<A>(a)... }) { }

    void discard() override
    {
        this->settleCancelled();
        m_work.reset();
    }

    bool run(std::coroutine_handle<> worker) override
    {
        this->started();
        try {
            if constexpr (isPromiseCall<Work>)
                m_work->promise.emplace(this->m_fi);
            if constexpr (awaits) {
                m_running = asTask<V>(m_work->invoke()); // its synchronous start happens here
                auto awaiter = m_running.operator co_await();
                if (!awaiter.await_ready()) {
                    awaiter.await_suspend(worker);
                    return true;
                }
                finishRun();
                return false;
            } else if constexpr (std::is_void_v<R>) {
                m_work->invoke();
                finish();
            } else {
                finish(m_work->invoke());
            }
        } catch (...) {
            settleThrown();
        }
        m_work.reset(); // the pool keeps no reference to callable or arguments
        return false;
    }

    void finishRun() override
    {
        if constexpr (awaits) {
            try {
                auto awaiter = m_running.operator co_await();
                if constexpr (std::is_void_v<V>) {
                    awaiter.await_resume(); // rethrows what the task threw
                    finish();
                } else {
                    finish(awaiter.await_resume());
                }
            } catch (...) {
                settleThrown();
            }
            m_running = QCoro::Task<V>(); // frees the finished coroutine
        }
        m_work.reset(); // after the coroutine: a lambda coroutine's captures live in the callable
    }

private:
    template <typename... U> void finish(U&&... value)
    {
        if constexpr (isPromiseCall<Work>)
            settleFromPromise();
        else
            this->settleResult(std::forward<U>(value)...);
    }

    void settleFromPromise()
    {
        if constexpr (!std::is_void_v<T>) {
            if (!this->m_fi.isCanceled() && this->m_fi.resultCount() == 0)
                return this->settleFailed(
                    std::make_exception_ptr(std::logic_error("the task finished without reporting a result")));
        }
        this->settleResult();
    }

    //! Settles with the exception being handled: a CancelledError cancels the job.
    void settleThrown()
    {
        try {
            throw;
        } catch (const CancelledError&) {
            this->settleCancelled();
        } catch (...) {
            this->settleFailed(std::current_exception());
        }
    }

    std::optional<Work> m_work;
    [[no_unique_address]] std::conditional_t<awaits, QCoro::Task<V>, std::monostate> m_running;
};

} // namespace TaskPool::detail
