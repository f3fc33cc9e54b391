// SPDX-License-Identifier: MIT
#pragma once

#include <taskpool/clock.h>
#include <taskpool/errors.h>
#include <taskpool/future.h>
#include <taskpool/taskpool_export.h>

#define TASKPOOL_INSIDE_PUBLIC_HEADER
#include <taskpool/detail/map.h>
#include <taskpool/detail/taskjob.h>
#include <taskpool/detail/usage.h>
#undef TASKPOOL_INSIDE_PUBLIC_HEADER

#include <QCoro/QCoroTask>
#include <QObject>
#include <QString>
#include <QStringList>

#include <chrono>
#include <memory>
#include <optional>

namespace TaskPool {

namespace detail {
    class ExecutorCore;
}

//! Options of TaskPoolExecutor::shutdown(), as Python's `shutdown(wait, cancel_futures)`.
struct ShutdownOptions {
    //! Await the end of every running task (and of the queue, unless it is cancelled).
    bool wait = true;
    //! Cancel every queued task: it never starts and its future ends cancelled.
    bool cancelFutures = false;
};

//! Per-task options of TaskPoolExecutor::submit(): `pool.submit({.timeout = 5s}, fn, args...)`.
struct SubmitOptions {
    //! How long the task may run, counted from its start (time spent queued does not count). When
    //! it passes, the future fails with TimeoutError and the task's stop token is stopped. None:
    //! the executor's defaultTimeout(); `std::chrono::milliseconds::max()`: no limit.
    std::optional<std::chrono::milliseconds> timeout {};
    //! The task lives no longer than this object (as the context of QObject::connect()): once it is
    //! destroyed, the task is cancelled (queued: never starts; running: its stop token is stopped).
    QObject* context = nullptr;
    //! Higher starts first; equal priorities start in submission order.
    int priority = 0;
    //! Tasks sharing a key run at most keyLimit(key) at once (a host name for a polite crawler);
    //! empty: no key.
    QString key {};
};

//! Options of TaskPoolExecutor::map() and its siblings (mapUnordered(), mapSettled(), ...).
struct MapOptions {
    //! How many items may be submitted ahead of the consumer; none: all of them at once.
    std::optional<int> bufferSize {};
    //! The priority of every item (see SubmitOptions::priority).
    int priority = 0;
};

//! Runs coroutines with at most maxWorkers() of them in flight on the Qt event loop.
/*!
 * The executor lives in the thread whose event loop runs its workers (the thread it was created
 * in). submit() may be called from any thread and its futures used from any thread; every other
 * member is for the executor's own thread. Workers are created lazily, one only when no idle worker
 * exists, and reused. Destroying the executor behaves as `shutdown({.wait = false})`: queued and
 * running work still completes while the event loop runs, and every future still finishes.
 */
class TASKPOOL_EXPORT TaskPoolExecutor : public QObject {
    Q_OBJECT
    Q_PROPERTY(int maxWorkers READ maxWorkers WRITE setMaxWorkers NOTIFY maxWorkersChanged)
    Q_PROPERTY(QString taskNamePrefix READ taskNamePrefix WRITE setTaskNamePrefix NOTIFY taskNamePrefixChanged)
    Q_PROPERTY(int activeCount READ activeCount NOTIFY activeCountChanged)
    Q_PROPERTY(int pendingCount READ pendingCount NOTIFY pendingCountChanged)
    Q_PROPERTY(int workerCount READ workerCount NOTIFY workerCountChanged)
    Q_PROPERTY(QStringList workerNames READ workerNames NOTIFY workerCountChanged)
    Q_PROPERTY(bool isShutdown READ isShutdown NOTIFY isShutdownChanged)
    Q_PROPERTY(int defaultTimeout READ defaultTimeoutMs WRITE setDefaultTimeoutMs NOTIFY defaultTimeoutChanged)
    Q_PROPERTY(bool paused READ isPaused WRITE setPaused NOTIFY pausedChanged)
    Q_PROPERTY(int rateLimit READ rateLimit NOTIFY rateLimitChanged)
    Q_PROPERTY(int rateWindow READ rateWindowMs NOTIFY rateLimitChanged)
    Q_PROPERTY(bool rateLimited READ isRateLimited NOTIFY rateLimitedChanged)
    Q_PROPERTY(int maxPerKey READ maxPerKey WRITE setMaxPerKey NOTIFY maxPerKeyChanged)
    Q_PROPERTY(int quitTimeout READ quitTimeout WRITE setQuitTimeout NOTIFY quitTimeoutChanged)

public:
    //! An executor with QThread::idealThreadCount() workers at most.
    explicit TaskPoolExecutor(QObject* parent = nullptr);
    //! \throws std::invalid_argument when \a maxWorkers <= 0.
    explicit TaskPoolExecutor(int maxWorkers, const QString& taskNamePrefix = {}, QObject* parent = nullptr);
    //! Shuts down without waiting: the work goes on while the event loop runs.
    ~TaskPoolExecutor() override;

