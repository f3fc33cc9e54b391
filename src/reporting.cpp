// SPDX-License-Identifier: MIT
// The executor core's reports: signals posted by transitions, emitted in order once the state is
// whole (docs/task-life.md), and the listener counts that make unheard signals free.
#include "executorcore_p.h"

#include <QAbstractEventDispatcher>
#include <QMetaMethod>

#include <algorithm>

namespace TaskPool::detail {

// ---- reporting --------------------------------------------------------------------------------

void ExecutorCore::flushSlow()
{
    const auto keep = shared_from_this(); // a slot may delete the executor, and with it the core
    flushReports();
    if (m_moveDue) // a slot may have moved it
        maybeMove();
}

void ExecutorCore::flushReports()
{
    if (m_rateActive)
        updateRateLimited();
    if (m_outHead == m_outbox.size() && !m_idleDue)
        return;
    if (m_deferring > 0 || m_deferredToLoop)
        return flushLater();
    // A slot's own transitions, flushed while a report is being emitted, leave their reports to
    // the flush already emitting: every slot of one report returns before the next report is
    // emitted, so each listener gets the signals in the order of the transitions. Inside event
    // processing that a slot runs (an event loop, or processEvents() resuming a worker), reports
    // go on (the outer flush waits for the slot): there a listener connected after that slot may
    // get later reports before the slot's own, but a task never runs before its taskStarted.
    const int level = QThread::currentThread()->loopLevel() + drainDepth();
    if (m_flushing && level <= m_flushLevel)
        return;
    const auto keep = shared_from_this(); // a slot may delete the executor
    struct Scope {
        ExecutorCore& core;
        const bool outer = !core.m_flushing;
        const int level = core.m_flushLevel;
        Scope(ExecutorCore& core, int level) : core(core)
        {
            core.m_flushing = true;
            core.m_flushLevel = level;
        }
        ~Scope()
        {
            core.m_flushing = !outer;
            core.m_flushLevel = level;
        }
    } scope(*this, level);
    for (;;) {
        // One report at a time, taken before it is emitted (a slot may throw: the rest stay for
        // the next flush).
        while (m_outHead < m_outbox.size()) {
            const Report report = std::move(m_outbox[m_outHead++]);
            if (m_outHead == m_outbox.size()) {
                m_outbox.clear();
                m_outHead = 0;
            }
            try {
                emitReport(report);
            } catch (...) {
                // A slot threw (Qt forbids it; the exception reaches whoever caused the report):
                // what was posted after it is emitted from the event loop, not lost.
                flushLater();
                throw;
            }
        }
        // idle() is no report in the queue but the last thing the outermost flush does, also past
        // a nested event loop: every slot of every report before it has returned (QML's
        // TaskFutures settle in taskFinished's), and a slot that gave it work again cancels it.
        if (!scope.outer || !std::exchange(m_idleDue, false))
            return;
        emitReport({ Idle });
    }
}

void ExecutorCore::flushLater()
{
    if (std::exchange(m_flushPosted, true))
        return;
    postTo(thread.load(std::memory_order_relaxed), [self = shared_from_this()] {
        self->m_flushPosted = false;
        self->m_deferredToLoop = false;
        self->flushSlow();
    });
}

void ExecutorCore::contextDestroyed(Job* job)
{
    // The context's destroyed() comes from its destructor: the object it is part of (a window
    // whose slots listen to the executor) is half destroyed, and its connections still stand. So
    // the cancel's transitions are made now and reported from the event loop, once Qt has cut
    // those connections. Another thread's cancel is handed over to the loop anyway.
    // The reports posted meanwhile wait with them, also those of transitions made later in the
    // same destruction (a child object's own cancel): the next flush is the loop's.
    ExecutorCore* core = job->thread.load(std::memory_order_acquire) == QThread::currentThread() ? job->core : nullptr;
    if (!core || core->thread.load(std::memory_order_relaxed) != QThread::currentThread()) {
        job->cancel();
        return;
    }
    const auto keep = core->shared_from_this();
    struct Defer {
        ExecutorCore& core;
        explicit Defer(ExecutorCore& core) : core(core) { ++core.m_deferring; }
        ~Defer()
        {
            if (--core.m_deferring == 0 && (core.m_outHead < core.m_outbox.size() || core.m_idleDue)) {
                core.m_deferredToLoop = true;
                core.flushLater();
            }
        }
    } defer(*core);
    job->cancel();
}

void ExecutorCore::emitReport(const Report& r)
{
    if (!q)
        return; // the executor is gone: nobody to tell
    switch (r.signal) {
    case PendingCountChanged:
        return Q_EMIT q->pendingCountChanged(r.value);
    case ActiveCountChanged:
        return Q_EMIT q->activeCountChanged(r.value);
    case TaskStarted:
        if (r.job->isSettled())
            return; // cancelled before it was told started: it never runs
        r.job->startReported = true;
        return Q_EMIT q->taskStarted(r.taskId, r.text);
    case TaskFinished:
        return Q_EMIT q->taskFinished(r.taskId);
    case TaskFailed:
        return Q_EMIT q->taskFailed(r.taskId, r.text);
    case TaskCanceled:
        Q_EMIT q->taskCancelled(r.taskId);
        if (q) // a slot of the first spelling may delete the executor
            Q_EMIT q->taskCanceled(r.taskId);
        return;
    case Idle:
        if (!m_busy && active == 0 && pendingCount() == 0) // a slot may have given it work again
            Q_EMIT q->idle();
        return;
    case WorkerCountChanged:
        return Q_EMIT q->workerCountChanged(r.value);
    case MaxWorkersChanged:
        return Q_EMIT q->maxWorkersChanged(r.value);
    case IsShutdownChanged:
        return Q_EMIT q->isShutdownChanged(true);
    case PausedChanged:
        return Q_EMIT q->pausedChanged(r.value != 0);
    case RateLimitChanged:
        return Q_EMIT q->rateLimitChanged();
    case RateLimitedChanged:
        return Q_EMIT q->rateLimitedChanged(r.value != 0);
    case MaxPerKeyChanged:
        return Q_EMIT q->maxPerKeyChanged(r.value);
    case SignalCount:
        break;
    }
}

void ExecutorCore::reportSlow(Job* job)
{
    QString message;
    switch (job->outcome(&message)) {
    case Outcome::Succeeded:
        post(TaskFinished, 0, job->id);
        break;
    case Outcome::Failed:
        qCDebug(lcTaskPool) << "task" << job->id << "failed:" << message;
        post(TaskFailed, job->id, std::move(message));
        break;
    case Outcome::Cancelled:
        post(TaskCanceled, 0, job->id);
        break;
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
        QMetaMethod::fromSignal(&TaskPoolExecutor::maxWorkersChanged),
        QMetaMethod::fromSignal(&TaskPoolExecutor::isShutdownChanged),
        QMetaMethod::fromSignal(&TaskPoolExecutor::pausedChanged),
        QMetaMethod::fromSignal(&TaskPoolExecutor::rateLimitChanged),
        QMetaMethod::fromSignal(&TaskPoolExecutor::rateLimitedChanged),
        QMetaMethod::fromSignal(&TaskPoolExecutor::maxPerKeyChanged),
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
        std::lock_guard lock(m_listenersMutex); // connections may be made in any thread
        const int listeners = m_listeners[signal] += delta;
        if (listeners > 0)
            m_listening.fetch_or(1u << signal, std::memory_order_relaxed);
        else
            m_listening.fetch_and(~(1u << signal), std::memory_order_relaxed);
    }
}

void ExecutorCore::notifyCountWaiters()
{
    for (std::size_t i = 0; i < m_countWaiters.size();) {
        CountWaiter* waiter = m_countWaiters[i];
        if (!countsReached(*waiter)) {
            ++i;
            continue;
        }
        m_countWaiters.erase(m_countWaiters.begin() + qsizetype(i));
        resumeLater(std::exchange(waiter->handle, {}), waiter->thread);
    }
}

} // namespace TaskPool::detail
