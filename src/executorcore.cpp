// SPDX-License-Identifier: MIT
// The executor core: the transitions of a task's life (docs/task-life.md).
#include "executorcore_p.h"

#include <QAbstractEventDispatcher>

#include <algorithm>
#include <stdexcept>

Q_LOGGING_CATEGORY(lcTaskPool, "taskpool", QtInfoMsg)

namespace TaskPool::detail {

namespace {
    std::atomic<int> lastExecutorNumber { -1 };

    int checkedMaxWorkers(int maxWorkers)
    {
        if (maxWorkers <= 0)
            throw std::invalid_argument("maxWorkers must be greater than 0");
        return maxWorkers;
    }

} // namespace

ExecutorCore::ExecutorCore(TaskPoolExecutor* q, int maxWorkers, QString prefix) :
    q(q),
    thread(q->thread()),
    maxWorkers(checkedMaxWorkers(maxWorkers)),
    defaultPrefix(QStringLiteral("TaskPoolExecutor-%1").arg(lastExecutorNumber.fetch_add(1) + 1)),
    m_clock(systemClock()),
    m_timeouts([this] {
        const auto keep = shared_from_this(); // a slot may delete the executor
        timeOut();
        flush();
    })
{
    this->prefix = prefix.isEmpty() ? defaultPrefix : std::move(prefix);
}

// ---- submission -------------------------------------------------------------------------------

void ExecutorCore::enqueue(Job* job)
{
    job->ref(); // the executor's reference, until the job ends or is dropped
    // Work handed over from other threads before this submit() was called goes first.
    if (m_remotePending.load(std::memory_order_relaxed) > 0)
        acceptIncoming();
    accept(job);
    wakeOrSpawn();
    countsChanged();
    flush();
}

void ExecutorCore::accept(Job* job)
{
    if (job->core != this) // a hand-over's is set already, and another thread may read it
        job->core = this;
    job->phase = Phase::Queued;
    job->arrival = ++m_arrivals;
    m_queue.push(job);
    ++pending;
    m_busy = true;
}

void ExecutorCore::enqueueRemote(Job* job)
{
    std::lock_guard lock(m_incomingMutex);
    if (shutdown.load(std::memory_order_relaxed))
        throw ShutdownError();
    job->ref(); // handed over with the job
    m_incoming.push_back(job);
    m_remotePending.fetch_add(1, std::memory_order_release); // pending from submit()'s return
    if (std::exchange(m_incomingPosted, true))
        return;
    if (QThread* home = thread.load(std::memory_order_relaxed)) // none while moving: the move takes it in
        postTo(home, [self = shared_from_this()] { self->atHome([self] { self->takeIncoming(); }); });
}

void ExecutorCore::takeIncoming()
{
    if (acceptIncoming())
        flush();
}

void ExecutorCore::postTo(QThread* home, std::function<void()> fn)
{
    QMetaObject::invokeMethod(QAbstractEventDispatcher::instance(home), std::move(fn), Qt::QueuedConnection);
}

void ExecutorCore::beginMove()
{
    if (thread.load(std::memory_order_relaxed) != QThread::currentThread() || m_moveDue)
        return; // moving already: it follows the object wherever it ends up
    // The executor follows its object, but a running task's coroutine (and the worker it will
    // resume) belongs to this thread's loop: queued tasks wait, running ones end here, then the
    // executor goes. So does a report still to emit here.
    m_moveDue = true;
    updateThrottle();
    if (active > 0) {
        qCWarning(lcTaskPool,
                  "TaskPoolExecutor::moveToThread(): %d running task(s) end in the thread they started in; "
                  "the executor follows once they have (queued tasks start in the new thread)",
                  active);
    }
    maybeMove();
}

bool ExecutorCore::readyToMove() const
{
    return active == 0 && !m_flushing && !m_flushPosted
        && std::all_of(m_workers.begin(), m_workers.end(), [](Worker* w) { return !w || w->idleHandle; });
}

void ExecutorCore::maybeMove()
{
    if (!m_moveDue || !readyToMove())
        return;
    m_moveDue = false;
    updateThrottle();
    if (!q)
        return; // the executor object is gone: nothing moves
    {
        std::lock_guard lock(m_incomingMutex);
        thread.store(nullptr, std::memory_order_release); // what other threads hand over waits
        m_incomingPosted = false;
    }
    // Its timers belong to this thread: made again in the new one when needed.
    m_timeouts.resetAlarm();
    m_rateAlarm.reset();
    // Posted to the object, this runs in its new thread's loop (or earlier: claimHome()).
    QMetaObject::invokeMethod(
        q, [self = shared_from_this()] { self->arrive(); }, Qt::QueuedConnection);
}

void ExecutorCore::arrive()
{
    {
        std::lock_guard lock(m_incomingMutex);
        QThread* const home = thread.load(std::memory_order_relaxed);
        if (home && home != QThread::currentThread())
            return; // it moved on meanwhile
        thread.store(QThread::currentThread(), std::memory_order_release);
    }
    const auto keep = shared_from_this();
    // What waits is told in this thread from now on (a cancel from another thread is posted here).
    QThread* const here = QThread::currentThread();
    m_queue.forEach([here](Job* job) { job->thread.store(here, std::memory_order_release); });
    for (auto& [key, state] : m_keys) {
        for (Job* job = state.held.head; job; job = job->next)
            job->thread.store(here, std::memory_order_release);
    }
    std::vector<std::function<void()>> told;
    {
        std::lock_guard lock(m_incomingMutex);
        for (Job* job : m_incoming)
            job->thread.store(here, std::memory_order_release);
        told.swap(m_whileMoving);
    }
    watchHome(here);
    acceptIncoming();
    for (auto& fn : told)
        fn(); // cancels told while it moved, in order
    dispatch();
    countsChanged();
    flush();
}

void ExecutorCore::claimHome()
{
    if (!thread.load(std::memory_order_acquire) && q && q->thread() == QThread::currentThread())
        arrive();
}

void ExecutorCore::updateThrottle()
{
    m_throttled = paused || m_moveDue || m_rateLimiter->isActive();
}

bool ExecutorCore::acceptIncoming()
{
    std::vector<Job*> jobs;
    {
        std::lock_guard lock(m_incomingMutex);
        jobs.swap(m_incoming);
        m_incomingPosted = false;
    }
    acceptAll(jobs);
    return !jobs.empty();
}

void ExecutorCore::acceptAll(const std::vector<Job*>& jobs)
{
    if (jobs.empty())
        return;
    for (Job* job : jobs) {
        accept(job); // the hand-over reference becomes the executor's
        wakeOrSpawn();
    }
    m_remotePending.fetch_sub(int(jobs.size()), std::memory_order_release);
    countsChanged(); // the count is the same; its signal is due now
}

bool ExecutorCore::isWaiting(quint64 taskId)
{
    if (m_queue.find(taskId))
        return true;
    for (const auto& [key, state] : m_keys) {
        for (Job* job = state.held.tail; job; job = job->prev) {
            if (job->id == taskId)
                return true;
        }
    }
    std::lock_guard lock(m_incomingMutex);
    return std::any_of(m_incoming.begin(), m_incoming.end(), [taskId](Job* job) { return job->id == taskId; });
}

// ---- queues and policies ----------------------------------------------------------------------

Job* ExecutorCore::nextStartableSlow(Job* job)
{
    for (; job; job = m_queue.top()) {
        if (!job->control || job->control->key.isEmpty())
            return job;
        const QString& key = job->control->key;
        const auto it = m_keys.find(key);
        const bool held = it != m_keys.end() && !it->second.held.empty();
        if (m_keyGate->room(key) > 0 && (!held || JobQueue::ranksBefore(job, it->second.held.head)))
            return job;
        KeyState& state = it != m_keys.end() ? it->second : m_keys[key];
        // Its key is full, or tasks of its key that come first are held: it waits with them, set
        // aside so that it holds back no other key's work.
        m_queue.remove(job);
        if (job->phase == Phase::Released)
            --state.released; // the key's room shrank since
        state.held.linkByRank(job);
        job->phase = Phase::Held;
        refill(key); // the first held ones go back when the key has room for them
    }
    return nullptr;
}

void ExecutorCore::dequeueSlow(Job* job)
{
    --pending;
    if (job->phase == Phase::Held)
        job->queue->unlink(job);
    else
        m_queue.remove(job);
    if (job->phase == Phase::Queued)
        return; // a key's entry counts only its held and released tasks
    const auto it = m_keys.find(job->control->key);
    if (job->phase == Phase::Released)
        --it->second.released;
    if (it->second.released == 0 && it->second.held.empty())
        m_keys.erase(it);
}

void ExecutorCore::refill(const QString& key)
{
    const auto it = m_keys.find(key);
    if (it == m_keys.end())
        return;
    KeyState& state = it->second;
    // The best held tasks go back, as many as the key has room for beyond those already back: one
    // that leaves the queue without starting (a cancel, a drop) gives its place to the next one
    // through dequeue() and refill() again. Tasks of the key never held are not counted: they
    // wait behind the held ones when they reach the head of the queue.
    while (!state.held.empty() && m_keyGate->room(key) > state.released) {
        Job* job = state.held.head;
        state.held.unlink(job);
        job->phase = Phase::Released;
        m_queue.pushInOrder(job);
        ++state.released;
    }
    if (state.released == 0 && state.held.empty())
        m_keys.erase(it);
}

void ExecutorCore::refillAll()
{
    for (auto& [key, state] : m_keys)
        refill(key);
}

bool ExecutorCore::admitRate()
{
    const auto admission = m_rateLimiter->tryAcquire(m_clock->now());
    if (admission.granted)
        return true;
    if (!m_rateAlarm) {
        m_rateAlarm = m_clock->makeAlarm([this] {
            const auto keep = shared_from_this(); // a slot may delete the executor
            dispatch();
            flush();
        });
    }
    m_rateAlarm->start(admission.retryAt);
    return false;
}

void ExecutorCore::updateRateLimited()
{
    // Derived, never set by a transition: the window holds back a task that could start now.
    const bool limiting = m_rateLimiter->isActive();
    const bool limited = limiting && !paused && pending > 0 && active < maxWorkers
        && m_rateLimiter->isFull(m_clock->now()) && nextStartable();
    m_rateActive = limited || limiting;
    if (rateLimited == limited)
        return;
    rateLimited = limited;
    post(RateLimitedChanged, limited);
}

// ---- a worker's life --------------------------------------------------------------------------

Job* ExecutorCore::take(Worker& worker)
{
    // What other threads handed over competes by priority and submission order with the rest.
    // The worker then gives the event loop a turn after this task: submitters in other threads
    // that keep up must not keep the executor's thread from its other events.
    if (m_remotePending.load(std::memory_order_relaxed) > 0 && acceptIncoming())
        worker.yieldDue = true;
    while (worker.index < maxWorkers && active < maxWorkers) {
        Job* job = nextStartable();
        if (!job)
            break;
        if (job->isCancelRequested() || job->isSettled()) {
            dequeue(job); // cancelled through a plain QFuture copy: seen now
            if (job->control && !job->control->key.isEmpty())
                refill(job->control->key);
            drop(job);
            countsChanged();
            checkIdle();
            continue;
        }
        if (m_throttled && (paused || m_moveDue || (m_rateLimiter->isActive() && !admitRate())))
            break;
        // The whole start, before anything is reported: counted running, its key's place
        // taken, its stop source and timeout armed. From here a cancel, a shutdown or a
        // timeout treats it as running; a settled one is never run.
        dequeue(job);
        job->phase = Phase::Running;
        ++active;
        if (job->control && !job->control->key.isEmpty())
            m_keyGate->acquire(job->control->key);
        if (job->control || defaultTimeout)
            arm(worker, job);
        if (!m_countWaiters.empty())
            notifyCountWaiters();
        if (m_listening.load(std::memory_order_relaxed)) // the common case: nobody to tell
            postStart(worker, job);
        if (shutdown.load(std::memory_order_relaxed))
            releaseIdleWorkers();
        return job;
    }
    if (shutdown.load(std::memory_order_relaxed))
        releaseIdleWorkers();
    return nullptr;
}

void ExecutorCore::postStart(const Worker& worker, Job* job)
{
    post(PendingCountChanged, pendingCount());
    if (listens(TaskStarted)) {
        job->ref();
        post(TaskStarted, job->id, workerName(worker.index), JobRef(job));
    }
    post(ActiveCountChanged, active);
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
    flush(); // the worker is suspended: a slot may wake it, or destroy it (shutdown); a due move is made there
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
    if (!timeout || *timeout > LocalRateWindow::century) // none
        return;
    worker.deadline = m_timeouts.add(*m_clock, m_clock->now() + *timeout, &worker);
    worker.timeout = *timeout;
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
        m_timeouts.remove(*worker.deadline);
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
    auto now = m_clock->now();
    while (const auto due = m_timeouts.takeDue(now)) {
        Worker* worker = *due;
        worker->deadline.reset();
        Job* job = worker->job;
        if (job->isSettled())
            continue;
        const auto timeout = worker->timeout; // as armed: the default may have changed since
        job->ref();
        const JobRef keep(job); // the stop callbacks may end the task, and with it the executor's reference
        job->fail(std::make_exception_ptr(
            TimeoutError(QStringLiteral("the task did not finish within %1 ms").arg(timeout.count()).toStdString())));
        report(job);
        requestStop(job); // the stop callbacks may end other tasks: the loop looks again
        now = m_clock->now();
    }
    m_timeouts.rearm();
}

void ExecutorCore::end(Worker& worker, Job* job)
{
    --active;
    job->phase = Phase::Ended;
    if (worker.job) { // armed: the task has options, a token, or the default timeout
        disarm(worker);
        if (job->control) {
            releaseControls(job);
            if (const QString& key = job->control->key; !key.isEmpty()) {
                m_keyGate->release(key);
                refill(key);
            }
        }
    }
    job->core = nullptr;
    report(job);
    job->deref();
    post(ActiveCountChanged, active);
    // A worker that found the lowered bound full parked with work queued: hand it the freed slot.
    if (hasQueued() && active < maxWorkers && !m_idle.empty())
        wakeOrSpawn();
    checkIdle(); // reported by the worker, once it has taken its next task or parked
}

void ExecutorCore::drop(Job* job)
{
    job->phase = Phase::Ended;
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
    post(WorkerCountChanged, workerCount);
    if (hasQueued() && workerCount < maxWorkers) {
        spawn(); // a worker retired by setMaxWorkers() left work behind
    } else if (workerCount == 0) {
        for (auto [handle, awaitingThread] : std::exchange(shutdownWaiters, {}))
            resumeLater(handle, awaitingThread);
    }
}

void ExecutorCore::dispatch()
{
    for (qint64 spare = std::min<qint64>(pending, qint64(maxWorkers) - active);
         spare > 0 && (!m_idle.empty() || workerCount < maxWorkers); --spare)
        wakeOrSpawn();
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
    auto* worker = new Worker { int(index), {}, nullptr, std::nullopt, {}, false };
    m_workers[index] = worker;
    m_firstFree = index + 1;
    ++workerCount;
    startWorker(shared_from_this(), worker); // it yields at once: nothing runs inside spawn()
    post(WorkerCountChanged, workerCount);
}

void ExecutorCore::releaseIdleWorkers()
{
    // Once shut down with nothing queued, idle workers have nothing left to do: end them here
    // rather than through the event loop, which may not run again.
    if (!shutdown.load(std::memory_order_relaxed) || hasQueued() || m_idle.empty())
        return;
    const auto self = shared_from_this(); // destroying idle workers may release the last owner
    for (Worker* worker : std::exchange(m_idle, {})) {
        auto handle = worker->idleHandle;
        leave(worker);
        handle.destroy();
    }
}

// ---- transitions from outside -----------------------------------------------------------------

void ExecutorCore::jobCancelled(Job* job)
{
    const auto keep = shared_from_this(); // a slot may delete the executor
    if (job->phase == Phase::Submitted)
        acceptIncoming(); // handed over from another thread and not taken in yet: now it is
    switch (job->phase) {
    case Phase::Queued:
    case Phase::Held:
    case Phase::Released:
        dequeue(job);
        if (const QString key = job->control ? job->control->key : QString(); !key.isEmpty())
            refill(key);
        drop(job);
        countsChanged();
        checkIdle();
        releaseIdleWorkers();
        break;
    case Phase::Running:
        report(job); // its slot stays taken until its coroutine ends
        requestStop(job);
        break;
    case Phase::Submitted:
    case Phase::Ended:
        break;
    }
    flush();
}

int ExecutorCore::dropQueued()
{
    if (!hasQueued())
        return 0;
    // A snapshot: every queued and held job leaves the queues before any is settled (settling
    // runs continuations) or reported. What a slot submits afterwards stays queued.
    std::vector<Job*> jobs;
    jobs.reserve(std::size_t(pending));
    m_queue.forEach([&](Job* job) { jobs.push_back(job); });
    for (const auto& [key, state] : m_keys) {
        for (Job* job = state.held.head; job; job = job->next)
            jobs.push_back(job);
    }
    for (Job* job : jobs)
        dequeue(job);
    for (Job* job : jobs)
        drop(job);
    countsChanged();
    checkIdle();
    return int(jobs.size());
}

int ExecutorCore::clear()
{
    const auto keep = shared_from_this(); // a slot may delete the executor
    if (m_remotePending.load(std::memory_order_relaxed) > 0)
        acceptIncoming(); // submitted before clear() was called: cleared too
    const int cleared = dropQueued();
    releaseIdleWorkers();
    flush();
    return cleared;
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
        m_incomingPosted = false;
    }
    acceptAll(jobs);
    if (first)
        post(IsShutdownChanged, 1);
    if (cancelFutures) {
        dropQueued();
        // Running tasks (those being started among them) are asked to stop; how they end
        // (cancelled, or with a result) is theirs.
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
    flush();
}

void ExecutorCore::setPaused(bool value)
{
    if (paused == value)
        return;
    const auto keep = shared_from_this(); // a slot may delete the executor
    paused = value;
    updateThrottle();
    post(PausedChanged, paused);
    if (!paused)
        dispatch();
    flush();
}

void ExecutorCore::setRateLimit(int starts, std::chrono::milliseconds window)
{
    const int oldLimit = m_localRate.limit();
    const auto oldWindow = m_localRate.window();
    m_localRate.setLimit(starts, window); // throws for bad values, changing nothing
    updateThrottle();
    if (m_localRate.limit() == oldLimit && (starts == 0 || m_localRate.window() == oldWindow))
        return; // the same limit: nothing to tell, nothing to wake
    m_rateActive = true; // flush() brings rateLimited up to date
    const auto keep = shared_from_this(); // a slot may delete the executor
    if (m_rateAlarm)
        m_rateAlarm->stop();
    post(RateLimitChanged);
    dispatch();
    flush();
}

void ExecutorCore::setKeyLimit(const QString& key, int limit)
{
    m_localKeys.setLimit(key, limit);
    const auto keep = shared_from_this(); // a slot may delete the executor
    refill(key);
    dispatch();
    flush();
}

void ExecutorCore::setMaxPerKey(int limit)
{
    if (limit == m_localKeys.defaultLimit())
        return m_localKeys.setDefaultLimit(limit); // checked all the same
    m_localKeys.setDefaultLimit(limit);
    const auto keep = shared_from_this(); // a slot may delete the executor
    refillAll();
    post(MaxPerKeyChanged, limit);
    dispatch();
    flush();
}

void ExecutorCore::setMaxWorkers(int value)
{
    checkedMaxWorkers(value);
    if (value == maxWorkers)
        return;
    const auto keep = shared_from_this(); // a slot may delete the executor
    maxWorkers = value;
    // Idle workers beyond the new bound leave now; busy ones once their task ends.
    const auto beyond
        = std::partition(m_idle.begin(), m_idle.end(), [this](Worker* worker) { return worker->index < maxWorkers; });
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
    post(MaxWorkersChanged, maxWorkers);
    flush();
}

void ExecutorCore::setClock(std::shared_ptr<Clock> clock)
{
    if (!clock)
        throw std::invalid_argument("setClock(): the clock must not be null");
    if (active > 0 || pendingCount() > 0)
        throw std::logic_error("setClock(): the executor must have no queued or running task");
    m_clock = std::move(clock);
    m_rateAlarm.reset();
    m_timeouts.resetAlarm();
    m_rateLimiter->forget(); // starts of another clock mean nothing on this one
}

} // namespace TaskPool::detail
