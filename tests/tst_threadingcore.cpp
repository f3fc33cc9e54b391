// SPDX-License-Identifier: MIT
// The executor across threads: submit from several QThreads (work handed to the executor's thread,
// results read from the submitting threads), awaiting a pool future in another thread's event
// loop, cancel from another thread, and submit racing shutdown. Runs under ThreadSanitizer too.
#include "testutil.h"

#include <QMutex>
#include <QSemaphore>
#include <QSignalSpy>
#include <QThread>

#include <atomic>
#include <memory>
#include <optional>
#include <vector>

using namespace TestUtil;
using TaskPool::Future;
using TaskPool::TaskPoolExecutor;

namespace {

QCoro::Task<int> square(int x)
{
    co_await sleep(1ms);
    co_return x* x;
}

QCoro::Task<int> waitThen(Gate* gate, int value)
{
    co_await *gate;
    co_return value;
}

//! Starts \a threads and opens \a allFinished once every one of them has finished. Connected
//! before start(), so no finish can be missed.
void startAll(const std::vector<std::unique_ptr<QThread>>& threads, QObject* context, Gate& allFinished)
{
    auto remaining = std::make_shared<int>(int(threads.size()));
    for (const auto& thread : threads) {
        QObject::connect(thread.get(), &QThread::finished, context, [remaining, &allFinished] {
            if (--*remaining == 0)
                allFinished.open();
        });
    }
    for (const auto& thread : threads)
        thread->start();
}

//! Runs \a fn once in \a thread and waits for it: for one-off actions from another thread.
template <typename Fn> QCoro::Task<void> inThread(Fn fn)
{
    QObject context;
    Gate done;
    std::unique_ptr<QThread> thread(QThread::create(std::move(fn)));
    QObject::connect(thread.get(), &QThread::finished, &context, [&done] { done.open(); });
    thread->start();
    co_await done;
    thread->wait();
}

} // namespace

