// SPDX-License-Identifier: MIT
// Fourth adversarial review: each test breaks one documented promise (named in its comment) of the
// cancellation and scheduling controls (contexts, cross-thread cancels, re-entrant slots, timeouts,
// keys). A test here fails (or ends the process under ASan) while the promise is broken. Found
// broken: zeroDefaultTimeoutReadsAsNone, clearWhoseSlotDeletesTheExecutor; the others held when
// written and stay as guards.
#include "testutil.h"

#include <taskpool/cancel.h>

#include <QPointer>

#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <ranges>
#include <stop_token>

using namespace TestUtil;

namespace {

//! Runs until its token is stopped, then returns \a value.
QCoro::Task<int> untilStopped(std::stop_token token, int value)
{
    // A named awaiter (g++ 12 destroys a temporary awaitable with a non-trivial destructor twice).
    auto wait = TaskPool::untilCancelled(token);
    co_await wait;
    co_return value;
}

} // namespace

class tst_Adversarial4 : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void contextIsTheExecutorItself();
    void contextDestroyedInAnotherThread();
    void zeroDefaultTimeoutReadsAsNone();
    void burstKeepsKeyAndWorkerLimits();
    void burstKeepsPriorityOrder();
    void burstKeepsRateWindow();
    void pausedChangedSlotClears();
    void rateLimitedChangedSlotDeletesTheExecutor();
    void zeroTimeoutStopsSleep();
    void mapWithStopTokenAbandoned();
    void withinContextDestroyedBySettlement();
    void stopCallbackDeletesTheExecutor();
    void taskCancelledSlotShutsDownInsideClear();
    void idleSlotDeletesTheExecutor();
    // This ends the process under ASan (the error it shows), so it comes last.
    void clearWhoseSlotDeletesTheExecutor();
};

// Promise (SubmitOptions::context): "once it is destroyed, the task is cancelled (queued: never
// starts; running: its stop token is stopped)", and (class description) "every future still
// finishes". With the executor itself as the context, a queued and a running task must both end.
void tst_Adversarial4::contextIsTheExecutorItself()
{
    auto* pool = new TaskPool::TaskPoolExecutor(1);
    QFuture<int> running = pool->submit({ .context = pool }, untilStopped, 1);
    QFuture<int> queued = pool->submit({ .context = pool }, untilStopped, 2);
    QVERIFY(nestedLoopUntil([&] { return pool->activeCount() == 1; }));
    delete pool;
    QVERIFY2(nestedLoopUntil([&] { return running.isFinished() && queued.isFinished(); }),
             "a future whose context was its own executor never finished");
    QVERIFY(running.isCanceled());
    QVERIFY(queued.isCanceled());
}

// Promise (SubmitOptions::context): the context may be any QObject; its destruction cancels the
// task. Here it lives (and dies) in its own QThread: the running task's stop token must be stopped
// (in the executor's thread) and its future must end cancelled.
void tst_Adversarial4::contextDestroyedInAnotherThread()
{
    TaskPool::TaskPoolExecutor pool(2);
    QThread thread;
    thread.start();
    auto* context = new QObject;
    context->moveToThread(&thread);
    QFuture<int> running = pool.submit({ .context = context }, untilStopped, 1);
    QVERIFY(nestedLoopUntil([&] { return pool.activeCount() == 1; }));
    QMetaObject::invokeMethod(
        context, [context] { delete context; }, Qt::QueuedConnection);
    const bool ended = nestedLoopUntil([&] { return running.isFinished() && pool.activeCount() == 0; });
    thread.quit();
    thread.wait();
    QVERIFY2(ended, "the task whose context died in another thread was not stopped");
    QVERIFY(running.isCanceled());
}

