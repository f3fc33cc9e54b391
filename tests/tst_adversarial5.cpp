// SPDX-License-Identifier: MIT
// Fifth adversarial review: each test breaks one documented promise (named in its comment) of the
// cancellation, scheduling and map-variant controls, this time with nested event loops, result
// types whose copies and moves throw, extreme values, early destruction and other threads. A test
// here fails (or ends the process under ASan/UBSan) while the promise is broken. Found broken:
// resultValuelessAfterThrowingAssignment, rateLimitLongWindowArmsItsTimer,
// timeoutOfThirtyDaysArmsItsTimer, rateLimitMaxWindow; the others held when written and stay as
// guards.
#include "testutil.h"

#include <taskpool/cancel.h>

#include <QPointer>
#include <QRegularExpression>

#include <atomic>
#include <climits>
#include <optional>
#include <stop_token>
#include <thread>

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

//! A value whose copies and moves throw while `armed` is set; counts its live instances.
struct Throwy {
    static inline int live = 0;
    static inline bool armed = false;
    int v = 0;
    Throwy() { ++live; }
    explicit Throwy(int value) : v(value) { ++live; }
    Throwy(const Throwy& other) : v(other.v)
    {
        if (armed)
            throw std::runtime_error("Throwy copy");
        ++live;
    }
    Throwy(Throwy&& other) : v(other.v)
    {
        if (armed)
            throw std::runtime_error("Throwy move");
        ++live;
    }
    Throwy& operator=(const Throwy& other)
    {
        if (armed)
            throw std::runtime_error("Throwy copy assignment");
        v = other.v;
        return *this;
    }
    Throwy& operator=(Throwy&& other)
    {
        if (armed)
            throw std::runtime_error("Throwy move assignment");
        v = other.v;
        return *this;
    }
    ~Throwy() { --live; }
};

//! Disarms Throwy at the end of a scope, whatever happens.
struct Disarm {
    ~Disarm() { Throwy::armed = false; }
};

QFuture<Throwy> readyThrowy(int v)
{
    QPromise<Throwy> promise;
    promise.start();
    promise.addResult(Throwy(v));
    promise.finish();
    return promise.future();
}

//! A plain-value callable: the executor, not a user coroutine, moves the result (a QCoro::Task
//! of the user's own would end the process in QCoro's noexcept return_value()).
Throwy makeThrowy(int v)
{
    return Throwy(v);
}

} // namespace

class tst_Adversarial5 : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init() { Throwy::live = 0; }

    // Throwing copies and moves.
    void resultValuelessAfterThrowingAssignment();
    void gatherMixedFailureBalancesLifetimes();
    void gatherMixedThrowingCopy();
    void gatherSettledThrowingCopy();
    void mapSettledThrowingMoves();
    void mapUnorderedThrowingMoves();
    void mapUnorderedSettledThrowingMoves();
    void resultDestroyedInAnotherThread();

    // Extreme values.
    void priorityExtremesOrder();
    void rateLimitIntMaxTinyWindow();
    void rateLimitTwoCenturies();
    void timeoutOneMillisecond();
    void timeoutAlmostMax();
    void keyLimitIntMaxAndPendingBelowIntMax();
    void mapUnorderedBufferIntMax();

    // Early destruction.
    void executorDestroyedWhileWhenIdleWaits();
    void executorDestroyedWhilePendingBelowWaits();
    void executorDestroyedWhileMapUnorderedIterates();
    void generatorDestroyedInItsItemsStopCallback();
    void executorDestroyedWhileBufferedMapUnorderedIterates();

    // Other threads.
    void whenIdleFromAnotherThreadThrows();
    void submitWithOptionsFromStdThread();
    void cancelKeyedFromThreadWhileKeySaturated();

    // Nested event loops.
    void nestedLoopInsideTask();
    void nestedLoopInsideStopCallback();
    void nestedLoopInsideRateLimitedChangedSlot();
    void nestedLoopWhileWhenIdleWaits();

    // Timers armed with a window or timeout beyond INT_MAX ms (QTimer takes an int).
    void rateLimitLongWindowArmsItsTimer();
    void timeoutOfThirtyDaysArmsItsTimer();

    // This ends the process under UBSan (signed overflow), so it comes last.
    void rateLimitMaxWindow();
};

