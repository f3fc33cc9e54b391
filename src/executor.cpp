// SPDX-License-Identifier: MIT
#include "executorcore_p.h"

#include <QAbstractEventDispatcher>
#include <QMetaMethod>

#include <algorithm>
#include <stdexcept>

Q_LOGGING_CATEGORY(lcTaskPool, "taskpool", QtInfoMsg)

namespace TaskPool {

namespace detail {

    namespace {

        std::atomic<int> lastExecutorNumber { -1 };

        int checkedMaxWorkers(int maxWorkers)
        {
            if (maxWorkers <= 0)
                throw std::invalid_argument("maxWorkers must be greater than 0");
            return maxWorkers;
        }

        //! A coroutine nobody awaits: it starts at once and frees its frame when it returns.
        struct Detached {
            struct promise_type {
                Detached get_return_object() noexcept { return {}; }
                std::suspend_never initial_suspend() const noexcept { return {}; }
                std::suspend_never final_suspend() const noexcept { return {}; }
                void return_void() const noexcept { }
                void unhandled_exception() const noexcept { std::terminate(); }
            };
        };

        //! Suspends an idle worker until there is work (or it has to leave).
        struct NextJob {
            ExecutorCore& core;
            ExecutorCore::Worker& worker;
            Job* job = nullptr;

            bool await_ready()
            {
                job = core.take(worker);
                return job || core.shouldLeave(worker);
            }
            void await_suspend(std::coroutine_handle<> handle) { core.park(worker, handle); }
            Job* await_resume()
            {
                if (!job)
                    job = core.take(worker);
                return job;
            }
        };

        //! Waits for the last worker of a shut-down executor to leave.
        struct Drained {
            ExecutorCore& core;
            bool await_ready() const noexcept { return core.workerCount == 0; }
            void await_suspend(std::coroutine_handle<> handle) { core.shutdownWaiters.push_back(handle); }
            void await_resume() const noexcept { }
        };

        struct CurrentWorker {
            const ExecutorCore* core = nullptr;
            int index = -1;
        };
        thread_local CurrentWorker currentWorker;

        //! Runs a job in a worker: the worker stays suspended while the task's coroutine runs.
        struct RunJob {
            const ExecutorCore& core;
            int index;
            Job* job;
            bool running = true;

            bool await_ready() const noexcept { return false; }
            bool await_suspend(std::coroutine_handle<> worker)
            {
                currentWorker = { &core, index };
                // Once run() returned true the worker may be resumed at any time: this awaiter is
                // touched again only when it returned false.
                const bool suspended = job->run(worker);
                currentWorker = {};
                if (!suspended)
                    running = false;
                return suspended;
            }
            void await_resume()
            {
                if (running)
                    job->finishRun();
            }
        };

        Detached workerLoop(std::shared_ptr<ExecutorCore> core, ExecutorCore::Worker* worker)
        {
            co_await Yield {}; // never run a task inside submit() itself
            qCDebug(lcTaskPool) << "worker started:" << core->workerName(worker->index);
            for (;;) {
                Job* job = co_await NextJob { *core, *worker };
                if (!job) {
                    if (core->shouldLeave(*worker))
                        break;
                    continue; // woken for a job that was cancelled meanwhile
                }
                core->start(*worker, job);
                co_await RunJob { *core, worker->index, job };
                core->end(job);
            }
            qCDebug(lcTaskPool) << "worker left:" << core->workerName(worker->index);
            core->leave(worker);
        }

    } // namespace

    ExecutorCore::ExecutorCore(TaskPoolExecutor* q, int maxWorkers, QString prefix) :
        q(q),
        thread(q->thread()),
        maxWorkers(checkedMaxWorkers(maxWorkers)),
        defaultPrefix(QStringLiteral("TaskPoolExecutor-%1").arg(lastExecutorNumber.fetch_add(1) + 1))
    {
        this->prefix = prefix.isEmpty() ? defaultPrefix : std::move(prefix);
        m_workers.resize(maxWorkers, nullptr);
    }

    void ExecutorCore::push(Job* job)
    {
        job->prev = m_tail;
        job->next = nullptr;
        (m_tail ? m_tail->next : m_head) = job;
        m_tail = job;
        job->queued = true;
        ++pending;
    }

    void ExecutorCore::unlink(Job* job)
    {
        (job->prev ? job->prev->next : m_head) = job->next;
        (job->next ? job->next->prev : m_tail) = job->prev;
        job->prev = job->next = nullptr;
        job->queued = false;
        --pending;
    }

    Job* ExecutorCore::popFront()
    {
        Job* job = m_head;
        if (job)
            unlink(job);
        return job;
    }

    void ExecutorCore::enqueue(Job* job)
    {
        job->thread = thread;
        job->core = this;
        job->ref(); // the executor's reference, until the job ends or is dropped
        push(job);
        m_busy = true;
        if (listens(PendingCountChanged))
            Q_EMIT q->pendingCountChanged(pending);
        wakeOrSpawn();
    }

