// SPDX-License-Identifier: MIT
// Randomized stress against invariants. Each seed drives up to four executors with a random
// sequence of operations (submit in both forms and with a QPromise, tasks that succeed, throw,
// cancel themselves, hang until released, submit more work, shut down or destroy their own
// executor; cancel() on queued and running futures; map() with and without a buffer, abandoned at
// random points; shutdown() with random options, several at once; destroying an executor with
// work in flight; wait() and asCompleted() over random subsets), with the edges users reach:
//   - task bodies (coroutines and plain callables) and coroutines resumed by pool futures that run
//     a nested QEventLoop, inside which they submit a task and await it;
//   - results whose copy or move throws (a budget carried from copy to copy), in tasks and maps;
//   - re-entrant slots on every executor signal that submit, cancel, shut down or delete it;
//   - setMaxWorkers() raising the bound while workers are parked at the old one;
//   - the scheduling controls: priorities and keys on submit, per-key limits and a rate limit on
//     some executors, pause() (resumed a few steps later), clear();
//   - QFuture::cancel() on plain copies of pool futures;
// and checks after every step and at the end that:
//   - every future reaches exactly one terminal state (result, exception, cancelled), the one its
//     task and the operations on it call for, and never changes it afterwards;
//   - a coroutine awaiting a future is resumed by the next turn of the event loop once it settled;
//   - running task bodies (counted inside them) never exceed maxWorkers;
//   - activeCount/pendingCount/workerCount equal what the model expects and what their NOTIFY
//     signals said; idle() comes only when nothing runs or waits;
//   - each task id gets at most one taskStarted and exactly one terminal signal (while its executor
//     exists), and that signal agrees with the future;
//   - a map yields its items in order, and items left behind by an abandoned map never start;
//   - shutdown({.wait = true}) returns only once no task of its executor runs;
//   - a nested loop ends on its condition (the task it submitted and awaited inside it settled),
//     never on its fallback timer;
//   - a result whose copy or move throws fails its future (or map item) with that exception;
//   - after a raise, activeCount reaches min(maxWorkers, active + pending) within a few turns;
//   - right after a plain QFuture::cancel(), cancelled() implies done(), done() equals
//     cancelled() || isFinished(), an unsettled future is cancelled and a settled one unchanged;
//   - nothing starts while its executor is paused; never more tasks of a key run than its limit; at
//     each start, no queued task without a key (submitted outside a slot) has a higher priority,
//     or an equal one and an earlier submission; no window of the rate limit (less 4 ms: starts are
//     timed by the model's taskStarted slot, after the pool's own reading) holds more starts than
//     it allows; clear() returns the pending count and every task it cleared ends cancelled;
//   - nothing hangs (a watchdog per seed) and nothing leaks (ASan/LSan builds).
// Everything runs in one thread, and nothing depends on time (a nested loop quits on a condition;
// its timer is only a failure detector), so a seed replays exactly, except on the executors with a
// rate limit (1 in 8), whose starts follow the clock.
//
//   TASKPOOL_STRESS_SEEDS=N       number of seeds (default 500), or FIRST:N
//   TASKPOOL_STRESS_OPS=N         operations per seed (default 200)
//   TASKPOOL_STRESS_TRACE=1       log each operation and the executors' counts (to replay a seed)
//   TASKPOOL_STRESS_LEAK_STEPS=1  under ASan, a leak check after every step
#include "testutil.h"

#include <QList>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define TASKPOOL_LEAK_CHECK_PER_SEED 1
#endif

#include <QHash>

#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

using namespace TestUtil;
using TaskPool::CancelledError;
using TaskPool::Future;
using TaskPool::ShutdownError;
using TaskPool::ShutdownOptions;
using TaskPool::TaskPoolExecutor;
using TaskPool::detail::Yield;

namespace {

enum class Action {
    Value,
    Throw,
    ThrowInt,
    ThrowCancelled,
    SubmitMore,
    DestroyOwn,
    ShutdownOwn,
    NestedLoop, // runs a nested event loop until a task it submits inside it has settled
    Brittle, // returns a result whose next copy or move throws BrittleError
};
enum class Form { Callable, Awaitable, Promise, Plain };
enum class Outcome { None, Value, Failed, Cancelled };

//! What a Brittle result throws: its value, as text.
struct BrittleError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

//! Every task's result. Copies and moves spend a budget carried from copy to copy: a copy or move
//! of a Value whose budget is 0 throws BrittleError. A negative budget never runs out.
struct Value {
    int value = 0;
    int budget = -1;
    Value() = default;
    explicit Value(int value, int budget = -1) : value(value), budget(budget) { }
    Value(const Value& other) : value(other.value), budget(spend(other)) { }
    Value(Value&& other) : value(other.value), budget(spend(other)) { }
    Value& operator=(const Value&) = default;
    static int spend(const Value& from)
    {
        if (from.budget == 0)
            throw BrittleError(std::to_string(from.value));
        return from.budget < 0 ? from.budget : from.budget - 1;
    }
};
using Fut = Future<Value>;

// Records the first broken invariant of model \a m (with its seed and step) and goes on.
#define CHECK_IN(m, cond, ...)                                                                                         \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            (m)->fail(QStringLiteral(#cond " -- ") + QString::asprintf(__VA_ARGS__));                                  \
    } while (false)
#define MODEL_CHECK(cond, ...) CHECK_IN(this, cond, __VA_ARGS__)

struct Exec {
    TaskPoolExecutor* pool = nullptr; // null once destroyed
    int maxWorkers = 1;
    int mostWorkers = 1; // the highest bound it ever had
    int running = 0; // task bodies of callable form (and map items) running now
    bool hasMaps = false; // map items are jobs the model does not list: counts checked loosely
    bool cancelledQueue = false; // a shutdown(cancelFutures) dropped queued work
    int notifiedActive = 0, notifiedPending = 0, notifiedWorkers = 0;
    // Between the pendingCountChanged of a worker taking a task and the task's taskStarted, the task
    // has left the queue and counts as active, but the model does not know which task it is yet:
    // re-entrant slots do not cancel then (set on every drop of pendingCount, cleared by taskStarted
    // and between operations).
    bool starting = false;
    // Scheduling controls.
    bool paused = false;
    int resumeAt = 0; // the step that resumes it
    bool controls = false; // key limits or a rate limit: raiseServed() does not apply
    QHash<QString, int> keyLimits; // and maxPerKey for the others
    int maxPerKey = std::numeric_limits<int>::max();
    int rateLimit = 0;
    std::chrono::milliseconds rateWindow { 0 };
    std::vector<std::chrono::steady_clock::time_point> starts; // every taskStarted, with a rate limit
    // With a rate limit, the executor's clock: virtual time, moved on by the seed's ticker, so that
    // the window is checked exactly (a busy machine may delay a start's report by more than the
    // window after the start was counted; in virtual time no time passes in between).
    std::shared_ptr<TaskPool::ManualClock> clock;
    int keyLimit(const QString& key) const { return keyLimits.value(key, maxPerKey); }
};

struct Rec {
    int exec = 0;
    Form form = Form::Callable;
    Action action = Action::Value;
    int gate = -1;
    int yields = 0;
    int depth = 0;
    bool shutdownCancels = false; // for ShutdownOwn
    Fut future;
    quint64 id = 0;
    bool accepted = false;
    int bodyStarts = 0;
    bool bodyEnded = false;
    bool workerStarted = false; // taskStarted seen
    bool forcedCancel = false; // cancel() returned true, or dropped by shutdown(cancelFutures)
    bool mustNotStart = false; // cancelled before its body started (callable forms)
    bool flippedByPlainCancel = false; // settled with a result, then reported cancelled (see plainCancel)
    bool signalCheckDue = false; // seen settled inside a slot: its terminal signal may still be due
    bool cancelledInSubmit = false; // a slot inside its submit() shut the executor down with cancelFutures
    Outcome seen = Outcome::None; // the terminal state first observed
    int priority = 0;
    QString key;
    bool inSlot = false; // submitted by a re-entrant slot (maybe between a take and its taskStarted)
    bool inClear = false; // submitted by a slot inside clear(): it may have been cleared too
    int seenValue = 0;
    int startedSignals = 0, terminalSignals = 0;
};

struct MapRec {
    int exec = 0;
    int size = 0; // -1: infinite
    std::optional<int> buffer;
    int throwAt = -1;
    int brittleAt = -1; // the item whose result's move throws
    int gateAt = -1, gate = -1;
    std::vector<int> started;
    bool abandoned = false;
    bool shutDuringCall = false; // a slot shut the executor down inside map(): it submitted fewer items
};

struct Awaiter {
    int rec;
    bool resumed = false;
    bool doneAtLastCheck = false;
};

