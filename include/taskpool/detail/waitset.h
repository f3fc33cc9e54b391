// SPDX-License-Identifier: MIT
#pragma once
#ifndef TASKPOOL_INSIDE_PUBLIC_HEADER
#error "Do not include taskpool/detail headers directly; include <taskpool/taskpool.h>"
#endif

#include <taskpool/detail/futurestate.h>
#include <taskpool/taskpool_export.h>

#include <QDeadlineTimer>
#include <QFuture>
#include <QFutureWatcher>
#include <QList>
#include <QTimer>

#include <chrono>
#include <coroutine>
#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

namespace TaskPool {

template <typename T> class Future;

namespace detail {

    //! QFuture<T> or Future<T>: what the waiting helpers accept.
    template <typename F>
    concept WaitableFuture = requires
    {
        typename FutureValue<F>::type;
    };

    //! The shared state of a future: every copy of one future gives the same key. (QFuture has no
    //! operator== in Qt 6; the state's mutex is one per shared state, so its address identifies it.)
    template <typename T> const void* identity(const QFuture<T>& future)
    {
        return &QFutureInterfaceBase::get(future).mutex();
    }

    //! \a futures without repeats; the first occurrence of each is kept, in order.
    template <typename F> QList<F> distinct(QList<F> futures)
    {
        std::unordered_set<const void*> seen;
        seen.reserve(futures.size());
        futures.removeIf([&seen](const F& future) { return !seen.insert(identity(future)).second; });
        return futures;
    }

    //! The deadline \a timeout from now. None, or one farther than the clock can count (its
    //! nanoseconds since boot fill a qint64: about 292 years), is no deadline: Forever. Zero or
    //! negative has passed already.
    TASKPOOL_EXPORT QDeadlineTimer deadlineAfter(std::optional<std::chrono::milliseconds> timeout);

    //! Finished with an exception (a cancellation is not one).
    template <typename T> bool isFailed(const QFuture<T>& future)
    {
        return future.isFinished() && hasException(future);
    }

    //! Watches futures settle (as isSettled() defines it) for a coroutine of the current thread.
    /*!
     * One QFutureWatcher per watched future and one QTimer for the deadline, all living in the
     * thread that created the set, which needs an event loop. Watcher signals only record the
     * settled key; the coroutine suspended in next() (at most one) is then resumed once, later, from
     * the event loop. A watcher is deleted by takeSettled() or with the set, never inside its own
     * signal. The set lives in the waiting coroutine's frame: destroying that frame (a generator
     * dropped at a `co_yield`) destroys every watcher, and nothing is resumed afterwards because a
     * coroutine is only registered while it is suspended in next().
     */
    class TASKPOOL_EXPORT SettleSet {
    public:
        SettleSet();
        ~SettleSet();
        SettleSet(const SettleSet&) = delete;
        SettleSet& operator=(const SettleSet&) = delete;

        //! Watches \a future; \a key is what takeSettled() reports once it settled.
        void watch(qsizetype key, const QFuture<void>& future);
        //! From now on, next() also returns once \a deadline has passed.
        void setDeadline(QDeadlineTimer deadline);
        bool timedOut() const { return m_timedOut; }
        //! The keys that settled since the last call, in the order they were noticed. Their watchers
        //! are deleted.
        QList<qsizetype> takeSettled();

        //! Suspends until a watched future settled or the deadline passed (at once if either already
        //! happened).
        auto next()
        {
            struct Awaiter {
                SettleSet& set;
                bool await_ready() const noexcept { return set.m_timedOut || !set.m_settled.isEmpty(); }
                void await_suspend(std::coroutine_handle<> handle) noexcept { set.m_waiting = handle; }
                void await_resume() const noexcept { }
            };
            return Awaiter { *this };
        }

    private:
        struct Slot {
            qsizetype key;
            std::unique_ptr<QFutureWatcher<void>> watcher;
        };
        void check(std::size_t slot);
        void startTimer(QDeadlineTimer deadline);
        void wake();

        std::vector<Slot> m_slots;
        QList<std::size_t> m_settled; // slots
        std::unique_ptr<QTimer> m_timer;
        std::coroutine_handle<> m_waiting;
        bool m_timedOut = false;
    };

} // namespace detail
} // namespace TaskPool
