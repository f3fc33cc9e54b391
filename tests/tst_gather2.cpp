// SPDX-License-Identifier: MIT
// gather() of futures of different types, gatherSettled() (list and argument forms),
// asCompletedIndexed(), and the Result<T> type itself.
//
// Futures are settled by the test through QPromise or gates, in a chosen order, never by timing.
#include "testutil.h"

#include <QCoro/QCoroAsyncGenerator>

#include <memory>
#include <stdexcept>
#include <tuple>
#include <variant>
#include <vector>

using namespace TestUtil;
using namespace Qt::StringLiterals;
using TaskPool::CancelledError;
using TaskPool::Future;
using TaskPool::Indexed;
using TaskPool::Result;
using TaskPool::TaskPoolExecutor;
using TaskPool::TimeoutError;

namespace {

QCoro::Task<QString> greet(QString name)
{
    co_await TaskPool::detail::Yield {};
    co_return u"hello "_s + name;
}

QCoro::Task<void> touch(int* counter)
{
    co_await TaskPool::detail::Yield {};
    ++*counter;
}

QCoro::Task<int> failing()
{
    co_await TaskPool::detail::Yield {};
    throw std::runtime_error("boom");
}

//! A QFuture settled by the test: started, not finished.
struct Pending {
    QPromise<int> promise;
    Pending() { promise.start(); }
    QFuture<int> future() { return promise.future(); }
    void finish(int value)
    {
        promise.addResult(value);
        promise.finish();
    }
};

} // namespace