//! What the seeds exercised, to show that the operations reach the cases they are meant for.
struct Stats {
    int accepted = 0, refused = 0, cancelQueued = 0, cancelRunning = 0, cancelDone = 0, droppedByShutdown = 0;
    int maps = 0, shutdowns = 0, destroyed = 0, waits = 0, fullPools = 0;
    int nestedInTasks = 0, nestedInAwaiters = 0, brittle = 0, brittleItems = 0, plainCancels = 0;
    int flippedByPlainCancel = 0, raisesWithQueuedWork = 0, slotSubmits = 0, slotCancels = 0, slotShutdowns = 0,
        slotDeletes = 0;
    int clears = 0, cleared = 0, pauses = 0, rateLimited = 0, rateStarts = 0;
    QString edges() const
    {
        return QStringLiteral("nested loops: %1 in tasks, %2 in awaiters; %3 throwing results, %4 throwing map items; "
                              "%5 plain QFuture cancels (%11 of a settled result, reported cancelled after); %6 raises "
                              "with queued work; slots: %7 submits, %8 cancels, "
                              "%9 shutdowns, %10 deletes")
                   .arg(nestedInTasks)
                   .arg(nestedInAwaiters)
                   .arg(brittle)
                   .arg(brittleItems)
                   .arg(plainCancels)
                   .arg(raisesWithQueuedWork)
                   .arg(slotSubmits)
                   .arg(slotCancels)
                   .arg(slotShutdowns)
                   .arg(slotDeletes)
                   .arg(flippedByPlainCancel)
            + QStringLiteral("; controls: %1 clear() of %2 tasks, %3 pauses, %4 rate-limited executors (%5 starts)")
                  .arg(clears)
                  .arg(cleared)
                  .arg(pauses)
                  .arg(rateLimited)
                  .arg(rateStarts);
    }
    QString text() const
    {
        return QStringLiteral("%1 tasks accepted, %2 refused after shutdown; cancel(): %3 queued, %4 running, %5 "
                              "settled; %6 dropped by shutdown(cancelFutures); %7 maps, %8 shutdowns, %9 executors "
                              "destroyed, %10 wait/asCompleted, %11 times a pool ran at maxWorkers")
            .arg(accepted)
            .arg(refused)
            .arg(cancelQueued)
            .arg(cancelRunning)
            .arg(cancelDone)
            .arg(droppedByShutdown)
            .arg(maps)
            .arg(shutdowns)
            .arg(destroyed)
            .arg(waits)
            .arg(fullPools);
    }
};
Stats stats;

struct Model {
    explicit Model(quint32 seed) : seed(seed), rng(seed) { }

    quint32 seed;
    std::mt19937 rng;
    int step = 0;
    QString failure;
    std::deque<Exec> execs;
    std::deque<Rec> recs;
    std::deque<MapRec> maps;
    std::deque<Gate> gates;
    std::deque<Awaiter> awaiters;
    std::deque<QCoro::Task<void>> background; // awaited at the end (may grow meanwhile)
    std::unordered_map<quint64, int> byId;
    std::unordered_map<quint64, std::pair<int, int>> otherIds; // map items: started, terminal
    int liveBodies = 0;
    std::vector<int> live; // recs not yet settled-and-ended
    std::vector<int> submitting; // recs inside their submit() call (slots may re-enter it)
    int reentry = 0; // percent of signal emissions whose slot re-enters the executor
    int slotDepth = 0; // re-entrant slots on the stack
    int clearing = -1; // the executor inside clear()
    int nestDepth = 0; // nested event loops on the stack

    int random(int n) { return int(rng() % quint32(n)); }
    bool chance(int percent) { return random(100) < percent; }

    void fail(const QString& what)
    {
        if (failure.isEmpty())
            failure = QStringLiteral("seed %1, step %2: %3").arg(seed).arg(step).arg(what);
    }

    int newExec()
    {
        const int e = int(execs.size());
        Exec& x = execs.emplace_back();
        x.maxWorkers = x.mostWorkers = 1 + random(4);
        x.pool = new TaskPoolExecutor(x.maxWorkers);
        if (chance(30)) {
            x.controls = true;
            x.keyLimits.insert(QStringLiteral("k0"), 1);
            x.keyLimits.insert(QStringLiteral("k1"), 2);
            x.pool->setKeyLimit(QStringLiteral("k0"), 1);
            x.pool->setKeyLimit(QStringLiteral("k1"), 2);
            if (chance(50)) {
                x.maxPerKey = 1 + random(2);
                x.pool->setMaxPerKey(x.maxPerKey);
            }
        }
        if (chance(12)) {
            x.controls = true;
            x.rateLimit = 2 + random(3);
            x.rateWindow = std::chrono::milliseconds(10 + random(7));
            x.clock = std::make_shared<TaskPool::ManualClock>();
            x.pool->setClock(x.clock);
            x.pool->setRateLimit(x.rateLimit, x.rateWindow);
        }
        TaskPoolExecutor* pool = x.pool;
        QObject::connect(pool, &TaskPoolExecutor::taskStarted, pool,
                         [this, e](quint64 id, const QString& worker) { onStarted(e, id, worker); });
        QObject::connect(pool, &TaskPoolExecutor::taskFinished, pool,
                         [this](quint64 id) { onTerminal(id, Outcome::Value, {}); });
        QObject::connect(pool, &TaskPoolExecutor::taskFailed, pool,
                         [this](quint64 id, const QString& message) { onTerminal(id, Outcome::Failed, message); });
        QObject::connect(pool, &TaskPoolExecutor::taskCanceled, pool,
                         [this](quint64 id) { onTerminal(id, Outcome::Cancelled, {}); });
        QObject::connect(pool, &TaskPoolExecutor::activeCountChanged, pool, [this, e](int n) {
            execs[e].starting = execs[e].starting || n > execs[e].notifiedActive; // taskStarted follows
            execs[e].notifiedActive = n;
        });
        QObject::connect(pool, &TaskPoolExecutor::pendingCountChanged, pool, [this, e](int n) {
            // A worker taking a task counts it active, then emits this before its taskStarted: the
            // task may be starting (see Exec::starting).
            execs[e].starting = execs[e].starting || n < execs[e].notifiedPending;
            execs[e].notifiedPending = n;
        });
        QObject::connect(pool, &TaskPoolExecutor::workerCountChanged, pool, [this, e](int n) {
            execs[e].notifiedWorkers = n;
            MODEL_CHECK(n <= execs[e].mostWorkers, "exec %d: %d workers", e, n);
        });
        QObject::connect(pool, &TaskPoolExecutor::idle, pool, [this, e] {
            MODEL_CHECK(execs[e].pool->activeCount() == 0 && execs[e].pool->pendingCount() == 0,
                        "exec %d: idle() with %d active, %d pending", e, execs[e].pool->activeCount(),
                        execs[e].pool->pendingCount());
        });
        if (reentry > 0) {
            // Connected last: the model's own slots have seen each emission first.
            auto slot = [this, e] { reenter(e); };
            QObject::connect(pool, &TaskPoolExecutor::pendingCountChanged, pool, slot);
            QObject::connect(pool, &TaskPoolExecutor::workerCountChanged, pool, slot);
            QObject::connect(pool, &TaskPoolExecutor::activeCountChanged, pool, slot);
            QObject::connect(pool, &TaskPoolExecutor::taskStarted, pool, slot);
            QObject::connect(pool, &TaskPoolExecutor::taskFinished, pool, slot);
            QObject::connect(pool, &TaskPoolExecutor::taskFailed, pool, slot);
            QObject::connect(pool, &TaskPoolExecutor::taskCanceled, pool, slot);
            QObject::connect(pool, &TaskPoolExecutor::idle, pool, slot);
            QObject::connect(pool, &TaskPoolExecutor::maxWorkersChanged, pool, slot);
        }
        return e;
    }

    //! A slot on one of executor \a e's signals: now and then it submits, cancels, shuts the
    //! executor down (wait = false) or deletes it, from inside whatever call emitted.
    void reenter(int e);

    void destroyExec(int e)
    {
        if (execs[e].pool)
            ++stats.destroyed;
        if (execs[e].pool && qEnvironmentVariableIsSet("TASKPOOL_STRESS_TRACE"))
            qDebug("step %d: destroy exec %d: %d workers, %d active, %d pending, shut down %d", step, e,
                   execs[e].pool->workerCount(), execs[e].pool->activeCount(), execs[e].pool->pendingCount(),
                   int(execs[e].pool->isShutdown()));
        delete std::exchange(execs[e].pool, nullptr);
    }

    void onStarted(int e, quint64 id, const QString& worker)
    {
        MODEL_CHECK(!worker.isEmpty(), "task %llu started in an unnamed worker", id);
        MODEL_CHECK(!execs[e].paused, "exec %d: task %llu started while paused", e, id);
        if (execs[e].rateLimit > 0)
            execs[e].starts.push_back(execs[e].clock->now());
        auto it = byId.find(id);
        if (it == byId.end()) {
            MODEL_CHECK(++otherIds[id].first == 1, "map item %llu started twice", id);
            return;
        }
        Rec& r = recs[it->second];
        MODEL_CHECK(++r.startedSignals == 1, "task %llu: two taskStarted", id);
        MODEL_CHECK(!r.mustNotStart, "task %llu started after it was cancelled while queued", id);
        MODEL_CHECK(!r.future.done(), "task %llu started although settled", id);
        if (r.form != Form::Awaitable)
            MODEL_CHECK(r.bodyStarts == 0, "task %llu: body ran before taskStarted", id);
        r.workerStarted = true;
        execs[r.exec].starting = false;
        checkStartOrder(it->second);
    }

