// SPDX-License-Identifier: MIT
#include "../executorcore_p.h"
#include "jstask_p.h"
#include "taskfuturetracker_p.h"

#include <taskpool/qml.h>

#include <QFutureWatcher>
#include <QMetaMethod>
#include <QPointer>
#include <QThread>

namespace TaskPool {

namespace detail {

    namespace {
        constexpr auto trackerProperty = "_q_taskpool_futureTracker";
    }

    TaskFutureTracker* TaskFutureTracker::find(TaskPoolExecutor* executor)
    {
        // By name, then checked: anything else stored there (or any other child) is not taken for it.
        auto* tracker = qobject_cast<TaskFutureTracker*>(executor->property(trackerProperty).value<QObject*>());
        return tracker && tracker->parent() == executor ? tracker : nullptr;
    }

    TaskFutureTracker* TaskFutureTracker::of(TaskPoolExecutor* executor)
    {
        if (TaskFutureTracker* tracker = find(executor))
            return tracker;
        auto* tracker = new TaskFutureTracker(executor);
        executor->setProperty(trackerProperty, QVariant::fromValue<QObject*>(tracker));
        return tracker;
    }

    TaskFutureTracker::TaskFutureTracker(TaskPoolExecutor* executor) : QObject(executor)
    {
        // Each handler takes what it needs first and never touches `this` after calling out: a
        // TaskFuture's signal may delete other TaskFutures, or the executor (and so this tracker).
        connect(executor, &TaskPoolExecutor::taskStarted, this, [this](quint64 taskId) {
            for (const QPointer<TaskFuture>& future : futuresOf(taskId)) {
                if (future)
                    future->markStarted();
            }
        });
        auto settled = [this](quint64 taskId) {
            const auto futures = futuresOf(taskId);
            m_futures.remove(taskId);
            for (const QPointer<TaskFuture>& future : futures) {
                if (future)
                    future->update();
            }
        };
        connect(executor, &TaskPoolExecutor::taskFinished, this, settled);
        connect(executor, &TaskPoolExecutor::taskFailed, this, settled);
        connect(executor, &TaskPoolExecutor::taskCancelled, this, settled);
    }

    TaskFutureTracker::~TaskFutureTracker()
    {
        // The executor object is gone: nothing signals a start or an end any more.
        for (TaskFuture* future : std::as_const(m_futures))
            future->executorGone();
    }

