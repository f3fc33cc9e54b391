// SPDX-License-Identifier: MIT
#pragma once
#ifndef TASKPOOL_INSIDE_PUBLIC_HEADER
#error "Do not include taskpool/detail headers directly; include <taskpool/taskpool.h>"
#endif

#include <taskpool/detail/scheduler.h>
#include <taskpool/errors.h>

#include <QFuture>
#include <QFutureWatcher>

#include <exception>
#include <memory>
#include <stdexcept>

namespace TaskPool {
template <typename T> class Future;
}

namespace TaskPool::detail {

//! The T of a QFuture<T> or a Future<T>.
template <typename T> struct FutureValue {
};
template <typename T> struct FutureValue<QFuture<T>> {
    using type = T;
};
template <typename T> struct FutureValue<Future<T>> {
    using type = T;
};
template <typename T>
concept QFutureType = requires
{
    typename FutureValue<std::remove_cvref_t<T>>::type;
};

// Qt marks a failed future canceled too; these tell the two apart through the public
// QFutureInterfaceBase::get(), which works for every QFuture, not only the pool's.

template <typename T> bool hasException(const QFuture<T>& future)
{
    return QFutureInterfaceBase::get(future).hasException();
}

//! Cancelled, as opposed to failed.
template <typename T> bool isCancelled(const QFuture<T>& future)
{
    return future.isCanceled() && !hasException(future);
}

//! The outcome is final: finished, or cancelled (a cancelled future may finish later, but its
//! outcome cannot change any more). A failed future counts once it finished.
template <typename T> bool isSettled(const QFuture<T>& future)
{
    return future.isFinished() || isCancelled(future);
}

//! The exception a failed future holds; null otherwise. Read once it finished, or once its pool job
//! settled (\a settled: the job's settling thread is at most about to mark it finished, so the wait
//! below is for a few statements).
template <typename T> std::exception_ptr failure(const QFuture<T>& future, bool settled = false)
{
    if (!hasException(future) || !(settled || future.isFinished()))
        return nullptr;
    try {
        QFutureInterfaceBase::get(future).waitForFinished(); // rethrows
    } catch (...) {
        return std::current_exception();
    }
    return nullptr;
}

//! Reading a result never takes it out of the future, which its other copies share.
template <typename T> inline constexpr bool readableResult = std::is_void_v<T> || std::is_copy_constructible_v<T>;
#define TASKPOOL_READABLE_RESULT_MESSAGE                                                                               \
    "TaskPool: a future's result type must be copyable: every copy of a QFuture shares its result, and reading it "    \
    "must not empty it for the others. Return a std::shared_ptr (or a copyable handle) instead of a move-only "        \
    "value; map() has no such limit."

//! The result of a settled future, its exception rethrown, or CancelledError. Never reads a
//! result that is not there.
template <typename T> T resultOf(const QFuture<T>& future)
{
    static_assert(readableResult<T>, TASKPOOL_READABLE_RESULT_MESSAGE);
    if (future.isCanceled()) {
        if (auto error = failure(future))
            std::rethrow_exception(error);
        throw CancelledError();
    }
    if constexpr (!std::is_void_v<T>) {
        if (future.resultCount() == 0)
            throw std::logic_error("the future finished without a result");
        return future.result();
    }
}

//! Awaits any QFuture through a QFutureWatcher, resuming on cancellation too (a cancelled QFuture
//! may never finish). Used only for futures that do not come from a pool.
template <typename T> class WatcherAwaiter {
public:
    explicit WatcherAwaiter(const QFuture<T>& future) : m_future(future) { }
    bool await_ready() const { return isSettled(m_future); }
    void await_suspend(std::coroutine_handle<> handle)
    {
        m_watcher = std::make_unique<QFutureWatcher<T>>();
        auto check = [this, handle] {
            if (isSettled(m_future)) {
                m_watcher->disconnect(); // resume exactly once
                resumeLater(handle);
            }
        };
        QObject::connect(m_watcher.get(), &QFutureWatcherBase::finished, check);
        QObject::connect(m_watcher.get(), &QFutureWatcherBase::canceled, check);
        m_watcher->setFuture(m_future);
    }
    T await_resume()
    {
        m_watcher.reset();
        return resultOf(m_future);
    }

private:
    QFuture<T> m_future;
    std::unique_ptr<QFutureWatcher<T>> m_watcher;
};

} // namespace TaskPool::detail