    //! At the start of task \a i: its key within its limit, and no queued task without a key
    //! ahead of it in priority order.
    void checkStartOrder(int i)
    {
        const Rec& r = recs[std::size_t(i)];
        const Exec& x = execs[std::size_t(r.exec)];
        int sameKey = 0;
        for (int k : live) {
            const Rec& q = recs[std::size_t(k)];
            if (q.exec != r.exec || !q.accepted || k == i)
                continue;
            if (!r.key.isEmpty() && q.key == r.key && q.workerStarted && !q.bodyEnded)
                ++sameKey;
            if (!q.workerStarted && !q.future.done() && q.key.isEmpty() && !q.inSlot)
                MODEL_CHECK(q.priority < r.priority || (q.priority == r.priority && q.id > r.id),
                            "exec %d: task %d (priority %d) started before queued task %d (priority %d)", r.exec, i,
                            r.priority, k, q.priority);
        }
        if (!r.key.isEmpty())
            MODEL_CHECK(sameKey < x.keyLimit(r.key), "exec %d: task %d is one of %d running with key %s (limit %d)",
                        r.exec, i, sameKey + 1, qPrintable(r.key), x.keyLimit(r.key));
    }

    //! clear() on executor \a e, checked.
    void clearNow(int e);

    void onTerminal(quint64 id, Outcome outcome, const QString& message)
    {
        auto it = byId.find(id);
        if (it == byId.end()) {
            MODEL_CHECK(++otherIds[id].second == 1, "map item %llu: two terminal signals", id);
            return;
        }
        Rec& r = recs[it->second];
        MODEL_CHECK(++r.terminalSignals == 1, "task %llu: two terminal signals", id);
        MODEL_CHECK(r.future.done(), "task %llu: terminal signal before its future settled", id);
        MODEL_CHECK(outcomeOf(r.future) == outcome, "task %llu: signal %d, future %d", id, int(outcome),
                    int(outcomeOf(r.future)));
        if (outcome == Outcome::Failed)
            MODEL_CHECK(!message.isEmpty(), "task %llu: taskFailed without a message", id);
    }

    static Outcome outcomeOf(const Fut& f)
    {
        if (!f.done())
            return Outcome::None;
        if (f.cancelled())
            return Outcome::Cancelled;
        return f.exception() ? Outcome::Failed : Outcome::Value;
    }

    // ---- submitting -------------------------------------------------------------------------

    Action randomAction(int depth)
    {
        const int n = random(110);
        if (n >= 100)
            return n < 104 && depth < 2 ? Action::NestedLoop : Action::Brittle;
        if (n < 40)
            return Action::Value;
        if (n < 55)
            return Action::Throw;
        if (n < 62)
            return Action::ThrowInt;
        if (n < 72)
            return Action::ThrowCancelled;
        if (n < 92)
            return depth < 2 ? Action::SubmitMore : Action::Value;
        if (n < 94)
            return Action::DestroyOwn;
        if (n < 96)
            return Action::ShutdownOwn;
        return Action::Value;
    }

    //! Submits a new random task to executor \a e (\a plain: one that neither waits nor acts on
    //! executors); its index, or -1 when the executor refused it.
    int submitNew(int e, Form form, int depth, bool plain = false);
    //! cancel() on task \a i, checked; \a inSlot: from a re-entrant slot.
    void cancelRec(int i, bool inSlot);
    //! QFuture::cancel() on a plain copy of task \a i's future, checked.
    void plainCancel(int i);
    //! Whether an executor is between a task's activeCountChanged and its taskStarted.
    bool anyStarting() const
    {
        return std::any_of(execs.begin(), execs.end(), [](const Exec& x) { return x.pool && x.starting; });
    }
    //! The model's side of a cancel that took effect on task \a i.
    void noteCancelled(Rec& r)
    {
        r.forcedCancel = true;
        // Cancelled inside its taskStarted emission, a task's body still runs (it is running).
        if (r.form != Form::Awaitable && r.bodyStarts == 0 && !r.workerStarted)
            r.mustNotStart = true;
    }
    //! The model's side of shutdown(): which queued tasks it cancels.
    //! Before shutdown(): the queued tasks it will drop. The executor drops its whole queue before
    //! it reports any of it, so a slot of the shutdown's own signals may look at any of them.
    std::vector<int> beforeShutdown(int e, ShutdownOptions options);
    void shutdownNow(int e, ShutdownOptions options, const std::vector<int>& dropped);

    // ---- checks -----------------------------------------------------------------------------

    void checkRec(int i)
    {
        Rec& r = recs[i];
        if (!r.accepted)
            return;
        if (r.seen != Outcome::None) {
            if (r.signalCheckDue && slotDepth == 0) {
                r.signalCheckDue = false;
                if (execs[r.exec].pool)
                    MODEL_CHECK(r.terminalSignals == 1, "task %d settled with %d terminal signals", i,
                                r.terminalSignals);
            }
            const Outcome now = outcomeOf(r.future);
            MODEL_CHECK(now == r.seen || (r.flippedByPlainCancel && now == Outcome::Cancelled),
                        "task %d changed its terminal state %d -> %d", i, int(r.seen), int(now));
            return;
        }
        if (!r.future.done())
            return;
        const Fut& f = r.future;
        r.seen = outcomeOf(f);
        MODEL_CHECK(f.isFinished(), "task %d settled but its QFuture is not finished", i);
        MODEL_CHECK(f.operator co_await().await_ready(), "task %d: co_await would suspend on a settled future", i);
        Outcome expected = Outcome::Value;
        switch (r.action) {
        case Action::Throw:
        case Action::ThrowInt:
        case Action::Brittle:
            expected = Outcome::Failed;
            break;
        case Action::ThrowCancelled:
            expected = Outcome::Cancelled;
            break;
        default:
            break;
        }
        if (r.forcedCancel)
            expected = Outcome::Cancelled;
        MODEL_CHECK(r.seen == expected, "task %d (action %d, forced %d): outcome %d, expected %d", i, int(r.action),
                    int(r.forcedCancel), int(r.seen), int(expected));
        if (r.seen == Outcome::Value) {
            r.seenValue = f.result().value;
            MODEL_CHECK(r.seenValue == 1000 + i, "task %d: result %d", i, r.seenValue);
        } else if (r.seen == Outcome::Failed) {
            try {
                std::rethrow_exception(f.exception());
            } catch (const BrittleError& e) {
                MODEL_CHECK(r.action == Action::Brittle && QByteArray(e.what()) == QByteArray::number(1000 + i),
                            "task %d: wrong BrittleError %s", i, e.what());
            } catch (const std::runtime_error& e) {
                MODEL_CHECK(r.action == Action::Throw && QByteArray(e.what()) == QByteArray::number(i),
                            "task %d: wrong exception", i);
            } catch (int n) {
                MODEL_CHECK(r.action == Action::ThrowInt && n == i, "task %d: wrong int exception", i);
            } catch (...) {
                fail(QStringLiteral("task %1: unexpected exception type").arg(i));
            }
        }
        // Settled while its executor exists: its terminal signal has been emitted, once the
        // emissions in progress are over (the executor reports a transition after making it whole).
        if (slotDepth > 0)
            r.signalCheckDue = true;
        else if (execs[r.exec].pool)
            MODEL_CHECK(r.terminalSignals == 1, "task %d settled with %d terminal signals", i, r.terminalSignals);
    }

    void checkExec(int e)
    {
        Exec& x = execs[e];
        MODEL_CHECK(x.running <= x.mostWorkers, "exec %d: %d running bodies", e, x.running);
        if (!x.pool)
            return;
        TaskPoolExecutor& p = *x.pool;
        MODEL_CHECK(p.activeCount() == x.notifiedActive, "exec %d: activeCount %d, notified %d", e, p.activeCount(),
                    x.notifiedActive);
        MODEL_CHECK(p.pendingCount() == x.notifiedPending, "exec %d: pendingCount %d, notified %d", e, p.pendingCount(),
                    x.notifiedPending);
        MODEL_CHECK(p.workerCount() == x.notifiedWorkers, "exec %d: workerCount %d, notified %d", e, p.workerCount(),
                    x.notifiedWorkers);
        MODEL_CHECK(p.workerCount() <= x.mostWorkers && p.activeCount() <= p.workerCount(),
                    "exec %d: %d workers, %d active", e, p.workerCount(), p.activeCount());
        MODEL_CHECK(x.running <= p.activeCount(), "exec %d: %d bodies run, %d active", e, x.running, p.activeCount());
        MODEL_CHECK(p.workerNames().size() == p.workerCount(), "exec %d: worker names", e);
        int queued = 0, active = 0;
        for (int i : std::vector<int>(live)) {
            const Rec& r = recs[i];
            if (r.exec != e || !r.accepted)
                continue;
            if (!r.workerStarted && !r.future.done())
                ++queued;
            if (r.workerStarted && !r.bodyEnded)
                ++active;
        }
        if (x.hasMaps) {
            MODEL_CHECK(p.pendingCount() >= queued && p.activeCount() >= active, "exec %d: counts", e);
        } else {
            MODEL_CHECK(p.pendingCount() == queued, "exec %d: pendingCount %d, model %d", e, p.pendingCount(), queued);
            MODEL_CHECK(p.activeCount() == active, "exec %d: activeCount %d, model %d", e, p.activeCount(), active);
        }
    }

