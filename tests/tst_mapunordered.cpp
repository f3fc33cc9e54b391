// SPDX-License-Identifier: MIT
// TaskPoolExecutor::mapUnordered() and the settled maps (mapSettled(), mapUnorderedSettled()):
// completion order with input indices, the bound on items in flight, ownership of outstanding
// items, exceptions and cancellation, and Result<T> for every item of the settled variants.
//
// Completion order is controlled with gates, never with timing: each item waits for its own gate,
// which the test opens in a chosen order.
#include "testutil.h"

#include <QCoro/QCoroAsyncGenerator>

#include <algorithm>
#include <map>
#include <memory>
#include <ranges>
#include <stdexcept>
#include <vector>

using namespace TestUtil;
using TaskPool::CancelledError;
using TaskPool::Indexed;
using TaskPool::MapOptions;
using TaskPool::Result;
using TaskPool::ShutdownError;
using TaskPool::ShutdownOptions;
using TaskPool::TaskPoolExecutor;

namespace {

//! Items that each wait for their own gate and count how many run at once.
struct Gated {
    explicit Gated(int count) : gates(std::size_t(count)) { }

    std::vector<Gate> gates;
    std::vector<int> started;
    int running = 0;
    int maxRunning = 0;

    //! The mapped function: waits for gate \a i, then returns 10 * i; item \a failing fails and
    //! item \a cancelling cancels itself.
    auto fn(int failing = -1, int cancelling = -1)
    {
        return [this, failing, cancelling](int i) -> QCoro::Task<int> {
            started.push_back(i);
            maxRunning = std::max(maxRunning, ++running);
            co_await gates[std::size_t(i)];
            co_await TaskPool::detail::Yield {}; // even an open gate keeps the item in flight a turn
            --running;
            if (i == failing)
                throw std::runtime_error("item failed");
            if (i == cancelling)
                throw CancelledError();
            co_return 10 * i;
        };
    }
    void openAll()
    {
        for (auto& gate : gates)
            gate.open();
    }
};

std::vector<int> range(int n)
{
    std::vector<int> items(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
        items[std::size_t(i)] = i;
    return items;
}

QCoro::Task<int> nextTurnTwice(int x)
{
    co_await TaskPool::detail::Yield {};
    co_return 2 * x;
}

QCoro::Task<void> nothing(int)
{
    co_await TaskPool::detail::Yield {};
}

} // namespace

class tst_MapUnordered : public QObject {
    Q_OBJECT

private Q_SLOTS:
    //! Items are yielded in the order they settle, each with its position in the input: the order
    //! is the gates' order, not the input's.
    void yieldsInCompletionOrder()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(8);
            Gated items(5);
            const std::vector<int> plan { 3, 1, 4, 0, 2 };
            auto results = pool.mapUnordered(items.fn(), range(5));
            std::vector<int> indices;
            std::vector<int> values;
            items.gates[std::size_t(plan[0])].open();
            QCORO_FOREACH(const Indexed<int>& item, results)
            {
                indices.push_back(int(item.index));
                values.push_back(item.value);
                if (indices.size() < plan.size())
                    items.gates[std::size_t(plan[indices.size()])].open();
            }
            CO_COMPARE(indices, plan);
            CO_COMPARE(values, (std::vector<int> { 30, 10, 40, 0, 20 }));
        }());
    }

    //! The point of it: with a bounded number in flight, one slow item (the first) does not hold
    //! back the 99 others, whose slots are refilled while it runs. It is yielded last; the bound is
    //! reached and never exceeded.
    void slowItemDoesNotHoldBackOthers_data()
    {
        QTest::addColumn<int>("bufferSize");
        QTest::newRow("2 in flight") << 2;
        QTest::newRow("4 in flight") << 4;
        QTest::newRow("16 in flight") << 16;
    }
    void slowItemDoesNotHoldBackOthers()
    {
        QFETCH(int, bufferSize);
        run([](int bufferSize) -> QCoro::Task<void> {
            TaskPoolExecutor pool(100);
            Gated items(100);
            for (int i = 1; i < 100; ++i)
                items.gates[std::size_t(i)].open(); // every item but the first is fast
            std::vector<int> indices;
            QCORO_FOREACH(const Indexed<int>& item,
                          pool.mapUnordered({ .bufferSize = bufferSize }, items.fn(), range(100)))
            {
                CO_COMPARE(item.value, 10 * int(item.index));
                indices.push_back(int(item.index));
                CO_VERIFY(items.running <= bufferSize);
                if (indices.size() == 99)
                    items.gates[0].open(); // only now: everything else came while it was running
            }
            CO_COMPARE(indices.size(), std::size_t(100));
            CO_COMPARE(indices.back(), 0);
            CO_COMPARE(items.maxRunning, bufferSize);
            std::vector<int> sorted = indices;
            std::sort(sorted.begin(), sorted.end());
            CO_COMPARE(sorted, range(100));
        }(bufferSize));
    }

    //! The bound holds whatever the completion order: here the newest item settles first each
    //! time, and the first two last.
    void boundedInFlight()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(50);
            Gated items(20);
            auto results = pool.mapUnordered({ .bufferSize = 3 }, items.fn(), range(20));
            CO_COMPARE(items.started, (std::vector<int> {})); // queued, not started inside the call
            co_await until([&] { return items.started.size() == 3; });
            co_await turns();
            CO_COMPARE(items.started, (std::vector<int> { 0, 1, 2 }));
            items.gates[2].open();
            std::vector<qsizetype> indices;
            QCORO_FOREACH(const Indexed<int>& item, results)
            {
                indices.push_back(item.index);
                const auto expected = std::min<std::size_t>(20, indices.size() + 3);
                co_await until([&] { return items.started.size() == expected; });
                co_await turns();
                CO_COMPARE(items.started.size(), expected); // no more than bufferSize in flight
                CO_VERIFY(items.running <= 3);
                if (items.started.size() == 20)
                    items.openAll();
                else
                    items.gates[std::size_t(items.started.back())].open();
            }
            CO_COMPARE(indices.size(), std::size_t(20));
            CO_COMPARE(items.maxRunning, 3);
            CO_VERIFY(std::find(indices.begin(), indices.end(), 0) - indices.begin() >= 17);
            CO_VERIFY(std::find(indices.begin(), indices.end(), 1) - indices.begin() >= 17);
        }());
    }

    //! Several ranges are zipped, the shortest ends the map, and each index is the zipped item's.
    void zippedRangesAndIndices()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            const std::vector<int> xs { 1, 2, 3, 4, 5, 6 };
            const QList<int> ys { 10, 20, 30, 40 };
            std::map<qsizetype, int> got;
            auto mul = [](int x, int y) -> QCoro::Task<int> {
                co_await TaskPool::detail::Yield {};
                co_return x* y;
            };
            QCORO_FOREACH(const Indexed<int>& item, pool.mapUnordered(mul, xs, ys))
            {
                CO_VERIFY(!got.contains(item.index));
                got[item.index] = item.value;
            }
            CO_COMPARE(got, (std::map<qsizetype, int> { { 0, 10 }, { 1, 40 }, { 2, 90 }, { 3, 160 } }));
        }());
    }

    //! An infinite range with a bufferSize runs in constant memory: breaking out cancels the rest,
    //! and no more than bufferSize items beyond those yielded ever started.
    void infiniteRangeWithBuffer()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(4);
            int started = 0;
            auto fn = [&started](int x) -> QCoro::Task<int> {
                ++started;
                co_await TaskPool::detail::Yield {};
                co_return 2 * x;
            };
            int yielded = 0;
            {
                QCORO_FOREACH(const Indexed<int>& item, pool.mapUnordered({ .bufferSize = 3 }, fn, std::views::iota(0)))
                {
                    CO_COMPARE(item.value, 2 * int(item.index));
                    if (++yielded == 50)
                        break;
                }
            }
            CO_COMPARE(pool.pendingCount(), 0);
            co_await turns(5);
            CO_COMPARE(yielded, 50);
            CO_VERIFY(started <= 53);
        }());
    }

    //! Destroying the generator early cancels every outstanding item: queued ones never start.
    void destroyingEarlyCancels()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gated items(6);
            {
                auto results = pool.mapUnordered(items.fn(), range(6));
                items.gates[0].open();
                auto it = co_await results.begin();
                CO_COMPARE((*it).index, qsizetype(0));
                co_await until([&] { return items.started.size() == 2; });
                CO_COMPARE(pool.pendingCount(), 4); // item 1 runs, 2..5 are queued
            }
            CO_COMPARE(pool.pendingCount(), 0);
            items.openAll();
            co_await pool.shutdown();
            CO_COMPARE(items.started, (std::vector<int> { 0, 1 }));
        }());
    }

    //! A generator that is never iterated also owns its items.
    void neverIteratedGeneratorCancels()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Gated items(5);
            {
                auto results = pool.mapUnordered(items.fn(), range(5));
                co_await until([&] { return items.started.size() == 2; });
            }
            CO_COMPARE(pool.pendingCount(), 0);
            items.openAll();
            co_await pool.shutdown();
            CO_COMPARE(items.started, (std::vector<int> { 0, 1 }));
        }());
    }

    //! An item's exception is thrown once that item settled, after the items that settled before it
    //! were yielded; the rest is cancelled (queued items never start).
    void exceptionThrownWhenItemSettles()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gated items(4);
            std::vector<qsizetype> yielded;
            bool thrown = false;
            try {
                items.gates[0].open();
                QCORO_FOREACH(const Indexed<int>& item, pool.mapUnordered(items.fn(1), range(4)))
                {
                    yielded.push_back(item.index);
                    items.gates[1].open(); // item 1 fails
                }
            } catch (const std::runtime_error& e) {
                thrown = QByteArray(e.what()) == "item failed";
            }
            CO_VERIFY(thrown);
            CO_COMPARE(yielded, (std::vector<qsizetype> { 0 }));
            CO_COMPARE(pool.pendingCount(), 0);
            items.openAll();
            co_await pool.shutdown();
            // Item 2 may have started in the slot item 1 left before the failure reached the map;
            // item 3 was queued behind it and never started.
            CO_VERIFY(items.started == (std::vector<int> { 0, 1 }) || items.started == (std::vector<int> { 0, 1, 2 }));
        }());
    }

    //! An item that cancels itself gives CancelledError at its turn.
    void cancellationThrowsCancelledError()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(4);
            Gated items(3);
            std::vector<qsizetype> yielded;
            items.gates[2].open();
            auto body = [&]() -> QCoro::Task<void> {
                QCORO_FOREACH(const Indexed<int>& item, pool.mapUnordered(items.fn(-1, 0), range(3)))
                {
                    yielded.push_back(item.index);
                    items.gates[0].open();
                }
            };
            CO_VERIFY_THROWS(co_await body(), CancelledError);
            CO_COMPARE(yielded, (std::vector<qsizetype> { 2 }));
            items.openAll();
            co_await pool.shutdown();
        }());
    }

    //! mapUnorderedSettled() never throws for an item: every item's outcome comes, with its index.
    void unorderedSettledNeverThrows()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(4);
            Gated items(5);
            std::map<qsizetype, Result<int>> got;
            items.gates[3].open();
            QCORO_FOREACH(auto&& item, pool.mapUnorderedSettled(items.fn(1, 2), range(5)))
            {
                static_assert(std::is_same_v<std::decay_t<decltype(item)>, Indexed<Result<int>>>);
                if (got.empty())
                    CO_COMPARE(item.index, qsizetype(3));
                got.emplace(item.index, std::move(item.value));
                items.openAll();
            }
            CO_COMPARE(got.size(), std::size_t(5));
            CO_VERIFY(got.at(0).hasValue() && got.at(0).value() == 0);
            CO_VERIFY(!got.at(1).hasValue() && !got.at(1).isCancelled());
            CO_VERIFY_THROWS(got.at(1).value(), std::runtime_error);
            CO_VERIFY(!got.at(2).hasValue() && got.at(2).isCancelled());
            CO_VERIFY_THROWS(std::rethrow_exception(got.at(2).error()), CancelledError);
            CO_VERIFY(got.at(3).hasValue() && got.at(3).value() == 30);
            CO_COMPARE(got.at(4).value(), 40);
        }());
    }

    //! mapSettled() yields a Result per item in input order and goes on past failures; items
    //! cancelled by shutdown({.cancelFutures = true}) come as CancelledError results.
    void settledInInputOrder()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gated items(4);
            auto results = pool.mapSettled(items.fn(1), range(4));
            co_await turns();
            items.gates[0].open();
            items.gates[1].open();
            co_await until([&] { return items.started.size() == 3; });
            // Item 2 runs now; item 3 is queued and is cancelled by the shutdown.
            co_await pool.shutdown({ .wait = false, .cancelFutures = true });
            items.gates[2].open();
            std::vector<int> kinds; // 0 value, 1 failed, 2 cancelled
            QCORO_FOREACH(const Result<int>& r, results)
            {
                kinds.push_back(r.hasValue() ? 0 : r.isCancelled() ? 2 : 1);
                if (r.hasValue())
                    CO_COMPARE(r.value(), 10 * int(kinds.size() - 1));
            }
            CO_COMPARE(kinds, (std::vector<int> { 0, 1, 0, 2 }));
            CO_COMPARE(items.started, (std::vector<int> { 0, 1, 2 }));
        }());
    }

    //! A function that returns nothing: mapUnordered() yields the indices, mapSettled() a
    //! Result<void> per item.
    void voidResults()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            std::vector<qsizetype> indices;
            QCORO_FOREACH(const Indexed<void>& item, pool.mapUnordered(nothing, range(6)))
            {
                indices.push_back(item.index);
            }
            std::sort(indices.begin(), indices.end());
            CO_COMPARE(indices, (std::vector<qsizetype> { 0, 1, 2, 3, 4, 5 }));

            auto failOdd = [](int x) -> QCoro::Task<void> {
                co_await TaskPool::detail::Yield {};
                if (x % 2)
                    throw std::runtime_error("odd");
            };
            std::vector<bool> ok;
            QCORO_FOREACH(const Result<void>& r, pool.mapSettled({ .bufferSize = 2 }, failOdd, range(4)))
            {
                ok.push_back(r.hasValue());
            }
            CO_COMPARE(ok, (std::vector<bool> { true, false, true, false }));
        }());
    }

    //! Once the executor is shut down, a buffered map yields the items already submitted and ends.
    void endsAfterSubmittedOnceShutDown()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(4);
            std::vector<qsizetype> indices;
            QCORO_FOREACH(const Indexed<int>& item,
                          pool.mapUnordered({ .bufferSize = 2 }, nextTurnTwice, std::views::iota(0)))
            {
                if (indices.empty())
                    co_await pool.shutdown({ .wait = false });
                indices.push_back(item.index);
            }
            std::sort(indices.begin(), indices.end());
            // Two submitted at the call, one more when the first result was taken.
            CO_COMPARE(indices, (std::vector<qsizetype> { 0, 1, 2 }));
        }());
    }

    //! The same when the executor is destroyed.
    void endsAfterSubmittedOnceDestroyed()
    {
        run([]() -> QCoro::Task<void> {
            auto pool = std::make_unique<TaskPoolExecutor>(4);
            int yielded = 0;
            QCORO_FOREACH(const Indexed<int>& item,
                          pool->mapUnordered({ .bufferSize = 3 }, nextTurnTwice, std::views::iota(0)))
            {
                Q_UNUSED(item);
                if (++yielded == 1)
                    pool.reset();
            }
            CO_COMPARE(yielded, 4);
        }());
    }

    //! Move-only results are moved out to the consumer; the generator keeps none.
    void moveOnlyResults()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            auto make = [](int x) -> QCoro::Task<std::unique_ptr<int>> {
                co_await TaskPool::detail::Yield {};
                co_return std::make_unique<int>(x);
            };
            int sum = 0;
            QCORO_FOREACH(auto&& item, pool.mapUnordered(make, range(5)))
            {
                std::unique_ptr<int> owned = std::move(item.value);
                sum += *owned;
            }
            CO_COMPARE(sum, 10);
            QCORO_FOREACH(auto&& r, pool.mapSettled(make, range(3)))
            {
                std::unique_ptr<int> owned = std::move(r).value();
                sum += *owned;
            }
            CO_COMPARE(sum, 13);
        }());
    }

    //! Bad input answers as map() does.
    void badInput()
    {
        TaskPoolExecutor pool(2);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument,
                                 (void)pool.mapUnordered({ .bufferSize = 0 }, nextTurnTwice, range(3)));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument,
                                 (void)pool.mapSettled({ .bufferSize = -1 }, nextTurnTwice, range(3)));
        run([](TaskPoolExecutor& pool) -> QCoro::Task<void> { co_await pool.shutdown(); }(pool));
        QVERIFY_THROWS_EXCEPTION(ShutdownError, (void)pool.mapUnordered(nextTurnTwice, range(3)));
        QVERIFY_THROWS_EXCEPTION(ShutdownError, (void)pool.mapUnorderedSettled(nextTurnTwice, range(3)));
        QVERIFY_THROWS_EXCEPTION(ShutdownError, (void)pool.mapSettled(nextTurnTwice, range(3)));
    }
};

QTEST_GUILESS_MAIN(tst_MapUnordered)
#include "tst_mapunordered.moc"
