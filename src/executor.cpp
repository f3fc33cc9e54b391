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

        //! Beyond a century a duration means "never" (and time_point arithmetic in nanoseconds
        //! would overflow soon after).
        constexpr std::chrono::milliseconds century = std::chrono::hours(24 * 365 * 100);

        //! Arms \a timer for \a wait, at most QTimer's longest interval (an int of milliseconds):
        //! a longer wait fires early, and its handler, which checks the clock, arms it again.
        void arm(QTimer& timer, std::chrono::milliseconds wait)
        {
            timer.start(std::clamp(wait, std::chrono::milliseconds(0),
                                   std::chrono::milliseconds(std::numeric_limits<int>::max())));
        }

        int checkedMaxWorkers(int maxWorkers)
        {
            if (maxWorkers <= 0)
                throw std::invalid_argument("maxWorkers must be greater than 0");
            return maxWorkers;
        }

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
        TASKPOOL_TLS thread_local CurrentWorker currentWorker; // see readyQueue's

        //! Runs a job in a worker: the worker stays suspended while the task's coroutine runs.
        struct RunJob {
            ExecutorCore& core;
            int index;
            Job* job;
            bool running = true;

            bool await_ready() const noexcept { return false; }
            bool await_suspend(std::coroutine_handle<> worker)
            {
                // Restored, not cleared: a nested event loop inside this start may have started
                // and finished other tasks meanwhile, and an outer start may be running.
                const CurrentWorker outer = std::exchange(currentWorker, { &core, index });
                // Once run() returned true the worker may be resumed at any time (from the event
                // loop): this awaiter is touched again only when it returned false.
                ExecutorCore& owner = core;
                Job* const started = job;
                const bool suspended = started->run(worker);
                currentWorker = outer;
                if (!suspended) {
                    running = false;
                    return false;
                }
                owner.watchCancel(started);
                return true;
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
                core->end(*worker, job);
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

    JobQueue& ExecutorCore::queueOf(int priority)
    {
        if (priority == 0)
            return m_normal;
        JobQueue& queue = m_byPriority[priority]; // O(log p) for p distinct priorities queued
        queue.bucket = true;
        return queue;
    }

    void ExecutorCore::pushPrioritised(Job* job)
    {
        link(queueOf(job->priority), job, nullptr);
        ++pending;
    }

    void ExecutorCore::pushInOrder(Job* job)
    {
        // Back where it was: before every job submitted after it (held jobs come back near the head).
        JobQueue& queue = queueOf(job->priority);
        Job* before = queue.head;
        while (before && before->id < job->id)
            before = before->next;
        link(queue, job, before);
        ++pending;
    }

    JobQueue* ExecutorCore::topQueue()
    {
        if (!m_byPriority.empty()) {
            auto& [priority, queue] = *m_byPriority.begin();
            if (priority > 0 || !m_normal.head)
                return &queue;
        }
        return m_normal.head ? &m_normal : nullptr;
    }

    Job* ExecutorCore::nextStartableSlow()
    {
        while (JobQueue* queue = topQueue()) {
            Job* job = queue->head;
            if (!job->control || job->control->key.isEmpty())
                return job;
            const QString& key = job->control->key;
            const auto it = m_keys.find(key); // no entry for a key with nothing running or held
            if (it == m_keys.end() || it->second.running < keyLimit(key))
                return job;
            KeyState& state = it->second;
            // Its key is saturated: set it aside, so that it holds back no other key's work.
            unlink(job);
            link(state.held, job, nullptr);
            ++pending;
        }
        return nullptr;
    }

    void ExecutorCore::keyEnded(const QString& key)
    {
        const auto it = m_keys.find(key);
        --it->second.running;
        releaseHeld(key, it->second);
        if (it->second.running == 0 && !it->second.held.head)
            m_keys.erase(it);
    }

    void ExecutorCore::releaseHeld(const QString& key, KeyState& state)
    {
        for (int room = keyLimit(key) - state.running; room > 0 && state.held.head; --room) {
            Job* job = state.held.head;
            unlink(job);
            pushInOrder(job);
        }
    }

    bool ExecutorCore::rateAllows()
    {
        const auto now = Clock::now();
        if (qsizetype(m_starts.size()) < rateLimit || now - m_starts.front() >= rateWindow)
            return true;
        // Held back until the oldest of the last rateLimit starts leaves the window.
        if (!m_rateTimer) {
            m_rateTimer = std::make_unique<QTimer>();
            m_rateTimer->setSingleShot(true);
            m_rateTimer->setTimerType(Qt::PreciseTimer);
            QObject::connect(m_rateTimer.get(), &QTimer::timeout, [this] {
                const auto keep = shared_from_this(); // a slot may delete the executor
                dispatch();
            });
        }
        const auto wait = std::chrono::ceil<std::chrono::milliseconds>(m_starts.front() + rateWindow - now);
        detail::arm(*m_rateTimer, std::max(wait, std::chrono::milliseconds(1)));
        setRateLimited(true);
        return false;
    }

    void ExecutorCore::recordStart()
    {
        m_starts.push_back(Clock::now());
        while (qsizetype(m_starts.size()) > rateLimit)
            m_starts.pop_front();
    }

    void ExecutorCore::setRateLimited(bool limited)
    {
        if (rateLimited == limited)
            return;
        rateLimited = limited;
        if (q)
            Q_EMIT q->rateLimitedChanged(limited);
    }

    void ExecutorCore::dispatch()
    {
        for (qint64 spare = std::min<qint64>(pending, qint64(maxWorkers) - active);
             spare > 0 && (!m_idle.empty() || workerCount < maxWorkers); --spare)
            wakeOrSpawn();
        if (rateLimited && (pending == 0 || paused))
            setRateLimited(false);
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

    void ExecutorCore::cancelRemote(JobRef job)
    {
        std::lock_guard lock(m_incomingMutex);
        m_remoteCancels.push_back(std::move(job));
        if (std::exchange(m_incomingPosted, true))
            return;
        QMetaObject::invokeMethod(
            QAbstractEventDispatcher::instance(thread), [self = shared_from_this()] { self->takeIncoming(); },
            Qt::QueuedConnection);
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
        std::vector<JobRef> cancels;
        {
            std::lock_guard lock(m_incomingMutex);
            jobs.swap(m_incoming);
            cancels.swap(m_remoteCancels);
            m_incomingPosted = false;
        }
        const auto keep = shared_from_this(); // a slot may delete the executor
        enqueue(jobs); // the hand-over references become the executor's
        for (const JobRef& job : cancels) {
            if (job->core == this)
                jobCancelled(job.get());
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
        // The lowest free index: names stay <prefix>_0.._<n-1>, and memory follows the workers
        // that exist, not maxWorkers (which may be INT_MAX).
        std::size_t index = m_firstFree;
        while (index < m_workers.size() && m_workers[index])
            ++index;
        if (index == m_workers.size())
            m_workers.push_back(nullptr);
        auto* worker = new Worker { int(index), {}, nullptr, std::nullopt, {} };
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
            Job* job = nextStartable();
            if (!job) {
                if (rateLimited)
                    setRateLimited(false); // what waits is held by its key, not by the rate
                break;
            }
            if (job->isCancelRequested() || job->isSettled()) {
                unlink(job);
                drop(job); // cancelled through a plain QFuture, or from another thread
                emitPendingCountChanged();
                continue;
            }
            if (throttled && (paused || (rateLimit > 0 && !rateAllows())))
                break;
            unlink(job);
            // The slot is the job's from here on: a slot connected below may lower the bound, but
            // cannot revoke a start it has already seen counted.
            ++active;
            if (job->control && !job->control->key.isEmpty())
                ++m_keys[job->control->key].running;
            if (throttled && rateLimit > 0) {
                recordStart();
                if (rateLimited && (qsizetype(m_starts.size()) < rateLimit || pending == 0 || active >= maxWorkers))
                    setRateLimited(false); // with every slot taken, maxWorkers holds the queue too
            }
            emitPendingCountChanged();
            if (shutdown.load(std::memory_order_relaxed))
                releaseIdleWorkers();
            return job;
        }
        if (shutdown.load(std::memory_order_relaxed))
            releaseIdleWorkers();
        return nullptr;
    }

    bool ExecutorCore::shouldLeave(const Worker& worker) const
    {
        return worker.index >= maxWorkers || (shutdown.load(std::memory_order_relaxed) && !hasQueued());
    }

    void ExecutorCore::park(Worker& worker, std::coroutine_handle<> handle)
    {
        worker.idleHandle = handle;
        m_idle.push_back(&worker);
        checkIdle();
    }

    void ExecutorCore::start(Worker& worker, Job* job)
    {
        if (job->control || defaultTimeout)
            arm(worker, job); // before any signal: a slot may cancel the task already
        // taskStarted first: a slot of either signal may cancel the task, whose taskCanceled must
        // come after its taskStarted.
        if (listens(TaskStarted))
            Q_EMIT q->taskStarted(job->id, workerName(worker.index));
        if (listens(ActiveCountChanged))
            Q_EMIT q->activeCountChanged(active);
    }

    void ExecutorCore::arm(Worker& worker, Job* job)
    {
        worker.job = job; // set only here: a worker with a job is one end() has to disarm
        JobControl* control = job->control;
        if (control && control->takesStop) {
            control->stop = std::stop_source();
            if (job->isSettled())
                control->stop.request_stop(); // cancelled before it started
        }
        auto timeout = control && control->timeout ? control->timeout : defaultTimeout;
        if (!timeout || *timeout > century) // none
            return;
        worker.deadline = m_deadlines.emplace(Clock::now() + *timeout, &worker);
        worker.timeout = *timeout;
        if (!m_deadlineTimer) {
            m_deadlineTimer = std::make_unique<QTimer>();
            m_deadlineTimer->setSingleShot(true);
            m_deadlineTimer->setTimerType(Qt::PreciseTimer);
            QObject::connect(m_deadlineTimer.get(), &QTimer::timeout, [this] { timeOut(); });
        }
        if (*worker.deadline == m_deadlines.begin())
            detail::arm(*m_deadlineTimer, *timeout);
    }

    void ExecutorCore::watchCancel(Job* job)
    {
        // Only for a task that suspended: one that ends within its start needs no watcher, and a
        // QFutureWatcher deleted with callouts still posted to it scans the thread's whole event
        // queue (quadratic in a burst of short tasks).
        JobControl* control = job->control;
        if (!control || !control->takesStop || control->watcher || job->isSettled())
            return;
        if (QObject* watcher = job->watchCancel([job] { job->cancel(); }))
            control->watcher.reset(watcher);
    }

    void ExecutorCore::disarm(Worker& worker)
    {
        if (worker.deadline) {
            m_deadlines.erase(*worker.deadline); // the timer fires once for nothing, at worst
            worker.deadline.reset();
        }
        worker.job = nullptr;
    }

    void ExecutorCore::releaseControls(Job* job)
    {
        JobControl* control = job->control;
        if (!control)
            return;
        if (control->context)
            QObject::disconnect(control->context); // its slot holds a reference to the job
        if (control->watcher) {
            // The watcher may be the sender of the signal being handled: deleted from the loop.
            control->watcher->disconnect();
            control->watcher.release()->deleteLater();
        }
    }

    void ExecutorCore::requestStop(Job* job)
    {
        if (!job->control || !job->control->stop.stop_possible())
            return;
        // A stop callback may end the task inline, and with it the executor's reference to the job
        // (whose control owns the stop source being stopped): keep it until request_stop() returns.
        job->ref();
        const JobRef keep(job);
        job->control->stop.request_stop(); // runs the task's stop callbacks, in this thread
    }

    void ExecutorCore::timeOut()
    {
        const auto keep = shared_from_this(); // a slot may delete the executor
        auto now = Clock::now();
        while (!m_deadlines.empty() && m_deadlines.begin()->first <= now) {
            Worker* worker = m_deadlines.begin()->second;
            m_deadlines.erase(m_deadlines.begin());
            worker->deadline.reset();
            Job* job = worker->job;
            if (job->isSettled())
                continue;
            const auto timeout = worker->timeout; // as armed: the default may have changed since
            job->ref();
            const JobRef keep(job); // the stop callbacks may end the task, and with it the executor's reference
            job->fail(std::make_exception_ptr(TimeoutError(
                QStringLiteral("the task did not finish within %1 ms").arg(timeout.count()).toStdString())));
            report(job);
            requestStop(job); // the stop callbacks may end other tasks: the loop looks again
            now = Clock::now();
        }
        if (!m_deadlines.empty()) {
            const auto wait = std::chrono::ceil<std::chrono::milliseconds>(m_deadlines.begin()->first - now);
            detail::arm(*m_deadlineTimer, wait);
        }
    }

    void ExecutorCore::end(Worker& worker, Job* job)
    {
        --active;
        if (worker.job) { // armed: the task has options, a token, or the default timeout
            disarm(worker);
            if (job->control) {
                releaseControls(job);
                if (!job->control->key.isEmpty())
                    keyEnded(job->control->key);
            }
        }
        job->core = nullptr;
        report(job);
        job->deref();
        if (listens(ActiveCountChanged))
            Q_EMIT q->activeCountChanged(active);
        // A worker that found the lowered bound full parked with work queued: hand it the freed slot.
        if (hasQueued() && active < maxWorkers && !m_idle.empty())
            wakeOrSpawn();
        checkIdle();
    }

    void ExecutorCore::drop(Job* job)
    {
        releaseControls(job);
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
        if (hasQueued() && workerCount < maxWorkers) {
            spawn(); // a worker retired by setMaxWorkers() left work behind
        } else if (workerCount == 0) {
            for (auto handle : std::exchange(shutdownWaiters, {}))
                resumeLater(handle);
        }
    }

    void ExecutorCore::jobCancelled(Job* job)
    {
        const auto keep = shared_from_this(); // a slot may delete the executor
        if (job->queue) {
            unlink(job);
            drop(job);
            emitPendingCountChanged();
            checkIdle();
            releaseIdleWorkers();
        } else {
            report(job); // running: its slot stays taken until its coroutine ends
            requestStop(job);
        }
    }

    void ExecutorCore::report(Job* job)
    {
        if (job->reported || !job->isSettled())
            return;
        job->reported = true;
        if (!(q && m_terminalListeners.load(std::memory_order_relaxed) > 0) && !log.isDebugEnabled())
            return; // the common case: one load, not three
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

    void ExecutorCore::becomeIdle()
    {
        if (m_reporting > 0) {
            m_idleDue = true; // see report()
            return;
        }
        m_busy = false;
        if (listens(Idle))
            Q_EMIT q->idle();
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
        if (cancelFutures) {
            dropAllQueued();
            // Running tasks are asked to stop; how they end (cancelled, or with a result) is theirs.
            std::vector<JobRef> running;
            for (Worker* worker : m_workers) {
                if (worker && worker->job) {
                    worker->job->ref();
                    running.emplace_back(worker->job);
                }
            }
            for (const JobRef& job : running)
                requestStop(job.get());
        }
        releaseIdleWorkers();
    }

    void ExecutorCore::dropAllQueued()
    {
        if (!hasQueued())
            return;
        const auto keep = shared_from_this(); // a slot may delete the executor
        // One at a time, as a slot of each signal may look at the queue (or clear it itself).
        while (Job* job = nextStartable()) {
            unlink(job);
            drop(job);
        }
        for (auto it = m_keys.begin(); it != m_keys.end();) {
            if (Job* job = it->second.held.head) {
                unlink(job);
                drop(job); // a slot may change m_keys: start over
                it = m_keys.begin();
            } else {
                ++it;
            }
        }
        emitPendingCountChanged();
        setRateLimited(false);
        checkIdle();
    }

    int ExecutorCore::clear()
    {
        const auto keep = shared_from_this(); // a slot may delete the executor
        const int cleared = pending;
        dropAllQueued();
        releaseIdleWorkers();
        return cleared;
    }

    void ExecutorCore::setPaused(bool value)
    {
        if (paused == value)
            return;
        const auto keep = shared_from_this(); // a slot may delete the executor
        paused = value;
        throttled = paused || rateLimit > 0;
        if (q)
            Q_EMIT q->pausedChanged(paused);
        if (!paused)
            dispatch();
        else
            setRateLimited(false); // the queue waits for resume() now
    }

    void ExecutorCore::setRateLimit(int starts, std::chrono::milliseconds window)
    {
        if (starts < 0)
            throw std::invalid_argument("the rate limit must not be negative (0: no limit)");
        if (starts > 0 && window <= std::chrono::milliseconds(0))
            throw std::invalid_argument("the rate window must be longer than 0 ms");
        window = std::min(window, century); // longer: at most `starts` starts, ever
        const auto keep = shared_from_this(); // a slot may delete the executor
        const bool changed = starts != rateLimit || (starts > 0 && window != rateWindow);
        rateLimit = starts;
        throttled = paused || rateLimit > 0;
        if (starts > 0)
            rateWindow = window;
        while (qsizetype(m_starts.size()) > rateLimit)
            m_starts.pop_front();
        if (m_rateTimer)
            m_rateTimer->stop();
        if (changed && q)
            Q_EMIT q->rateLimitChanged();
        setRateLimited(false); // the next start attempt tells again
        dispatch();
    }

    void ExecutorCore::setKeyLimit(const QString& key, int limit)
    {
        if (limit <= 0)
            throw std::invalid_argument("a key limit must be greater than 0");
        const auto keep = shared_from_this(); // a slot may delete the executor
        m_keyLimits.insert(key, limit);
        if (const auto it = m_keys.find(key); it != m_keys.end())
            releaseHeld(key, it->second);
        dispatch();
    }

    void ExecutorCore::setMaxPerKey(int limit)
    {
        if (limit <= 0)
            throw std::invalid_argument("maxPerKey must be greater than 0");
        if (limit == maxPerKey)
            return;
        const auto keep = shared_from_this(); // a slot may delete the executor
        maxPerKey = limit;
        for (auto& [key, state] : m_keys)
            releaseHeld(key, state);
        if (q)
            Q_EMIT q->maxPerKeyChanged(limit);
        dispatch();
    }

    void ExecutorCore::notifyCountWaiters()
    {
        if (m_countWaiters.empty())
            return;
        for (std::size_t i = 0; i < m_countWaiters.size();) {
            CountWaiter* waiter = m_countWaiters[i];
            if (!countsReached(*waiter)) {
                ++i;
                continue;
            }
            m_countWaiters.erase(m_countWaiters.begin() + qsizetype(i));
            resumeLater(std::exchange(waiter->handle, {}));
        }
    }

    void ExecutorCore::releaseIdleWorkers()
    {
        // Once shut down with nothing queued, idle workers have nothing left to do: end them here
        // rather than through the event loop, which may not run again. Also when the queue drains
        // after the shutdown: workers that were parked while work was still queued (only some of
        // them are woken per job) would otherwise never leave, and shutdown(wait) never return.
        if (!shutdown.load(std::memory_order_relaxed) || hasQueued() || m_idle.empty())
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
        if (const int signal = signalOf(method); signal < SignalCount) {
            m_listeners[signal].fetch_add(delta, std::memory_order_relaxed);
            if (signal == TaskFinished || signal == TaskFailed || signal == TaskCanceled)
                m_terminalListeners.fetch_add(delta, std::memory_order_relaxed);
        }
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
        dispatch();
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
    // Queued work still completes, as promised: nothing could resume a paused queue any more.
    d->setPaused(false);
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
    return d->rateLimit;
}

std::chrono::milliseconds TaskPoolExecutor::rateWindow() const
{
    return d->rateWindow;
}

int TaskPoolExecutor::rateWindowMs() const
{
    return int(std::min<qint64>(d->rateWindow.count(), std::numeric_limits<int>::max()));
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
    return d->maxPerKey;
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
        if (QThread::currentThread() != core.thread)
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
    control->owner = d;
    control->takesStop = takesStop;
    if (!options)
        return;
    control->timeout = options->timeout;
    control->key = options->key;
    if (options->context) {
        job->ref(); // held by the connection until the job ends (releaseControls()) or the context goes
        control->context
            = QObject::connect(options->context, &QObject::destroyed, [ref = detail::JobRef(job)] { ref->cancel(); });
    }
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
    if (QThread::currentThread() == d->thread) {
        d->enqueue(job);
        return;
    }
    try {
        d->enqueueRemote(job);
    } catch (...) {
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