    //! How many tasks may run at once.
    int maxWorkers() const;
    //! Raises or lowers the bound; surplus workers leave once their task ends.
    /*! \throws std::invalid_argument when \a maxWorkers <= 0. */
    void setMaxWorkers(int maxWorkers);
    //! Workers are named `<prefix>_<index>`; the default prefix is `TaskPoolExecutor-<n>`.
    QString taskNamePrefix() const;
    //! Sets the prefix of the names of workers created from now on.
    void setTaskNamePrefix(const QString& prefix);
    //! How many tasks are running.
    int activeCount() const;
    //! How many tasks are queued, waiting for a free worker.
    int pendingCount() const;
    //! How many workers exist (running a task or idle).
    int workerCount() const;
    //! The names of the existing workers.
    QStringList workerNames() const;
    //! Whether shutdown() was called.
    bool isShutdown() const;

    //! The timeout of tasks submitted without SubmitOptions::timeout; none by default.
    std::optional<std::chrono::milliseconds> defaultTimeout() const;
    //! Sets it for tasks that start from now on; none (or 0, or `milliseconds::max()`) for no limit.
    /*! \throws std::invalid_argument for a negative timeout. */
    void setDefaultTimeout(std::optional<std::chrono::milliseconds> timeout);
    //! defaultTimeout() in milliseconds, 0 for none (the property's form, for QML).
    int defaultTimeoutMs() const;
    //! Sets defaultTimeout() in milliseconds, 0 for none. \throws std::invalid_argument when < 0.
    void setDefaultTimeoutMs(int ms);

    //! How long, in milliseconds, the application's quit waits for running tasks (5000 by default).
    /*!
     * When QCoreApplication::aboutToQuit() is emitted (exec() returned), the executor shuts down
     * with cancelFutures: queued tasks are cancelled and running tasks' stop tokens stopped, so
     * that the cancellation helpers terminate their processes and abort their replies. Then an
     * event loop runs until every running task has ended, for at most quitTimeout(); a task still
     * running after it is abandoned, with a warning. The stop is delivered once (one round of posted
     * events) whatever the timeout; 0: do not wait beyond that.
     */
    int quitTimeout() const;
    //! Sets quitTimeout(). \throws std::invalid_argument when < 0.
    void setQuitTimeout(int ms);

    //! Whether queued tasks are held (pause()); running tasks go on.
    bool isPaused() const;
    //! Stops starting queued tasks until resume(); submit() still queues.
    void pause();
    //! Starts queued tasks again.
    void resume();
    //! pause() or resume().
    void setPaused(bool paused);

    //! At most rateLimit() tasks start in any window of rateWindow() (a strict sliding window);
    //! 0: no limit (the default).
    int rateLimit() const;
    //! The window of the rate limit.
    std::chrono::milliseconds rateWindow() const;
    //! rateWindow() in milliseconds (the property's form).
    int rateWindowMs() const;
    //! Allows at most \a starts task starts in any window of \a window, on top of maxWorkers();
    //! `setRateLimit(0)` removes the limit. Applies at once, to queued tasks too.
    /*! \throws std::invalid_argument when starts < 0 or, with starts > 0, window <= 0. */
    void setRateLimit(int starts, std::chrono::milliseconds window = std::chrono::seconds(1));
    //! True while queued tasks wait only because of the rate limit.
    bool isRateLimited() const;

    //! How many tasks sharing a key may run at once, unless setKeyLimit() says otherwise for that
    //! key; unlimited (INT_MAX) by default. \throws std::invalid_argument when <= 0.
    int maxPerKey() const;
    //! \copydoc maxPerKey()
    void setMaxPerKey(int limit);
    //! How many tasks with \a key may run at once.
    int keyLimit(const QString& key) const;
    //! Sets the limit of one key; tasks queued for it start as it allows, and tasks of other keys
    //! are never held back by them. \throws std::invalid_argument when \a limit <= 0.
    void setKeyLimit(const QString& key, int limit);

