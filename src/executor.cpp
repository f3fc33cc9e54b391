// SPDX-License-Identifier: MIT
// TaskPoolExecutor: the public face of the executor core.
#include "executorcore_p.h"

#include <QCoreApplication>
#include <QEventLoop>
#include <QPointer>
#include <QSemaphore>
#include <QTimer>

#include <stdexcept>

namespace TaskPool {

namespace detail {
    //! Waits for the last worker of a shut-down executor to leave.
    struct Drained {
        ExecutorCore& core;
        bool await_ready() const noexcept { return core.workerCount == 0; }
        void await_suspend(std::coroutine_handle<> handle)
        {
            core.shutdownWaiters.emplace_back(handle, QThread::currentThread());
        }
        void await_resume() const noexcept { }
    };

    void ExecutorCore::watchQuit()
    {
        // Held by the core, not by the executor object: an executor deleted with tasks running
        // (a window's child) still has them to stop when the application quits. Called in the
        // application's thread, which waits below for an executor of another thread.
        auto* app = QCoreApplication::instance();
        if (!app)
            return;
        m_quitConnection = QObject::connect(app, &QCoreApplication::aboutToQuit, [weak = weak_from_this()] {
            if (const auto core = weak.lock())
                core->applicationQuits();
        });
        watchHome(thread.load(std::memory_order_relaxed));
    }

    void ExecutorCore::watchHome(QThread* home)
    {
        QObject::disconnect(m_homeFinishedConnection);
        m_homeFinished.store(false, std::memory_order_relaxed);
        if (!home)
            return;
        m_homeFinishedConnection = QObject::connect(home, &QThread::finished, [weak = weak_from_this()] {
            if (const auto core = weak.lock())
                core->m_homeFinished.store(true, std::memory_order_release);
        });
    }

    void ExecutorCore::applicationQuits()
    {
        QThread* const home = thread.load(std::memory_order_acquire);
        if (home == QThread::currentThread())
            return finishAtQuit();
        if (home && !m_homeFinished.load(std::memory_order_acquire) && home->isRunning()) {
            // Its thread's loop may end right after exec() returns (QThread::quit()): the
            // application's thread waits for the executor there, a bounded time.
            auto done = std::make_shared<QSemaphore>();
            postTo(home, [self = shared_from_this(), done] {
                self->finishAtQuit();
                done->release();
            });
            done->tryAcquire(1,
                             int(std::min<qint64>(qint64(quitTimeout) + 1000,
                                                  std::numeric_limits<int>::max()))); // it may be busy first
            return;
        }
        // Its thread has ended (its QThread may be gone, and what ran there with it): nothing to do.
        if (m_homeFinished.load(std::memory_order_acquire))
            return;
        // Its thread has not run yet, or the executor is moving to it: no other thread touches the
        // core, and no task runs. Its queued tasks are cancelled from here.
        beginShutdown(true);
    }

