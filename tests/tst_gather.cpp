// SPDX-License-Identifier: MIT
// TaskPool::gather(): all results in input order, or the first failure in input order.
#include "testutil.h"

#include <QPromise>

#include <memory>
#include <stdexcept>

using namespace TestUtil;
using TaskPool::Future;

namespace {

struct TaggedError : std::runtime_error {
    explicit TaggedError(int tag) : std::runtime_error("tagged"), tag(tag) { }
    int tag;
};

QCoro::Task<void> touch(int* counter)
{
    co_await TestUtil::sleep(1ms);
    ++*counter;
}

// Open promises whose futures the tests settle in a chosen order.
struct Promises {
    std::vector<std::unique_ptr<QPromise<int>>> promises;
    QList<QFuture<int>> futures;
    explicit Promises(int n)
    {
        for (int i = 0; i < n; ++i) {
            promises.push_back(std::make_unique<QPromise<int>>());
            promises.back()->start();
            futures.append(promises.back()->future());
        }
    }
    void succeed(int i, int value)
    {
        promises[std::size_t(i)]->addResult(value);
        promises[std::size_t(i)]->finish();
    }
    void fail(int i)
    {
        promises[std::size_t(i)]->setException(std::make_exception_ptr(TaggedError(i)));
        promises[std::size_t(i)]->finish();
    }
};

} // namespace

class tst_Gather : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void resultsInInputOrderWhateverTheSettleOrder()
    {
        run([]() -> QCoro::Task<void> {
            Promises p(4);
            auto gathering = TaskPool::gather(p.futures);
            for (int i = 3; i >= 0; --i) {
                p.succeed(i, i * 10);
                co_await turns();
            }
            const QList<int> results = co_await gathering;
            CO_COMPARE(results, (QList<int> { 0, 10, 20, 30 }));
        }());
    }

    void poolFutures()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            QList<Future<int>> futures;
            for (int i = 0; i < 6; ++i)
                futures.append(pool.submit(delayedMul<5>, i, 2));
            const QList<int> results = co_await TaskPool::gather(futures);
            CO_COMPARE(results, (QList<int> { 0, 2, 4, 6, 8, 10 }));
            co_await pool.shutdown();
        }());
    }

    // Python's gather raises whichever fails first in time; here it is the first in input order.
    void throwsFirstFailureInInputOrder()
    {
        run([]() -> QCoro::Task<void> {
            Promises p(3);
            auto gathering = TaskPool::gather(p.futures);
            p.fail(2); // fails first in time
            p.succeed(0, 1);
            p.fail(1);
            int tag = -1;
            try {
                co_await gathering;
            } catch (const TaggedError& e) {
                tag = e.tag;
            }
            CO_COMPARE(tag, 1);
        }());
    }

    // A later failure does not end the gather while an earlier future is still running.
    void laterFailureWaitsForEarlierFutures()
    {
        run([]() -> QCoro::Task<void> {
            Promises p(2);
            p.fail(1);
            auto gathering = TaskPool::gather(p.futures);
            co_await turns();
            CO_VERIFY2(!gathering.isReady(), "threw before the earlier future settled");
            p.fail(0);
            int tag = -1;
            try {
                co_await gathering;
            } catch (const TaggedError& e) {
                tag = e.tag;
            }
            CO_COMPARE(tag, 0);
        }());
    }

    void cancelledFutureThrowsCancelledError()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(1);
            Gate gate;
            Future<int> first = pool.submit(delayedMul<5>, 2, 3);
            Future<int> queued = pool.submit(waitFor, &gate);
            QList<Future<int>> futures { first, queued };
            auto gathering = TaskPool::gather(futures);
            CO_VERIFY(queued.cancel());
            CO_VERIFY_THROWS(co_await gathering, TaskPool::CancelledError);
            CO_VERIFY(first.done());
            co_await pool.shutdown();
        }());
    }

    // A failure cancels nothing: the other futures go on.
    void failureLeavesOtherFuturesAlone()
    {
        run([]() -> QCoro::Task<void> {
            Promises p(3);
            p.fail(0);
            CO_VERIFY_THROWS(co_await TaskPool::gather(p.futures), TaggedError);
            CO_VERIFY(!p.futures[1].isCanceled());
            CO_VERIFY(!p.futures[2].isCanceled());
            p.succeed(1, 1);
            p.succeed(2, 2);
            CO_COMPARE(p.futures[2].result(), 2);
        }());
    }

    void voidFutures()
    {
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            int counter = 0;
            QList<Future<void>> futures;
            for (int i = 0; i < 5; ++i)
                futures.append(pool.submit(touch, &counter));
            QCoro::Task<void> gathering = TaskPool::gather(futures);
            co_await gathering;
            CO_COMPARE(counter, 5);
            co_await pool.shutdown();
        }());
    }

    void voidFutureFailure()
    {
        run([]() -> QCoro::Task<void> {
            QPromise<void> ok;
            ok.start();
            ok.finish();
            QPromise<void> failed;
            failed.start();
            failed.setException(std::make_exception_ptr(TaggedError(7)));
            failed.finish();
            const QList<QFuture<void>> futures { ok.future(), failed.future() };
            int tag = -1;
            try {
                co_await TaskPool::gather(futures);
            } catch (const TaggedError& e) {
                tag = e.tag;
            }
            CO_COMPARE(tag, 7);
        }());
    }

    void emptyListGivesEmptyResultAtOnce()
    {
        run([]() -> QCoro::Task<void> {
            auto gathering = TaskPool::gather(QList<QFuture<int>>());
            CO_VERIFY(gathering.isReady());
            const QList<int> results = co_await gathering;
            CO_VERIFY(results.isEmpty());
        }());
    }

    // Each position gets its result, repeats included.
    void repeatedFutureGivesResultPerPosition()
    {
        run([]() -> QCoro::Task<void> {
            Promises p(1);
            p.succeed(0, 5);
            const QList<QFuture<int>> futures { p.futures[0], p.futures[0] };
            const QList<int> results = co_await TaskPool::gather(futures);
            CO_COMPARE(results, (QList<int> { 5, 5 }));
        }());
    }
};

QTEST_GUILESS_MAIN(tst_Gather)
#include "tst_gather.moc"