// Promise (Result): "its value, or the exception that took its place". An assignment from a
// Result whose value's copy throws must leave the target holding one or the other; a valueless
// std::variant has neither, and value() then dereferences a null pointer.
void tst_Adversarial5::resultValuelessAfterThrowingAssignment()
{
    {
        auto target = TaskPool::Result<Throwy>::fromError(std::make_exception_ptr(std::runtime_error("failed")));
        TaskPool::Result<Throwy> source { Throwy(1) };
        bool threw = false;
        {
            Disarm disarm;
            Throwy::armed = true;
            try {
                target = source;
            } catch (const std::runtime_error&) {
                threw = true;
            }
        }
        QVERIFY(threw);
        QVERIFY2(target.hasValue() || target.error(),
                 "after a throwing assignment the Result holds neither a value nor an error");
    }
    QCOMPARE(Throwy::live, 0);
}

// Promise (gather(f1, f2, ...)): throws the exception of the first failed future. The value
// already taken from the first future must be destroyed exactly once when the second one throws.
void tst_Adversarial5::gatherMixedFailureBalancesLifetimes()
{
    run([]() -> QCoro::Task<void> {
        {
            QFuture<Throwy> a = readyThrowy(1);
            QFuture<int> b = exceptionFuture();
            auto gathered = TaskPool::gather(a, b);
            CO_VERIFY_THROWS(co_await gathered, std::runtime_error);
        }
        CO_COMPARE(Throwy::live, 0);
    }());
}

// Promise (gather(f1, f2, ...)): a failure is thrown (here the copy of the first value), no hang
// and nothing leaked.
void tst_Adversarial5::gatherMixedThrowingCopy()
{
    run([]() -> QCoro::Task<void> {
        {
            QFuture<Throwy> a = readyThrowy(1);
            QFuture<int> b = successfulFuture();
            Disarm disarm;
            Throwy::armed = true;
            auto gathered = TaskPool::gather(a, b);
            bool threw = false;
            try {
                co_await gathered;
            } catch (const std::runtime_error&) {
                threw = true;
            }
            CO_VERIFY(threw);
        }
        CO_COMPARE(Throwy::live, 0);
    }());
}

// Promise (gatherSettled): returns once every future has settled; never hangs. A value whose
// copy throws is reported (as a Result's error or as gatherSettled's exception), nothing leaks.
void tst_Adversarial5::gatherSettledThrowingCopy()
{
    run([]() -> QCoro::Task<void> {
        {
            QList<QFuture<Throwy>> futures { readyThrowy(1), readyThrowy(2) };
            Disarm disarm;
            Throwy::armed = true;
            auto settled = TaskPool::gatherSettled(futures);
            bool reported = false;
            try {
                auto results = co_await settled;
                Throwy::armed = false;
                CO_COMPARE(results.size(), qsizetype(2));
                reported = !results[0].hasValue() && !results[1].hasValue() && results[0].error() && results[1].error();
            } catch (const std::runtime_error&) {
                reported = true;
            }
            CO_VERIFY2(reported, "a throwing copy was neither an error Result nor an exception");
        }
        CO_COMPARE(Throwy::live, 0);
    }());
}

