// SPDX-License-Identifier: MIT
// Adversarial review of the core's promises (README: "The event loop: nested loops, blocking,
// re-entrant slots", "Future<T> and cancellation", "The executor", "map"). One named test per
// break found; each comment names the promise it breaks. These fail until the library is fixed.
#include "testutil.h"

#include <QFutureWatcher>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iterator>
#include <limits>
#include <mutex>
#include <ranges>
#include <stdexcept>
#include <thread>

using namespace TestUtil;
using namespace std::chrono_literals;
using TaskPool::CancelledError;
using TaskPool::Future;
using TaskPool::ReturnWhen;
using TaskPool::TaskPoolExecutor;

namespace {

//! A map() callable that counts its live copies.
struct Counted {
    static inline int live = 0;
    Counted() { ++live; }
    Counted(const Counted&) { ++live; }
    Counted(Counted&&) noexcept { ++live; }
    ~Counted() { --live; }
    int operator()(int x) const { return x; }
};

//! An infinite input range 0, 1, ... whose iterator's ++ throws once it reached 1.
struct ThrowingIncrement {
    struct iterator {
        using value_type = int;
        using difference_type = std::ptrdiff_t;
        int value = 0;
        int operator*() const { return value; }
        iterator& operator++()
        {
            if (value >= 1)
                throw std::runtime_error("increment failed");
            ++value;
            return *this;
        }
        void operator++(int) { ++*this; }
        bool operator==(std::default_sentinel_t) const { return false; }
    };
    iterator begin() const { return {}; }
    std::default_sentinel_t end() const { return {}; }
};
static_assert(std::ranges::input_range<ThrowingIncrement>);

//! Calls \a rescue from another thread unless disarm() comes first within \a patience: a way to
//! end a blocking call in this thread that should not have blocked.
class Rescuer {
public:
    template <typename F> Rescuer(std::chrono::milliseconds patience, F rescue)
    {
        m_thread = std::thread([this, patience, rescue]() mutable {
            std::unique_lock lock(m_mutex);
            if (!m_cv.wait_for(lock, patience, [this] { return m_disarmed; })) {
                m_rescued = true;
                lock.unlock();
                rescue();
            }
        });
    }
    ~Rescuer()
    {
        disarm();
        m_thread.join();
    }
    void disarm()
    {
        std::lock_guard lock(m_mutex);
        m_disarmed = true;
        m_cv.notify_all();
    }
    bool rescued()
    {
        std::lock_guard lock(m_mutex);
        return m_rescued;
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    bool m_disarmed = false;
    bool m_rescued = false;
    std::thread m_thread;
};

//! A result whose move, once armed, tells another thread it is running and waits for its leave:
//! the executor's thread is then inside the job's settle (Qt stores a result by moving it).
struct HeldMove {
    static inline std::mutex mutex;
    static inline std::condition_variable cv;
    static inline bool armed = false;
    static inline bool moving = false;
    static inline bool released = false;
    int value = 0;
    explicit HeldMove(int v) : value(v) { }
    HeldMove(const HeldMove& other) = default;
    HeldMove(HeldMove&& other) noexcept : value(other.value)
    {
        std::unique_lock lock(mutex);
        if (!std::exchange(armed, false))
            return;
        moving = true;
        cv.notify_all();
        cv.wait_for(lock, std::chrono::seconds(5), [] { return released; });
    }
    HeldMove& operator=(const HeldMove&) = default;
};

} // namespace

class tst_Adversarial : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // Breaks "TaskPoolExecutor::currentWorkerName() gives the running task's worker during its
    // synchronous start" together with "Nested event loops work": a task whose synchronous start
    // runs a nested loop in which another task starts comes back with no worker name.
    void currentWorkerNameSurvivesANestedLoop()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2, QStringLiteral("Nest"));
            auto outer = pool.submit([&] {
                const QString before = TaskPoolExecutor::currentWorkerName();
                auto inner = pool.submit(sleepy, 1);
                nestedLoopUntil([&] { return inner.isFinished(); });
                return before + u'|' + TaskPoolExecutor::currentWorkerName();
            });
            CO_COMPARE(co_await outer, QStringLiteral("Nest_0|Nest_0"));
            co_await pool.shutdown();
        }());
    }

    // Breaks "[a plain QFuture cancel] is honoured the first time anything looks at the future
    // through TaskPool::Future (done(), cancelled(), exception(), co_await, or the waiting helpers)
    // ... (the future is then cancelled and finished ...)" and "pendingCount drops": wait() reports
    // the queued future done, yet it is not finished and still counted as pending.
    void waitingHelpersHonourAPlainCancel()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto running = pool.submit(gated, &gate, 1);
            auto queued = pool.submit([] { return 2; });
            co_await until([&] { return pool.activeCount() == 1; });
            QFuture<int> plain = queued;
            plain.cancel();
            const QList<Future<int>> list { queued };
            auto [done, notDone] = co_await TaskPool::wait(list);
            const bool finished = plain.isFinished(); // Qt's view, looked at without TaskPool::Future
            const int pending = pool.pendingCount();
            gate.open();
            CO_COMPARE(co_await running, 1);
            co_await pool.shutdown();
            CO_COMPARE(done.size(), 1);
            CO_VERIFY(finished);
            CO_COMPARE(pending, 0);
        }());
    }

    // Breaks "the pool keeps no stale references" / "callable and arguments are destroyed as soon as
    // the task ends": a map() input whose iterator's ++ throws leaks the item just created, and the
    // callable with it (ASan's leak checker reports it too).
    void mapWithAThrowingIncrementLeaksNothing()
    {
        run([]() -> QCoro::Task<void> {
            {
                TaskPoolExecutor pool(2);
                bool threw = false;
                try {
                    auto results = pool.map({ .bufferSize = 4 }, Counted {}, ThrowingIncrement {});
                    QCORO_FOREACH(int r, results)
                    {
                        Q_UNUSED(r);
                    }
                } catch (const std::runtime_error&) {
                    threw = true;
                }
                CO_VERIFY(threw);
                co_await pool.shutdown();
            }
            co_await turns(5);
            CO_COMPARE(Counted::live, 0);
        }());
    }

    // "maxWorkers is never exceeded" / "lowering it lets surplus workers leave once their task
    // ends": a slot on pendingCountChanged (emitted inside the worker's dequeue) lowers the bound.
    // The dequeued task already counts as running when the slot runs (so it runs on, as any task
    // running when the bound is lowered does), and nothing else starts above the lowered bound.
    void loweredBoundFromADequeueSlotIsNotExceeded()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate gate;
            auto first = pool.submit(gated, &gate, 1);
            co_await until([&] { return pool.activeCount() == 1; });
            int activeWhenLowered = -1;
            bool lowered = false;
            QObject::connect(&pool, &TaskPoolExecutor::pendingCountChanged, &pool, [&](int pending) {
                if (pending == 0 && !lowered) { // the second task leaves the queue for a worker
                    lowered = true;
                    activeWhenLowered = pool.activeCount();
                    pool.setMaxWorkers(1);
                }
            });
            auto second = pool.submit([&] { return 2; });
            Gate thirdGate;
            int peakActiveAfter = 0;
            QObject::connect(&pool, &TaskPoolExecutor::activeCountChanged, &pool,
                             [&](int active) { peakActiveAfter = std::max(peakActiveAfter, active); });
            CO_COMPARE(co_await second, 2);
            CO_VERIFY(lowered);
            CO_COMPARE(activeWhenLowered, 2); // counted running before any signal told of it
            auto third = pool.submit(gated, &thirdGate, 3);
            co_await turns(5);
            CO_VERIFY(!third.isFinished());
            CO_COMPARE(pool.activeCount(), 1); // only the first: the third waits for the lowered bound
            gate.open();
            CO_COMPARE(co_await first, 1);
            thirdGate.open();
            CO_COMPARE(co_await third, 3);
            CO_VERIFY(peakActiveAfter <= 2);
            co_await pool.shutdown();
        }());
    }

    // Breaks "Do not block on a pool future in the executor's own thread ... Through TaskPool::Future
    // they throw std::logic_error instead": reading the results through Future's iterators (as
    // resultAt() and takeResult() do) blocks for ever. Another thread cancels the future after 2 s
    // to end the block; the test fails when that was needed.
    void iteratingInTheExecutorThreadThrows()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto f = pool.submit([] { return 5; });
            bool threw = false;
            bool rescued = false;
            {
                Future<int> copy = f;
                Rescuer rescuer(2000ms, [copy]() mutable { copy.cancel(); });
                try {
                    for (int v : f)
                        Q_UNUSED(v);
                } catch (const std::logic_error&) {
                    threw = true;
                }
                rescuer.disarm();
                rescued = rescuer.rescued();
            }
            CO_VERIFY2(!rescued, "blocked in the executor's thread until another thread cancelled");
            CO_VERIFY(threw);
            co_await pool.shutdown();
        }());
    }

    // Breaks "cancel(): false when the future had already settled" (and "All members are
    // thread-safe"): from another thread, cancel() returns false while the executor's thread is in
    // the middle of settling the task (storing its result), and done() right after is still false.
    void cancelReturningFalseMeansDone()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            {
                std::lock_guard lock(HeldMove::mutex);
                HeldMove::armed = true;
                HeldMove::moving = HeldMove::released = false;
            }
            Future<HeldMove> f = pool.submit([] { return HeldMove(7); });
            bool cancelled = true;
            bool doneAfter = false;
            std::thread other([&] {
                std::unique_lock lock(HeldMove::mutex);
                if (!HeldMove::cv.wait_for(lock, std::chrono::seconds(5), [] { return HeldMove::moving; }))
                    return;
                lock.unlock();
                cancelled = f.cancel();
                doneAfter = f.done();
                lock.lock();
                HeldMove::released = true;
                HeldMove::cv.notify_all();
            });
            const HeldMove result = co_await f;
            other.join();
            co_await pool.shutdown();
            CO_COMPARE(result.value, 7);
            CO_VERIFY(!cancelled); // it settled with a result: the cancel lost
            CO_VERIFY2(doneAfter, "cancel() returned false, yet done() is false");
        }());
    }

    // Breaks "No timeout (the default) means no limit" for the waiting helpers at extreme values: a
    // timeout beyond ~292 years overflows inside QDeadlineTimer (signed overflow: UBSan aborts
    // here) and, without UBSan, wait() returns at once with the future not done.
    void hugeTimeoutIsNotAnImmediateTimeout()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto f = pool.submit(gated, &gate, 1);
            QTimer::singleShot(20, &pool, [&] { gate.open(); });
            const QList<Future<int>> list { f };
            const auto thousandYears = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::years(1000));
            auto [done, notDone] = co_await TaskPool::wait(list, ReturnWhen::AllCompleted, thousandYears);
            gate.open();
            co_await pool.shutdown();
            CO_COMPARE(done.size(), 1);
            CO_COMPARE(notDone.size(), 0);
        }());
    }
};

QTEST_MAIN(tst_Adversarial)
#include "tst_adversarial.moc"
