// SPDX-License-Identifier: MIT
//! \file qml.h
//! The QML side of TaskPool (library `TaskPool::Qml`): TaskFuture, the QML TaskPoolExecutor, and
//! toTaskFuture(), which hands any C++ future to QML.
#pragma once

#include <taskpool/taskpool.h>
#include <taskpool/taskpool_qml_export.h>

#include <QFuture>
#include <QJSEngine>
#include <QJSValue>
#include <QObject>
#include <QPointer>
#include <QVariant>
#include <QtQml/qqmlregistration.h>

#include <functional>
#include <memory>
#include <type_traits>

template <typename T> class QFutureWatcher;

namespace TaskPool {

namespace detail {
    class TaskFutureTracker;
}

//! A future as QML sees it: live status, result, error and progress of any QFuture.
/*!
 * Made by `TaskPoolExecutor.submit()` in QML, or in C++ by toTaskFuture() from any
 * `Future<T>`/`QFuture<T>`; the result is converted with `QVariant::fromValue`. It follows its
 * QFuture through a QFutureWatcher, so it lives in (and signals in) the thread it was made in.
 *
 * `status` moves Pending -> Running -> one of Finished, Failed, Cancelled (a task cancelled before
 * it started goes straight from Pending to Cancelled). When it settles, `result`/`error`/
 * `progress` are updated first, then `statusChanged`, then `failed(error)` or `cancelled()` (and
 * its former spelling `canceled()`), and
 * last `finished()`, which is emitted for every outcome (as QFutureWatcher::finished is).
 *
 * `progress` is a fraction in 0..1: `(progressValue - progressMinimum) / (progressMaximum -
 * progressMinimum)` once the task set a progress range through its `QPromise`
 * (setProgressRange/setProgressValue), 0 before; it becomes 1 when the task finishes successfully.
 * The raw numbers are `progressValue`, `progressMinimum`, `progressMaximum` and `progressText`.
 *
 * Ownership: toTaskFuture() and the QML executor return TaskFutures owned by the JavaScript
 * engine (QJSEngine::JavaScriptOwnership): the engine deletes them when QML no longer references
 * them, and at the latest when the engine itself is destroyed. A TaskFuture does not reference
 * its executor, so it keeps working when the executor goes away first. While it is unsettled and
 * JavaScript connected to one of its signals or called then(), it keeps itself alive (so
 * `pool.submit(f).then(g)` needs no variable). Collecting a TaskFuture never cancels its task.
 * A TaskFuture kept by C++ only must be given a parent (the engine never deletes an object that
 * has one) or be deleted by its owner.
 */
class TASKPOOL_QML_EXPORT TaskFuture : public QObject {
    Q_OBJECT
    QML_ELEMENT
    QML_UNCREATABLE("TaskFuture objects come from TaskPoolExecutor.submit() or from C++ (TaskPool::toTaskFuture)")
    Q_PROPERTY(Status status READ status NOTIFY statusChanged)
    //! True once the status is Finished, Failed or Cancelled.
    Q_PROPERTY(bool done READ isDone NOTIFY statusChanged)
    Q_PROPERTY(QVariant result READ result NOTIFY resultChanged)
    Q_PROPERTY(QString error READ error NOTIFY errorChanged)
    Q_PROPERTY(qreal progress READ progress NOTIFY progressChanged)
    Q_PROPERTY(int progressValue READ progressValue NOTIFY progressChanged)
    Q_PROPERTY(int progressMinimum READ progressMinimum NOTIFY progressChanged)
    Q_PROPERTY(int progressMaximum READ progressMaximum NOTIFY progressChanged)
    Q_PROPERTY(QString progressText READ progressText NOTIFY progressChanged)

public:
    //! `Canceled` is the former spelling of `Cancelled` (the same value); see the README's naming rule.
    enum Status { Pending, Running, Finished, Failed, Cancelled, Canceled = Cancelled };
    Q_ENUM(Status)

