// SPDX-License-Identifier: MIT
// Regressions of issue 11 at the edges of map() and the waiting helpers: each test failed on
// 31db168 (except where a comment says it guards a neighbouring case that already held).
//
// 11.10: map() leaked the item being submitted when the input's `++` threw, and an exception from
// the input during the iteration left the item taken at that step running, uncancelled. Every
// throwing step of a submission is tried: `*`, `++`, the item's copy, the callable's copy, the
// job's allocation; at the map() call (the exception comes from map()) and during the iteration
// (it comes from the step that reads the input; what is outstanding is cancelled).
//
// 11.11: a finite timeout too long for the clock overflowed in the QDeadlineTimer conversion
// (UBSan: signed overflow) and wait()/asCompleted() returned at once.
#include "testutil.h"

#include <QSignalSpy>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <new>
#include <ranges>
#include <stdexcept>
#include <vector>

// ---- allocation failure on request ---------------------------------------------------------------
// The next allocation after failNextAllocation() is set throws std::bad_alloc. The tests arm it in
// an input's `*`, so that the allocation that fails is the map item's own.
namespace {
std::atomic<bool> failNextAllocation { false };
std::atomic<int> failedAllocations { 0 };
} // namespace

void* operator new(std::size_t size)
{
    if (failNextAllocation.exchange(false, std::memory_order_relaxed)) {
        failedAllocations.fetch_add(1, std::memory_order_relaxed);
        throw std::bad_alloc();
    }
    if (void* p = std::malloc(size ? size : 1))
        return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept
{
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept
{
    std::free(p);
}

using namespace TestUtil;
using TaskPool::Future;
using TaskPool::MapOptions;
using TaskPool::ReturnWhen;
using TaskPool::TaskPoolExecutor;
using TaskPool::TimeoutError;

namespace {

//! A value that counts its live instances: a leaked map item keeps one alive.
struct Tracked {
    static inline int alive = 0;
    int value = 0;
    explicit Tracked(int v) : value(v) { ++alive; }
    Tracked(const Tracked& other) : value(other.value) { ++alive; }
    Tracked(Tracked&& other) noexcept : value(other.value) { ++alive; }
    Tracked& operator=(const Tracked&) = default;
    ~Tracked() { --alive; }
};

//! As Tracked, but copying the instance whose value is `throwOnCopyOf` throws.
struct CopyThrows {
    static inline int alive = 0;
    static inline int throwOnCopyOf = -1;
    int value = 0;
    explicit CopyThrows(int v) : value(v) { ++alive; }
    CopyThrows(const CopyThrows& other) : value(other.value)
    {
        if (value == throwOnCopyOf)
            throw std::runtime_error("copy failed");
        ++alive;
    }
    CopyThrows(CopyThrows&& other) noexcept : value(other.value) { ++alive; }
    ~CopyThrows() { --alive; }
};

//! A callable whose copy throws: map() copies it once, at the call.
struct CallableCopyThrows {
    static inline int alive = 0;
    CallableCopyThrows() { ++alive; }
    CallableCopyThrows(const CallableCopyThrows&) { throw std::runtime_error("callable copy failed"); }
    ~CallableCopyThrows() { --alive; }
    int operator()(int x) const { return x; }
};

//! The outstanding items' fate: each map item ends in exactly one of these signals.
struct Outcomes {
    explicit Outcomes(TaskPoolExecutor* pool) :
        started(pool, &TaskPoolExecutor::taskStarted),
        finished(pool, &TaskPoolExecutor::taskFinished),
        failed(pool, &TaskPoolExecutor::taskFailed),
        canceled(pool, &TaskPoolExecutor::taskCancelled)
    {
    }
    QSignalSpy started, finished, failed, canceled;
};

//! Holds its item until \a gate opens; the Tracked argument lives in the coroutine's frame.
QCoro::Task<int> gatedTracked(Gate* gate, Tracked t)
{
    co_await *gate;
    co_return t.value;
}

//! iota(0, n) as Tracked values whose filter throws "predicate failed" on reaching \a bad.
auto trackedThrowingAt(int n, int bad)
{
    return std::views::iota(0, n) | std::views::transform([](int i) { return Tracked(i); })
        | std::views::filter([bad](const Tracked& t) {
               if (t.value == bad)
                   throw std::runtime_error("predicate failed");
               return true;
           });
}

//! Takes results from \a results until it throws; returns what it threw (as text) and how many
//! results came before.
template <typename T> QCoro::Task<std::pair<QString, int>> drain(QCoro::AsyncGenerator<T> results)
{
    int taken = 0;
    QString error;
    try {
        auto it = co_await results.begin();
        while (it != results.end()) {
            ++taken;
            auto advance = ++it; // (g++ 12 cannot deduce `co_await ++it` here, in a template)
            co_await std::move(advance);
        }
    } catch (const std::bad_alloc&) {
        error = QStringLiteral("bad_alloc");
    } catch (const std::exception& e) {
        error = QString::fromUtf8(e.what());
    }
    co_return std::pair(error, taken);
}

// ---- 11.11 helpers ---------------------------------------------------------------------------------

using std::chrono::milliseconds;

//! Timeouts that the clock cannot count from now: each means no timeout.
void addHugeTimeouts()
{
    QTest::addColumn<qint64>("timeout"); // milliseconds
    QTest::newRow("milliseconds::max()") << qint64(milliseconds::max().count());
    QTest::newRow("milliseconds::max() - 1ms") << qint64((milliseconds::max() - milliseconds(1)).count());
    QTest::newRow("300 years") << qint64(milliseconds(std::chrono::years(300)).count());
    QTest::newRow("293 years") << qint64(milliseconds(std::chrono::years(293)).count());
}

//! Timeouts that have passed already.
void addPastTimeouts()
{
    QTest::addColumn<qint64>("timeout"); // milliseconds
    QTest::newRow("zero") << qint64(0);
    QTest::newRow("-1ms") << qint64(-1);
    QTest::newRow("milliseconds::min()") << qint64(milliseconds::min().count());
}

QCoro::Task<TaskPool::WaitResult<Future<int>>> waitFlagged(QList<Future<int>> futures, milliseconds timeout,
                                                           bool* returned)
{
    auto result = co_await TaskPool::wait(futures, ReturnWhen::FirstCompleted, timeout);
    *returned = true;
    co_return result;
}

//! How many futures asCompleted() yielded, or -1 when it threw TimeoutError.
QCoro::Task<int> countCompleted(QList<Future<int>> futures, milliseconds timeout, bool* returned)
{
    int yielded = 0;
    try {
        QCORO_FOREACH(const Future<int>& future, TaskPool::asCompleted(futures, timeout))
        {
            Q_UNUSED(future);
            ++yielded;
        }
    } catch (const TimeoutError&) {
        yielded = -1;
    }
    *returned = true;
    co_return yielded;
}

} // namespace

class tst_RegressionsWait : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void init()
    {
        Tracked::alive = 0;
        CopyThrows::alive = 0;
        CopyThrows::throwOnCopyOf = -1;
        CallableCopyThrows::alive = 0;
        failedAllocations = 0;
    }

    // ---- 11.10: map() and a throwing input ---------------------------------------------------------

    // `++` throws while map() submits its first items: map() throws it; the items it had submitted
    // are cancelled (none starts) and the item being read is not leaked.
    void mapIncrementThrowsAtTheCall()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Outcomes outcomes(&pool);
            Gate gate;
            QString error;
            try {
                (void)pool.map([&gate](Tracked t) { return gatedTracked(&gate, std::move(t)); },
                               trackedThrowingAt(10, 3));
            } catch (const std::runtime_error& e) {
                error = QString::fromUtf8(e.what());
            }
            CO_COMPARE(error, QStringLiteral("predicate failed"));
            CO_COMPARE(pool.pendingCount(), 0);
            CO_COMPARE(outcomes.canceled.count(), 2); // items 0 and 1; item 2, whose ++ threw, was dropped
            co_await turns(3);
            CO_COMPARE(outcomes.started.count(), 0);
            CO_COMPARE(Tracked::alive, 0); // 31db168: 1, the item read before ++ threw
            co_await pool.shutdown();
        }());
    }

    // `++` throws while the iteration submits the next item (bufferSize 1): the step taking the
    // first result throws it, the running item 0 is cancelled, and nothing leaks.
    void mapIncrementThrowsDuringTheIteration()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Outcomes outcomes(&pool);
            Gate gate;
            {
                auto results = pool.map(
                    MapOptions { .bufferSize = 1 }, [&gate](Tracked t) { return gatedTracked(&gate, std::move(t)); },
                    trackedThrowingAt(10, 2));
                co_await until([&] { return pool.activeCount() == 1; });
                const auto [error, taken] = co_await drain(std::move(results));
                CO_COMPARE(error, QStringLiteral("predicate failed"));
                CO_COMPARE(taken, 0);
            }
            CO_COMPARE(outcomes.canceled.count(), 1); // 31db168: 0, item 0 ran on unowned
            gate.open();
            co_await until([&] { return pool.activeCount() == 0; });
            co_await turns(3);
            CO_COMPARE(outcomes.finished.count() + outcomes.failed.count(), 0);
            CO_COMPARE(Tracked::alive, 0); // 31db168: 1, item 1 leaked
            co_await pool.shutdown();
        }());
    }

    // `*` throws during the iteration (bufferSize 2): the results before it that were taken stay
    // taken, the step reading the bad item throws, what is outstanding is cancelled.
    void mapDereferenceThrowsDuringTheIteration()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Outcomes outcomes(&pool);
            Gate gate;
            gate.open();
            Gate stuck; // every item but the first waits here
            auto input = std::views::iota(0, 10) | std::views::transform([](int i) {
                             if (i == 3)
                                 throw std::runtime_error("read failed");
                             return Tracked(i);
                         });
            {
                auto results = pool.map(
                    MapOptions { .bufferSize = 2 },
                    [&gate, &stuck](Tracked t) { return gatedTracked(t.value == 0 ? &gate : &stuck, std::move(t)); },
                    input);
                // Taking result 0 submits item 2; taking result 1 reads item 3, which throws.
                const auto [error, taken] = co_await drain(std::move(results));
                CO_COMPARE(error, QStringLiteral("read failed"));
                CO_COMPARE(taken, 1);
            }
            CO_COMPARE(outcomes.canceled.count(), 2); // items 1 and 2; 31db168: 1 (item 1 ran on)
            stuck.open();
            co_await until([&] { return pool.activeCount() == 0; });
            co_await turns(3);
            CO_COMPARE(Tracked::alive, 0);
            co_await pool.shutdown();
        }());
    }

    // Guard (held on 31db168 too): the item's copy into its job throws (unbuffered, at the call):
    // map() throws it, the items submitted before are cancelled and none starts.
    void mapItemCopyThrowsAtTheCall()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Outcomes outcomes(&pool);
            {
                std::vector<CopyThrows> items;
                items.reserve(5);
                for (int i = 0; i < 5; ++i)
                    items.emplace_back(i);
                CopyThrows::throwOnCopyOf = 2;
                CO_VERIFY_THROWS((void)pool.map([](const CopyThrows& c) { return c.value; }, items),
                                 std::runtime_error);
                CO_COMPARE(outcomes.canceled.count(), 2);
                co_await turns(3);
                CO_COMPARE(outcomes.started.count(), 0);
            }
            CO_COMPARE(CopyThrows::alive, 0);
            co_await pool.shutdown();
        }());
    }

    // The item's copy throws during the iteration (bufferSize 1): the step throws it and the item
    // still running is cancelled.
    void mapItemCopyThrowsDuringTheIteration()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Outcomes outcomes(&pool);
            Gate gate;
            {
                std::vector<CopyThrows> items;
                items.reserve(5);
                for (int i = 0; i < 5; ++i)
                    items.emplace_back(i);
                CopyThrows::throwOnCopyOf = 1;
                auto results = pool.map(
                    MapOptions { .bufferSize = 1 },
                    [&gate](CopyThrows c) -> QCoro::Task<int> {
                        co_await gate;
                        co_return c.value;
                    },
                    items);
                co_await until([&] { return pool.activeCount() == 1; });
                const auto [error, taken] = co_await drain(std::move(results));
                CO_COMPARE(error, QStringLiteral("copy failed"));
                CO_COMPARE(taken, 0);
                CO_COMPARE(outcomes.canceled.count(), 1); // 31db168: 0
                gate.open();
                co_await until([&] { return pool.activeCount() == 0; });
                co_await turns(3);
            }
            CO_COMPARE(CopyThrows::alive, 0);
            co_await pool.shutdown();
        }());
    }

    // Guard (held on 31db168 too): the callable is copied once, at the call; when that throws,
    // map() throws it and nothing is submitted or read.
    void mapCallableCopyThrows()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Outcomes outcomes(&pool);
            int read = 0;
            auto input = std::views::iota(0, 5) | std::views::transform([&read](int i) {
                             ++read;
                             return i;
                         });
            {
                const CallableCopyThrows fn;
                CO_VERIFY_THROWS((void)pool.map(fn, input), std::runtime_error);
            }
            co_await turns(3);
            CO_COMPARE(read, 0);
            CO_COMPARE(pool.pendingCount(), 0);
            CO_COMPARE(outcomes.started.count() + outcomes.canceled.count(), 0);
            CO_COMPARE(CallableCopyThrows::alive, 0);
            co_await pool.shutdown();
        }());
    }

    // The job's allocation fails during the iteration (bufferSize 1): the step throws bad_alloc
    // and the running item is cancelled.
    void mapJobAllocationFailsDuringTheIteration()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Outcomes outcomes(&pool);
            Gate gate;
            auto input = std::views::iota(0, 10) | std::views::transform([](int i) {
                             if (i == 1)
                                 failNextAllocation = true; // the next allocation is the item's job
                             return i;
                         });
            {
                auto results = pool.map(
                    MapOptions { .bufferSize = 1 },
                    [&gate](int i) -> QCoro::Task<int> {
                        co_await gate;
                        co_return i;
                    },
                    input);
                co_await until([&] { return pool.activeCount() == 1; });
                const auto [error, taken] = co_await drain(std::move(results));
                CO_COMPARE(failedAllocations.load(), 1);
                CO_COMPARE(error, QStringLiteral("bad_alloc"));
                CO_COMPARE(taken, 0);
            }
            CO_COMPARE(outcomes.canceled.count(), 1);
            gate.open();
            co_await until([&] { return pool.activeCount() == 0; });
            co_await turns(3);
            CO_COMPARE(outcomes.started.count(), 1);
            CO_COMPARE(outcomes.finished.count(), 0); // 31db168: 1, item 0 ran on unowned
            co_await pool.shutdown();
        }());
    }

    // The job's allocation fails at the call: map() throws bad_alloc; the first item is cancelled
    // and none starts. (On 31db168 the job was allocated before its item was read, so the failure
    // injected here landed in the enqueueing instead.)
    void mapJobAllocationFailsAtTheCall()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Outcomes outcomes(&pool);
            auto input = std::views::iota(0, 10) | std::views::transform([](int i) {
                             if (i == 1)
                                 failNextAllocation = true;
                             return i;
                         });
            CO_VERIFY_THROWS((void)pool.map([](int i) { return i; }, input), std::bad_alloc);
            CO_COMPARE(failedAllocations.load(), 1);
            CO_COMPARE(outcomes.canceled.count(), 1);
            co_await turns(3);
            CO_COMPARE(outcomes.started.count(), 0);
            CO_COMPARE(pool.pendingCount(), 0);
            co_await pool.shutdown();
        }());
    }

    // ---- 11.11: timeouts beyond the clock ------------------------------------------------------------

    // wait() with a timeout too long for the clock waits as with none.
    void waitWithAHugeTimeoutWaits_data() { addHugeTimeouts(); }
    void waitWithAHugeTimeoutWaits()
    {
        QFETCH(qint64, timeout);
        run([](milliseconds timeout) -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate gate;
            const QList<Future<int>> futures { pool.submit(gated, &gate, 7) };
            bool returned = false;
            auto waiting = waitFlagged(futures, timeout, &returned);
            co_await turns(5);
            CO_VERIFY2(!returned, "returned before the future settled"); // 31db168: at once
            gate.open();
            const auto [done, notDone] = co_await waiting;
            CO_COMPARE(done.size(), 1);
            CO_COMPARE(notDone.size(), 0);
            co_await pool.shutdown();
        }(milliseconds(timeout)));
    }

    // asCompleted() with a timeout too long for the clock waits as with none.
    void asCompletedWithAHugeTimeoutWaits_data() { addHugeTimeouts(); }
    void asCompletedWithAHugeTimeoutWaits()
    {
        QFETCH(qint64, timeout);
        run([](milliseconds timeout) -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate gate;
            const QList<Future<int>> futures { pool.submit(gated, &gate, 7) };
            bool returned = false;
            auto counting = countCompleted(futures, timeout, &returned);
            co_await turns(5);
            CO_VERIFY2(!returned, "returned before the future settled"); // 31db168: TimeoutError
            gate.open();
            CO_COMPARE(co_await counting, 1);
            co_await pool.shutdown();
        }(milliseconds(timeout)));
    }

    // Guard: zero and negative timeouts (milliseconds::min() included) return what has settled.
    void waitWithAPastTimeoutReturnsAtOnce_data() { addPastTimeouts(); }
    void waitWithAPastTimeoutReturnsAtOnce()
    {
        QFETCH(qint64, timeout);
        run([](milliseconds timeout) -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate gate;
            const QList<Future<int>> futures { Future<int>(successfulFuture()), pool.submit(gated, &gate, 7) };
            bool returned = false;
            auto waiting = waitFlagged(futures, timeout, &returned);
            CO_VERIFY(returned); // without suspending
            const auto [done, notDone] = co_await waiting;
            CO_COMPARE(done.size(), 1);
            CO_COMPARE(notDone.size(), 1);
            gate.open();
            co_await pool.shutdown();
        }(milliseconds(timeout)));
    }

    // Guard: zero and negative timeouts yield what has settled, then throw TimeoutError.
    void asCompletedWithAPastTimeoutTimesOut_data() { addPastTimeouts(); }
    void asCompletedWithAPastTimeoutTimesOut()
    {
        QFETCH(qint64, timeout);
        run([](milliseconds timeout) -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate gate;
            const QList<Future<int>> futures { Future<int>(successfulFuture()), pool.submit(gated, &gate, 7) };
            int yielded = 0;
            bool timedOut = false;
            try {
                QCORO_FOREACH(const Future<int>& future, TaskPool::asCompleted(futures, timeout))
                {
                    CO_VERIFY(future.isFinished());
                    ++yielded;
                }
            } catch (const TimeoutError&) {
                timedOut = true;
            }
            CO_COMPARE(yielded, 1);
            CO_VERIFY(timedOut);
            gate.open();
            co_await pool.shutdown();
        }(milliseconds(timeout)));
    }

    // Guard: a long timeout that the clock can count (200 years) is still a deadline, not "none",
    // and a short one still times out.
    void finiteTimeoutsStillCount()
    {
        using namespace std::chrono;
        const QDeadlineTimer far = TaskPool::detail::deadlineAfter(milliseconds(years(200)));
        QVERIFY(!far.isForever());
        QVERIFY(far.remainingTimeAsDuration() > duration_cast<nanoseconds>(years(199)));
        QVERIFY(TaskPool::detail::deadlineAfter(milliseconds(years(300))).isForever());
        QVERIFY(TaskPool::detail::deadlineAfter(milliseconds::min()).hasExpired());
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate gate;
            const QList<Future<int>> futures { pool.submit(gated, &gate, 7) };
            const auto [done, notDone] = co_await TaskPool::wait(futures, ReturnWhen::AllCompleted, 20ms);
            CO_COMPARE(done.size(), 0);
            CO_COMPARE(notDone.size(), 1);
            gate.open();
            co_await pool.shutdown();
        }());
    }
};

QTEST_GUILESS_MAIN(tst_RegressionsWait)
#include "tst_regressions_wait.moc"
