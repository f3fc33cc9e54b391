// SPDX-License-Identifier: MIT
// A reference model of TaskPoolExecutor's scheduler, in plain C++ (no Qt, no coroutines), for
// tst_model. It says what the executor must show after each operation: its counts, which tasks
// started (and in which order), how every future settled, and which signals were emitted.
//
// What it models, and the rules it holds the executor to:
//
//  * A task is Queued, Taken (a worker took it: it counts as active, no longer as pending; its
//    taskStarted is not emitted yet), Running (taskStarted emitted; its coroutine runs), Ended (its
//    coroutine returned or threw: its worker slot is free) or Dropped (it never ran: cancelled while
//    queued, or settled before its taskStarted was emitted). A queued task waits for one reason
//    (describeWait()): paused, every worker busy, its key saturated, the rate window full, or a
//    task ahead of it.
//  * Its future is Open, Finished, Failed or Cancelled; `plainCancelled` is the canceled flag that a
//    QFuture::cancel() on a plain copy sets (the executor has no hook for it).
//  * Which task starts next: the highest priority, then the earliest submission (the order in which
//    submit() returned, in any thread), among the queued tasks whose key has room (running <
//    keyLimit(key)); a task whose key is saturated holds back nothing. A task starts only when not
//    paused, fewer than maxWorkers are active and the rate window has room.
//  * Rate limit: at most N starts in any window W. The times of the most recent starts made while
//    a limit is set are kept, as many as the highest limit set so far, whatever the limit becomes
//    (lowering it, raising it, 0 and back: a window is never broken); they are judged by the
//    current W. A start at time s counts while now - s < W. Starts beyond that count are forgotten,
//    whatever their age: a window widened later counts only the kept ones (the memory of a limiter
//    stays bounded by its highest limit).
//  * Tasks start only from the event loop (runEventLoop()), never inside an API call.
//  * Ends are the driver's: a running task ends when the driver opens its gate (it returns or
//    throws) or, for a task that takes a std::stop_token, once its stop was requested. The model
//    queues them (nextEnd()); the driver ends one at a time, the event loop running in between.
//  * Transitions, then signals. Every operation is one transition (or a sequence of them: a
//    context's destruction cancels its tasks one by one): submit, cancel, clear, shutdown, a
//    hand-over learnt, a take, a drop, an end, a change of a setting. A transition is made whole
//    first; its signals are posted, and then emitted one at a time in the order they were posted.
//    A slot runs when its signal is emitted: it sees a whole state, and the signals of its own
//    transitions are emitted after those already due. Hence:
//      - a take posts pendingCountChanged, taskStarted, activeCountChanged. A task whose future
//        settles before its taskStarted is emitted (a slot of its pendingCountChanged cancels it)
//        never runs: no taskStarted, its function is never called, it is released again (its take
//        still counts as a start of the rate window). shutdown({.cancelFutures = true}) there
//        counts it as running: its token is stopped, and it starts with that stopped token.
//      - clear() cancels exactly the tasks queued at the call and returns that count, whatever
//        its slots submit, cancel, or run in a nested event loop.
//      - idle() (pending and active both 0 after a task was queued) is emitted once every slot of
//        the signals before it has returned, and only if still idle then.
//  * Cancelling: Future::cancel() in the executor's thread is seen at once (queued: dropped, its
//    pending count gone, taskCancelled; running: the future cancelled and taskCancelled at once, the
//    stop token stopped, the slot held until the coroutine ends). Future::cancel() in another thread
//    settles the future at once; the executor learns of it in its next event-loop turn (queued:
//    dropped then; running: taskCancelled and the stop then). A plain QFuture::cancel() of a queued
//    task is seen when the task would start: it is dropped then without starting (taskCancelled,
//    pendingCount drops). The executor may notice it earlier (a worker looking at the queue while
//    paused or rate-limited): the driver reports such an early drop and the model follows
//    (droppedEarly()). A plain cancel of a running task that takes a token is seen from the event
//    loop (a watcher) as a Future::cancel(); of one without, when it ends (cancelled, whatever it
//    returns).
//  * Signals: pendingCountChanged in every transition that changes the pending count (a submit from
//    another thread counts at once), taskStarted when a take's is emitted, exactly one of
//    taskFinished / taskFailed / taskCancelled per task once its future settled and the executor
//    knows it, rateLimitedChanged when rateLimited changes.
//  * rateLimited is derived, brought up to date at the end of every transition and every change of
//    a setting (pause, limits, virtual time): a rate limit is set, not paused, a worker is free, a
//    queued task's key has room, and the window is full.
//  * shutdown(): no more submits (ShutdownError); with cancelFutures every queued task is
//    cancelled and every taken or running one has its stop requested.
//  * A context's destruction cancels its tasks (Future::cancel()) in submission order; the signals
//    of those transitions are emitted from the event loop (or by the next transition's flush).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace SchedModel {

