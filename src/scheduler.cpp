// SPDX-License-Identifier: MIT
#include <taskpool/taskpool.h>

#include <QAbstractEventDispatcher>
#include <QThread>

#include <vector>

namespace TaskPool::detail {

namespace {

// The coroutines of one thread that are ready to resume, drained by one posted event.
struct ReadyQueue
{
    std::vector<std::coroutine_handle<>> ready;
    std::vector<std::coroutine_handle<>> draining;
    bool posted = false;

    void drain()
    {
        posted = false;
        // A snapshot: what becomes ready meanwhile waits for the next event, so that coroutines
        // that keep yielding cannot starve the rest of the event loop.
        std::swap(ready, draining);
        for (auto handle : draining)
            handle.resume();
        draining.clear();
    }
};

thread_local ReadyQueue readyQueue;

// Clears `posted` if the event is dropped unrun (the application went away), so that a later
// QCoreApplication in the same thread is served again.
struct DrainEvent
{
    bool ran = false;
    DrainEvent() = default;
    DrainEvent(DrainEvent &&other) noexcept : ran(std::exchange(other.ran, true)) { }
    ~DrainEvent()
    {
        if (!ran)
            readyQueue.posted = false;
    }
    void operator()()
    {
        ran = true;
        readyQueue.drain();
    }
};

} // namespace

void resumeLater(std::coroutine_handle<> handle, QThread *thread)
{
    if (thread && thread != QThread::currentThread()) {
        auto *dispatcher = QAbstractEventDispatcher::instance(thread);
        if (dispatcher) {
            QMetaObject::invokeMethod(dispatcher, [handle] { resumeLater(handle); }, Qt::QueuedConnection);
            return;
        }
        qWarning("TaskPool: the awaiting thread has no event loop; resuming in the completing thread");
        handle.resume();
        return;
    }
    if (!readyQueue.posted) {
        auto *dispatcher = QAbstractEventDispatcher::instance();
        if (!dispatcher) {
            // No event loop in this thread (no QCoreApplication): nothing else could resume it.
            handle.resume();
            return;
        }
        readyQueue.posted = true;
        QMetaObject::invokeMethod(dispatcher, DrainEvent(), Qt::QueuedConnection);
    }
    readyQueue.ready.push_back(handle);
}

} // namespace TaskPool::detail
