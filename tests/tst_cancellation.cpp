// SPDX-License-Identifier: MIT
// Cancellation that reaches running work: the stop token of every submit form, each cancellation
// source (Future::cancel, a plain QFuture cancel, another thread, shutdown, a timeout, a context's
// end, a map abandoned), per-task and default timeouts, and Future::within().
#include "testutil.h"

#include <QSignalSpy>

#include <atomic>
#include <memory>
#include <thread>

using namespace TestUtil;
using TaskPool::CancelledError;
using TaskPool::Future;
using TaskPool::MapOptions;
using TaskPool::ShutdownOptions;
using TaskPool::SubmitOptions;
using TaskPool::TaskPoolExecutor;
using TaskPool::TimeoutError;

namespace {

//! What a task saw of its stop token.
struct Seen {
    bool started = false;
    bool stopped = false; // its stop callback ran
    QThread* callbackThread = nullptr;
    bool ended = false;
};

//! Suspends until \a stop is requested; resumes from the event loop (never inside request_stop()).
class UntilStopped {
public:
    explicit UntilStopped(std::stop_token stop, Seen* seen) : m_stop(std::move(stop)), m_seen(seen) { }
    bool await_ready() const { return m_stop.stop_requested(); }
    void await_suspend(std::coroutine_handle<> handle)
    {
        m_callback = std::make_shared<std::stop_callback<Callback>>(m_stop, [this, handle] {
            m_seen->stopped = true;
            m_seen->callbackThread = QThread::currentThread();
            QMetaObject::invokeMethod(
                QCoreApplication::instance(), [handle] { handle.resume(); }, Qt::QueuedConnection);
        });
    }
    void await_resume() { m_callback.reset(); }

private:
    struct Callback {
        std::function<void()> fn;
        void operator()() const { fn(); }
    };
    std::stop_token m_stop;
    Seen* m_seen;
    std::shared_ptr<std::stop_callback<Callback>> m_callback; // copyable, as QCoro wants awaiters
};

//! A task that runs until it is told to stop, then ends cancelled.
QCoro::Task<int> untilStopped(std::stop_token stop, Seen* seen)
{
    seen->started = true;
    UntilStopped wait(std::move(stop), seen);
    co_await wait;
    seen->ended = true;
    throw CancelledError();
}

//! Awaits \a future within \a owner's life, telling whether the code after the co_await ran.
QCoro::Task<void> awaitWithin(Future<int> future, QObject* owner, bool* after, bool* cancelled)
{
    try {
        co_await future.within(owner);
        *after = true;
    } catch (const CancelledError&) {
        *cancelled = true;
    }
}

} // namespace