enum class Signal { PendingCount, ActiveCount, Started, Finished, Failed, Cancelled, RateLimited, Idle };
enum class Outcome { Open, Finished, Failed, Cancelled };
enum class Phase { Queued, Taken, Running, Ended, Dropped };
enum class Gate { Closed, Value, Throw };

inline const char* name(Outcome o)
{
    switch (o) {
    case Outcome::Open:
        return "open";
    case Outcome::Finished:
        return "finished";
    case Outcome::Failed:
        return "failed";
    case Outcome::Cancelled:
        return "cancelled";
    }
    return "?";
}

inline const char* name(Phase p)
{
    switch (p) {
    case Phase::Queued:
        return "queued";
    case Phase::Taken:
        return "taken";
    case Phase::Running:
        return "running";
    case Phase::Ended:
        return "ended";
    case Phase::Dropped:
        return "dropped";
    }
    return "?";
}

inline const char* name(Signal s)
{
    switch (s) {
    case Signal::PendingCount:
        return "pendingCountChanged";
    case Signal::ActiveCount:
        return "activeCountChanged";
    case Signal::Started:
        return "taskStarted";
    case Signal::Finished:
        return "taskFinished";
    case Signal::Failed:
        return "taskFailed";
    case Signal::Cancelled:
        return "taskCancelled";
    case Signal::RateLimited:
        return "rateLimitedChanged";
    case Signal::Idle:
        return "idle";
    }
    return "?";
}

struct Task {
    int label = 0;
    int priority = 0;
    int key = -1; // -1: none
    int context = -1; // -1: none
    bool token = false; // takes a std::stop_token and ends on stop
    long order = 0; // submission order
    Phase phase = Phase::Queued;
    Outcome outcome = Outcome::Open; // the future
    bool plainCancelled = false; // QFuture::cancel() on a plain copy
    bool published = false; // submit() returned: the caller has the future
    bool started = false; // taskStarted emitted
    bool stopRequested = false;
    Outcome reported = Outcome::Open; // the terminal signal emitted (Open: none yet)
    Gate gate = Gate::Closed;
    bool endQueued = false;
    bool neverRuns = false; // settled between its take and its taskStarted
};

//! Told of every signal as the executor emits it; a slot connected to it runs inside signal(),
//! and may call the scheduler again (its transitions post more signals, emitted after those due).
class Listener {
public:
    virtual ~Listener() = default;
    virtual void signal(Signal signal, long value) = 0;
};

class Scheduler {
public:
    Scheduler(int maxWorkers, Listener& listener) : m_maxWorkers(maxWorkers), m_listener(listener) { }

