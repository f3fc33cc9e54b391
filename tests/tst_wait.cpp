// SPDX-License-Identifier: MIT
// TaskPool::wait(): cf-taskpool's tests/test_wait.py and CPython's test_wait.py, plus the cases
// that only arise with Qt futures (foreign threads, cancellation through a plain copy).
#include "testutil.h"

#include <QPromise>
#include <QThread>

#include <algorithm>
#include <stdexcept>

using namespace TestUtil;
using TaskPool::Future;
using TaskPool::ReturnWhen;

namespace {

QCoro::Task<int> waitAndRaise(Gate* gate)
{
    co_await *gate;
    throw std::runtime_error("this is an exception");
}

QCoro::Task<int> divmod(int x, int y)
{
    if (y == 0)
        throw std::domain_error("integer division or modulo by zero");
    co_return x / y;
}

// Set equality by shared state (QFuture has no operator== in Qt 6).
template <typename F> bool sameSet(const QList<F>& actual, const QList<F>& expected)
{
    if (actual.size() != expected.size())
        return false;
    return std::all_of(actual.begin(), actual.end(), [&](const F& a) {
        return std::any_of(expected.begin(), expected.end(), [&](const F& e) { return same(a, e); });
    });
}

} // namespace

class tst_Wait : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // bpo-20369: a future listed twice is reported once.
    void duplicatesCollapsed()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            QFuture<int> future = pool.submit(delayedMul<10>, 1, 2);
            const QList<QFuture<int>> futures { future, future };
            auto [done, notDone] = co_await TaskPool::wait(futures, ReturnWhen::AllCompleted);
            CO_COMPARE(done.size(), 1);
            CO_VERIFY(same(done.first(), future));
            CO_VERIFY(notDone.isEmpty());
            co_await pool.shutdown();
        }());
    }

    void firstCompleted()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            Gate gate;
            QFuture<int> future1 = pool.submit(delayedMul<10>, 21, 2);
            QFuture<int> future2 = pool.submit(waitFor, &gate);
            const QList<QFuture<int>> futures { future1, future2 };
            auto [done, notDone] = co_await TaskPool::wait(futures, ReturnWhen::FirstCompleted);
            const QList<QFuture<int>> expectedDone { future1 };
            const QList<QFuture<int>> expectedNotDone { future2 };
            CO_VERIFY(sameSet(done, expectedDone));
            CO_VERIFY(sameSet(notDone, expectedNotDone));
            gate.open();
            co_await Future<int>(future2);
            co_await pool.shutdown();
        }());
    }

    // CPython lists a cancelled, not yet notified future as not done. A cancelled QFuture cannot
    // change its outcome any more, so here it counts as done even before it finished.
    void firstCompletedCountsCancelledUnfinishedFutureAsDone()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            Gate gate;
            QPromise<int> promise;
            promise.start();
            QFuture<int> cancelled = promise.future();
            cancelled.cancel(); // never finished while the wait runs
            QFuture<int> future = pool.submit(waitFor, &gate);
            const QList<QFuture<int>> futures { cancelled, future };
            auto [done, notDone] = co_await TaskPool::wait(futures, ReturnWhen::FirstCompleted);
            CO_COMPARE(done.size(), 1);
            CO_VERIFY(same(done.first(), cancelled));
            CO_VERIFY(!done.first().isFinished());
            CO_COMPARE(notDone.size(), 1);
            CO_VERIFY(same(notDone.first(), future));
            gate.open();
            co_await Future<int>(future);
            co_await pool.shutdown();
        }());
    }

    void firstCompletedSomeAlreadyCompletedReturnsAtOnce()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            Gate gate;
            QFuture<int> futureC = cancelledFuture();
            QFuture<int> futureS = successfulFuture();
            QFuture<int> future1 = pool.submit(waitFor, &gate);
            const QList<QFuture<int>> futures { futureC, futureS, future1 };
            auto waiting = TaskPool::wait(futures, ReturnWhen::FirstCompleted);
            CO_VERIFY2(waiting.isReady(), "already settled futures must count without suspending");
            auto [finished, pending] = co_await waiting;
            const QList<QFuture<int>> expectedFinished { futureC, futureS };
            CO_VERIFY(sameSet(finished, expectedFinished));
            CO_COMPARE(pending.size(), 1);
            CO_VERIFY(same(pending.first(), future1));
            gate.open();
            co_await Future<int>(future1);
            co_await pool.shutdown();
        }());
    }

    void firstException()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(3);
            Gate event1;
            Gate event2;
            Future<int> future1 = pool.submit(delayedMul<10>, 2, 21);
            QFuture<int> future2 = pool.submit(waitAndRaise, &event1);
            QFuture<int> future3 = pool.submit(waitFor, &event2);
            // future1 completes before future2 fails.
            auto opener = [](Future<int> future, Gate* gate) -> QCoro::Task<void> {
                co_await future;
                gate->open();
            }(future1, &event1);
            const QList<QFuture<int>> futures { future1, future2, future3 };
            auto [finished, pending] = co_await TaskPool::wait(futures, ReturnWhen::FirstException);
            CO_VERIFY(opener.isReady());
            const QList<QFuture<int>> expectedFinished { future1, future2 };
            CO_VERIFY(sameSet(finished, expectedFinished));
            CO_COMPARE(pending.size(), 1);
            CO_VERIFY(same(pending.first(), future3));
            event2.open();
            co_await Future<int>(future3);
            co_await pool.shutdown();
        }());
    }

    void firstExceptionSomeAlreadyComplete()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            Gate gate;
            QFuture<int> futureS = successfulFuture();
            QFuture<int> futureC = cancelledFuture();
            QFuture<int> future1 = pool.submit(divmod, 21, 0);
            QFuture<int> future2 = pool.submit(waitFor, &gate);
            const QList<QFuture<int>> futures { futureS, futureC, future1, future2 };
            auto [finished, pending] = co_await TaskPool::wait(futures, ReturnWhen::FirstException);
            const QList<QFuture<int>> expectedFinished { futureS, futureC, future1 };
            CO_VERIFY(sameSet(finished, expectedFinished));
            CO_COMPARE(pending.size(), 1);
            CO_VERIFY(same(pending.first(), future2));
            gate.open();
            co_await Future<int>(future2);
            co_await pool.shutdown();
        }());
    }

    void firstExceptionOneAlreadyFailedReturnsAtOnce()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            Gate gate;
            QFuture<int> futureE = exceptionFuture();
            QFuture<int> future1 = pool.submit(waitFor, &gate);
            const QList<QFuture<int>> futures { futureE, future1 };
            auto waiting = TaskPool::wait(futures, ReturnWhen::FirstException);
            CO_VERIFY(waiting.isReady());
            auto [finished, pending] = co_await waiting;
            CO_COMPARE(finished.size(), 1);
            CO_VERIFY(same(finished.first(), futureE));
            CO_COMPARE(pending.size(), 1);
            CO_VERIFY(same(pending.first(), future1));
            gate.open();
            co_await Future<int>(future1);
            co_await pool.shutdown();
        }());
    }

    // A cancellation is not an exception: FirstException then waits for everything.
    void firstExceptionIgnoresCancellation()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            Gate gate;
            Future<int> blocked = pool.submit(waitFor, &gate);
            Future<int> other = pool.submit(waitFor, &gate);
            const QList<QFuture<int>> futures { cancelledFuture(), blocked, other };
            auto waiting = TaskPool::wait(futures, ReturnWhen::FirstException);
            CO_VERIFY(!waiting.isReady());
            blocked.cancel();
            co_await turns();
            CO_VERIFY2(!waiting.isReady(), "returned on a cancellation");
            gate.open();
            auto [finished, pending] = co_await waiting;
            CO_COMPARE(finished.size(), 3);
            CO_VERIFY(pending.isEmpty());
            co_await pool.shutdown();
        }());
    }

    void allCompleted()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            QFuture<int> futureS = successfulFuture();
            QFuture<int> futureC = cancelledFuture();
            QFuture<int> futureE = exceptionFuture();
            QFuture<int> future1 = pool.submit(divmod, 2, 0);
            QFuture<int> future2 = pool.submit(delayedMul<10>, 2, 21);
            const QList<QFuture<int>> futures { futureS, futureC, futureE, future1, future2 };
            auto [finished, pending] = co_await TaskPool::wait(futures, ReturnWhen::AllCompleted);
            CO_VERIFY(sameSet(finished, futures));
            CO_VERIFY(pending.isEmpty());
            CO_COMPARE(Future<int>(future2).result(), 42);
            co_await pool.shutdown();
        }());
    }

    void allCompletedIsTheDefault()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            Gate gate;
            QList<Future<int>> futures { pool.submit(delayedMul<10>, 1, 1), pool.submit(waitFor, &gate) };
            auto waiting = TaskPool::wait(futures);
            co_await Future<int>(futures.first());
            co_await turns();
            CO_VERIFY2(!waiting.isReady(), "returned before every future settled");
            gate.open();
            auto [done, notDone] = co_await waiting;
            CO_COMPARE(done.size(), 2);
            CO_VERIFY(notDone.isEmpty());
            co_await pool.shutdown();
        }());
    }

    void timeoutReturnsWhatIsDone()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            Gate gate;
            QFuture<int> futureC = cancelledFuture();
            QFuture<int> futureE = exceptionFuture();
            QFuture<int> futureS = successfulFuture();
            QFuture<int> future = pool.submit(waitFor, &gate);
            const QList<QFuture<int>> futures { futureC, futureE, futureS, future };
            QElapsedTimer clock;
            clock.start();
            auto [finished, pending] = co_await TaskPool::wait(futures, ReturnWhen::AllCompleted, 50ms);
            CO_VERIFY2(clock.elapsed() >= 49, qPrintable(QString::number(clock.elapsed())));
            const QList<QFuture<int>> expectedFinished { futureC, futureE, futureS };
            CO_VERIFY(sameSet(finished, expectedFinished));
            CO_COMPARE(pending.size(), 1);
            CO_VERIFY(same(pending.first(), future));
            CO_VERIFY2(!future.isCanceled(), "the timeout must leave unfinished futures alone");
            gate.open();
            CO_COMPARE(co_await Future<int>(future), 0);
            co_await pool.shutdown();
        }());
    }

    void zeroTimeoutReturnsAtOnce()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            Gate gate;
            QList<QFuture<int>> futures { successfulFuture(), pool.submit(waitFor, &gate) };
            auto waiting = TaskPool::wait(futures, ReturnWhen::AllCompleted, 0ms);
            CO_VERIFY(waiting.isReady());
            auto [done, notDone] = co_await waiting;
            CO_COMPARE(done.size(), 1);
            CO_VERIFY(same(done.first(), futures.first()));
            CO_COMPARE(notDone.size(), 1);
            auto negative = TaskPool::wait(futures, ReturnWhen::AllCompleted, -5ms);
            CO_VERIFY(negative.isReady());
            gate.open();
            co_await Future<int>(futures.last());
            co_await pool.shutdown();
        }());
    }

    void timeoutNotReachedWhenAllComplete()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPool::TaskPoolExecutor pool(2);
                Gate gate;
                QList<Future<int>> futures { pool.submit(waitFor, &gate), pool.submit(delayedMul<10>, 3, 4) };
                auto waiting = TaskPool::wait(futures, ReturnWhen::AllCompleted, 60s);
                gate.open();
                auto [done, notDone] = co_await waiting;
                CO_COMPARE(done.size(), 2);
                CO_VERIFY(notDone.isEmpty());
                co_await pool.shutdown();
            }(),
            5s);
    }

    // bpo-14406: many futures settling at nearly the same time are all noticed.
    void pendingCallsRace()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(100);
            Gate gate;
            QList<Future<int>> futures;
            for (int i = 0; i < 100; ++i)
                futures.append(pool.submit(waitFor, &gate));
            gate.open();
            auto [done, notDone] = co_await TaskPool::wait(futures, ReturnWhen::AllCompleted);
            CO_COMPARE(done.size(), 100);
            CO_VERIFY(notDone.isEmpty());
            CO_VERIFY(std::all_of(done.begin(), done.end(), [](const Future<int>& f) { return f.done(); }));
            co_await pool.shutdown();
        }());
    }

    void emptyListReturnsEmptyResult()
    {
        run([]() -> QCoro::Task<void> {
            const QList<QFuture<int>> none;
            auto waiting = TaskPool::wait(none, ReturnWhen::FirstCompleted);
            CO_VERIFY(waiting.isReady());
            auto [done, notDone] = co_await waiting;
            CO_VERIFY(done.isEmpty());
            CO_VERIFY(notDone.isEmpty());
        }());
    }

    // The result keeps the input's type (Future<T> keeps its pool API) and the input order.
    void resultKeepsFutureTypeAndInputOrder()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(3);
            Gate gate;
            QList<Future<int>> futures { pool.submit(delayedMul<10>, 1, 2), pool.submit(waitFor, &gate),
                                         pool.submit(delayedMul<10>, 3, 4), pool.submit(waitFor, &gate) };
            co_await futures[0];
            co_await futures[2];
            TaskPool::WaitResult<Future<int>> result = co_await TaskPool::wait(futures, ReturnWhen::FirstCompleted);
            static_assert(std::is_same_v<decltype(result.done), QList<Future<int>>>);
            CO_COMPARE(result.done.size(), 2);
            CO_COMPARE(result.done[0].taskId(), futures[0].taskId());
            CO_COMPARE(result.done[1].taskId(), futures[2].taskId());
            CO_COMPARE(result.notDone[0].taskId(), futures[1].taskId());
            CO_COMPARE(result.notDone[1].taskId(), futures[3].taskId());
            result.notDone[0].cancel(); // the pool's cancel, still available
            CO_VERIFY(futures[1].cancelled());
            gate.open();
            co_await pool.shutdown();
        }());
    }

    // A cancel through a plain QFuture copy (no hook in Qt) still wakes the wait.
    void cancelThroughPlainCopyWakesWait()
    {
        run([]() -> QCoro::Task<void> {
            QPromise<int> promise;
            promise.start();
            QList<QFuture<int>> futures { promise.future() };
            auto waiting = TaskPool::wait(futures, ReturnWhen::FirstCompleted);
            CO_VERIFY(!waiting.isReady());
            QFuture<int>(promise.future()).cancel();
            auto [done, notDone] = co_await waiting;
            CO_COMPARE(done.size(), 1);
            CO_VERIFY(notDone.isEmpty());
        }());
    }

    // A future settled by another thread wakes the waiting coroutine in its own thread.
    void futureFinishedInAnotherThread()
    {
        run([]() -> QCoro::Task<void> {
            QPromise<int> promise;
            promise.start();
            QList<QFuture<int>> futures { promise.future(), successfulFuture() };
            auto waiting = TaskPool::wait(futures, ReturnWhen::AllCompleted);
            QThread* const self = QThread::currentThread();
            std::unique_ptr<QThread> thread(QThread::create([&promise] {
                promise.addResult(7);
                promise.finish();
            }));
            thread->start();
            auto [done, notDone] = co_await waiting;
            CO_VERIFY(QThread::currentThread() == self);
            CO_COMPARE(done.size(), 2);
            CO_VERIFY(notDone.isEmpty());
            CO_COMPARE(done.first().result(), 7);
            thread->wait();
        }());
    }

    // Qt reports a failure as "canceled" before "finished": the failure counts once finished.
    void failedFutureIsDoneOnlyOnceFinished()
    {
        run([]() -> QCoro::Task<void> {
            QPromise<int> promise;
            promise.start();
            QList<QFuture<int>> futures { promise.future() };
            auto waiting = TaskPool::wait(futures, ReturnWhen::FirstException);
            promise.setException(std::make_exception_ptr(std::runtime_error("late")));
            co_await turns();
            CO_VERIFY(!waiting.isReady());
            promise.finish();
            auto [done, notDone] = co_await waiting;
            CO_COMPARE(done.size(), 1);
            CO_VERIFY(notDone.isEmpty());
        }());
    }
};

QTEST_GUILESS_MAIN(tst_Wait)
#include "tst_wait.moc"
