// SPDX-License-Identifier: MIT
// The scheduling controls: priorities, pause/resume, clear(), the strict sliding-window rate limit,
// per-key limits, pendingBelow()/whenIdle(), bad input, their interplay, and re-entrant slots on
// their emitted. Start order is observed in the task bodies (their synchronous start), with
// maxWorkers 1 and a gate holding the worker so that the queue builds up first.
#include "testutil.h"

#include <QHash>
#include <QPointer>
#include <QSignalSpy>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <vector>

using namespace TestUtil;
using TaskPool::Future;
using TaskPool::SubmitOptions;
using TaskPool::TaskPoolExecutor;
using Clock = std::chrono::steady_clock;

namespace {

//! What the task bodies saw: the order and the time of their starts, and per-key concurrency.
struct Log {
    std::vector<int> order;
    std::vector<Clock::time_point> times;
    QHash<QString, int> running;
    QHash<QString, int> most;
    int bodies = 0;

    void started(int tag, const QString& key)
    {
        times.push_back(Clock::now());
        order.push_back(tag);
        ++bodies;
        const int now = ++running[key];
        most[key] = std::max(most.value(key), now);
    }
};

//! Records its start, waits for \a gate (if any) or one event-loop turn, and returns \a tag.
QCoro::Task<int> body(Log* log, int tag, QString key, Gate* gate)
{
    log->started(tag, key);
    if (gate)
        co_await *gate;
    else
        co_await TaskPool::detail::Yield {};
    --log->running[key];
    co_return tag;
}

//! Records its start and returns \a tag at once.
int instant(Log* log, int tag)
{
    log->started(tag, {});
    --log->running[QString()];
    return tag;
}

//! True when no window of length \a window holds more than \a limit of the sorted \a times.
bool windowHolds(const std::vector<Clock::time_point>& times, int limit, Clock::duration window, QString* worst)
{
    int most = 0;
    bool holds = true;
    for (std::size_t i = 0; i + std::size_t(limit) < times.size(); ++i) {
        if (times[i + std::size_t(limit)] - times[i] < window) {
            holds = false;
            *worst = QStringLiteral("starts %1 and %2 are %3 us apart")
                         .arg(i)
                         .arg(i + std::size_t(limit))
                         .arg(std::chrono::duration_cast<std::chrono::microseconds>(times[i + std::size_t(limit)]
                                                                                    - times[i])
                                  .count());
        }
    }
    for (std::size_t i = 0, j = 0; i < times.size(); ++i) {
        while (times[i] - times[j] >= window)
            ++j;
        most = std::max(most, int(i - j + 1));
    }
    if (holds)
        *worst = QStringLiteral("at most %1 starts in a window").arg(most);
    return holds;
}

//! The pool reads its clock before the body records its start: only a window shorter by this
//! much is sure to be honoured by the times the bodies record.
constexpr auto slack = 2ms;

QCoro::Task<void> awaitAll(QList<Future<int>>& futures)
{
    for (auto& future : futures) {
        try {
            co_await future;
        } catch (...) {
        }
    }
}

} // namespace

