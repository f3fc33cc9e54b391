// SPDX-License-Identifier: MIT
// Cross-thread stress: several QThreads submit to one executor as fast as they can while it runs
// and while it shuts down; other threads consume the futures (blocking result() in plain threads,
// co_await in a thread with its own event loop). Every accepted submission runs exactly once or,
// with shutdown({.cancelFutures = true}), is cancelled and never runs; every refused one threw
// ShutdownError and left nothing behind. Runs under ThreadSanitizer (`ctest -L threading`): the
// threads synchronise through std::atomic and std::mutex only, which TSan sees.
#include "testutil.h"

#include <QThread>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

using namespace TestUtil;
using TaskPool::CancelledError;
using TaskPool::Future;
using TaskPool::ShutdownError;
using TaskPool::ShutdownOptions;
using TaskPool::TaskPoolExecutor;

namespace {

constexpr int maxTasks = 1 << 16;

struct Shared {
    std::vector<std::atomic<int>> runs = std::vector<std::atomic<int>>(maxTasks); // per task number
    std::atomic<int> next { 0 }; // task numbers handed out
    std::atomic<int> accepted { 0 };
    std::atomic<int> refused { 0 };
    std::atomic<int> submittersDone { 0 };
    std::mutex mutex;
    std::vector<std::pair<int, Future<int>>> futures; // accepted ones, under mutex
};

QCoro::Task<int> work(Shared* shared, int n)
{
    shared->runs[std::size_t(n)].fetch_add(1, std::memory_order_relaxed);
    if (n % 3 == 0)
        co_await TaskPool::detail::Yield {};
    if (n % 97 == 0)
        throw std::runtime_error("task failed");
    co_return n * 2;
}

//! For the awaitable form from a submitting thread: a QCoro::Task is eager, so it runs in that
//! thread, which has no running event loop: it must finish without suspending.
QCoro::Task<int> workNow(Shared* shared, int n)
{
    shared->runs[std::size_t(n)].fetch_add(1, std::memory_order_relaxed);
    if (n % 97 == 0)
        throw std::runtime_error("task failed");
    co_return n * 2;
}

} // namespace