// Promise (setDefaultTimeout / defaultTimeoutMs): "defaultTimeout() in milliseconds, 0 for none".
// setDefaultTimeout(0ms) is accepted (not negative) and makes every task time out at once, yet the
// property reads 0, "none": what QML (and anyone reading the property) sees is wrong. Cause:
// setDefaultTimeout() stores 0 ms as a real timeout, defaultTimeoutMs() maps it to "none".
void tst_Adversarial4::zeroDefaultTimeoutReadsAsNone()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(1);
        pool.setDefaultTimeout(std::chrono::milliseconds(0));
        auto future = pool.submit(delayedMul<20>, 2, 3);
        bool timedOut = false;
        try {
            co_await future;
        } catch (const TaskPool::TimeoutError&) {
            timedOut = true;
        }
        co_await pool.whenIdle();
        CO_VERIFY2(!(timedOut && pool.defaultTimeoutMs() == 0),
                   "the task timed out while the defaultTimeout property reads 0 (none)");
    }());
}

// Promises (class description, SubmitOptions::key, setKeyLimit): never more than maxWorkers()
// running, never more than keyLimit(key) running per key, every future finishes; under a burst of
// 1,000 tasks with priorities, keys and random cancels (queued and running).
void tst_Adversarial4::burstKeepsKeyAndWorkerLimits()
{
    run(
        []() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(4);
            pool.setMaxPerKey(2);
            pool.setKeyLimit(QStringLiteral("k1"), 1);
            int running = 0;
            int maxRunning = 0;
            std::map<QString, int> perKey;
            std::map<QString, int> maxPerKey;
            auto body = [&](std::stop_token token, QString key, int ms) -> QCoro::Task<int> {
                ++running;
                maxRunning = std::max(maxRunning, running);
                const int now = ++perKey[key];
                maxPerKey[key] = std::max(maxPerKey[key], now);
                // Counted out however the body ends: a cancelled sleep throws CancelledError.
                struct Leave {
                    int& running;
                    int& ofKey;
                    ~Leave()
                    {
                        --ofKey;
                        --running;
                    }
                } leave { running, perKey[key] };
                auto wait = TaskPool::sleep(std::chrono::milliseconds(ms), token);
                co_await wait;
                co_return ms;
            };
            std::mt19937 random(4);
            std::vector<TaskPool::Future<int>> futures;
            for (int i = 0; i < 1000; ++i) {
                const QString key = QStringLiteral("k%1").arg(random() % 4);
                futures.push_back(
                    pool.submit({ .priority = int(random() % 3), .key = key }, body, key, int(random() % 3)));
                if (random() % 5 == 0)
                    futures[random() % futures.size()].cancel();
            }
            for (int round = 0; round < 50; ++round) {
                co_await turns(1);
                futures[random() % futures.size()].cancel();
            }
            co_await pool.whenIdle();
            for (const auto& future : futures)
                CO_VERIFY(future.isFinished());
            CO_VERIFY2(maxRunning <= 4, qPrintable(QStringLiteral("%1 running at once").arg(maxRunning)));
            CO_VERIFY2(maxPerKey[QStringLiteral("k1")] <= 1, "key k1 (limit 1) ran twice at once");
            for (const auto& [key, count] : maxPerKey)
                CO_VERIFY2(count <= 2, qPrintable(key + QStringLiteral(" ran %1 at once").arg(count)));
        }(),
        60s);
}

// Promise (SubmitOptions::priority): "Higher starts first; equal priorities start in submission
// order", with random cancels of queued tasks in a burst of 1,000.
void tst_Adversarial4::burstKeepsPriorityOrder()
{
    run(
        []() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(1);
            pool.pause();
            std::vector<std::pair<int, int>> starts; // (priority, submission index)
            auto body = [&](int priority, int index) { starts.emplace_back(priority, index); };
            std::mt19937 random(7);
            std::vector<TaskPool::Future<void>> futures;
            for (int i = 0; i < 1000; ++i) {
                const int priority = int(random() % 5) - 2;
                futures.push_back(pool.submit({ .priority = priority }, body, priority, i));
                if (random() % 4 == 0)
                    futures[random() % futures.size()].cancel();
            }
            pool.resume();
            co_await pool.whenIdle();
            for (std::size_t i = 1; i < starts.size(); ++i)
                CO_VERIFY2(starts[i - 1].first > starts[i].first
                               || (starts[i - 1].first == starts[i].first && starts[i - 1].second < starts[i].second),
                           qPrintable(QStringLiteral("start %1 out of order").arg(i)));
            for (const auto& future : futures)
                CO_VERIFY(future.isFinished());
        }(),
        60s);
}