// Promise (mapSettled): yields every item's outcome as a Result and never throws for an item's
// failure. Items whose value cannot be moved fail in their task, so each must come as an error.
void tst_Adversarial5::mapSettledThrowingMoves()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(2);
        {
            Disarm disarm;
            Throwy::armed = true;
            int errors = 0;
            int count = 0;
            bool escaped = false;
            try {
                QCORO_FOREACH(auto&& r, pool.mapSettled(makeThrowy, QList<int> { 1, 2, 3 }))
                {
                    ++count;
                    if (!r.hasValue() && r.error())
                        ++errors;
                }
            } catch (...) {
                escaped = true;
            }
            Throwy::armed = false;
            CO_VERIFY2(!escaped, "mapSettled threw for items whose value could not be moved");
            CO_COMPARE(count, 3);
            CO_COMPARE(errors, 3);
        }
        auto idle = pool.whenIdle();
        co_await idle;
        CO_COMPARE(Throwy::live, 0);
    }());
}

// Promise (mapUnordered): an item's exception is thrown when the iteration reaches it; no hang,
// and everything the generator held is released.
void tst_Adversarial5::mapUnorderedThrowingMoves()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(2);
        {
            Disarm disarm;
            Throwy::armed = true;
            bool threw = false;
            try {
                QCORO_FOREACH(auto&& r, pool.mapUnordered(makeThrowy, QList<int> { 1, 2, 3 }))
                {
                    Q_UNUSED(r);
                }
            } catch (const std::runtime_error&) {
                threw = true;
            }
            Throwy::armed = false;
            CO_VERIFY(threw);
        }
        auto idle = pool.whenIdle();
        co_await idle;
        CO_COMPARE(Throwy::live, 0);
    }());
}

// Promise (mapUnorderedSettled): every item's outcome as an Indexed<Result<R>>, never throwing
// for an item's failure: each item whose value cannot be moved is an error Result with its index.
void tst_Adversarial5::mapUnorderedSettledThrowingMoves()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(2);
        {
            Disarm disarm;
            Throwy::armed = true;
            qsizetype indexSum = 0;
            int errors = 0;
            bool escaped = false;
            try {
                QCORO_FOREACH(const auto& r, pool.mapUnorderedSettled(makeThrowy, QList<int> { 1, 2, 3 }))
                {
                    indexSum += r.index;
                    if (!r.value.hasValue() && r.value.error())
                        ++errors;
                }
            } catch (...) {
                escaped = true;
            }
            Throwy::armed = false;
            CO_VERIFY2(!escaped, "mapUnorderedSettled threw for items whose value could not be moved");
            CO_COMPARE(errors, 3);
            CO_COMPARE(indexSum, qsizetype(3));
        }
        auto idle = pool.whenIdle();
        co_await idle;
        CO_COMPARE(Throwy::live, 0);
    }());
}

// Result holds its error as a std::exception_ptr: one made in the executor's thread may be
// destroyed in another (a copy shared between both), with no race or leak.
void tst_Adversarial5::resultDestroyedInAnotherThread()
{
    auto result = TaskPool::Result<QString>::fromError(std::make_exception_ptr(TaskPool::CancelledError()));
    QVERIFY(result.isCancelled());
    auto copy = result;
    std::thread thread([moved = std::move(copy)]() mutable {
        auto local = std::move(moved);
        Q_UNUSED(local);
    });
    thread.join();
    QVERIFY(result.isCancelled());
    QVERIFY(result.error());
}

// Promise (SubmitOptions::priority): "Higher starts first". INT_MIN and INT_MAX mixed with the
// others must not wrap around in the comparison.
void tst_Adversarial5::priorityExtremesOrder()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(1);
        pool.pause();
        QList<int> order;
        const QList<int> priorities { 0, INT_MIN, INT_MAX, INT_MIN + 1, INT_MAX - 1, -1, 1 };
        QList<QFuture<void>> futures;
        for (int p : priorities)
            futures.append(pool.submit({ .priority = p }, [&order, p] { order.append(p); }));
        pool.resume();
        auto all = TaskPool::gather(futures);
        co_await all;
        const QList<int> expected { INT_MAX, INT_MAX - 1, 1, 0, -1, INT_MIN + 1, INT_MIN };
        CO_COMPARE(order, expected);
    }());
}

