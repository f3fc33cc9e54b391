// SPDX-License-Identifier: MIT
#pragma once
#ifndef TASKPOOL_INSIDE_PUBLIC_HEADER
#error "Do not include taskpool/detail headers directly; include <taskpool/taskpool.h>"
#endif

#include <taskpool/detail/job.h>
#include <taskpool/detail/qcoro.h>
#include <taskpool/future.h>

#include <QCoro/QCoroTask>
#include <QFutureInterface>
#include <QFutureWatcher>
#include <QPromise>

#include <functional>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <variant>

// Collecting a task's outcome is on every task's path: the compiler is asked to inline what it calls
// (QCoro's result read among them), which it stops doing as the function grows.
#if defined(__GNUC__) && !defined(__clang__)
#define TASKPOOL_FLATTEN [[gnu::flatten]]
#else
#define TASKPOOL_FLATTEN
#endif

namespace TaskPool::detail {

// ---- what a task returns, and what awaiting it gives --------------------------------------------

//! Anything a QCoro::Task can co_await: awaitables, and the Qt types QCoro adapts through its
//! awaiter_type extension point (QFuture, QNetworkReply *, QTimer *, ...).
template <typename T>
concept QCoroAwaitable
    = QCoroAwaitableType<T> || QFutureType<T> || HasQCoroAwaiter<T> || isLazyCoroutine<std::remove_cvref_t<T>>;

template <typename A>
concept HasMemberCoAwait = requires(A& a)
{
    a.operator co_await();
};
template <typename A>
concept HasFreeCoAwait = requires(A& a)
{
    operator co_await(a);
};

//! What awaiting an A gives, as std::type_identity. One function with one order of precedence,
//! not a set of specialisations: a type may be several of these at once (a QFuture is adapted by
//! QCoro once <QCoro/QCoroFuture> is included; a Future has its own operator co_await), and
//! specialisations that both match would be ambiguous.
template <typename A> constexpr auto awaitResult()
{
    if constexpr (QFutureType<A>)
        return std::type_identity<typename FutureValue<A>::type> {}; // awaited as a Future
    else if constexpr (isQCoroTask<A> || isLazyTask<A> || isLazyCoroutine<A>)
        return std::type_identity<typename A::value_type> {};
    else if constexpr (HasMemberCoAwait<A>)
        return awaitResult<std::remove_cvref_t<decltype(std::declval<A&>().operator co_await())>>();
    else if constexpr (HasFreeCoAwait<A>)
        return awaitResult<std::remove_cvref_t<decltype(operator co_await(std::declval<A&>()))>>();
    else if constexpr (HasQCoroAwaiter<A>)
        return awaitResult<QCoroAwaiterOf<A>>();
    else
        return std::type_identity<std::decay_t<decltype(std::declval<A&>().await_resume())>> {};
}
template <typename A> struct AwaitResult {
    using type = typename decltype(awaitResult<std::remove_cvref_t<A>>())::type;
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
    static constexpr bool stop = false;
};
template <typename S, typename T, typename... A>
requires std::is_same_v<std::remove_cvref_t<S>, std::stop_token>
struct PromiseOfFirst<std::tuple<S, QPromise<T>&, A...>> {
    using type = T;
    static constexpr bool stop = true;
};

//! The T of a callable whose first parameter is QPromise<T>& (as with QtConcurrent::run), or whose
//! first two are std::stop_token and QPromise<T>&.
template <typename F>
concept TakesPromise = !std::is_member_function_pointer_v<F> && requires
{
    typename PromiseOfFirst<typename Signature<F>::args>::type;
};

//! A callable that can take a std::stop_token before its arguments gets one (as std::jthread does).
template <typename F, typename... Args>
inline constexpr bool takesStopToken = [] {
    if constexpr (TakesPromise<F>)
        return PromiseOfFirst<typename Signature<F>::args>::stop;
    else
        return std::invocable<F, std::stop_token, Args...>;
}();

// ---- the work a job runs ------------------------------------------------------------------------

// Each work type has invoke(stop...): called with the task's std::stop_token when takesStop, with
// nothing otherwise (a task that takes no token pays nothing for one).

//! fn(args...), or fn(stop, args...), called with the decayed copies moved in (as std::thread does).
template <typename Fn, typename... Args> struct Call {
    static constexpr bool takesStop = takesStopToken<Fn, Args...>;
    Fn fn;
    std::tuple<Args...> args;
    // The return type is spelled out: a class cannot call its own deduced-return members in its
    // body (clang rejects it; g++ accepts it).
    using Return = typename std::conditional_t<takesStop, std::invoke_result<Fn, std::stop_token, Args...>,
                                               std::invoke_result<Fn, Args...>>::type;
    using Value = typename ValueOf<Return>::type;
    template <typename... Stop> Return invoke(Stop... stop)
    {
        return std::apply(
            [&](Args&... a) -> decltype(auto) {
                return std::invoke(std::move(fn), std::move(stop)..., std::move(a)...);
            },
            args);
    }
};

//! fn(promise, args...), or fn(stop, promise, args...), for a callable that reports through a
//! QPromise<T>&.
template <typename T, typename Fn, typename... Args> struct PromiseCall {
    static constexpr bool takesStop = takesStopToken<Fn, Args...>;
    Fn fn;
    std::tuple<Args...> args;
    std::optional<QPromise<T>> promise {}; // made when the task starts, dropped after it settled
    template <typename... Stop> decltype(auto) invoke(Stop... stop)
    {
        return std::apply(
            [&](Args&... a) -> decltype(auto) {
                return std::invoke(std::move(fn), std::move(stop)..., *promise, std::move(a)...);
            },
            args);
    }
};

//! An awaitable handed over as it is: made before submit(), it cannot be given a token.
template <typename A> struct Await {
    static constexpr bool takesStop = false;
    A awaitable;
    A&& invoke() { return std::move(awaitable); }
};
#if TASKPOOL_HAS_LAZY_TASK
//! A LazyTask, which cannot move, is kept as its not yet started coroutine.
template <typename T> struct Await<QCoro::LazyTask<T>> {
    static constexpr bool takesStop = false;
    LazyCoroutine<T> awaitable;
    LazyCoroutine<T>&& invoke() { return std::move(awaitable); }
};
#endif

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
    void fail(std::exception_ptr error) override { settleFailed(std::move(error)); }
    QObject* watchCancel(std::function<void()> onCancel) override
    {
        auto* watcher = new QFutureWatcher<T>;
        QObject::connect(watcher, &QFutureWatcherBase::canceled, watcher, std::move(onCancel));
        watcher->setFuture(future());
        return watcher;
    }
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
    using Returned = std::remove_cvref_t<R>;
    if constexpr (std::is_same_v<Returned, QCoro::Task<V>>) {
        if (isEmptyTask(returned))
            throw std::logic_error("the task is an empty QCoro::Task (default-constructed or moved from): "
                                   "there is no coroutine to await");
        return std::move(returned);
    }
#if TASKPOOL_HAS_LAZY_TASK
    else if constexpr (isLazyTask<Returned> || isLazyCoroutine<Returned>) {
        LazyCoroutine<V> lazy(std::move(returned));
        if (lazy.empty())
            throw std::logic_error("the task is an empty QCoro::LazyTask (default-constructed or moved "
                                   "from): there is no coroutine to await");
        return awaitLazy<V>(std::move(lazy)); // starts it
    }
#endif
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
    static decltype(auto) invoke(Work& work, [[maybe_unused]] Job& job)
    {
        if constexpr (Work::takesStop)
            return work.invoke(job.stopToken());
        else
            return work.invoke();
    }
    using R = decltype(invoke(std::declval<Work&>(), std::declval<Job&>()));
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
                m_running = asTask<V>(invoke(*m_work, *this)); // its synchronous start happens here
                auto awaiter = m_running.operator co_await();
                if (!awaiter.await_ready()) {
                    awaiter.await_suspend(worker);
                    return true;
                }
                finishRun();
                return false;
            } else if constexpr (std::is_void_v<R>) {
                invoke(*m_work, *this);
                finish();
            } else {
                finish(invoke(*m_work, *this));
            }
        } catch (...) {
            settleThrown();
        }
        m_work.reset(); // the pool keeps no reference to callable or arguments
        return false;
    }

    TASKPOOL_FLATTEN void finishRun() override
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