    void ExecutorCore::finishAtQuit()
    {
        // exec() has returned and no loop will turn again: tasks left suspended would never end,
        // and the processes and replies they hold would outlive the application. So they are told
        // to stop, and a loop turns here until they have ended, for a bounded time.
        const auto self = shared_from_this(); // a slot may delete the executor
        beginShutdown(true);
        // What the stop handed to the loop happens at least once, whatever quitTimeout: the
        // helpers' terminate() and abort(), and the awaiters of the cancelled futures resumed.
        QCoreApplication::sendPostedEvents();
        const int timeout = quitTimeout;
        if (workerCount > 0 && timeout > 0) {
            QEventLoop loop;
            [](std::shared_ptr<ExecutorCore> core, QPointer<QEventLoop> loop) -> QCoro::Task<void> {
                co_await Drained { *core }; // the last worker left: every task has ended
                if (loop)
                    loop->quit();
            }(self, &loop);
            QTimer timer;
            timer.setTimerType(Qt::PreciseTimer);
            timer.setSingleShot(true);
            QObject::connect(&timer, &QTimer::timeout, &loop, &QEventLoop::quit);
            timer.start(timeout);
            if (workerCount > 0)
                loop.exec();
        }
        if (active > 0) {
            qCWarning(lcTaskPool,
                      "%d task(s) still running %d ms after the application quit: abandoned (give them a "
                      "std::stop_token and the cancellation helpers, and a quitTimeout longer than their grace)",
                      active, timeout);
        }
    }
} // namespace detail

TaskPoolExecutor::TaskPoolExecutor(QObject* parent) : TaskPoolExecutor(QThread::idealThreadCount(), {}, parent) { }

TaskPoolExecutor::TaskPoolExecutor(int maxWorkers, const QString& taskNamePrefix, QObject* parent) :
    QObject(parent), d(std::make_shared<detail::ExecutorCore>(this, maxWorkers, taskNamePrefix))
{
    d->watchQuit();
}

int TaskPoolExecutor::quitTimeout() const
{
    return d->quitTimeout;
}

void TaskPoolExecutor::setQuitTimeout(int ms)
{
    if (ms < 0)
        throw std::invalid_argument("quitTimeout must not be negative (0: do not wait)");
    if (d->quitTimeout.exchange(ms) != ms)
        Q_EMIT quitTimeoutChanged(ms);
}

TaskPoolExecutor::~TaskPoolExecutor()
{
    d->q = nullptr;
    d->stopReporting();
    d->claimHomeOnDestruction();
    // Queued work still completes, as promised: nothing could resume a paused queue any more, nor
    // make a due move. Done in the executor's thread, which a move may not have reached yet.
    d->atHome([core = d] {
        core->abandonMove();
        core->setPaused(false);
        core->beginShutdown(false);
    });
}

int TaskPoolExecutor::maxWorkers() const
{
    return d->maxWorkers;
}

void TaskPoolExecutor::setMaxWorkers(int maxWorkers)
{
    d->setMaxWorkers(maxWorkers);
}

QString TaskPoolExecutor::taskNamePrefix() const
{
    return d->prefix;
}

void TaskPoolExecutor::setTaskNamePrefix(const QString& prefix)
{
    const QString value = prefix.isEmpty() ? d->defaultPrefix : prefix;
    if (value == d->prefix)
        return;
    d->prefix = value;
    Q_EMIT taskNamePrefixChanged(value);
}

int TaskPoolExecutor::activeCount() const
{
    return d->active;
}

int TaskPoolExecutor::pendingCount() const
{
    return d->pendingCount();
}

int TaskPoolExecutor::workerCount() const
{
    return d->workerCount;
}

QStringList TaskPoolExecutor::workerNames() const
{
    QStringList names;
    for (int index = 0; names.size() < d->workerCount; ++index) {
        if (d->hasWorker(index))
            names.append(d->workerName(index));
    }
    return names;
}

bool TaskPoolExecutor::isShutdown() const
{
    return d->shutdown.load(std::memory_order_relaxed);
}

std::optional<std::chrono::milliseconds> TaskPoolExecutor::defaultTimeout() const
{
    return d->defaultTimeout;
}

void TaskPoolExecutor::setDefaultTimeout(std::optional<std::chrono::milliseconds> timeout)
{
    if (timeout && timeout->count() < 0)
        throw std::invalid_argument("a timeout must not be negative");
    if (timeout == std::chrono::milliseconds::max() || timeout == std::chrono::milliseconds(0))
        timeout.reset(); // 0 means none, as for the property (a task that may not run at all is no use)
    if (timeout == d->defaultTimeout)
        return;
    d->defaultTimeout = timeout;
    Q_EMIT defaultTimeoutChanged();
}

int TaskPoolExecutor::defaultTimeoutMs() const
{
    return d->defaultTimeout ? int(std::min<qint64>(d->defaultTimeout->count(), std::numeric_limits<int>::max())) : 0;
}

void TaskPoolExecutor::setDefaultTimeoutMs(int ms)
{
    if (ms < 0)
        throw std::invalid_argument("a timeout must not be negative (0: none)");
    setDefaultTimeout(std::chrono::milliseconds(ms)); // 0: none
}

bool TaskPoolExecutor::isPaused() const
{
    return d->paused;
}

void TaskPoolExecutor::pause()
{
    d->setPaused(true);
}

void TaskPoolExecutor::resume()
{
    d->setPaused(false);
}

void TaskPoolExecutor::setPaused(bool paused)
{
    d->setPaused(paused);
}

int TaskPoolExecutor::rateLimit() const
{
    return d->rateLimit();
}

std::chrono::milliseconds TaskPoolExecutor::rateWindow() const
{
    return d->rateWindow();
}

int TaskPoolExecutor::rateWindowMs() const
{
    return int(std::min<qint64>(d->rateWindow().count(), std::numeric_limits<int>::max()));
}

void TaskPoolExecutor::setRateLimit(int starts, std::chrono::milliseconds window)
{
    d->setRateLimit(starts, window);
}

bool TaskPoolExecutor::isRateLimited() const
{
    return d->rateLimited;
}

int TaskPoolExecutor::maxPerKey() const
{
    return d->maxPerKey();
}

void TaskPoolExecutor::setMaxPerKey(int limit)
{
    d->setMaxPerKey(limit);
}

int TaskPoolExecutor::keyLimit(const QString& key) const
{
    return d->keyLimit(key);
}

void TaskPoolExecutor::setKeyLimit(const QString& key, int limit)
{
    d->setKeyLimit(key, limit);
}

int TaskPoolExecutor::clear()
{
    return d->clear();
}

void TaskPoolExecutor::setClock(std::shared_ptr<Clock> clock)
{
    d->setClock(std::move(clock));
}

namespace {
    //! Suspends until the executor's counts drop (see ExecutorCore::CountWaiter).
    class CountAwaiter {
    public:
        CountAwaiter(std::shared_ptr<detail::ExecutorCore> core, int pendingBelow) :
            m_core(std::move(core)), m_waiter { pendingBelow, {} }
        {
        }
        CountAwaiter(const CountAwaiter&) = delete;
        CountAwaiter& operator=(const CountAwaiter&) = delete;
        ~CountAwaiter()
        {
            if (m_waiter.handle)
                m_core->removeCountWaiter(&m_waiter); // its coroutine was destroyed while waiting
        }
        bool await_ready() const { return m_core->countsReached(m_waiter); }
        void await_suspend(std::coroutine_handle<> handle)
        {
            m_waiter.handle = handle;
            m_core->addCountWaiter(&m_waiter);
        }
        void await_resume() const noexcept { }
        struct Ref {
            CountAwaiter* awaiter;
            bool await_ready() const { return awaiter->await_ready(); }
            void await_suspend(std::coroutine_handle<> handle) { awaiter->await_suspend(handle); }
            void await_resume() const noexcept { }
        };