// Promise (setRateLimit): at most `starts` per window; INT_MAX in 1 ms is no practical limit:
// every task runs and the executor is not rate-limited.
void tst_Adversarial5::rateLimitIntMaxTinyWindow()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(4);
        pool.setRateLimit(INT_MAX, std::chrono::milliseconds(1));
        QList<QFuture<int>> futures;
        for (int i = 0; i < 50; ++i)
            futures.append(pool.submit(amul, i, 2));
        auto all = TaskPool::gather(futures);
        const QList<int> results = co_await all;
        CO_COMPARE(results.size(), qsizetype(50));
        CO_COMPARE(results.last(), 98);
        CO_VERIFY(!pool.isRateLimited());
    }());
}

// Promise (setRateLimit): "at most rateLimit() tasks start in any window". One start in two
// centuries: the second task must stay queued (and rate-limited) until the limit is removed.
void tst_Adversarial5::rateLimitTwoCenturies()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(2);
        pool.setRateLimit(1, std::chrono::hours(24 * 365 * 200));
        CO_COMPARE(pool.rateWindowMs(), INT_MAX);
        auto first = pool.submit(amul, 1, 1);
        auto second = pool.submit(amul, 2, 1);
        co_await first;
        co_await turns(10);
        co_await TestUtil::sleep(std::chrono::milliseconds(20));
        CO_VERIFY2(!second.isStarted() || !second.isFinished(), "a second start within the window");
        CO_COMPARE(pool.pendingCount(), 1);
        CO_VERIFY(pool.isRateLimited());
        pool.setRateLimit(0);
        co_await second;
        CO_COMPARE(second.result(), 2);
    }());
}

// Promise (setRateLimit): tasks held by the limit start once the oldest start leaves the window.
// With a window longer than INT_MAX ms (here 30 days) the executor arms its QTimer with the count
// truncated to int: Qt refuses the negative interval ("Timers cannot have negative intervals"), so
// nothing would ever start the held task when the window has passed. (The 200-year window of
// rateLimitTwoCenturies shows the same warning.)
void tst_Adversarial5::rateLimitLongWindowArmsItsTimer()
{
    QTest::failOnWarning(QRegularExpression(QStringLiteral("negative intervals")));
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(2);
        pool.setRateLimit(1, std::chrono::hours(24 * 30));
        auto first = pool.submit(amul, 1, 1);
        auto second = pool.submit(amul, 2, 1);
        co_await first;
        co_await turns(5);
        CO_VERIFY(pool.isRateLimited());
        pool.setRateLimit(0);
        co_await second;
    }());
}

// Promise (SubmitOptions::timeout): "When it passes, the future fails with TimeoutError". A 30-day
// timeout (under the century that means none) arms the deadline QTimer with a truncated, negative
// int interval, which Qt refuses: the deadline would never fire.
void tst_Adversarial5::timeoutOfThirtyDaysArmsItsTimer()
{
    QTest::failOnWarning(QRegularExpression(QStringLiteral("negative intervals")));
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(1);
        auto future = pool.submit({ .timeout = std::chrono::hours(24 * 30) }, amul, 2, 2);
        const int value = co_await future;
        CO_COMPARE(value, 4);
    }());
}

// As rateLimitTwoCenturies, with the longest window the type holds: the window arithmetic must
// not overflow into "the window has passed".
void tst_Adversarial5::rateLimitMaxWindow()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(2);
        pool.setRateLimit(1, std::chrono::milliseconds::max());
        auto first = pool.submit(amul, 1, 1);
        auto second = pool.submit(amul, 2, 1);
        co_await first;
        co_await turns(10);
        co_await TestUtil::sleep(std::chrono::milliseconds(20));
        CO_COMPARE(pool.pendingCount(), 1);
        CO_VERIFY(pool.isRateLimited());
        pool.setRateLimit(0);
        co_await second;
        CO_COMPARE(second.result(), 2);
    }());
}

