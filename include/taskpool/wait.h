// SPDX-License-Identifier: MIT
//! \file wait.h
//! Waiting on many futures: wait(), asCompleted() and gather(), for any QFuture<T> or Future<T>.
#pragma once

#include <taskpool/errors.h>
#include <taskpool/future.h>

#define TASKPOOL_INSIDE_PUBLIC_HEADER
#include <taskpool/detail/waitset.h>
#undef TASKPOOL_INSIDE_PUBLIC_HEADER

#include <QCoro/QCoroAsyncGenerator>
#include <QCoro/QCoroTask>
#include <QDeadlineTimer>
#include <QList>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace TaskPool {

//! When wait() returns, as Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION` and `ALL_COMPLETED`.
enum class ReturnWhen {
    //! As soon as any future has settled (finished, failed or been cancelled).
    FirstCompleted,
    //! As soon as any future has failed; a cancellation is not a failure. With no failure, as
    //! AllCompleted.
    FirstException,
    //! When every future has settled.
    AllCompleted,
};

//! What wait() gives: the distinct futures, split by whether they had settled.
/*! Both lists keep the input order (first occurrences). Use it with structured bindings:
 *  `auto [done, notDone] = co_await TaskPool::wait(futures);` */
template <typename F> struct WaitResult {
    //! Settled: finished with a result or an exception, or cancelled.
    QList<F> done;
    //! Still running (or queued) when wait() returned.
    QList<F> notDone;
};

//! Waits until \a returnWhen is met or \a timeout has passed, whichever comes first.
/*!
 * \a futures may be QFuture<T> from anywhere (QtConcurrent, a QPromise, a pool) or Future<T>.
 * Repeats of one future (copies sharing its state) count once. Futures that have already settled
 * count at once: if they meet \a returnWhen, this returns without suspending. No timeout (the
 * default) means no limit, and so does one too long for the clock to count (beyond about 292
 * years, such as `std::chrono::milliseconds::max()`); a zero or negative one returns what has
 * settled now. Nothing is cancelled: at the timeout, the unfinished futures are simply returned
 * in `notDone`.
 *
 * The calling thread needs a running event loop: the futures are watched there (one
 * QFutureWatcher per unsettled future, all deleted before this returns) and the caller resumes
 * there.
 */
template <detail::WaitableFuture F>
QCoro::Task<WaitResult<F>> wait(QList<F> futures, ReturnWhen returnWhen = ReturnWhen::AllCompleted,
                                std::optional<std::chrono::milliseconds> timeout = std::nullopt)
{
    const QDeadlineTimer deadline = detail::deadlineAfter(timeout);
    futures = detail::distinct(std::move(futures));
    const auto meets = [returnWhen](const F& future) {
        return returnWhen == ReturnWhen::FirstCompleted
            || (returnWhen == ReturnWhen::FirstException && detail::isFailed(future));
    };

    bool met = false;
    qsizetype pending = 0;
    for (const F& future : futures) {
        if (detail::isSettled(future))
            met = met || meets(future);
        else
            ++pending;
    }
    if (!met && pending > 0 && !deadline.hasExpired()) {
        detail::SettleSet watched;
        for (qsizetype i = 0; i < futures.size(); ++i) {
            if (!detail::isSettled(futures[i]))
                watched.watch(i, QFuture<void>(futures[i]));
        }
        watched.setDeadline(deadline);
        while (!met && pending > 0 && !watched.timedOut()) {
            co_await watched.next();
            for (qsizetype i : watched.takeSettled()) {
                --pending;
                met = met || meets(futures[i]);
            }
        }
    }

    // A snapshot, so that a future that settled in another thread since the last notice is done.
    WaitResult<F> result;
    for (F& future : futures)
        (detail::isSettled(future) ? result.done : result.notDone).append(std::move(future));
    co_return result;
}

namespace detail {

    template <typename F> QCoro::AsyncGenerator<F> completionOrder(QList<F> futures, QDeadlineTimer deadline)
    {
        const qsizetype total = futures.size();
        QList<F> settled;
        std::vector<std::optional<F>> pending; // emptied as they are yielded: no result is kept
        for (F& future : futures) {
            if (isSettled(future))
                settled.append(std::move(future));
            else
                pending.emplace_back(std::move(future));
        }
        futures.clear();

        SettleSet watched;
        for (std::size_t i = 0; i < pending.size(); ++i)
            watched.watch(qsizetype(i), QFuture<void>(*pending[i]));
        watched.setDeadline(deadline);

        while (!settled.isEmpty()) {
            F next = settled.takeFirst();
            co_yield next;
        }
        auto remaining = qsizetype(pending.size());
        while (remaining > 0) {
            co_await watched.next();
            const bool late = watched.timedOut();
            for (qsizetype i : watched.takeSettled()) {
                F next = *std::exchange(pending[std::size_t(i)], std::nullopt);
                --remaining;
                co_yield next;
            }
            if (late) {
                // Also what settled but was not noticed yet (its notice is still in the event queue).
                for (auto& slot : pending) {
                    if (slot && isSettled(*slot)) {
                        F next = *std::exchange(slot, std::nullopt);
                        --remaining;
                        co_yield next;
                    }
                }
                if (remaining > 0)
                    throw TimeoutError(std::to_string(remaining) + " (of " + std::to_string(total)
                                       + ") futures unfinished");
            }
        }
    }

    template <typename T> using GatherResult = std::conditional_t<std::is_void_v<T>, void, QList<T>>;

} // namespace detail

//! Yields each future of \a futures as it settles (finishes, fails or is cancelled).
/*!
 * Repeats of one future are yielded once. Futures that have already settled come first, in input
 * order, even with a zero timeout; the others in the order they settle. Once \a timeout (counted
 * from this call; none, the default, means no limit, as does one too long for the clock to count,
 * such as `std::chrono::milliseconds::max()`; zero or negative has passed at once) has passed,
 * the futures that settled are
 * still yielded, then the iteration throws TimeoutError ("2 (of 4) futures unfinished"); the
 * unfinished futures are left alone (not cancelled).
 *
 * The generator keeps no future it has yielded. Destroying it early deletes its watchers. Iterate
 * it in one thread with a running event loop (see wait()).
 *
 * \code
 * QCORO_FOREACH(const QFuture<int> &f, TaskPool::asCompleted(futures, 5s)) { ... }
 * \endcode
 */
template <detail::WaitableFuture F>
QCoro::AsyncGenerator<F> asCompleted(QList<F> futures, std::optional<std::chrono::milliseconds> timeout = std::nullopt)
{
    return detail::completionOrder(detail::distinct(std::move(futures)), detail::deadlineAfter(timeout));
}

//! The results of \a futures, in input order.
/*!
 * Throws the exception of the first future, in input order, that failed, or CancelledError when
 * that one was cancelled. The futures are awaited one after the other, so this throws as soon as
 * every future before the failed one has succeeded; the other futures are left alone. For
 * `QFuture<void>` / `Future<void>` this returns QCoro::Task<void>. An empty list gives an empty
 * result at once.
 */
template <detail::WaitableFuture F>
QCoro::Task<detail::GatherResult<typename detail::FutureValue<F>::type>> gather(QList<F> futures)
{
    using T = typename detail::FutureValue<F>::type;
    if constexpr (std::is_void_v<T>) {
        for (const F& future : futures)
            co_await Future<void>(future);
    } else {
        QList<T> results;
        results.reserve(futures.size());
        for (const F& future : futures) {
            T result = co_await Future<T>(future);
            results.append(std::move(result));
        }
        co_return results;
    }
}

} // namespace TaskPool
