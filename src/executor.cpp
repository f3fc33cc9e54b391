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
                // Restored, not cleared: a nested event loop inside this start may have started
                // and finished other tasks meanwhile, and an outer start may be running.
                const CurrentWorker outer = std::exchange(currentWorker, { &core, index });
                // Once run() returned true the worker may be resumed at any time: this awaiter is
                // touched again only when it returned false.
                const bool suspended = job->run(worker);
                currentWorker = outer;
                if (!suspended)
                    running = false;
                return suspended;
            }
            //! True when the task's coroutine resumed the worker (from wherever it ended).
            bool await_resume()
            {
                if (running)
                    job->finishRun();
                return running;
            }
        };

        //! Comes back from the ready queue: the worker leaves the stack of whatever ended its task.
        struct FlatStack {
            bool await_ready() const noexcept { return false; }
            void await_suspend(std::coroutine_handle<> handle) const { resumeLater(handle); }
            void await_resume() const noexcept { }
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
                const bool resumedByTask = co_await RunJob { *core, worker->index, job };
                core->end(job);
                // The task's coroutine resumed this worker from wherever it ended: inside a
                // QNetworkReply::finished emission, a timer's slot... The next task starts from the
                // event loop instead, never inside another task's last resumption.
                if (resumedByTask && core->hasQueued())
                    co_await FlatStack {};
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
        job->ref(); // the executor's reference, until the job ends or is dropped
        if (const auto keep = guard())
            return enqueue(std::span(&job, 1));
        accept(job); // the common case: nothing to emit, nobody to delete the executor
        wakeOrSpawn();
    }

    void ExecutorCore::enqueue(std::span<Job* const> jobs)
    {
        for (Job* job : jobs)
            accept(job);
        // Signals last, once every job is queued and has a worker: a slot may delete the executor
        // (and this core with it), and one that throws leaves no job unserved.
        const auto keep = guard();
        for (std::size_t i = 0; i < jobs.size(); ++i)
            wakeOrSpawn();
        emitPendingCountChanged();
    }

    void ExecutorCore::accept(Job* job)
    {
        job->core = this;
        push(job);
        m_busy = true;
    }

    void ExecutorCore::enqueueRemote(Job* job)
    {
        std::lock_guard lock(m_incomingMutex);
        if (shutdown.load(std::memory_order_relaxed))
            throw ShutdownError();
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
        enqueue(jobs); // the hand-over references become the executor's
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
        // The lowest free index: names stay <prefix>_0.._<n-1>, and memory follows the workers
        // that exist, not maxWorkers (which may be INT_MAX).
        std::size_t index = m_firstFree;
        while (index < m_workers.size() && m_workers[index])
            ++index;
        if (index == m_workers.size())
            m_workers.push_back(nullptr);
        auto* worker = new Worker { int(index), {} };
        m_workers[index] = worker;
        m_firstFree = index + 1;
        ++workerCount;
        workerLoop(shared_from_this(), worker); // it yields at once: nothing runs inside spawn()
        if (listens(WorkerCountChanged))
            Q_EMIT q->workerCountChanged(workerCount);
    }

    Job* ExecutorCore::take(Worker& worker)
    {
        // The bound is checked again after every signal: a slot may have lowered it.
        while (worker.index < maxWorkers && active < maxWorkers) {
            Job* job = popFront();
            if (!job)
                break;
            if (job->isCancelRequested() || job->isSettled()) {
                drop(job); // cancelled through a plain QFuture, or from another thread
                emitPendingCountChanged();
                continue;
            }
            // The slot is the job's from here on: a slot connected below may lower the bound, but
            // cannot revoke a start it has already seen counted.
            ++active;
            emitPendingCountChanged();
            releaseIdleWorkers();
            return job;
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
        // taskStarted first: a slot of either signal may cancel the task, whose taskCanceled must
        // come after its taskStarted.
        if (listens(TaskStarted))
            Q_EMIT q->taskStarted(job->id, workerName(worker.index));
        if (listens(ActiveCountChanged))
            Q_EMIT q->activeCountChanged(active);
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
        m_firstFree = std::min(m_firstFree, std::size_t(worker->index));
        delete worker;
        --workerCount;
        if (listens(WorkerCountChanged))
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
        const auto keep = shared_from_this(); // a slot may delete the executor
        if (job->queued) {
            unlink(job);
            drop(job);
            emitPendingCountChanged();
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
        // idle() waits for the end of the outermost report: its slots (QML's TaskFutures among
        // them) see every task's terminal signal first, even when a slot settles more work.
        ++m_reporting;
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
            if (listens(TaskCanceled)) // either spelling; a slot of the first may delete the executor
                Q_EMIT q->taskCancelled(job->id);
            if (listens(TaskCanceled))
                Q_EMIT q->taskCanceled(job->id);
            break;
        }
        if (--m_reporting == 0 && std::exchange(m_idleDue, false))
            checkIdle();
    }

    void ExecutorCore::checkIdle()
    {
        if (m_busy && active == 0 && pending == 0) {
            if (m_reporting > 0) {
                m_idleDue = true; // see report()
                return;
            }
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
        enqueue(jobs);
        if (first && q)
            Q_EMIT q->isShutdownChanged(true);
        if (cancelFutures && m_head) {
            while (Job* job = popFront())
                drop(job);
            emitPendingCountChanged();
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
            QMetaMethod::fromSignal(&TaskPoolExecutor::workerCountChanged),
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
        const auto keep = shared_from_this(); // a slot may delete the executor
        maxWorkers = value;
        // Idle workers beyond the new bound leave now; busy ones once their task ends. They are
        // taken out of m_idle first: leave() emits, and its slot may change m_idle.
        const auto beyond = std::partition(m_idle.begin(), m_idle.end(),
                                           [this](Worker* worker) { return worker->index < maxWorkers; });
        const std::vector<Worker*> leaving(beyond, m_idle.end());
        m_idle.erase(beyond, m_idle.end());
        for (Worker* worker : leaving) {
            auto handle = worker->idleHandle;
            leave(worker);
            handle.destroy();
        }
        // A raised bound serves queued work at once: wake parked workers (they parked at the old
        // bound with work queued), then spawn.
        for (qint64 spare = std::min<qint64>(pending, qint64(maxWorkers) - active);
             spare > 0 && (!m_idle.empty() || workerCount < maxWorkers); --spare)
            wakeOrSpawn();
        if (q)
            Q_EMIT q->maxWorkersChanged(maxWorkers);
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
    job->thread = d->thread; // before the job is published to any other thread
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