    //! Follows \a future (a pool Future<T> is cancelled "at once" by cancel()).
    template <typename T> explicit TaskFuture(const QFuture<T>& future, QObject* parent = nullptr) : QObject(parent)
    {
        static_assert(std::is_void_v<T> || std::is_copy_constructible_v<T>,
                      "a TaskFuture needs a copyable result type (it converts it with QVariant::fromValue)");
        auto read = [future]() -> QVariant {
            if constexpr (std::is_void_v<T>)
                return {};
            else if constexpr (std::is_same_v<T, QVariant>)
                return detail::resultOf(future);
            else
                return QVariant::fromValue(detail::resultOf(future));
        };
        init(QFuture<void>(future), std::move(read), [f = future]() mutable {
            if (f.isFinished() || f.isCanceled())
                return false;
            f.cancel();
            return true;
        });
    }
    //! Follows a pool future, with the \a executor it was submitted to.
    /*!
     * A pool future counts as started from its submission on, so only with its executor can the
     * TaskFuture tell Pending (queued) from Running: it asks the executor whether the task still
     * waits, then listens to TaskPoolExecutor::taskStarted. With its executor it also settles when
     * the executor signals the task's end, before the executor's idle(). Without an executor (or
     * when made outside the executor's thread), a queued task shows as Running. Once the executor
     * object is destroyed, nothing signals a queued C++ task's start any more: its TaskFuture then
     * shows Running too (a JavaScript task of the QML executor still reports its own start).
     */
    template <typename T>
    explicit TaskFuture(const Future<T>& future, TaskPoolExecutor* executor = nullptr) : TaskFuture(QFuture<T>(future))
    {
        m_cancel = [f = future]() mutable { return f.cancel(); };
        if (executor && future.taskId() != 0)
            track(executor, future.taskId());
    }
    ~TaskFuture() override;

    //! Where the task is: Pending, Running, then one of Finished, Failed, Canceled.
    Status status() const { return m_status; }
    //! Whether the status is final (Finished, Failed or Canceled).
    bool isDone() const { return m_status >= Finished; }
    //! The result once Finished; invalid (undefined in QML) otherwise.
    QVariant result() const { return m_result; }
    //! The failure's message once Failed; empty otherwise.
    QString error() const { return m_error; }
    //! The progress, 0..1 over the task's QPromise progress range (0 when it reports none).
    qreal progress() const;
    //! The task's QPromise progress value.
    int progressValue() const { return m_progressValue; }
    //! The minimum of the task's QPromise progress range.
    int progressMinimum() const { return m_progressMinimum; }
    //! The maximum of the task's QPromise progress range.
    int progressMaximum() const { return m_progressMaximum; }
    //! The task's QPromise progress text.
    QString progressText() const { return m_progressText; }

    //! Cancels the task; false when it had already settled. A pool future is cancelled at once (the
    //! status is Cancelled when this returns); see Future::cancel().
    Q_INVOKABLE bool cancel();

    //! Calls `onResult(result)` when the future finishes, or `onError(error)` when it fails or is
    //! cancelled (error: the JavaScript value the task threw or rejected with, or an `Error` whose
    //! `message` is the failure's message; `name` is "CancelledError" for a cancellation, "TimeoutError" for a
    //! timeout).
    /*!
     * Returns a JavaScript Promise for what the callback returns, as Promise.then() does; the
     * callbacks always run later from the event loop, even when the future has already settled.
     * A TaskFuture is therefore a thenable: `await`, `Promise.resolve()` and a submitted function
     * returning it all work. Must be called from JavaScript (it needs the calling engine).
     */
    Q_INVOKABLE QJSValue then(const QJSValue& onResult = QJSValue(), const QJSValue& onError = QJSValue());

Q_SIGNALS:
    //! The status property changed.
    void statusChanged();
    //! The result property changed.
    void resultChanged();
    //! The error property changed.
    void errorChanged();
    //! One of the progress properties changed.
    void progressChanged();
    //! The task started running.
    void started();
    //! The task failed with the message \a error.
    void failed(const QString& error);
    //! The task was cancelled.
    void cancelled();
    //! cancelled() under its former spelling, emitted with it.
    void canceled();
    //! The future settled, whatever the outcome; emitted last.
    void finished();

protected:
    //! Follows the future once something listens to it.
    void connectNotify(const QMetaMethod& signal) override;

private:
    friend class detail::TaskFutureTracker;
    void init(QFuture<void> future, std::function<QVariant()> read, std::function<bool()> cancel);
    void track(TaskPoolExecutor* executor, quint64 taskId);
    void markStarted();
    void executorGone();
    void untrack();
    void update();
    void keepAlive();
    QJSValue reason(QJSEngine* engine) const;