    void checkAll()
    {
        for (int i : std::vector<int>(live)) // a look at a future may honour a plain cancel: signals
            checkRec(i);
        std::erase_if(live, [this](int i) { return recs[i].seen != Outcome::None && recs[i].bodyEnded; });
        for (int e = 0; e < int(execs.size()); ++e)
            checkExec(e);
        for (Awaiter& a : awaiters) {
            if (a.doneAtLastCheck)
                MODEL_CHECK(a.resumed, "an awaiter of task %d was not resumed after it settled", a.rec);
            a.doneAtLastCheck = recs[a.rec].future.done();
        }
    }
};

//! Counts a body as running for as long as its coroutine frame lives in its scope.
struct BodyScope {
    Model* m;
    Exec* exec; // null: not bound by a worker (an awaitable's eager coroutine)
    bool* ended;
    BodyScope(Model* m, Exec* exec, bool* ended) : m(m), exec(exec), ended(ended)
    {
        ++m->liveBodies;
        if (exec) {
            ++exec->running;
            if (exec->running == exec->maxWorkers)
                ++stats.fullPools;
            CHECK_IN(m, exec->running <= exec->maxWorkers, "%d bodies run, maxWorkers %d", exec->running,
                     exec->maxWorkers);
        }
    }
    ~BodyScope()
    {
        --m->liveBodies;
        if (exec)
            --exec->running;
        if (ended)
            *ended = true;
    }
};

// ---- nested event loops -------------------------------------------------------------------------

//! A nested event loop and the condition that ends it.
struct Nest {
    QEventLoop loop;
    bool done = false; // the task submitted inside the loop has settled
};

//! Longer than any nested loop of a passing seed: reaching it is a failure, not a way out.
constexpr auto nestFallback = 10s;

//! Resumed inside the nested loop of \a nest (its first resumption comes from the loop's drain):
//! submits a plain task, awaits it there and ends the loop.
QCoro::Task<void> insideNest(Model* m, std::shared_ptr<Nest> nest, int depth)
{
    co_await Yield {};
    // An open executor with a free slot, so that the task needs nothing that waits outside.
    std::vector<int> free;
    for (int e = 0; e < int(m->execs.size()); ++e) {
        const TaskPoolExecutor* p = m->execs[std::size_t(e)].pool;
        if (p && !p->isShutdown() && !p->isPaused() && p->activeCount() + p->pendingCount() < p->maxWorkers())
            free.push_back(e);
    }
    std::unique_ptr<TaskPoolExecutor> own; // none free: an executor of its own
    Fut inner;
    int i = -1;
    if (!free.empty()) {
        const Form forms[] = { Form::Callable, Form::Promise, Form::Plain, Form::Awaitable };
        i = m->submitNew(free[std::size_t(m->random(int(free.size())))], forms[m->random(4)], depth + 1, true);
    }
    if (i >= 0) {
        inner = m->recs[std::size_t(i)].future;
    } else {
        own = std::make_unique<TaskPoolExecutor>(1);
        inner = own->submit([] { return Value(7); });
    }
    try {
        co_await inner;
    } catch (...) {
    }
    CHECK_IN(m, inner.done(), "nested loop: task %d resumed its awaiter before it settled", i);
    nest->done = true;
    nest->loop.quit();
}

//! Runs a nested event loop (as a modal dialog would) until a task submitted and awaited inside it
//! has settled; \a where and \a who name the caller in a failure.
void runNestedLoop(Model* m, int depth, const char* where, int who)
{
    auto nest = std::make_shared<Nest>();
    ++m->nestDepth;
    m->background.push_back(insideNest(m, nest, depth));
    bool timedOut = false;
    if (!nest->done) {
        QTimer fallback;
        fallback.setSingleShot(true);
        QObject::connect(&fallback, &QTimer::timeout, &nest->loop, [&] {
            timedOut = true;
            nest->loop.quit();
        });
        fallback.start(nestFallback);
        nest->loop.exec();
    }
    --m->nestDepth;
    CHECK_IN(m, nest->done && !timedOut, "nested loop in %s %d: the task submitted inside it never settled", where,
             who);
}

// ---- task bodies --------------------------------------------------------------------------------

//! What starts every body: counts its run and checks it may run.
void bodyStarts(Model* m, int i)
{
    Rec& r = m->recs[std::size_t(i)];
    ++r.bodyStarts;
    if (r.bodyStarts != 1)
        m->fail(QStringLiteral("task %1 ran twice").arg(i));
    if (r.mustNotStart)
        m->fail(QStringLiteral("task %1 ran after it was cancelled while queued").arg(i));
}

//! The actions that act on executors or nest a loop.
void bodyActs(Model* m, int i)
{
    Rec& r = m->recs[std::size_t(i)];
    Exec& x = m->execs[std::size_t(r.exec)];
    switch (r.action) {
    case Action::SubmitMore:
        for (int n = 1 + m->random(2); n > 0; --n) {
            const int e = m->random(int(m->execs.size()));
            if (m->execs[std::size_t(e)].pool)
                m->submitNew(e, Form(m->random(4)), r.depth + 1);
        }
        break;
    case Action::DestroyOwn:
        if (x.pool)
            m->destroyExec(r.exec);
        break;
    case Action::ShutdownOwn:
        if (x.pool) {
            const ShutdownOptions options { .wait = false, .cancelFutures = r.shutdownCancels };
            const auto dropped = m->beforeShutdown(r.exec, options);
            QCoro::Task<void> shutdown = x.pool->shutdown(options);
            m->shutdownNow(r.exec, options, dropped);
            if (!shutdown.isReady())
                m->fail(QStringLiteral("shutdown({.wait = false}) inside task %1 did not return at once").arg(i));
        }
        break;
    case Action::NestedLoop:
        if (m->nestDepth < 4) { // bounds the stack; deeper ones return at once
            ++stats.nestedInTasks;
            runNestedLoop(m, r.depth, "task", i);
        }
        break;
    default:
        break;
    }
}

QCoro::Task<Value> taskBody(Model* m, int i)
{
    bodyStarts(m, i);
    Rec& r = m->recs[std::size_t(i)];
    BodyScope scope(m, r.form == Form::Awaitable ? nullptr : &m->execs[std::size_t(r.exec)], &r.bodyEnded);
    if (r.gate >= 0)
        co_await m->gates[std::size_t(r.gate)];
    for (int n = 0; n < r.yields; ++n)
        co_await Yield {};
    switch (r.action) {
    case Action::Throw:
        throw std::runtime_error(std::to_string(i));
    case Action::ThrowInt:
        throw i;
    case Action::ThrowCancelled:
        throw CancelledError();
    case Action::Brittle:
        ++stats.brittle;
        co_return Value(1000 + i, 1); // the co_return's own move spends the budget: TaskPool's move throws
    default:
        bodyActs(m, i);
        break;
    }
    co_return Value(1000 + i);
}

//! The body of a task submitted as a plain callable: it runs to its end inside its worker.
Value plainBody(Model* m, int i)
{
    bodyStarts(m, i);
    Rec& r = m->recs[std::size_t(i)];
    BodyScope scope(m, &m->execs[std::size_t(r.exec)], &r.bodyEnded);
    switch (r.action) {
    case Action::Throw:
        throw std::runtime_error(std::to_string(i));
    case Action::ThrowInt:
        throw i;
    case Action::ThrowCancelled:
        throw CancelledError();
    case Action::Brittle:
        ++stats.brittle;
        return Value(1000 + i, 0); // returned without a copy: TaskPool's first move throws
    default:
        bodyActs(m, i);
        break;
    }
    return Value(1000 + i);
}