    // ---- what the executor shows
    int pending() const { return m_pending; }
    int active() const { return m_active; }
    bool rateLimited() const { return m_rateLimited; }
    bool isShutdown() const { return m_shutdown; }
    bool isPaused() const { return m_paused; }
    int maxWorkers() const { return m_maxWorkers; }
    long now() const { return m_now; }
    const std::map<int, Task>& tasks() const { return m_tasks; }
    const Task* find(int label) const
    {
        const auto it = m_tasks.find(label);
        return it == m_tasks.end() ? nullptr : &it->second;
    }
    const std::vector<int>& startOrder() const { return m_startOrder; }
    bool contextAlive(int context) const { return !m_deadContexts.count(context); }
    //! Queued tasks cancelled through a plain QFuture copy, which the executor may drop early.
    std::vector<int> droppable() const
    {
        std::vector<int> labels;
        for (const auto& [label, task] : m_tasks) {
            if (task.phase == Phase::Queued && task.plainCancelled)
                labels.push_back(label);
        }
        return labels;
    }
    int keyLimit(int key) const
    {
        const auto it = m_keyLimits.find(key);
        return it == m_keyLimits.end() ? m_maxPerKey : it->second;
    }
    int keyRunning(int key) const
    {
        const auto it = m_keyRunning.find(key);
        return it == m_keyRunning.end() ? 0 : it->second;
    }
    int startsInWindow() const
    {
        return int(std::count_if(m_starts.begin(), m_starts.end(), [this](long s) { return m_now - s < m_window; }));
    }

    // ---- the executor's API (its own thread unless said)

    //! submit(); false when it throws ShutdownError.
    bool submit(int label, int priority, int key, int context, bool token)
    {
        if (m_shutdown)
            return false;
        Task task;
        task.label = label;
        task.priority = priority;
        task.key = key;
        task.context = context;
        task.token = token;
        task.order = m_nextOrder++;
        m_tasks[label] = task;
        begin();
        ++m_pending;
        m_busy = true;
        post(Signal::PendingCount, m_pending);
        finish();
        return true;
    }
    //! submit() returned: the future is the caller's (a slot can name it from now on).
    void publish(int label) { m_tasks.at(label).published = true; }

    //! Future::cancel() in the executor's thread.
    bool cancel(int label)
    {
        Task& task = m_tasks.at(label);
        if (task.outcome != Outcome::Open)
            return false;
        begin();
        task.outcome = Outcome::Cancelled;
        switch (task.phase) {
        case Phase::Queued:
            task.phase = Phase::Dropped;
            --m_pending;
            report(task);
            post(Signal::PendingCount, m_pending);
            break;
        case Phase::Taken:
            report(task); // its taskStarted is not emitted yet: it never runs (deliver())
            break;
        case Phase::Running:
            report(task);
            requestStop(task);
            break;
        case Phase::Ended:
        case Phase::Dropped:
            break;
        }
        finish();
        return true;
    }

    //! Future::cancel() in another thread: the future settles now, the executor learns of it in
    //! its next event-loop turn.
    bool cancelFromThread(int label)
    {
        Task& task = m_tasks.at(label);
        if (task.outcome != Outcome::Open)
            return false;
        task.outcome = Outcome::Cancelled;
        m_learn.push_back({ label, false });
        return true;
    }

    //! QFuture::cancel() on a plain copy (the future must be open).
    void cancelPlain(int label)
    {
        Task& task = m_tasks.at(label);
        if (task.outcome != Outcome::Open || task.plainCancelled)
            return;
        task.plainCancelled = true;
        if (task.phase == Phase::Running && task.token)
            m_learn.push_back({ label, true }); // the executor's watcher of a token-taking task
    }

    int clear()
    {
        const int cleared = m_pending;
        if (cleared == 0)
            return 0;
        begin();
        for (auto& [label, task] : m_tasks) {
            if (task.phase != Phase::Queued)
                continue;
            task.phase = Phase::Dropped;
            if (task.outcome == Outcome::Open)
                task.outcome = Outcome::Cancelled;
            report(task);
        }
        m_pending = 0;
        post(Signal::PendingCount, m_pending);
        finish();
        return cleared;
    }

