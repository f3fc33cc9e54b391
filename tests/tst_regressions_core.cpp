// SPDX-License-Identifier: MIT
// Promises the core once broke at its edges, one named test per case (each failed before its fix):
// nested event loops, throwing result types, re-entrant and throwing slots, a raised bound, huge
// bounds, cancels through plain QFuture copies, blocking reads in the executor's thread.
// The cross-thread cases are in tst_threading_regressions.
#include "testutil.h"

#include <QApplication>
#include <QDialog>
#include <QFutureWatcher>
#include <QPointer>
#include <QSignalSpy>

#include <climits>
#include <memory>
#include <stdexcept>

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#include <malloc.h>
#define TASKPOOL_HEAP_MEASURE 1
#endif

using namespace TestUtil;
using TaskPool::CancelledError;
using TaskPool::Future;
using TaskPool::TaskPoolExecutor;

namespace {

//! A result whose copies and moves throw once a budget is spent: a stand-in for a type that
//! allocates. (The budget lets a coroutine's own co_return move succeed, since the compiler ends
//! the process when that one throws; TaskPool's moves come after it.)
struct Fragile {
    static inline int budget = INT_MAX;
    int value = 0;
    explicit Fragile(int v) : value(v) { }
    Fragile(const Fragile& other) : value(other.value) { spend(); }
    Fragile(Fragile&& other) : value(other.value) { spend(); }
    Fragile& operator=(const Fragile&) = default;
    static void spend()
    {
        if (budget-- <= 0)
            throw std::runtime_error("Fragile: copy failed");
    }
};

//! Resumes the awaiting coroutine inside \a timer's timeout emission (as a QNetworkReply's
//! finished() would), with \a inEmission true for the duration of that emission.
struct ResumeInsideTimeout {
    QTimer* timer;
    bool* inEmission;
    QMetaObject::Connection connection;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> handle)
    {
        bool* flag = inEmission;
        connection = QObject::connect(timer, &QTimer::timeout, timer, [this, handle, flag] {
            QObject::disconnect(connection);
            *flag = true;
            handle.resume();
            *flag = false;
        });
        timer->start(1);
    }
    void await_resume() const noexcept { }
};

} // namespace