int Model::submitNew(int e, Form form, int depth, bool plain)
{
    Exec& x = execs[std::size_t(e)];
    const int i = int(recs.size());
    Rec& r = recs.emplace_back();
    r.exec = e;
    r.form = form;
    r.depth = depth;
    r.action = randomAction(depth);
    r.gate = chance(30) ? random(int(gates.size())) : -1;
    r.yields = random(3);
    r.shutdownCancels = chance(50);
    if (plain) {
        const Action quiet[] = { Action::Value, Action::Throw, Action::ThrowInt, Action::Brittle };
        r.action = quiet[random(4)];
        r.gate = -1;
    }
    if (form == Form::Plain) {
        r.gate = -1; // it cannot suspend
        r.yields = 0;
    }
    // An eager coroutine must not reach its executor before submit() returned.
    if (form == Form::Awaitable && r.yields == 0
        && (r.action == Action::SubmitMore || r.action == Action::DestroyOwn || r.action == Action::ShutdownOwn
            || r.action == Action::NestedLoop))
        r.yields = 1;
    if (chance(40))
        r.priority = random(5) - 2;
    if (!plain && chance(40)) {
        const QString keys[] = { QStringLiteral("k0"), QStringLiteral("k1"), QStringLiteral("k2") };
        r.key = keys[random(3)];
    }
    r.inSlot = slotDepth > 0;
    r.inClear = clearing == e;
    const TaskPool::SubmitOptions options { .priority = r.priority, .key = r.key };
    const bool shut = x.pool->isShutdown();
    const int pendingBefore = x.pool->pendingCount();
    submitting.push_back(i);
    try {
        switch (form) {
        case Form::Callable:
            r.future = x.pool->submit(options, taskBody, this, i);
            break;
        case Form::Awaitable:
            r.future = x.pool->submit(options, taskBody(this, i));
            break;
        case Form::Promise:
            r.future = x.pool->submit(
                options,
                [](QPromise<Value>& promise, Model* m, int i) -> QCoro::Task<void> {
                    const Value value = co_await taskBody(m, i); // a Brittle result throws here
                    promise.addResult(value);
                },
                this, i);
            break;
        case Form::Plain:
            r.future = x.pool->submit(
                options, [](Model* m, int i) { return plainBody(m, i); }, this, i);
            break;
        }
    } catch (const ShutdownError&) {
        submitting.pop_back();
        MODEL_CHECK(shut, "exec %d refused a task before shutdown", e);
        MODEL_CHECK(x.pool->pendingCount() == pendingBefore, "exec %d queued a refused task", e);
        if (form == Form::Awaitable)
            live.push_back(i); // its eager coroutine still runs: wait for its end
        else
            r.bodyEnded = true;
        r.seen = Outcome::Cancelled; // not a task: nothing to check
        ++stats.refused;
        return -1;
    }
    submitting.pop_back();
    MODEL_CHECK(!shut, "exec %d accepted a task after shutdown", e);
    r.accepted = true;
    ++stats.accepted;
    r.id = r.future.taskId();
    MODEL_CHECK(r.id != 0 && !byId.contains(r.id), "task %d: id %llu reused", i, r.id);
    byId.emplace(r.id, i);
    // Signals a slot caused inside submit() came before the model knew the id.
    if (auto it = otherIds.find(r.id); it != otherIds.end()) {
        r.startedSignals += it->second.first;
        r.terminalSignals += it->second.second;
        otherIds.erase(it);
    }
    if (r.cancelledInSubmit) {
        MODEL_CHECK(r.future.done() && r.future.cancelled(),
                    "task %d: queued when a slot inside its submit() shut down with cancelFutures, not cancelled", i);
        noteCancelled(r);
    }
    live.push_back(i);
    return i;
}

void Model::clearNow(int e)
{
    Exec& x = execs[std::size_t(e)];
    if (!x.pool)
        return;
    ++stats.clears;
    x.cancelledQueue = true; // a map's queued items end cancelled too
    std::vector<int> queued;
    for (int i : std::vector<int>(live)) {
        Rec& r = recs[std::size_t(i)];
        if (r.exec == e && r.accepted && !r.workerStarted && !r.future.done() && !r.forcedCancel) {
            noteCancelled(r); // before: a slot on the taskCanceled it emits may look at the task
            queued.push_back(i);
        }
    }
    const int pending = x.pool->pendingCount();
    clearing = e;
    const int cleared = x.pool->clear(); // a slot may submit (maybe cleared too), or delete the pool
    clearing = -1;
    stats.cleared += cleared;
    MODEL_CHECK(cleared == pending, "exec %d: clear() returned %d with %d pending", e, cleared, pending);
    for (int i : queued)
        MODEL_CHECK(recs[std::size_t(i)].future.done() && recs[std::size_t(i)].future.cancelled(),
                    "task %d: not cancelled by clear()%s", i, "");
    for (int i : std::vector<int>(live)) {
        Rec& r = recs[std::size_t(i)];
        if (r.inClear && r.exec == e && r.accepted && !r.workerStarted && !r.forcedCancel && r.future.done()
            && r.future.cancelled()) {
            r.inClear = false;
            noteCancelled(r);
        }
    }
}

std::vector<int> Model::beforeShutdown(int e, ShutdownOptions options)
{
    std::vector<int> dropped;
    if (!options.cancelFutures)
        return dropped;
    for (int i : live) {
        Rec& r = recs[std::size_t(i)];
        if (r.exec == e && r.accepted && !r.workerStarted && r.seen == Outcome::None && !r.forcedCancel
            && !r.future.done()) {
            noteCancelled(r); // it was queued: dropped, so it ends cancelled
            dropped.push_back(i);
        }
    }
    return dropped;
}

void Model::shutdownNow(int e, ShutdownOptions options, const std::vector<int>& dropped)
{
    if (!options.cancelFutures)
        return;
    execs[std::size_t(e)].cancelledQueue = true;
    for (int i : submitting) {
        if (recs[std::size_t(i)].exec == e)
            recs[std::size_t(i)].cancelledInSubmit = true; // queued already: checked once submit() returns
    }
    for (int i : dropped) {
        ++stats.droppedByShutdown;
        MODEL_CHECK(recs[std::size_t(i)].future.done() && recs[std::size_t(i)].future.cancelled(),
                    "task %d still queued after cancelFutures", i);
    }
    for (int i : std::vector<int>(live)) {
        Rec& r = recs[std::size_t(i)];
        if (r.exec == e && r.accepted && !r.workerStarted && r.seen == Outcome::None && !r.forcedCancel) {
            // Queued by a slot of the shutdown (submitted before it shut the executor): dropped too.
            noteCancelled(r);
            ++stats.droppedByShutdown;
            MODEL_CHECK(r.future.done() && r.future.cancelled(), "task %d still queued after cancelFutures", i);
        }
    }
}

void Model::cancelRec(int i, bool inSlot)
{
    Rec& r = recs[std::size_t(i)];
    const bool wasDone = r.future.done();
    if (!inSlot)
        ++(wasDone ? stats.cancelDone : r.workerStarted ? stats.cancelRunning : stats.cancelQueued);
    if (!wasDone)
        noteCancelled(r); // before: a slot on the taskCanceled it emits may look at the task
    const bool ok = r.future.cancel();
    MODEL_CHECK(ok == !wasDone, "task %d: cancel() gave %d on a future done=%d", i, int(ok), int(wasDone));
    if (ok) {
        MODEL_CHECK(r.future.done() && r.future.cancelled() && r.future.isFinished(),
                    "task %d: not cancelled and finished at once after cancel()%s", i, "");
    }
}

void Model::plainCancel(int i)
{
    Rec& r = recs[std::size_t(i)];
    ++stats.plainCancels;
    checkRec(i); // records (and checks) the outcome of a future that settled since the last step
    const Outcome before = outcomeOf(r.future);
    QFuture<Value> plain = r.future;
    plain.cancel();
    if (before == Outcome::None)
        noteCancelled(r); // before the look below honours it: a slot on its taskCanceled may look too
    const bool done = r.future.done();
    const bool cancelled = r.future.cancelled();
    MODEL_CHECK(!cancelled || done, "task %d: cancelled() but not done() after a plain cancel%s", i, "");
    MODEL_CHECK(done == (cancelled || r.future.isFinished()), "task %d: done() %d, cancelled() %d, finished %d", i,
                int(done), int(cancelled), int(r.future.isFinished()));
    if (before == Outcome::None) {
        MODEL_CHECK(done && cancelled, "task %d: a plain cancel of an unsettled future was not honoured%s", i, "");
    } else if (outcomeOf(r.future) != before) {
        // Qt 6.4 marks a finished future canceled, and Future then reports the result as cancelled
        // (tst_regressions_core::plainQFutureCancelOfASettledFutureKeepsItsOutcome, a known failure).
        // Everything else must hold: the outcome may only have become "cancelled", from a result.
        MODEL_CHECK(before == Outcome::Value && outcomeOf(r.future) == Outcome::Cancelled,
                    "task %d: a plain cancel turned a settled outcome %d into %d", i, int(before),
                    int(outcomeOf(r.future)));
        r.flippedByPlainCancel = true;
        ++stats.flippedByPlainCancel;
    }
}

int pickRec(Model* m);

void resumeExec(Exec& x)
{
    if (!std::exchange(x.paused, false))
        return;
    ++stats.pauses;
    if (x.pool)
        x.pool->resume(); // a slot on the signals it causes may delete it
}

void Model::reenter(int e)
{
    if (slotDepth >= 2 || !execs[std::size_t(e)].pool || !chance(reentry))
        return;
    ++slotDepth;
    Exec& x = execs[std::size_t(e)];
    const int n = random(100);
    if (qEnvironmentVariableIsSet("TASKPOOL_STRESS_TRACE"))
        qDebug("step %d: slot of exec %d re-enters: %d", step, e, n);
    if (n < 45) {
        if (!x.pool->isShutdown()) {
            ++stats.slotSubmits;
            submitNew(e, Form(random(4)), 2);
        }
    } else if (n < 75) {
        // Between a task's activeCountChanged and its taskStarted, the model does not know which task
        // left the queue: cancels wait for the taskStarted.
        const int i = anyStarting() ? -1 : pickRec(this);
        if (i >= 0) {
            ++stats.slotCancels;
            if (n < 65)
                cancelRec(i, true);
            else
                plainCancel(i);
        }
    } else if (n < 90) {
        const ShutdownOptions options { .wait = false, .cancelFutures = !anyStarting() && chance(50) };
        ++stats.slotShutdowns;
        const auto dropped = beforeShutdown(e, options);
        QCoro::Task<void> shutdown = x.pool->shutdown(options);
        shutdownNow(e, options, dropped);
        MODEL_CHECK(shutdown.isReady(), "exec %d: shutdown({.wait = false}) in a slot did not return at once", e);
    } else {
        ++stats.slotDeletes;
        destroyExec(e);
    }
    --slotDepth;
}