class tst_ThreadingStress : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void submitWhileRunningAndShuttingDown_data()
    {
        QTest::addColumn<int>("round");
        QTest::addColumn<bool>("cancelFutures");
        QTest::addColumn<bool>("destroy");
        for (int round = 0; round < 6; ++round) {
            QTest::addRow("round %d, shutdown", round) << round << false << false;
            QTest::addRow("round %d, shutdown(cancelFutures)", round) << round << true << false;
            QTest::addRow("round %d, shutdown(wait = false), destroy", round) << round << false << true;
        }
    }
    void submitWhileRunningAndShuttingDown()
    {
        QFETCH(int, round);
        QFETCH(bool, cancelFutures);
        QFETCH(bool, destroy);
        run(
            [](int round, bool cancelFutures, bool destroy) -> QCoro::Task<void> {
                auto shared = std::make_unique<Shared>();
                auto pool = std::make_unique<TaskPoolExecutor>(1 + round % 4);
                TaskPoolExecutor* const target = pool.get();
                constexpr int submitters = 4;
                std::vector<std::unique_ptr<QThread>> threads;
                for (int t = 0; t < submitters; ++t) {
                    threads.emplace_back(QThread::create([&shared = *shared, target, t] {
                        for (;;) {
                            const int n = shared.next.fetch_add(1);
                            if (n >= maxTasks - 1)
                                break;
                            try {
                                Future<int> f = (n + t) % 2 ? target->submit(work, &shared, n)
                                                            : target->submit(workNow(&shared, n));
                                shared.accepted.fetch_add(1);
                                std::lock_guard lock(shared.mutex);
                                shared.futures.emplace_back(n, std::move(f));
                            } catch (const ShutdownError&) {
                                shared.refused.fetch_add(1);
                                break;
                            }
                        }
                        shared.submittersDone.fetch_add(1, std::memory_order_release);
                    }));
                }
                for (auto& thread : threads)
                    thread->start();
                // Run while they submit, then shut down (or destroy the executor) under their feet.
                co_await until([&] { return shared->accepted.load() >= 2000 + 500 * round; });
                if (destroy) {
                    // No wait: the submitters stop on ShutdownError, then the executor is destroyed
                    // with work in flight (not before: they hold a pointer to it).
                    const ShutdownOptions options { .wait = false };
                    co_await pool->shutdown(options);
                } else {
                    const ShutdownOptions options { .wait = true, .cancelFutures = cancelFutures };
                    co_await pool->shutdown(options);
                    CO_COMPARE(pool->workerCount(), 0);
                    CO_COMPARE(pool->activeCount(), 0);
                    CO_COMPARE(pool->pendingCount(), 0);
                }
                co_await until([&] { return shared->submittersDone.load(std::memory_order_acquire) == submitters; });
                for (auto& thread : threads)
                    thread->wait();
                CO_COMPARE(shared->refused.load(), submitters); // each one stopped on ShutdownError
                pool.reset();

                std::vector<std::pair<int, Future<int>>> futures;
                {
                    std::lock_guard lock(shared->mutex);
                    futures = shared->futures;
                }
                CO_COMPARE(int(futures.size()), shared->accepted.load());
                int ran = 0, cancelled = 0;
                for (auto& [n, future] : futures) {
                    try {
                        CO_COMPARE(co_await future, n * 2);
                        CO_VERIFY(n % 97 != 0);
                    } catch (const CancelledError&) {
                        CO_VERIFY(cancelFutures);
                        ++cancelled;
                    } catch (const std::runtime_error&) {
                        CO_VERIFY(n % 97 == 0);
                    }
                    const int runs = shared->runs[std::size_t(n)].load();
                    if (future.cancelled()) {
                        // a cancelled callable never ran; a cancelled awaitable's coroutine ran eagerly
                        CO_VERIFY(runs <= 1);
                    } else {
                        CO_COMPARE(runs, 1); // exactly once: never lost, never duplicated
                        ++ran;
                    }
                }
                // Nothing ran that was not accepted: each number ran at most once, and only accepted
                // ones (a refused awaitable's coroutine ran eagerly at creation, outside the pool).
                int total = 0;
                for (int n = 0; n < maxTasks; ++n)
                    total += shared->runs[std::size_t(n)].load();
                CO_VERIFY(total >= ran);
                CO_VERIFY(total <= int(futures.size()) + submitters);
                if (!cancelFutures)
                    CO_COMPARE(cancelled, 0);
                qInfo("%d accepted, %d ran, %d cancelled, %d refused", int(futures.size()), ran, cancelled,
                      shared->refused.load());
            }(round, cancelFutures, destroy),
            60s);
    }

    // Futures consumed in other threads while submitters keep submitting: plain threads block in
    // result(), a thread with an event loop co_awaits them there.
    void futuresConsumedFromOtherThreads()
    {
        run(
            []() -> QCoro::Task<void> {
                auto shared = std::make_unique<Shared>();
                TaskPoolExecutor pool(3);
                constexpr int perThread = 400;
                constexpr int submitters = 3;
                std::vector<std::unique_ptr<QThread>> threads;
                for (int t = 0; t < submitters; ++t) {
                    threads.emplace_back(QThread::create([&shared = *shared, &pool] {
                        for (int i = 0; i < perThread; ++i) {
                            const int n = shared.next.fetch_add(1);
                            Future<int> f = pool.submit(work, &shared, n);
                            std::lock_guard lock(shared.mutex);
                            shared.futures.emplace_back(n, std::move(f));
                        }
                        shared.submittersDone.fetch_add(1, std::memory_order_release);
                    }));
                }
                // Blocking consumers: take futures as they appear and read them.
                std::atomic<int> blockingRead { 0 }, blockingBad { 0 }, consumersDone { 0 };
                constexpr int consumers = 2;
                for (int c = 0; c < consumers; ++c) {
                    threads.emplace_back(QThread::create([&, c] {
                        for (std::size_t i = std::size_t(c);; i += consumers) {
                            Future<int> f;
                            int n = 0;
                            for (;;) {
                                {
                                    std::lock_guard lock(shared->mutex);
                                    if (i < shared->futures.size()) {
                                        std::tie(n, f) = shared->futures[i];
                                        break;
                                    }
                                }
                                if (shared->submittersDone.load(std::memory_order_acquire) == submitters) {
                                    std::lock_guard lock(shared->mutex);
                                    if (i >= shared->futures.size()) {
                                        consumersDone.fetch_add(1);
                                        return;
                                    }
                                }
                                QThread::yieldCurrentThread();
                            }
                            try {
                                if (f.result() != n * 2)
                                    blockingBad.fetch_add(1);
                            } catch (const std::runtime_error&) {
                                if (n % 97 != 0)
                                    blockingBad.fetch_add(1);
                            }
                            blockingRead.fetch_add(1);
                        }
                    }));
                }
                for (auto& thread : threads)
                    thread->start();

                // A thread with an event loop awaiting every future there.
                QThread loopThread;
                loopThread.start();
                QObject context;
                context.moveToThread(&loopThread);
                std::atomic<int> awaited { 0 }, awaitedBad { 0 };
                std::atomic<bool> awaitDone { false };
                co_await until([&] { return shared->submittersDone.load(std::memory_order_acquire) == submitters; });
                std::vector<std::pair<int, Future<int>>> all;
                {
                    std::lock_guard lock(shared->mutex);
                    all = shared->futures;
                }
                // The posted hand-off is invisible to ThreadSanitizer: a mutex it sees orders `all`.
                std::mutex handOff;
                std::unique_lock posting(handOff);
                QMetaObject::invokeMethod(&context, [&] {
                    std::lock_guard received(handOff);
                    [](std::vector<std::pair<int, Future<int>>>* all, std::atomic<int>* awaited, std::atomic<int>* bad,
                       std::atomic<bool>* done, QThread* expected) -> QCoro::Task<void> {
                        for (auto& [n, f] : *all) {
                            try {
                                if (co_await f != n * 2)
                                    bad->fetch_add(1);
                            } catch (const std::runtime_error&) {
                                if (n % 97 != 0)
                                    bad->fetch_add(1);
                            }
                            if (QThread::currentThread() != expected)
                                bad->fetch_add(1);
                            awaited->fetch_add(1);
                        }
                        done->store(true, std::memory_order_release);
                    }(&all, &awaited, &awaitedBad, &awaitDone, &loopThread);
                });
                posting.unlock();
                co_await until(
                    [&] { return awaitDone.load(std::memory_order_acquire) && consumersDone.load() == consumers; });
                for (auto& thread : threads)
                    thread->wait();
                loopThread.quit();
                loopThread.wait();
                CO_COMPARE(blockingRead.load(), submitters * perThread);
                CO_COMPARE(blockingBad.load(), 0);
                CO_COMPARE(awaited.load(), submitters * perThread);
                CO_COMPARE(awaitedBad.load(), 0);
                for (int n = 0; n < submitters * perThread; ++n)
                    CO_COMPARE(shared->runs[std::size_t(n)].load(), 1);
                co_await pool.shutdown();
            }(),
            120s);
    }
};

QTEST_GUILESS_MAIN(tst_ThreadingStress)
#include "tst_threading_stress.moc"
