// SPDX-License-Identifier: MIT
// Randomized stress against invariants. Each seed drives up to four executors with a random
// sequence of operations (submit in both forms and with a QPromise, tasks that succeed, throw,
// cancel themselves, hang until released, submit more work, shut down or destroy their own
// executor; cancel() on queued and running futures; map() with and without a buffer, abandoned at
// random points; shutdown() with random options, several at once; destroying an executor with
// work in flight; wait() and asCompleted() over random subsets) and checks after every step and
// at the end that:
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
//   - nothing hangs (a watchdog per seed) and nothing leaks (ASan/LSan builds).
// Everything runs in one thread without timers, so a seed replays exactly.
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

#include <deque>
#include <memory>
#include <optional>
#include <random>
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

enum class Action { Value, Throw, ThrowInt, ThrowCancelled, SubmitMore, DestroyOwn, ShutdownOwn };
enum class Form { Callable, Awaitable, Promise };
enum class Outcome { None, Value, Failed, Cancelled };

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
};

struct Rec {
    int exec = 0;
    Form form = Form::Callable;
    Action action = Action::Value;
    int gate = -1;
    int yields = 0;
    int depth = 0;
    bool shutdownCancels = false; // for ShutdownOwn
    Future<int> future;
    quint64 id = 0;
    bool accepted = false;
    int bodyStarts = 0;
    bool bodyEnded = false;
    bool workerStarted = false; // taskStarted seen
    bool forcedCancel = false; // cancel() returned true, or dropped by shutdown(cancelFutures)
    bool mustNotStart = false; // cancelled before its body started (callable forms)
    Outcome seen = Outcome::None; // the terminal state first observed
    int seenValue = 0;
    int startedSignals = 0, terminalSignals = 0;
};