    QFuture<void> m_future;
    std::function<QVariant()> m_read;
    std::function<bool()> m_cancel;
    QFutureWatcher<void>* m_watcher = nullptr;
    Status m_status = Pending;
    bool m_waitsForStart = false; // queued: Running only once the start was seen
    bool m_selfStart = false; // the task reports its start itself (a JavaScript task)
    quint64 m_taskId = 0;
    QPointer<detail::TaskFutureTracker> m_tracker;
    QVariant m_result;
    QString m_error;
    std::exception_ptr m_failure;
    int m_progressValue = 0;
    int m_progressMinimum = 0;
    int m_progressMaximum = 0;
    QString m_progressText;
    QJSValue m_self; // roots this object in its engine while it must stay alive
    QList<QJSValue> m_deferred; // {promise, resolve, reject} of pending then() calls
};

//! Hands \a future to QML: a new TaskFuture owned by the JavaScript engine.
/*!
 * For a C++ backend's Q_INVOKABLE: `return TaskPool::toTaskFuture(m_pool.submit(job), &m_pool);`.
 * The result is converted with QVariant::fromValue, and the TaskFuture follows the status and the
 * progress the task reports through its QPromise. Pass the future's \a executor (from its thread)
 * so that a queued task shows as Pending and the TaskFuture settles before the executor's idle()
 * (see TaskFuture's constructor). Ownership passes to the engine the object is returned to (see
 * TaskFuture).
 */
template <typename T> TaskFuture* toTaskFuture(const Future<T>& future, TaskPoolExecutor* executor = nullptr)
{
    auto* taskFuture = new TaskFuture(future, executor);
    QJSEngine::setObjectOwnership(taskFuture, QJSEngine::JavaScriptOwnership);
    return taskFuture;
}
//! \overload
//! For any QFuture (cancel() then goes through QFuture::cancel()).
template <typename T> TaskFuture* toTaskFuture(const QFuture<T>& future)
{
    auto* taskFuture = new TaskFuture(future);
    QJSEngine::setObjectOwnership(taskFuture, QJSEngine::JavaScriptOwnership);
    return taskFuture;
}

//! The `TaskPoolExecutor` QML type: a TaskPoolExecutor that runs JavaScript functions.
/*!
 * It owns a TaskPoolExecutor (executor()) and mirrors its properties. `submit(fn, ...args)` calls
 * `fn(...args)` from the event loop once a worker slot is free (never inside submit() itself);
 * when `fn` returns a Promise or any thenable, the slot stays taken until it settles. A returned
 * value (or the Promise's value) is the result; a thrown error or a rejection fails the task with
 * its message, except a rejection with an error named "CancelledError" (such as the abort signal's
 * reason), which ends it Cancelled. Misuse (no function, bad options, after shutdown) throws a
 * JavaScript error and changes nothing. Up to 8 arguments may follow `fn`; for more, pass an array.
 *
 * **Options.** `submit({priority: 2, timeout: 5000, key: "example.org", context: item}, fn,
 * ...args)`, as SubmitOptions in C++: a plain object before the function (any name left out keeps
 * its default; an unknown name is an error). `priority` (integer, default 0): higher starts first,
 * equal priorities in submission order. `timeout` (ms): counted from the task's start; when it
 * passes the TaskFuture fails with "the task did not finish within N ms" (its then() rejects with
 * an error named "TimeoutError") and the abort signal is set; 0 means no timeout, leaving it out
 * means the executor's `timeout`. `key` (string): at most maxPerKey (or setKeyLimit()) tasks of
 * one key run at once, without holding back other keys. `context` (a QML object): when it is
 * destroyed, the task is cancelled (queued: never starts; running: its abort signal is set).
 * `map(options, fn, array)` applies them to every item.
 *
 * **Abort signal.** A function that declares more parameters than the arguments it is given
 * receives the task's abort signal in its last declared parameter (`function (url, signal)` with
 * `submit(fn, url)`; `function (signal)` with `submit(fn)`); a function that declares no more
 * than its arguments is called exactly as before. The signal is shaped as the web's AbortSignal:
 * `aborted`, `reason` (an Error named "CancelledError", or "TimeoutError" after a timeout),
 * `onabort`, `addEventListener("abort", f)`/`removeEventListener`, `throwIfAborted()`. It is set
 * once, from the event loop right after the request (so never inside the call that cancelled),
 * and not once the task has ended, by: TaskFuture.cancel(), a timeout, `shutdown({cancelFutures:
 * true})`, the destruction of the `context` option's object, and the destruction of this
 * TaskPoolExecutor. A typical task aborts its XMLHttpRequest in `onabort` and rejects with
 * `signal.reason`; its worker slot frees when its Promise settles. A task cancelled before its
 * function was called is never called.
 *
 * **Scheduling controls** (see the README's "Scheduling controls"): `paused` (or pause()/
 * resume()) holds queued tasks, running ones go on; clear() cancels every queued task; `rateLimit`
 * starts at most in any window of `rateWindow` ms (0: no limit; setRateLimit(starts, windowMs)
 * sets both at once); `rateLimited` tells that the limit holds tasks back; `maxPerKey` and
 * setKeyLimit() bound tasks per key; whenIdle() and pendingBelow(n) return TaskFutures that finish
 * once the pool is idle or fewer than n tasks are queued (at once when that is so already).
 *
 * Destroying it shuts its executor down as `shutdown({wait: false, cancelFutures: true})` does:
 * queued tasks end Cancelled, and running tasks are asked to stop (their abort signals are set);
 * a running task that goes on is still followed by its TaskFuture. Tasks whose engine is
 * destroyed before they start end Cancelled.
 */
class TASKPOOL_QML_EXPORT QmlTaskPoolExecutor : public QObject {
    Q_OBJECT
    QML_NAMED_ELEMENT(TaskPoolExecutor)
    Q_PROPERTY(int maxWorkers READ maxWorkers WRITE setMaxWorkers NOTIFY maxWorkersChanged)
    Q_PROPERTY(QString taskNamePrefix READ taskNamePrefix WRITE setTaskNamePrefix NOTIFY taskNamePrefixChanged)
    Q_PROPERTY(int activeCount READ activeCount NOTIFY activeCountChanged)
    Q_PROPERTY(int pendingCount READ pendingCount NOTIFY pendingCountChanged)
    Q_PROPERTY(int workerCount READ workerCount NOTIFY workerCountChanged)
    Q_PROPERTY(QStringList workerNames READ workerNames NOTIFY workerCountChanged)
    Q_PROPERTY(bool isShutdown READ isShutdown NOTIFY isShutdownChanged)
    //! The default per-task timeout in ms (from each task's start); 0: none.
    Q_PROPERTY(int timeout READ timeout WRITE setTimeout NOTIFY timeoutChanged)
    Q_PROPERTY(bool paused READ isPaused WRITE setPaused NOTIFY pausedChanged)
    Q_PROPERTY(int rateLimit READ rateLimit WRITE setRateLimit NOTIFY rateLimitChanged)
    Q_PROPERTY(int rateWindow READ rateWindow WRITE setRateWindow NOTIFY rateLimitChanged)
    Q_PROPERTY(bool rateLimited READ isRateLimited NOTIFY rateLimitedChanged)
    Q_PROPERTY(int maxPerKey READ maxPerKey WRITE setMaxPerKey NOTIFY maxPerKeyChanged)

public:
    //! An executor with QThread::idealThreadCount() workers at most, as TaskPoolExecutor.
    explicit QmlTaskPoolExecutor(QObject* parent = nullptr);
    //! Cancels the queued tasks and asks the running ones to stop (see the class description).
    ~QmlTaskPoolExecutor() override;

