// SPDX-License-Identifier: MIT
// TaskPool::asCompleted(): cf-taskpool's tests/test_as_completed.py and CPython's
// test_as_completed.py, plus early destruction of the generator.
#include "testutil.h"

#include <QPromise>
#include <QThread>

#include <algorithm>
#include <memory>
#include <stdexcept>

using namespace TestUtil;
using TaskPool::Future;

namespace {

bool contains(const QList<QFuture<int>>& list, const QFuture<int>& future)
{
    return std::any_of(list.begin(), list.end(), [&](const QFuture<int>& f) { return same(f, future); });
}

// Counts the notices futures post to their QFutureWatchers: none may arrive once no watcher is left.
class WatcherEventCounter : public QObject {
public:
    WatcherEventCounter() { QCoreApplication::instance()->installEventFilter(this); }
    int count = 0;

protected:
    bool eventFilter(QObject*, QEvent* event) override
    {
        if (event->type() == QEvent::FutureCallOut)
            ++count;
        return false;
    }
};

} // namespace

class tst_AsCompleted : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void noTimeoutYieldsEveryFutureAlreadySettledFirst()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            QFuture<int> futureC = cancelledFuture();
            QFuture<int> futureE = exceptionFuture();
            QFuture<int> futureS = successfulFuture();
            QFuture<int> future1 = pool.submit(delayedMul<10>, 2, 21);
            QFuture<int> future2 = pool.submit(delayedMul<10>, 7, 6);
            const QList<QFuture<int>> futures { futureC, futureE, futureS, future1, future2 };
            QList<QFuture<int>> yielded;
            QCORO_FOREACH(const QFuture<int>& future, TaskPool::asCompleted(futures))
            {
                CO_VERIFY2(TaskPool::detail::isSettled(future), "yielded before it settled");
                yielded.append(future);
            }
            CO_COMPARE(yielded.size(), 5);
            // The ones that had settled come first, in input order.
            CO_VERIFY(same(yielded[0], futureC));
            CO_VERIFY(same(yielded[1], futureE));
            CO_VERIFY(same(yielded[2], futureS));
            CO_VERIFY(contains(yielded, future1));
            CO_VERIFY(contains(yielded, future2));
            CO_COMPARE(Future<int>(future1).result() + Future<int>(future2).result(), 84);
            co_await pool.shutdown();
        }());
    }

    // The rest come in the order they settle, not the input order.
    void yieldsInSettleOrder()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(3);
            Gate first;
            Gate second;
            Gate third;
            QList<Future<int>> futures { pool.submit(waitFor, &third), pool.submit(waitFor, &first),
                                         pool.submit(waitFor, &second) };
            auto completed = TaskPool::asCompleted(futures);
            first.open();
            auto it = co_await completed.begin();
            CO_COMPARE((*it).taskId(), futures[1].taskId());
            second.open();
            co_await ++it;
            CO_COMPARE((*it).taskId(), futures[2].taskId());
            third.open();
            co_await ++it;
            CO_COMPARE((*it).taskId(), futures[0].taskId());
            co_await ++it;
            CO_VERIFY(it == completed.end());
            co_await pool.shutdown();
        }());
    }

    void timesOut_data()
    {
        QTest::addColumn<int>("timeoutMs");
        QTest::newRow("0 ms") << 0;
        QTest::newRow("100 ms") << 100;
    }

    // As completed timing out before its last future settles: the settled ones are yielded, then
    // TimeoutError; the unfinished future is left alone.
    void timesOut()
    {
        QFETCH(int, timeoutMs);
        run([](std::chrono::milliseconds timeout) -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            Gate gate;
            const QList<QFuture<int>> alreadyCompleted { cancelledFuture(), exceptionFuture(), successfulFuture() };
            Future<int> future = pool.submit(waitFor, &gate);
            QList<QFuture<int>> futures = alreadyCompleted;
            futures.append(future);
            QList<int> results;
            int cancelled = 0;
            int failed = 0;
            QString timeoutMessage;
            QElapsedTimer clock;
            clock.start();
            try {
                QCORO_FOREACH(const QFuture<int>& f, TaskPool::asCompleted(futures, timeout))
                {
                    try {
                        results.append(co_await Future<int>(f));
                    } catch (const TaskPool::CancelledError&) {
                        ++cancelled;
                    } catch (const std::runtime_error&) {
                        ++failed;
                    }
                }
            } catch (const TaskPool::TimeoutError& e) {
                timeoutMessage = QString::fromUtf8(e.what());
            }
            CO_COMPARE(results, QList<int> { 42 });
            CO_COMPARE(cancelled, 1);
            CO_COMPARE(failed, 1);
            CO_COMPARE(timeoutMessage, QStringLiteral("1 (of 4) futures unfinished"));
            CO_VERIFY(clock.elapsed() >= timeout.count() - 1);
            CO_VERIFY2(!future.done(), "the timeout must leave the unfinished future alone");
            CO_VERIFY(!future.isCanceled());
            gate.open();
            CO_COMPARE(co_await future, 0);
            co_await pool.shutdown();
        }(std::chrono::milliseconds(timeoutMs)));
    }

    // CPython's test_correct_timeout_exception_msg: an unstarted and a running future unfinished.
    void timeoutMessageCountsUnfinished()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(1);
            Gate gate;
            Future<int> running = pool.submit(waitFor, &gate);
            Future<int> pending = pool.submit(waitFor, &gate);
            const QList<QFuture<int>> futures { cancelledFuture(), pending, running, successfulFuture() };
            int yielded = 0;
            QString message;
            try {
                QCORO_FOREACH(const QFuture<int>& f, TaskPool::asCompleted(futures, 0ms))
                {
                    Q_UNUSED(f);
                    ++yielded;
                }
            } catch (const TaskPool::TimeoutError& e) {
                message = QString::fromUtf8(e.what());
            }
            CO_COMPARE(yielded, 2);
            CO_COMPARE(message, QStringLiteral("2 (of 4) futures unfinished"));
            gate.open();
            co_await pool.shutdown();
        }());
    }

    // The timeout counts from the call, not from the first iteration (the generator is lazy).
    void timeoutCountsFromTheCall()
    {
        run([]() -> QCoro::Task<void> {
            QPromise<int> promise;
            promise.start();
            const QList<QFuture<int>> futures { promise.future() };
            auto completed = TaskPool::asCompleted(futures, 30ms);
            co_await TestUtil::sleep(60ms);
            QElapsedTimer clock;
            clock.start();
            CO_VERIFY_THROWS(co_await completed.begin(), TaskPool::TimeoutError);
            CO_VERIFY2(clock.elapsed() < 25, "the timeout restarted at the first iteration");
        }());
    }

    // bpo-20367 / bpo-31641: duplicates are yielded once.
    void duplicateFuturesYieldedOnce()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            Future<int> future1 = pool.submit(delayedMul<10>, 3, 3);
            const QList<Future<int>> futures { future1, future1, future1 };
            int count = 0;
            QCORO_FOREACH(const Future<int>& f, TaskPool::asCompleted(futures))
            {
                CO_COMPARE(f.taskId(), future1.taskId());
                ++count;
            }
            CO_COMPARE(count, 1);
            CO_VERIFY(future1.done());
            co_await pool.shutdown();
        }());
    }

    void emptyListYieldsNothing()
    {
        run([]() -> QCoro::Task<void> {
            auto completed = TaskPool::asCompleted(QList<QFuture<int>>(), 0ms);
            auto it = co_await completed.begin();
            CO_VERIFY(it == completed.end());
        }());
    }

    // CPython's test_free_reference_yielded_future: once a future is taken from the generator
    // and dropped by the caller, nothing keeps its result alive.
    void yieldedFutureNotKept()
    {
        run([]() -> QCoro::Task<void> {
            using Result = std::shared_ptr<int>;
            std::vector<std::unique_ptr<QPromise<Result>>> promises;
            QList<QFuture<Result>> futures;
            for (int i = 0; i < 8; ++i) {
                promises.push_back(std::make_unique<QPromise<Result>>());
                promises.back()->start();
                futures.append(promises.back()->future());
            }
            std::vector<std::weak_ptr<int>> results(10);
            {
                QPromise<Result> cancelled;
                cancelled.start();
                futures.append(cancelled.future());
                cancelled.future().cancel();
                cancelled.finish();
                QPromise<Result> finished;
                finished.start();
                auto value = std::make_shared<int>(42);
                results[9] = value;
                finished.addResult(std::move(value));
                finished.finish();
                futures.append(finished.future());
            }
            auto takeAndDrop = [&futures](QFuture<Result>&& yielded) {
                QFuture<Result> future = std::move(yielded);
                const auto index
                    = std::find_if(futures.begin(), futures.end(),
                                   [&](const QFuture<Result>& f) {
                                       return QFutureInterfaceBase::get(f) == QFutureInterfaceBase::get(future);
                                   })
                    - futures.begin();
                futures.removeAt(index);
            };

            int taken = 0;
            {
                auto completed = TaskPool::asCompleted(futures, 0ms);
                bool timedOut = false;
                try {
                    for (auto it = co_await completed.begin(); it != completed.end(); co_await ++it) {
                        const bool hasResult = (*it).resultCount() > 0;
                        takeAndDrop(std::move(*it));
                        ++taken;
                        if (hasResult)
                            CO_VERIFY2(results[9].expired(), "a yielded future's result is still referenced");
                    }
                } catch (const TaskPool::TimeoutError&) {
                    timedOut = true;
                }
                CO_VERIFY(timedOut);
            }
            CO_COMPARE(taken, 2);
            CO_VERIFY(results[9].expired());

            auto settleNext = [&](int i) {
                auto value = std::make_shared<int>(i);
                results[std::size_t(i)] = value;
                promises[std::size_t(i)]->addResult(std::move(value));
                promises[std::size_t(i)]->finish();
                promises[std::size_t(i)].reset();
            };
            int next = 0;
            settleNext(next++);
            auto completed = TaskPool::asCompleted(futures);
            for (auto it = co_await completed.begin(); it != completed.end(); co_await ++it) {
                const int value = *(*it).result();
                takeAndDrop(std::move(*it));
                CO_VERIFY2(results[std::size_t(value)].expired(), "a yielded future's result is still referenced");
                if (next < 8)
                    settleNext(next++);
            }
            CO_VERIFY(futures.isEmpty());
        }());
    }

    // Dropped before its first iteration: nothing was set up, nothing happens later.
    void droppedUnstartedGenerator()
    {
        run([]() -> QCoro::Task<void> {
            QPromise<int> promise;
            promise.start();
            const QList<QFuture<int>> futures { promise.future() };
            {
                auto completed = TaskPool::asCompleted(futures, 10ms);
            }
            co_await TestUtil::sleep(20ms); // past the timeout: no timer left behind fires
            promise.addResult(1);
            promise.finish();
            co_await TaskPool::detail::Yield();
            CO_VERIFY(!futures.first().isCanceled());
        }());
    }

    // Dropped mid-iteration (at a yield, with unsettled futures watched): every watcher goes with
    // it, the futures are left alone, and their later notices reach nobody.
    void droppedMidIterationLeavesNoWatcher()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            Gate gate;
            QPromise<int> promise;
            promise.start();
            Future<int> poolFuture = pool.submit(waitFor, &gate);
            const QList<QFuture<int>> futures { successfulFuture(), promise.future(), poolFuture };
            WatcherEventCounter counter;
            {
                auto completed = TaskPool::asCompleted(futures, 50ms);
                auto it = co_await completed.begin();
                CO_VERIFY(same(*it, futures.first()));
            }
            co_await TaskPool::detail::Yield(); // let the replay the watchers had posted go
            counter.count = 0;
            promise.addResult(1);
            promise.finish();
            gate.open();
            CO_COMPARE(co_await poolFuture, 0);
            co_await TestUtil::sleep(60ms); // past the dropped generator's timeout
            CO_COMPARE(counter.count, 0);
            CO_VERIFY(!futures[1].isCanceled());
            co_await pool.shutdown();
        }());
    }

    // A break out of the loop drops the generator in the same way.
    void breakOutOfLoop()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            Gate gate;
            QList<Future<int>> futures { pool.submit(delayedMul<10>, 1, 5), pool.submit(waitFor, &gate) };
            int seen = 0;
            QCORO_FOREACH(const Future<int>& f, TaskPool::asCompleted(futures))
            {
                CO_COMPARE(f.taskId(), futures[0].taskId());
                ++seen;
                break;
            }
            CO_COMPARE(seen, 1);
            CO_VERIFY(!futures[1].done());
            gate.open();
            co_await futures[1];
            co_await pool.shutdown();
        }());
    }

    // Futures settled by another thread are yielded in the iterating thread.
    void futuresFinishedInAnotherThread()
    {
        run([]() -> QCoro::Task<void> {
            std::vector<std::unique_ptr<QPromise<int>>> promises;
            QList<QFuture<int>> futures;
            for (int i = 0; i < 20; ++i) {
                promises.push_back(std::make_unique<QPromise<int>>());
                promises.back()->start();
                futures.append(promises.back()->future());
            }
            auto completed = TaskPool::asCompleted(futures);
            std::unique_ptr<QThread> thread(QThread::create([&promises] {
                int i = 0;
                for (auto& promise : promises) {
                    promise->addResult(i++);
                    promise->finish();
                }
            }));
            thread->start();
            QThread* const self = QThread::currentThread();
            QList<int> values;
            QCORO_FOREACH(const QFuture<int>& f, completed)
            {
                CO_VERIFY(QThread::currentThread() == self);
                values.append(f.result());
            }
            thread->wait();
            std::sort(values.begin(), values.end());
            QList<int> expected;
            for (int i = 0; i < 20; ++i)
                expected.append(i);
            CO_COMPARE(values, expected);
        }());
    }
};

QTEST_GUILESS_MAIN(tst_AsCompleted)
#include "tst_ascompleted.moc"