    void ExecutorCore::enqueueRemote(Job* job)
    {
        std::lock_guard lock(m_incomingMutex);
        if (shutdown.load(std::memory_order_relaxed))
            throw ShutdownError();
        job->thread = thread;
        job->ref(); // handed over with the job
        m_incoming.push_back(job);
        if (std::exchange(m_incomingPosted, true))
            return;
        QMetaObject::invokeMethod(
            QAbstractEventDispatcher::instance(thread), [self = shared_from_this()] { self->takeIncoming(); },
            Qt::QueuedConnection);
    }

    void ExecutorCore::takeIncoming()
    {
        std::vector<Job*> jobs;
        {
            std::lock_guard lock(m_incomingMutex);
            jobs.swap(m_incoming);
            m_incomingPosted = false;
        }
        for (Job* job : jobs) {
            enqueue(job);
            job->deref(); // the hand-over reference; enqueue() took the executor's
        }
    }

    void ExecutorCore::wakeOrSpawn()
    {
        if (!m_idle.empty()) {
            Worker* worker = m_idle.back();
            m_idle.pop_back();
            resumeLater(std::exchange(worker->idleHandle, {}));
        } else if (workerCount < maxWorkers) {
            spawn();
        }
    }

    void ExecutorCore::spawn()
    {
        int index = 0;
        while (m_workers[index])
            ++index;
        auto* worker = new Worker { index, {} };
        m_workers[index] = worker;
        ++workerCount;
        if (q)
            Q_EMIT q->workerCountChanged(workerCount);
        workerLoop(shared_from_this(), worker);
    }

    Job* ExecutorCore::take(Worker& worker)
    {
        // After setMaxWorkers() lowered the bound, tasks of retiring workers may still fill it.
        if (worker.index >= maxWorkers || active >= maxWorkers)
            return nullptr;
        while (Job* job = popFront()) {
            if (listens(PendingCountChanged))
                Q_EMIT q->pendingCountChanged(pending);
            if (!job->isCancelRequested() && !job->isSettled()) {
                releaseIdleWorkers();
                return job;
            }
            drop(job); // cancelled through a plain QFuture, or from another thread
        }
        releaseIdleWorkers();
        return nullptr;
    }

    bool ExecutorCore::shouldLeave(const Worker& worker) const
    {
        return worker.index >= maxWorkers || (shutdown.load(std::memory_order_relaxed) && !m_head);
    }

    void ExecutorCore::park(Worker& worker, std::coroutine_handle<> handle)
    {
        worker.idleHandle = handle;
        m_idle.push_back(&worker);
        checkIdle();
    }

    void ExecutorCore::start(Worker& worker, Job* job)
    {
        ++active;
        if (listens(ActiveCountChanged))
            Q_EMIT q->activeCountChanged(active);
        if (listens(TaskStarted))
            Q_EMIT q->taskStarted(job->id, workerName(worker.index));
    }

    void ExecutorCore::end(Job* job)
    {
        --active;
        job->core = nullptr;
        report(job);
        job->deref();
        if (listens(ActiveCountChanged))
            Q_EMIT q->activeCountChanged(active);
        // A worker that found the lowered bound full parked with work queued: hand it the freed slot.
        if (m_head && active < maxWorkers && !m_idle.empty())
            wakeOrSpawn();
        checkIdle();
    }

    void ExecutorCore::drop(Job* job)
    {
        job->discard();
        job->core = nullptr;
        report(job);
        job->deref();
    }

    void ExecutorCore::leave(Worker* worker)
    {
        m_workers[worker->index] = nullptr;
        delete worker;
        --workerCount;
        if (q)
            Q_EMIT q->workerCountChanged(workerCount);
        if (m_head && workerCount < maxWorkers) {
            spawn(); // a worker retired by setMaxWorkers() left work behind
        } else if (workerCount == 0) {
            for (auto handle : std::exchange(shutdownWaiters, {}))
                resumeLater(handle);
        }
    }

    void ExecutorCore::jobCancelled(Job* job)
    {
        if (job->queued) {
            unlink(job);
            if (listens(PendingCountChanged))
                Q_EMIT q->pendingCountChanged(pending);
            drop(job);
            checkIdle();
            releaseIdleWorkers();
        } else {
            report(job); // running: its slot stays taken until its coroutine ends
        }
    }

    void ExecutorCore::report(Job* job)
    {
        if (job->reported || !job->isSettled())
            return;
        job->reported = true;
        if (!listens(TaskFinished) && !listens(TaskFailed) && !listens(TaskCanceled) && !lcTaskPool().isDebugEnabled())
            return;
        QString message;
        switch (job->outcome(&message)) {
        case Outcome::Succeeded:
            if (listens(TaskFinished))
                Q_EMIT q->taskFinished(job->id);
            break;
        case Outcome::Failed:
            qCDebug(lcTaskPool) << "task" << job->id << "failed:" << message;
            if (listens(TaskFailed))
                Q_EMIT q->taskFailed(job->id, message);
            break;
        case Outcome::Cancelled:
            if (listens(TaskCanceled)) { // either spelling
                Q_EMIT q->taskCancelled(job->id);
                Q_EMIT q->taskCanceled(job->id);
            }
            break;
        }
    }

