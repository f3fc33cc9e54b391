// SPDX-License-Identifier: MIT
//! \file wait.h
//! Waiting on many futures: wait(), asCompleted() and gather() (and their siblings), for any
//! QFuture<T> or Future<T>.
#pragma once

#include <taskpool/errors.h>
#include <taskpool/future.h>
#include <taskpool/result.h>

#define TASKPOOL_INSIDE_PUBLIC_HEADER
#include <taskpool/detail/waitset.h>
#undef TASKPOOL_INSIDE_PUBLIC_HEADER

#include <QCoro/QCoroAsyncGenerator>
#include <QCoro/QCoroTask>
#include <QDeadlineTimer>
#include <QList>

#include <algorithm>
#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_set>
#include <variant>
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

    //! What asCompleted() yields for the future at input position \a index: the future, or an
    //! Indexed<F> (asCompletedIndexed()).
    template <typename F, bool indexed> using CompletedElement = std::conditional_t<indexed, Indexed<F>, F>;

    //! \a futures with repeats removed (first occurrences kept), each with its input position.
    template <typename F> std::vector<Indexed<F>> distinctIndexed(QList<F> futures)
    {
        std::unordered_set<const void*> seen;
        seen.reserve(futures.size());
        std::vector<Indexed<F>> result;
        result.reserve(std::size_t(futures.size()));
        for (qsizetype i = 0; i < futures.size(); ++i) {
            if (seen.insert(identity(futures[i])).second)
                result.push_back(Indexed<F> { i, std::move(futures[i]) });
        }
        return result;
    }

    template <bool indexed, typename F>
    QCoro::AsyncGenerator<CompletedElement<F, indexed>> completionOrder(std::vector<Indexed<F>> futures,
                                                                        QDeadlineTimer deadline)
    {
        const auto take = [](Indexed<F>& slot) -> CompletedElement<F, indexed> {
            if constexpr (indexed)
                return std::move(slot);
            else
                return std::move(slot.value);
        };
        const qsizetype total = qsizetype(futures.size());
        std::deque<Indexed<F>> settled;
        std::vector<std::optional<Indexed<F>>> pending; // emptied as they are yielded: no result is kept
        for (Indexed<F>& future : futures) {
            if (isSettled(future.value))
                settled.push_back(std::move(future));
            else
                pending.emplace_back(std::move(future));
        }
        futures.clear();

        SettleSet watched;
        for (std::size_t i = 0; i < pending.size(); ++i)
            watched.watch(qsizetype(i), QFuture<void>(pending[i]->value));
        watched.setDeadline(deadline);

        while (!settled.empty()) {
            auto next = take(settled.front());
            settled.pop_front();
            co_yield next;
        }
        auto remaining = qsizetype(pending.size());
        while (remaining > 0) {
            co_await watched.next();
            const bool late = watched.timedOut();
            for (qsizetype i : watched.takeSettled()) {
                auto next = take(*pending[std::size_t(i)]);
                pending[std::size_t(i)].reset();
                --remaining;
                co_yield next;
            }
            if (late) {
                // Also what settled but was not noticed yet (its notice is still in the event queue).
                for (auto& slot : pending) {
                    if (slot && isSettled(slot->value)) {
                        auto next = take(*slot);
                        slot.reset();
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
    return detail::completionOrder<false>(detail::distinctIndexed(std::move(futures)), detail::deadlineAfter(timeout));
}

//! As asCompleted(), but yields each future as an Indexed<F>: with its position in \a futures.
/*!
 * A future listed several times is yielded once, with the position of its first occurrence.
 *
 * \code
 * QCORO_FOREACH(const auto &done, TaskPool::asCompletedIndexed(futures))
 *     qInfo() << urls[done.index] << co_await done.value;
 * \endcode
 */
template <detail::WaitableFuture F>
QCoro::AsyncGenerator<Indexed<F>> asCompletedIndexed(QList<F> futures,
                                                     std::optional<std::chrono::milliseconds> timeout = std::nullopt)
{
    return detail::completionOrder<true>(detail::distinctIndexed(std::move(futures)), detail::deadlineAfter(timeout));
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

namespace detail {

    //! What gather(f1, f2, ...) gives for one future: its value, or std::monostate for a void one.
    template <typename F>
    using GatherElement = std::conditional_t<std::is_void_v<typename FutureValue<F>::type>, std::monostate,
                                             typename FutureValue<F>::type>;

    //! What awaiting a void future in gather(f1, f2, ...) gives: turns into its std::monostate.
    //! (QCoro::Task cannot hold a std::monostate itself.)
    struct VoidDone {
        operator std::monostate() const noexcept { return {}; }
    };

    inline QCoro::Task<VoidDone> awaitVoid(Future<void> future)
    {
        co_await future;
        co_return VoidDone {};
    }

    //! What gather(f1, f2, ...) awaits for one future: the future itself, which gives its value, or
    //! for a void one a task that gives a VoidDone.
    template <typename F> auto gatherAwaitable(const F& future)
    {
        using T = typename FutureValue<F>::type;
        if constexpr (std::is_void_v<T>)
            return awaitVoid(Future<void>(future));
        else
            return Future<T>(future);
    }

    //! The outcome of \a future, which never throws for the future's failure or cancellation.
    template <typename F> QCoro::Task<Result<typename FutureValue<F>::type>> settleOne(const F& future)
    {
        using T = typename FutureValue<F>::type;
        std::exception_ptr error;
        try {
            if constexpr (std::is_void_v<T>) {
                co_await Future<void>(future);
                co_return Result<void>();
            } else {
                co_return Result<T>(co_await Future<T>(future));
            }
        } catch (...) {
            error = std::current_exception();
        }
        co_return Result<T>::fromError(std::move(error));
    }

} // namespace detail

//! The results of futures of different types, as a std::tuple in argument order.
/*!
 * \code
 * auto [count, name, done] = co_await TaskPool::gather(countFuture, nameFuture, voidFuture);
 * \endcode
 * Each argument is a Future<T> or a QFuture<T>; a void one gives a std::monostate. As the list
 * form, it awaits the futures one after the other and throws the exception of the first one, in
 * argument order, that failed, or CancelledError when that one was cancelled; the other futures
 * are left alone.
 */
template <detail::WaitableFuture... F>
requires(sizeof...(F) > 0) QCoro::Task<std::tuple<detail::GatherElement<F>...>> gather(F... futures)
{
    // A braced list is evaluated left to right: the futures are awaited in argument order.
    co_return std::tuple<detail::GatherElement<F>...> { co_await detail::gatherAwaitable(futures)... };
}

//! The outcome of every future in \a futures, in input order, as a Result: never throws for a
//! future's failure or cancellation (JavaScript's `Promise.allSettled`, Python's
//! `gather(return_exceptions=True)`).
/*!
 * Returns once every future has settled. A failed future gives a Result holding its exception, a
 * cancelled one a Result holding CancelledError (Result::isCancelled()). For `QFuture<void>` /
 * `Future<void>` each element is a Result<void>. The futures are left alone.
 */
template <detail::WaitableFuture F>
QCoro::Task<QList<Result<typename detail::FutureValue<F>::type>>> gatherSettled(QList<F> futures)
{
    QList<Result<typename detail::FutureValue<F>::type>> results;
    results.reserve(futures.size());
    for (const F& future : futures)
        results.append(co_await detail::settleOne(future));
    co_return results;
}

//! The outcomes of futures of different types, as a std::tuple of Result in argument order; never
//! throws for a future's failure or cancellation.
/*!
 * \code
 * auto [count, name] = co_await TaskPool::gatherSettled(countFuture, nameFuture);
 * if (!count.hasValue()) ...
 * \endcode
 */
template <detail::WaitableFuture... F>
requires(sizeof...(F)
         > 0) QCoro::Task<std::tuple<Result<typename detail::FutureValue<F>::type>...>> gatherSettled(F... futures)
{
    co_return std::tuple<Result<typename detail::FutureValue<F>::type>...> { co_await detail::settleOne(futures)... };
}

} // namespace TaskPool