class tst_Gather2 : public QObject {
    Q_OBJECT

private Q_SLOTS:
    //! int, QString and void futures in one call: a tuple in argument order, std::monostate for void.
    void heterogeneousTypes()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            int touched = 0;
            Future<int> number = pool.submit(amul, 6, 7);
            Future<QString> text = pool.submit(greet, u"world"_s);
            Future<void> done = pool.submit(touch, &touched);
            auto [a, b, c] = co_await TaskPool::gather(number, text, done);
            static_assert(std::is_same_v<decltype(a), int>);
            static_assert(std::is_same_v<decltype(b), QString>);
            static_assert(std::is_same_v<decltype(c), std::monostate>);
            CO_COMPARE(a, 42);
            CO_COMPARE(b, u"hello world"_s);
            CO_COMPARE(touched, 1);
        }());
    }

    //! Plain QFutures (here from a QPromise) mix with pool futures; the result waits for all.
    void mixesForeignFutures()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Pending foreign;
            Future<QString> text = pool.submit(greet, u"qt"_s);
            bool returned = false;
            std::tuple<int, QString> got;
            auto body = [&]() -> QCoro::Task<void> { // named: the frame refers to it
                got = co_await TaskPool::gather(foreign.future(), text);
                returned = true;
            };
            auto waiter = body();
            co_await turns(5);
            CO_VERIFY(!returned); // the foreign future is still pending
            foreign.finish(7);
            co_await until([&] { return returned; });
            CO_COMPARE(std::get<0>(got), 7);
            CO_COMPARE(std::get<1>(got), u"hello qt"_s);
        }());
    }

    //! The first failure in argument order is thrown; CancelledError for a cancelled one.
    void firstFailureInArgumentOrder()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            Gate gate;
            Future<QString> ok = pool.submit(greet, u"a"_s);
            Future<int> failed = pool.submit(failing);
            Future<int> cancelled = pool.submit(waitFor, &gate);
            cancelled.cancel();
            CO_VERIFY_THROWS((void)co_await TaskPool::gather(ok, failed, cancelled), std::runtime_error);
            CO_VERIFY_THROWS((void)co_await TaskPool::gather(ok, cancelled, failed), CancelledError);
            CO_VERIFY_THROWS((void)co_await TaskPool::gather(cancelled), CancelledError);
            gate.open();
        }());
    }

    //! As the list form, a failure is thrown only once every future before it has succeeded.
    void failureWaitsForEarlierFutures()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            Gate gate;
            Future<int> slow = pool.submit(gated, &gate, 1);
            Future<int> failed = pool.submit(failing);
            co_await until([&] { return failed.done(); });
            bool thrown = false;
            bool returned = false;
            auto body = [&]() -> QCoro::Task<void> { // named: the frame refers to it
                try {
                    co_await TaskPool::gather(slow, failed);
                } catch (const std::runtime_error&) {
                    thrown = true;
                }
                returned = true;
            };
            auto waiter = body();
            co_await turns(5);
            CO_VERIFY(!returned);
            gate.open();
            co_await until([&] { return returned; });
            CO_VERIFY(thrown);
        }());
    }

    //! gatherSettled(list): every outcome, in input order, never a throw; for pool and foreign
    //! futures alike.
    void settledList()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            Gate gate;
            Future<int> cancelled = pool.submit(waitFor, &gate);
            cancelled.cancel();
            QList<Future<int>> futures {
                pool.submit(amul, 2, 3),        pool.submit(failing),           cancelled,
                Future<int>(exceptionFuture()), Future<int>(cancelledFuture()), Future<int>(successfulFuture())
            };
            const QList<Result<int>> results = co_await TaskPool::gatherSettled(futures);
            CO_COMPARE(results.size(), qsizetype(6));
            CO_VERIFY(results[0].hasValue() && results[0].value() == 6 && !results[0].error());
            CO_VERIFY(!results[1].hasValue() && !results[1].isCancelled());
            CO_VERIFY_THROWS(results[1].value(), std::runtime_error);
            CO_VERIFY(!results[2].hasValue() && results[2].isCancelled());
            CO_VERIFY_THROWS(results[2].value(), CancelledError);
            CO_VERIFY(!results[3].hasValue() && !results[3].isCancelled());
            CO_VERIFY_THROWS(std::rethrow_exception(results[3].error()), std::runtime_error);
            CO_VERIFY(results[4].isCancelled());
            CO_COMPARE(results[5].value(), 42);
            gate.open();

            // Plain QFutures and void futures.
            QList<QFuture<int>> plain { successfulFuture(), exceptionFuture() };
            const auto plainResults = co_await TaskPool::gatherSettled(plain);
            CO_VERIFY(plainResults[0].hasValue() && !plainResults[1].hasValue());
            int touched = 0;
            QList<Future<void>> voids { pool.submit(touch, &touched), pool.submit([]() -> QCoro::Task<void> {
                                           co_await TaskPool::detail::Yield {};
                                           throw std::logic_error("void failed");
                                       }) };
            const QList<Result<void>> voidResults = co_await TaskPool::gatherSettled(voids);
            CO_VERIFY(voidResults[0].hasValue());
            CO_VERIFY_THROWS(voidResults[1].value(), std::logic_error);
            CO_COMPARE(touched, 1);
            const auto none = co_await TaskPool::gatherSettled(QList<QFuture<int>> {});
            CO_VERIFY(none.isEmpty());
        }());
    }

    //! gatherSettled returns only once every future settled, even after an early failure.
    void settledWaitsForAll()
    {
        run([]() -> QCoro::Task<void> {
            Pending first;
            QList<QFuture<int>> futures { exceptionFuture(), first.future() };
            bool returned = false;
            QList<Result<int>> results;
            auto body = [&]() -> QCoro::Task<void> { // named: the frame refers to it
                results = co_await TaskPool::gatherSettled(futures);
                returned = true;
            };
            auto waiter = body();
            co_await turns(5);
            CO_VERIFY(!returned);
            first.finish(5);
            co_await until([&] { return returned; });
            CO_VERIFY(!results[0].hasValue());
            CO_COMPARE(results[1].value(), 5);
        }());
    }

    //! gatherSettled(f1, f2, ...): a tuple of Result, one per argument, whatever their types.
    void settledHeterogeneous()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            int touched = 0;
            auto [a, b, c] = co_await TaskPool::gatherSettled(pool.submit(failing), pool.submit(greet, u"x"_s),
                                                              pool.submit(touch, &touched));
            static_assert(std::is_same_v<decltype(a), Result<int>>);
            static_assert(std::is_same_v<decltype(b), Result<QString>>);
            static_assert(std::is_same_v<decltype(c), Result<void>>);
            CO_VERIFY(!a.hasValue());
            CO_COMPARE(b.value(), u"hello x"_s);
            CO_VERIFY(c.hasValue());
            CO_COMPARE(touched, 1);
        }());
    }

    //! asCompletedIndexed yields each future with its input position, in completion order.
    void asCompletedWithIndex()
    {
        run([]() -> QCoro::Task<void> {
            Pending p0, p1, p2;
            QList<QFuture<int>> futures { p0.future(), p1.future(), successfulFuture(), p2.future() };
            std::vector<qsizetype> order;
            p2.finish(2);
            QCORO_FOREACH(const Indexed<QFuture<int>>& item, TaskPool::asCompletedIndexed(futures))
            {
                CO_VERIFY(same(item.value, futures[item.index]));
                order.push_back(item.index);
                if (order.size() == 2)
                    p0.finish(0);
                if (order.size() == 3)
                    p1.finish(1);
            }
            // The already settled one first, then in the order they settled.
            CO_COMPARE(order, (std::vector<qsizetype> { 2, 3, 0, 1 }));
        }());
    }

    //! A future listed twice is yielded once, with its first position; the timeout throws as
    //! asCompleted's does, after yielding what settled.
    void asCompletedIndexDuplicatesAndTimeout()
    {
        run([]() -> QCoro::Task<void> {
            Pending never;
            QFuture<int> done = successfulFuture();
            QList<QFuture<int>> futures { never.future(), done, never.future(), done };
            std::vector<qsizetype> order;
            auto body = [&]() -> QCoro::Task<void> {
                QCORO_FOREACH(const Indexed<QFuture<int>>& item, TaskPool::asCompletedIndexed(futures, 0ms))
                {
                    order.push_back(item.index);
                }
            };
            CO_VERIFY_THROWS(co_await body(), TimeoutError);
            CO_COMPARE(order, (std::vector<qsizetype> { 1 }));
            never.finish(1);
        }());
    }

    //! Pool futures with asCompletedIndexed, and the plain asCompleted still yielding futures.
    void asCompletedIndexPoolFutures()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            Gate g0, g1, g2;
            QList<Future<int>> futures { pool.submit(gated, &g0, 0), pool.submit(gated, &g1, 1),
                                         pool.submit(gated, &g2, 2) };
            std::vector<qsizetype> order;
            g1.open();
            QCORO_FOREACH(const Indexed<Future<int>>& item, TaskPool::asCompletedIndexed(futures))
            {
                CO_COMPARE(co_await item.value, int(item.index));
                order.push_back(item.index);
                (order.size() == 1 ? g2 : g0).open();
            }
            CO_COMPARE(order, (std::vector<qsizetype> { 1, 2, 0 }));
            int sum = 0;
            QCORO_FOREACH(const Future<int>& future, TaskPool::asCompleted(futures))
            {
                sum += co_await future;
            }
            CO_COMPARE(sum, 3);
        }());
    }

    //! Result<T> on its own: value, error, cancellation, move-only values, void.
    void resultType()
    {
        Result<int> value(5);
        QVERIFY(value.hasValue());
        QVERIFY(!value.isCancelled());
        QVERIFY(!value.error());
        QCOMPARE(value.value(), 5);
        value.value() = 6;
        QCOMPARE(std::as_const(value).value(), 6);

        auto failed = Result<int>::fromError(std::make_exception_ptr(std::runtime_error("bad")));
        QVERIFY(!failed.hasValue());
        QVERIFY(!failed.isCancelled());
        QVERIFY(failed.error());
        QVERIFY_THROWS_EXCEPTION(std::runtime_error, failed.value());

        auto cancelled = Result<QString>::fromError(std::make_exception_ptr(CancelledError()));
        QVERIFY(cancelled.isCancelled());
        QVERIFY_THROWS_EXCEPTION(CancelledError, cancelled.value());

        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, Result<int>::fromError(nullptr));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, Result<void>::fromError(nullptr));

        Result<std::unique_ptr<int>> owned(std::make_unique<int>(3));
        std::unique_ptr<int> taken = std::move(owned).value();
        QCOMPARE(*taken, 3);

        Result<void> ok;
        QVERIFY(ok.hasValue());
        ok.value();
        auto voidCancelled = Result<void>::fromError(std::make_exception_ptr(CancelledError()));
        QVERIFY(voidCancelled.isCancelled() && !voidCancelled.hasValue());
        QVERIFY_THROWS_EXCEPTION(CancelledError, voidCancelled.value());
        auto voidFailed = Result<void>::fromError(std::make_exception_ptr(NotAnException { 3 }));
        QVERIFY(!voidFailed.isCancelled() && !voidFailed.hasValue());
        QVERIFY_THROWS_EXCEPTION(NotAnException, voidFailed.value());

        Indexed<int> indexed { 2, 7 };
        auto [index, item] = indexed;
        QCOMPARE(index, qsizetype(2));
        QCOMPARE(item, 7);
    }
};

QTEST_GUILESS_MAIN(tst_Gather2)
#include "tst_gather2.moc"
