// SPDX-License-Identifier: MIT
// The scheduling policies on their own (priority queue, key gate, rate window, deadlines, the
// manual clock), and the executor's time-based policies in virtual time: exact, whatever the load.
#include "../src/deadlines_p.h"
#include "../src/keygate_p.h"
#include "../src/ratewindow_p.h"
#include "../src/taskqueue_p.h"
#include "testutil.h"

#include <QtTest>

using namespace TaskPool;
using namespace TestUtil;
using namespace std::chrono_literals;

namespace {

//! A job that only sits in queues.
class QueuedJob final : public detail::Job {
public:
    explicit QueuedJob(int priority) { this->priority = priority; }
    void fail(std::exception_ptr) override { }
    bool run(std::coroutine_handle<>) override { return false; }
    void finishRun() override { }
    void discard() override { }
    bool isCancelRequested() const noexcept override { return false; }
    detail::Outcome outcome(QString*) const override { return detail::Outcome::Cancelled; }

protected:
    void markCancelled() override { }
};

using Jobs = std::vector<detail::JobRef>;
detail::Job* make(Jobs& jobs, int priority = 0)
{
    static quint32 arrivals = std::numeric_limits<quint32>::max() - 3; // wraps around, as it may
    jobs.emplace_back(new QueuedJob(priority));
    jobs.back()->arrival = ++arrivals;
    return jobs.back().get();
}

std::vector<quint64> drain(detail::PriorityQueue& queue)
{
    std::vector<quint64> ids;
    while (detail::Job* job = queue.top()) {
        ids.push_back(job->id);
        queue.remove(job);
    }
    return ids;
}

//! Lets what the event loop has to do run down.
void settle()
{
    for (int i = 0; i < 10; ++i)
        QCoreApplication::processEvents();
}

} // namespace

class tst_Policies : public QObject {
    Q_OBJECT

private Q_SLOTS:
    // ---- PriorityQueue ----
    void queueIsFifoWithinAPriority()
    {
        Jobs jobs;
        detail::PriorityQueue queue;
        for (int i = 0; i < 5; ++i)
            queue.push(make(jobs));
        QVERIFY(!queue.empty());
        QCOMPARE(drain(queue),
                 (std::vector<quint64> { jobs[0]->id, jobs[1]->id, jobs[2]->id, jobs[3]->id, jobs[4]->id }));
        QVERIFY(queue.empty());
    }

    void queueServesHigherPrioritiesFirst()
    {
        Jobs jobs;
        detail::PriorityQueue queue;
        const int priorities[] = { 0, -3, 5, 0, 5, std::numeric_limits<int>::min(), std::numeric_limits<int>::max() };
        for (int priority : priorities)
            queue.push(make(jobs, priority));
        const std::vector<quint64> expected { jobs[6]->id, jobs[2]->id, jobs[4]->id, jobs[0]->id,
                                              jobs[3]->id, jobs[1]->id, jobs[5]->id };
        std::vector<quint64> seen;
        queue.forEach([&](detail::Job* job) { seen.push_back(job->id); });
        QCOMPARE(seen, expected); // forEach walks in start order too
        QCOMPARE(drain(queue), expected);
    }

    void queueRemovesFromTheMiddleAndPutsBackInOrder()
    {
        Jobs jobs;
        detail::PriorityQueue queue;
        for (int i = 0; i < 4; ++i)
            queue.push(make(jobs, i % 2));
        queue.remove(jobs[2].get()); // priority 0, the second of its list
        queue.remove(jobs[1].get()); // priority 1, its list stays with jobs[3]
        std::vector<quint64> left;
        queue.forEach([&](detail::Job* job) { left.push_back(job->id); });
        QCOMPARE(left, (std::vector<quint64> { jobs[3]->id, jobs[0]->id }));
        queue.pushInOrder(jobs[2].get());
        queue.pushInOrder(jobs[1].get());
        QCOMPARE(drain(queue), (std::vector<quint64> { jobs[1]->id, jobs[3]->id, jobs[0]->id, jobs[2]->id }));
    }

    // ---- LocalKeyGate ----
    void heldListKeepsStartOrder()
    {
        Jobs jobs;
        detail::JobQueue held;
        const int priorities[] = { 0, 0, 5, -1, 5, 0 };
        for (int priority : priorities)
            held.linkByRank(make(jobs, priority));
        std::vector<quint64> order;
        for (detail::Job* job = held.head; job; job = job->next)
            order.push_back(job->id);
        const std::vector<quint64> expected { jobs[2]->id, jobs[4]->id, jobs[0]->id,
                                              jobs[1]->id, jobs[5]->id, jobs[3]->id };
        QCOMPARE(order, expected);
        QVERIFY(detail::JobQueue::ranksBefore(jobs[2].get(), jobs[0].get()));
        QVERIFY(detail::JobQueue::ranksBefore(jobs[0].get(), jobs[1].get()));
        QVERIFY(!detail::JobQueue::ranksBefore(jobs[3].get(), jobs[5].get()));
        for (detail::Job* job = held.head; job; job = held.head)
            held.unlink(job);
    }