class tst_Cancellation : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void everyCallableFormGetsAToken()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            auto plain = pool.submit([](std::stop_token stop, int x) { return stop.stop_possible() ? x : -1; }, 7);
            CO_COMPARE(co_await plain, 7);
            auto coroutine = pool.submit([](std::stop_token stop) -> QCoro::Task<bool> {
                co_await TestUtil::sleep(1ms);
                co_return stop.stop_possible() && !stop.stop_requested();
            });
            CO_VERIFY(co_await coroutine);
            bool promiseSawToken = false;
            auto promised = pool.submit(
                [&promiseSawToken](std::stop_token stop, QPromise<int>& promise, int x) {
                    promiseSawToken = stop.stop_possible();
                    promise.addResult(x);
                },
                5);
            CO_COMPARE(co_await promised, 5);
            CO_VERIFY(promiseSawToken);
            QList<int> seen;
            QCORO_FOREACH(int r,
                          pool.map([](std::stop_token stop, int x) { return stop.stop_possible() ? x : -1; },
                                   QList<int> { 1, 2, 3 }))
            {
                seen.append(r);
            }
            CO_COMPARE(seen, (QList<int> { 1, 2, 3 }));
            // A callable that takes no token is called without one, as std::jthread does.
            CO_COMPARE(co_await pool.submit([](int x) { return x + 1; }, 1), 2);
        }());
    }

    void cancelStopsARunningTaskAndFreesItsSlot()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Seen seen;
            auto running = pool.submit(untilStopped, &seen);
            auto next = pool.submit([] { return 2; });
            co_await until([&] { return seen.started; });
            CO_COMPARE(pool.activeCount(), 1);
            CO_VERIFY(running.cancel());
            CO_VERIFY(seen.stopped); // the callback ran inside cancel(), in this thread
            CO_COMPARE(seen.callbackThread, QThread::currentThread());
            CO_VERIFY(running.cancelled());
            CO_COMPARE(co_await next, 2); // the slot freed once the coroutine really ended
            CO_VERIFY(seen.ended);
        }());
    }

    void cancelFromAnotherThreadStopsInTheExecutorThread()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Seen seen;
            auto running = pool.submit(untilStopped, &seen);
            co_await until([&] { return seen.started; });
            std::atomic<bool> cancelled { false };
            std::thread other([&] { cancelled = running.cancel(); });
            other.join();
            CO_VERIFY(cancelled.load());
            CO_VERIFY(running.done()); // settled at once, in the cancelling thread
            co_await until([&] { return seen.ended; });
            CO_COMPARE(seen.callbackThread, QThread::currentThread()); // handed over to the executor's thread
            co_await until([&] { return pool.activeCount() == 0; });
        }());
    }

    void plainQFutureCancelStopsTheToken()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Seen seen;
            auto running = pool.submit(untilStopped, &seen);
            co_await until([&] { return seen.started; });
            QFuture<int> plain = running;
            plain.cancel(); // Qt's own cancel: no TaskPool code is called here
            co_await until([&] { return seen.ended; });
            CO_VERIFY(seen.stopped);
            CO_VERIFY(running.cancelled());
            co_await until([&] { return pool.activeCount() == 0; });
        }());
    }

    void shutdownWithCancelFuturesAsksRunningTasksToStop()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Seen a, b;
            auto stopsCancelled = pool.submit(untilStopped, &a);
            // A task may answer the stop with a result: that is its outcome.
            auto stopsWithValue = pool.submit([&b](std::stop_token stop) -> QCoro::Task<int> {
                b.started = true;
                UntilStopped wait(stop, &b);
                co_await wait;
                co_return 42;
            });
            auto queued = pool.submit([] { return 1; });
            co_await until([&] { return a.started && b.started; });
            co_await pool.shutdown({ .wait = true, .cancelFutures = true });
            CO_VERIFY(a.stopped && b.stopped);
            CO_VERIFY(stopsCancelled.cancelled());
            CO_COMPARE(co_await stopsWithValue, 42);
            CO_VERIFY(queued.cancelled());
        }());
    }

    void timeoutFailsTheFutureAndStopsTheTask()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QSignalSpy failed(&pool, &TaskPoolExecutor::taskFailed);
            QSignalSpy cancelledSpy(&pool, &TaskPoolExecutor::taskCancelled);
            Seen seen;
            auto timed = pool.submit(SubmitOptions { .timeout = 30ms }, untilStopped, &seen);
            bool threw = false;
            try {
                co_await timed;
            } catch (const TimeoutError& e) {
                threw = QByteArray(e.what()).contains("30 ms");
            }
            CO_VERIFY(threw);
            CO_VERIFY(!timed.cancelled()); // a timeout is not a user's cancel
            CO_VERIFY(seen.stopped);
            CO_COMPARE(failed.count(), 1);
            CO_COMPARE(cancelledSpy.count(), 0);
            co_await until([&] { return pool.activeCount() == 0; });
            CO_VERIFY(seen.ended);
        }());
    }

    void timeoutCountsFromTheStartNotTheSubmission()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto first = pool.submit(gated, &gate, 1);
            // Queued behind `first` for longer than its timeout: it must not time out while queued.
            auto second = pool.submit(SubmitOptions { .timeout = 200ms }, [] { return 2; });
            co_await TestUtil::sleep(300ms);
            CO_VERIFY(!second.done());
            gate.open();
            CO_COMPARE(co_await first, 1);
            CO_COMPARE(co_await second, 2);
        }());
    }

    void defaultTimeoutAndItsOverride()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            QSignalSpy changed(&pool, &TaskPoolExecutor::defaultTimeoutChanged);
            pool.setDefaultTimeout(20ms);
            CO_COMPARE(pool.defaultTimeoutMs(), 20);
            CO_COMPARE(changed.count(), 1);
            Seen seen;
            auto timed = pool.submit(untilStopped, &seen);
            CO_VERIFY_THROWS(co_await timed, TimeoutError);
            Gate gate;
            auto unlimited
                = pool.submit(SubmitOptions { .timeout = std::chrono::milliseconds::max() }, gated, &gate, 3);
            co_await TestUtil::sleep(60ms);
            CO_VERIFY(!unlimited.done());
            gate.open();
            CO_COMPARE(co_await unlimited, 3);
            pool.setDefaultTimeoutMs(0);
            CO_VERIFY(!pool.defaultTimeout());
        }());
    }

    void timeoutOfATaskWithoutTokenKeepsItsSlotUntilItEnds()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto timed = pool.submit(SubmitOptions { .timeout = 20ms }, gated, &gate, 1);
            CO_VERIFY_THROWS(co_await timed, TimeoutError);
            CO_COMPARE(pool.activeCount(), 1); // the coroutine still runs: maxWorkers holds
            gate.open();
            co_await until([&] { return pool.activeCount() == 0; });
        }());
    }

    void contextDestructionCancelsQueuedAndRunningTasks()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto context = std::make_unique<QObject>();
            Seen seen;
            auto running = pool.submit(SubmitOptions { .context = context.get() }, untilStopped, &seen);
            bool queuedRan = false;
            auto queued = pool.submit(SubmitOptions { .context = context.get() }, [&queuedRan] {
                queuedRan = true;
                return 1;
            });
            auto unrelated = pool.submit([] { return 2; });
            co_await until([&] { return seen.started; });
            context.reset();
            CO_VERIFY(seen.stopped);
            CO_VERIFY(running.cancelled());
            CO_VERIFY(queued.cancelled());
            CO_COMPARE(co_await unrelated, 2);
            CO_VERIFY(!queuedRan);
        }());
    }

    void contextOutlivingItsTaskLeavesNothingBehind()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            struct Context : QObject {
                int listeners() const { return receivers(SIGNAL(destroyed(QObject*))); }
            } context;
            auto done = pool.submit(SubmitOptions { .context = &context }, [] { return 5; });
            CO_COMPARE(co_await done, 5);
            co_await turns();
            // The task ended: its connection is gone (it held a reference to the job).
            CO_COMPARE(context.listeners(), 0);
        }());
    }

    void withinEndsWithCancelledErrorOnceTheObjectIsGone()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate gate;
            auto future = pool.submit(gated, &gate, 9);
            {
                QObject alive;
                auto quick = pool.submit([] { return 1; });
                CO_COMPARE(co_await quick.within(&alive), 1);
            }
            auto owner = std::make_unique<QObject>();
            bool after = false;
            bool cancelled = false;
            auto waiter = awaitWithin(future, owner.get(), &after, &cancelled);
            co_await turns();
            owner.reset();
            co_await until([&] { return cancelled || after; });
            CO_VERIFY(cancelled);
            CO_VERIFY(!after);
            CO_VERIFY(!future.done()); // the future itself is untouched
            gate.open();
            CO_COMPARE(co_await future, 9);
            co_await waiter;
        }());
    }

    void withinAfterTheFutureSettledButBeforeTheResumption()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto future = pool.submit(gated, &gate, 9);
            auto owner = std::make_unique<QObject>();
            bool after = false;
            bool cancelled = false;
            auto waiter = awaitWithin(future, owner.get(), &after, &cancelled);
            co_await turns();
            gate.open(); // settles the future within this turn's work...
            owner.reset(); // ...and the object goes before the waiter is resumed
            co_await waiter;
            CO_VERIFY(cancelled);
            CO_VERIFY(!after);
        }());
    }

    void destroyingAMapStopsItsRunningItems()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            std::vector<Seen> seen(4);
            {
                auto results = pool.map(
                    MapOptions { .bufferSize = 4 },
                    [&seen](std::stop_token stop, int i) {
                        return untilStopped(std::move(stop), &seen[std::size_t(i)]);
                    },
                    QList<int> { 0, 1, 2, 3 });
                co_await until([&] { return seen[0].started && seen[1].started; });
            } // abandoned: its items are cancelled, and the running ones told to stop
            CO_VERIFY(seen[0].stopped && seen[1].stopped);
            co_await until([&] { return pool.activeCount() == 0; });
            CO_VERIFY(!seen[2].started && !seen[3].started);
        }());
    }

    void aTaskCancelledAsItStartsSeesItsTokenStopped()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Future<bool> future;
            connect(&pool, &TaskPoolExecutor::taskStarted, &pool, [&future](quint64 id) {
                if (id == future.taskId())
                    future.cancel();
            });
            bool stoppedAtStart = false;
            future = pool.submit([&stoppedAtStart](std::stop_token stop) {
                stoppedAtStart = stop.stop_requested();
                return true;
            });
            co_await until([&] { return pool.activeCount() == 0 && future.done(); });
            CO_VERIFY(stoppedAtStart);
            CO_VERIFY(future.cancelled());
        }());
    }

    void badOptionsAreRefused()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            bool ran = false;
            CO_VERIFY_THROWS(std::ignore = pool.submit(SubmitOptions { .timeout = -1ms }, [&ran] { ran = true; }),
                             std::invalid_argument);
            CO_VERIFY_THROWS(pool.setDefaultTimeout(-5ms), std::invalid_argument);
            CO_VERIFY_THROWS(pool.setDefaultTimeoutMs(-1), std::invalid_argument);
            CO_COMPARE(pool.pendingCount(), 0);
            co_await turns();
            CO_VERIFY(!ran);
            CO_VERIFY(!pool.defaultTimeout());
        }());
    }
};

QTEST_GUILESS_MAIN(tst_Cancellation)
#include "tst_cancellation.moc"
