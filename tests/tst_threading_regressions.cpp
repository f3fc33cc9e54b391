// SPDX-License-Identifier: MIT
// Cross-thread promises the core once broke (each test failed before its fix); run under
// ThreadSanitizer too (label threading).
#include "testutil.h"

#include <QThread>

#include <atomic>
#include <memory>
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
};

QTEST_GUILESS_MAIN(tst_ThreadingRegressions)
#include "tst_threading_regressions.moc"