    void ExecutorCore::checkIdle()
    {
        if (m_busy && active == 0 && pending == 0) {
            m_busy = false;
            if (listens(Idle))
                Q_EMIT q->idle();
        }
    }

    void ExecutorCore::beginShutdown(bool cancelFutures)
    {
        const auto self = shared_from_this(); // destroying idle workers may release the last owner
        std::vector<Job*> jobs;
        bool first = false;
        {
            std::lock_guard lock(m_incomingMutex);
            first = !shutdown.exchange(true);
            jobs.swap(m_incoming);
        }
        for (Job* job : jobs) {
            enqueue(job);
            job->deref();
        }
        if (first && q)
            Q_EMIT q->isShutdownChanged(true);
        if (cancelFutures && m_head) {
            while (Job* job = popFront())
                drop(job);
            if (listens(PendingCountChanged))
                Q_EMIT q->pendingCountChanged(pending);
            checkIdle();
        }
        releaseIdleWorkers();
    }

    void ExecutorCore::releaseIdleWorkers()
    {
        // Once shut down with nothing queued, idle workers have nothing left to do: end them here
        // rather than through the event loop, which may not run again. Also when the queue drains
        // after the shutdown: workers that were parked while work was still queued (only some of
        // them are woken per job) would otherwise never leave, and shutdown(wait) never return.
        if (!shutdown.load(std::memory_order_relaxed) || m_head || m_idle.empty())
            return;
        const auto self = shared_from_this(); // destroying idle workers may release the last owner
        for (Worker* worker : std::exchange(m_idle, {})) {
            auto handle = worker->idleHandle;
            leave(worker);
            handle.destroy();
        }
    }

    int ExecutorCore::signalOf(const QMetaMethod& method)
    {
        static const QMetaMethod known[SignalCount] = {
            QMetaMethod::fromSignal(&TaskPoolExecutor::pendingCountChanged),
            QMetaMethod::fromSignal(&TaskPoolExecutor::activeCountChanged),
            QMetaMethod::fromSignal(&TaskPoolExecutor::taskStarted),
            QMetaMethod::fromSignal(&TaskPoolExecutor::taskFinished),
            QMetaMethod::fromSignal(&TaskPoolExecutor::taskFailed),
            QMetaMethod::fromSignal(&TaskPoolExecutor::taskCanceled),
            QMetaMethod::fromSignal(&TaskPoolExecutor::idle),
        };
        if (method == QMetaMethod::fromSignal(&TaskPoolExecutor::taskCancelled))
            return TaskCanceled; // one count for both spellings
        return int(std::find(std::begin(known), std::end(known), method) - std::begin(known));
    }

    void ExecutorCore::countListener(const QMetaMethod& method, int delta)
    {
        // An invalid method on disconnect means "all of them": keep the counts (emitting to nobody
        // is only slower, never wrong).
        if (const int signal = signalOf(method); signal < SignalCount)
            m_listeners[signal].fetch_add(delta, std::memory_order_relaxed);
    }

    void ExecutorCore::setMaxWorkers(int value)
    {
        checkedMaxWorkers(value);
        if (value == maxWorkers)
            return;
        maxWorkers = value;
        if (m_workers.size() < size_t(value))
            m_workers.resize(value, nullptr);
        // Idle workers beyond the new bound leave now; busy ones once their task ends.
        std::erase_if(m_idle, [this](Worker* worker) {
            if (worker->index < maxWorkers)
                return false;
            auto handle = worker->idleHandle;
            leave(worker);
            handle.destroy();
            return true;
        });
        if (q)
            Q_EMIT q->maxWorkersChanged(maxWorkers);
        for (int spare = pending; spare > 0 && workerCount < maxWorkers && !shutdown; --spare)
            spawn();
    }

} // namespace detail

TaskPoolExecutor::TaskPoolExecutor(QObject* parent) : TaskPoolExecutor(QThread::idealThreadCount(), {}, parent) { }

TaskPoolExecutor::TaskPoolExecutor(int maxWorkers, const QString& taskNamePrefix, QObject* parent) :
    QObject(parent), d(std::make_shared<detail::ExecutorCore>(this, maxWorkers, taskNamePrefix))
{
}

TaskPoolExecutor::~TaskPoolExecutor()
{
    d->q = nullptr;
    d->beginShutdown(false);
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
    return d->pending;
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

QString TaskPoolExecutor::currentWorkerName()
{
    const auto& current = detail::currentWorker;
    return current.core ? current.core->workerName(current.index) : QString();
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
    if (QThread::currentThread() == d->thread)
        d->enqueue(job);
    else
        d->enqueueRemote(job);
}

QCoro::Task<void> TaskPoolExecutor::shutdown(ShutdownOptions options)
{
    const auto core = d; // `this` may be destroyed while this coroutine waits
    core->beginShutdown(options.cancelFutures);
    if (options.wait)
        co_await detail::Drained { *core };
}

} // namespace TaskPool
