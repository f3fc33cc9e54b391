// SPDX-License-Identifier: MIT
#include "executorcore_p.h"

#include <QAbstractEventDispatcher>
#include <QVarLengthArray>

namespace TaskPool::detail {

namespace {
    std::atomic<quint64> lastJobId { 0 };
}

Job::Job() : id(lastJobId.fetch_add(1, std::memory_order_relaxed) + 1) { }

void Job::destroy(JobControl* control)
{
    delete control;
}

std::stop_token Job::stopToken()
{
    return control ? control->stop.get_token() : std::stop_token();
}

bool Job::addWaiter(Waiter& waiter)
{
    std::lock_guard lock(m_waitersLock);
    if (m_state.load(std::memory_order_acquire) == Settled)
        return false;
    waiter.prev = nullptr;
    waiter.next = m_waiters;
    if (m_waiters)
        m_waiters->prev = &waiter;
    m_waiters = &waiter;
    return true;
}

void Job::removeWaiter(Waiter& waiter) noexcept
{
    std::lock_guard lock(m_waitersLock);
    if (!waiter.handle)
        return; // already released by endSettle()
    if (waiter.prev)
        waiter.prev->next = waiter.next;
    else
        m_waiters = waiter.next;
    if (waiter.next)
        waiter.next->prev = waiter.prev;
    waiter.handle = {};
}

void Job::endSettle()
{
    // Resume outside the lock: a resumption may run inline (a thread without an event loop), and
    // the resumed awaiter's destructor takes the lock again.
    QVarLengthArray<std::pair<std::coroutine_handle<>, QThread*>, 4> released;
    {
        std::lock_guard lock(m_waitersLock);
        m_state.store(Settled, std::memory_order_release);
        for (Waiter* waiter = std::exchange(m_waiters, nullptr); waiter; waiter = waiter->next)
            released.append({ std::exchange(waiter->handle, {}), waiter->thread });
    }
    finishStore();
    // The list is newest first: awaiters resume in the order they began to wait.
    for (auto it = released.crbegin(); it != released.crend(); ++it)
        resumeLater(it->first, it->second);
}

bool Job::cancel()
{
    if (!settleCancelled()) {
        hasOutcome(); // settled by another thread: once this returns false, done() is true
        return false;
    }
    // The executor's own thread tells it now; it may have moved to another since the submit.
    QThread* const home = thread.load(std::memory_order_acquire);
    if (home == QThread::currentThread()
        && (!core || core->thread.load(std::memory_order_relaxed) == QThread::currentThread())) {
        if (core)
            core->jobCancelled(this);
    } else if (home) {
        // Told in the executor's thread, where `core` may be read and a task's stop callbacks run.
        // The hand-over of a job submitted from another thread was posted before: it is taken in
        // first.
        ref();
        QMetaObject::invokeMethod(
            QAbstractEventDispatcher::instance(home),
            [job = JobRef(this)] {
                if (ExecutorCore* core = job->core) // the executor moved to another thread meanwhile: there
                    core->atHome([job] { job->core->jobCancelled(job.get()); });
            },
            Qt::QueuedConnection);
    }
    return true;
}

bool JobAwaiter::await_suspend(std::coroutine_handle<> handle)
{
    m_waiter.handle = handle;
    m_waiter.thread = QThread::currentThread();
    // Set before the waiter is published: from then on another thread may resume the coroutine
    // at once (inline, when the awaiting thread has no event loop), so this awaiter is not touched
    // again once addWaiter() succeeded.
    m_registered = true;
    if (m_job->addWaiter(m_waiter))
        return true;
    m_registered = false;
    m_waiter.handle = {};
    return false;
}

QString describe(const std::exception_ptr& error)
{
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return QString::fromUtf8(e.what());
    } catch (...) {
        return QStringLiteral("an exception not derived from std::exception");
    }
}

} // namespace TaskPool::detail
