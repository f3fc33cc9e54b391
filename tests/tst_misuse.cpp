// SPDX-License-Identifier: MIT
// Misuse and bad input that the other suites do not cover: bad arguments on a busy executor lose
// nothing, futures outliving their executor, shutdown() from inside a task, re-entrant submit on a
// saturated pool, exceptions that do not derive from std::exception on every path.
// (maxWorkers <= 0 and setMaxWorkers: tst_executor / tst_executorcore; bufferSize < 1 and map()
// after shutdown: tst_map; submit after shutdown: tst_shutdown; awaiting a cancelled future:
// tst_future; a QML submit without a function: tst_qml.)
#include "testutil.h"

#include <QPointer>
#include <QSignalSpy>

#include <memory>
#include <optional>
#include <vector>

using namespace TestUtil;
using TaskPool::CancelledError;
using TaskPool::Future;
using TaskPool::ShutdownError;
using TaskPool::ShutdownOptions;
using TaskPool::TaskPoolExecutor;

namespace {

using CString = const char*;

} // namespace

class tst_Misuse : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // std::invalid_argument from setMaxWorkers() on a busy pool: the bound and the work are kept.
    void invalidMaxWorkersOnABusyPoolLosesNothing()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate gate;
            QList<Future<int>> futures;
            for (int i = 0; i < 5; ++i)
                futures.append(pool.submit(gated, &gate, i));
            co_await until([&] { return pool.activeCount() == 2; });
            for (int bad : { 0, -1, std::numeric_limits<int>::min() })
                CO_VERIFY_THROWS(pool.setMaxWorkers(bad), std::invalid_argument);
            CO_COMPARE(pool.maxWorkers(), 2);
            CO_COMPARE(pool.pendingCount(), 3);
            gate.open();
            for (int i = 0; i < 5; ++i)
                CO_COMPARE(co_await futures[i], i);
            co_await pool.shutdown();
        }());
    }

    // std::invalid_argument from map() with bufferSize < 1: nothing is submitted, no item is read.
    void invalidBufferSizeReadsNothing()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            QSignalSpy started(&pool, &TaskPoolExecutor::taskStarted);
            int read = 0;
            auto counting = std::views::iota(0, 10) | std::views::transform([&read](int i) {
                                ++read;
                                return i;
                            });
            for (int bad : { 0, -3 }) {
                const TaskPool::MapOptions options { bad };
                CO_VERIFY_THROWS((void)pool.map(
                                     options, [](int i) { return i; }, counting),
                                 std::invalid_argument);
            }
            co_await turns(3);
            CO_COMPARE(read, 0);
            CO_COMPARE(pool.pendingCount(), 0);
            CO_COMPARE(started.count(), 0);
            co_await pool.shutdown();
        }());
    }

    // A future outlives its executor: awaiting it gives the outcome whatever state the task was in
    // when the executor was destroyed (finished, running, queued, cancelled while queued).
    void awaitFutureOfDestroyedExecutor_data()
    {
        QTest::addColumn<int>("state");
        QTest::newRow("finished") << 0;
        QTest::newRow("running") << 1;
        QTest::newRow("queued") << 2;
        QTest::newRow("queued, cancelled after the executor went") << 3;
        QTest::newRow("running, failing") << 4;
    }
    void awaitFutureOfDestroyedExecutor()
    {
        QFETCH(int, state);
        run([](int state) -> QCoro::Task<void> {
            auto pool = std::make_unique<TaskPoolExecutor>(1);
            Gate gate;
            Future<int> running = state == 4 ? pool->submit(
                                      [](Gate* gate) -> QCoro::Task<int> {
                                          co_await *gate;
                                          throw NotAnException { 5 };
                                      },
                                      &gate)
                                             : pool->submit(gated, &gate, 1);
            Future<int> future = (state == 1 || state == 4) ? running : pool->submit([](int v) { return v; }, 7);
            if (state == 0) {
                gate.open();
                co_await future;
            }
            co_await until([&] { return pool->activeCount() == 1 || state == 0; });
            pool.reset(); // with work in flight
            if (state == 3) {
                CO_VERIFY(future.cancel());
                CO_VERIFY(future.done() && future.cancelled());
            }
            gate.open();
            switch (state) {
            case 0:
                CO_COMPARE(co_await future, 7);
                break;
            case 1:
                CO_COMPARE(co_await future, 1);
                break;
            case 2:
                CO_COMPARE(co_await future, 7);
                CO_COMPARE(co_await running, 1);
                break;
            case 3:
                CO_VERIFY_THROWS(co_await future, CancelledError);
                CO_COMPARE(co_await running, 1);
                break;
            case 4:
                CO_VERIFY_THROWS(co_await future, NotAnException);
                break;
            }
            CO_VERIFY(future.done());
        }(state));
    }

    // shutdown({.wait = false}) inside a running task returns at once; with cancelFutures it
    // cancels the queue, without it the queue still runs; the task ends normally, and so does the
    // executor; a later submit from the task throws ShutdownError.
    void shutdownNoWaitInsideTask_data()
    {
        QTest::addColumn<bool>("cancelFutures");
        QTest::newRow("keep the queue") << false;
        QTest::newRow("cancel the queue") << true;
    }
    void shutdownNoWaitInsideTask()
    {
        QFETCH(bool, cancelFutures);
        run([](bool cancelFutures) -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            bool returnedAtOnce = false;
            bool refused = false;
            auto inside = pool.submit(
                [&](bool cancelFutures) -> QCoro::Task<int> {
                    co_await TaskPool::detail::Yield {};
                    const ShutdownOptions options { .wait = false, .cancelFutures = cancelFutures };
                    QCoro::Task<void> shutdown = pool.shutdown(options);
                    returnedAtOnce = shutdown.isReady();
                    co_await std::move(shutdown);
                    try {
                        (void)pool.submit([] { return 0; });
                    } catch (const ShutdownError&) {
                        refused = true;
                    }
                    co_await TaskPool::detail::Yield {};
                    co_return 1;
                },
                cancelFutures);
            auto queued = pool.submit([](int v) { return v; }, 2);
            CO_COMPARE(co_await inside, 1);
            CO_VERIFY(returnedAtOnce);
            CO_VERIFY(refused);
            CO_VERIFY(pool.isShutdown());
            if (cancelFutures)
                CO_VERIFY_THROWS(co_await queued, CancelledError);
            else
                CO_COMPARE(co_await queued, 2);
            co_await pool.shutdown();
            CO_COMPARE(pool.workerCount(), 0);
        }(cancelFutures));
    }

    // shutdown({.wait = true}) called inside a running task waits for every worker to leave, the
    // calling task's own worker included: it completes only after the calling task has ended. So a
    // task that co_awaits it never ends (a deadlock, as Python's shutdown(wait=True) from inside a
    // worker thread). This test holds the shutdown without awaiting it inside the task, to show
    // what it waits for without deadlocking: the other tasks end, the shutdown stays pending while
    // the calling task runs, and completes once it ends. Inside a task, use {.wait = false}.
    void shutdownWaitInsideTaskWaitsForThatTask()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate release;
            Gate otherGate;
            std::optional<QCoro::Task<void>> shutdown;
            auto caller = pool.submit([&]() -> QCoro::Task<int> {
                co_await TaskPool::detail::Yield {};
                shutdown.emplace(pool.shutdown()); // wait = true, not awaited here
                co_await release;
                co_return 1;
            });
            auto other = pool.submit(gated, &otherGate, 2);
            auto queued = pool.submit([](int v) { return v; }, 3);
            co_await until([&] { return shutdown.has_value(); });
            CO_VERIFY(pool.isShutdown());
            otherGate.open();
            CO_COMPARE(co_await other, 2);
            CO_COMPARE(co_await queued, 3); // the queue still runs
            co_await turns(10);
            CO_VERIFY(!shutdown->isReady()); // the calling task still holds its worker
            CO_COMPARE(pool.activeCount(), 1);
            CO_COMPARE(pool.workerCount(), 1);
            release.open();
            CO_COMPARE(co_await caller, 1);
            co_await std::move(*shutdown);
            CO_COMPARE(pool.workerCount(), 0);
        }());
    }

    // Re-entrant submit on a saturated pool (maxWorkers = 1): submitting from the only running task
    // works, and the inner task runs once the outer one ends. Awaiting the inner future from the
    // outer task cannot complete while the outer task holds the only worker (a deadlock if awaited
    // without limit): here wait() with a timeout shows the inner task never starts meanwhile.
    void reentrantSubmitOnSaturatedPool()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QSignalSpy started(&pool, &TaskPoolExecutor::taskStarted);
            bool innerRan = false;
            bool innerStartedDuringOuter = false;
            Future<int> inner;
            auto outer = pool.submit([&]() -> QCoro::Task<int> {
                inner = pool.submit([&]() -> int {
                    innerRan = true;
                    return 2;
                });
                QList<Future<int>> innerOnly { inner };
                auto [done, notDone] = co_await TaskPool::wait(innerOnly, TaskPool::ReturnWhen::AllCompleted, 50ms);
                innerStartedDuringOuter = innerRan || !done.isEmpty() || notDone.size() != 1;
                co_return 1;
            });
            CO_COMPARE(co_await outer, 1);
            CO_VERIFY(!innerStartedDuringOuter);
            CO_COMPARE(co_await inner, 2);
            CO_VERIFY(innerRan);
            CO_COMPARE(started.count(), 2);
            CO_COMPARE(pool.workerCount(), 1); // never a second worker
            co_await pool.shutdown();
        }());
    }

    // The way out when the outer task must await the inner one: raise the bound first.
    void reentrantAwaitAfterRaisingMaxWorkers()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto outer = pool.submit([&]() -> QCoro::Task<int> {
                auto inner = pool.submit([](int v) { return v; }, 20);
                pool.setMaxWorkers(2);
                const int value = co_await inner;
                co_return value + 1;
            });
            CO_COMPARE(co_await outer, 21);
            co_await pool.shutdown();
        }());
    }

    // Exceptions that do not derive from std::exception, on every path a task's exception takes.
    void exceptionsNotDerivedFromStdException()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            QSignalSpy failed(&pool, &TaskPoolExecutor::taskFailed);

            auto promised = pool.submit([](QPromise<int>& promise) -> QCoro::Task<void> {
                co_await TaskPool::detail::Yield {};
                promise.setProgressValue(1);
                throw NotAnException { 3 };
            });
            auto literal = pool.submit([]() -> QCoro::Task<int> {
                co_await TaskPool::detail::Yield {};
                throw "a string literal";
            });
            auto awaitable = pool.submit([]() -> QCoro::Task<void> {
                co_await TaskPool::detail::Yield {};
                throw NotAnException { 4 };
            }());
            int code = 0;
            try {
                co_await promised;
            } catch (const NotAnException& e) {
                code = e.code;
            }
            CO_COMPARE(code, 3);
            CO_VERIFY_THROWS(co_await literal, CString);
            CO_VERIFY_THROWS(co_await awaitable, NotAnException);
            CO_VERIFY(promised.exception() && literal.exception() && awaitable.exception());
            CO_VERIFY(!promised.cancelled() && !literal.cancelled());
            CO_COMPARE(failed.count(), 3);
            for (const auto& args : failed)
                CO_COMPARE(args.at(1).toString(), QStringLiteral("an exception not derived from std::exception"));

            // gather() rethrows it, wait(FirstException) counts it as a failure.
            QList<Future<int>> both { pool.submit([](int v) { return v; }, 1), literal };
            CO_VERIFY_THROWS((void)co_await TaskPool::gather(both), CString);
            auto [done, notDone] = co_await TaskPool::wait(both, TaskPool::ReturnWhen::FirstException);
            CO_COMPARE(done.size(), 2);

            // map(): the iteration throws it at that item; the pool goes on.
            QList<int> seen;
            bool thrown = false;
            auto throwAtTwo = [](int i) -> int {
                if (i == 2)
                    throw NotAnException { i };
                return i;
            };
            try {
                auto results = pool.map(throwAtTwo, std::views::iota(0, 5));
                QCORO_FOREACH(int r, results)
                {
                    seen.append(r);
                }
            } catch (const NotAnException& e) {
                thrown = e.code == 2;
            }
            CO_VERIFY(thrown);
            CO_COMPARE(seen, (QList<int> { 0, 1 }));
            CO_COMPARE(co_await pool.submit([](int v) { return v; }, 9), 9);
            co_await pool.shutdown();
            CO_COMPARE(pool.workerCount(), 0);
        }());
    }
};

QTEST_GUILESS_MAIN(tst_Misuse)
#include "tst_misuse.moc"