struct MapRec {
    int exec = 0;
    int size = 0; // -1: infinite
    std::optional<int> buffer;
    int throwAt = -1;
    int gateAt = -1, gate = -1;
    std::vector<int> started;
    bool abandoned = false;
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
    std::vector<QCoro::Task<void>> background; // awaited at the end
    std::unordered_map<quint64, int> byId;
    std::unordered_map<quint64, std::pair<int, int>> otherIds; // map items: started, terminal
    int liveBodies = 0;
    std::vector<int> live; // recs not yet settled-and-ended

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
        TaskPoolExecutor* pool = x.pool;
        QObject::connect(pool, &TaskPoolExecutor::taskStarted, pool,
                         [this](quint64 id, const QString& worker) { onStarted(id, worker); });
        QObject::connect(pool, &TaskPoolExecutor::taskFinished, pool,
                         [this](quint64 id) { onTerminal(id, Outcome::Value, {}); });
        QObject::connect(pool, &TaskPoolExecutor::taskFailed, pool,
                         [this](quint64 id, const QString& message) { onTerminal(id, Outcome::Failed, message); });
        QObject::connect(pool, &TaskPoolExecutor::taskCanceled, pool,
                         [this](quint64 id) { onTerminal(id, Outcome::Cancelled, {}); });
        QObject::connect(pool, &TaskPoolExecutor::activeCountChanged, pool,
                         [this, e](int n) { execs[e].notifiedActive = n; });
        QObject::connect(pool, &TaskPoolExecutor::pendingCountChanged, pool,
                         [this, e](int n) { execs[e].notifiedPending = n; });
        QObject::connect(pool, &TaskPoolExecutor::workerCountChanged, pool, [this, e](int n) {
            execs[e].notifiedWorkers = n;
            MODEL_CHECK(n <= execs[e].mostWorkers, "exec %d: %d workers", e, n);
        });
        QObject::connect(pool, &TaskPoolExecutor::idle, pool, [this, e] {
            MODEL_CHECK(execs[e].pool->activeCount() == 0 && execs[e].pool->pendingCount() == 0,
                        "exec %d: idle() with %d active, %d pending", e, execs[e].pool->activeCount(),
                        execs[e].pool->pendingCount());
        });
        return e;
    }

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

    void onStarted(quint64 id, const QString& worker)
    {
        MODEL_CHECK(!worker.isEmpty(), "task %llu started in an unnamed worker", id);
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
    }

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

    static Outcome outcomeOf(const Future<int>& f)
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
        const int n = random(100);
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

    //! Submits a new random task to executor \a e; false when the executor refused it.
    bool submitNew(int e, Form form, int depth);
    //! The model's side of shutdown(): which queued tasks it cancels.
    void shutdownNow(int e, ShutdownOptions options);

    // ---- checks -----------------------------------------------------------------------------

    void checkRec(int i)
    {
        Rec& r = recs[i];
        if (!r.accepted)
            return;
        if (r.seen != Outcome::None) {
            const Outcome now = outcomeOf(r.future);
            MODEL_CHECK(now == r.seen, "task %d changed its terminal state %d -> %d", i, int(r.seen), int(now));
            return;
        }
        if (!r.future.done())
            return;
        const Future<int>& f = r.future;
        r.seen = outcomeOf(f);
        MODEL_CHECK(f.isFinished(), "task %d settled but its QFuture is not finished", i);
        MODEL_CHECK(f.operator co_await().await_ready(), "task %d: co_await would suspend on a settled future", i);
        Outcome expected = Outcome::Value;
        switch (r.action) {
        case Action::Throw:
        case Action::ThrowInt:
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
            r.seenValue = f.result();
            MODEL_CHECK(r.seenValue == 1000 + i, "task %d: result %d", i, r.seenValue);
        } else if (r.seen == Outcome::Failed) {
            try {
                std::rethrow_exception(f.exception());
            } catch (const std::runtime_error& e) {
                MODEL_CHECK(r.action == Action::Throw && QByteArray(e.what()) == QByteArray::number(i),
                            "task %d: wrong exception", i);
            } catch (int n) {
                MODEL_CHECK(r.action == Action::ThrowInt && n == i, "task %d: wrong int exception", i);
            } catch (...) {
                fail(QStringLiteral("task %1: unexpected exception type").arg(i));
            }
        }
        // Settled while its executor exists: its terminal signal has been emitted.
        if (execs[r.exec].pool)
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
        for (int i : live) {
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
        for (int i : live)
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

QCoro::Task<int> taskBody(Model* m, int i)
{
    Rec& r = m->recs[i];
    Exec& x = m->execs[r.exec];
    ++r.bodyStarts;
    if (r.bodyStarts != 1)
        m->fail(QStringLiteral("task %1 ran twice").arg(i));
    if (r.mustNotStart)
        m->fail(QStringLiteral("task %1 ran after it was cancelled while queued").arg(i));
    BodyScope scope(m, r.form == Form::Awaitable ? nullptr : &x, &r.bodyEnded);
    if (r.gate >= 0)
        co_await m->gates[std::size_t(r.gate)];
    for (int n = 0; n < r.yields; ++n)
        co_await Yield {};
    switch (r.action) {
    case Action::Value:
        break;
    case Action::Throw:
        throw std::runtime_error(std::to_string(i));
    case Action::ThrowInt:
        throw i;
    case Action::ThrowCancelled:
        throw CancelledError();
    case Action::SubmitMore:
        for (int n = 1 + m->random(2); n > 0; --n) {
            const int e = m->random(int(m->execs.size()));
            if (m->execs[std::size_t(e)].pool)
                m->submitNew(e, Form(m->random(3)), r.depth + 1);
        }
        break;
    case Action::DestroyOwn:
        if (x.pool)
            m->destroyExec(r.exec);
        break;
    case Action::ShutdownOwn:
        if (x.pool) {
            const ShutdownOptions options { .wait = false, .cancelFutures = r.shutdownCancels };
            QCoro::Task<void> shutdown = x.pool->shutdown(options);
            m->shutdownNow(r.exec, options);
            if (!shutdown.isReady())
                m->fail(QStringLiteral("shutdown({.wait = false}) inside task %1 did not return at once").arg(i));
        }
        break;
    }
    co_return 1000 + i;
}

bool Model::submitNew(int e, Form form, int depth)
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
    // An eager coroutine must not reach its executor before submit() returned.
    if (form == Form::Awaitable && r.yields == 0
        && (r.action == Action::SubmitMore || r.action == Action::DestroyOwn || r.action == Action::ShutdownOwn))
        r.yields = 1;
    const bool shut = x.pool->isShutdown();
    const int pendingBefore = x.pool->pendingCount();
    try {
        switch (form) {
        case Form::Callable:
            r.future = x.pool->submit(taskBody, this, i);
            break;
        case Form::Awaitable:
            r.future = x.pool->submit(taskBody(this, i));
            break;
        case Form::Promise:
            r.future = x.pool->submit(
                [](QPromise<int>& promise, Model* m, int i) -> QCoro::Task<void> {
                    const int value = co_await taskBody(m, i);
                    promise.addResult(value);
                },
                this, i);
            break;
        }
    } catch (const ShutdownError&) {
        MODEL_CHECK(shut, "exec %d refused a task before shutdown", e);
        MODEL_CHECK(x.pool->pendingCount() == pendingBefore, "exec %d queued a refused task", e);
        if (form == Form::Awaitable)
            live.push_back(i); // its eager coroutine still runs: wait for its end
        else
            r.bodyEnded = true;
        r.seen = Outcome::Cancelled; // not a task: nothing to check
        ++stats.refused;
        return false;
    }
    MODEL_CHECK(!shut, "exec %d accepted a task after shutdown", e);
    r.accepted = true;
    ++stats.accepted;
    r.id = r.future.taskId();
    MODEL_CHECK(r.id != 0 && !byId.contains(r.id), "task %d: id %llu reused", i, r.id);
    byId.emplace(r.id, i);
    live.push_back(i);
    return true;
}

void Model::shutdownNow(int e, ShutdownOptions options)
{
    if (!options.cancelFutures)
        return;
    execs[std::size_t(e)].cancelledQueue = true;
    for (int i : live) {
        Rec& r = recs[std::size_t(i)];
        if (r.exec == e && r.accepted && !r.workerStarted && r.seen == Outcome::None && !r.forcedCancel) {
            // It was queued: dropped, so it ends cancelled (checked against the future below).
            r.forcedCancel = true;
            ++stats.droppedByShutdown;
            if (r.form != Form::Awaitable && r.bodyStarts == 0)
                r.mustNotStart = true;
            MODEL_CHECK(r.future.done() && r.future.cancelled(), "task %d still queued after cancelFutures", i);
        }
    }
}

// ---- map ---------------------------------------------------------------------------------------

QCoro::Task<int> mapItemBody(Model* m, int mi, int item)
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
    co_return item * 10 + 3;
}