// ---- map ---------------------------------------------------------------------------------------

QCoro::Task<Value> mapItemBody(Model* m, int mi, int item)
{
    MapRec& mr = m->maps[std::size_t(mi)];
    CHECK_IN(m, !mr.abandoned, "map %d: item %d started after the map was abandoned", mi, item);
    if (std::size_t(item) >= mr.started.size())
        mr.started.resize(std::size_t(item) + 1);
    CHECK_IN(m, ++mr.started[std::size_t(item)] == 1, "map %d: item %d ran twice", mi, item);
    BodyScope scope(m, &m->execs[std::size_t(mr.exec)], nullptr);
    if (item == mr.gateAt)
        co_await m->gates[std::size_t(mr.gate)];
    if (item == mr.throwAt)
        throw std::runtime_error("map item");
    if (item == mr.brittleAt) {
        ++stats.brittleItems;
        co_return Value(item * 10 + 3, 1); // the co_return's own move spends the budget
    }
    co_return Value(item * 10 + 3);
}

//! Takes up to \a take results of map \a mi in order, then abandons the generator.
QCoro::Task<void> consumeMap(Model* m, int mi, QCoro::AsyncGenerator<Value> generator, int take)
{
    std::optional<QCoro::AsyncGenerator<Value>> gen(std::move(generator));
    const MapRec& mr = m->maps[std::size_t(mi)];
    const Exec& x = m->execs[std::size_t(mr.exec)];
    int k = 0;
    try {
        auto it = co_await gen->begin();
        while (it != gen->end()) {
            CHECK_IN(m, (*it).value == k * 10 + 3, "map %d: item %d yielded %d", mi, k, (*it).value);
            if (++k == take)
                break;
            co_await ++it;
        }
        if (k != take) { // the generator ended: a run cut short by the executor going throws instead
            CHECK_IN(m, k == mr.size, "map %d ended after %d of %d", mi, k, mr.size);
            CHECK_IN(m, mr.throwAt < 0 || mr.throwAt >= k, "map %d: item %d did not throw", mi, mr.throwAt);
            CHECK_IN(m, mr.brittleAt < 0 || mr.brittleAt >= k, "map %d: item %d did not throw", mi, mr.brittleAt);
        }
    } catch (const ShutdownError&) { // before std::runtime_error, which it derives from
        const bool cutShort = (mr.buffer && (!x.pool || x.pool->isShutdown())) || mr.shutDuringCall;
        CHECK_IN(m, cutShort && (mr.size < 0 || k < mr.size), "map %d threw ShutdownError after %d of %d", mi, k,
                 mr.size);
        CHECK_IN(m, mr.throwAt < 0 || mr.throwAt >= k, "map %d: item %d did not throw", mi, mr.throwAt);
        CHECK_IN(m, mr.brittleAt < 0 || mr.brittleAt >= k, "map %d: item %d did not throw", mi, mr.brittleAt);
    } catch (const BrittleError& e) {
        CHECK_IN(m, k == mr.brittleAt && QByteArray(e.what()) == QByteArray::number(k * 10 + 3),
                 "map %d threw BrittleError at item %d, expected %d", mi, k, mr.brittleAt);
    } catch (const std::runtime_error&) {
        CHECK_IN(m, k == mr.throwAt, "map %d threw at item %d, expected %d", mi, k, mr.throwAt);
    } catch (const CancelledError&) {
        CHECK_IN(m, x.cancelledQueue, "map %d: item %d cancelled without a cancelling shutdown", mi, k);
    }
    gen.reset(); // abandons what is left: queued items never start
    m->maps[std::size_t(mi)].abandoned = true;
}

// ---- waiting on many ----------------------------------------------------------------------------

int distinctCount(const QList<Fut>& futures)
{
    QSet<quint64> ids;
    for (const auto& f : futures)
        ids.insert(f.taskId());
    return int(ids.size());
}

QCoro::Task<void> waitOp(Model* m, QList<Fut> futures, TaskPool::ReturnWhen when, bool zeroTimeout)
{
    const int distinct = distinctCount(futures);
    std::optional<std::chrono::milliseconds> timeout;
    if (zeroTimeout)
        timeout = 0ms;
    auto [done, notDone] = co_await TaskPool::wait(futures, when, timeout);
    CHECK_IN(m, int(done.size() + notDone.size()) == distinct, "wait(): %d + %d futures of %d distinct",
             int(done.size()), int(notDone.size()), distinct);
    bool failed = false;
    for (const auto& f : done) {
        CHECK_IN(m, f.done(), "wait(): task %llu in done but not settled", f.taskId());
        failed = failed || (!f.cancelled() && f.exception());
    }
    if (zeroTimeout)
        co_return;
    switch (when) {
    case TaskPool::ReturnWhen::AllCompleted:
        CHECK_IN(m, notDone.isEmpty(), "wait(AllCompleted): %d not done", int(notDone.size()));
        break;
    case TaskPool::ReturnWhen::FirstCompleted:
        CHECK_IN(m, distinct == 0 || !done.isEmpty(), "wait(FirstCompleted) returned %d done", int(done.size()));
        break;
    case TaskPool::ReturnWhen::FirstException:
        CHECK_IN(m, notDone.isEmpty() || failed, "wait(FirstException): returned early without a failure%s", "");
        break;
    }
}

QCoro::Task<void> asCompletedOp(Model* m, QList<Fut> futures, bool zeroTimeout)
{
    const int distinct = distinctCount(futures);
    int unfinished = 0;
    for (const auto& f : futures)
        unfinished += f.done() ? 0 : 1;
    std::optional<std::chrono::milliseconds> timeout;
    if (zeroTimeout)
        timeout = 0ms;
    QSet<quint64> seen;
    bool timedOut = false;
    auto gen = TaskPool::asCompleted(futures, timeout);
    try {
        auto it = co_await gen.begin();
        while (it != gen.end()) {
            const Fut& f = *it;
            CHECK_IN(m, f.done(), "asCompleted() yielded unsettled task %llu", f.taskId());
            CHECK_IN(m, !seen.contains(f.taskId()), "asCompleted() yielded task %llu twice", f.taskId());
            seen.insert(f.taskId());
            co_await ++it;
        }
    } catch (const TaskPool::TimeoutError&) {
        timedOut = true;
    }
    if (!zeroTimeout || !timedOut)
        CHECK_IN(m, int(seen.size()) == distinct, "asCompleted() yielded %d of %d", int(seen.size()), distinct);
    CHECK_IN(m, !timedOut || zeroTimeout, "asCompleted() without timeout threw TimeoutError%s", "");
    Q_UNUSED(unfinished);
}

// ---- the other background operations --------------------------------------------------------------

QCoro::Task<void> awaitOne(Model* m, int ai)
{
    const Fut f = m->recs[std::size_t(m->awaiters[std::size_t(ai)].rec)].future;
    try {
        co_await f;
    } catch (...) {
    }
    m->awaiters[std::size_t(ai)].resumed = true;
    CHECK_IN(m, f.done(), "an awaiter of task %llu resumed before it settled", f.taskId());
}

//! An awaiter that, resumed by its pool future, runs a nested event loop.
QCoro::Task<void> awaitThenNest(Model* m, int ai)
{
    co_await awaitOne(m, ai);
    if (m->nestDepth < 4) {
        ++stats.nestedInAwaiters;
        runNestedLoop(m, 0, "the awaiter of task", m->awaiters[std::size_t(ai)].rec);
    }
}

//! After setMaxWorkers() raised executor \a e's bound to \a bound with work queued: within a few
//! turns the executor runs min(maxWorkers, active + pending) tasks (parked workers woke, new ones
//! started), unless the bound changed again or the executor went away.
QCoro::Task<void> raiseServed(Model* m, int e, int bound)
{
    for (int turn = 0; turn < 6; ++turn) {
        co_await Yield {};
        const TaskPoolExecutor* p = m->execs[std::size_t(e)].pool;
        if (!p || p->maxWorkers() != bound || p->isPaused())
            co_return;
        if (p->activeCount() >= std::min(bound, p->activeCount() + p->pendingCount()))
            co_return;
    }
    const TaskPoolExecutor* p = m->execs[std::size_t(e)].pool;
    m->fail(QStringLiteral("exec %1: raised to %2 workers with work queued, still %3 active, %4 pending")
                .arg(e)
                .arg(bound)
                .arg(p->activeCount())
                .arg(p->pendingCount()));
}