    //! Cancels every queued task (they never start; their futures end cancelled) without shutting
    //! down; running tasks go on. Returns how many were cancelled: those queued when it was called
    //! (what its slots submit stays queued).
    int clear();

    //! The time source of the rate window and timeouts; systemClock() by default. A ManualClock
    //! tests them in virtual time.
    /*!
     * \throws std::invalid_argument for a null clock; std::logic_error while a task is queued or
     * running.
     */
    void setClock(std::shared_ptr<Clock> clock);

    //! An awaitable that completes once fewer than \a count tasks are queued (at once if so now):
    //! p-queue's onSizeLessThan, for a producer feeding an endless source. Executor thread.
    /*! \throws std::invalid_argument when count < 1. */
    QCoro::Task<void> pendingBelow(int count);
    //! An awaitable that completes once no task runs or is queued (at once if so now).
    QCoro::Task<void> whenIdle();

    //! The name of the worker running the calling task, during the task's synchronous start
    //! (until its first suspension); empty elsewhere.
    static QString currentWorkerName();

    //! Schedules `fn(args...)` to run in a worker when a slot is free.
    /*!
     * Arguments are decay-copied now (as std::thread does) and moved into the call; callable and
     * arguments are destroyed as soon as the task ends. `fn` may return a QCoro::Task<R>, any
     * other QCoro awaitable (a QFuture, a qCoro() signal...) or a plain value; the future's type
     * is what awaiting that gives. A callable whose first parameter is `QPromise<R>&` receives
     * the task's promise (cancellation checks, progress, several results) and yields a Future<R>.
     * \throws ShutdownError after shutdown(); nothing is queued then.
     */
    template <typename Fn, typename... Args>
    requires(detail::CallableLike<std::decay_t<Fn>,
                                  std::decay_t<Args>...> && !std::is_same_v<std::decay_t<Fn>, SubmitOptions>)
        [[nodiscard]] auto submit(Fn&& fn, Args&&... args)
    {
        return submitCall<false>(nullptr, std::forward<Fn>(fn), std::forward<Args>(args)...);
    }

    //! submit(fn, args...) with per-task options: `pool.submit({.timeout = 5s}, fn, args...)`.
    /*!
     * \throws std::invalid_argument for a negative timeout; ShutdownError after shutdown().
     */
    template <typename Fn, typename... Args>
    requires detail::CallableLike<std::decay_t<Fn>, std::decay_t<Args>...>
    [[nodiscard]] auto submit(const SubmitOptions& options, Fn&& fn, Args&&... args)
    {
        return submitCall<true>(&options, std::forward<Fn>(fn), std::forward<Args>(args)...);
    }

    //! Awaits \a awaitable inside a worker.
    /*!
     * A QCoro::Task is eager: it already runs when it is created, so only its completion is
     * bounded here. To defer the start, submit the callable that creates it instead.
     */
    template <typename A>
    requires(!std::invocable<std::decay_t<A>> && detail::QCoroAwaitable<A>) [[nodiscard]] auto submit(A&& awaitable)
    {
        constexpr bool usable = detail::checkSubmitAwaitable<A>(); // says what to do
        if constexpr (usable) {
            using Work = detail::Await<std::decay_t<A>>;
            return submitJob<typename detail::ValueOf<std::decay_t<A>>::type, Work>(nullptr,
                                                                                    std::forward<A>(awaitable));
        }
    }

    //! submit(awaitable) with per-task options (an awaitable cannot take a stop token: a timeout or
    //! a context's end settles its future, and its slot frees when it completes).
    template <typename A>
    requires(!std::invocable<std::decay_t<A>> && detail::QCoroAwaitable<A>)
        [[nodiscard]] auto submit(const SubmitOptions& options, A&& awaitable)
    {
        constexpr bool usable = detail::checkSubmitAwaitable<A>(); // says what to do
        if constexpr (usable) {
            using Work = detail::Await<std::decay_t<A>>;
            return submitJob<typename detail::ValueOf<std::decay_t<A>>::type, Work>(&options,
                                                                                    std::forward<A>(awaitable));
        }
    }