    void pause()
    {
        m_paused = true;
        refresh();
    }
    void resume()
    {
        m_paused = false;
        refresh();
    }
    void setMaxWorkers(int n)
    {
        m_maxWorkers = n;
        refresh();
    }
    void setKeyLimit(int key, int n)
    {
        m_keyLimits[key] = n;
        refresh();
    }
    void setMaxPerKey(int n)
    {
        m_maxPerKey = n;
        refresh();
    }
    void setRateLimit(int starts, long windowMs)
    {
        m_rateLimit = starts;
        m_kept = std::max(m_kept, starts);
        if (starts > 0)
            m_window = windowMs;
        refresh();
    }

    //! The driver lets a running task end: it returns (Value) or throws (Throw).
    void openGate(int label, Gate gate)
    {
        Task& task = m_tasks.at(label);
        task.gate = gate;
        queueEnd(task);
    }

    void destroyContext(int context)
    {
        m_deadContexts.insert(context);
        std::vector<int> labels;
        for (const auto& [label, task] : m_tasks) {
            if (task.context == context)
                labels.push_back(label);
        }
        std::sort(labels.begin(), labels.end(),
                  [this](int a, int b) { return m_tasks.at(a).order < m_tasks.at(b).order; });
        // Its transitions are made now, inside the object's destructor; their signals are emitted
        // from the event loop (the object's slots must not run half destroyed).
        m_deferring = true;
        for (int label : labels)
            cancel(label);
        m_deferring = false;
    }

    void advance(long ms)
    {
        m_now += ms;
        refresh();
    }

    void shutdown(bool cancelFutures)
    {
        m_shutdown = true;
        if (!cancelFutures)
            return;
        begin();
        bool dropped = false;
        for (auto& [label, task] : m_tasks) {
            if (task.phase != Phase::Queued)
                continue;
            task.phase = Phase::Dropped;
            if (task.outcome == Outcome::Open)
                task.outcome = Outcome::Cancelled;
            report(task);
            dropped = true;
        }
        if (dropped) {
            m_pending = 0;
            post(Signal::PendingCount, m_pending);
        }
        for (auto& [label, task] : m_tasks) {
            if (task.phase == Phase::Taken || task.phase == Phase::Running)
                requestStop(task);
        }
        finish();
    }

    // ---- the event loop

    //! What the executor does when its event loop runs until nothing is left to do: hand-overs
    //! from other threads are learnt, then queued tasks start while they may.
    void runEventLoop()
    {
        if (std::exchange(m_flushDue, false))
            flush(); // what a context's destruction left to the loop
        for (;;) {
            while (!m_learn.empty()) {
                const Learn learn = m_learn.front();
                m_learn.pop_front();
                learnt(learn);
            }
            if (!pass() && m_learn.empty())
                return;
        }
    }

    //! The running task the driver is to end next, if any.
    std::optional<int> nextEnd() const
    {
        if (m_ends.empty())
            return std::nullopt;
        return m_ends.front();
    }
    //! Ends it: its coroutine returns, throws, or throws CancelledError on its stop.
    void endNext()
    {
        const int label = m_ends.front();
        m_ends.pop_front();
        Task& task = m_tasks.at(label);
        task.endQueued = false;
        begin();
        task.phase = Phase::Ended;
        --m_active;
        if (task.key >= 0)
            --m_keyRunning[task.key];
        if (task.outcome == Outcome::Open) {
            if (task.plainCancelled)
                task.outcome = Outcome::Cancelled; // Qt drops what is reported after such a cancel
            else if (task.gate == Gate::Value)
                task.outcome = Outcome::Finished;
            else if (task.gate == Gate::Throw)
                task.outcome = Outcome::Failed;
            else
                task.outcome = Outcome::Cancelled; // ended on its stop: CancelledError
        }
        report(task);
        post(Signal::ActiveCount, m_active);
        finish();
    }

    //! The executor dropped a plainly cancelled queued task before the model would have.
    void droppedEarly(int label) { dropCancelRequested(m_tasks.at(label)); }

