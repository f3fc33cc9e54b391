// SPDX-License-Identifier: MIT
// Issue 18: the task states the executor lost track of, one named regression test per defect. A
// task being taken to start, a queued task, a task held back by its key or by the rate limit, a task
// handed over from another thread: each is cancelled, cleared, shut down, counted or awaited from the
// moments a slot or another thread can reach it. Each test failed on the code before the redesign,
// but the 11th, which holds the executor to the now documented contract of a plain QFuture cancel
// (that code already kept it).
//
// Each test runs under a short watchdog, and waits for what must happen with a bounded wait
// (eventually()) rather than for ever, so that a defect fails its test cleanly: what the test left
// waiting is released before the verdict, and nothing resumes a finished test afterwards.
#include "testutil.h"

#include <QEventLoop>
#include <QFuture>
#include <QTimer>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

using namespace TestUtil;
using TaskPool::CancelledError;
using TaskPool::Future;
using TaskPool::ShutdownOptions;
using TaskPool::SubmitOptions;
using TaskPool::TaskPoolExecutor;

namespace {

constexpr auto watchdog = 5s; // every test body; the bounded waits inside end well before it

//! What a task that waits for its stop token saw.
struct StopProbe {
    bool ran = false;
    bool stopped = false;
};

//! Runs until its stop token is stopped, then ends cancelled (throws CancelledError).
QCoro::Task<int> untilStopped(std::stop_token token, std::shared_ptr<StopProbe> probe)
{
    probe->ran = true;
    Gate stop;
    std::stop_callback onStop(token, [&stop] { stop.open(); });
    co_await stop;
    probe->stopped = true;
    throw CancelledError();
}

//! Sets \a *done once \a task completes (a shutdown's wait, here).
QCoro::Task<void> markWhenDone(QCoro::Task<void> task, std::shared_ptr<bool> done)
{
    co_await task;
    *done = true;
}

//! Resumes once \a future settles and appends \a tag to \a order.
QCoro::Task<void> awaitAndLog(Future<int> future, std::vector<int>* order, int tag)
{
    try {
        co_await future;
    } catch (...) {
    }
    order->push_back(tag);
}

//! A task body that appends \a tag to \a log and returns \a value.
auto recorder(std::vector<char>* log, char tag, int value)
{
    return [log, tag, value] {
        log->push_back(tag);
        return value;
    };
}

} // namespace