    //! Runs `fn` over the zipped items of \a ranges, yielding the results in input order.
    /*!
     * The shortest range ends the map; ranges may be single-pass and infinite. An rvalue range is
     * moved into the generator, an lvalue range is referred to and must outlive it.
     *
     * Without a bufferSize every item is submitted now, even if the generator is never iterated.
     * With bufferSize n, n items are submitted now and one more each time a result is taken, so an
     * infinite range runs in constant memory; once the executor is shut down or destroyed, no more
     * are submitted: the generator yields the submitted ones, then throws ShutdownError if the input
     * was not exhausted (a run cut short never looks complete; the settled siblings too).
     *
     * An item's exception, or CancelledError, is thrown when the iteration reaches it. The
     * generator owns its outstanding items: destroying it before the end cancels them all (queued
     * ones never start), so keep it alive while its work should go on. It keeps no result once it
     * has been taken: bind `auto &&r` in QCORO_FOREACH and move from it to own it.
     *
     * What the input throws (an iterator's `*` or `++`, an item's copy) or std::bad_alloc for an
     * item's job comes from map() for the items submitted now, and otherwise from the iteration
     * step that reads the next item; either way every outstanding item is cancelled first.
     *
     * Siblings: mapUnordered() yields each result as soon as it is ready, with its index;
     * mapSettled() and mapUnorderedSettled() yield a Result for every item instead of throwing.
     * \throws std::invalid_argument when bufferSize < 1; ShutdownError after shutdown().
     */
    template <typename Fn, std::ranges::input_range... Ranges>
    requires(sizeof...(Ranges) > 0 && detail::CallableLike<std::decay_t<Fn>&, std::ranges::range_value_t<Ranges>...>)
        [[nodiscard]] auto map(MapOptions options, Fn&& fn, Ranges&&... ranges)
    {
        constexpr bool usable = detail::checkMapCall<false, std::decay_t<Fn>, Ranges...>(); // says what to do
        if constexpr (usable) {
            return detail::mapResults<false>(
                detail::startMap<detail::OrderedItems>(this, options.bufferSize, options.priority, std::forward<Fn>(fn),
                                                       std::forward<Ranges>(ranges)...),
                options.bufferSize.has_value());
        }
    }

    //! map() without a buffer: every item is submitted now.
    template <typename Fn, std::ranges::input_range... Ranges>
    requires(sizeof...(Ranges) > 0 && detail::CallableLike<std::decay_t<Fn>&, std::ranges::range_value_t<Ranges>...>)
        [[nodiscard]] auto map(Fn&& fn, Ranges&&... ranges)
    {
        return map(MapOptions {}, std::forward<Fn>(fn), std::forward<Ranges>(ranges)...);
    }

    //! As map(), but yields each result as soon as it is ready, as an Indexed<R> with the item's
    //! position in the input; for a `fn` that returns nothing, an Indexed<void> (the index only).
    /*!
     * One slow item does not hold back the others: whatever finishes first is yielded first (in
     * the order the items settled). bufferSize is how many items are in flight (submitted and not
     * yielded yet) at most: n are submitted now, and one more each time a result is taken, so the
     * slots of fast items are refilled while a slow one runs on. Without a bufferSize every item is
     * submitted now.
     *
     * An item's exception, or CancelledError, is thrown when the iteration reaches it: once that
     * item has settled, after the items that settled before it were yielded (those that settle
     * later are cancelled with the rest). Use mapUnorderedSettled() to get every item's outcome
     * instead. Everything else is as for map(): ranges, inputs that throw, the generator owning
     * its outstanding items (destroying it cancels them), no result kept once taken, the executor
     * gone. Iterate it in the executor's thread.
     *
     * \code
     * QCORO_FOREACH(const auto &done, pool.mapUnordered({.bufferSize = 4}, hashFile, paths))
     *     qInfo() << paths[done.index] << done.value;      // in completion order
     * \endcode
     * \throws std::invalid_argument when bufferSize < 1; ShutdownError after shutdown().
     */
    template <typename Fn, std::ranges::input_range... Ranges>
    requires(sizeof...(Ranges) > 0 && detail::CallableLike<std::decay_t<Fn>&, std::ranges::range_value_t<Ranges>...>)
        [[nodiscard]] auto mapUnordered(MapOptions options, Fn&& fn, Ranges&&... ranges)
    {
        constexpr bool usable = detail::checkMapCall<true, std::decay_t<Fn>, Ranges...>(); // says what to do
        if constexpr (usable) {
            return detail::mapUnorderedResults<false>(
                detail::startMap<detail::UnorderedItemsOf>(this, options.bufferSize, options.priority,
                                                           std::forward<Fn>(fn), std::forward<Ranges>(ranges)...),
                options.bufferSize.has_value());
        }
    }

