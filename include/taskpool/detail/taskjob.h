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
        const QFuture<T> f = future();
        if (auto error = failure(f)) {
            if (message)
                *message = describe(error);
            return Outcome::Failed;
        }
        return f.isCanceled() ? Outcome::Cancelled : Outcome::Succeeded;
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
        m_fi.reportFinished();
    }
    void settleFailed(std::exception_ptr error)
    {
        if (beginSettle()) {
            m_fi.reportException(error);
            m_fi.reportFinished();
            endSettle();
        }
    }
    template <typename... U> void settleResult(U&&... value)
    {
        if (beginSettle()) {
            (m_fi.reportResult(std::forward<U>(value)), ...);
            m_fi.reportFinished();
            endSettle();
        }
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

//! Runs a Work (what to call or await) and settles the outcome store of Base (FutureJob, ValueJob).
template <typename Base, typename Work> class TaskJob final : public Base {
    using T = typename Base::value_type;

public:
    template <typename... A> explicit TaskJob(A&&... a) : m_work(Work { std::forward<A>(a)... }) { }

    void discard() override
    {
        this->settleCancelled();
        m_work.reset();
    }

    QCoro::Task<void> run() override
    {
        this->started();
        try {
            if constexpr (isPromiseCall<Work>)
                m_work->promise.emplace(this->m_fi);
            using R = decltype(m_work->invoke());
            using V = typename ValueOf<R>::type;
            if constexpr (std::is_void_v<V>) {
                if constexpr (std::is_void_v<R>)
                    m_work->invoke();
                else if constexpr (QFutureType<R>)
                    co_await Future<void>(m_work->invoke());
                else
                    co_await m_work->invoke();
                finish();
            } else if constexpr (QFutureType<R>) {
                finish(co_await Future<V>(m_work->invoke()));
            } else if constexpr (QCoroAwaitable<R>) {
                finish(co_await m_work->invoke());
            } else {
                finish(m_work->invoke());
            }
        } catch (const CancelledError&) {
            this->settleCancelled();
        } catch (...) {
            this->settleFailed(std::current_exception());
        }
        m_work.reset(); // the pool keeps no reference to callable or arguments
    }

private:
    template <typename... V> void finish(V&&... value)
    {
        if constexpr (isPromiseCall<Work>)
            settleFromPromise();
        else
            this->settleResult(std::forward<V>(value)...);
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

    std::optional<Work> m_work;
};

} // namespace TaskPool::detail
