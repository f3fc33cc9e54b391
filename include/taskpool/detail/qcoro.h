// SPDX-License-Identifier: MIT
#pragma once
#ifndef TASKPOOL_INSIDE_PUBLIC_HEADER
#error "Do not include taskpool/detail headers directly; include <taskpool/taskpool.h>"
#endif

// The one place where TaskPool relies on QCoro beyond its documented API: the awaiter_type
// extension point and the Awaitable concept (QCoro::detail, coroutine.h), the awaiter a Task hands
// out, and, with QCoro 0.11 or newer, the base class of LazyTask. Checked against QCoro 0.8.0 and
// 0.11.0 (`./run test` builds the suite against both).

#include <QCoro/QCoroTask>

#if __has_include(<QCoro/QCoroLazyTask>)
#include <QCoro/QCoroLazyTask>
//! QCoro::LazyTask (QCoro 0.11 and newer) can be submitted.
#define TASKPOOL_HAS_LAZY_TASK 1
#else
#define TASKPOOL_HAS_LAZY_TASK 0
#endif

#include <coroutine>
#include <type_traits>
#include <utility>

namespace TaskPool::detail {

//! A type that QCoro adapts for co_await through its awaiter_type specialisations (QFuture,
//! QNetworkReply *, QTimer *...): only once the header that adapts it is included.
template <typename T>
concept HasQCoroAwaiter = requires
{
    typename QCoro::detail::awaiter_type<std::remove_cvref_t<T>>::type;
};
template <typename T> using QCoroAwaiterOf = typename QCoro::detail::awaiter_type<std::remove_cvref_t<T>>::type;

//! An awaitable by QCoro's own definition (operator co_await, or the await_* members).
template <typename T>
concept QCoroAwaitableType = QCoro::Awaitable<std::remove_cvref_t<T>>;

template <typename T> inline constexpr bool isQCoroTask = false;
template <typename T> inline constexpr bool isQCoroTask<QCoro::Task<T>> = true;

//! True for a task without a coroutine (default-constructed or moved from), which QCoro cannot
//! await: 0.8 asserts and 0.11 never resumes the awaiter.
template <typename T> bool isEmptyTask(const QCoro::Task<T>& task)
{
    // The task's awaiter holds the coroutine handle, protected in QCoro's TaskAwaiterBase.
    using Awaiter = decltype(task.operator co_await());
    struct Probe : Awaiter {
        explicit Probe(const Awaiter& awaiter) : Awaiter(awaiter) { }
        bool empty() const { return !this->mAwaitedCoroutine; }
    };
    return Probe(task.operator co_await()).empty();
}

template <typename T> inline constexpr bool isLazyTask = false;
template <typename T> inline constexpr bool isLazyCoroutine = false;

#if TASKPOOL_HAS_LAZY_TASK
template <typename T> inline constexpr bool isLazyTask<QCoro::LazyTask<T>> = true;

//! The coroutine of a QCoro::LazyTask, not started yet, in a movable owner (QCoro 0.11's LazyTask
//! cannot be moved). It starts when awaitLazy() awaits it.
template <typename T>
class LazyCoroutine : private QCoro::detail::TaskBase<T, QCoro::LazyTask, QCoro::detail::LazyTaskPromise<T>> {
    using Base = QCoro::detail::TaskBase<T, QCoro::LazyTask, QCoro::detail::LazyTaskPromise<T>>;

public:
    using value_type = T;
    //! Takes the coroutine over; \a task is left empty.
    LazyCoroutine(QCoro::LazyTask<T>&& task) : Base(std::move(static_cast<Base&>(task))) { }
    LazyCoroutine(LazyCoroutine&& other) noexcept :
        Base(std::move(other)), m_started(std::exchange(other.m_started, false))
    {
    }
    LazyCoroutine& operator=(LazyCoroutine&&) = delete;
    //! A coroutine that never started is freed here. (QCoro counts a reference for the coroutine
    //! itself, dropped when it ends: a LazyTask destroyed before it was awaited leaks its frame.)
    ~LazyCoroutine() override
    {
        if (this->mCoroutine && !m_started)
            this->mCoroutine.promise().derefCoroutine(); // the base class drops the last one
    }

    bool empty() const { return !this->mCoroutine; }
    //! The coroutine, to be started now: from here on, it ends (and drops its own reference).
    std::coroutine_handle<QCoro::detail::LazyTaskPromise<T>> start()
    {
        m_started = true;
        return this->mCoroutine;
    }

private:
    bool m_started = false;
};
template <typename T> inline constexpr bool isLazyCoroutine<LazyCoroutine<T>> = true;

//! Starts the lazy coroutine and awaits it.
template <typename T> QCoro::Task<T> awaitLazy(LazyCoroutine<T> lazy)
{
    QCoro::LazyTask<T> task(lazy.start()); // a second reference, for LazyTask's own awaiter
    if constexpr (std::is_void_v<T>)
        co_await task;
    else
        co_return co_await task;
}
#endif

} // namespace TaskPool::detail
