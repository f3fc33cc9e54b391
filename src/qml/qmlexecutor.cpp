// SPDX-License-Identifier: MIT
#include "jstask_p.h"
#include "taskfuturetracker_p.h"

#include <taskpool/qml.h>

#include <QFutureInterface>
#include <QPointer>
#include <QQmlInfo>

#include <stdexcept>

namespace TaskPool {

namespace {

    // The TaskFuture of a JavaScript task, once submit() made it (null once collected).
    using StartNotice = std::shared_ptr<QPointer<TaskFuture>>;

    // Runs a JavaScript task inside a worker. It first yields to the event loop, so that the function
    // never runs inside submit() itself, then awaits what the function's outcome settles. It tells
    // its TaskFuture that it started, which the executor can no longer do once it is destroyed.
    QCoro::Task<QVariant> runJs(QPointer<QJSEngine> engine, QJSValue fn, QJSValueList args, StartNotice notice)
    {
        co_await detail::Yield {};
        if (TaskFuture* future = *notice)
            detail::TaskFutureTracker::started(future);
        notice.reset();
        if (!engine)
            throw CancelledError(); // the engine went away while the task was queued
        auto* helpers = detail::JsHelpers::of(engine);
        if (!helpers->runner.isCallable())
            throw std::runtime_error("the JavaScript engine is interrupted");
        auto* settler = new detail::JsSettler(engine);
        const QFuture<QVariant> outcome = settler->future();
        QJSValue array = engine->newArray(uint(args.size()));
        for (qsizetype i = 0; i < args.size(); ++i)
            array.setProperty(quint32(i), args.at(i));
        args.clear();
        const QJSValue thrown = helpers->runner.call({ fn, array, engine->newQObject(settler) });
        if (thrown.isError()) // the runner catches everything; this is the engine refusing to run
            settler->reject(thrown);
        co_return co_await Future<QVariant>(outcome);
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
    // Every TaskFuture made with this executor settles on its task's terminal signal (through its
    // detail::TaskFutureTracker), which the executor emits before idle.
    connect(e, &TaskPoolExecutor::idle, this, &QmlTaskPoolExecutor::idle);
}

QmlTaskPoolExecutor::~QmlTaskPoolExecutor()
{
    // The executor's own destructor shuts it down; what it signals then is no business of QML's.
    m_executor->disconnect(this);
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

TaskFuture* QmlTaskPoolExecutor::submitList(const QJSValue& fn, const QJSValueList& args)
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
        auto notice = std::make_shared<QPointer<TaskFuture>>();
        TaskFuture* future
            = toTaskFuture(m_executor->submit(&runJs, QPointer<QJSEngine>(engine), fn, args, notice), m_executor.get());
        detail::TaskFutureTracker::startsItself(future);
        *notice = future;
        return future;
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
    return submitList(fn, {});
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1)
{
    return submitList(fn, { a1 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2)
{
    return submitList(fn, { a1, a2 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3)
{
    return submitList(fn, { a1, a2, a3 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                        const QJSValue& a4)
{
    return submitList(fn, { a1, a2, a3, a4 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                        const QJSValue& a4, const QJSValue& a5)
{
    return submitList(fn, { a1, a2, a3, a4, a5 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                        const QJSValue& a4, const QJSValue& a5, const QJSValue& a6)
{
    return submitList(fn, { a1, a2, a3, a4, a5, a6 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                        const QJSValue& a4, const QJSValue& a5, const QJSValue& a6, const QJSValue& a7)
{
    return submitList(fn, { a1, a2, a3, a4, a5, a6, a7 });
}

TaskFuture* QmlTaskPoolExecutor::submit(const QJSValue& fn, const QJSValue& a1, const QJSValue& a2, const QJSValue& a3,
                                        const QJSValue& a4, const QJSValue& a5, const QJSValue& a6, const QJSValue& a7,
                                        const QJSValue& a8)
{
    return submitList(fn, { a1, a2, a3, a4, a5, a6, a7, a8 });
}

QJSValue QmlTaskPoolExecutor::map(const QJSValue& fn, const QJSValue& items)
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
        TaskFuture* future = submitList(fn, { items.property(i) });
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
