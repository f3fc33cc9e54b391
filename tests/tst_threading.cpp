// SPDX-License-Identifier: MIT
// Cross-thread use: submit from several QThreads, futures read, awaited and cancelled from other
// threads, submit racing shutdown. Kept apart so that it can run under ThreadSanitizer.
#include "testutil.h"

#include <QMutex>
#include <QSignalSpy>
#include <QThread>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

using namespace TestUtil;
using TaskPool::CancelledError;
using TaskPool::Future;
using TaskPool::TaskPoolExecutor;

class tst_Threading : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void submitFromSeveralThreads()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            QThread* const executorThread = QThread::currentThread();
            int mostActive = 0;
            connect(&pool, &TaskPoolExecutor::activeCountChanged, &pool,
                    [&](int count) { mostActive = std::max(mostActive, count); });
            std::atomic<int> wrongThread { 0 };
            QMutex mutex;
            QList<std::pair<int, Future<int>>> futures;
            constexpr int perThread = 25;
            Threads threads(4, [&](int t) {
                for (int i = 0; i < perThread; ++i) {
                    const int value = t * 1000 + i;
                    auto future = pool.submit(
                        [](int value, QThread* expected, std::atomic<int>* wrong) -> QCoro::Task<int> {
                            if (QThread::currentThread() != expected)
                                ++*wrong;
                            co_await TestUtil::sleep(1ms);
                            co_return value * 2;
                        },
                        value, executorThread, &wrongThread);
                    QMutexLocker lock(&mutex);
                    futures.append({ value, future });
                }
            });
            co_await until([&] { return threads.finished(); });
            CO_COMPARE(futures.size(), 4 * perThread);
            for (auto& [value, future] : futures)
                CO_COMPARE(co_await future, value * 2);
            CO_COMPARE(wrongThread.load(), 0);
            CO_COMPARE(mostActive, 3);
            co_await pool.shutdown();
        }());
    }

    void resultsReadFromOtherThreads()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate gate;
            QList<Future<int>> futures;
            for (int i = 1; i <= 10; ++i)
                futures.append(pool.submit(gated, &gate, i));
            auto cancelled = pool.submit(gated, &gate, 0);
            std::array<std::atomic<int>, 3> sums {};
            std::array<std::atomic<bool>, 3> sawCancel {};
            Threads threads(3, [&](int t) {
                int sum = 0;
                for (const auto& future : futures)
                    sum += future.result(); // blocks until the executor's thread produced it
                sums[t] = sum;
                cancelled.waitForFinished();
                sawCancel[t] = cancelled.cancelled();
            });
            co_await TaskPool::detail::Yield {};
            cancelled.cancel();
            gate.open();
            co_await until([&] { return threads.finished(); });
            for (int t = 0; t < 3; ++t) {
                CO_COMPARE(sums[t].load(), 55);
                CO_VERIFY(sawCancel[t].load());
            }
            co_await pool.shutdown();
        }());
    }

    void awaitedInAnotherThreadResumesThere()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gate gate;
            auto future = pool.submit(gated, &gate, 42);
            auto doomed = pool.submit(gated, &gate, 0);

            QThread thread; // runs an event loop
            thread.start();
            QObject context;
            context.moveToThread(&thread);
            std::atomic<int> result { 0 };
            std::atomic<bool> cancelledThere { false };
            std::atomic<QThread*> resumedIn { nullptr };
            std::atomic<int> done { 0 };
            // The posted hand-off is invisible to ThreadSanitizer: hold a mutex it sees while the
            // lambda is made and posted, and take it in the other thread before using the lambda.
            std::mutex handOff;
            std::unique_lock posting(handOff);
            QMetaObject::invokeMethod(&context, [&] {
                std::lock_guard received(handOff);
                [](Future<int> future, std::atomic<int>* result, std::atomic<QThread*>* resumedIn,
                   std::atomic<int>* done) -> QCoro::Task<void> {
                    const int value = co_await future;
                    *resumedIn = QThread::currentThread();
                    *result = value;
                    ++*done;
                }(future, &result, &resumedIn, &done);
                [](Future<int> future, std::atomic<bool>* cancelled, std::atomic<int>* done) -> QCoro::Task<void> {
                    try {
                        co_await future;
                    } catch (const CancelledError&) {
                        *cancelled = true;
                    }
                    ++*done;
                }(doomed, &cancelledThere, &done);
            });
            posting.unlock();
            co_await until([&] { return pool.activeCount() == 2; });
            doomed.cancel();
            gate.open();
            co_await until([&] { return done.load() == 2; });
            CO_COMPARE(result.load(), 42);
            CO_VERIFY(resumedIn.load() == &thread);
            CO_VERIFY(cancelledThere.load());
            thread.quit();
            thread.wait();
            co_await pool.shutdown();
        }());
    }

    void cancelFromAnotherThread()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QSignalSpy canceledSignal(&pool, &TaskPoolExecutor::taskCanceled);
            Gate gate;
            auto blocker = pool.submit(gated, &gate, 1);
            std::atomic<bool> started { false };
            auto queued = pool.submit([](std::atomic<bool>* started) { return started->exchange(true); }, &started);
            co_await until([&] { return pool.activeCount() == 1; });
            std::atomic<bool> cancelOk { false };
            std::atomic<bool> finishedThere { false };
            Threads threads(1, [&](int) {
                auto copy = queued;
                cancelOk = copy.cancel();
                finishedThere = copy.isFinished();
            });
            co_await until([&] { return threads.finished(); });
            CO_VERIFY(cancelOk.load());
            CO_VERIFY(finishedThere.load()); // at once, in the cancelling thread too
            CO_VERIFY(queued.cancelled());
            gate.open();
            CO_COMPARE(co_await blocker, 1);
            CO_VERIFY_THROWS(co_await queued, CancelledError);
            co_await pool.shutdown();
            CO_VERIFY(!started.load()); // the executor dropped it when it reached it
            CO_COMPARE(canceledSignal.count(), 1);
            CO_COMPARE(pool.pendingCount(), 0);
        }());
    }

    void submitRacingShutdown()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(4);
            QMutex mutex;
            QList<std::pair<int, Future<int>>> accepted;
            std::atomic<int> refused { 0 };
            std::atomic<int> submitted { 0 };
            Threads threads(3, [&](int t) {
                for (int i = 0;; ++i) {
                    try {
                        const int value = t * 100000 + i;
                        auto future = pool.submit([](int v) { return v + 1; }, value);
                        ++submitted;
                        QMutexLocker lock(&mutex);
                        accepted.append({ value, future });
                    } catch (const TaskPool::ShutdownError&) {
                        ++refused;
                        return;
                    }
                }
            });
            co_await until([&] { return submitted.load() >= 300; });
            co_await pool.shutdown();
            co_await until([&] { return threads.finished(); });
            CO_COMPARE(refused.load(), 3);
            // Everything accepted before the shutdown ran to completion; nothing was lost.
            for (auto& [value, future] : accepted) {
                CO_VERIFY(future.isFinished());
                CO_COMPARE(future.result(), value + 1);
            }
            CO_COMPARE(pool.pendingCount(), 0);
            CO_COMPARE(pool.workerCount(), 0);
        }());
    }
};

QTEST_GUILESS_MAIN(tst_Threading)
#include "tst_threading.moc"
