// SPDX-License-Identifier: MIT
// Corner cases of the core: a retiring worker that leaves queued work behind, and the scheduler in
// a thread without a Qt event loop.
#include "testutil.h"

#include <QAbstractEventDispatcher>

#include <array>
#include <map>
#include <thread>

using namespace TestUtil;
using TaskPool::Future;
using TaskPool::TaskPoolExecutor;

class tst_CoverageCore : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void retiredWorkerHandsQueuedWorkToNewWorker();
    void yieldWithoutEventLoopResumesInline();
};

// Three workers busy, one task queued. The bound drops to 1 (workers 1 and 2 retire once their
// tasks end), worker 1 leaves, then the bound rises to 2 again: two workers are still counted, so
// nothing is spawned yet. When worker 2 leaves, one worker remains under a bound of 2 and a task
// is queued: a new worker must take it at once, while worker 0 is still busy.
void tst_CoverageCore::retiredWorkerHandsQueuedWorkToNewWorker()
{
    run([]() -> QCoro::Task<void> {
        TaskPoolExecutor pool(3, QStringLiteral("R"));
        std::array<Gate, 3> gates;
        std::map<QString, Gate*> gateOfWorker;
        auto job = [&](Gate* gate) -> QCoro::Task<int> {
            gateOfWorker[TaskPoolExecutor::currentWorkerName()] = gate;
            co_await *gate;
            co_return 1;
        };
        std::vector<Future<int>> busy;
        for (auto& gate : gates)
            busy.push_back(pool.submit(job, &gate));
        co_await until([&] { return pool.activeCount() == 3; });
        Future<int> queued = pool.submit([] { return 42; });
        CO_COMPARE(pool.pendingCount(), 1);
        CO_COMPARE(gateOfWorker.size(), size_t(3));

        pool.setMaxWorkers(1);
        gateOfWorker.at(QStringLiteral("R_1"))->open();
        co_await until([&] { return pool.workerCount() == 2; });
        CO_COMPARE(pool.pendingCount(), 1); // a retiring worker takes no new task

        pool.setMaxWorkers(2);
        co_await turns();
        CO_COMPARE(pool.workerCount(), 2); // workers 0 and 2: the bound is full
        CO_COMPARE(pool.pendingCount(), 1);

        gateOfWorker.at(QStringLiteral("R_2"))->open();
        co_await until([&] { return queued.isFinished(); });
        CO_COMPARE(queued.result(), 42);
        CO_VERIFY(!gateOfWorker.at(QStringLiteral("R_0"))->isOpen()); // worker 0 is still busy
        CO_COMPARE(pool.activeCount(), 1);

        gateOfWorker.at(QStringLiteral("R_0"))->open();
        co_await until([&] { return pool.activeCount() == 0; });
        for (auto& future : busy)
            CO_COMPARE(future.result(), 1);
        co_await pool.shutdown();
    }());
}

// A thread without an event dispatcher (no Qt event loop) cannot resume anything later: a
// coroutine yielding there is resumed at once instead of being lost.
void tst_CoverageCore::yieldWithoutEventLoopResumesInline()
{
    bool hadDispatcher = true;
    int stage = 0;
    std::thread thread([&] {
        hadDispatcher = QAbstractEventDispatcher::instance() != nullptr;
        auto body = [](int& stage) -> QCoro::Task<void> {
            stage = 1;
            co_await TaskPool::detail::Yield {};
            stage = 2;
            co_await TaskPool::detail::Yield {};
            stage = 3;
        };
        QCoro::Task<void> task = body(stage);
        // Eagerly started and never suspended for good: done before the call returned.
        if (stage == 3)
            stage = task.isReady() ? 4 : -1;
    });
    thread.join();
    QVERIFY(!hadDispatcher);
    QCOMPARE(stage, 4);
}

QTEST_GUILESS_MAIN(tst_CoverageCore)
#include "tst_coverage_core.moc"
