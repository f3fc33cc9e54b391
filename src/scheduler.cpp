// SPDX-License-Identifier: MIT
#include "executorcore_p.h"

#include <QAbstractEventDispatcher>
#include <QPointer>
#include <QThread>

#include <vector>

namespace TaskPool::detail {

namespace {

    // The coroutines of one thread that are ready to resume, drained by one posted event.
    //
    // A resumed coroutine may run a nested event loop (a modal dialog, QEventLoop::exec,
    // processEvents) inside the drain. The drain takes one handle at a time from the shared queue,
    // so a drain started by the nested loop (see onLoopIteration) resumes everything the outer one
    // had not reached yet: nothing waits for the nested loop to end.
    struct ReadyQueue {
        std::vector<std::coroutine_handle<>> ready;
        std::size_t head = 0; // ready[head..] is still to run
        std::vector<std::coroutine_handle<>> nextTurn; // yields made while draining
        bool posted = false; // a drain event is on its way
        int depth = 0; // drains running on this thread's stack (more than one: a nested event loop)
        QPointer<QAbstractEventDispatcher> watched; // the dispatcher whose iterations we watch

        void drain()
        {
            posted = false;
            ++depth;
            // What becomes ready while draining (a task ending wakes its awaiter, which submits the
            // next task...) runs in the same event, up to a bound, so that a chain of resumptions
            // costs one posted event, yet coroutines that keep readying each other cannot starve the
            // event loop.
            std::size_t budget = (ready.size() - head) * maxRounds;
            while (head < ready.size() && budget-- > 0) {
                const auto handle = ready[head++];
                handle.resume();
            }
            if (head == ready.size()) {
                ready.clear();
                head = 0;
            }
            --depth;
            schedulePending();
        }

        //! Moves the yields to the ready queue and posts a drain for whatever waits there.
        void schedulePending()
        {
            if (!nextTurn.empty()) {
                ready.insert(ready.end(), nextTurn.begin(), nextTurn.end());
                nextTurn.clear();
            }
            if (head < ready.size() && !posted)
                post();
        }

        //! The thread's event loop is iterating while a drain is on the stack: a nested loop runs
        //! inside a resumed coroutine. Give it what the outer drain has not reached yet.
        void onLoopIteration()
        {
            if (depth > 0)
                schedulePending();
        }

        void post();

        static constexpr std::size_t maxRounds = 16;
    };

    // Initial-exec: an access is a load from the thread pointer, not a __tls_get_addr() call (about
    // 40 instructions per task). The variables are small enough for the static TLS glibc keeps
    // for libraries loaded later (the QML plugin loads this library with dlopen()).
    TASKPOOL_TLS thread_local ReadyQueue readyQueue;

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
        if (watched != dispatcher) {
            // Both signals: glib's dispatcher emits aboutToBlock or awake per iteration, the UNIX
            // one awake always. Called in this thread, from the dispatcher, only while it iterates.
            watched = dispatcher;
            QObject::connect(dispatcher, &QAbstractEventDispatcher::aboutToBlock, dispatcher,
                             [] { readyQueue.onLoopIteration(); });
            QObject::connect(dispatcher, &QAbstractEventDispatcher::awake, dispatcher,
                             [] { readyQueue.onLoopIteration(); });
        }
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
    if (!queue.posted && queue.depth == 0) {
        if (!QAbstractEventDispatcher::instance()) {
            // No event loop in this thread (no QCoreApplication): nothing else could resume it.
            handle.resume();
            return;
        }
        queue.post();
    }
    queue.ready.push_back(handle);
}

int drainDepth()
{
    return readyQueue.depth;
}

void yieldLater(std::coroutine_handle<> handle)
{
    if (readyQueue.depth > 0)
        readyQueue.nextTurn.push_back(handle); // after the events already posted, not in this drain
    else
        resumeLater(handle);
}

} // namespace TaskPool::detail
