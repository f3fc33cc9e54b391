// SPDX-License-Identifier: MIT
// A worker: the coroutine that takes a task, runs it and ends it, as cf-taskpool's `_worker`.
#include "executorcore_p.h"

namespace TaskPool::detail {

TASKPOOL_TLS thread_local CurrentWorker currentWorker;

namespace {

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

    //! Runs a job in a worker: the worker stays suspended while the task's coroutine runs.
    struct RunJob {
        ExecutorCore& core;
        int index;
        Job* job;
        bool running = true;

        bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> worker)
        {
            if (job->isSettled() && !job->startReported) {
                // Cancelled before its start was reported (by a slot of the start's other
                // signals): it never runs.
                job->discard();
                running = false;
                return false;
            }
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

    //! Comes back from the event loop: the ready queue, or a later turn. What the worker's last
    //! transitions posted is reported once it is suspended, so that a slot's nested event loop may
    //! resume it.
    struct Pause {
        ExecutorCore& core;
        bool later;
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<> handle) const
        {
            ExecutorCore& owner = core; // this frame may be resumed, and end, inside the flush
            later ? yieldLater(handle) : resumeLater(handle);
            owner.flush();
        }
        void await_resume() const noexcept { }
    };

    //! A worker, as cf-taskpool's `_worker`: take a job, run it, end it, until told to leave.
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
            core->flush(); // the start, reported: a slot may cancel the task, which then never runs
            const bool resumedByTask = co_await RunJob { *core, worker->index, job };
            // Its reports are emitted once this worker has taken its next task or parked: a slot
            // that submits and runs a nested event loop then finds a worker for its task.
            core->end(*worker, job);
            if (worker->yieldDue) [[unlikely]] {
                worker->yieldDue = false;
                co_await Pause { *core, true }; // it took in other threads' work: the loop turns
            } else if (resumedByTask && core->hasQueued()) {
                // The task's coroutine resumed this worker from wherever it ended: inside a
                // QNetworkReply::finished emission, a timer's slot... The next task starts from
                // the event loop instead, never inside another task's last resumption.
                co_await Pause { *core, false };
            }
        }
        qCDebug(lcTaskPool) << "worker left:" << core->workerName(worker->index);
        core->leave(worker);
        core->flush();
    }

} // namespace

void startWorker(std::shared_ptr<ExecutorCore> core, ExecutorCore::Worker* worker)
{
    workerLoop(std::move(core), worker); // it yields at once: nothing runs inside the caller
}

} // namespace TaskPool::detail
