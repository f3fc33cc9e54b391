// SPDX-License-Identifier: MIT
// Review 7: an adversarial review of the latest changes to the executor core (commits e950e74 and
// 5dcf20c): a slot's own transitions no longer emit re-entrantly (a flush called while another
// flush emits in the same event-loop level returns, the outer flush emits the rest), a worker
// reports its task's end once it has taken its next task or parked, take() takes in other
// threads' work and then yields, arrival order, key releases, the rate window's memory, idle().
//
// PART 1 (defect_*): each test failed on 5dcf20c, as its comment says; fixed (a flush inside event
// processing that a slot runs, seen through the ready queue's drains, emits), and guarded here.
// PART 2 (held_*): a short list of guard tests for attacks that held.
//
// Every test runs under a watchdog (TestUtil::run); bounded waits only turn a hang into a clean
// failure and are never what is asserted.
#include "testutil.h"

#include <QCoreApplication>
#include <QEventLoop>
#include <QFuture>
#include <QTimer>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

using namespace TestUtil;
using TaskPool::Future;
using TaskPool::ManualClock;
using TaskPool::SubmitOptions;
using TaskPool::TaskPoolExecutor;

namespace {

constexpr auto watchdog = 8s;

//! Spins QCoreApplication::processEvents() (no QEventLoop::exec: the thread's loop level does not
//! change) until \a done holds, for at most \a ms.
template <typename Pred> void spinEvents(int ms, Pred done)
{
    QElapsedTimer elapsed;
    elapsed.start();
    while (!done() && elapsed.elapsed() < ms)
        QCoreApplication::processEvents(QEventLoop::AllEvents, 1);
}

} // namespace

