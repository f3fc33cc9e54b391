// SPDX-License-Identifier: MIT
#include "jstask_p.h"
#include "taskfuturetracker_p.h"

#include <taskpool/qml.h>

#include <QFutureInterface>
#include <QJSValueIterator>
#include <QPointer>
#include <QQmlInfo>

#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <stop_token>

namespace TaskPool {

namespace {

    // What submit() shares with its JavaScript task: the TaskFuture it made (null once collected,
    // or once the task told it of its start) and the task's pool future (a timeout or a cancel).
    struct JsTask {
        QPointer<TaskFuture> future;
        QFuture<void> outcome;
    };
    using JsTaskRef = std::shared_ptr<JsTask>;

    // Why a task's abort signal is set: a TimeoutError when its future timed out, a CancelledError
    // otherwise (a cancel, a context's or the QML executor's end, a cancelling shutdown).
    QJSValue abortReason(detail::JsHelpers* helpers, QFuture<void> outcome)
    {
        if (outcome.isFinished()) {
            try {
                outcome.waitForFinished(); // settled already: rethrows its failure, if any
            } catch (const TimeoutError& e) {
                return helpers->namedError.call({ QStringLiteral("TimeoutError"), QString::fromUtf8(e.what()) });
            } catch (...) {
            }
            return helpers->cancelledError.call({ QStringLiteral("the task was cancelled") });
        }
        return helpers->cancelledError.call({ QStringLiteral("the task was asked to stop (its executor shut down)") });
    }

    // Sets when it goes: the task's abort signal is not set any more once the task has ended.
    struct EndFlag {
        std::shared_ptr<bool> ended = std::make_shared<bool>(false);
        EndFlag() = default;
        EndFlag(const EndFlag&) = delete;
        EndFlag& operator=(const EndFlag&) = delete;
        ~EndFlag() { *ended = true; }
    };

    // Runs a JavaScript task inside a worker. It first yields to the event loop, so that the function
    // never runs inside submit() itself, then awaits what the function's outcome settles. It tells
    // its TaskFuture that it started, which the executor can no longer do once it is destroyed.
    //
    // A function that declares more parameters than it is given arguments receives the task's
    // abort signal in its last declared parameter. A stop request of the executor (its thread)
    // sets the signal from the event loop, in the engine's thread: never inside a C++ call that
    // may be tearing the engine down, and not once the task has ended.
    QCoro::Task<QVariant> runJs(std::stop_token stop, QPointer<QJSEngine> engine, QJSValue fn, QJSValueList args,
                                JsTaskRef task)
    {
        co_await detail::Yield {};
        if (TaskFuture* future = task->future)
            detail::TaskFutureTracker::started(future);
        task->future.clear();
        if (!engine)
            throw CancelledError(); // the engine went away while the task was queued
        if (stop.stop_requested())
            throw CancelledError(); // cancelled, timed out or stopped before its function ran
        auto* helpers = detail::JsHelpers::of(engine);
        if (!helpers->isComplete())
            throw std::runtime_error("the JavaScript engine is interrupted");
        EndFlag endFlag;
        QJSValue controller;
        const QJSValue length = fn.property(QStringLiteral("length"));
        if (const qint64 declared = length.isNumber() ? qint64(length.toNumber()) : 0; declared > args.size()) {
            controller = helpers->abortController.call();
            while (args.size() < declared - 1)
                args.append(QJSValue());
            args.append(controller.property(QStringLiteral("signal")));
        }
        std::optional<std::stop_callback<std::function<void()>>> onStop;
        if (!controller.isUndefined()) {
            onStop.emplace(stop, [engine, controller, task, ended = endFlag.ended] {
                if (!engine)
                    return;
                QMetaObject::invokeMethod(
                    engine.data(),
                    [engine, controller, task, ended] {
                        if (*ended || !engine)
                            return;
                        auto* helpers = detail::JsHelpers::of(engine);
                        if (helpers->isComplete())
                            controller.property(QStringLiteral("abort")).call({ abortReason(helpers, task->outcome) });
                    },
                    Qt::QueuedConnection);
            });
        }
        auto* settler = new detail::JsSettler(engine);
        const QFuture<QVariant> outcome = settler->future();
        QJSValue array = engine->newArray(uint(args.size()));
        for (qsizetype i = 0; i < args.size(); ++i)
            array.setProperty(quint32(i), args.at(i));
        args.clear();
        const QJSValue thrown = helpers->runner.call({ fn, array, engine->newQObject(settler) });
        if (thrown.isError()) // the runner catches everything; this is the engine refusing to run
            settler->reject(thrown);
        try {
            co_return co_await Future<QVariant>(outcome);
        } catch (const detail::JsError& e) {
            // Rejecting with a CancelledError (the signal's reason, say) ends the task cancelled,
            // as a C++ task that throws CancelledError does.
            const QJSValue reason = e.reason();
            if (reason.isError()
                && reason.property(QStringLiteral("name")).toString() == QLatin1String("CancelledError"))
                throw CancelledError();
            throw;
        }
    }