// Promise (SubmitOptions::timeout): when it passes, the future fails with TimeoutError and the
// token is stopped. 1 ms is a valid timeout.
void tst_Adversarial5::timeoutOneMillisecond()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(1);
        auto future = pool.submit({ .timeout = std::chrono::milliseconds(1) }, untilStopped, 1);
        CO_VERIFY_THROWS(co_await future, TaskPool::TimeoutError);
        auto idle = pool.whenIdle();
        co_await idle;
        CO_COMPARE(pool.activeCount(), 0);
    }());
}

// Promise (SubmitOptions::timeout): a timeout of milliseconds::max() - 1 is a (very long) limit:
// the deadline arithmetic must not overflow into an immediate timeout.
void tst_Adversarial5::timeoutAlmostMax()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(1);
        Gate gate;
        auto future = pool.submit({ .timeout = std::chrono::milliseconds::max() - std::chrono::milliseconds(1) }, gated,
                                  &gate, 5);
        co_await turns(5);
        co_await TestUtil::sleep(std::chrono::milliseconds(10));
        CO_VERIFY2(!future.isFinished(), "a near-max timeout ended the task at once");
        gate.open();
        const int value = co_await future;
        CO_COMPARE(value, 5);
    }());
}

// Promise (setKeyLimit / pendingBelow): INT_MAX is a valid limit (no overflow in "limit - running"),
// and pendingBelow(INT_MAX) completes at once when fewer are queued.
void tst_Adversarial5::keyLimitIntMaxAndPendingBelowIntMax()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(3);
        pool.setKeyLimit(QStringLiteral("k"), INT_MAX);
        CO_COMPARE(pool.keyLimit(QStringLiteral("k")), INT_MAX);
        Gate gate;
        QList<QFuture<int>> futures;
        for (int i = 0; i < 4; ++i)
            futures.append(pool.submit({ .key = QStringLiteral("k") }, gated, &gate, i));
        co_await until([&] { return pool.activeCount() == 3; });
        CO_COMPARE(pool.pendingCount(), 1);
        auto below = pool.pendingBelow(INT_MAX);
        co_await below;
        gate.open();
        auto all = TaskPool::gather(futures);
        const QList<int> values = co_await all;
        CO_COMPARE(values, (QList<int> { 0, 1, 2, 3 }));
    }());
}

// Promise (MapOptions::bufferSize): how many items may be submitted ahead; INT_MAX over three
// items is simply "all of them", not an allocation of INT_MAX slots.
void tst_Adversarial5::mapUnorderedBufferIntMax()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(2);
        int sum = 0;
        int count = 0;
        QCORO_FOREACH(
            const auto& r,
            pool.mapUnordered({ .bufferSize = INT_MAX }, amul, QList<int> { 1, 2, 3 }, QList<int> { 1, 1, 1 }))
        {
            sum += r.value;
            ++count;
        }
        CO_COMPARE(count, 3);
        CO_COMPARE(sum, 6);
    }());
}

// Promise (class description): destroying the executor behaves as shutdown({.wait = false}), the
// work completes; whenIdle() "completes once no task runs or is queued". A waiter must not hang.
void tst_Adversarial5::executorDestroyedWhileWhenIdleWaits()
{
    Gate gate;
    auto* pool = new TaskPool::TaskPoolExecutor(1);
    QFuture<int> future = pool->submit(gated, &gate, 1);
    bool done = false;
    auto waiter = [](TaskPool::TaskPoolExecutor* pool, bool& done) -> QCoro::Task<void> {
        auto idle = pool->whenIdle();
        co_await idle;
        done = true;
    }(pool, done);
    QVERIFY(!done);
    delete pool;
    gate.open();
    QVERIFY2(nestedLoopUntil([&] { return done && future.isFinished(); }),
             "whenIdle() never completed after its executor was destroyed");
}