    private:
        std::shared_ptr<detail::ExecutorCore> m_core; // the counts stay readable without the executor
        detail::ExecutorCore::CountWaiter m_waiter;
    };

    QCoro::Task<void> awaitCounts(std::shared_ptr<detail::ExecutorCore> core, int pendingBelow)
    {
        // The awaiter is a named local (it must not move) awaited through a trivial reference: g++ 12
        // destroyed a temporary awaitable that held the core twice, releasing one reference too many.
        CountAwaiter awaiter(std::move(core), pendingBelow);
        co_await CountAwaiter::Ref { &awaiter };
    }

    void checkExecutorThread(const detail::ExecutorCore& core, const char* what)
    {
        const_cast<detail::ExecutorCore&>(core).claimHome();
        if (QThread::currentThread() != core.thread.load(std::memory_order_relaxed))
            throw std::logic_error(std::string(what) + " is awaited in the executor's thread only");
    }
} // namespace

QCoro::Task<void> TaskPoolExecutor::pendingBelow(int count)
{
    if (count < 1)
        throw std::invalid_argument("pendingBelow(count): count must be greater than 0");
    checkExecutorThread(*d, "pendingBelow()");
    return awaitCounts(d, count);
}

QCoro::Task<void> TaskPoolExecutor::whenIdle()
{
    checkExecutorThread(*d, "whenIdle()");
    return awaitCounts(d, 0);
}

void TaskPoolExecutor::checkOptions(const SubmitOptions& options)
{
    if (options.timeout && options.timeout->count() < 0)
        throw std::invalid_argument("SubmitOptions::timeout must not be negative");
}

void TaskPoolExecutor::configure(detail::Job* job, const SubmitOptions* options, bool takesStop)
{
    if (options)
        job->priority = options->priority;
    const bool needsControl
        = takesStop || (options && (options->timeout || options->context || !options->key.isEmpty()));
    if (!needsControl)
        return;
    auto* control = new detail::JobControl;
    job->control = control;
    control->takesStop = takesStop;
    if (!options)
        return;
    control->timeout = options->timeout;
    control->key = options->key;
    if (options->context) {
        job->ref(); // held by the connection until the job ends (releaseControls()) or the context goes
        control->context = QObject::connect(options->context, &QObject::destroyed, [ref = detail::JobRef(job)] {
            detail::ExecutorCore::contextDestroyed(ref.get());
        });
    }
}

QString TaskPoolExecutor::currentWorkerName()
{
    const auto& current = detail::currentWorker;
    return current.core ? current.core->workerName(current.index) : QString();
}

bool TaskPoolExecutor::event(QEvent* event)
{
    if (event->type() == QEvent::ThreadChange)
        d->beginMove();
    return QObject::event(event);
}

void TaskPoolExecutor::connectNotify(const QMetaMethod& signal)
{
    d->countListener(signal, +1);
}

void TaskPoolExecutor::disconnectNotify(const QMetaMethod& signal)
{
    d->countListener(signal, -1);
}

void TaskPoolExecutor::enqueue(detail::Job* job)
{
    // Read once: the executor may be moving to another thread (then it is handed over as from one).
    QThread* home = d->thread.load(std::memory_order_acquire);
    if (!home) {
        d->claimHome();
        home = d->thread.load(std::memory_order_acquire);
    }
    job->thread = home ? home : thread(); // before the job is published to any other thread
    if (QThread::currentThread() == home) {
        d->enqueue(job);
        return;
    }
    // Its executor, for a cancel in the executor's thread before the hand-over is taken in.
    job->core = d.get();
    try {
        d->enqueueRemote(job);
    } catch (...) {
        job->core = nullptr;
        detail::ExecutorCore::releaseControls(job); // shut down meanwhile: never queued
        throw;
    }
}

QCoro::Task<void> TaskPoolExecutor::shutdown(ShutdownOptions options)
{
    const auto core = d; // `this` may be destroyed while this coroutine waits
    core->beginShutdown(options.cancelFutures);
    if (options.wait)
        co_await detail::Drained { *core };
}

} // namespace TaskPool