class tst_Adversarial7 : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // =============================================================================================
    // PART 1: defects (each test fails on 5dcf20c)
    // =============================================================================================

    // D1. Promises: "taskStarted always comes before the same task's terminal signal", "once
    // taskStarted has been emitted the task runs" / "a task whose future settles before its
    // taskStarted is emitted never runs", and the worker's comment "the start, reported: a slot may
    // cancel the task, which then never runs".
    // Broken by a slot that spins QCoreApplication::processEvents() (QTest::qWait does the same;
    // neither changes QThread::loopLevel()). Inside it a worker takes the task the slot submitted,
    // its start's flush() returns at once (a flush is emitting at the same level), and the worker
    // RUNS the task before its taskStarted is emitted. The task ends settled, so when the outer
    // flush reaches the deferred TaskStarted report, emitReport() drops it (isSettled()): the task
    // ran, yet no taskStarted is ever emitted for it, and taskFinished comes alone.
    // Cause: flushSlow() defers by loop level (m_flushing && level <= m_flushLevel), but
    // workerLoop() goes on to RunJob after core->flush() whether or not the start was reported.
    void defect_processEventsInSlotRunsTaskWithoutTaskStarted_data()
    {
        QTest::addColumn<bool>("qWait");
        QTest::newRow("QCoreApplication::processEvents()") << false;
        QTest::newRow("QTest::qWait()") << true;
    }
    void defect_processEventsInSlotRunsTaskWithoutTaskStarted()
    {
        QFETCH(bool, qWait);
        run(
            [](bool qWait) -> QCoro::Task<void> {
                TaskPoolExecutor pool(2);
                QObject context;
                SignalLog log;
                log.connect(pool, &context);
                std::optional<Future<int>> first;
                std::optional<Future<int>> second;
                bool armed = true;
                bool slotReturned = false;
                connect(&pool, &TaskPoolExecutor::taskFinished, &context, [&](quint64 id) {
                    if (!armed || !first || id != first->taskId())
                        return;
                    armed = false;
                    second.emplace(pool.submit([] { return 2; }));
                    if (qWait) {
                        for (int i = 0; i < 200 && !second->done(); ++i)
                            QTest::qWait(5);
                    } else {
                        spinEvents(1000, [&] { return second->done(); });
                    }
                    slotReturned = true;
                });
                first.emplace(pool.submit([] { return 1; }));
                // The body may be resumed inside the slot's spin: it ends only once the slot returned.
                const bool drained
                    = co_await eventually([&] { return slotReturned && second && second->done() && isIdle(pool); });
                CO_VERIFY(drained);
                co_await turns(5);
                const quint64 id = second->taskId();
                const int finished = log.first(SignalLog::Finished, id);
                const int started = log.first(SignalLog::Started, id);
                CO_VERIFY2(finished >= 0, "the second task's taskFinished was never emitted");
                CO_VERIFY2(started >= 0, "the task ran and finished, but its taskStarted was never emitted");
                CO_VERIFY2(started < finished, "taskFinished before taskStarted");
            }(qWait),
            watchdog);
    }

    // D2. Same cause, the cancel side. Promise: "a task whose future settles before its
    // taskStarted is emitted never runs", "once taskStarted has been emitted the task runs, even
    // when a slot of taskStarted itself cancels it (its stop token is then already stopped)".
    // A listener that cancels every task in taskStarted (a quota guard) must see no task body run
    // with an unstopped token. Inside a slot that spins processEvents(), the submitted task runs
    // to its end before its taskStarted is emitted: the guard never gets a chance, and the body
    // ran with a live token.
    void defect_processEventsInSlotRunsTaskBeforeItsStartCanBeCancelled()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(2);
                QObject context;
                std::optional<Future<int>> first;
                std::optional<Future<int>> second;
                bool armed = true;
                bool slotReturned = false;
                std::atomic<bool> ranUnstopped { false };
                connect(&pool, &TaskPoolExecutor::taskStarted, &context, [&](quint64 id) {
                    if (second && id == second->taskId())
                        second->cancel(); // the guard: the task runs with its token stopped, or not at all
                });
                connect(&pool, &TaskPoolExecutor::taskFinished, &context, [&](quint64 id) {
                    if (!armed || !first || id != first->taskId())
                        return;
                    armed = false;
                    second.emplace(pool.submit([&](std::stop_token token) {
                        if (!token.stop_requested())
                            ranUnstopped = true;
                        return 2;
                    }));
                    spinEvents(1000, [&] { return second->done(); });
                    slotReturned = true;
                });
                first.emplace(pool.submit([] { return 1; }));
                const bool drained
                    = co_await eventually([&] { return slotReturned && second && second->done() && isIdle(pool); });
                CO_VERIFY(drained);
                CO_VERIFY2(!ranUnstopped, "the task ran with a live token before its taskStarted was emitted");
            }(),
            watchdog);
    }

    // =============================================================================================
    // PART 2: guard tests for attacks that held
    // =============================================================================================

    // A stream of submits from another thread: idle() once at the end, the last
    // pendingCountChanged equals pendingCount() (0), every task started before it ended.
    void held_crossThreadStreamIdleOnceAndCountsSettle()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(2);
                QObject context;
                SignalLog log;
                log.connect(pool, &context);
                int lastPending = -1;
                connect(&pool, &TaskPoolExecutor::pendingCountChanged, &context, [&](int n) { lastPending = n; });
                std::atomic<int> done { 0 };
                std::vector<Future<int>> futures;
                std::mutex mutex;
                std::thread submitter([&] {
                    for (int i = 0; i < 2000; ++i) {
                        auto f = pool.submit([i] { return i; });
                        std::lock_guard lock(mutex);
                        futures.push_back(std::move(f));
                    }
                    done = 1;
                });
                // The event loop must keep turning meanwhile (the worker yields after taking in).
                int ticks = 0;
                QTimer tick;
                connect(&tick, &QTimer::timeout, &context, [&] { ++ticks; });
                tick.start(0);
                const bool drained = co_await eventually([&] { return done.load() && isIdle(pool); }, 5s);
                submitter.join();
                CO_VERIFY(drained);
                co_await turns(5);
                CO_VERIFY(ticks > 0);
                CO_COMPARE(lastPending, 0);
                CO_COMPARE(pool.pendingCount(), 0);
                CO_VERIFY(log.count(SignalLog::Idle) >= 1);
                CO_COMPARE(log.events.back().first, SignalLog::Idle);
                for (const auto& f : futures) {
                    const int s = log.first(SignalLog::Started, f.taskId());
                    const int e = log.first(SignalLog::Finished, f.taskId());
                    CO_VERIFY(s >= 0 && e > s);
                }
            }(),
            watchdog);
    }

    // Keys and priorities: a held high-priority task of a key is not overtaken by a later task of
    // the same key; releases keep start order; lowering a key limit while released tasks wait.
    void held_keyReleasesKeepStartOrder()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(4);
                pool.setKeyLimit(QStringLiteral("k"), 1);
                std::vector<int> order;
                Gate gate;
                auto blocker = pool.submit({ .key = QStringLiteral("k") }, waitFor, &gate);
                co_await until([&] { return pool.activeCount() == 1; });
                std::vector<Future<int>> fs;
                fs.push_back(pool.submit({ .key = QStringLiteral("k") }, [&] {
                    order.push_back(1);
                    return 1;
                }));
                fs.push_back(pool.submit({ .priority = 5, .key = QStringLiteral("k") }, [&] {
                    order.push_back(2);
                    return 2;
                }));
                fs.push_back(pool.submit({ .key = QStringLiteral("k") }, [&] {
                    order.push_back(3);
                    return 3;
                }));
                fs.push_back(pool.submit({ .priority = 5, .key = QStringLiteral("k") }, [&] {
                    order.push_back(4);
                    return 4;
                }));
                co_await turns(5);
                pool.setKeyLimit(QStringLiteral("k"), INT_MAX);
                pool.setKeyLimit(QStringLiteral("k"), 1);
                gate.open();
                const bool drained = co_await eventually([&] { return isIdle(pool); });
                CO_VERIFY(drained);
                CO_COMPARE(order, (std::vector<int> { 2, 4, 1, 3 }));
            }(),
            watchdog);
    }

    // One worker, a slot of its own park()'s flush spins processEvents(): the parked worker is
    // resumed inside its own suspension, runs the slot's task, parks again; the slot then shuts
    // the executor down (destroying the parked worker's frame while its first park() is still on
    // the stack) or deletes it. Under ASan: no use after free; every future settles.
    void held_spinningSlotThenShutdownOrDelete_data()
    {
        QTest::addColumn<bool>("deleteIt");
        QTest::newRow("shutdown") << false;
        QTest::newRow("delete") << true;
    }
    void held_spinningSlotThenShutdownOrDelete()
    {
        QFETCH(bool, deleteIt);
        run(
            [](bool deleteIt) -> QCoro::Task<void> {
                auto* pool = new TaskPoolExecutor(1);
                QObject context;
                std::optional<Future<int>> first;
                std::optional<Future<int>> second;
                std::optional<Future<int>> third;
                bool armed = true;
                connect(pool, &TaskPoolExecutor::taskFinished, &context, [&](quint64 id) {
                    if (!armed || !first || id != first->taskId())
                        return;
                    armed = false;
                    second.emplace(pool->submit([] { return 2; }));
                    spinEvents(1000, [&] { return second->done(); });
                    third.emplace(pool->submit([] { return 3; }));
                    if (deleteIt) {
                        delete pool;
                        pool = nullptr;
                    } else {
                        static_cast<void>(pool->shutdown({ .wait = false }));
                    }
                });
                first.emplace(pool->submit([] { return 1; }));
                const bool drained = co_await eventually([&] { return third && third->done(); });
                CO_VERIFY(drained);
                CO_VERIFY(second->done());
                CO_COMPARE(third->result(), 3);
                delete pool;
            }(deleteIt),
            watchdog);
    }

    // The rate window: limit 0 and back counts the remembered starts; ManualClock advanced from a
    // slot lets exactly the window's starts through; rateLimited settles false.
    void held_rateWindowZeroAndBack()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(4);
                auto clock = std::make_shared<ManualClock>();
                pool.setClock(clock);
                pool.setRateLimit(2, 100ms);
                int started = 0;
                QObject context;
                connect(&pool, &TaskPoolExecutor::taskStarted, &context, [&] { ++started; });
                std::vector<Future<int>> fs;
                for (int i = 0; i < 6; ++i)
                    fs.push_back(pool.submit([i] { return i; }));
                co_await turns(10);
                CO_COMPARE(started, 2);
                pool.setRateLimit(0);
                pool.setRateLimit(2, 100ms);
                co_await turns(10);
                CO_COMPARE(started, 2);
                clock->advance(100ms);
                co_await turns(10);
                CO_COMPARE(started, 4);
                clock->advance(100ms);
                const bool drained = co_await eventually([&] { return isIdle(pool); });
                CO_VERIFY(drained);
                CO_COMPARE(started, 6);
                CO_VERIFY(!pool.isRateLimited());
            }(),
            watchdog);
    }
};

QTEST_GUILESS_MAIN(tst_Adversarial7)
#include "tst_adversarial7.moc"
