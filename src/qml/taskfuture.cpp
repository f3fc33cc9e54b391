// SPDX-License-Identifier: MIT
#include "jstask_p.h"

#include <taskpool/qml.h>

#include <QFutureWatcher>
#include <QHash>
#include <QMetaMethod>

namespace TaskPool {

namespace detail {

    //! One per executor (its child): routes TaskPoolExecutor::taskStarted to the TaskFuture of that
    //! task, so that a start costs a hash lookup, not a signal to every TaskFuture.
    class StartTracker : public QObject {
    public:
        static StartTracker* of(TaskPoolExecutor* executor)
        {
            auto* tracker = executor->findChild<StartTracker*>(QString(), Qt::FindDirectChildrenOnly);
            return tracker ? tracker : new StartTracker(executor);
        }
        void add(quint64 taskId, TaskFuture* future) { m_futures.insert(taskId, future); }
        void remove(quint64 taskId) { m_futures.remove(taskId); }

    private:
        explicit StartTracker(TaskPoolExecutor* executor) : QObject(executor)
        {
            connect(executor, &TaskPoolExecutor::taskStarted, this, [this](quint64 taskId) {
                if (TaskFuture* future = m_futures.take(taskId))
                    future->markStarted();
            });
        }
        QHash<quint64, TaskFuture*> m_futures; // a TaskFuture removes itself when it settles or dies
    };

} // namespace detail

TaskFuture::~TaskFuture()
{
    if (m_tracksStart && !m_startSeen && m_tracker)
        m_tracker->remove(m_taskId);
}

void TaskFuture::trackStart(TaskPoolExecutor* executor, quint64 taskId)
{
    if (isDone())
        return;
    m_tracksStart = true;
    m_taskId = taskId;
    m_tracker = detail::StartTracker::of(executor);
    m_tracker->add(taskId, this);
    // The executor starts a task from its event loop, never inside submit(), so no start was missed.
    if (m_status == Running) {
        m_status = Pending;
    }
}

void TaskFuture::markStarted()
{
    m_startSeen = true;
    update();
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
    const qreal fraction = qreal(m_progressValue - m_progressMinimum) / qreal(m_progressMaximum - m_progressMinimum);
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
        status = Canceled;
    else if (m_future.isFinished())
        status = detail::hasException(m_future) ? Failed : Finished;
    else if (m_future.isStarted() && (!m_tracksStart || m_startSeen))
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
    const bool settled = isDone();

    if (oldProgress != progress() || oldValue != m_progressValue || oldMinimum != m_progressMinimum
        || oldMaximum != m_progressMaximum || oldText != m_progressText)
        Q_EMIT progressChanged();
    if (resultSet)
        Q_EMIT resultChanged();
    if (errorSet)
        Q_EMIT errorChanged();
    if (oldStatus == status)
        return;
    Q_EMIT statusChanged();
    if (status == Running)
        Q_EMIT started();
    if (!settled)
        return;

    if (m_watcher) {
        m_watcher->disconnect(this);
        m_watcher->deleteLater();
        m_watcher = nullptr;
    }
    m_cancel = nullptr; // nothing left to cancel; drops the future's reference to its job
    if (m_tracksStart && !m_startSeen && m_tracker)
        m_tracker->remove(m_taskId);
    m_tracksStart = false;
    if (status == Failed)
        Q_EMIT failed(m_error);
    else if (status == Canceled)
        Q_EMIT canceled();
    Q_EMIT finished();

    if (!m_deferred.isEmpty()) {
        if (QJSEngine* engine = qjsEngine(this)) {
            const bool ok = status == Finished;
            const QJSValue value = ok ? engine->toScriptValue(m_result) : reason(engine);
            for (const QJSValue& deferred : std::exchange(m_deferred, {}))
                deferred.property(ok ? QStringLiteral("resolve") : QStringLiteral("reject")).call({ value });
        }
        m_deferred.clear();
    }
    m_self = QJSValue(); // from now on only QML's references keep this object
}

QJSValue TaskFuture::reason(QJSEngine* engine) const
{
    if (m_status == Canceled)
        return detail::JsHelpers::of(engine)->cancelledError.call({ QString::fromUtf8(CancelledError().what()) });
    try {
        std::rethrow_exception(m_failure);
    } catch (const detail::JsError& e) {
        if (const QJSValue reason = e.reason(); e.engine() == engine)
            return reason;
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