class tst_Scheduling : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // ---- priorities -------------------------------------------------------------------------

    void higherPriorityFirstFifoAmongEquals()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate hold;
            auto blocker = co_await occupy(pool, &hold);
            Log log;
            const int priorities[] = { 0, 5, -3, 5, 10, 0, -3, 10, 1, -100, 0, 5 };
            QList<Future<int>> futures;
            for (int i = 0; i < int(std::size(priorities)); ++i)
                futures.append(pool.submit({ .priority = priorities[i] }, instant, &log, i));
            CO_COMPARE(pool.pendingCount(), int(std::size(priorities)));
            hold.open();
            co_await awaitAll(futures);
            std::vector<int> expected(std::size(priorities));
            for (int i = 0; i < int(expected.size()); ++i)
                expected[std::size_t(i)] = i;
            std::stable_sort(expected.begin(), expected.end(),
                             [&](int a, int b) { return priorities[a] > priorities[b]; });
            CO_VERIFY(log.order == expected);
        }());
    }

    void priorityOrderSeenByTaskStarted()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate hold;
            auto blocker = co_await occupy(pool, &hold);
            QList<quint64> started;
            connect(&pool, &TaskPoolExecutor::taskStarted, &pool, [&](quint64 id) { started.append(id); });
            auto low = pool.submit({ .priority = -1 }, [] { return 1; });
            auto normal = pool.submit([] { return 2; });
            auto high = pool.submit({ .priority = 1 }, [] { return 3; });
            hold.open();
            co_await low;
            CO_COMPARE(started, (QList<quint64> { high.taskId(), normal.taskId(), low.taskId() }));
        }());
    }

    // A task submitted later with a higher priority overtakes every queued one, also while the
    // queue is being worked through.
    void laterHigherPriorityOvertakes()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Log log;
            Gate first;
            QList<Future<int>> futures;
            futures.append(pool.submit(body, &log, 0, QString(), &first));
            for (int i = 1; i <= 3; ++i)
                futures.append(pool.submit(body, &log, i, QString(), nullptr));
            co_await until([&] { return log.bodies == 1; });
            futures.append(pool.submit({ .priority = 1 }, body, &log, 4, QString(), nullptr));
            first.open();
            co_await awaitAll(futures);
            CO_VERIFY(log.order == (std::vector<int> { 0, 4, 1, 2, 3 }));
        }());
    }

    // ---- pause and resume -------------------------------------------------------------------

    void pauseHoldsQueuedTasks()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            QSignalSpy paused(&pool, &TaskPoolExecutor::pausedChanged);
            CO_VERIFY(!pool.isPaused());
            pool.pause();
            pool.pause(); // no change: no signal
            CO_VERIFY(pool.isPaused());
            CO_COMPARE(paused.count(), 1);
            CO_COMPARE(paused.at(0).at(0).toBool(), true);
            CO_COMPARE(pool.property("paused").toBool(), true);
            Log log;
            Gate gate;
            QList<Future<int>> futures;
            for (int i = 0; i < 5; ++i)
                futures.append(pool.submit(body, &log, i, QString(), &gate));
            co_await turns(10);
            CO_COMPARE(log.bodies, 0);
            CO_COMPARE(pool.activeCount(), 0);
            CO_COMPARE(pool.pendingCount(), 5);
            pool.resume();
            CO_COMPARE(paused.count(), 2);
            CO_COMPARE(paused.at(1).at(0).toBool(), false);
            // Up to maxWorkers start.
            co_await until(&pool, &TaskPoolExecutor::activeCountChanged, [&] { return pool.activeCount() == 2; });
            co_await turns(3);
            CO_COMPARE(log.bodies, 2);
            CO_COMPARE(pool.pendingCount(), 3);
            gate.open();
            co_await awaitAll(futures);
            CO_COMPARE(log.bodies, 5);
        }());
    }

    void runningTasksGoOnWhilePaused()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Log log;
            Gate gate;
            auto running = pool.submit(body, &log, 0, QString(), &gate);
            auto queued = pool.submit(body, &log, 1, QString(), nullptr);
            co_await until([&] { return log.bodies == 1; });
            pool.setPaused(true);
            gate.open();
            CO_COMPARE(co_await running, 0);
            co_await turns(10);
            CO_COMPARE(log.bodies, 1);
            CO_VERIFY(!queued.done());
            CO_COMPARE(pool.pendingCount(), 1);
            pool.setProperty("paused", false); // the property's WRITE
            CO_COMPARE(co_await queued, 1);
        }());
    }

    // ---- clear() ----------------------------------------------------------------------------

    void clearCancelsQueuedOnly()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            pool.setKeyLimit(QStringLiteral("a"), 1);
            Log log;
            Gate hold;
            auto running = pool.submit({ .key = QStringLiteral("a") }, body, &log, 0, QStringLiteral("a"), &hold);
            co_await until([&] { return log.bodies == 1; });
            QList<quint64> cancelled;
            connect(&pool, &TaskPoolExecutor::taskCancelled, &pool, [&](quint64 id) { cancelled.append(id); });
            QList<Future<int>> queued;
            QList<quint64> ids;
            const SubmitOptions options[] = { {},
                                              { .priority = 3 },
                                              { .priority = -2 },
                                              { .key = QStringLiteral("a") },
                                              { .priority = 7, .key = QStringLiteral("b") } };
            for (int i = 0; i < int(std::size(options)); ++i) {
                queued.append(pool.submit(options[i], body, &log, i + 1, options[i].key, nullptr));
                ids.append(queued.back().taskId());
            }
            CO_COMPARE(pool.pendingCount(), 5);
            CO_COMPARE(pool.clear(), 5);
            CO_COMPARE(pool.pendingCount(), 0);
            for (auto& future : queued) {
                CO_VERIFY(future.done());
                CO_VERIFY(future.cancelled());
                CO_VERIFY_THROWS(co_await future, TaskPool::CancelledError);
            }
            std::sort(cancelled.begin(), cancelled.end());
            CO_COMPARE(cancelled, ids);
            CO_COMPARE(pool.clear(), 0);
            // The running task goes on; the pool still takes work, the key too.
            CO_VERIFY(!running.done());
            CO_COMPARE(pool.activeCount(), 1);
            auto later = pool.submit({ .key = QStringLiteral("a") }, body, &log, 9, QStringLiteral("a"), nullptr);
            hold.open();
            CO_COMPARE(co_await running, 0);
            CO_COMPARE(co_await later, 9);
            CO_VERIFY(log.order == (std::vector<int> { 0, 9 }));
            CO_VERIFY(!pool.isShutdown());
        }());
    }

    // ---- rate limit -------------------------------------------------------------------------

    void rateLimitIsAStrictSlidingWindow_data()
    {
        QTest::addColumn<int>("workers");
        QTest::addColumn<int>("limit");
        QTest::addColumn<int>("windowMs");
        QTest::addColumn<bool>("suspending");
        QTest::newRow("1 worker, 3 per 60 ms") << 1 << 3 << 60 << false;
        QTest::newRow("8 workers, 5 per 80 ms") << 8 << 5 << 80 << false;
        QTest::newRow("8 workers, 5 per 80 ms, suspending bodies") << 8 << 5 << 80 << true;
        QTest::newRow("4 workers, 1 per 30 ms") << 4 << 1 << 30 << true;
    }
    void rateLimitIsAStrictSlidingWindow()
    {
        QFETCH(int, workers);
        QFETCH(int, limit);
        QFETCH(int, windowMs);
        QFETCH(bool, suspending);
        run(
            [](int workers, int limit, std::chrono::milliseconds window, bool suspending) -> QCoro::Task<void> {
                TaskPoolExecutor pool(workers);
                QSignalSpy changed(&pool, &TaskPoolExecutor::rateLimitChanged);
                pool.setRateLimit(limit, window);
                CO_COMPARE(changed.count(), 1);
                CO_COMPARE(pool.rateLimit(), limit);
                CO_COMPARE(pool.rateWindow(), window);
                CO_COMPARE(pool.property("rateWindow").toInt(), int(window.count()));
                QSignalSpy limited(&pool, &TaskPoolExecutor::rateLimitedChanged);
                Log log;
                QList<Future<int>> futures;
                for (int i = 0; i < 4 * limit + 2; ++i)
                    futures.append(suspending ? pool.submit(body, &log, i, QString(), nullptr)
                                              : pool.submit(instant, &log, i));
                co_await awaitAll(futures);
                QString worst;
                CO_VERIFY2(windowHolds(log.times, limit, window - slack, &worst), qPrintable(worst));
                // Held back, then released: true while held, false once nothing waits.
                CO_VERIFY(limited.count() >= 2);
                CO_COMPARE(limited.first().at(0).toBool(), true);
                CO_COMPARE(limited.last().at(0).toBool(), false);
                CO_VERIFY(!pool.isRateLimited());
                for (int i = 1; i < limited.count(); ++i)
                    CO_VERIFY(limited.at(i).at(0).toBool() != limited.at(i - 1).at(0).toBool());
            }(workers, limit, std::chrono::milliseconds(windowMs), suspending),
            20s);
    }

    void rateLimitSameValuesNoSignal()
    {
        TaskPoolExecutor pool(1);
        QSignalSpy changed(&pool, &TaskPoolExecutor::rateLimitChanged);
        QCOMPARE(pool.rateLimit(), 0);
        pool.setRateLimit(0);
        QCOMPARE(changed.count(), 0);
        pool.setRateLimit(10, 1s);
        pool.setRateLimit(10, 1s);
        QCOMPARE(changed.count(), 1);
        pool.setRateLimit(10, 2s);
        QCOMPARE(changed.count(), 2);
        QCOMPARE(pool.rateWindow(), std::chrono::milliseconds(2s));
        pool.setRateLimit(0);
        QCOMPARE(changed.count(), 3);
        QCOMPARE(pool.rateLimit(), 0);
    }

    void removingTheRateLimitReleasesAtOnce()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(4);
            pool.setRateLimit(1, 1h);
            Log log;
            QList<Future<int>> futures;
            for (int i = 0; i < 6; ++i)
                futures.append(pool.submit(instant, &log, i));
            co_await until(&pool, &TaskPoolExecutor::rateLimitedChanged, [&] { return pool.isRateLimited(); });
            CO_COMPARE(log.bodies, 1);
            CO_COMPARE(pool.pendingCount(), 5);
            pool.setRateLimit(0);
            CO_VERIFY(!pool.isRateLimited());
            co_await awaitAll(futures); // the watchdog (10 s) is far below the window
            CO_COMPARE(log.bodies, 6);
        }());
    }

    // The flag says the rate holds tasks back: not while only maxWorkers does.
    void rateLimitedFalseWhileOnlyMaxWorkersHolds()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            pool.setRateLimit(1, 40ms);
            Log log;
            Gate gate;
            QList<Future<int>> futures;
            for (int i = 0; i < 3; ++i)
                futures.append(pool.submit(body, &log, i, QString(), &gate));
            co_await until([&] { return pool.isRateLimited(); });
            co_await until([&] { return log.bodies == 2; }); // the second start, a window later
            co_await sleep(100ms); // the window of that start has passed: only maxWorkers holds now
            CO_COMPARE(pool.pendingCount(), 1);
            CO_VERIFY(!pool.isRateLimited());
            gate.open();
            co_await awaitAll(futures);
            CO_VERIFY(!pool.isRateLimited());
        }());
    }

    // ... nor while only a saturated key does.
    void rateLimitedFalseWhileOnlyAKeyHolds()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            pool.setKeyLimit(QStringLiteral("a"), 1);
            pool.setRateLimit(1, 40ms);
            Log log;
            Gate gate;
            QList<Future<int>> futures;
            futures.append(pool.submit({ .key = QStringLiteral("a") }, body, &log, 0, QStringLiteral("a"), &gate));
            futures.append(pool.submit(body, &log, 1, QString(), &gate));
            futures.append(pool.submit({ .key = QStringLiteral("a") }, body, &log, 2, QStringLiteral("a"), &gate));
            co_await until([&] { return log.bodies == 2; });
            co_await sleep(100ms);
            CO_COMPARE(log.bodies, 2);
            CO_COMPARE(pool.pendingCount(), 1); // held by its key
            CO_VERIFY(!pool.isRateLimited());
            gate.open();
            co_await awaitAll(futures);
        }());
    }

    void rateLimitAndRaisingMaxWorkers()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            pool.setRateLimit(3, 60ms);
            Log log;
            QList<Future<int>> futures;
            for (int i = 0; i < 15; ++i)
                futures.append(pool.submit(body, &log, i, QString(), nullptr));
            co_await until([&] { return log.bodies == 1; });
            pool.setMaxWorkers(8);
            co_await until([&] { return log.bodies == 6; });
            pool.setMaxWorkers(16);
            co_await awaitAll(futures);
            QString worst;
            CO_VERIFY2(windowHolds(log.times, 3, 60ms - slack, &worst), qPrintable(worst));
            CO_VERIFY(!pool.isRateLimited());
        }());
    }

    void rateLimitAndPause()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(4);
            pool.setRateLimit(2, 60ms);
            Log log;
            QList<Future<int>> futures;
            for (int i = 0; i < 8; ++i)
                futures.append(pool.submit(instant, &log, i));
            co_await until([&] { return pool.isRateLimited(); });
            CO_COMPARE(log.bodies, 2);
            pool.pause();
            // Paused, the queue waits for resume(), not for the rate.
            CO_VERIFY(!pool.isRateLimited());
            co_await sleep(150ms);
            CO_COMPARE(log.bodies, 2);
            CO_VERIFY(!pool.isRateLimited());
            pool.resume();
            co_await awaitAll(futures);
            QString worst;
            CO_VERIFY2(windowHolds(log.times, 2, 60ms - slack, &worst), qPrintable(worst));
            CO_VERIFY(!pool.isRateLimited());
        }());
    }

    // ---- bad input --------------------------------------------------------------------------

    void badInputThrowsAndChangesNothing()
    {
        TaskPoolExecutor pool(2);
        pool.setRateLimit(5, 200ms);
        pool.setKeyLimit(QStringLiteral("a"), 3);
        pool.setMaxPerKey(4);
        QSignalSpy rate(&pool, &TaskPoolExecutor::rateLimitChanged);
        QSignalSpy perKey(&pool, &TaskPoolExecutor::maxPerKeyChanged);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, pool.setRateLimit(-1));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, pool.setRateLimit(-1, 0ms));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, pool.setRateLimit(3, 0ms));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, pool.setRateLimit(3, -5ms));
        QCOMPARE(pool.rateLimit(), 5);
        QCOMPARE(pool.rateWindow(), std::chrono::milliseconds(200));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, pool.setKeyLimit(QStringLiteral("a"), 0));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, pool.setKeyLimit(QStringLiteral("a"), -1));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, pool.setKeyLimit(QStringLiteral("b"), 0));
        QCOMPARE(pool.keyLimit(QStringLiteral("a")), 3);
        QCOMPARE(pool.keyLimit(QStringLiteral("b")), 4);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, pool.setMaxPerKey(0));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, pool.setMaxPerKey(-2));
        QCOMPARE(pool.maxPerKey(), 4);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, (void)pool.pendingBelow(0));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, (void)pool.pendingBelow(-1));
        bool ran = false;
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument,
                                 (void)pool.submit(
                                     { .timeout = -1ms }, [](bool* ran) { *ran = true; }, &ran));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument,
                                 (void)pool.submit({ .timeout = -1ms, .key = QStringLiteral("a") }, amul, 2, 3));
        QCOMPARE(pool.pendingCount(), 0);
        QCOMPARE(rate.count(), 0);
        QCOMPARE(perKey.count(), 0);
        QCoreApplication::processEvents();
        QVERIFY(!ran);
        // Zero starts need no window: it removes the limit.
        pool.setRateLimit(0, 0ms);
        QCOMPARE(pool.rateLimit(), 0);
    }

    // ---- per-key limits ---------------------------------------------------------------------

    void neverMoreThanTheKeyLimitPerKey()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(8);
            pool.setKeyLimit(QStringLiteral("a"), 2);
            pool.setKeyLimit(QStringLiteral("b"), 1);
            pool.setMaxPerKey(3);
            CO_COMPARE(pool.keyLimit(QStringLiteral("c")), 3);
            Log log;
            QList<Future<int>> futures;
            const QString keys[] = { QStringLiteral("a"), QStringLiteral("b"), QStringLiteral("c"), QString() };
            for (int i = 0; i < 80; ++i) {
                const QString& key = keys[i % 4];
                futures.append(pool.submit({ .key = key }, body, &log, i, key, nullptr));
            }
            co_await awaitAll(futures);
            CO_COMPARE(log.bodies, 80);
            CO_COMPARE(log.most.value(QStringLiteral("a")), 2);
            CO_COMPARE(log.most.value(QStringLiteral("b")), 1);
            CO_COMPARE(log.most.value(QStringLiteral("c")), 3);
        }());
    }

    void saturatedKeyDoesNotBlockOthers()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            pool.setKeyLimit(QStringLiteral("host1"), 1);
            Log log;
            Gate gate;
            const QString host1 = QStringLiteral("host1"), host2 = QStringLiteral("host2");
            auto first = pool.submit({ .key = host1 }, body, &log, 0, host1, &gate);
            co_await until([&] { return log.bodies == 1; });
            QList<Future<int>> held;
            for (int i = 1; i <= 3; ++i)
                held.append(pool.submit({ .priority = 5, .key = host1 }, body, &log, i, host1, nullptr));
            auto other = pool.submit({ .key = host2 }, body, &log, 10, host2, nullptr);
            auto plain = pool.submit(body, &log, 11, QString(), nullptr);
            // Both run to their end while host1's queued tasks (of a higher priority) wait.
            CO_COMPARE(co_await other, 10);
            CO_COMPARE(co_await plain, 11);
            CO_VERIFY(!first.done());
            for (auto& future : held)
                CO_VERIFY(!future.done());
            CO_COMPARE(pool.pendingCount(), 3);
            gate.open();
            co_await awaitAll(held);
            CO_VERIFY(log.order == (std::vector<int> { 0, 10, 11, 1, 2, 3 }));
            CO_COMPARE(log.most.value(host1), 1);
        }());
    }

    void raisingAKeyLimitReleasesHeldTasks()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(4);
            const QString key = QStringLiteral("k");
            pool.setKeyLimit(key, 1);
            Log log;
            Gate gate;
            QList<Future<int>> futures;
            for (int i = 0; i < 5; ++i)
                futures.append(pool.submit({ .key = key }, body, &log, i, key, &gate));
            co_await until([&] { return log.bodies == 1; });
            co_await turns(5);
            CO_COMPARE(log.bodies, 1);
            pool.setKeyLimit(key, 3);
            co_await until([&] { return log.bodies == 3; });
            co_await turns(5);
            CO_COMPARE(log.running.value(key), 3);
            // maxPerKey does not override a key's own limit.
            pool.setMaxPerKey(1);
            CO_COMPARE(pool.keyLimit(key), 3);
            pool.setMaxPerKey(10); // nor does raising it
            co_await turns(5);
            CO_COMPARE(log.bodies, 3);
            gate.open();
            co_await awaitAll(futures);
            CO_COMPARE(log.most.value(key), 3);
        }());
    }

    void raisingMaxPerKeyReleasesHeldTasks()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(6);
            QSignalSpy changed(&pool, &TaskPoolExecutor::maxPerKeyChanged);
            pool.setMaxPerKey(1);
            pool.setMaxPerKey(1);
            CO_COMPARE(changed.count(), 1);
            Log log;
            Gate gate;
            QList<Future<int>> futures;
            for (int i = 0; i < 6; ++i) {
                const QString key = i % 2 ? QStringLiteral("x") : QStringLiteral("y");
                futures.append(pool.submit({ .key = key }, body, &log, i, key, &gate));
            }
            co_await until([&] { return log.bodies == 2; });
            co_await turns(5);
            CO_COMPARE(log.bodies, 2);
            pool.setMaxPerKey(3);
            co_await until([&] { return log.bodies == 6; });
            gate.open();
            co_await awaitAll(futures);
        }());
    }

    void prioritiesWithKeyLimits()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            const QString a = QStringLiteral("a"), b = QStringLiteral("b");
            pool.setKeyLimit(a, 1);
            Log log;
            Gate holdA, holdX;
            auto runningA = pool.submit({ .key = a }, body, &log, 100, a, &holdA);
            auto runningX = pool.submit(body, &log, 101, QString(), &holdX);
            co_await until([&] { return log.bodies == 2; });
            QList<Future<int>> futures;
            futures.append(pool.submit({ .priority = 10, .key = a }, body, &log, 1, a, nullptr));
            futures.append(pool.submit({ .priority = 5, .key = b }, body, &log, 2, b, nullptr));
            futures.append(pool.submit({ .priority = 10, .key = a }, body, &log, 3, a, nullptr));
            futures.append(pool.submit({ .priority = 0 }, body, &log, 4, QString(), nullptr));
            futures.append(pool.submit({ .priority = 5, .key = b }, body, &log, 5, b, nullptr));
            futures.append(pool.submit({ .priority = -1, .key = a }, body, &log, 6, a, nullptr));
            holdX.open(); // one slot: the highest priority among the keys that are not saturated
            co_await until([&] { return log.bodies == 5; });
            co_await turns(5);
            CO_VERIFY(log.order == (std::vector<int> { 100, 101, 2, 5, 4 }));
            holdA.open(); // a's queued tasks by priority, then submission order
            co_await awaitAll(futures);
            CO_VERIFY(log.order == (std::vector<int> { 100, 101, 2, 5, 4, 1, 3, 6 }));
        }());
    }

    // ---- pendingBelow() and whenIdle() ------------------------------------------------------

    void pendingBelowBoundsAProducer()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(4);
            constexpr int bound = 8;
            Log log;
            QList<Future<int>> futures;
            int mostQueued = 0, suspended = 0;
            for (int i = 0; i < 1000; ++i) {
                auto below = pool.pendingBelow(bound);
                suspended += below.isReady() ? 0 : 1;
                co_await below;
                CO_VERIFY2(pool.pendingCount() < bound, qPrintable(QString::number(pool.pendingCount())));
                futures.append(pool.submit(body, &log, i, QString(), nullptr));
                mostQueued = std::max(mostQueued, pool.pendingCount());
            }
            CO_VERIFY(mostQueued <= bound);
            CO_VERIFY(suspended > 0); // the producer was actually held back
            co_await awaitAll(futures);
            CO_COMPARE(log.bodies, 1000);
        }());
    }

    void pendingBelowAndWhenIdleAtOnce()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto idle = pool.whenIdle();
            CO_VERIFY(idle.isReady());
            auto below = pool.pendingBelow(1);
            CO_VERIFY(below.isReady());
            Gate gate;
            auto running = pool.submit(waitFor, &gate);
            auto queued = pool.submit(waitFor, &gate);
            CO_COMPARE(pool.pendingCount(), 2);
            CO_VERIFY(pool.pendingBelow(3).isReady());
            auto notBelow = pool.pendingBelow(2);
            CO_VERIFY(!notBelow.isReady());
            co_await notBelow; // once a worker took the first
            CO_VERIFY(pool.pendingCount() < 2);
            co_await until([&] { return pool.activeCount() == 1; });
            auto notIdle = pool.whenIdle();
            CO_VERIFY(!notIdle.isReady());
            gate.open();
            co_await notIdle;
            CO_VERIFY(running.done() && queued.done());
            CO_COMPARE(pool.activeCount(), 0);
            CO_COMPARE(pool.pendingCount(), 0);
        }());
    }

    void whenIdleAfterTheLastTask()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate gates[4];
            QList<Future<int>> futures;
            for (auto& gate : gates)
                futures.append(pool.submit(waitFor, &gate));
            bool idle = false;
            auto waiting = [](TaskPoolExecutor* pool, bool* idle) -> QCoro::Task<void> {
                co_await pool->whenIdle();
                *idle = true;
            }(&pool, &idle);
            for (int i = 0; i < 3; ++i) {
                gates[i].open();
                co_await futures[i];
                co_await turns(3);
                CO_VERIFY(!idle);
            }
            gates[3].open();
            co_await waiting;
            CO_VERIFY(idle);
            CO_VERIFY(futures[3].done());
        }());
    }

    // A paused pool with queued work is not idle; clear() makes it so.
    void whenIdleWaitsForAPausedQueue()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            pool.pause();
            auto queued = pool.submit([] { return 1; });
            auto idle = pool.whenIdle();
            co_await turns(5);
            CO_VERIFY(!idle.isReady());
            CO_COMPARE(pool.clear(), 1);
            co_await idle;
            CO_VERIFY(queued.cancelled());
        }());
    }

    // The awaiting Task dropped while it waits (its coroutine detached), and the executor destroyed
    // while another one waits: nothing dangles (ASan), and the waiters complete.
    void waitersOutliveTheirTaskAndTheExecutor()
    {
        run([]() -> QCoro::Task<void> {
            auto* pool = new TaskPoolExecutor(1);
            Gate gate;
            auto future = pool->submit(waitFor, &gate);
            auto extra = pool->submit(waitFor, &gate);
            {
                auto dropped = pool->whenIdle();
                auto droppedBelow = pool->pendingBelow(1);
                CO_VERIFY(!dropped.isReady());
            }
            auto idle = pool->whenIdle();
            auto below = pool->pendingBelow(1);
            delete pool;
            gate.open();
            co_await below;
            co_await idle;
            CO_VERIFY(future.done() && extra.done());
            co_await turns(5);
        }());
    }

    void waitingHelpersOnlyInTheExecutorThread()
    {
        TaskPoolExecutor pool(1);
        bool threw = false;
        QScopedPointer<QThread> thread(QThread::create([&] {
            try {
                (void)pool.whenIdle();
            } catch (const std::logic_error&) {
                threw = true;
            }
        }));
        thread->start();
        thread->wait();
        QVERIFY(threw);
    }

    // ---- interplay --------------------------------------------------------------------------

    // Observed: shutdown(wait) on a paused pool with queued work waits until resume() (the queue
    // runs) or clear() (the queue is cancelled); a shutdown that cancels futures returns at once.
    void shutdownOfAPausedPool_data()
    {
        QTest::addColumn<int>("how");
        QTest::newRow("resume") << 0;
        QTest::newRow("clear") << 1;
        QTest::newRow("cancelFutures") << 2;
    }
    void shutdownOfAPausedPool()
    {
        QFETCH(int, how);
        run([](int how) -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Log log;
            Gate gate;
            auto running = pool.submit(body, &log, 0, QString(), &gate);
            co_await until([&] { return log.bodies == 1; });
            pool.pause();
            QList<Future<int>> queued;
            for (int i = 1; i <= 3; ++i)
                queued.append(pool.submit(body, &log, i, QString(), nullptr));
            gate.open();
            CO_COMPARE(co_await running, 0);
            auto shutdown = pool.shutdown({ .wait = true, .cancelFutures = how == 2 });
            co_await turns(10);
            if (how == 2) {
                co_await shutdown;
                for (auto& future : queued)
                    CO_VERIFY(future.cancelled());
                co_return;
            }
            CO_VERIFY(!shutdown.isReady());
            CO_COMPARE(pool.pendingCount(), 3);
            if (how == 0) {
                pool.resume();
                co_await shutdown;
                for (int i = 0; i < 3; ++i)
                    CO_COMPARE(queued[i].result(), i + 1);
            } else {
                CO_COMPARE(pool.clear(), 3);
                co_await shutdown;
                for (auto& future : queued)
                    CO_VERIFY(future.cancelled());
                CO_COMPARE(log.bodies, 1);
            }
            CO_COMPARE(pool.workerCount(), 0);
        }(how));
    }

    // Destroying the executor is shutdown({.wait = false}): every future still finishes while the
    // event loop runs, also the ones a pause held (nobody could resume them any more).
    void destroyingAPausedPoolRunsItsQueue()
    {
        run([]() -> QCoro::Task<void> {
            auto* pool = new TaskPoolExecutor(2);
            pool->pause();
            Log log;
            QList<Future<int>> futures;
            for (int i = 0; i < 3; ++i)
                futures.append(pool->submit(body, &log, i, QString(), nullptr));
            auto idle = pool->whenIdle();
            delete pool;
            co_await awaitAll(futures);
            for (int i = 0; i < 3; ++i)
                CO_COMPARE(futures[i].result(), i);
            co_await idle;
        }());
    }

    // A paused pool destroyed with a rate limit and held keys: the queue still drains.
    void destroyingARateLimitedPoolRunsItsQueue()
    {
        run([]() -> QCoro::Task<void> {
            auto* pool = new TaskPoolExecutor(2);
            pool->setRateLimit(2, 30ms);
            pool->setKeyLimit(QStringLiteral("k"), 1);
            Log log;
            QList<Future<int>> futures;
            for (int i = 0; i < 8; ++i) {
                const QString key = i % 2 ? QStringLiteral("k") : QString();
                futures.append(pool->submit({ .key = key }, body, &log, i, key, nullptr));
            }
            co_await until([&] { return log.bodies >= 1; });
            delete pool;
            co_await awaitAll(futures);
            CO_COMPARE(log.bodies, 8);
            QString worst;
            CO_VERIFY2(windowHolds(log.times, 2, 30ms - slack, &worst), qPrintable(worst));
        }());
    }

    // ---- re-entrant slots -------------------------------------------------------------------

    void rateLimitedSlotReenters_data()
    {
        QTest::addColumn<int>("action");
        QTest::newRow("clear") << 0;
        QTest::newRow("shutdown") << 1;
        QTest::newRow("shutdown, cancelFutures") << 2;
        QTest::newRow("delete") << 3;
        QTest::newRow("pause") << 4;
        QTest::newRow("remove the limit") << 5;
    }
    void rateLimitedSlotReenters()
    {
        QFETCH(int, action);
        run([](int action) -> QCoro::Task<void> {
            QPointer<TaskPoolExecutor> pool = new TaskPoolExecutor(3);
            pool->setRateLimit(1, 30ms);
            int emitted = 0;
            connect(pool, &TaskPoolExecutor::rateLimitedChanged, pool, [&, action](bool limited) {
                ++emitted;
                if (!limited || emitted > 1)
                    return;
                switch (action) {
                case 0:
                    pool->clear();
                    break;
                case 1:
                    (void)pool->shutdown({ .wait = false });
                    break;
                case 2:
                    (void)pool->shutdown({ .wait = false, .cancelFutures = true });
                    break;
                case 3:
                    delete pool;
                    break;
                case 4:
                    pool->pause();
                    break;
                case 5:
                    pool->setRateLimit(0);
                    break;
                }
            });
            Log log;
            QList<Future<int>> futures;
            for (int i = 0; i < 4; ++i)
                futures.append(pool->submit(body, &log, i, QString(), nullptr));
            if (action == 4) {
                co_await until([&] { return emitted >= 1; });
                co_await turns(5);
                CO_COMPARE(log.bodies, 1);
                CO_VERIFY(!pool->isRateLimited());
                pool->resume();
            }
            co_await awaitAll(futures);
            const bool cancels = action == 0 || action == 2;
            CO_COMPARE(futures[0].result(), 0);
            for (int i = 1; i < 4; ++i) {
                CO_VERIFY(futures[i].done());
                CO_COMPARE(futures[i].cancelled(), cancels);
            }
            CO_COMPARE(log.bodies, cancels ? 1 : 4);
            if (pool) {
                CO_VERIFY(!pool->isRateLimited());
                co_await pool->shutdown();
                delete pool;
            }
        }(action));
    }

    void pausedSlotReenters_data()
    {
        QTest::addColumn<int>("action");
        QTest::addColumn<bool>("onResume");
        QTest::newRow("clear on pause") << 0 << false;
        QTest::newRow("shutdown on pause") << 1 << false;
        QTest::newRow("delete on pause") << 2 << false;
        QTest::newRow("clear on resume") << 0 << true;
        QTest::newRow("shutdown, cancelFutures, on resume") << 1 << true;
        QTest::newRow("delete on resume") << 2 << true;
    }
    void pausedSlotReenters()
    {
        QFETCH(int, action);
        QFETCH(bool, onResume);
        run([](int action, bool onResume) -> QCoro::Task<void> {
            QPointer<TaskPoolExecutor> pool = new TaskPoolExecutor(1);
            Log log;
            Gate gate;
            auto running = pool->submit(body, &log, 0, QString(), &gate);
            co_await until([&] { return log.bodies == 1; });
            QList<Future<int>> queued;
            for (int i = 1; i <= 3; ++i)
                queued.append(pool->submit(body, &log, i, QString(), nullptr));
            connect(pool, &TaskPoolExecutor::pausedChanged, pool, [&, action, onResume](bool paused) {
                if (paused == onResume)
                    return;
                switch (action) {
                case 0:
                    pool->clear();
                    break;
                case 1:
                    (void)pool->shutdown({ .wait = false, .cancelFutures = onResume });
                    break;
                case 2:
                    delete pool;
                    break;
                }
            });
            pool->pause();
            if (pool)
                pool->resume();
            gate.open();
            CO_COMPARE(co_await running, 0);
            co_await awaitAll(queued);
            const bool cancels = action == 0 || (action == 1 && onResume);
            for (int i = 0; i < 3; ++i) {
                CO_VERIFY(queued[i].done());
                CO_COMPARE(queued[i].cancelled(), cancels);
                if (!cancels)
                    CO_COMPARE(queued[i].result(), i + 1);
            }
            if (pool) {
                co_await pool->shutdown();
                delete pool;
            }
        }(action, onResume));
    }
};

QTEST_GUILESS_MAIN(tst_Scheduling)
#include "tst_scheduling.moc"