    //! Why a queued task waits (for a dump).
    std::string describeWait(const Task& task) const
    {
        if (task.phase != Phase::Queued)
            return {};
        if (task.key >= 0 && keyRunning(task.key) >= keyLimit(task.key))
            return "held by its key";
        if (m_paused)
            return "held by pause";
        if (m_active >= m_maxWorkers)
            return "all workers busy";
        if (m_rateLimit > 0 && startsInWindow() >= m_rateLimit)
            return "held by the rate window";
        return "behind another task";
    }

private:
    struct Report {
        Signal signal;
        long value; // a count, a flag or a task's label
    };
    struct Learn {
        int label;
        bool plain; // a plain cancel of a running token-taking task, seen by its watcher
    };

    //! A transition: made whole first, then its signals (posted meanwhile) are emitted.
    void begin() { ++m_transitions; }
    void finish()
    {
        updateRateLimited();
        if (m_busy && m_pending == 0 && m_active == 0) {
            m_busy = false;
            post(Signal::Idle, 0);
        }
        flush();
    }
    void post(Signal signal, long value) { m_outbox.push_back({ signal, value }); }

    //! Emits what was posted, one signal at a time, in order; re-entrant (a slot's transitions
    //! flush too, going on with the signals already due). idle() is emitted by the outermost
    //! flush only, once every slot before it has returned, and only if still idle then.
    void flush()
    {
        if (m_deferring) {
            m_flushDue = !m_outbox.empty() || m_idleDue || m_flushDue;
            return;
        }
        ++m_flushDepth;
        for (;;) {
            while (!m_outbox.empty()) {
                const Report report = m_outbox.front();
                m_outbox.pop_front();
                if (report.signal == Signal::Idle && m_flushDepth > 1)
                    m_idleDue = true;
                else
                    deliver(report);
            }
            if (m_flushDepth > 1 || !m_idleDue)
                break;
            m_idleDue = false;
            deliver({ Signal::Idle, 0 });
        }
        --m_flushDepth;
    }

    void deliver(const Report& report)
    {
        if (report.signal == Signal::Idle && m_busy)
            return; // a slot gave it work again
        if (report.signal == Signal::Started) {
            Task& task = m_tasks.at(int(report.value));
            if (task.outcome != Outcome::Open) {
                task.neverRuns = true; // settled before its start was told: released by take()
                return;
            }
            task.phase = Phase::Running;
            task.started = true;
            m_startOrder.push_back(task.label);
            if (task.stopRequested && task.token)
                queueEnd(task);
        }
        m_listener.signal(report.signal, report.value);
    }

    void report(Task& task)
    {
        if (task.reported != Outcome::Open || task.outcome == Outcome::Open)
            return;
        task.reported = task.outcome;
        post(task.outcome == Outcome::Finished     ? Signal::Finished
                 : task.outcome == Outcome::Failed ? Signal::Failed
                                                   : Signal::Cancelled,
             task.label);
    }

    void queueEnd(Task& task)
    {
        if (task.endQueued)
            return;
        task.endQueued = true;
        m_ends.push_back(task.label);
    }

    void requestStop(Task& task)
    {
        task.stopRequested = true;
        if (task.token && task.phase == Phase::Running)
            queueEnd(task);
    }

    void learnt(const Learn& learn)
    {
        Task& task = m_tasks.at(learn.label);
        begin();
        if (learn.plain) {
            if (task.phase == Phase::Running && task.outcome == Outcome::Open) {
                task.outcome = Outcome::Cancelled;
                report(task);
                requestStop(task);
            }
        } else if (task.phase == Phase::Queued) {
            task.phase = Phase::Dropped;
            --m_pending;
            report(task);
            post(Signal::PendingCount, m_pending);
        } else {
            report(task);
            if (task.phase == Phase::Running)
                requestStop(task);
        }
        finish();
    }

    bool keyHasRoom(const Task& task) const { return task.key < 0 || keyRunning(task.key) < keyLimit(task.key); }