    //! The C++ executor, e.g. to share it with a C++ backend.
    TaskPoolExecutor* executor() const { return m_executor.get(); }

    //! How many tasks may run at once.
    int maxWorkers() const;
    //! Values <= 0 are refused with a QML warning (the bound is unchanged).
    void setMaxWorkers(int maxWorkers);
    //! The prefix of the workers' names (see TaskPoolExecutor::taskNamePrefix()).
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

    //! The timeout of tasks submitted without one, in ms from their start; 0: none (the default).
    int timeout() const;
    //! Applies to tasks that start from now on; a negative value is refused with a QML warning.
    void setTimeout(int ms);
    //! Whether queued tasks are held (running ones go on).
    bool isPaused() const;
    //! pause() or resume().
    void setPaused(bool paused);
    //! Stops starting queued tasks until resume(); submit() still queues.
    Q_INVOKABLE void pause();
    //! Starts queued tasks again.
    Q_INVOKABLE void resume();
    //! Cancels every queued task (their TaskFutures end Cancelled) without shutting down; running
    //! tasks go on. Returns how many were cancelled.
    Q_INVOKABLE int clear();
    //! At most this many task starts in any window of rateWindow() ms (strict sliding window);
    //! 0: no limit (the default).
    int rateLimit() const;
    //! The window of the rate limit in ms (1000 by default).
    int rateWindow() const;
    //! True while queued tasks wait only because of the rate limit.
    bool isRateLimited() const;
    //! Sets the rate limit, keeping the window; a negative value is refused with a QML warning.
    Q_INVOKABLE void setRateLimit(int starts);
    //! Sets the rate limit and its window at once (bad values: a QML warning, nothing changes).
    Q_INVOKABLE void setRateLimit(int starts, int windowMs);
    //! Sets the window, keeping the limit; a window <= 0 is refused with a QML warning.
    void setRateWindow(int windowMs);
    //! How many tasks sharing a key may run at once (unless setKeyLimit() says otherwise for the
    //! key); 2147483647 (no limit) by default. Values <= 0 are refused with a QML warning.
    int maxPerKey() const;
    //! \copydoc maxPerKey()
    void setMaxPerKey(int limit);
    //! How many tasks with \a key may run at once.
    Q_INVOKABLE int keyLimit(const QString& key) const;
    //! Sets the limit of one key; a limit <= 0 throws a JavaScript RangeError.
    Q_INVOKABLE void setKeyLimit(const QString& key, int limit);