//! Takes up to \a take results of map \a mi in order, then abandons the generator.
QCoro::Task<void> consumeMap(Model* m, int mi, QCoro::AsyncGenerator<int> generator, int take)
{
    std::optional<QCoro::AsyncGenerator<int>> gen(std::move(generator));
    const MapRec& mr = m->maps[std::size_t(mi)];
    const Exec& x = m->execs[std::size_t(mr.exec)];
    int k = 0;
    try {
        auto it = co_await gen->begin();
        while (it != gen->end()) {
            CHECK_IN(m, *it == k * 10 + 3, "map %d: item %d yielded %d", mi, k, *it);
            if (++k == take)
                break;
            co_await ++it;
        }
        if (k != take) { // the generator ended
            const bool cutShort = mr.buffer && (!x.pool || x.pool->isShutdown());
            CHECK_IN(m, k == mr.size || (cutShort && (mr.size < 0 || k < mr.size)), "map %d ended after %d of %d", mi,
                     k, mr.size);
            CHECK_IN(m, mr.throwAt < 0 || mr.throwAt >= k || cutShort, "map %d: item %d did not throw", mi, mr.throwAt);
        }
    } catch (const std::runtime_error&) {
        CHECK_IN(m, k == mr.throwAt, "map %d threw at item %d, expected %d", mi, k, mr.throwAt);
    } catch (const CancelledError&) {
        CHECK_IN(m, x.cancelledQueue, "map %d: item %d cancelled without a cancelling shutdown", mi, k);
    }
    gen.reset(); // abandons what is left: queued items never start
    m->maps[std::size_t(mi)].abandoned = true;
}

// ---- waiting on many ----------------------------------------------------------------------------