    Task* best()
    {
        Task* found = nullptr;
        for (auto& [label, task] : m_tasks) {
            if (task.phase != Phase::Queued || !keyHasRoom(task))
                continue;
            if (!found || task.priority > found->priority
                || (task.priority == found->priority && task.order < found->order))
                found = &task;
        }
        return found;
    }

    bool rateAllows() const { return m_rateLimit == 0 || startsInWindow() < m_rateLimit; }

    //! One scheduling pass; true when it changed anything.
    bool pass()
    {
        const long before = m_transitions;
        for (;;) {
            if (m_paused || m_active >= m_maxWorkers)
                break;
            Task* task = best();
            if (!task || !rateAllows())
                break;
            if (task->plainCancelled) {
                dropCancelRequested(*task);
                continue;
            }
            take(*task);
        }
        return m_transitions != before;
    }

    //! A change of a setting: a transition of its own when it changes rateLimited.
    void refresh()
    {
        if (m_rateLimited == rateLimitedNow())
            return;
        begin();
        finish();
    }

    //! A worker takes the task: it is running from here (counted, its key's place and its rate
    //! start taken); pendingCountChanged, taskStarted and activeCountChanged tell it, in that
    //! order. Settled before its taskStarted was emitted, it never runs: released again.
    void take(Task& task)
    {
        begin();
        task.phase = Phase::Taken;
        --m_pending;
        ++m_active;
        if (task.key >= 0)
            ++m_keyRunning[task.key];
        if (m_rateLimit > 0) {
            m_starts.push_back(m_now);
            if (int(m_starts.size()) > m_kept)
                m_starts.erase(m_starts.begin());
        }
        post(Signal::PendingCount, m_pending);
        post(Signal::Started, task.label);
        post(Signal::ActiveCount, m_active);
        finish();
        if (!task.neverRuns)
            return;
        begin();
        task.phase = Phase::Dropped;
        --m_active;
        if (task.key >= 0)
            --m_keyRunning[task.key];
        post(Signal::ActiveCount, m_active);
        finish();
    }

    void dropCancelRequested(Task& task)
    {
        begin();
        task.phase = Phase::Dropped;
        --m_pending;
        task.outcome = Outcome::Cancelled;
        report(task);
        post(Signal::PendingCount, m_pending);
        finish();
    }

    //! Whether the rate window alone holds back a task that could start now.
    bool rateLimitedNow() { return m_rateLimit > 0 && !m_paused && m_active < m_maxWorkers && !rateAllows() && best(); }
    //! rateLimited is derived: brought up to date at the end of every transition.
    void updateRateLimited()
    {
        const bool limited = rateLimitedNow();
        if (m_rateLimited == limited)
            return;
        m_rateLimited = limited;
        post(Signal::RateLimited, limited ? 1 : 0);
    }

    int m_maxWorkers;
    Listener& m_listener;
    std::map<int, Task> m_tasks;
    long m_nextOrder = 0;
    int m_pending = 0;
    int m_active = 0;
    bool m_busy = false;
    bool m_paused = false;
    bool m_shutdown = false;
    bool m_rateLimited = false;
    int m_rateLimit = 0;
    long m_window = 1000;
    long m_now = 0;
    std::vector<long> m_starts; // the most recent starts made while a rate limit was set
    int m_kept = 0; // how many: the highest limit so far
    std::map<int, int> m_keyLimits;
    std::map<int, int> m_keyRunning;
    int m_maxPerKey = std::numeric_limits<int>::max();
    std::vector<int> m_startOrder;
    std::deque<Learn> m_learn;
    std::deque<int> m_ends;
    long m_transitions = 0;
    std::deque<Report> m_outbox;
    int m_flushDepth = 0;
    bool m_idleDue = false;
    bool m_deferring = false; // a context is being destroyed: signals wait for the event loop
    bool m_flushDue = false;
    std::set<int> m_deadContexts;
};

} // namespace SchedModel