    QList<QPointer<TaskFuture>> TaskFutureTracker::futuresOf(quint64 taskId) const
    {
        QList<QPointer<TaskFuture>> futures;
        for (auto it = m_futures.constFind(taskId); it != m_futures.cend() && it.key() == taskId; ++it)
            futures.append(it.value());
        return futures;
    }

} // namespace detail

TaskFuture::~TaskFuture()
{
    untrack();
}

void TaskFuture::track(TaskPoolExecutor* executor, quint64 taskId)
{
    // The executor's bookkeeping belongs to its thread: elsewhere the TaskFuture follows its
    // QFuture only.
    if (isDone() || executor->thread() != QThread::currentThread())
        return;
    m_taskId = taskId;
    m_tracker = detail::TaskFutureTracker::of(executor);
    m_tracker->add(taskId, this);
    // Not settled and not waiting: the task runs already (its taskStarted came before this).
    m_waitsForStart = detail::ExecutorCore::of(executor)->isWaiting(taskId);
    if (m_waitsForStart && m_status == Running)
        m_status = Pending; // nothing is connected yet: no signal to emit
}

void TaskFuture::untrack()
{
    if (m_tracker)
        m_tracker->remove(m_taskId, this);
    m_tracker = nullptr;
}

void TaskFuture::markStarted()
{
    m_waitsForStart = false;
    update();
}

void TaskFuture::executorGone()
{
    m_tracker = nullptr; // it is being destroyed
    if (m_selfStart)
        return; // the task itself will say when it starts
    m_waitsForStart = false;
    // Not from inside the executor's destructor: the status changes from the event loop.
    QMetaObject::invokeMethod(this, &TaskFuture::update, Qt::QueuedConnection);
}

void TaskFuture::init(QFuture<void> future, std::function<QVariant()> read, std::function<bool()> cancel)
{
    m_future = std::move(future);
    m_read = std::move(read);
    m_cancel = std::move(cancel);
    update();
    if (isDone())
        return;
    m_watcher = new QFutureWatcher<void>(this);
    for (auto signal : { &QFutureWatcherBase::started, &QFutureWatcherBase::finished, &QFutureWatcherBase::canceled })
        connect(m_watcher, signal, this, &TaskFuture::update);
    connect(m_watcher, &QFutureWatcherBase::progressRangeChanged, this, &TaskFuture::update);
    connect(m_watcher, &QFutureWatcherBase::progressValueChanged, this, &TaskFuture::update);
    connect(m_watcher, &QFutureWatcherBase::progressTextChanged, this, &TaskFuture::update);
    m_watcher->setFuture(m_future);
}

qreal TaskFuture::progress() const
{
    if (m_status == Finished)
        return 1.0;
    if (m_progressMaximum <= m_progressMinimum)
        return 0.0;
    // In qreal: the int difference of a range as wide as int's overflows.
    const qreal fraction
        = (qreal(m_progressValue) - m_progressMinimum) / (qreal(m_progressMaximum) - m_progressMinimum);
    return std::clamp(fraction, 0.0, 1.0);
}

void TaskFuture::update()
{
    if (isDone())
        return;
    const QFutureInterfaceBase state = QFutureInterfaceBase::get(m_future);

    const qreal oldProgress = progress();
    const int oldValue = m_progressValue, oldMinimum = m_progressMinimum, oldMaximum = m_progressMaximum;
    const QString oldText = m_progressText;
    m_progressValue = state.progressValue();
    m_progressMinimum = state.progressMinimum();
    m_progressMaximum = state.progressMaximum();
    m_progressText = state.progressText();

    Status status = Pending;
    if (detail::isCancelled(m_future))
        status = Cancelled;
    else if (m_future.isFinished())
        status = detail::hasException(m_future) ? Failed : Finished;
    else if (m_future.isStarted() && !m_waitsForStart)
        status = Running;

    bool resultSet = false, errorSet = false;
    if (status == Finished) {
        try {
            m_result = m_read();
        } catch (...) {
            // The future finished without a result (a QPromise that reported none): a failure.
            m_failure = std::current_exception();
            status = Failed;
        }
        resultSet = m_result.isValid();
    }
    if (status == Failed) {
        if (!m_failure)
            m_failure = detail::failure(m_future);
        m_error = m_failure ? detail::describe(m_failure) : QStringLiteral("unknown failure");
        errorSet = true;
    }
    const Status oldStatus = std::exchange(m_status, status);
    const bool settled = isDone() && oldStatus != status;
    const bool progressMoved = oldProgress != progress() || oldValue != m_progressValue
        || oldMinimum != m_progressMinimum || oldMaximum != m_progressMaximum || oldText != m_progressText;

    // A slot may delete this object (an owner's right, in any of the signals below): whatever it
    // still has to do is done first, and no signal is emitted from it once it is gone.
    QList<QJSValue> deferred;
    QJSValue deferredValue;
    QJSEngine* engine = nullptr;
    QJSValue self; // the engine's reference, held to the end of this call
    if (settled) {
        if (m_watcher) {
            m_watcher->disconnect(this);
            m_watcher->deleteLater();
            m_watcher = nullptr;
        }
        m_cancel = nullptr; // nothing left to cancel; drops the future's reference to its job
        untrack();
        m_waitsForStart = false;
        deferred = std::exchange(m_deferred, {});
        if (!deferred.isEmpty() && (engine = qjsEngine(this)))
            deferredValue = status == Finished ? engine->toScriptValue(m_result) : reason(engine);
        self = std::exchange(m_self, QJSValue()); // from now on only QML's references keep it
    }
    const QPointer<TaskFuture> alive(this);
    if (progressMoved)
        Q_EMIT progressChanged();
    if (alive && resultSet)
        Q_EMIT resultChanged();
    if (alive && errorSet)
        Q_EMIT errorChanged();
    if (oldStatus == status)
        return;
    if (alive)
        Q_EMIT statusChanged();
    if (alive && status == Running)
        Q_EMIT started();
    if (!settled)
        return;
    if (alive && status == Failed)
        Q_EMIT failed(m_error);
    if (alive && status == Cancelled)
        Q_EMIT cancelled();
    if (alive && status == Cancelled)
        Q_EMIT canceled();
    if (alive)
        Q_EMIT finished();
    if (engine) {
        const QString method = status == Finished ? QStringLiteral("resolve") : QStringLiteral("reject");
        for (const QJSValue& d : deferred)
            d.property(method).call({ deferredValue });
    }
}

QJSValue TaskFuture::reason(QJSEngine* engine) const
{
    if (m_status == Cancelled)
        return detail::JsHelpers::of(engine)->cancelledError.call({ QString::fromUtf8(CancelledError().what()) });
    try {
        std::rethrow_exception(m_failure);
    } catch (const detail::JsError& e) {
        if (const QJSValue reason = e.reason(); e.engine() == engine)
            return reason;
    } catch (const TimeoutError&) {
        if (auto* helpers = detail::JsHelpers::of(engine); helpers->isComplete())
            return helpers->namedError.call({ QStringLiteral("TimeoutError"), m_error });
    } catch (...) {
    }
    return engine->newErrorObject(QJSValue::GenericError, m_error);
}

bool TaskFuture::cancel()
{
    if (isDone() || !m_cancel)
        return false;
    const bool cancelled = m_cancel();
    update();
    return cancelled;
}

void TaskFuture::keepAlive()
{
    if (isDone() || !m_self.isUndefined())
        return;
    if (QJSEngine* engine = qjsEngine(this))
        m_self = engine->newQObject(this);
}

void TaskFuture::connectNotify(const QMetaMethod& signal)
{
    Q_UNUSED(signal);
    keepAlive();
}

QJSValue TaskFuture::then(const QJSValue& onResult, const QJSValue& onError)
{
    QJSEngine* engine = qjsEngine(this);
    if (!engine)
        return {};
    const QJSValue deferred = detail::JsHelpers::of(engine)->deferred.call();
    const QJSValue promise = deferred.property(QStringLiteral("promise"));
    const QJSValue chained = promise.property(QStringLiteral("then")).callWithInstance(promise, { onResult, onError });
    if (isDone()) {
        const bool ok = m_status == Finished;
        deferred.property(ok ? QStringLiteral("resolve") : QStringLiteral("reject"))
            .call({ ok ? engine->toScriptValue(m_result) : reason(engine) });
    } else {
        m_deferred.append(deferred);
        keepAlive();
    }
    return chained;
}

} // namespace TaskPool
