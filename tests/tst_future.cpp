// SPDX-License-Identifier: MIT
// Future<T>: awaiting, cancellation in every path, Python's Future API, the QPromise<T>&
// convention, and Qt's own machinery (QFutureWatcher, continuations, whenAll/whenAny) on it.
#include "testutil.h"

#include <QFutureWatcher>
#include <QSignalSpy>

#include <stdexcept>

using namespace TestUtil;
using namespace Qt::StringLiterals;
using TaskPool::CancelledError;
using TaskPool::Future;
using TaskPool::TaskPoolExecutor;

namespace {

QCoro::Task<int> failing(Gate* gate)
{
    co_await *gate;
    throw std::domain_error("failed");
}

//! Lets every event already posted to this thread (watcher call-outs) be delivered: the second
//! yield is posted after them even when the first one joins an earlier batch.
QCoro::Task<void> flush()
{
    co_await TaskPool::detail::Yield {};
    co_await TaskPool::detail::Yield {};
}

} // namespace

class tst_Future : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void resultDoneAndTaskId()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate gate;
            auto a = pool.submit(gated, &gate, 1);
            auto b = pool.submit(gated, &gate, 2);
            CO_VERIFY(!a.done());
            CO_VERIFY(!a.cancelled());
            CO_VERIFY(!a.exception()); // not settled yet: nothing to report
            CO_VERIFY(a.taskId() != 0 && b.taskId() != 0 && a.taskId() != b.taskId());
            Future<int> copy = a;
            CO_COMPARE(copy.taskId(), a.taskId());
            gate.open();
            CO_COMPARE(co_await a, 1);
            CO_VERIFY(a.done());
            CO_COMPARE(a.result(), 1);
            CO_COMPARE(co_await copy, 1); // a settled future is awaited again at once
            CO_COMPARE(co_await b, 2);
            CO_VERIFY(!a.cancel()); // already settled
            CO_VERIFY(!a.cancelled());
            co_await pool.shutdown();
        }());
    }

    void severalAwaitersOfOneFuture()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto future = pool.submit(gated, &gate, 5);
            int sum = 0;
            auto awaiter = [](Future<int> future, int* sum) -> QCoro::Task<void> { *sum += co_await future; };
            auto first = awaiter(future, &sum);
            auto second = awaiter(future, &sum);
            auto third = awaiter(future, &sum);
            co_await flush();
            CO_COMPARE(sum, 0);
            gate.open();
            co_await first;
            co_await second;
            co_await third;
            CO_COMPARE(sum, 15);
            co_await pool.shutdown();
        }());
    }

    void promiseSeesCancellation()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            bool sawCancel = false;
            bool ended = false;
            auto future = pool.submit(
                [](QPromise<int>& promise, Gate* gate, bool* sawCancel, bool* ended) -> QCoro::Task<void> {
                    co_await *gate;
                    *sawCancel = promise.isCanceled();
                    if (!*sawCancel)
                        promise.addResult(1);
                    *ended = true;
                },
                &gate, &sawCancel, &ended);
            static_assert(std::is_same_v<decltype(future), Future<int>>);
            co_await until([&] { return pool.activeCount() == 1; });
            CO_VERIFY(future.cancel());
            CO_VERIFY(future.isFinished()); // at once, without waiting for the coroutine
            CO_VERIFY_THROWS(co_await future, CancelledError);
            CO_VERIFY(!ended);
            gate.open();
            co_await until([&] { return ended; });
            CO_VERIFY(sawCancel);
            co_await pool.shutdown();
        }());
    }

    void promiseProgress()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto future = pool.submit(
                [](QPromise<void>& promise, Gate* gate, int steps) -> QCoro::Task<void> {
                    co_await *gate;
                    promise.setProgressRange(0, steps);
                    for (int i = 1; i <= steps; ++i) {
                        co_await TestUtil::sleep(1ms);
                        promise.setProgressValue(i);
                    }
                },
                &gate, 5);
            static_assert(std::is_same_v<decltype(future), Future<void>>);
            QFutureWatcher<void> watcher;
            QSignalSpy range(&watcher, &QFutureWatcherBase::progressRangeChanged);
            QSignalSpy progress(&watcher, &QFutureWatcherBase::progressValueChanged);
            QSignalSpy finished(&watcher, &QFutureWatcherBase::finished);
            watcher.setFuture(future);
            gate.open();
            co_await future;
            co_await until([&] { return finished.count() == 1; });
            // The range the task set is the last one seen (the watcher may report the initial one).
            CO_VERIFY(range.count() >= 1);
            CO_COMPARE(range.last().at(0).toInt(), 0);
            CO_COMPARE(range.last().at(1).toInt(), 5);
            // Qt throttles intermediate values; the values seen rise and end at the maximum.
            CO_VERIFY(progress.count() >= 1);
            int last = 0;
            for (const auto& args : progress) {
                CO_VERIFY(args.at(0).toInt() >= last);
                last = args.at(0).toInt();
            }
            CO_COMPARE(last, 5);
            CO_COMPARE(future.progressValue(), 5);
            co_await pool.shutdown();
        }());
    }

    void promiseSeveralResults()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto future = pool.submit(
                [](QPromise<QString>& promise, int count) -> QCoro::Task<void> {
                    for (int i = 0; i < count; ++i) {
                        promise.addResult(QString::number(i));
                        co_await TestUtil::sleep(1ms);
                    }
                },
                3);
            QFutureWatcher<QString> watcher;
            QSignalSpy ready(&watcher, &QFutureWatcherBase::resultsReadyAt);
            QSignalSpy finished(&watcher, &QFutureWatcherBase::finished);
            watcher.setFuture(future);
            CO_COMPARE(co_await future, QStringLiteral("0")); // co_await gives the first
            CO_COMPARE(future.results(), (QList<QString> { u"0"_s, u"1"_s, u"2"_s }));
            CO_COMPARE(future.resultCount(), 3);
            co_await until([&] { return finished.count() == 1; });
            CO_VERIFY(ready.count() >= 1);
            co_await pool.shutdown();
        }());
    }

    void promiseWithoutResultFails()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto future = pool.submit([](QPromise<int>&) -> QCoro::Task<void> { co_return; });
            CO_VERIFY_THROWS(co_await future, std::logic_error);
            CO_VERIFY(!future.cancelled());
            // A QPromise<void> task needs no result.
            int value = 0;
            auto done = pool.submit(
                [](QPromise<void>&, int* value) -> QCoro::Task<void> {
                    *value = 1;
                    co_return;
                },
                &value);
            co_await done;
            CO_COMPARE(value, 1);
            co_await pool.shutdown();
        }());
    }

    void promiseTaskThrows()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto failed = pool.submit([](QPromise<int>& promise) -> QCoro::Task<void> {
                promise.addResult(1);
                co_await TestUtil::sleep(1ms);
                throw std::runtime_error("late");
            });
            CO_VERIFY_THROWS(co_await failed, std::runtime_error);
            auto cancelled = pool.submit([](QPromise<int>&) -> QCoro::Task<void> {
                co_await TestUtil::sleep(1ms);
                throw CancelledError();
            });
            CO_VERIFY_THROWS(co_await cancelled, CancelledError);
            CO_VERIFY(cancelled.cancelled());
            co_await pool.shutdown();
        }());
    }

    void cancelQueuedTask()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QSignalSpy canceledSignal(&pool, &TaskPoolExecutor::taskCanceled);
            QSignalSpy startedSignal(&pool, &TaskPoolExecutor::taskStarted);
            Gate gate;
            auto blocker = pool.submit(gated, &gate, 1);
            bool started = false;
            auto queued = pool.submit(
                [](bool* started) -> QCoro::Task<int> {
                    *started = true;
                    co_return 2;
                },
                &started);
            QFutureWatcher<int> watcher;
            QSignalSpy canceled(&watcher, &QFutureWatcherBase::canceled);
            QSignalSpy finished(&watcher, &QFutureWatcherBase::finished);
            watcher.setFuture(queued);
            co_await until([&] { return pool.activeCount() == 1; });
            CO_COMPARE(pool.pendingCount(), 1);
            CO_VERIFY(queued.cancel());
            CO_VERIFY(queued.cancelled());
            CO_VERIFY(queued.done());
            CO_VERIFY(queued.isFinished());
            CO_COMPARE(pool.pendingCount(), 0);
            CO_COMPARE(canceledSignal.count(), 1);
            CO_VERIFY(!queued.cancel()); // only once
            CO_VERIFY_THROWS(co_await queued, CancelledError);
            gate.open();
            CO_COMPARE(co_await blocker, 1);
            co_await pool.shutdown();
            co_await flush();
            CO_VERIFY(!started);
            CO_COMPARE(startedSignal.count(), 1);
            CO_COMPARE(canceled.count(), 1);
            CO_COMPARE(finished.count(), 1);
            CO_COMPARE(canceledSignal.count(), 1);
        }());
    }

    void cancelRunningTaskHoldsItsSlot()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            int mostActive = 0;
            connect(&pool, &TaskPoolExecutor::activeCountChanged, &pool,
                    [&](int count) { mostActive = std::max(mostActive, count); });
            QSignalSpy started(&pool, &TaskPoolExecutor::taskStarted);
            QSignalSpy canceledSignal(&pool, &TaskPoolExecutor::taskCanceled);
            Gate gate;
            auto running = pool.submit(gated, &gate, 1);
            auto next = pool.submit(amul, 2, 3);
            co_await until([&] { return pool.activeCount() == 1; });
            CO_VERIFY(running.cancel());
            CO_VERIFY(running.isFinished());
            CO_VERIFY(running.cancelled());
            CO_COMPARE(canceledSignal.count(), 1);
            CO_VERIFY_THROWS(co_await running, CancelledError);
            // The coroutine still runs: its slot stays taken, the next task waits.
            co_await flush();
            CO_COMPARE(pool.activeCount(), 1);
            CO_COMPARE(pool.pendingCount(), 1);
            CO_COMPARE(started.count(), 1); // the next task has not started
            gate.open();
            CO_COMPARE(co_await next, 6);
            CO_COMPARE(mostActive, 1);
            CO_COMPARE(running.resultCount(), 0); // its late result was discarded
            CO_COMPARE(canceledSignal.count(), 1);
            co_await pool.shutdown();
        }());
    }

    void cancelledVersusFailed()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate gate;
            auto ok = pool.submit(gated, &gate, 1);
            auto bad = pool.submit(failing, &gate);
            auto dropped = pool.submit(gated, &gate, 3);
            dropped.cancel();
            gate.open();
            co_await ok;
            CO_VERIFY_THROWS(co_await bad, std::domain_error);

            CO_VERIFY(!ok.cancelled());
            CO_VERIFY(!ok.exception());

            // Qt marks a failed future canceled too; cancelled() does not.
            CO_VERIFY(bad.isCanceled());
            CO_VERIFY(!bad.cancelled());
            CO_VERIFY(bad.done());
            CO_VERIFY(bad.exception());
            CO_VERIFY_THROWS(std::rethrow_exception(bad.exception()), std::domain_error);

            CO_VERIFY(dropped.isCanceled());
            CO_VERIFY(dropped.cancelled());
            CO_VERIFY(dropped.done());
            CO_VERIFY_THROWS(dropped.exception(), CancelledError);
            co_await pool.shutdown();
        }());
    }

    void cancelThroughPlainQFuture_data()
    {
        QTest::addColumn<bool>("throughWatcher");
        QTest::newRow("QFuture copy") << false;
        QTest::newRow("QFutureWatcher") << true;
    }
    void cancelThroughPlainQFuture()
    {
        QFETCH(bool, throughWatcher);
        run([](bool throughWatcher) -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QSignalSpy canceledSignal(&pool, &TaskPoolExecutor::taskCanceled);
            Gate gate;
            auto blocker = pool.submit(gated, &gate, 1);
            bool started = false;
            auto queued = pool.submit([](bool* started) { return *started = true; }, &started);
            QFutureWatcher<bool> watcher;
            QSignalSpy finished(&watcher, &QFutureWatcherBase::finished);
            watcher.setFuture(queued);
            co_await until([&] { return pool.activeCount() == 1; });
            if (throughWatcher)
                watcher.cancel();
            else
                QFuture<bool>(queued).cancel();
            CO_VERIFY(queued.isCanceled());
            CO_VERIFY(queued.cancelled());
            gate.open();
            // Honoured when the executor reaches the task: it never starts, its future finishes.
            CO_VERIFY_THROWS(co_await queued, CancelledError);
            CO_VERIFY(queued.isFinished());
            co_await blocker;
            co_await pool.shutdown();
            co_await until([&] { return finished.count() == 1; });
            CO_VERIFY(!started);
            CO_COMPARE(canceledSignal.count(), 1);
            CO_COMPARE(canceledSignal.at(0).at(0).toULongLong(), queued.taskId());
        }(throughWatcher));
    }

    void cancelRunningThroughPlainQFuture()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QSignalSpy canceledSignal(&pool, &TaskPoolExecutor::taskCanceled);
            Gate gate;
            bool sawCancel = false;
            auto future = pool.submit(
                [](QPromise<int>& promise, Gate* gate, bool* sawCancel) -> QCoro::Task<void> {
                    co_await *gate;
                    *sawCancel = promise.isCanceled();
                    promise.addResult(1);
                },
                &gate, &sawCancel);
            co_await until([&] { return pool.activeCount() == 1; });
            QFuture<int>(future).cancel();
            CO_VERIFY(future.isCanceled());
            gate.open();
            // Honoured as soon as it is looked at through Future: here by co_await.
            CO_VERIFY_THROWS(co_await future, CancelledError);
            CO_VERIFY(future.isFinished());
            co_await until([&] { return pool.activeCount() == 0; }); // the coroutine ends
            CO_VERIFY(sawCancel);
            CO_COMPARE(future.resultCount(), 0);
            co_await pool.shutdown();
            CO_COMPARE(canceledSignal.count(), 1);
        }());
    }

    void watcherSignals_data()
    {
        QTest::addColumn<QString>("path");
        QTest::addColumn<int>("expectedCanceled"); // -1: whatever Qt does (it flags failures canceled)
        QTest::addColumn<int>("expectedResults");
        QTest::newRow("result") << u"result"_s << 0 << 1;
        QTest::newRow("failure") << u"failure"_s << -1 << 0;
        QTest::newRow("cancel queued") << u"cancel queued"_s << 1 << 0;
        QTest::newRow("cancel running") << u"cancel running"_s << 1 << 0;
        QTest::newRow("task throws CancelledError") << u"throws cancel"_s << 1 << 0;
        QTest::newRow("shutdown cancelFutures") << u"shutdown"_s << 1 << 0;
        QTest::newRow("QFuture copy cancel, queued") << u"plain queued"_s << 1 << 0;
        QTest::newRow("QFuture copy cancel, running") << u"plain running"_s << 1 << 0;
        QTest::newRow("executor destroyed") << u"destroyed"_s << 0 << 1;
    }
    void watcherSignals()
    {
        QFETCH(QString, path);
        QFETCH(int, expectedCanceled);
        QFETCH(int, expectedResults);
        run([](QString path, int expectedCanceled, int expectedResults) -> QCoro::Task<void> {
            auto pool = std::make_unique<TaskPoolExecutor>(1);
            Gate gate;
            auto blocker = pool->submit(gated, &gate, 0);
            const bool queued = path.endsWith(u"queued") || path == u"shutdown";
            Future<int> future;
            if (path == u"failure")
                future = pool->submit(failing, &gate);
            else if (path == u"throws cancel")
                future = pool->submit(
                    [](Gate* gate) -> QCoro::Task<int> {
                        co_await *gate;
                        throw CancelledError();
                    },
                    &gate);
            else
                future = pool->submit(gated, &gate, 1);
            QFutureWatcher<int> watcher;
            QSignalSpy canceled(&watcher, &QFutureWatcherBase::canceled);
            QSignalSpy finished(&watcher, &QFutureWatcherBase::finished);
            QSignalSpy results(&watcher, &QFutureWatcherBase::resultReadyAt);
            watcher.setFuture(future);
            if (!queued) {
                blocker.cancel(); // free the slot for the watched task
                co_await until([&] { return pool->activeCount() == 1; });
            } else {
                co_await until([&] { return pool->activeCount() == 1; });
            }
            if (path == u"cancel queued" || path == u"cancel running")
                future.cancel();
            else if (path == u"plain queued" || path == u"plain running")
                QFuture<int>(future).cancel();
            else if (path == u"shutdown")
                co_await pool->shutdown({ .wait = false, .cancelFutures = true });
            else if (path == u"destroyed")
                pool.reset();
            gate.open();
            try {
                co_await future;
            } catch (...) {
            }
            // Let the coroutine of a cancelled running task end too, then every call-out arrive.
            co_await until([&] { return !pool || (pool->activeCount() == 0 && pool->pendingCount() == 0); });
            co_await flush();
            CO_COMPARE(finished.count(), 1);
            if (expectedCanceled >= 0)
                CO_COMPARE(canceled.count(), expectedCanceled);
            CO_COMPARE(results.count(), expectedResults);
            CO_VERIFY(watcher.isFinished());
            if (pool)
                co_await pool->shutdown();
        }(path, expectedCanceled, expectedResults));
    }

    void continuations()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(4);
            Gate gate;
            auto ok = pool.submit(gated, &gate, 21);
            auto other = pool.submit(gated, &gate, 21);
            auto bad = pool.submit(failing, &gate);
            auto running = pool.submit(gated, &gate, 0);
            auto queued = pool.submit(gated, &gate, 0);

            Future<int> doubled = ok.then([](int value) { return value * 2; });
            QObject context;
            // A QFuture takes one continuation: each test gets its own future.
            Future<int> viaContext = other.then(&context, [](int value) { return value + 1; });
            Future<int> recovered
                = bad.then([](int value) { return value; }).onFailed([](const std::domain_error&) { return -1; });
            Future<int> onCanceledQueued = queued.then([](int value) { return value; }).onCanceled([] { return -2; });
            co_await until([&] { return pool.activeCount() == 4; });
            queued.cancel();
            running.cancel(); // a running task: cancelled at once, the continuation too
            Future<int> onCanceledRunning = running.onCanceled([] { return -3; });
            CO_COMPARE(co_await onCanceledQueued, -2);
            CO_COMPARE(co_await onCanceledRunning, -3);
            gate.open();
            CO_COMPARE(co_await doubled, 42);
            CO_COMPARE(co_await viaContext, 22);
            CO_COMPARE(co_await recovered, -1);
            // A Future made from a continuation is a foreign future: no task id.
            CO_COMPARE(doubled.taskId(), quint64(0));
            co_await pool.shutdown();
        }());
    }

    void whenAllAndWhenAny()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(6);
            // A QFuture takes one continuation: whenAny and whenAll get their own futures.
            std::array<Gate, 3> gates;
            QList<QFuture<int>> anyOf;
            QList<Future<int>> tasks;
            QList<QFuture<int>> allOf;
            for (int i = 0; i < 3; ++i) {
                anyOf.append(pool.submit(gated, &gates[i], i * 10));
                tasks.append(pool.submit(gated, &gates[i], i * 10));
                allOf.append(tasks.last());
            }
            Future<QtFuture::WhenAnyResult<int>> any = QtFuture::whenAny(anyOf.begin(), anyOf.end());
            Future<QList<QFuture<int>>> all = QtFuture::whenAll(allOf.begin(), allOf.end());
            gates[1].open();
            const auto first = co_await any;
            CO_COMPARE(first.index, qsizetype(1));
            CO_COMPARE(first.future.result(), 10);
            CO_VERIFY(!all.isFinished());
            tasks[2].cancel(); // running: its future finishes at once
            gates[0].open();
            const auto everything = co_await all;
            CO_COMPARE(everything.size(), 3);
            CO_COMPARE(everything[0].result(), 0);
            CO_COMPARE(everything[1].result(), 10);
            CO_VERIFY(everything[2].isCanceled());
            gates[2].open();

            co_await pool.shutdown();
        }());
    }

    // The variadic form, with futures of different types (as QFuture<T>).
    void whenAllVariadic()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            auto a = pool.submit(amul, 2, 3);
            auto b = pool.submit([](int x) { return QString::number(x); }, 5);
            Future<QList<std::variant<QFuture<int>, QFuture<QString>>>> both
                = QtFuture::whenAll(QFuture<int>(a), QFuture<QString>(b));
            const auto pair = co_await both;
            CO_COMPARE(pair.size(), 2);
            CO_COMPARE(std::get<0>(pair[0]).result(), 6);
            CO_COMPARE(std::get<1>(pair[1]).result(), QStringLiteral("5"));
            co_await pool.shutdown();
        }());
    }

    void foreignFuture()
    {
        run([]() -> QCoro::Task<void> {
            QPromise<int> promise;
            promise.start();
            Future<int> future(promise.future());
            CO_COMPARE(future.taskId(), quint64(0));
            CO_VERIFY(!future.done());
            auto awaiting = [](Future<int> future) -> QCoro::Task<int> { co_return co_await future; }(future);
            co_await flush();
            CO_VERIFY(!awaiting.isReady());
            promise.addResult(4);
            promise.finish();
            CO_COMPARE(co_await awaiting, 4);
            CO_VERIFY(future.done());
            CO_VERIFY(!future.cancel());

            // Cancelled but never finished by its producer: awaiting it must not hang.
            QPromise<int> stuck;
            stuck.start();
            Future<int> cancelled(stuck.future());
            auto awaitingCancel = [](Future<int> future) -> QCoro::Task<bool> {
                try {
                    co_await future;
                } catch (const CancelledError&) {
                    co_return true;
                }
                co_return false;
            }(cancelled);
            co_await flush();
            CO_VERIFY(cancelled.cancel());
            CO_VERIFY(cancelled.cancelled());
            CO_VERIFY(cancelled.done());
            CO_VERIFY(!cancelled.isFinished());
            CO_VERIFY(co_await awaitingCancel);
            CO_VERIFY_THROWS(cancelled.exception(), CancelledError);
            CO_VERIFY(!cancelled.cancel());

            // A failed foreign future rethrows its exception.
            QPromise<int> failing;
            failing.start();
            failing.setException(std::make_exception_ptr(std::runtime_error("foreign")));
            failing.finish();
            Future<int> failed(failing.future());
            CO_VERIFY_THROWS(co_await failed, std::runtime_error);
            CO_VERIFY(failed.exception());
            CO_VERIFY(!failed.cancelled());
        }());
    }
};

QTEST_GUILESS_MAIN(tst_Future)
#include "tst_future.moc"