int distinctCount(const QList<Future<int>>& futures)
{
    QSet<quint64> ids;
    for (const auto& f : futures)
        ids.insert(f.taskId());
    return int(ids.size());
}

QCoro::Task<void> waitOp(Model* m, QList<Future<int>> futures, TaskPool::ReturnWhen when, bool zeroTimeout)
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

QCoro::Task<void> asCompletedOp(Model* m, QList<Future<int>> futures, bool zeroTimeout)
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
            const Future<int>& f = *it;
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
    const Future<int> f = m->recs[std::size_t(m->awaiters[std::size_t(ai)].rec)].future;
    try {
        co_await f;
    } catch (...) {
    }
    m->awaiters[std::size_t(ai)].resumed = true;
    CHECK_IN(m, f.done(), "an awaiter of task %llu resumed before it settled", f.taskId());
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
    if (m->chance(30)) {
        mr.gateAt = m->random(span);
        mr.gate = m->random(int(m->gates.size()));
    }
    const int take = m->random(span + 2); // 0: dropped unread; past the end: read to the end
    auto fn = [m, mi](int item) { return mapItemBody(m, mi, item); };
    const bool shut = x.pool->isShutdown();
    std::optional<QCoro::AsyncGenerator<int>> gen;
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
    const int n = m->random(100);
    const int e = pickExec(m);
    if (qEnvironmentVariableIsSet("TASKPOOL_STRESS_TRACE"))
        qDebug("step %d: op %d on exec %d", m->step, n, e);
    if (n < 25 || (n >= 95)) {
        if (e >= 0)
            m->submitNew(e, m->chance(20) ? Form::Promise : Form::Callable, 0);
    } else if (n < 37) {
        if (e >= 0)
            m->submitNew(e, Form::Awaitable, 0);
    } else if (n < 49) {
        const int i = pickRec(m);
        if (i < 0)
            return 0;
        Rec& r = m->recs[std::size_t(i)];
        const bool wasDone = r.future.done();
        ++(wasDone ? stats.cancelDone : r.workerStarted ? stats.cancelRunning : stats.cancelQueued);
        const bool ok = r.future.cancel();
        CHECK_IN(m, ok == !wasDone, "task %d: cancel() gave %d on a future done=%d", i, int(ok), int(wasDone));
        if (ok) {
            r.forcedCancel = true;
            if (r.form != Form::Awaitable && r.bodyStarts == 0)
                r.mustNotStart = true;
            CHECK_IN(m, r.future.done() && r.future.cancelled() && r.future.isFinished(),
                     "task %d: not cancelled and finished at once after cancel()%s", i, "");
        }
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
        for (int k = 1 + m->random(3); k > 0; --k) {
            const ShutdownOptions options { .wait = m->chance(60), .cancelFutures = m->chance(40) };
            QCoro::Task<void> shutdown = m->execs[std::size_t(e)].pool->shutdown(options);
            m->shutdownNow(e, options);
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
        QList<Future<int>> subset;
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
    } else {
        if (e < 0)
            return 0;
        Exec& x = m->execs[std::size_t(e)];
        x.maxWorkers = 1 + m->random(4);
        x.mostWorkers = std::max(x.mostWorkers, x.maxWorkers);
        x.pool->setMaxWorkers(x.maxWorkers);
    }
    return 0;
}

//! One seed: \a ops random operations, then everything released and run down.
QCoro::Task<void> runSeed(quint32 seed, int ops, QString* failure, int* tasks)
{
    auto model = std::make_unique<Model>(seed);
    Model* m = model.get();
    for (int g = 0; g < 4; ++g)
        m->gates.emplace_back();
    m->newExec();
    if (m->chance(50))
        m->newExec();
    for (m->step = 0; m->step < ops && m->failure.isEmpty(); ++m->step) {
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
    for (Gate& gate : m->gates)
        gate.open();
    for (auto& task : m->background)
        co_await std::move(task);
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
        qInfo("%d seeds x %d operations in %lld ms: %s", seeds, ops, clock.elapsed(), qPrintable(stats.text()));
    }
};

QTEST_GUILESS_MAIN(tst_Stress)
#include "tst_stress.moc"