class tst_ThreadingCore : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void submitFromSeveralThreads()
    {
        run([]() -> QCoro::Task<void> {
            constexpr int threadCount = 4;
            constexpr int perThread = 25;
            TaskPoolExecutor pool(3);
            QThread* const executorThread = QThread::currentThread();
            std::atomic<int> ranElsewhere { 0 };
            auto task = [executorThread, &ranElsewhere](int x) -> QCoro::Task<int> {
                if (QThread::currentThread() != executorThread)
                    ++ranElsewhere;
                co_await sleep(1ms);
                if (QThread::currentThread() != executorThread)
                    ++ranElsewhere;
                co_return x* x;
            };

            QMutex mutex;
            QList<std::pair<int, Future<int>>> submitted; // awaited in the executor thread
            std::vector<long long> sums(threadCount, 0); // results read by the submitting threads
            QSemaphore allAwaited;
            QObject context;
            Gate allSubmitted;
            std::atomic<int> submitting { threadCount };
            std::vector<std::unique_ptr<QThread>> threads;
            for (int t = 0; t < threadCount; ++t) {
                threads.emplace_back(QThread::create([&, t] {
                    QList<Future<int>> mine;
                    for (int i = 0; i < perThread; ++i) {
                        const int x = t * perThread + i;
                        auto future = pool.submit(task, x);
                        mine.append(future);
                        QMutexLocker locker(&mutex);
                        submitted.append({ x, future });
                    }
                    if (--submitting == 0)
                        QMetaObject::invokeMethod(&context, [&allSubmitted] { allSubmitted.open(); });
                    allAwaited.acquire();
                    for (auto& future : mine)
                        sums[t] += future.result();
                }));
            }
            Gate allFinished;
            startAll(threads, &context, allFinished);
            co_await allSubmitted;
            CO_COMPARE(submitted.size(), threadCount * perThread);
            for (auto& [x, future] : submitted)
                CO_COMPARE(co_await future, x * x);
            allAwaited.release(threadCount);
            co_await allFinished;
            for (auto& thread : threads)
                thread->wait();
            CO_COMPARE(submitted.size(), threadCount * perThread);
            for (auto& [x, future] : submitted)
                CO_COMPARE(co_await future, x * x);
            for (int t = 0; t < threadCount; ++t) {
                long long expected = 0;
                for (int i = 0; i < perThread; ++i)
                    expected += (t * perThread + i) * (t * perThread + i);
                CO_COMPARE(sums[t], expected);
            }
            CO_COMPARE(ranElsewhere.load(), 0); // every task ran in the executor's thread
            co_await pool.shutdown();
            CO_COMPARE(pool.workerCount(), 0);
        }());
    }

    // QFuture::result() from another thread must block until a queued task's result is there.
    // (It waits through QFutureInterfaceBase::waitForResult(), done here directly so that a wrong
    // implementation fails the check instead of crashing on the missing result.)
    void blockingResultFromAnotherThread()
    {
        std::atomic<bool> returnedEarly { false };
        run([](std::atomic<bool>& returnedEarly) -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto blocker = pool.submit(waitThen, &gate, 1);
            auto queued = pool.submit(square, 3);
            QObject context;
            Gate done;
            std::unique_ptr<QThread> thread(QThread::create([&] {
                QFutureInterfaceBase::get(queued).waitForResult(0);
                returnedEarly = !queued.isResultReadyAt(0);
            }));
            QObject::connect(thread.get(), &QThread::finished, &context, [&done] { done.open(); });
            thread->start();
            co_await sleep(20ms); // let the thread block (a wrong implementation returns at once)
            gate.open();
            CO_COMPARE(co_await blocker, 1);
            CO_COMPARE(co_await queued, 9);
            co_await done;
            thread->wait();
            co_await pool.shutdown();
        }(returnedEarly));
        QVERIFY(!returnedEarly.load());
    }

    void cancelQueuedTaskFromAnotherThread()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QSignalSpy canceled(&pool, &TaskPoolExecutor::taskCanceled);
            Gate gate;
            auto blocker = pool.submit(waitThen, &gate, 1);
            bool started = false;
            auto queued = pool.submit([&started] {
                started = true;
                return 2;
            });
            std::atomic<bool> cancelReturned { false }, settledAtOnce { false };
            co_await inThread([&] {
                cancelReturned = queued.cancel();
                settledAtOnce = queued.cancelled() && queued.done() && queued.isFinished();
            });
            CO_VERIFY(cancelReturned.load());
            CO_VERIFY(settledAtOnce.load());
            CO_VERIFY_THROWS(co_await queued, TaskPool::CancelledError);
            gate.open();
            CO_COMPARE(co_await blocker, 1);
            co_await pool.shutdown(); // the worker reached the cancelled task and dropped it
            CO_VERIFY(!started);
            CO_COMPARE(pool.pendingCount(), 0);
            CO_COMPARE(canceled.count(), 1);
            CO_COMPARE(canceled.at(0).at(0).toULongLong(), queued.taskId());
        }());
    }

    void cancelRunningTaskFromAnotherThread()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate, started;
            bool ranToTheEnd = false;
            auto running = pool.submit([&gate, &started, &ranToTheEnd]() -> QCoro::Task<int> {
                started.open();
                co_await gate;
                ranToTheEnd = true;
                co_return 1;
            });
            bool nextStartedEarly = false;
            auto next = pool.submit([&] {
                nextStartedEarly = !ranToTheEnd;
                return 2;
            });
            co_await started;
            std::atomic<bool> settledAtOnce { false };
            co_await inThread([&] { settledAtOnce = running.cancel() && running.cancelled() && running.isFinished(); });
            CO_VERIFY(settledAtOnce.load());
            CO_VERIFY_THROWS(co_await running, TaskPool::CancelledError);
            CO_COMPARE(pool.activeCount(), 1); // the slot stays taken until the coroutine ends
            CO_COMPARE(pool.pendingCount(), 1);
            gate.open();
            CO_COMPARE(co_await next, 2);
            CO_VERIFY(ranToTheEnd);
            CO_VERIFY(!nextStartedEarly);
            co_await pool.shutdown();
        }());
    }

    void submitAfterShutdownFromAnotherThread()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            co_await pool.shutdown();
            std::atomic<bool> threw { false };
            co_await inThread([&] {
                try {
                    (void)pool.submit(square, 2);
                } catch (const TaskPool::ShutdownError&) {
                    threw = true;
                }
            });
            CO_VERIFY(threw.load());
            CO_COMPARE(pool.pendingCount(), 0);
            CO_COMPARE(pool.workerCount(), 0);
        }());
    }

    // Threads keep submitting while the executor shuts down: every submit either throws
    // ShutdownError or returns a future that completes, none is lost.
    void submitRacingShutdown()
    {
        run(
            []() -> QCoro::Task<void> {
                constexpr int threadCount = 4;
                TaskPoolExecutor pool(4);
                QObject context;
                Gate enoughSubmitted;
                std::atomic<int> total { 0 };
                QMutex mutex;
                QList<std::pair<int, Future<int>>> submitted;
                std::atomic<int> stoppedByShutdown { 0 };
                std::vector<std::unique_ptr<QThread>> threads;
                for (int t = 0; t < threadCount; ++t) {
                    threads.emplace_back(QThread::create([&, t] {
                        for (int i = 0; i < 100000; ++i) {
                            const int x = t * 100000 + i;
                            try {
                                auto future = pool.submit([](int x) { return x % 1000; }, x);
                                QMutexLocker locker(&mutex);
                                submitted.append({ x, future });
                            } catch (const TaskPool::ShutdownError&) {
                                ++stoppedByShutdown;
                                return;
                            }
                            if (++total == 200)
                                QMetaObject::invokeMethod(&context, [&enoughSubmitted] { enoughSubmitted.open(); });
                        }
                    }));
                }
                Gate allFinished;
                startAll(threads, &context, allFinished);
                co_await enoughSubmitted;
                co_await pool.shutdown();
                co_await allFinished;
                for (auto& thread : threads)
                    thread->wait();
                CO_COMPARE(stoppedByShutdown.load(), threadCount);
                CO_VERIFY(submitted.size() >= 200);
                for (auto& [x, future] : submitted) {
                    CO_VERIFY(future.isFinished()); // shutdown() waited for all accepted work
                    CO_COMPARE(future.result(), x % 1000);
                }
                CO_COMPARE(pool.pendingCount(), 0);
                CO_COMPARE(pool.workerCount(), 0);
            }(),
            60s);
    }
};

QTEST_GUILESS_MAIN(tst_ThreadingCore)
#include "tst_threadingcore.moc"