QCoro::Task<void> afterShutdown(Model* m, int e, ShutdownOptions options, QCoro::Task<void> shutdown)
{
    co_await std::move(shutdown);
    if (!options.wait)
        co_return;
    const Exec& x = m->execs[std::size_t(e)];
    CHECK_IN(m, x.running == 0, "exec %d: shutdown(wait) returned with %d bodies running", e, x.running);
    for (const Rec& r : m->recs) {
        if (r.exec == e && r.workerStarted)
            CHECK_IN(m, r.bodyEnded, "exec %d: shutdown(wait) returned while task %llu runs", e, r.id);
    }
    if (x.pool)
        CHECK_IN(m, x.pool->activeCount() == 0 && x.pool->workerCount() == 0 && x.pool->pendingCount() == 0,
                 "exec %d: after shutdown(wait): %d active, %d workers", e, x.pool->activeCount(),
                 x.pool->workerCount());
}

// ---- one operation ------------------------------------------------------------------------------

//! Picks an executor that exists, mostly one still open, opening a new one when all are shut
//! down; -1 when none exists.
int pickExec(Model* m)
{
    std::vector<int> alive, open;
    for (int e = 0; e < int(m->execs.size()); ++e) {
        if (TaskPoolExecutor* pool = m->execs[std::size_t(e)].pool) {
            alive.push_back(e);
            if (!pool->isShutdown())
                open.push_back(e);
        }
    }
    if (open.empty() && m->execs.size() < 8)
        open.push_back(m->newExec());
    if (!open.empty() && m->chance(90))
        return open[std::size_t(m->random(int(open.size())))];
    if (alive.empty())
        return -1;
    return alive[std::size_t(m->random(int(alive.size())))];
}

//! Picks a task, mostly among those not settled yet; -1 when there is none.
int pickRec(Model* m)
{
    std::vector<int> open;
    for (int i : m->live) {
        if (m->recs[std::size_t(i)].accepted && m->recs[std::size_t(i)].seen == Outcome::None)
            open.push_back(i);
    }
    if (!open.empty() && m->chance(85))
        return open[std::size_t(m->random(int(open.size())))];
    std::vector<int> any;
    for (int i = 0; i < int(m->recs.size()); ++i) {
        if (m->recs[std::size_t(i)].accepted)
            any.push_back(i);
    }
    return any.empty() ? -1 : any[std::size_t(m->random(int(any.size())))];
}

void doMap(Model* m, int e)
{
    Exec& x = m->execs[std::size_t(e)];
    const int mi = int(m->maps.size());
    MapRec& mr = m->maps.emplace_back();
    mr.exec = e;
    if (m->chance(50))
        mr.buffer = 1 + m->random(4);
    mr.size = (mr.buffer && m->chance(25)) ? -1 : m->random(9);
    const int span = mr.size < 0 ? 12 : std::max(mr.size, 1);
    mr.throwAt = m->chance(30) ? m->random(span) : -1;
    if (m->chance(20))
        mr.brittleAt = m->random(span);
    if (mr.brittleAt == mr.throwAt)
        mr.throwAt = -1;
    if (m->chance(30)) {
        mr.gateAt = m->random(span);
        mr.gate = m->random(int(m->gates.size()));
    }
    const int take = m->random(span + 2); // 0: dropped unread; past the end: read to the end
    auto fn = [m, mi](int item) { return mapItemBody(m, mi, item); };
    const bool shut = x.pool->isShutdown();
    std::optional<QCoro::AsyncGenerator<Value>> gen;
    try {
        const TaskPool::MapOptions options { mr.buffer };
        if (mr.size < 0)
            gen = x.pool->map(options, fn, std::views::iota(0));
        else
            gen = x.pool->map(options, fn, std::views::iota(0, mr.size));
    } catch (const ShutdownError&) {
        CHECK_IN(m, shut, "exec %d: map() refused before shutdown%s", e, "");
        mr.abandoned = true;
        return;
    }
    CHECK_IN(m, !shut, "exec %d: map() accepted after shutdown%s", e, "");
    mr.shutDuringCall = !x.pool || x.pool->isShutdown();
    ++stats.maps;
    x.hasMaps = true;
    if (take == 0) {
        gen.reset();
        mr.abandoned = true;
        return;
    }
    m->background.push_back(consumeMap(m, mi, std::move(*gen), take));
}

//! Runs one random operation; returns how many extra turns of the event loop to give.
int operation(Model* m)
{
    const int n = m->random(118);
    const int e = pickExec(m);
    if (qEnvironmentVariableIsSet("TASKPOOL_STRESS_TRACE"))
        qDebug("step %d: op %d on exec %d", m->step, n, e);
    if (n < 25 || (n >= 95 && n < 100)) {
        if (e >= 0) {
            const int form = m->random(10);
            m->submitNew(e, form < 2 ? Form::Promise : form < 4 ? Form::Plain : Form::Callable, 0);
        }
    } else if (n < 37) {
        if (e >= 0)
            m->submitNew(e, Form::Awaitable, 0);
    } else if (n < 49) {
        const int i = pickRec(m);
        if (i < 0)
            return 0;
        m->cancelRec(i, false);
    } else if (n < 57) {
        m->gates[std::size_t(m->random(int(m->gates.size())))].open();
        if (m->gates.size() < 12 && m->chance(60))
            m->gates.emplace_back();
    } else if (n < 63) {
        return 1 + m->random(4);
    } else if (n < 70) {
        if (e >= 0)
            doMap(m, e);
    } else if (n < 73) {
        if (e < 0)
            return 0;
        for (int k = 1 + m->random(3); k > 0 && m->execs[std::size_t(e)].pool; --k) {
            const ShutdownOptions options { .wait = m->chance(60), .cancelFutures = m->chance(40) };
            const auto dropped = m->beforeShutdown(e, options);
            QCoro::Task<void> shutdown = m->execs[std::size_t(e)].pool->shutdown(options);
            m->shutdownNow(e, options, dropped);
            CHECK_IN(m, options.wait || shutdown.isReady(), "exec %d: shutdown({.wait = false}) suspended%s", e, "");
            m->background.push_back(afterShutdown(m, e, options, std::move(shutdown)));
            ++stats.shutdowns;
        }
    } else if (n < 75) {
        if (e >= 0)
            m->destroyExec(e);
    } else if (n < 82) {
        if (m->execs.size() < 8 && m->chance(30))
            m->newExec();
        else
            return 1 + m->random(4);
    } else if (n < 87) {
        const int i = pickRec(m);
        if (i < 0)
            return 0;
        const int ai = int(m->awaiters.size());
        m->awaiters.push_back(Awaiter { i });
        m->awaiters.back().doneAtLastCheck = m->recs[std::size_t(i)].future.done();
        m->background.push_back(awaitOne(m, ai));
    } else if (n < 93) {
        QList<Fut> subset;
        for (int k = m->random(6); k > 0; --k) {
            const int i = pickRec(m);
            if (i >= 0)
                subset.append(m->recs[std::size_t(i)].future);
        }
        if (!subset.isEmpty() && m->chance(30))
            subset.append(subset.front()); // a duplicate
        const bool zero = m->chance(25);
        ++stats.waits;
        if (m->chance(50)) {
            const auto when = TaskPool::ReturnWhen(m->random(3));
            m->background.push_back(waitOp(m, subset, when, zero));
        } else {
            m->background.push_back(asCompletedOp(m, subset, zero));
        }
    } else if (n < 95 || (n >= 106 && n < 112)) {
        if (e < 0)
            return 0;
        Exec& x = m->execs[std::size_t(e)];
        // A raise is more likely while workers are parked at the bound with work queued.
        const bool full = x.pool->pendingCount() > 0;
        const int was = x.maxWorkers;
        x.maxWorkers = (n >= 106 && full) ? std::min(was + 1 + m->random(2), 5) : 1 + m->random(4);
        x.mostWorkers = std::max(x.mostWorkers, x.maxWorkers);
        const bool queued = x.pool->pendingCount() > 0 && x.pool->activeCount() < x.maxWorkers;
        x.pool->setMaxWorkers(x.maxWorkers); // a slot on maxWorkersChanged may delete it
        if (x.maxWorkers > was && queued && !x.controls) {
            ++stats.raisesWithQueuedWork;
            m->background.push_back(raiseServed(m, e, x.maxWorkers));
        }
    } else if (n >= 112) {
        if (e < 0)
            return 0;
        Exec& x = m->execs[std::size_t(e)];
        if (n < 115) {
            m->clearNow(e);
        } else if (!x.paused) {
            x.paused = true;
            x.resumeAt = m->step + 1 + m->random(6);
            x.pool->pause();
        }
    } else if (n < 102) {
        const int i = pickRec(m);
        if (i >= 0)
            m->plainCancel(i);
    } else {
        const int i = pickRec(m);
        if (i < 0)
            return 0;
        const int ai = int(m->awaiters.size());
        m->awaiters.push_back(Awaiter { i });
        m->awaiters.back().doneAtLastCheck = m->recs[std::size_t(i)].future.done();
        m->background.push_back(awaitThenNest(m, ai));
    }
    return 0;
}