    QCoro::Task<void> finishAfter(QCoro::Task<void> work, QFutureInterface<void> done)
    {
        co_await work;
        done.reportFinished();
    }

    QString describeValue(const QJSValue& value)
    {
        if (value.isUndefined())
            return QStringLiteral("undefined");
        if (value.isNull())
            return QStringLiteral("null");
        if (value.isString())
            return QStringLiteral("the string \"%1\"").arg(value.toString());
        if (value.isNumber() || value.isBool())
            return QStringLiteral("the value %1").arg(value.toString());
        if (value.isArray())
            return QStringLiteral("an array");
        return QStringLiteral("an object");
    }

} // namespace

QmlTaskPoolExecutor::QmlTaskPoolExecutor(QObject* parent) :
    QObject(parent), m_executor(std::make_unique<TaskPoolExecutor>())
{
    TaskPoolExecutor* e = m_executor.get();
    connect(e, &TaskPoolExecutor::maxWorkersChanged, this, &QmlTaskPoolExecutor::maxWorkersChanged);
    connect(e, &TaskPoolExecutor::taskNamePrefixChanged, this, &QmlTaskPoolExecutor::taskNamePrefixChanged);
    connect(e, &TaskPoolExecutor::activeCountChanged, this, &QmlTaskPoolExecutor::activeCountChanged);
    connect(e, &TaskPoolExecutor::pendingCountChanged, this, &QmlTaskPoolExecutor::pendingCountChanged);
    connect(e, &TaskPoolExecutor::workerCountChanged, this, &QmlTaskPoolExecutor::workerCountChanged);
    connect(e, &TaskPoolExecutor::isShutdownChanged, this, &QmlTaskPoolExecutor::isShutdownChanged);
    connect(e, &TaskPoolExecutor::defaultTimeoutChanged, this, &QmlTaskPoolExecutor::timeoutChanged);
    connect(e, &TaskPoolExecutor::pausedChanged, this, &QmlTaskPoolExecutor::pausedChanged);
    connect(e, &TaskPoolExecutor::rateLimitChanged, this, [this] {
        if (m_executor->rateLimit() > 0)
            m_rateWindowMs = m_executor->rateWindowMs();
        Q_EMIT rateLimitChanged();
    });
    connect(e, &TaskPoolExecutor::rateLimitedChanged, this, &QmlTaskPoolExecutor::rateLimitedChanged);
    connect(e, &TaskPoolExecutor::maxPerKeyChanged, this, &QmlTaskPoolExecutor::maxPerKeyChanged);
    // Every TaskFuture made with this executor settles on its task's terminal signal (through its
    // detail::TaskFutureTracker), which the executor emits before idle.
    connect(e, &TaskPoolExecutor::idle, this, &QmlTaskPoolExecutor::idle);
}

QmlTaskPoolExecutor::~QmlTaskPoolExecutor()
{
    // What the executor signals from now on is no business of QML's.
    m_executor->disconnect(this);
    // The work of a destroyed QML object ends with it: queued tasks are cancelled, running ones
    // are asked to stop (a JavaScript task's abort signal is set from the event loop).
    const QCoro::Task<void> done = m_executor->shutdown({ .wait = false, .cancelFutures = true });
}

int QmlTaskPoolExecutor::maxWorkers() const
{
    return m_executor->maxWorkers();
}

void QmlTaskPoolExecutor::setMaxWorkers(int maxWorkers)
{
    try {
        m_executor->setMaxWorkers(maxWorkers);
    } catch (const std::invalid_argument& e) {
        qmlWarning(this) << "TaskPoolExecutor: " << e.what() << " (got " << maxWorkers << "); keeping "
                         << m_executor->maxWorkers();
    }
}

QString QmlTaskPoolExecutor::taskNamePrefix() const
{
    return m_executor->taskNamePrefix();
}

void QmlTaskPoolExecutor::setTaskNamePrefix(const QString& prefix)
{
    m_executor->setTaskNamePrefix(prefix);
}

int QmlTaskPoolExecutor::activeCount() const
{
    return m_executor->activeCount();
}

int QmlTaskPoolExecutor::pendingCount() const
{
    return m_executor->pendingCount();
}

int QmlTaskPoolExecutor::workerCount() const
{
    return m_executor->workerCount();
}

QStringList QmlTaskPoolExecutor::workerNames() const
{
    return m_executor->workerNames();
}

bool QmlTaskPoolExecutor::isShutdown() const
{
    return m_executor->isShutdown();
}

int QmlTaskPoolExecutor::timeout() const
{
    return m_executor->defaultTimeoutMs();
}

void QmlTaskPoolExecutor::setTimeout(int ms)
{
    try {
        m_executor->setDefaultTimeoutMs(ms);
    } catch (const std::invalid_argument& e) {
        qmlWarning(this) << "TaskPoolExecutor: " << e.what() << " (got " << ms << "); keeping " << timeout();
    }
}

bool QmlTaskPoolExecutor::isPaused() const
{
    return m_executor->isPaused();
}

void QmlTaskPoolExecutor::setPaused(bool paused)
{
    m_executor->setPaused(paused);
}

void QmlTaskPoolExecutor::pause()
{
    m_executor->pause();
}

void QmlTaskPoolExecutor::resume()
{
    m_executor->resume();
}

int QmlTaskPoolExecutor::clear()
{
    return m_executor->clear();
}

int QmlTaskPoolExecutor::rateLimit() const
{
    return m_executor->rateLimit();
}

int QmlTaskPoolExecutor::rateWindow() const
{
    return m_executor->rateLimit() > 0 ? m_executor->rateWindowMs() : m_rateWindowMs;
}

bool QmlTaskPoolExecutor::isRateLimited() const
{
    return m_executor->isRateLimited();
}

void QmlTaskPoolExecutor::setRateLimit(int starts)
{
    setRateLimit(starts, rateWindow());
}

void QmlTaskPoolExecutor::setRateLimit(int starts, int windowMs)
{
    if (starts < 0 || windowMs <= 0) {
        const char* what = starts < 0 ? "the rate limit must not be negative (0: no limit)"
                                      : "the rate window must be longer than 0 ms";
        qmlWarning(this) << "TaskPoolExecutor: " << what << " (got " << starts << " starts in " << windowMs
                         << " ms); keeping " << rateLimit() << " in " << rateWindow() << " ms";
        return;
    }
    const bool windowChanged = windowMs != rateWindow();
    m_rateWindowMs = windowMs;
    const int before = rateLimit();
    m_executor->setRateLimit(starts, std::chrono::milliseconds(windowMs));
    // Without a limit the executor keeps no window: the change is this object's alone.
    if (starts == 0 && before == 0 && windowChanged)
        Q_EMIT rateLimitChanged();
}

void QmlTaskPoolExecutor::setRateWindow(int windowMs)
{
    setRateLimit(rateLimit(), windowMs);
}

int QmlTaskPoolExecutor::maxPerKey() const
{
    return m_executor->maxPerKey();
}

void QmlTaskPoolExecutor::setMaxPerKey(int limit)
{
    try {
        m_executor->setMaxPerKey(limit);
    } catch (const std::invalid_argument& e) {
        qmlWarning(this) << "TaskPoolExecutor: " << e.what() << " (got " << limit << "); keeping " << maxPerKey();
    }
}

int QmlTaskPoolExecutor::keyLimit(const QString& key) const
{
    return m_executor->keyLimit(key);
}

void QmlTaskPoolExecutor::setKeyLimit(const QString& key, int limit)
{
    try {
        m_executor->setKeyLimit(key, limit);
    } catch (const std::invalid_argument& e) {
        if (QJSEngine* engine = qjsEngine(this))
            engine->throwError(QJSValue::RangeError,
                               QStringLiteral("TaskPoolExecutor.setKeyLimit: ") + QString::fromUtf8(e.what()));
    }
}

TaskFuture* QmlTaskPoolExecutor::whenIdle()
{
    return countsFuture(0, "whenIdle");
}

TaskFuture* QmlTaskPoolExecutor::pendingBelow(int count)
{
    if (count < 1) {
        if (QJSEngine* engine = qjsEngine(this))
            engine->throwError(
                QJSValue::RangeError,
                QStringLiteral("TaskPoolExecutor.pendingBelow: count must be greater than 0, got %1").arg(count));
        return nullptr;
    }
    return countsFuture(count, "pendingBelow");
}

TaskFuture* QmlTaskPoolExecutor::countsFuture(int pendingBelow, const char* method)
{
    QFutureInterface<void> done;
    done.reportStarted();
    try {
        finishAfter(pendingBelow > 0 ? m_executor->pendingBelow(pendingBelow) : m_executor->whenIdle(), done);
    } catch (const std::exception& e) {
        if (QJSEngine* engine = qjsEngine(this))
            engine->throwError(
                QStringLiteral("TaskPoolExecutor.%1: %2").arg(QLatin1String(method), QString::fromUtf8(e.what())));
        return nullptr;
    }
    return toTaskFuture(done.future());
}

bool QmlTaskPoolExecutor::readOptions(const QJSValue& options, SubmitOptions* out, const char* method)
{
    QJSEngine* engine = qjsEngine(this);
    const auto refuse = [&](const QString& what) {
        if (engine)
            engine->throwError(QJSValue::TypeError,
                               QStringLiteral("TaskPoolExecutor.%1: %2").arg(QLatin1String(method), what));
        return false;
    };
    QJSValueIterator it(options);
    while (it.hasNext()) {
        it.next();
        const QString name = it.name();
        const QJSValue value = it.value();
        if (value.isUndefined())
            continue;
        if (name == QLatin1String("priority")) {
            const double priority = value.toNumber();
            if (!value.isNumber() || priority != std::trunc(priority) || priority < std::numeric_limits<int>::min()
                || priority > std::numeric_limits<int>::max())
                return refuse(QStringLiteral("the priority must be an integer, got %1").arg(describeValue(value)));
            out->priority = int(priority);
        } else if (name == QLatin1String("timeout")) {
            const double ms = value.toNumber();
            if (!value.isNumber() || !(ms >= 0) || ms > std::numeric_limits<int>::max())
                return refuse(QStringLiteral("the timeout must be a number of milliseconds >= 0 (0: none), got %1")
                                  .arg(describeValue(value)));
            out->timeout
                = ms == 0 ? std::chrono::milliseconds::max() : std::chrono::milliseconds(qint64(std::ceil(ms)));
        } else if (name == QLatin1String("key")) {
            if (!value.isString() && !value.isNull())
                return refuse(QStringLiteral("the key must be a string, got %1").arg(describeValue(value)));
            out->key = value.toString();
            if (value.isNull())
                out->key.clear();
        } else if (name == QLatin1String("context")) {
            if (value.isNull())
                continue;
            QObject* context = value.toQObject();
            if (!context)
                return refuse(QStringLiteral("the context must be a QML object, got %1").arg(describeValue(value)));
            out->context = context;
        } else {
            return refuse(
                QStringLiteral("unknown option \"%1\" (the options are priority, timeout, key and context)").arg(name));
        }
    }
    return true;
}

namespace {
    // The options object that may come before the function: a plain object (not an array, a
    // function or a QML object).
    bool isOptionsObject(const QJSValue& value)
    {
        return value.isObject() && !value.isArray() && !value.isCallable() && !value.isQObject() && !value.isError();
    }
} // namespace

TaskFuture* QmlTaskPoolExecutor::submitCall(const QJSValueList& call)
{
    if (call.size() >= 2 && isOptionsObject(call.first())) {
        if (!call.at(1).isCallable()) {
            if (QJSEngine* engine = qjsEngine(this))
                engine->throwError(
                    QJSValue::TypeError,
                    QStringLiteral("TaskPoolExecutor.submit: the function must follow the options object, got %1")
                        .arg(describeValue(call.at(1))));
            return nullptr;
        }
        SubmitOptions options;
        if (!readOptions(call.first(), &options, "submit"))
            return nullptr;
        return submitList(call.at(1), call.mid(2), &options);
    }
    return submitList(call.first(), call.mid(1), nullptr);
}

TaskFuture* QmlTaskPoolExecutor::submitList(const QJSValue& fn, const QJSValueList& args, const SubmitOptions* options)
{
    QJSEngine* engine = qjsEngine(this);
    if (!engine)
        return nullptr; // not reachable from JavaScript
    if (!fn.isCallable()) {
        engine->throwError(QJSValue::TypeError,
                           QStringLiteral("TaskPoolExecutor.submit: the first argument must be a function, got %1")
                               .arg(describeValue(fn)));
        return nullptr;
    }
    if (isShutdown()) {
        engine->throwError(QStringLiteral("TaskPoolExecutor.submit: ") + QString::fromUtf8(ShutdownError().what()));
        return nullptr;
    }
    try {
        auto task = std::make_shared<JsTask>();
        auto future = options ? m_executor->submit(*options, &runJs, QPointer<QJSEngine>(engine), fn, args, task)
                              : m_executor->submit(&runJs, QPointer<QJSEngine>(engine), fn, args, task);
        task->outcome = QFuture<void>(future);
        TaskFuture* taskFuture = toTaskFuture(future, m_executor.get());
        detail::TaskFutureTracker::startsItself(taskFuture);
        task->future = taskFuture;
        return taskFuture;
    } catch (const std::exception& e) {
        engine->throwError(QStringLiteral("TaskPoolExecutor.submit: ") + QString::fromUtf8(e.what()));
        return nullptr;
    }
}

TaskFuture* QmlTaskPoolExecutor::submit()
{
    if (QJSEngine* engine = qjsEngine(this))
        engine->throwError(QJSValue::TypeError,
                           QStringLiteral("TaskPoolExecutor.submit: a function to run is required"));
    return nullptr;
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn)
{
    return submitCall({ fn });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1)
{
    return submitCall({ fn, a1 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2)
{
    return submitCall({ fn, a1, a2 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3)
{
    return submitCall({ fn, a1, a2, a3 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                        const QJSValue& a4)
{
    return submitCall({ fn, a1, a2, a3, a4 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                        const QJSValue& a4, const QJSValue& a5)
{
    return submitCall({ fn, a1, a2, a3, a4, a5 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                        const QJSValue& a4, const QJSValue& a5, const QJSValue& a6)
{
    return submitCall({ fn, a1, a2, a3, a4, a5, a6 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                        const QJSValue& a4, const QJSValue& a5, const QJSValue& a6, const QJSValue& a7)
{
    return submitCall({ fn, a1, a2, a3, a4, a5, a6, a7 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                        const QJSValue& a4, const QJSValue& a5, const QJSValue& a6, const QJSValue& a7,
                                        const QJSValue& a8)
{
    return submitCall({ fn, a1, a2, a3, a4, a5, a6, a7, a8 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& options, const QJSValue& fn, const QJSValue& a1,
                                        const QJSValue& a2, const QJSValue& a3, const QJSValue& a4, const QJSValue& a5,
                                        const QJSValue& a6, const QJSValue& a7, const QJSValue& a8)
{
    return submitCall({ options, fn, a1, a2, a3, a4, a5, a6, a7, a8 });
}

QJSValue QmlTaskPoolExecutor::map(const QJSValue& fn, const QJSValue& items)
{
    return mapWith(nullptr, fn, items);
}

QJSValue QmlTaskPoolExecutor::map(const QJSValue& options, const QJSValue& fn, const QJSValue& items)
{
    QJSEngine* engine = qjsEngine(this);
    if (!engine)
        return {};
    if (!isOptionsObject(options)) {
        engine->throwError(QJSValue::TypeError,
                           QStringLiteral("TaskPoolExecutor.map: with three arguments the first must be an options "
                                          "object like {priority: 1}, got %1")
                               .arg(describeValue(options)));
        return {};
    }
    SubmitOptions submitOptions;
    if (!readOptions(options, &submitOptions, "map"))
        return {};
    return mapWith(&submitOptions, fn, items);
}

QJSValue QmlTaskPoolExecutor::mapWith(const SubmitOptions* options, const QJSValue& fn, const QJSValue& items)
{
    QJSEngine* engine = qjsEngine(this);
    if (!engine)
        return {};
    if (!fn.isCallable()) {
        engine->throwError(QJSValue::TypeError,
                           QStringLiteral("TaskPoolExecutor.map: the first argument must be a function, got %1")
                               .arg(describeValue(fn)));
        return {};
    }
    if (!items.isArray()) {
        engine->throwError(QJSValue::TypeError,
                           QStringLiteral("TaskPoolExecutor.map: the second argument must be an array, got %1")
                               .arg(describeValue(items)));
        return {};
    }
    if (isShutdown()) {
        engine->throwError(QStringLiteral("TaskPoolExecutor.map: ") + QString::fromUtf8(ShutdownError().what()));
        return {};
    }
    const auto length = items.property(QStringLiteral("length")).toUInt();
    QJSValue futures = engine->newArray(length);
    for (quint32 i = 0; i < length; ++i) {
        TaskFuture* future = submitList(fn, { items.property(i) }, options);
        futures.setProperty(i, engine->newQObject(future));
    }
    return futures;
}

TaskFuture* QmlTaskPoolExecutor::shutdown(const QJSValue& options)
{
    QJSEngine* engine = qjsEngine(this);
    ShutdownOptions shutdownOptions;
    if (!options.isUndefined() && !options.isNull()) {
        if (!options.isObject() || options.isArray() || options.isCallable()) {
            if (engine)
                engine->throwError(QJSValue::TypeError,
                                   QStringLiteral("TaskPoolExecutor.shutdown: options must be an object like "
                                                  "{wait: true, cancelFutures: false}, got %1")
                                       .arg(describeValue(options)));
            return nullptr;
        }
        if (const QJSValue wait = options.property(QStringLiteral("wait")); !wait.isUndefined())
            shutdownOptions.wait = wait.toBool();
        if (const QJSValue cancel = options.property(QStringLiteral("cancelFutures")); !cancel.isUndefined())
            shutdownOptions.cancelFutures = cancel.toBool();
    }
    QFutureInterface<void> done;
    done.reportStarted();
    finishAfter(m_executor->shutdown(shutdownOptions), done);
    return toTaskFuture(done.future());
}

} // namespace TaskPool
