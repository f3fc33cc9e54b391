// SPDX-License-Identifier: MIT
#include <taskpool/taskpool.h>

#include <QAbstractEventDispatcher>
#include <QThread>

#include <vector>

namespace TaskPool::detail {

namespace {

    // The coroutines of one thread that are ready to resume, drained by one posted event.
    struct ReadyQueue {
        std::vector<std::coroutine_handle<>> ready;
        std::vector<std::coroutine_handle<>> draining;
        std::vector<std::coroutine_handle<>> nextTurn; // yields made while draining
        bool posted = false; // a drain event is on its way
        bool inDrain = false;

        void drain()
        {
            posted = false;
            inDrain = true;
            // What becomes ready while draining (a task ending wakes its awaiter, which submits the
            // next task...) runs in the same event, up to a bound, so that a chain of resumptions
            // costs one posted event, yet coroutines that keep yielding cannot starve the event loop.
            for (int rounds = 0; !ready.empty() && rounds < maxRounds; ++rounds) {
                std::swap(ready, draining);
                for (auto handle : draining)
                    handle.resume();
                draining.clear();
            }
            inDrain = false;
            ready.insert(ready.end(), nextTurn.begin(), nextTurn.end());
            nextTurn.clear();
            if (!ready.empty())
                post();
        }
        void post();

        static constexpr int maxRounds = 16;
    };

    thread_local ReadyQueue readyQueue;

    // Clears `posted` if the event is dropped unrun (the application went away), so that a later
    // QCoreApplication in the same thread is served again.
    struct DrainEvent {
        bool ran = false;
        DrainEvent() = default;
        DrainEvent(DrainEvent&& other) noexcept : ran(std::exchange(other.ran, true)) { }
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

    void ReadyQueue::post()
    {
        auto* dispatcher = QAbstractEventDispatcher::instance();
        if (!dispatcher)
            return; // the application is going away; nothing runs any more
        posted = true;
        QMetaObject::invokeMethod(dispatcher, DrainEvent(), Qt::QueuedConnection);
    }

} // namespace

void resumeLater(std::coroutine_handle<> handle, QThread* thread)
{
    if (thread && thread != QThread::currentThread()) {
        auto* dispatcher = QAbstractEventDispatcher::instance(thread);
        if (dispatcher) {
            QMetaObject::invokeMethod(
                dispatcher, [handle] { resumeLater(handle); }, Qt::QueuedConnection);
            return;
        }
        qWarning("TaskPool: the awaiting thread has no event loop; resuming in the completing thread");
        handle.resume();
        return;
    }
    ReadyQueue& queue = readyQueue; // one thread-local look-up
    if (!queue.posted && !queue.inDrain) {
        if (!QAbstractEventDispatcher::instance()) {
            // No event loop in this thread (no QCoreApplication): nothing else could resume it.
            handle.resume();
            return;
        }
        queue.post();
    }
    queue.ready.push_back(handle);
}

void yieldLater(std::coroutine_handle<> handle)
{
    if (readyQueue.inDrain)
        readyQueue.nextTurn.push_back(handle); // after the events already posted, not in this drain
    else
        resumeLater(handle);
}

} // namespace TaskPool::detail