    //! A TaskFuture that finishes once no task runs or is queued (at once when the pool is idle
    //! now); the idle() signal's awaitable form: `await pool.whenIdle()`, or its then().
    Q_INVOKABLE TaskFuture* whenIdle();
    //! A TaskFuture that finishes once fewer than \a count tasks are queued (at once when so now),
    //! for a producer that feeds the pool without unbounded queueing. count < 1: a RangeError.
    Q_INVOKABLE TaskFuture* pendingBelow(int count);

    //! Without a function: throws a JavaScript error (submit needs a function).
    Q_INVOKABLE TaskFuture* submit();
    //! Calls `fn()` from the event loop when a worker is free; returns its TaskFuture.
    Q_INVOKABLE TaskFuture* submit(const QJSValue& fn);
    //! Calls `fn(a1, ...)` when a worker is free (up to 8 arguments; pass an array for more).
    //! With an options object first, `submit(options, fn, ...args)` (see the class description).
    Q_INVOKABLE TaskFuture* submit(const QJSValue& fn, const QJSValue& a1);
    //! \copydoc submit(const QJSValue&, const QJSValue&)
    Q_INVOKABLE TaskFuture* submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2);
    //! \copydoc submit(const QJSValue&, const QJSValue&)
    Q_INVOKABLE TaskFuture* submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3);
    //! \copydoc submit(const QJSValue&, const QJSValue&)
    Q_INVOKABLE TaskFuture* submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                   const QJSValue& a4);
    //! \copydoc submit(const QJSValue&, const QJSValue&)
    Q_INVOKABLE TaskFuture* submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                   const QJSValue& a4, const QJSValue& a5);
    //! \copydoc submit(const QJSValue&, const QJSValue&)
    Q_INVOKABLE TaskFuture* submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                   const QJSValue& a4, const QJSValue& a5, const QJSValue& a6);
    //! \copydoc submit(const QJSValue&, const QJSValue&)
    Q_INVOKABLE TaskFuture* submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                   const QJSValue& a4, const QJSValue& a5, const QJSValue& a6, const QJSValue& a7);
    //! \copydoc submit(const QJSValue&, const QJSValue&)
    Q_INVOKABLE TaskFuture* submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                   const QJSValue& a4, const QJSValue& a5, const QJSValue& a6, const QJSValue& a7,
                                   const QJSValue& a8);
    //! `submit(options, fn, a1, ..., a8)`: the options form with 8 arguments.
    Q_INVOKABLE TaskFuture* submit(const QJSValue& options, const QJSValue& fn, const QJSValue& a1, const QJSValue& a2,
                                   const QJSValue& a3, const QJSValue& a4, const QJSValue& a5, const QJSValue& a6,
                                   const QJSValue& a7, const QJSValue& a8);

    //! Submits `fn(item)` for each element of the array \a items; returns the array of TaskFutures.
    Q_INVOKABLE QJSValue map(const QJSValue& fn, const QJSValue& items);
    //! map() with submit options for every item: `map({priority: 1}, fn, items)`.
    Q_INVOKABLE QJSValue map(const QJSValue& options, const QJSValue& fn, const QJSValue& items);

    //! Stops accepting work. \a options: `{wait: true, cancelFutures: false}` (both optional).
    /*!
     * Returns a TaskFuture that finishes when the running (and, unless cancelled, queued) work has
     * ended, or at once with `wait: false`. Idempotent. With `cancelFutures`, queued tasks are
     * cancelled and running ones are asked to stop (their abort signals are set).
     */
    Q_INVOKABLE TaskFuture* shutdown(const QJSValue& options = QJSValue());

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
    //! The timeout property changed.
    void timeoutChanged();
    //! The paused property changed.
    void pausedChanged(bool paused);
    //! The rateLimit or the rateWindow property changed.
    void rateLimitChanged();
    //! The rate limit started or stopped holding queued tasks back.
    void rateLimitedChanged(bool rateLimited);
    //! The maxPerKey property changed.
    void maxPerKeyChanged(int maxPerKey);
    //! No task runs and none is queued any more. Every TaskFuture of this executor's tasks that
    //! was made with it (all of submit()'s, and toTaskFuture(future, executor())'s) has settled by
    //! then: its status, result, error and progress are final, and its finished() came first.
    void idle();

private:
    TaskFuture* submitCall(const QJSValueList& call);
    TaskFuture* submitList(const QJSValue& fn, const QJSValueList& args, const SubmitOptions* options);
    QJSValue mapWith(const SubmitOptions* options, const QJSValue& fn, const QJSValue& items);
    bool readOptions(const QJSValue& options, SubmitOptions* out, const char* method);
    TaskFuture* countsFuture(int pendingBelow, const char* method);

    std::unique_ptr<TaskPoolExecutor> m_executor;
    int m_rateWindowMs = 1000; // the window while no rate limit is set (the executor keeps none)
};

} // namespace TaskPool