// As above, for pendingBelow(1) with one task queued behind a running one.
void tst_Adversarial5::executorDestroyedWhilePendingBelowWaits()
{
    Gate gate;
    auto* pool = new TaskPool::TaskPoolExecutor(1);
    QFuture<int> running = pool->submit(gated, &gate, 1);
    QFuture<int> queued = pool->submit(gated, &gate, 2);
    QVERIFY(nestedLoopUntil([&] { return pool->activeCount() == 1; }));
    bool done = false;
    auto waiter = [](TaskPool::TaskPoolExecutor* pool, bool& done) -> QCoro::Task<void> {
        auto below = pool->pendingBelow(1);
        co_await below;
        done = true;
    }(pool, done);
    QVERIFY(!done);
    delete pool;
    gate.open();
    QVERIFY2(nestedLoopUntil([&] { return done && running.isFinished() && queued.isFinished(); }),
             "pendingBelow() never completed after its executor was destroyed");
}

// Promise (map, "the executor gone"): once the executor is destroyed the generator ends after the
// submitted items; without a buffer all were submitted, so all three come out.
void tst_Adversarial5::executorDestroyedWhileMapUnorderedIterates()
{
    Gate gate;
    auto* pool = new TaskPool::TaskPoolExecutor(2);
    QPointer<TaskPool::TaskPoolExecutor> guard(pool);
    bool done = false;
    int count = 0;
    QString error;
    auto consumer = [](TaskPool::TaskPoolExecutor* pool, Gate& gate, bool& done, int& count,
                       QString& error) -> QCoro::Task<void> {
        try {
            auto gen = pool->mapUnordered(gated, QList<Gate*> { &gate, &gate, &gate }, QList<int> { 1, 2, 3 });
            QCORO_FOREACH(const auto& r, gen)
            {
                Q_UNUSED(r);
                ++count;
            }
        } catch (const std::exception& e) {
            error = QString::fromUtf8(e.what());
        }
        done = true;
    }(pool, gate, done, count, error);
    QVERIFY(nestedLoopUntil([&] { return pool->activeCount() == 2; }));
    delete pool;
    gate.open();
    QVERIFY2(nestedLoopUntil([&] { return done; }), "the mapUnordered iteration hung after its executor died");
    QVERIFY2(error.isEmpty(), qPrintable(error));
    QCOMPARE(count, 3);
}

// Promise (map, "the executor gone"): with a buffer of 1 only the first item is submitted; once the
// executor is destroyed no more are submitted and the generator ends after that one, without
// throwing and without hanging.
void tst_Adversarial5::executorDestroyedWhileBufferedMapUnorderedIterates()
{
    Gate gate;
    auto* pool = new TaskPool::TaskPoolExecutor(2);
    bool done = false;
    int count = 0;
    QString error;
    auto consumer = [](TaskPool::TaskPoolExecutor* pool, Gate& gate, bool& done, int& count,
                       QString& error) -> QCoro::Task<void> {
        try {
            auto gen = pool->mapUnordered({ .bufferSize = 1 }, gated, QList<Gate*> { &gate, &gate, &gate },
                                          QList<int> { 1, 2, 3 });
            QCORO_FOREACH(const auto& r, gen)
            {
                Q_UNUSED(r);
                ++count;
            }
        } catch (const TaskPool::ShutdownError&) {
            error = QStringLiteral("ShutdownError"); // cut short: never looks complete
        } catch (const std::exception& e) {
            error = QString::fromUtf8(e.what());
        }
        done = true;
    }(pool, gate, done, count, error);
    QVERIFY(nestedLoopUntil([&] { return pool->activeCount() == 1; }));
    delete pool;
    gate.open();
    QVERIFY2(nestedLoopUntil([&] { return done; }), "the buffered mapUnordered iteration hung after its executor died");
    QCOMPARE(error, QStringLiteral("ShutdownError"));
    QCOMPARE(count, 1); // the one item submitted before the executor died
}