    //! mapUnordered() without a buffer: every item is submitted now.
    template <typename Fn, std::ranges::input_range... Ranges>
    requires(sizeof...(Ranges) > 0 && detail::CallableLike<std::decay_t<Fn>&, std::ranges::range_value_t<Ranges>...>)
        [[nodiscard]] auto mapUnordered(Fn&& fn, Ranges&&... ranges)
    {
        return mapUnordered(MapOptions {}, std::forward<Fn>(fn), std::forward<Ranges>(ranges)...);
    }

    //! As map(), but yields every item's outcome as a Result<R>, in input order, and never throws
    //! for an item's failure or cancellation (Python's `gather(return_exceptions=True)`).
    /*!
     * A failed item gives a Result holding its exception, a cancelled one a Result holding
     * CancelledError (isCancelled()); the iteration goes on with the next item. `fn` may return
     * nothing (Result<void>). What the input throws, ShutdownError and std::invalid_argument still
     * come as for map().
     */
    template <typename Fn, std::ranges::input_range... Ranges>
    requires(sizeof...(Ranges) > 0 && detail::CallableLike<std::decay_t<Fn>&, std::ranges::range_value_t<Ranges>...>)
        [[nodiscard]] auto mapSettled(MapOptions options, Fn&& fn, Ranges&&... ranges)
    {
        constexpr bool usable = detail::checkMapCall<true, std::decay_t<Fn>, Ranges...>(); // says what to do
        if constexpr (usable) {
            return detail::mapResults<true>(
                detail::startMap<detail::OrderedItems>(this, options.bufferSize, options.priority, std::forward<Fn>(fn),
                                                       std::forward<Ranges>(ranges)...),
                options.bufferSize.has_value());
        }
    }

    //! mapSettled() without a buffer: every item is submitted now.
    template <typename Fn, std::ranges::input_range... Ranges>
    requires(sizeof...(Ranges) > 0 && detail::CallableLike<std::decay_t<Fn>&, std::ranges::range_value_t<Ranges>...>)
        [[nodiscard]] auto mapSettled(Fn&& fn, Ranges&&... ranges)
    {
        return mapSettled(MapOptions {}, std::forward<Fn>(fn), std::forward<Ranges>(ranges)...);
    }

    //! As mapUnordered(), but yields every item's outcome as an Indexed<Result<R>>, in completion
    //! order, and never throws for an item's failure or cancellation.
    template <typename Fn, std::ranges::input_range... Ranges>
    requires(sizeof...(Ranges) > 0 && detail::CallableLike<std::decay_t<Fn>&, std::ranges::range_value_t<Ranges>...>)
        [[nodiscard]] auto mapUnorderedSettled(MapOptions options, Fn&& fn, Ranges&&... ranges)
    {
        constexpr bool usable = detail::checkMapCall<true, std::decay_t<Fn>, Ranges...>(); // says what to do
        if constexpr (usable) {
            return detail::mapUnorderedResults<true>(
                detail::startMap<detail::UnorderedItemsOf>(this, options.bufferSize, options.priority,
                                                           std::forward<Fn>(fn), std::forward<Ranges>(ranges)...),
                options.bufferSize.has_value());
        }
    }

    //! mapUnorderedSettled() without a buffer: every item is submitted now.
    template <typename Fn, std::ranges::input_range... Ranges>
    requires(sizeof...(Ranges) > 0 && detail::CallableLike<std::decay_t<Fn>&, std::ranges::range_value_t<Ranges>...>)
        [[nodiscard]] auto mapUnorderedSettled(Fn&& fn, Ranges&&... ranges)
    {
        return mapUnorderedSettled(MapOptions {}, std::forward<Fn>(fn), std::forward<Ranges>(ranges)...);
    }