class tst_TaskState : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // 1. shutdown({.cancelFutures = true}) from a pendingCountChanged slot emitted while a worker
    // takes a queued task to start it: that task must end cancelled (never started, or started
    // with its stop token stopped), and shutdown's wait must complete. It was neither cancelled
    // nor stopped, and the shutdown never drained.
    void regression18_01_shutdownWhileTaking()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(1);
                Gate hold;
                auto blocker = co_await occupy(pool, &hold);
                auto probe = std::make_shared<StopProbe>();
                auto task = pool.submit(untilStopped, probe);
                CO_COMPARE(pool.pendingCount(), 1);

                bool armed = true;
                auto drained = std::make_shared<bool>(false);
                std::optional<QCoro::Task<void>> waiting;
                connect(&pool, &TaskPoolExecutor::pendingCountChanged, &pool, [&](int pending) {
                    if (!armed || pending != 0)
                        return;
                    armed = false; // the shutdown emits pendingCountChanged itself
                    const ShutdownOptions options { .wait = true, .cancelFutures = true };
                    waiting.emplace(markWhenDone(pool.shutdown(options), drained));
                });
                hold.open(); // the worker ends the blocker and takes `task`
                const bool tookTask = co_await eventually([&] { return !armed; });
                const bool drainedInTime = co_await eventually([&] { return *drained; });
                const bool settled = task.done();
                const bool cancelled = task.cancelled();
                const bool ran = probe->ran;
                const bool stopped = probe->stopped;
                if (!drainedInTime) { // release what the defect left running, then judge
                    task.cancel();
                    co_await eventually([&] { return *drained; });
                }
                CO_VERIFY2(tookTask, "pendingCountChanged(0) was never emitted for the task being taken");
                CO_VERIFY2(drainedInTime, "shutdown({.cancelFutures = true}) never drained");
                CO_VERIFY2(settled && cancelled, "the task being taken was not cancelled");
                CO_VERIFY2(!ran || stopped, "the task started after the shutdown but its stop token was not stopped");
                CO_COMPARE(pool.activeCount(), 0);
                CO_COMPARE(pool.pendingCount(), 0);
            }(),
            watchdog);
    }

    // 2. cancel() of a task from a pendingCountChanged slot emitted while a worker takes it: the
    // function must never run, taskStarted must never follow taskCancelled for it, its future ends
    // cancelled and the counts go back to 0. It emitted taskCancelled, then taskStarted, and ran.
    void regression18_02_cancelWhileTaking()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(1);
                Gate hold;
                auto blocker = co_await occupy(pool, &hold);
                SignalLog log;
                log.connect(pool);
                auto ran = std::make_shared<bool>(false);
                std::optional<Future<int>> task;
                task.emplace(pool.submit([ran] {
                    *ran = true;
                    return 1;
                }));
                CO_COMPARE(pool.pendingCount(), 1);

                bool armed = true;
                bool cancelReturned = false;
                connect(&pool, &TaskPoolExecutor::pendingCountChanged, &pool, [&](int pending) {
                    if (!armed || pending != 0)
                        return;
                    armed = false;
                    cancelReturned = task->cancel();
                });
                hold.open(); // the worker ends the blocker and takes `task`
                const bool tookTask = co_await eventually([&] { return !armed; });
                const bool drained = co_await eventually([&] { return isIdle(pool); });
                const quint64 id = task->taskId();
                CO_VERIFY2(tookTask, "pendingCountChanged(0) was never emitted for the task being taken");
                CO_VERIFY(cancelReturned);
                CO_VERIFY2(!*ran, "the task cancelled while it was being taken ran anyway");
                CO_COMPARE(log.count(SignalLog::Cancelled, id), 1);
                const int started = log.first(SignalLog::Started, id);
                CO_VERIFY2(started < log.first(SignalLog::Cancelled, id),
                           "taskStarted was emitted after taskCancelled for the same task");
                CO_VERIFY(task->done());
                CO_VERIFY(task->cancelled());
                CO_VERIFY2(drained, "the counts did not go back to 0");
            }(),
            watchdog);
    }

    // 3. clear() whose taskCancelled slot submits a task: clear() must return how many were queued
    // when it was called, and what its slots submitted must stay queued and run later. It cancelled
    // what the slot submitted, which submitted again, for ever (the slot stops at 50 here).
    void regression18_03_clearSlotSubmits()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(1);
                Gate hold;
                auto blocker = co_await occupy(pool, &hold);
                int queuedRan = 0;
                int slotRan = 0;
                QList<Future<int>> queued;
                for (int i = 0; i < 3; ++i)
                    queued.append(pool.submit([&queuedRan] { return ++queuedRan; }));
                CO_COMPARE(pool.pendingCount(), 3);

                int slotCalls = 0;
                QList<Future<int>> fromSlot;
                const auto connection = connect(&pool, &TaskPoolExecutor::taskCancelled, &pool, [&](quint64) {
                    ++slotCalls;
                    if (fromSlot.size() < 50) // the defect loops for ever: bound it
                        fromSlot.append(pool.submit([&slotRan] { return ++slotRan; }));
                });
                const int cleared = pool.clear();
                co_await eventually([&] { return slotCalls >= 3; });
                const int calls = slotCalls;
                const int submitted = int(fromSlot.size());
                const int pendingAfter = pool.pendingCount();
                const bool slotTasksQueued
                    = std::none_of(fromSlot.begin(), fromSlot.end(), [](const Future<int>& f) { return f.done(); });
                const bool allQueuedCancelled
                    = std::all_of(queued.begin(), queued.end(), [](const Future<int>& f) { return f.cancelled(); });
                disconnect(connection);
                hold.open();
                const bool drained = co_await eventually([&] {
                    return isIdle(pool)
                        && std::all_of(fromSlot.begin(), fromSlot.end(), [](const Future<int>& f) { return f.done(); });
                });

                CO_COMPARE(cleared, 3);
                CO_COMPARE(calls, 3);
                CO_COMPARE(submitted, 3);
                CO_VERIFY2(slotTasksQueued, "clear() cancelled the tasks its own slots submitted");
                CO_COMPARE(pendingAfter, 3);
                CO_VERIFY(allQueuedCancelled);
                CO_VERIFY(drained);
                CO_COMPARE(queuedRan, 0);
                CO_COMPARE(slotRan, 3);
                for (const auto& future : fromSlot)
                    CO_VERIFY(!future.cancelled());
            }(),
            watchdog);
    }

    // 4. clear() whose first taskCancelled slot runs a nested event loop (and frees the worker the
    // queued tasks wait for): none of the tasks queued when clear() was called may start, and it
    // returns how many it cancelled. The others started inside the loop, and clear() still said 3.
    void regression18_04_clearNestedLoop()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(1);
                Gate hold;
                auto blocker = co_await occupy(pool, &hold);
                int started = 0;
                QList<Future<int>> queued;
                for (int i = 0; i < 3; ++i)
                    queued.append(pool.submit([&started] { return ++started; }));
                CO_COMPARE(pool.pendingCount(), 3);

                bool looped = false;
                connect(&pool, &TaskPoolExecutor::taskCancelled, &pool, [&](quint64) {
                    if (std::exchange(looped, true))
                        return;
                    hold.open(); // the worker comes free while the nested loop runs
                    QEventLoop loop;
                    QTimer::singleShot(50, &loop, &QEventLoop::quit);
                    loop.exec();
                });
                const int cleared = pool.clear();
                const bool drained = co_await eventually([&] { return isIdle(pool) && blocker.done(); });

                CO_VERIFY2(looped, "clear() emitted no taskCancelled");
                CO_COMPARE(started, 0);
                CO_COMPARE(cleared, 3);
                for (const auto& future : queued)
                    CO_VERIFY(future.cancelled());
                CO_VERIFY(drained);
            }(),
            watchdog);
    }

    // 5. A task held back by its saturated key, cancelled through a plain QFuture copy or with
    // Future::cancel() in the running task's taskFinished slot: the key's next held task must run
    // and the executor drain. The cancelled task took the freed place, was dropped, and the next
    // one was never released (pendingCount 1, activeCount 0, for ever).
    void regression18_05_cancelledHeldKeyTask_data()
    {
        QTest::addColumn<bool>("inTaskFinished");
        QTest::newRow("plain QFuture copy") << false;
        QTest::newRow("Future::cancel() in taskFinished") << true;
    }
    void regression18_05_cancelledHeldKeyTask()
    {
        QFETCH(bool, inTaskFinished);
        run(
            [](bool inTaskFinished) -> QCoro::Task<void> {
                TaskPoolExecutor pool(3);
                pool.setKeyLimit(QStringLiteral("k"), 1);
                const SubmitOptions keyed { .key = QStringLiteral("k") };
                Gate hold;
                auto first = pool.submit(keyed, waitFor, &hold);
                co_await until([&] { return pool.activeCount() == 1; });
                std::vector<char> ran;
                auto second = pool.submit(keyed, recorder(&ran, 'B', 2));
                auto third = pool.submit(keyed, recorder(&ran, 'C', 3));
                // A task of no key queued behind them starts only once a worker has set both
                // keyed tasks aside (held by their key).
                auto other = pool.submit(recorder(&ran, 'D', 4));
                const bool otherRan = co_await eventually([&] { return other.done(); });
                CO_VERIFY2(otherRan, "a task of another key was held back by the saturated key");
                CO_COMPARE(pool.pendingCount(), 2);

                if (inTaskFinished) {
                    connect(&pool, &TaskPoolExecutor::taskFinished, &pool, [&](quint64 id) {
                        if (id == first.taskId())
                            second.cancel();
                    });
                } else {
                    QFuture<int> copy = second; // Qt's own cancel: no hook tells the executor
                    copy.cancel();
                }
                hold.open();
                const bool thirdRan = co_await eventually([&] { return third.done(); });
                const bool drained = co_await eventually([&] { return isIdle(pool); });
                const int pendingLeft = pool.pendingCount();
                const int activeLeft = pool.activeCount();
                if (!thirdRan)
                    pool.clear(); // the defect strands it: cancel it before the verdict

                CO_VERIFY2(thirdRan,
                           qPrintable(QStringLiteral("the key's next held task never ran (pending %1, "
                                                     "active %2)")
                                          .arg(pendingLeft)
                                          .arg(activeLeft)));
                CO_COMPARE(third.result(), 3);
                CO_VERIFY(second.cancelled());
                CO_VERIFY(ran == (std::vector<char> { 'D', 'C' }));
                CO_VERIFY(drained);
            }(inTaskFinished),
            watchdog);
    }

    // 6. A rateLimitedChanged(true) slot that calls setRateLimit() (the same limit) must not strand
    // the queued task: it starts once the window allows. Nothing woke a worker any more.
    void regression18_06_setRateLimitInRateLimitedSlot()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(1);
                constexpr auto window = 300ms; // the held task waits for it to pass, no more
                pool.setRateLimit(1, window);
                int slotCalls = 0;
                connect(&pool, &TaskPoolExecutor::rateLimitedChanged, &pool, [&](bool limited) {
                    if (limited && slotCalls++ == 0)
                        pool.setRateLimit(1, window);
                });
                int started = 0;
                auto first = pool.submit([&started] { return ++started; });
                auto second = pool.submit([&started] { return ++started; });
                const bool secondRan = co_await eventually([&] { return second.done(); }, 3s);
                if (!secondRan)
                    pool.clear(); // stranded by the defect

                CO_VERIFY2(slotCalls > 0,
                           "the rate limit never held the second task (a stall longer than the window?)");
                CO_VERIFY2(secondRan, "the rate-held task never started after setRateLimit() in the slot");
                CO_COMPARE(started, 2);
                CO_COMPARE(second.result(), 2);
                const bool drained = co_await eventually([&] { return isIdle(pool); });
                CO_VERIFY(drained);
            }(),
            watchdog);
    }

    // 7. Once the only rate-held task is cancelled (Future::cancel()) and nothing else is queued,
    // isRateLimited() must be false (at once, or once posted events are processed, long before the
    // window ends). It stayed true until the window ended.
    void regression18_07_rateLimitedClearsOnCancel()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(1);
                pool.setRateLimit(1, 10s); // the window cannot end during the test
                auto first = pool.submit([] { return 1; });
                auto second = pool.submit([] { return 2; });
                const bool limited = co_await eventually([&] { return pool.isRateLimited(); });
                CO_VERIFY2(limited, "the second task was not held by the rate limit");
                CO_VERIFY(first.done());
                CO_COMPARE(pool.pendingCount(), 1);

                CO_VERIFY(second.cancel());
                const bool soon = co_await eventually([&] { return !pool.isRateLimited(); });
                CO_COMPARE(pool.pendingCount(), 0);
                CO_VERIFY2(soon, "isRateLimited() stayed true with nothing queued");
                CO_VERIFY(second.cancelled());
            }(),
            watchdog);
    }

    // 8. Lowering the rate limit and raising it back (same window) must not forget the starts the
    // window holds: never more than 5 starts in one window of a 5-per-10-s limit. Lowering to 3
    // discarded the recorded starts, and 7 tasks started within the window.
    void regression18_08_rateWindowHoldsAcrossLimitChanges()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(10);
                pool.setRateLimit(5, 10s); // the window cannot end during the test
                int started = 0;
                QList<Future<int>> futures;
                for (int i = 0; i < 5; ++i)
                    futures.append(pool.submit([&started] { return ++started; }));
                const bool firstFive = co_await eventually([&] { return started == 5; });
                CO_VERIFY(firstFive);

                pool.setRateLimit(3, 10s);
                pool.setRateLimit(5, 10s);
                for (int i = 0; i < 5; ++i)
                    futures.append(pool.submit([&started] { return ++started; }));
                co_await TestUtil::sleep(200ms); // an observation: a longer one only finds more starts
                const int startedInWindow = started;
                const int pending = pool.pendingCount();
                pool.clear(); // the rest would start in 10 s, after this test

                CO_COMPARE(startedInWindow, 5);
                CO_COMPARE(pending, 5);
            }(),
            watchdog);
    }

    // 9. Equal priorities start in the order in which submit() returned, across threads: a task
    // submitted (and returned) in another thread before one submitted in the executor's thread
    // starts first. The executor's own submission overtook it.
    void regression18_09_crossThreadSubmissionOrder()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(1);
                Gate hold;
                auto blocker = co_await occupy(pool, &hold);
                std::vector<char> order;
                std::optional<Future<int>> a;
                std::thread other([&] { a.emplace(pool.submit(recorder(&order, 'A', 1))); });
                other.join(); // A's submit() has returned
                auto b = pool.submit(recorder(&order, 'B', 2));
                hold.open();
                const bool both = co_await eventually([&] { return a->done() && b.done(); });
                CO_VERIFY(both);
                CO_VERIFY2(order == (std::vector<char> { 'A', 'B' }),
                           "the task submitted first (from another thread) started second");
            }(),
            watchdog);
    }

    // 10. A task whose submit() returned in another thread counts at once: pendingCount() >= 1
    // right after that thread is joined (before any event is processed), and whenIdle() completes
    // only after the task ran. pendingCount() read 0 and whenIdle() completed before it ran.
    void regression18_10_crossThreadSubmitCountedAtOnce()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(1);
                std::vector<char> ran;
                std::optional<Future<int>> task;
                std::thread other([&] { task.emplace(pool.submit(recorder(&ran, 'T', 1))); });
                other.join();
                const int pendingAtOnce = pool.pendingCount();
                co_await pool.whenIdle();
                const bool ranBeforeIdle = !ran.empty();
                const bool settled = co_await eventually([&] { return task->done(); });

                CO_VERIFY2(pendingAtOnce >= 1,
                           qPrintable(QStringLiteral("pendingCount() read %1 right after another thread's submit() "
                                                     "returned")
                                          .arg(pendingAtOnce)));
                CO_VERIFY2(ranBeforeIdle, "whenIdle() completed before the submitted task ran");
                CO_VERIFY(settled);
                CO_COMPARE(task->result(), 1);
            }(),
            watchdog);
    }

    // 11. A queued task cancelled through a plain QFuture copy (Qt gives no hook for it) is seen
    // when the executor reaches it: it never starts, taskCancelled is reported exactly once for
    // it, pendingCount drops to 0 and the pool drains. Future::cancel() (TaskPool's way) on
    // another queued task drops pendingCount and reports taskCancelled at once, before it returns.
    // (The defect was only that nothing said when such a cancel is seen: the documentation now does,
    // and this test holds the executor to it; the code before the redesign already passed it.)
    void regression18_11_plainQFutureCancelSeenWhenReached()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(1);
                Gate hold;
                auto blocker = co_await occupy(pool, &hold);
                SignalLog log;
                log.connect(pool);
                std::vector<char> ran;
                auto plain = pool.submit(recorder(&ran, 'P', 1));
                auto viaFuture = pool.submit(recorder(&ran, 'F', 2));
                auto last = pool.submit(recorder(&ran, 'L', 3));
                CO_COMPARE(pool.pendingCount(), 3);

                QFuture<int> copy = plain;
                copy.cancel(); // not seen by the executor until it reaches the task

                const int pendingBefore = pool.pendingCount();
                CO_VERIFY(viaFuture.cancel());
                CO_COMPARE(pool.pendingCount(), pendingBefore - 1); // at once, on return
                CO_COMPARE(log.count(SignalLog::Cancelled, viaFuture.taskId()), 1);
                CO_VERIFY(viaFuture.cancelled());

                hold.open(); // the long running task ends; the executor reaches `plain`
                const bool drained = co_await eventually([&] { return isIdle(pool) && last.done(); });
                CO_VERIFY(drained);
                CO_COMPARE(pool.pendingCount(), 0);
                CO_VERIFY2(ran == (std::vector<char> { 'L' }), "a cancelled task ran");
                CO_COMPARE(log.count(SignalLog::Cancelled, plain.taskId()), 1);
                CO_COMPARE(log.count(SignalLog::Started, plain.taskId()), 0);
                CO_COMPARE(log.count(SignalLog::Cancelled, viaFuture.taskId()), 1);
                CO_VERIFY(plain.cancelled());
                CO_COMPARE(last.result(), 3);
            }(),
            watchdog);
    }

    // 12. Coroutines awaiting one future resume in the order they started awaiting. They resumed
    // last awaiter first.
    void regression18_12_awaitersResumeInOrder()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(1);
                Gate hold;
                auto task = pool.submit(waitFor, &hold);
                std::vector<int> order;
                auto firstAwaiter = awaitAndLog(task, &order, 1);
                auto secondAwaiter = awaitAndLog(task, &order, 2);
                auto thirdAwaiter = awaitAndLog(task, &order, 3);
                CO_VERIFY(order.empty());
                hold.open();
                const bool resumed = co_await eventually([&] { return order.size() == 3; });
                CO_VERIFY(resumed);
                CO_VERIFY2(order == (std::vector<int> { 1, 2, 3 }), "the awaiters did not resume in awaiting order");
            }(),
            watchdog);
    }
};

QTEST_GUILESS_MAIN(tst_TaskState)
#include "tst_taskstate.moc"