// Promise (setRateLimit): "At most rateLimit() tasks start in any window of rateWindow() (a strict
// sliding window)", with keys and random cancels. Starts are stamped in taskStarted, after the
// executor's own stamp, so a window is checked with 2 ms of slack in the executor's favour.
void tst_Adversarial4::burstKeepsRateWindow()
{
    // In virtual time: starts are stamped with the clock the rate window reads (a taskStarted slot
    // stamped with a real clock ran late on a loaded machine and saw 6 starts within 56 ms).
    run(
        []() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(4);
            auto clock = std::make_shared<TaskPool::ManualClock>();
            pool.setClock(clock);
            pool.setRateLimit(5, std::chrono::milliseconds(60));
            pool.setKeyLimit(QStringLiteral("k0"), 1);
            std::vector<TaskPool::Clock::TimePoint> starts;
            QObject::connect(&pool, &TaskPool::TaskPoolExecutor::taskStarted, &pool,
                             [&] { starts.push_back(clock->now()); });
            std::mt19937 random(9);
            std::vector<TaskPool::Future<int>> futures;
            for (int i = 0; i < 60; ++i) {
                futures.push_back(pool.submit({ .key = QStringLiteral("k%1").arg(random() % 3) }, delayedMul<5>, i, 1));
                if (random() % 6 == 0)
                    futures[random() % futures.size()].cancel();
            }
            while (!isIdle(pool)) {
                clock->advance(std::chrono::milliseconds(2));
                co_await sleep(std::chrono::milliseconds(1)); // the running tasks' real timers
            }
            CO_VERIFY(starts.size() > 5);
            for (std::size_t i = 5; i < starts.size(); ++i)
                CO_VERIFY2(starts[i] - starts[i - 5] >= std::chrono::milliseconds(60),
                           qPrintable(QStringLiteral("6 starts within %1 ms of virtual time")
                                          .arg(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                   starts[i] - starts[i - 5])
                                                   .count())));
        }(),
        60s);
}

// Promise (clear(), pause()): clear() cancels every queued task; a slot of pausedChanged may do
// anything, here clear() and resume() inside pause()'s own emission; what is submitted later runs.
void tst_Adversarial4::pausedChangedSlotClears()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(1);
        Gate gate;
        auto first = pool.submit(gated, &gate, 1);
        auto queued = pool.submit(amul, 2, 3);
        co_await until([&] { return pool.activeCount() == 1; });
        int cleared = -1;
        QObject::connect(&pool, &TaskPool::TaskPoolExecutor::pausedChanged, &pool, [&](bool paused) {
            if (paused) {
                cleared = pool.clear();
                pool.resume();
            }
        });
        pool.pause();
        CO_COMPARE(cleared, 1);
        CO_VERIFY(queued.isCanceled());
        CO_VERIFY(!pool.isPaused());
        auto later = pool.submit(amul, 3, 4);
        gate.open();
        CO_COMPARE(co_await first, 1);
        CO_COMPARE(co_await later, 12);
    }());
}