    //! Stops accepting work; see ShutdownOptions. Idempotent, and safe to await concurrently.
    /*!
     * The work that does not wait happens before this returns, so `shutdown({.wait = false})`
     * needs no `co_await`.
     */
    QCoro::Task<void> shutdown(ShutdownOptions options = {});

Q_SIGNALS:
    //! The maxWorkers property changed.
    void maxWorkersChanged(int maxWorkers);
    //! The taskNamePrefix property changed.
    void taskNamePrefixChanged(const QString& prefix);
    //! The number of running tasks changed.
    void activeCountChanged(int activeCount);
    //! The number of queued tasks changed.
    void pendingCountChanged(int pendingCount);
    //! The number of workers changed (and with it workerNames).
    void workerCountChanged(int workerCount);
    //! shutdown() was called.
    void isShutdownChanged(bool isShutdown);
    //! The defaultTimeout property changed.
    void defaultTimeoutChanged();
    //! pause() or resume() changed the paused property.
    void pausedChanged(bool paused);
    //! setRateLimit() changed the limit or its window.
    void rateLimitChanged();
    //! The rate limit started or stopped holding queued tasks back.
    void rateLimitedChanged(bool rateLimited);
    //! The maxPerKey property changed.
    void maxPerKeyChanged(int maxPerKey);
    //! The quitTimeout property changed.
    void quitTimeoutChanged(int quitTimeout);
    //! A task (identified by Future::taskId()) started in the named worker.
    void taskStarted(quint64 taskId, const QString& workerName);
    //! Exactly one of the next three is emitted per task, when its future settles.
    void taskFinished(quint64 taskId);
    //! The task failed; \a message describes its exception.
    void taskFailed(quint64 taskId, const QString& message);
    //! The task was cancelled, or threw CancelledError.
    void taskCancelled(quint64 taskId);
    //! taskCancelled() under its former spelling, emitted with it; prefer taskCancelled().
    void taskCanceled(quint64 taskId);
    //! No task runs and none is queued any more.
    void idle();

protected:
    //! Follows moveToThread() (QEvent::ThreadChange): at once when no task runs; otherwise queued
    //! tasks wait, running ones end in their thread, then the executor moves (with a warning).
    bool event(QEvent* event) override;
    //! Counts the listeners of the per-task signals, which are only emitted when there are any.
    void connectNotify(const QMetaMethod& signal) override;
    //! \copydoc connectNotify()
    void disconnectNotify(const QMetaMethod& signal) override;

private:
    friend class detail::ExecutorCore;
    friend struct detail::MapAccess;

    template <bool withOptions, typename Fn, typename... Args>
    auto submitCall(const SubmitOptions* options, Fn&& fn, Args&&... args)
    {
        using F = std::decay_t<Fn>;
        constexpr bool usable = detail::checkSubmitCall<F, std::decay_t<Args>...>(); // says what to do
        if constexpr (!usable) {
            return;
        } else if constexpr (detail::TakesPromise<F>) {
            using T = typename detail::PromiseOfFirst<typename detail::Signature<F>::args>::type;
            return submitJob<T, detail::PromiseCall<T, F, std::decay_t<Args>...>>(
                options, std::forward<Fn>(fn), std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...));
        } else {
            using Work = detail::Call<F, std::decay_t<Args>...>;
            return submitJob<typename Work::Value, Work>(
                options, std::forward<Fn>(fn), std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...));
        }
    }

    template <typename T, typename Work, typename... A> Future<T> submitJob(const SubmitOptions* options, A&&... a)
    {
        if (isShutdown())
            throw ShutdownError();
        if (options)
            checkOptions(*options); // before anything is made
        auto* job = new detail::TaskJob<detail::FutureJob<T>, Work>(std::forward<A>(a)...);
        Future<T> future(job->future(), detail::JobRef(job));
        if (options || Work::takesStop)
            configure(job, options, Work::takesStop);
        enqueue(job);
        return future;
    }
    static void checkOptions(const SubmitOptions& options);
    void configure(detail::Job* job, const SubmitOptions* options, bool takesStop);
    void enqueue(detail::Job* job);

    std::shared_ptr<detail::ExecutorCore> d;
};

//! \cond internal
inline bool detail::MapAccess::isOpen(TaskPoolExecutor* executor)
{
    return executor && !executor->isShutdown();
}

inline void detail::MapAccess::enqueue(TaskPoolExecutor* executor, Job* job, int priority, bool takesStop)
{
    job->priority = priority;
    if (takesStop)
        executor->configure(job, nullptr, true);
    executor->enqueue(job);
}
//! \endcond

} // namespace TaskPool