// Promise (map: "destroying it before the end cancels them all"): a generator destroyed from the
// stop callback of one of its own items (stopped by a timeout) must cancel the rest without a
// crash, and the executor must drain.
void tst_Adversarial5::generatorDestroyedInItsItemsStopCallback()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(2);
        pool.setDefaultTimeout(std::chrono::milliseconds(5));
        using Gen = decltype(pool.mapUnordered(untilStopped, QList<int> {}));
        std::optional<Gen> gen;
        int callbacks = 0;
        auto item = [&gen, &callbacks](std::stop_token token, int value) -> QCoro::Task<int> {
            std::stop_callback cb(token, [&gen, &callbacks] {
                ++callbacks;
                gen.reset();
            });
            auto wait = TaskPool::untilCancelled(token);
            co_await wait;
            co_return value;
        };
        gen.emplace(pool.mapUnordered(item, QList<int> { 1, 2, 3, 4 }));
        co_await until([&] { return !gen.has_value(); });
        auto idle = pool.whenIdle();
        co_await idle;
        CO_VERIFY(callbacks >= 1);
        CO_COMPARE(pool.activeCount(), 0);
        CO_COMPARE(pool.pendingCount(), 0);
    }());
}

// Promise (pendingBelow, and checkExecutorThread's message): awaited in the executor's thread
// only; from another thread it must throw std::logic_error rather than race.
void tst_Adversarial5::whenIdleFromAnotherThreadThrows()
{
    TaskPool::TaskPoolExecutor pool(1);
    std::atomic<int> logicErrors { 0 };
    std::thread thread([&] {
        try {
            auto idle = pool.whenIdle();
        } catch (const std::logic_error&) {
            ++logicErrors;
        }
        try {
            auto below = pool.pendingBelow(2);
        } catch (const std::logic_error&) {
            ++logicErrors;
        }
    });
    thread.join();
    QCOMPARE(logicErrors.load(), 2);
}

// Promise (class description): "submit() may be called from any thread"; with every option.
void tst_Adversarial5::submitWithOptionsFromStdThread()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(2);
        pool.setKeyLimit(QStringLiteral("host"), 1);
        QObject context;
        QList<QFuture<int>> futures;
        std::thread thread([&] {
            for (int i = 0; i < 20; ++i)
                futures.append(pool.submit({ .timeout = std::chrono::seconds(5),
                                             .context = &context,
                                             .priority = i % 3 - 1,
                                             .key = QStringLiteral("host") },
                                           amul, i, 3));
        });
        thread.join();
        auto all = TaskPool::gather(futures);
        const QList<int> values = co_await all;
        CO_COMPARE(values.size(), qsizetype(20));
        for (int i = 0; i < 20; ++i)
            CO_COMPARE(values[i], i * 3);
    }());
}

// Promise (SubmitOptions::key, cancellation): a queued keyed task cancelled from another thread
// while its key is saturated ends cancelled and does not keep a key slot: a later task of the same
// key runs once the running one ends.
void tst_Adversarial5::cancelKeyedFromThreadWhileKeySaturated()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(4);
        pool.setKeyLimit(QStringLiteral("k"), 1);
        Gate gate;
        auto running = pool.submit({ .key = QStringLiteral("k") }, gated, &gate, 1);
        auto queued = pool.submit({ .key = QStringLiteral("k") }, gated, &gate, 2);
        co_await until([&] { return pool.activeCount() == 1; });
        std::thread thread([queued]() mutable { queued.cancel(); });
        thread.join();
        co_await until([&] { return queued.isFinished(); });
        CO_VERIFY(queued.isCanceled());
        gate.open();
        const int first = co_await running;
        CO_COMPARE(first, 1);
        Gate gate2;
        gate2.open();
        auto later = pool.submit({ .key = QStringLiteral("k") }, gated, &gate2, 3);
        const int third = co_await later;
        CO_COMPARE(third, 3);
        auto idle = pool.whenIdle();
        co_await idle;
    }());
}