// Promise (a slot may delete the executor; destroying it lets queued work complete): a
// rateLimitedChanged(true) slot deletes the executor; every future must still finish.
void tst_Adversarial4::rateLimitedChangedSlotDeletesTheExecutor()
{
    auto* pool = new TaskPool::TaskPoolExecutor(2);
    pool->setRateLimit(1, std::chrono::milliseconds(30));
    QObject::connect(pool, &TaskPool::TaskPoolExecutor::rateLimitedChanged, pool, [pool](bool limited) {
        if (limited)
            delete pool;
    });
    std::vector<QFuture<int>> futures;
    for (int i = 0; i < 4; ++i)
        futures.push_back(pool->submit(amul, i, 2));
    QVERIFY2(nestedLoopUntil([&] {
                 return std::all_of(futures.begin(), futures.end(), [](const auto& f) { return f.isFinished(); });
             }),
             "a future of an executor deleted in rateLimitedChanged never finished");
    for (int i = 0; i < 4; ++i)
        QCOMPARE(futures[std::size_t(i)].result(), 2 * i);
}

// Promise (SubmitOptions::timeout; TaskPool::sleep): a 0 ms timeout fails the future with
// TimeoutError and stops the token; a TaskPool::sleep on it ends (CancelledError) and frees the slot.
void tst_Adversarial4::zeroTimeoutStopsSleep()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(1);
        bool stopped = false;
        auto body = [&](std::stop_token token) -> QCoro::Task<int> {
            auto nap = TaskPool::sleep(std::chrono::seconds(30), token);
            try {
                co_await nap;
            } catch (const TaskPool::CancelledError&) {
                stopped = true;
                throw;
            }
            co_return 1;
        };
        auto future = pool.submit({ .timeout = std::chrono::milliseconds(0) }, body);
        CO_VERIFY_THROWS(co_await future, TaskPool::TimeoutError);
        co_await pool.whenIdle();
        CO_VERIFY(stopped);
        auto next = pool.submit(amul, 2, 2);
        CO_COMPARE(co_await next, 4);
    }());
}

// Promise (map(): "destroying it before the end cancels them all"), with a stop-token callable:
// the running items are stopped, the queued never start, the executor goes idle.
void tst_Adversarial4::mapWithStopTokenAbandoned()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(3);
        int started = 0;
        int stopped = 0;
        auto fn = [&](std::stop_token token, int x) -> QCoro::Task<int> {
            ++started;
            if (x == 0)
                co_return 0;
            auto wait = TaskPool::untilCancelled(token);
            co_await wait;
            ++stopped;
            co_return x;
        };
        {
            auto results = pool.mapUnordered({ .bufferSize = 5 }, fn, std::views::iota(0, 1000));
            auto it = co_await results.begin();
            CO_COMPARE((*it).index, 0u);
            co_await turns(3);
        }
        co_await pool.whenIdle();
        CO_COMPARE(stopped, started - 1);
        CO_VERIFY2(started <= 6, qPrintable(QStringLiteral("%1 items started").arg(started)));
    }());
}

// Promise (Future::within): "Once context is destroyed, the awaiting coroutine resumes ... with
// CancelledError instead of the outcome, also when the future settled in between". Here the
// context is destroyed by a taskFinished slot, inside the future's settlement.
void tst_Adversarial4::withinContextDestroyedBySettlement()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(1);
        auto* context = new QObject;
        QObject::connect(&pool, &TaskPool::TaskPoolExecutor::taskFinished, context, [context] { delete context; });
        auto future = pool.submit(amul, 2, 3);
        bool cancelled = false;
        try {
            auto within = future.within(context);
            const int value = co_await within;
            Q_UNUSED(value);
        } catch (const TaskPool::CancelledError&) {
            cancelled = true;
        }
        CO_VERIFY2(cancelled, "code after co_await within() ran for a destroyed context");
    }());
}

