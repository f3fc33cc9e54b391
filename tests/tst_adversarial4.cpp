// SPDX-License-Identifier: MIT
// Fourth adversarial review: each test breaks one documented promise (named in its comment) of the
// cancellation and scheduling controls (contexts, cross-thread cancels, re-entrant slots, timeouts,
// keys). A test here fails (or ends the process under ASan) while the promise is broken.
#include "testutil.h"

#include <taskpool/cancel.h>

#include <QPointer>

#include <atomic>
#include <map>
#include <memory>
#include <random>
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
    // These end the process under ASan (the error they show), so they come last.
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
                auto wait = TaskPool::sleep(std::chrono::milliseconds(ms), token);
                co_await wait;
                --perKey[key];
                --running;
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
    run(
        []() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(4);
            pool.setRateLimit(5, std::chrono::milliseconds(60));
            pool.setKeyLimit(QStringLiteral("k0"), 1);
            std::vector<std::chrono::steady_clock::time_point> starts;
            QObject::connect(&pool, &TaskPool::TaskPoolExecutor::taskStarted, &pool,
                             [&] { starts.push_back(std::chrono::steady_clock::now()); });
            std::mt19937 random(9);
            std::vector<TaskPool::Future<int>> futures;
            for (int i = 0; i < 60; ++i) {
                futures.push_back(pool.submit({ .key = QStringLiteral("k%1").arg(random() % 3) }, delayedMul<5>, i, 1));
                if (random() % 6 == 0)
                    futures[random() % futures.size()].cancel();
            }
            co_await pool.whenIdle();
            for (std::size_t i = 5; i < starts.size(); ++i)
                CO_VERIFY2(
                    starts[i] - starts[i - 5] >= std::chrono::milliseconds(58),
                    qPrintable(QStringLiteral("6 starts within %1 us")
                                   .arg(std::chrono::duration_cast<std::chrono::microseconds>(starts[i] - starts[i - 5])
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

QTEST_GUILESS_MAIN(tst_Adversarial4)
#include "tst_adversarial4.moc"
