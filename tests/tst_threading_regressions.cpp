// SPDX-License-Identifier: MIT
// Cross-thread promises the core once broke (each test failed before its fix); run under
// ThreadSanitizer too (label threading).
#include "testutil.h"

#include <QThread>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using namespace TestUtil;
using TaskPool::Future;
using TaskPool::TaskPoolExecutor;

namespace {

QCoro::Task<int> failLater(int value)
{
    co_await TestUtil::sleep(std::chrono::milliseconds(value % 3));
    if (value % 2)
        throw std::runtime_error("odd");
    co_return value;
}

} // namespace

class tst_ThreadingRegressions : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // 9. Future::cancel() from the submitting thread right after submit(): the job's thread is set
    // once, before the job is published, and never written again (TSan saw a race here).
    void cancelRightAfterSubmitFromAnotherThread()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            std::atomic<int> cancelled { 0 };
            constexpr int perThread = 200;
            Threads threads(3, [&](int) {
                for (int i = 0; i < perThread; ++i) {
                    auto future = pool.submit(failLater, 2 * i);
                    if (future.cancel())
                        ++cancelled;
                }
            });
            co_await until([&] { return threads.finished(); });
            co_await pool.shutdown();
            CO_VERIFY(cancelled.load() > 0);
            CO_COMPARE(pool.pendingCount(), 0);
            CO_COMPARE(pool.activeCount(), 0);
        }());
    }

    // 16. What a thread sees through Qt's API (a returned waitForFinished()) already holds of
    // done(), cancelled() and exception(), in that thread.
    void finishedSeenFromAnotherThreadIsDone()
    {
        run(
            []() -> QCoro::Task<void> {
                TaskPoolExecutor pool(3);
                std::atomic<int> inconsistent { 0 };
                std::atomic<int> checked { 0 };
                constexpr int perThread = 40;
                Threads threads(4, [&](int t) {
                    for (int i = 0; i < perThread; ++i) {
                        const int value = t * 1000 + i;
                        auto future = pool.submit(failLater, value);
                        try {
                            QFuture<int>(future).waitForFinished(); // plain QFuture API
                        } catch (const std::runtime_error&) {
                            // a failed future rethrows here
                        }
                        const bool failed = value % 2;
                        const bool ok = future.done() && !future.cancelled() && bool(future.exception()) == failed
                            && future.isFinished();
                        if (!ok)
                            ++inconsistent;
                        ++checked;
                    }
                });
                co_await until([&] { return threads.finished(); });
                CO_COMPARE(checked.load(), 4 * perThread);
                CO_COMPARE(inconsistent.load(), 0);
                co_await pool.shutdown();
            }(),
            std::chrono::seconds(60));
    }
    // An awaiter suspended in another thread (it awaits before the task can settle) is resumed in
    // that thread, through its event loop.
    void awaiterInAnotherThreadResumesThere()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto future = pool.submit(gated, &gate, 42);
            QThread thread; // runs an event loop
            thread.start();
            QObject context;
            context.moveToThread(&thread);
            std::atomic<bool> awaiting { false };
            std::atomic<int> result { 0 };
            std::atomic<QThread*> resumedIn { nullptr };
            // The posted hand-off is invisible to ThreadSanitizer: a mutex it sees orders it.
            std::mutex handOff;
            std::unique_lock posting(handOff);
            QMetaObject::invokeMethod(&context, [&] {
                std::lock_guard received(handOff);
                [](Future<int> future, std::atomic<bool>* awaiting, std::atomic<int>* result,
                   std::atomic<QThread*>* resumedIn) -> QCoro::Task<void> {
                    *awaiting = true; // the gate is still closed: the await below suspends
                    const int value = co_await future;
                    *resumedIn = QThread::currentThread();
                    *result = value;
                }(future, &awaiting, &result, &resumedIn);
            });
            posting.unlock();
            co_await until([&] { return awaiting.load(); });
            co_await turns(3);
            gate.open();
            co_await until([&] { return result.load() == 42; });
            CO_VERIFY(resumedIn.load() == &thread);
            thread.quit();
            thread.wait();
            co_await pool.shutdown();
        }());
    }

    // A thread without an event loop (a std::thread) cannot be resumed from its loop: its awaiter
    // is resumed in the thread that settles the future, with a warning.
    void awaiterInAThreadWithoutEventLoopResumesInline()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto future = pool.submit(gated, &gate, 7);
            std::atomic<bool> awaiting { false };
            std::atomic<int> result { 0 };
            std::atomic<QThread*> resumedIn { nullptr };
            QTest::ignoreMessage(QtWarningMsg,
                                 "TaskPool: the awaiting thread has no event loop; resuming in the completing thread");
            std::thread plain([&] {
                [](Future<int> future, std::atomic<int>* result,
                   std::atomic<QThread*>* resumedIn) -> QCoro::Task<void> {
                    const int value = co_await future;
                    *resumedIn = QThread::currentThread();
                    *result = value;
                }(future, &result, &resumedIn);
                awaiting = true; // the coroutine returned here: it is suspended, its waiter registered
                while (result.load() == 0) // the thread lives on (no event loop) until resumed
                    std::this_thread::yield();
            });
            co_await until([&] { return awaiting.load(); });
            gate.open();
            co_await until([&] { return result.load() == 7; });
            plain.join();
            CO_VERIFY(resumedIn.load() == QThread::currentThread());
            co_await pool.shutdown();
        }());
    }
};

QTEST_GUILESS_MAIN(tst_ThreadingRegressions)
#include "tst_threading_regressions.moc"
