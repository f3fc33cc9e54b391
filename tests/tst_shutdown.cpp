// SPDX-License-Identifier: MIT
// shutdown() and destruction: cf-taskpool's test_shutdown.py and CPython's shutdown tests, ported
// one by one, plus the no-wait, concurrent and destroy-while-busy paths.
#include "testutil.h"

#include <QPointer>
#include <QSignalSpy>

#include <memory>

using namespace TestUtil;
using TaskPool::Future;
using TaskPool::ShutdownOptions;
using TaskPool::TaskPoolExecutor;

namespace {

QCoro::Task<int> aabs(int x)
{
    co_await TestUtil::sleep(1ms);
    co_return std::abs(x);
}

QCoro::Task<void> asleep(int ms)
{
    co_await TestUtil::sleep(std::chrono::milliseconds(ms));
}

} // namespace

class tst_Shutdown : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void submitAfterShutdown_data() { addSubmitForms(); }
    void submitAfterShutdown()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            co_await pool.shutdown();
            CO_VERIFY(pool.isShutdown());
            auto argument = std::make_shared<int>(5);
            std::weak_ptr<int> weak = argument;
            bool threw = false;
            try {
                if (asAwaitable)
                    (void)pool.submit(amul(2, *argument));
                else
                    (void)pool.submit([](std::shared_ptr<int> a) { return *a; }, std::move(argument));
            } catch (const TaskPool::ShutdownError& e) {
                threw = true;
                CO_COMPARE(QByteArray(e.what()), QByteArray("cannot schedule new futures after shutdown"));
            }
            CO_VERIFY(threw);
            CO_COMPARE(pool.pendingCount(), 0);
            CO_COMPARE(pool.workerCount(), 0);
            argument.reset();
            CO_VERIFY(weak.expired()); // nothing was kept
        }(asAwaitable));
    }

    // CPython issue #12364: shutdown() while many tasks are queued must not hang.
    void hangIssue12364_data() { addSubmitForms(); }
    void hangIssue12364()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            QList<Future<void>> futures;
            for (int i = 0; i < 50; ++i)
                futures.append(submitAs(pool, asAwaitable, asleep, 1));
            co_await pool.shutdown();
            for (auto& future : futures) {
                CO_VERIFY(future.isFinished());
                co_await future;
            }
        }(asAwaitable));
    }

    void cancelFutures()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            QSignalSpy canceled(&pool, &TaskPoolExecutor::taskCanceled);
            Gate gate;
            QList<Future<int>> futures;
            for (int i = 0; i < 50; ++i)
                futures.append(pool.submit(gated, &gate, i));
            co_await until([&] { return pool.activeCount() == 5; }); // 5 picked by the workers
            auto shutdown = pool.shutdown({ .cancelFutures = true });
            // The queued ones are cancelled at once, the running ones go on.
            CO_COMPARE(pool.pendingCount(), 0);
            CO_COMPARE(canceled.count(), 45);
            CO_VERIFY(!shutdown.isReady());
            gate.open();
            co_await shutdown;
            QList<Future<int>> others;
            int cancelled = 0;
            for (auto& future : futures) {
                if (future.cancelled())
                    ++cancelled;
                else
                    others.append(future);
            }
            CO_COMPARE(cancelled, 45);
            CO_COMPARE(others.size(), 5);
            for (auto& future : others) {
                CO_VERIFY(future.done());
                CO_VERIFY(!future.exception());
            }
            for (int i = 0; i < 5; ++i)
                CO_COMPARE(futures[i].result(), i); // the first five, in submission order
        }());
    }

    void cancelFuturesBeforeAnyTaskStarted()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            int started = 0;
            QList<Future<void>> futures;
            for (int i = 0; i < 10; ++i)
                futures.append(pool.submit([](int* started) { ++*started; }, &started));
            co_await pool.shutdown({ .cancelFutures = true });
            CO_COMPARE(started, 0);
            for (auto& future : futures) {
                CO_VERIFY(future.cancelled());
                CO_VERIFY_THROWS(co_await future, TaskPool::CancelledError);
            }
            CO_COMPARE(pool.workerCount(), 0);
        }());
    }

    // CPython gh-94440: shutdown(wait) does not hang when a task was submitted and cancelled
    // right before it.
    void hangGh94440_data()
    {
        QTest::addColumn<bool>("asAwaitable");
        QTest::addColumn<bool>("plainCopy");
        QTest::newRow("callable") << false << false;
        QTest::newRow("awaitable") << true << false;
        QTest::newRow("callable, cancelled through a QFuture") << false << true;
        QTest::newRow("awaitable, cancelled through a QFuture") << true << true;
    }
    void hangGh94440()
    {
        QFETCH(bool, asAwaitable);
        QFETCH(bool, plainCopy);
        run(
            [](bool asAwaitable, bool plainCopy) -> QCoro::Task<void> {
                TaskPoolExecutor pool(1);
                CO_COMPARE(co_await submitAs(pool, asAwaitable, amul, 2, 5), 10);
                auto future = submitAs(pool, asAwaitable, amul, 2, 5);
                if (plainCopy)
                    QFuture<int>(future).cancel();
                else
                    future.cancel();
                co_await pool.shutdown();
                CO_VERIFY(future.cancelled());
                CO_VERIFY(future.isFinished());
                CO_COMPARE(pool.workerCount(), 0);
            }(asAwaitable, plainCopy),
            5s);
    }

    // cf-taskpool's test_tasks_terminate / CPython's test_threads_terminate.
    void workersEndAfterShutdown()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            Gate gate;
            QList<Future<int>> futures;
            for (int i = 0; i < 3; ++i)
                futures.append(pool.submit(gated, &gate, i));
            co_await until([&] { return pool.activeCount() == 3; });
            CO_COMPARE(pool.workerCount(), 3);
            gate.open();
            co_await pool.shutdown();
            CO_COMPARE(pool.workerCount(), 0);
            CO_COMPARE(pool.activeCount(), 0);
            for (auto& future : futures)
                CO_VERIFY(future.done());
        }());
    }

    // The context manager of the originals is `co_await shutdown()`: everything is finished when
    // it returns.
    void shutdownWaitsForAllWork()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            QList<Future<int>> futures;
            for (int x = -4; x < 4; ++x)
                futures.append(pool.submit(aabs, x));
            co_await pool.shutdown();
            QList<int> results;
            for (auto& future : futures) {
                CO_VERIFY(future.isFinished());
                results.append(future.result());
            }
            CO_COMPARE(results, (QList<int> { 4, 3, 2, 1, 0, 1, 2, 3 }));
            CO_COMPARE(pool.workerCount(), 0);
        }());
    }

    void shutdownNoWait_data()
    {
        QTest::addColumn<bool>("explicitShutdown");
        QTest::newRow("shutdown(wait = false)") << true;
        QTest::newRow("executor destroyed") << false;
    }
    void shutdownNoWait()
    {
        QFETCH(bool, explicitShutdown);
        run([](bool explicitShutdown) -> QCoro::Task<void> {
            auto pool = std::make_unique<TaskPoolExecutor>(5);
            QList<Future<int>> futures;
            for (int x = -5; x < 5; ++x)
                futures.append(pool->submit(aabs, x));
            if (explicitShutdown) {
                auto shutdown = pool->shutdown({ .wait = false });
                CO_VERIFY(shutdown.isReady()); // no co_await needed
                CO_VERIFY(pool->isShutdown());
            } else {
                pool.reset();
            }
            for (auto& future : futures)
                CO_VERIFY(!future.isFinished());
            QList<int> results;
            for (auto& future : futures)
                results.append(co_await future);
            CO_COMPARE(results, (QList<int> { 5, 4, 3, 2, 1, 0, 1, 2, 3, 4 }));
            if (pool) {
                co_await until([&] { return pool->workerCount() == 0; });
                CO_VERIFY_THROWS((void)pool->submit(aabs, 1), TaskPool::ShutdownError);
            }
        }(explicitShutdown));
    }

    // The grid of cf-taskpool's test_interpreter_shutdown: the task runs unless the queue is
    // cancelled, whether or not the executor outlives the call.
    void shutdownOptions_data()
    {
        QTest::addColumn<bool>("wait");
        QTest::addColumn<bool>("cancelFutures");
        QTest::addColumn<bool>("transient");
        for (bool transient : { false, true }) {
            for (bool wait : { false, true }) {
                for (bool cancel : { false, true }) {
                    QTest::addRow("wait=%d cancelFutures=%d transient=%d", wait, cancel, transient)
                        << wait << cancel << transient;
                }
            }
        }
    }
    void shutdownOptions()
    {
        QFETCH(bool, wait);
        QFETCH(bool, cancelFutures);
        QFETCH(bool, transient);
        run([](ShutdownOptions options, bool transient) -> QCoro::Task<void> {
            auto pool = std::make_unique<TaskPoolExecutor>();
            bool printed = false;
            auto future = pool->submit(
                [](bool* printed) -> QCoro::Task<void> {
                    co_await TestUtil::sleep(1ms);
                    *printed = true;
                },
                &printed);
            auto shutdown = pool->shutdown(options);
            if (transient)
                pool.reset();
            co_await shutdown;
            if (options.wait)
                CO_VERIFY(future.isFinished());
            if (options.cancelFutures) {
                CO_VERIFY_THROWS(co_await future, TaskPool::CancelledError);
                CO_VERIFY(!printed);
            } else {
                co_await future;
                CO_VERIFY(printed);
            }
        }({ .wait = wait, .cancelFutures = cancelFutures }, transient));
    }

    void shutdownNoWaitCancelFutures()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate gate;
            QList<Future<int>> futures;
            for (int i = 0; i < 6; ++i)
                futures.append(pool.submit(gated, &gate, i));
            co_await until([&] { return pool.activeCount() == 2; });
            auto shutdown = pool.shutdown({ .wait = false, .cancelFutures = true });
            CO_VERIFY(shutdown.isReady());
            for (int i = 2; i < 6; ++i)
                CO_VERIFY(futures[i].cancelled() && futures[i].isFinished());
            CO_VERIFY(!futures[0].isFinished() && !futures[1].isFinished());
            CO_COMPARE(pool.activeCount(), 2);
            gate.open();
            CO_COMPARE(co_await futures[0], 0);
            CO_COMPARE(co_await futures[1], 1);
            co_await until([&] { return pool.workerCount() == 0; });
        }());
    }

    void concurrentShutdownAwaits()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            QSignalSpy shutdownChanged(&pool, &TaskPoolExecutor::isShutdownChanged);
            Gate gate;
            auto a = pool.submit(gated, &gate, 1);
            auto b = pool.submit(gated, &gate, 2);
            auto c = pool.submit(gated, &gate, 3); // queued: the waits include the queue
            co_await until([&] { return pool.activeCount() == 2; });
            auto first = pool.shutdown();
            auto second = pool.shutdown();
            int resumed = 0;
            auto waiter = [](QCoro::Task<void>& shutdown, int* resumed) -> QCoro::Task<void> {
                co_await shutdown;
                ++*resumed;
            };
            auto third = waiter(first, &resumed);
            auto fourth = waiter(second, &resumed);
            auto fifth = [](TaskPoolExecutor* pool, int* resumed) -> QCoro::Task<void> {
                co_await pool->shutdown();
                ++*resumed;
            }(&pool, &resumed);
            co_await TaskPool::detail::Yield {};
            CO_COMPARE(resumed, 0);
            CO_VERIFY(!c.isFinished());
            gate.open();
            co_await third;
            co_await fourth;
            co_await fifth;
            CO_COMPARE(resumed, 3);
            CO_COMPARE(a.result() + b.result() + c.result(), 6);
            CO_COMPARE(shutdownChanged.count(), 1);
            CO_COMPARE(pool.workerCount(), 0);
            // Once drained, shutdown() is done at once.
            auto again = pool.shutdown();
            CO_VERIFY(again.isReady());
        }());
    }

    void destroyWithQueuedAndRunningWork()
    {
        run([]() -> QCoro::Task<void> {
            auto* pool = new TaskPoolExecutor(2);
            Gate gate;
            QList<Future<int>> futures;
            for (int i = 0; i < 6; ++i)
                futures.append(pool->submit(gated, &gate, i));
            co_await until([&] { return pool->activeCount() == 2; });
            auto canceled = futures[5];
            canceled.cancel();
            delete pool;
            for (int i = 0; i < 5; ++i)
                CO_VERIFY(!futures[i].isFinished());
            gate.open();
            for (int i = 0; i < 5; ++i)
                CO_COMPARE(co_await futures[i], i);
            CO_VERIFY_THROWS(co_await canceled, TaskPool::CancelledError);
            // Cancelling a running task of a destroyed executor is safe too.
            auto* other = new TaskPoolExecutor(1);
            Gate never;
            auto running = other->submit(gated, &never, 0);
            auto queued = other->submit(gated, &never, 1);
            co_await until([&] { return other->activeCount() == 1; });
            delete other;
            CO_VERIFY(running.cancel());
            CO_VERIFY(queued.cancel());
            CO_VERIFY_THROWS(co_await running, TaskPool::CancelledError);
            CO_VERIFY_THROWS(co_await queued, TaskPool::CancelledError);
            never.open(); // lets the coroutine end, so that nothing leaks
            co_await TaskPool::detail::Yield {};
        }());
    }

    void destroyWhileShutdownIsAwaited()
    {
        run([]() -> QCoro::Task<void> {
            auto* pool = new TaskPoolExecutor(1);
            Gate gate;
            auto future = pool->submit(gated, &gate, 7);
            co_await until([&] { return pool->activeCount() == 1; });
            auto shutdown = pool->shutdown();
            delete pool;
            CO_VERIFY(!shutdown.isReady());
            gate.open();
            co_await shutdown;
            CO_COMPARE(future.result(), 7);
        }());
    }

    void destroyIdleExecutor()
    {
        run([]() -> QCoro::Task<void> {
            auto* pool = new TaskPoolExecutor(3);
            QList<Future<int>> futures;
            for (int i = 0; i < 3; ++i)
                futures.append(pool->submit(amul, i, 2));
            for (int i = 0; i < 3; ++i)
                CO_COMPARE(co_await futures[i], 2 * i);
            co_await until([&] { return pool->activeCount() == 0; });
            CO_COMPARE(pool->workerCount(), 3); // parked, waiting for work
            delete pool; // ends the parked workers (no leak under ASan)
        }());
    }

    // A destroyed executor never started: nothing to do, nothing leaks.
    void destroyUnusedExecutor()
    {
        auto pool = std::make_unique<TaskPoolExecutor>(2);
        QPointer<TaskPoolExecutor> guard(pool.get());
        pool.reset();
        QVERIFY(guard.isNull());
    }
};

QTEST_GUILESS_MAIN(tst_Shutdown)
#include "tst_shutdown.moc"