// Promise (class description): tasks run on the event loop; one that spins a nested QEventLoop
// keeps its worker while the others run to completion inside that loop.
void tst_Adversarial5::nestedLoopInsideTask()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(2);
        QList<QFuture<int>> others;
        auto nested = pool.submit([&pool, &others]() -> int {
            for (int i = 0; i < 5; ++i)
                others.append(pool.submit(amul, i, 1));
            QEventLoop loop;
            QTimer poll;
            QObject::connect(&poll, &QTimer::timeout, &loop, [&] {
                if (std::all_of(others.begin(), others.end(), [](const auto& f) { return f.isFinished(); }))
                    loop.quit();
            });
            poll.start(1);
            QTimer::singleShot(5000, &loop, &QEventLoop::quit);
            loop.exec();
            return int(others.size());
        });
        const int n = co_await nested;
        CO_COMPARE(n, 5);
        for (const auto& f : others)
            CO_VERIFY(f.isFinished() && !f.isCanceled());
        auto idle = pool.whenIdle();
        co_await idle;
        CO_COMPARE(pool.activeCount(), 0);
    }());
}

// Promise (cancel.h: stop callbacks run in the executor's thread): a stop callback that spins a
// nested event loop must not break the cancellation: the future ends cancelled, the worker frees.
void tst_Adversarial5::nestedLoopInsideStopCallback()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(1);
        int callbacks = 0;
        auto future = pool.submit([&callbacks](std::stop_token token) -> QCoro::Task<int> {
            std::stop_callback cb(token, [&callbacks] {
                ++callbacks;
                QEventLoop loop;
                QTimer::singleShot(10, &loop, &QEventLoop::quit);
                loop.exec();
            });
            auto wait = TaskPool::untilCancelled(token);
            co_await wait;
            co_return 1;
        });
        auto next = pool.submit(amul, 2, 3);
        co_await until([&] { return pool.activeCount() == 1; });
        future.cancel();
        const int n = co_await next;
        CO_COMPARE(n, 6);
        co_await until([&] { return future.isFinished(); });
        CO_VERIFY(future.isCanceled());
        CO_COMPARE(callbacks, 1);
        auto idle = pool.whenIdle();
        co_await idle;
    }());
}

// Promise (setRateLimit / rateLimitedChanged): a slot that spins a nested event loop while the
// limit holds must not start tasks beyond the limit nor lose the held ones.
void tst_Adversarial5::nestedLoopInsideRateLimitedChangedSlot()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(4);
        pool.setRateLimit(1, std::chrono::milliseconds(30));
        int nested = 0;
        QObject::connect(&pool, &TaskPool::TaskPoolExecutor::rateLimitedChanged, &pool, [&nested](bool limited) {
            if (!limited)
                return;
            ++nested;
            QEventLoop loop;
            QTimer::singleShot(5, &loop, &QEventLoop::quit);
            loop.exec();
        });
        QList<QFuture<int>> futures;
        for (int i = 0; i < 4; ++i)
            futures.append(pool.submit(amul, i, 1));
        auto all = TaskPool::gather(futures);
        const QList<int> values = co_await all;
        CO_COMPARE(values, (QList<int> { 0, 1, 2, 3 }));
        CO_VERIFY(nested >= 1);
        auto idle = pool.whenIdle();
        co_await idle;
    }());
}

// Promise (whenIdle): completes once no task runs or is queued, even when the last task ends
// inside a nested event loop spun by the code that awaits it.
void tst_Adversarial5::nestedLoopWhileWhenIdleWaits()
{
    TaskPool::TaskPoolExecutor pool(1);
    auto future = pool.submit(amul, 2, 2);
    bool done = false;
    auto waiter = [](TaskPool::TaskPoolExecutor& pool, bool& done) -> QCoro::Task<void> {
        auto idle = pool.whenIdle();
        co_await idle;
        done = true;
    }(pool, done);
    QVERIFY(nestedLoopUntil([&] {
        if (!future.isFinished())
            return false;
        // A second nested level, entered after the task ended, before the notice is handled.
        QEventLoop inner;
        QTimer::singleShot(2, &inner, &QEventLoop::quit);
        inner.exec();
        return done;
    }));
    QVERIFY(done);
}

QTEST_MAIN(tst_Adversarial5)
#include "tst_adversarial5.moc"