    void keyGateCountsPerKey()
    {
        detail::LocalKeyGate gate;
        QCOMPARE(gate.room(QStringLiteral("a")), std::numeric_limits<int>::max());
        gate.setDefaultLimit(2);
        gate.setLimit(QStringLiteral("b"), 1);
        gate.acquire(QStringLiteral("a"));
        QCOMPARE(gate.room(QStringLiteral("a")), 1);
        gate.acquire(QStringLiteral("a"));
        QCOMPARE(gate.room(QStringLiteral("a")), 0);
        gate.acquire(QStringLiteral("b"));
        QCOMPARE(gate.room(QStringLiteral("b")), 0);
        gate.setLimit(QStringLiteral("b"), 3); // raised while running: the running one still counts
        QCOMPARE(gate.room(QStringLiteral("b")), 2);
        gate.release(QStringLiteral("a"));
        QCOMPARE(gate.room(QStringLiteral("a")), 1);
        gate.release(QStringLiteral("a"));
        QCOMPARE(gate.running(QStringLiteral("a")), 0);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, gate.setLimit(QStringLiteral("a"), 0));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, gate.setDefaultLimit(-1));
        QCOMPARE(gate.limit(QStringLiteral("a")), 2); // a refused limit changes nothing
    }

    // ---- LocalRateWindow ----
    void rateWindowGrantsTheLimitPerWindow()
    {
        detail::LocalRateWindow rate;
        rate.setLimit(3, 100ms);
        const Clock::TimePoint t0(1h);
        QVERIFY(rate.tryAcquire(t0).granted);
        QVERIFY(rate.tryAcquire(t0 + 10ms).granted);
        QVERIFY(rate.tryAcquire(t0 + 20ms).granted);
        const auto refused = rate.tryAcquire(t0 + 30ms);
        QVERIFY(!refused.granted);
        QCOMPARE(refused.retryAt, t0 + 100ms); // when the first start leaves the window
        QVERIFY(!rate.tryAcquire(t0 + 99ms).granted);
        QVERIFY(rate.tryAcquire(t0 + 100ms).granted);
        QVERIFY(!rate.tryAcquire(t0 + 100ms).granted);
        QCOMPARE(rate.tryAcquire(t0 + 105ms).retryAt, t0 + 110ms);
    }

    void rateWindowHoldsAcrossLimitChanges()
    {
        detail::LocalRateWindow rate;
        rate.setLimit(5, 1s);
        const Clock::TimePoint t0(1h);
        for (int i = 0; i < 5; ++i)
            QVERIFY(rate.tryAcquire(t0).granted);
        rate.setLimit(3, 1s);
        const auto refused = rate.tryAcquire(t0 + 1ms);
        QVERIFY(!refused.granted);
        QCOMPARE(refused.retryAt, t0 + 1s); // three of the five must leave: all at t0
        rate.setLimit(5, 1s);
        QVERIFY(!rate.tryAcquire(t0 + 2ms).granted); // the five starts still count
        QVERIFY(rate.tryAcquire(t0 + 1s).granted);
    }

    void rateWindowWidenedKeepsTheStartsThatCount()
    {
        detail::LocalRateWindow rate;
        rate.setLimit(2, 10ms);
        const Clock::TimePoint t0(1h);
        QVERIFY(rate.tryAcquire(t0).granted);
        QVERIFY(rate.tryAcquire(t0 + 1ms).granted);
        QVERIFY(rate.tryAcquire(t0 + 12ms).granted); // t0 has left the 10 ms window
        rate.setLimit(2, 100ms);
        const auto refused = rate.tryAcquire(t0 + 13ms);
        QVERIFY(!refused.granted); // the two most recent starts are within 100 ms
        QCOMPARE(refused.retryAt, t0 + 101ms);
        QVERIFY(rate.isFull(t0 + 100ms));
        QVERIFY(!rate.isFull(t0 + 101ms));
    }

    void rateWindowRefusesBadLimitsAndCapsHugeWindows()
    {
        detail::LocalRateWindow rate;
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, rate.setLimit(-1, 1s));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, rate.setLimit(1, 0ms));
        QCOMPARE(rate.limit(), 0);
        rate.setLimit(1, std::chrono::milliseconds::max());
        QCOMPARE(rate.window(), detail::LocalRateWindow::century);
        const Clock::TimePoint t0(1h);
        QVERIFY(rate.tryAcquire(t0).granted);
        QCOMPARE(rate.tryAcquire(t0 + 1h).retryAt, t0 + detail::LocalRateWindow::century); // no overflow
    }

    // ---- Deadlines and ManualClock ----
    void deadlinesComeDueInTimeOrder()
    {
        ManualClock clock;
        int fired = 0;
        detail::Deadlines<int> deadlines([&] { ++fired; });
        const auto t0 = clock.now();
        deadlines.add(clock, t0 + 30ms, 3);
        deadlines.add(clock, t0 + 10ms, 1);
        const auto second = deadlines.add(clock, t0 + 20ms, 2);
        QCOMPARE(clock.nextAlarm(), t0 + 10ms);
        deadlines.remove(second);
        clock.advance(25ms);
        QCOMPARE(fired, 1);
        QCOMPARE(deadlines.takeDue(clock.now()), std::optional<int>(1));
        QCOMPARE(deadlines.takeDue(clock.now()), std::nullopt); // 3 is not due
        deadlines.rearm();
        QCOMPARE(clock.nextAlarm(), t0 + 30ms);
        clock.advance(5ms);
        QCOMPARE(fired, 2);
        QCOMPARE(deadlines.takeDue(clock.now()), std::optional<int>(3));
        QVERIFY(deadlines.empty());
    }

    void manualClockFiresEachAlarmAtItsOwnTime()
    {
        ManualClock clock;
        const auto t0 = clock.now();
        std::vector<std::pair<int, Clock::TimePoint>> fired;
        std::unique_ptr<Clock::Alarm> a, b, c;
        a = clock.makeAlarm([&] {
            fired.emplace_back(1, clock.now());
            c->start(clock.now() + 5ms); // falls within the same advance
        });
        b = clock.makeAlarm([&] {
            fired.emplace_back(2, clock.now());
            b.reset(); // an alarm may destroy itself
        });
        c = clock.makeAlarm([&] { fired.emplace_back(3, clock.now()); });
        b->start(t0 + 20ms);
        a->start(t0 + 10ms);
        clock.advance(100ms);
        const std::vector<std::pair<int, Clock::TimePoint>> expected { { 1, t0 + 10ms },
                                                                       { 3, t0 + 15ms },
                                                                       { 2, t0 + 20ms } };
        QCOMPARE(fired, expected);
        QCOMPARE(clock.now(), t0 + 100ms);
        QVERIFY(!clock.nextAlarm());
        a->start(t0 + 150ms);
        a->stop();
        clock.advance(100ms);
        QCOMPARE(fired.size(), std::size_t(3));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, clock.advance(-1ns));
    }

    // ---- the executor in virtual time ----
    void executorRateWindowInVirtualTime()
    {
        auto clock = std::make_shared<ManualClock>();
        TaskPoolExecutor pool(8);
        pool.setClock(clock);
        pool.setRateLimit(3, 100ms);
        std::vector<Clock::TimePoint> starts;
        connect(&pool, &TaskPoolExecutor::taskStarted, this, [&] { starts.push_back(clock->now()); });
        std::vector<Future<int>> futures;
        for (int i = 0; i < 8; ++i)
            futures.push_back(pool.submit([i] { return i; }));
        settle();
        QCOMPARE(starts.size(), std::size_t(3));
        QVERIFY(pool.isRateLimited());
        QCOMPARE(pool.pendingCount(), 5);
        clock->advance(99ms);
        settle();
        QCOMPARE(starts.size(), std::size_t(3));
        clock->advance(1ms);
        settle();
        QCOMPARE(starts.size(), std::size_t(6));
        clock->advance(100ms);
        settle();
        QCOMPARE(starts.size(), std::size_t(8));
        QVERIFY(!pool.isRateLimited());
        // Never more than 3 starts within any 100 ms.
        for (std::size_t i = 3; i < starts.size(); ++i)
            QVERIFY(starts[i] - starts[i - 3] >= 100ms);
        for (int i = 0; i < 8; ++i)
            QCOMPARE(futures[std::size_t(i)].result(), i);
    }

    void executorTimeoutInVirtualTime()
    {
        auto clock = std::make_shared<ManualClock>();
        TaskPoolExecutor pool(2);
        pool.setClock(clock);
        pool.setDefaultTimeout(30ms);
        Gate gate;
        auto timed = pool.submit({ .timeout = 50ms }, waitFor, &gate);
        auto byDefault = pool.submit(waitFor, &gate);
        settle();
        QCOMPARE(pool.activeCount(), 2);
        clock->advance(29ms);
        settle();
        QVERIFY(!timed.done() && !byDefault.done());
        clock->advance(1ms);
        settle();
        QVERIFY(!timed.done());
        QVERIFY(byDefault.done());
        QVERIFY_THROWS_EXCEPTION(TimeoutError, byDefault.result());
        clock->advance(20ms);
        settle();
        QVERIFY(timed.done());
        QVERIFY_THROWS_EXCEPTION(TimeoutError, timed.result());
        gate.open(); // the bodies end; their slots free
        QTRY_COMPARE(pool.activeCount(), 0);
    }

    void setClockRefusesNullAndBusyExecutors()
    {
        TaskPoolExecutor pool(1);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, pool.setClock(nullptr));
        Gate gate;
        auto future = pool.submit(waitFor, &gate);
        QVERIFY_THROWS_EXCEPTION(std::logic_error, pool.setClock(std::make_shared<ManualClock>()));
        gate.open();
        QTRY_VERIFY(future.done());
        QTRY_COMPARE(pool.activeCount(), 0);
        pool.setClock(std::make_shared<ManualClock>()); // idle: accepted
        pool.setClock(systemClock());
    }
};

QTEST_GUILESS_MAIN(tst_Policies)
#include "tst_policies.moc"