//! One seed: \a ops random operations, then everything released and run down.
QCoro::Task<void> runSeed(quint32 seed, int ops, QString* failure, int* tasks)
{
    auto model = std::make_unique<Model>(seed);
    Model* m = model.get();
    const int reentry[] = { 0, 0, 1, 3 }; // half the seeds run with re-entrant slots
    m->reentry = reentry[m->random(4)];
    for (int g = 0; g < 4; ++g)
        m->gates.emplace_back();
    m->newExec();
    if (m->chance(50))
        m->newExec();
    // Virtual time for the rate-limited executors: 3 ms every real millisecond.
    QTimer ticker;
    ticker.setInterval(1ms);
    QObject::connect(&ticker, &QTimer::timeout, [m] {
        for (std::size_t e = 0; e < m->execs.size(); ++e) {
            if (const auto clock = m->execs[e].clock) // an alarm's slot may add executors
                clock->advance(3ms);
        }
    });
    ticker.start();
    for (m->step = 0; m->step < ops && m->failure.isEmpty(); ++m->step) {
        for (Exec& x : m->execs) {
            x.starting = false; // no emission is in progress here
            if (x.paused && m->step >= x.resumeAt)
                resumeExec(x);
        }
        for (int turns = 1 + operation(m); turns > 0; --turns)
            co_await Yield {};
        m->checkAll();
        if (qEnvironmentVariableIsSet("TASKPOOL_STRESS_TRACE")) {
            for (int e = 0; e < int(m->execs.size()); ++e) {
                if (auto* p = m->execs[std::size_t(e)].pool)
                    qDebug("   exec %d: max %d, %d workers, %d active, %d pending, shut down %d", e, p->maxWorkers(),
                           p->workerCount(), p->activeCount(), p->pendingCount(), int(p->isShutdown()));
            }
        }
#ifdef TASKPOOL_LEAK_CHECK_PER_SEED
        if (qEnvironmentVariableIsSet("TASKPOOL_STRESS_LEAK_STEPS") && __lsan_do_recoverable_leak_check() != 0)
            m->fail(QStringLiteral("leak"));
#endif
    }

    // Release everything, let it end, and check the final state.
    m->step = ops;
    for (Exec& x : m->execs)
        resumeExec(x);
    for (Gate& gate : m->gates)
        gate.open();
    for (std::size_t k = 0; k < m->background.size(); ++k) // nested loops add to it meanwhile
        co_await std::move(m->background[k]);
    for (int e = 0; e < int(m->execs.size()); ++e) {
        if (!m->execs[std::size_t(e)].pool)
            continue;
        const ShutdownOptions options { .wait = true };
        QCoro::Task<void> shutdown = m->execs[std::size_t(e)].pool->shutdown(options);
        co_await afterShutdown(m, e, options, std::move(shutdown));
    }
    for (int i = 0; i < int(m->recs.size()); ++i) {
        Rec& r = m->recs[std::size_t(i)];
        if (!r.accepted)
            continue;
        try {
            co_await r.future;
        } catch (...) {
        }
        CHECK_IN(m, r.future.done(), "task %d not settled at the end%s", i, "");
        m->checkRec(i);
    }
    for (int e = 0; e < int(m->execs.size()); ++e)
        m->checkExec(e);
    // The rate limit, loosely: the model times a start in its taskStarted slot, after the pool's own
    // reading; a slack of 4 ms absorbs that delay on a loaded machine under ASan (2 ms did not, once
    // in a few thousand seeds), and still catches a window half as long as the limit's.
    for (int e = 0; e < int(m->execs.size()); ++e) {
        const Exec& x = m->execs[std::size_t(e)];
        if (x.rateLimit == 0)
            continue;
        ++stats.rateLimited;
        stats.rateStarts += int(x.starts.size());
        const std::size_t n = std::size_t(x.rateLimit);
        for (std::size_t k = 0; k + n < x.starts.size(); ++k)
            CHECK_IN(
                m, x.starts[k + n] - x.starts[k] >= x.rateWindow,
                "exec %d: %d starts within %lld us (limit %d per %lld ms)", e, x.rateLimit + 1,
                qint64(std::chrono::duration_cast<std::chrono::microseconds>(x.starts[k + n] - x.starts[k]).count()),
                x.rateLimit, qint64(x.rateWindow.count()));
    }
    for (int e = 0; e < int(m->execs.size()); ++e)
        m->destroyExec(e);
    for (int turns = 0; m->liveBodies > 0 && turns < 100000; ++turns)
        co_await Yield {};
    CHECK_IN(m, m->liveBodies == 0, "%d task bodies never ended", m->liveBodies);
    for (const auto& [id, counts] : m->otherIds)
        CHECK_IN(m, counts.first <= 1 && counts.second <= 1, "map item %llu: %d started, %d terminal signals", id,
                 counts.first, counts.second);
    for (const Awaiter& a : m->awaiters)
        CHECK_IN(m, a.resumed, "an awaiter of task %d never resumed", a.rec);
    *failure = m->failure;
    *tasks += int(m->recs.size());
}

int envInt(const char* name, int fallback)
{
    bool ok = false;
    const int value = qEnvironmentVariableIntValue(name, &ok);
    return ok && value > 0 ? value : fallback;
}

} // namespace

class tst_Stress : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // Found by seed 5: a job submitted to a pool with several idle workers wakes one of them
    // (through the event loop); a shutdown before it runs left the others parked for good once the
    // queue drained, so shutdown(wait) never returned and a destroyed executor leaked its core.
    void shutdownWhileAWokenWorkerHasNotRunYet_data()
    {
        QTest::addColumn<bool>("destroy");
        QTest::newRow("shutdown(wait)") << false;
        QTest::newRow("destroy") << true;
    }
    void shutdownWhileAWokenWorkerHasNotRunYet()
    {
        QFETCH(bool, destroy);
        run([](bool destroy) -> QCoro::Task<void> {
            auto pool = std::make_unique<TaskPoolExecutor>(3);
            Gate gate;
            QList<Future<int>> first;
            for (int i = 0; i < 3; ++i)
                first.append(pool->submit(
                    [](Gate* gate) -> QCoro::Task<int> {
                        co_await *gate;
                        co_return 1;
                    },
                    &gate));
            gate.open();
            for (auto& f : first)
                co_await f;
            co_await Yield {};
            CO_COMPARE(pool->workerCount(), 3);
            CO_COMPARE(pool->activeCount(), 0);
            auto late = pool->submit([](int v) { return v; }, 2); // wakes one idle worker, later
            std::weak_ptr<int> witness;
            if (destroy) {
                auto token = std::make_shared<int>(0);
                witness = token;
                (void)pool->submit([](std::shared_ptr<int>) { return 0; }, std::move(token));
                pool.reset();
            } else {
                co_await pool->shutdown();
                CO_COMPARE(pool->workerCount(), 0);
            }
            CO_COMPARE(co_await late, 2);
            for (int i = 0; i < 5; ++i)
                co_await Yield {};
            CO_VERIFY(witness.expired());
        }(destroy));
    }

    void randomized()
    {
        // TASKPOOL_STRESS_SEEDS: a count, or FIRST:COUNT to replay a range (e.g. one failing seed).
        quint32 first = 1;
        int seeds = 500;
        const QByteArray spec = qgetenv("TASKPOOL_STRESS_SEEDS");
        if (const int colon = spec.indexOf(':'); colon >= 0) {
            first = spec.left(colon).toUInt();
            seeds = spec.mid(colon + 1).toInt();
        } else if (!spec.isEmpty()) {
            seeds = envInt("TASKPOOL_STRESS_SEEDS", seeds);
        }
        const int ops = envInt("TASKPOOL_STRESS_OPS", 200);
        QElapsedTimer clock;
        clock.start();
        int tasks = 0;
        for (quint32 seed = first; seed < first + quint32(seeds); ++seed) {
            QString failure;
            run(runSeed(seed, ops, &failure, &tasks), 20s);
            if (QTest::currentTestFailed())
                QFAIL(qPrintable(QStringLiteral("seed %1 (replay: TASKPOOL_STRESS_SEEDS=%1:1)").arg(seed)));
            QVERIFY2(failure.isEmpty(),
                     qPrintable(failure + QStringLiteral(" (replay: TASKPOOL_STRESS_SEEDS=%1:1)").arg(seed)));
#ifdef TASKPOOL_LEAK_CHECK_PER_SEED
            // Under ASan: a leak is found within 20 seeds of the one that caused it (a check per
            // seed would cost a few hundred milliseconds each).
            constexpr quint32 leakBatch = 20;
            if ((seed - first + 1) % leakBatch == 0 || seed + 1 == first + quint32(seeds)) {
                const quint32 from = seed - (seed - first) % leakBatch;
                QVERIFY2(__lsan_do_recoverable_leak_check() == 0,
                         qPrintable(QStringLiteral("one of seeds %1..%2 leaked (replay: TASKPOOL_STRESS_SEEDS=%1:%3)")
                                        .arg(from)
                                        .arg(seed)
                                        .arg(seed - from + 1)));
            }
#endif
        }
        qInfo("%d seeds x %d operations in %lld ms: %s; %s", seeds, ops, clock.elapsed(), qPrintable(stats.text()),
              qPrintable(stats.edges()));
    }
};

QTEST_GUILESS_MAIN(tst_Stress)
#include "tst_stress.moc"