class tst_RegressionsCore : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // 1. A task that runs a nested event loop (as QEventLoop::exec, a modal dialog) must not freeze
    // the pool: a task it submits starts and finishes inside that loop.
    void nestedLoopInTaskRunsSubmittedWork()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            bool innerDone = false;
            auto outer = pool.submit([&] {
                auto inner = pool.submit(sleepy, 7);
                return nestedLoopUntil([&] { return inner.isFinished(); }) && inner.result() == 7 && (innerDone = true);
            });
            CO_VERIFY(co_await outer);
            CO_VERIFY(innerDone);
            co_await pool.shutdown();
        }());
    }

    // 1. The same, with the work submitted 50 ms into the nested loop, from a timer.
    void nestedLoopInTaskRunsWorkSubmittedLater()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            std::optional<Future<int>> inner;
            auto outer = pool.submit([&] {
                QTimer::singleShot(50, &pool, [&] { inner = pool.submit(sleepy, 8); });
                return nestedLoopUntil([&] { return inner && inner->isFinished(); });
            });
            CO_VERIFY(co_await outer);
            CO_COMPARE(co_await *inner, 8);
            co_await pool.shutdown();
        }());
    }

    // 1. A coroutine resumed by a settled pool future (from the ready queue) runs a nested loop:
    // work submitted and awaiters resumed inside it proceed.
    void nestedLoopInResumedAwaiter()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            CO_COMPARE(co_await pool.submit(sleepy, 1), 1);
            // Resumed from the ready queue: everything below runs inside its drain.
            auto second = pool.submit(sleepy, 2);
            bool resumed = false;
            auto waiter = [](Future<int> f, bool& resumed) -> QCoro::Task<void> {
                co_await f;
                resumed = true;
            }(second, resumed);
            CO_VERIFY(nestedLoopUntil([&] { return resumed; }));
            co_await waiter;
            co_await pool.shutdown();
        }());
    }

    // 1. A real modal dialog (QDialog::exec under the offscreen platform) inside a task: a task
    // submitted from the dialog's loop runs and closes it.
    void modalDialogInTask()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            auto outer = pool.submit([&] {
                QDialog dialog;
                QTimer::singleShot(0, &dialog, [&] {
                    auto inner = pool.submit(sleepy, 3);
                    inner.then(&dialog, [&](int v) { dialog.done(v); });
                });
                QTimer::singleShot(5000, &dialog, &QDialog::reject); // fallback: fails below
                return dialog.exec();
            });
            CO_COMPARE(co_await outer, 3);
            co_await pool.shutdown();
        }());
    }

    // 1. Related: a task's synchronous start never runs inside the previous task's last resumption
    // (here a QTimer's timeout emission): it starts from the event loop.
    void nextTaskStartsOnAFlatStack()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QTimer timer;
            timer.setSingleShot(true);
            bool inEmission = false;
            auto first = pool.submit([&]() -> QCoro::Task<int> {
                co_await ResumeInsideTimeout { &timer, &inEmission, {} };
                co_return 1;
            });
            bool startedInEmission = true;
            auto second = pool.submit([&] {
                startedInEmission = inEmission;
                return 2;
            });
            CO_COMPARE(co_await first, 1);
            CO_COMPARE(co_await second, 2);
            CO_VERIFY(!startedInEmission);
            co_await pool.shutdown();
        }());
    }

    // 4. A result whose move or copy throws: the future fails with that exception, nothing hangs.
    void throwingResultMoveFailsTheFuture()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            auto plain = pool.submit([] {
                Fragile::budget = 0;
                return Fragile(1);
            });
            auto coro = pool.submit([]() -> QCoro::Task<Fragile> {
                co_await TestUtil::sleep(std::chrono::milliseconds(1));
                Fragile::budget = 1; // the co_return's own move
                co_return Fragile(2);
            });
            for (auto* f : { &plain, &coro }) {
                bool threw = false;
                try {
                    co_await *f;
                } catch (const std::runtime_error& e) {
                    threw = QByteArray(e.what()) == "Fragile: copy failed";
                }
                CO_VERIFY(threw);
                CO_VERIFY(f->done());
                CO_VERIFY(f->exception());
            }
            Fragile::budget = INT_MAX;
            co_await pool.shutdown();
        }());
    }

    // 4. The same for map() items: the item fails where the iteration reaches it.
    void throwingResultMoveFailsTheMapItem()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            auto results = pool.map(
                [](int x) {
                    Fragile::budget = 0;
                    return Fragile(x);
                },
                QList<int> { 1, 2 });
            bool threw = false;
            try {
                QCORO_FOREACH(const Fragile& r, results)
                {
                    Q_UNUSED(r);
                }
            } catch (const std::runtime_error&) {
                threw = true;
            }
            Fragile::budget = INT_MAX;
            CO_VERIFY(threw);
            co_await pool.shutdown();
        }());
    }

    // 5. Awaiting never empties a future that other copies share: awaited twice, then waited on.
    void awaitingTwiceKeepsTheResult()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto f = pool.submit([] { return std::make_shared<int>(5); });
            Future<std::shared_ptr<int>> copy = f;
            CO_COMPARE(*co_await f, 5);
            CO_COMPARE(*co_await copy, 5);
            const QList<Future<std::shared_ptr<int>>> all { f };
            auto [done, notDone] = co_await TaskPool::wait(all);
            CO_COMPARE(done.size(), 1);
            CO_COMPARE(*f.result(), 5);
            co_await pool.shutdown();
        }());
    }

    // 6. Raising maxWorkers wakes a worker parked at the old bound: the queued task runs while
    // the running one still holds its slot.
    void raisingMaxWorkersWakesParkedWorkers()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate a, b;
            auto fa = pool.submit(gated, &a, 1);
            auto fb = pool.submit(gated, &b, 2);
            co_await until([&] { return pool.activeCount() == 2; });
            pool.setMaxWorkers(1);
            auto fc = pool.submit([] { return 3; });
            a.open();
            CO_COMPARE(co_await fa, 1);
            co_await turns(5); // the first worker parked: the lowered bound is full with b
            CO_VERIFY(!fc.isFinished());
            pool.setMaxWorkers(2);
            const QList<Future<int>> queued { fc };
            auto [done, notDone]
                = co_await TaskPool::wait(queued, TaskPool::ReturnWhen::AllCompleted, std::chrono::milliseconds(3000));
            CO_COMPARE(done.size(), 1);
            CO_VERIFY(!fb.isFinished());
            b.open();
            co_await pool.shutdown();
        }());
    }

    // 7. maxWorkers costs no memory up front: INT_MAX works, 100,000,000 takes no heap.
    void hugeMaxWorkersCostsNothingUpFront()
    {
#ifdef TASKPOOL_HEAP_MEASURE
        const auto before = mallinfo2().uordblks;
        {
            TaskPoolExecutor pool(100'000'000);
            QVERIFY(mallinfo2().uordblks - before < 64 * 1024);
            pool.setMaxWorkers(200'000'000);
            QVERIFY(mallinfo2().uordblks - before < 64 * 1024);
        }
#endif
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(INT_MAX);
            QList<Future<int>> futures;
            for (int i = 0; i < 5; ++i)
                futures.append(pool.submit(sleepy, i));
            for (int i = 0; i < 5; ++i)
                CO_COMPARE(co_await futures[i], i);
            CO_COMPARE(pool.workerCount(), 5);
            CO_COMPARE(pool.workerNames().size(), 5);
            pool.setMaxWorkers(INT_MAX - 1);
            CO_COMPARE(pool.maxWorkers(), INT_MAX - 1);
            co_await pool.shutdown();
        }());
    }

    // 8. A slot that deletes the executor during submit() (pendingCountChanged, workerCountChanged):
    // no use-after-free, and the work still completes.
    void slotDeletingTheExecutorDuringSubmit_data()
    {
        QTest::addColumn<bool>("onWorkerCount");
        QTest::newRow("pendingCountChanged") << false;
        QTest::newRow("workerCountChanged") << true;
    }
    void slotDeletingTheExecutorDuringSubmit()
    {
        QFETCH(bool, onWorkerCount);
        run([](bool onWorkerCount) -> QCoro::Task<void> {
            QPointer<TaskPoolExecutor> pool = new TaskPoolExecutor(2);
            auto kill = [&] { delete pool.data(); };
            if (onWorkerCount)
                QObject::connect(pool, &TaskPoolExecutor::workerCountChanged, pool, kill);
            else
                QObject::connect(pool, &TaskPoolExecutor::pendingCountChanged, pool, kill);
            auto f = pool->submit(sleepy, 4);
            CO_VERIFY(pool.isNull());
            CO_COMPARE(co_await f, 4);
        }(onWorkerCount));
    }

    // 8. The same for the other calls that emit: setMaxWorkers(), cancel() (taskCanceled).
    void slotDeletingTheExecutorDuringSetMaxWorkersAndCancel()
    {
        run([]() -> QCoro::Task<void> {
            QPointer<TaskPoolExecutor> pool = new TaskPoolExecutor(2);
            auto first = pool->submit(sleepy, 1);
            auto second = pool->submit(sleepy, 2);
            CO_COMPARE(co_await first, 1);
            CO_COMPARE(co_await second, 2);
            CO_COMPARE(pool->workerCount(), 2);
            QObject::connect(pool, &TaskPoolExecutor::workerCountChanged, pool, [&] { delete pool.data(); });
            pool->setMaxWorkers(1); // the idle worker beyond the bound leaves: workerCountChanged
            CO_VERIFY(pool.isNull());

            pool = new TaskPoolExecutor(1);
            Gate gate;
            auto running = pool->submit(gated, &gate, 1);
            auto queued = pool->submit(sleepy, 2);
            QObject::connect(pool, &TaskPoolExecutor::taskCanceled, pool, [&] { delete pool.data(); });
            CO_VERIFY(queued.cancel());
            CO_VERIFY(pool.isNull());
            gate.open();
            CO_COMPARE(co_await running, 1);
        }());
    }

    // 12. A cancel through a plain QFuture copy of a running task: cancelled() and done() agree,
    // exception() throws CancelledError and co_await throws it at once, as Python's rule says.
    void plainQFutureCancelIsDoneAtOnce()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto f = pool.submit(gated, &gate, 1);
            co_await until([&] { return pool.activeCount() == 1; });
            QFuture<int> plain = f;
            plain.cancel();
            CO_VERIFY(f.cancelled());
            CO_VERIFY(f.done());
            CO_VERIFY(f.isFinished());
            CO_VERIFY_THROWS(f.exception(), CancelledError);
            CO_VERIFY_THROWS(co_await f, CancelledError);
            CO_COMPARE(pool.activeCount(), 1); // its slot stays taken until the coroutine ends
            gate.open();
            co_await pool.shutdown();
            CO_COMPARE(pool.activeCount(), 0);
        }());
    }

    // 12. The same through QFutureWatcher::cancel() on a queued task: it never starts.
    void watcherCancelOfAQueuedTask()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto running = pool.submit(gated, &gate, 1);
            bool started = false;
            auto queued = pool.submit([&] { return started = true; });
            co_await until([&] { return pool.activeCount() == 1; });
            CO_COMPARE(pool.pendingCount(), 1);
            QFutureWatcher<bool> watcher;
            watcher.setFuture(queued);
            watcher.cancel();
            CO_VERIFY(queued.done());
            CO_VERIFY(queued.cancelled());
            CO_COMPARE(pool.pendingCount(), 0);
            gate.open();
            CO_COMPARE(co_await running, 1);
            co_await pool.shutdown();
            CO_VERIFY(!started);
        }());
    }

    // 13. Blocking on a pool future in the executor's own thread throws instead of hanging; once
    // settled it reads as usual.
    void blockingInTheExecutorThreadThrows()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto f = pool.submit([] { return 5; });
            CO_VERIFY_THROWS(f.result(), std::logic_error);
            CO_VERIFY_THROWS(f.waitForFinished(), std::logic_error);
            CO_VERIFY_THROWS(f.results(), std::logic_error);
            CO_VERIFY_THROWS((void)f.begin(), std::logic_error);
            CO_VERIFY_THROWS((void)f.resultAt(0), std::logic_error);
            CO_COMPARE(co_await f, 5);
            CO_COMPARE(f.result(), 5);
            CO_COMPARE(f.resultAt(0), 5);
            CO_COMPARE(f.results(), QList<int> { 5 });
            int sum = 0;
            for (int v : f) // iteration blocks for each result: fine once settled
                sum += v;
            CO_COMPARE(sum, 5);
            CO_COMPARE(*f.constBegin(), 5);
            f.waitForFinished();
            CO_COMPARE(f.takeResult(), 5); // empties the shared result: the caller's explicit choice
            co_await pool.shutdown();
        }());
    }

    // 14. A slot that throws from a signal emitted inside submit(): the exception reaches the
    // caller, and the submitted job still has a worker and runs.
    void throwingSlotInsideSubmitLeavesNoJobUnserved_data()
    {
        QTest::addColumn<bool>("onWorkerCount");
        QTest::newRow("pendingCountChanged") << false;
        QTest::newRow("workerCountChanged") << true;
    }
    void throwingSlotInsideSubmitLeavesNoJobUnserved()
    {
        QFETCH(bool, onWorkerCount);
        run([](bool onWorkerCount) -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            auto thrower = [] { throw std::runtime_error("slot"); };
            auto connection = onWorkerCount
                ? QObject::connect(&pool, &TaskPoolExecutor::workerCountChanged, &pool, thrower)
                : QObject::connect(&pool, &TaskPoolExecutor::pendingCountChanged, &pool, thrower);
            bool ran = false;
            CO_VERIFY_THROWS((void)pool.submit([&] { return ran = true; }), std::runtime_error);
            QObject::disconnect(connection);
            co_await until([&] { return ran; });
            co_await pool.shutdown();
            CO_COMPARE(pool.pendingCount(), 0);
        }(onWorkerCount));
    }

    // Found by tst_stress (plain QFuture cancels): QFuture::cancel() on a plain copy of a pool future
    // that already settled with a result. Qt 6.4 sets Canceled on the finished future, and Future
    // reads that as a cancellation: cancelled() turns true and co_await throws CancelledError
    // although the task succeeded and its result is stored (Future::cancel() returns false there
    // and changes nothing, as Python's cancel() of a done future). The job records how it settled.
    void plainQFutureCancelOfASettledFutureKeepsItsOutcome()
    {
        bool cancelled = true;
        bool threw = true;
        int value = 0;
        run([](bool& cancelled, bool& threw, int& value) -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto f = pool.submit([] { return 5; });
            CO_COMPARE(co_await f, 5);
            CO_VERIFY(!f.cancel());
            QFuture<int> plain = f;
            plain.cancel();
            CO_VERIFY(f.done());
            cancelled = f.cancelled();
            try {
                value = co_await f;
                threw = false;
            } catch (const CancelledError&) {
            }
            co_await pool.shutdown();
        }(cancelled, threw, value));
        QVERIFY(!cancelled);
        QVERIFY(!threw);
        QCOMPARE(value, 5);
    }
};

QTEST_MAIN(tst_RegressionsCore)
#include "tst_regressions_core.moc"