// Promise (a slot, or a stop callback run by the executor, may delete the executor; every future
// still finishes): the stop callback run by a timeout deletes the executor.
void tst_Adversarial4::stopCallbackDeletesTheExecutor()
{
    auto* pool = new TaskPool::TaskPoolExecutor(2);
    QPointer<TaskPool::TaskPoolExecutor> guard(pool);
    auto body = [guard](std::stop_token token) -> QCoro::Task<int> {
        std::stop_callback onStop(token, [guard] { delete guard.data(); });
        auto wait = TaskPool::untilCancelled(token);
        co_await wait;
        co_return 1;
    };
    QFuture<int> timed = pool->submit({ .timeout = std::chrono::milliseconds(5) }, body);
    QFuture<int> other = pool->submit(amul, 3, 3);
    QFuture<int> queued = pool->submit(amul, 4, 4);
    QVERIFY(nestedLoopUntil([&] { return timed.isFinished() && other.isFinished() && queued.isFinished(); }));
    QVERIFY(guard.isNull());
    QCOMPARE(queued.result(), 16);
}

// Promise (clear(); a slot may shut down): a taskCancelled slot shuts the executor down (cancelling
// the rest) inside clear(); every future ends cancelled and clear() counts them all.
void tst_Adversarial4::taskCancelledSlotShutsDownInsideClear()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(1);
        pool.pause();
        std::vector<TaskPool::Future<int>> futures;
        for (int i = 0; i < 10; ++i)
            futures.push_back(pool.submit({ .priority = i % 3, .key = QStringLiteral("k%1").arg(i % 2) }, amul, i, 1));
        QObject::connect(&pool, &TaskPool::TaskPoolExecutor::taskCancelled, &pool,
                         [&] { pool.shutdown({ .wait = false, .cancelFutures = true }); });
        CO_COMPARE(pool.clear(), 10);
        for (const auto& future : futures)
            CO_VERIFY(future.isCanceled());
        CO_COMPARE(pool.pendingCount(), 0);
    }());
}

// Promise (executor.h, class description): a slot may delete the executor ("a slot may delete the
// executor" is guarded everywhere else: setPaused, setRateLimit, jobCancelled, dropAllQueued...).
// Broken: ExecutorCore::clear() calls dropAllQueued() (which keeps the core only for its own
// duration) and then releaseIdleWorkers() on the core without holding it. A taskCancelled slot that
// deletes a paused executor during clear() frees the last owner of the core (the idle worker's
// frame, destroyed by the shutdown): heap-use-after-free in releaseIdleWorkers() under ASan.
void tst_Adversarial4::clearWhoseSlotDeletesTheExecutor()
{
    auto* pool = new TaskPool::TaskPoolExecutor(1);
    pool->pause();
    QFuture<int> future = pool->submit(amul, 2, 3);
    QVERIFY(nestedLoopUntil([&] { return pool->workerCount() == 1; }));
    QCoreApplication::processEvents(); // the worker parks
    QPointer<TaskPool::TaskPoolExecutor> guard(pool);
    QObject::connect(pool, &TaskPool::TaskPoolExecutor::taskCancelled, pool, [pool] { delete pool; });
    QCOMPARE(pool->clear(), 1);
    QVERIFY(guard.isNull());
    QVERIFY(future.isCanceled());
}

// Promise (a slot may delete the executor): an idle() slot deletes it; the process must survive
// (under ASan) and a later event loop turn must not touch the freed core.
void tst_Adversarial4::idleSlotDeletesTheExecutor()
{
    auto* pool = new TaskPool::TaskPoolExecutor(2);
    QPointer<TaskPool::TaskPoolExecutor> guard(pool);
    QObject::connect(pool, &TaskPool::TaskPoolExecutor::idle, pool, [pool] { delete pool; });
    QFuture<int> a = pool->submit(amul, 2, 3);
    QFuture<int> b = pool->submit(amul, 3, 3);
    QVERIFY(nestedLoopUntil([&] { return guard.isNull(); }));
    QCOMPARE(a.result(), 6);
    QCOMPARE(b.result(), 9);
    QVERIFY(nestedLoopUntil([&] { return true; }));
}

QTEST_GUILESS_MAIN(tst_Adversarial4)
#include "tst_adversarial4.moc"
