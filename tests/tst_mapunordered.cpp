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
#include <functional>
#include <map>
#include <memory>
#include <ranges>
#include <stdexcept>
#include <vector>

using namespace TestUtil;
using namespace Qt::StringLiterals;
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

//! How a test makes the executor go away in the middle of a map.
enum class Gone { Destroyed, ShutDown, ShutDownWaiting, ShutDownCancelling };

//! Makes \a pool go away as \a how says.
QCoro::Task<void> makeGone(std::unique_ptr<TaskPoolExecutor>& pool, Gone how)
{
    if (how == Gone::Destroyed) {
        pool.reset();
        co_return;
    }
    const ShutdownOptions options { .wait = how == Gone::ShutDownWaiting,
                                    .cancelFutures = how == Gone::ShutDownCancelling };
    co_await pool->shutdown(options);
}

//! What the elements of an unordered map said: index -> value; for mapUnorderedSettled(), -1 is
//! the value of a cancelled item, -2 of a failed one.
using Yielded = std::map<qsizetype, int>;

void note(Yielded& got, const Indexed<int>& element)
{
    got[element.index] = element.value;
}
void note(Yielded& got, const Indexed<Result<int>>& element)
{
    const Result<int>& r = element.value;
    got[element.index] = r.hasValue() ? r.value() : r.isCancelled() ? -1 : -2;
}

//! Takes every element of \a results into \a got, awaiting `afterEach(count taken)` after each;
//! returns how the iteration ended: "end", or the exception that ended it.
template <typename Element, typename AfterEach>
QCoro::Task<QString> drain(QCoro::AsyncGenerator<Element> results, Yielded& got, AfterEach afterEach)
{
    int taken = 0;
    try {
        auto it = co_await results.begin();
        while (it != results.end()) {
            note(got, *it);
            ++taken; // apart: clang reads an increment inside a co_await as unsequenced
            co_await afterEach(taken);
            co_await ++it;
        }
    } catch (const ShutdownError&) {
        co_return QStringLiteral("ShutdownError");
    } catch (const CancelledError&) {
        co_return QStringLiteral("CancelledError");
    }
    co_return QStringLiteral("end");
}

//! A coroutine that does nothing: drain()'s afterEach when there is nothing to do.
QCoro::Task<void> nothingMore(int)
{
    co_return;
}

//! Items 0 .. \a count - 1, each 10 times its index.
Yielded tenTimes(int count)
{
    Yielded got;
    for (int i = 0; i < count; ++i)
        got[i] = 10 * i;
    return got;
}

//! The items 0 .. size - 1 as an input that counts the items read and calls \a onRead (when set)
//! with each as it is read.
auto countedInput(int size, int& reads, const std::function<void(int)>& onRead)
{
    return std::views::iota(0, size) | std::views::transform([&reads, &onRead](int item) {
               if (onRead)
                   onRead(item);
               ++reads;
               return item;
           });
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

    //! Once the executor is shut down, a buffered map yields the items already submitted, then
    //! throws ShutdownError: its endless input was cut short.
    void throwsAfterSubmittedOnceShutDown()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(4);
            std::vector<qsizetype> indices;
            bool cutShort = false;
            try {
                QCORO_FOREACH(const Indexed<int>& item,
                              pool.mapUnordered({ .bufferSize = 2 }, nextTurnTwice, std::views::iota(0)))
                {
                    if (indices.empty()) {
                        const ShutdownOptions noWait { .wait = false };
                        co_await pool.shutdown(noWait);
                    }
                    indices.push_back(item.index);
                }
            } catch (const ShutdownError&) {
                cutShort = true;
            }
            CO_VERIFY(cutShort);
            std::sort(indices.begin(), indices.end());
            // Two submitted at the call, one more when the first result was taken.
            CO_COMPARE(indices, (std::vector<qsizetype> { 0, 1, 2 }));
        }());
    }

    //! The same when the executor is destroyed.
    void throwsAfterSubmittedOnceDestroyed()
    {
        run([]() -> QCoro::Task<void> {
            auto pool = std::make_unique<TaskPoolExecutor>(4);
            int yielded = 0;
            bool cutShort = false;
            try {
                QCORO_FOREACH(const Indexed<int>& item,
                              pool->mapUnordered({ .bufferSize = 3 }, nextTurnTwice, std::views::iota(0)))
                {
                    Q_UNUSED(item);
                    if (++yielded == 1)
                        pool.reset();
                }
            } catch (const ShutdownError&) {
                cutShort = true;
            }
            CO_VERIFY(cutShort);
            CO_COMPARE(yielded, 4);
        }());
    }

    //! A buffered mapUnordered() or mapUnorderedSettled() whose executor goes away before its
    //! input is exhausted yields the items already submitted, then throws ShutdownError; its input
    //! exhausted when the executor goes, it ends as usual. One worker, a buffer of 2, the executor
    //! gone once 5 results were taken: items 0 to 6 were submitted by then.
    void cutShortThrowsShutdownError_data()
    {
        QTest::addColumn<int>("how"); // a Gone
        QTest::addColumn<bool>("settled"); // mapUnorderedSettled() rather than mapUnordered()
        QTest::addColumn<int>("size"); // of the input
        QTest::addColumn<Yielded>("expected");
        QTest::addColumn<QString>("end");
        const Yielded seven = tenTimes(7);
        Yielded cancelledSix = seven;
        cancelledSix[6] = -1;
        const struct {
            Gone how;
            const char* name;
        } hows[] = { { Gone::Destroyed, "destroyed in the loop" },
                     { Gone::ShutDown, "shut down" },
                     { Gone::ShutDownWaiting, "shut down, waiting" },
                     { Gone::ShutDownCancelling, "shut down, cancelling" } };
        for (const auto& [how, name] : hows) {
            for (const bool settled : { false, true }) {
                const QByteArray row = QByteArray(settled ? "mapUnorderedSettled, " : "mapUnordered, ") + name;
                if (how != Gone::ShutDownCancelling) {
                    QTest::newRow(row + ", 10 items") << int(how) << settled << 10 << seven << u"ShutdownError"_s;
                    QTest::newRow(row + ", 7 items (exhausted)") << int(how) << settled << 7 << seven << u"end"_s;
                } else if (!settled) {
                    // Item 6, queued behind the running item 5, is cancelled and settles first:
                    // its CancelledError ends the iteration.
                    QTest::newRow(row + ", 10 items")
                        << int(how) << settled << 10 << tenTimes(5) << u"CancelledError"_s;
                    QTest::newRow(row + ", 7 items (exhausted)")
                        << int(how) << settled << 7 << tenTimes(5) << u"CancelledError"_s;
                } else {
                    QTest::newRow(row + ", 10 items")
                        << int(how) << settled << 10 << cancelledSix << u"ShutdownError"_s;
                    QTest::newRow(row + ", 7 items (exhausted)")
                        << int(how) << settled << 7 << cancelledSix << u"end"_s;
                }
            }
        }
    }
    void cutShortThrowsShutdownError()
    {
        QFETCH(int, how);
        QFETCH(bool, settled);
        QFETCH(int, size);
        QFETCH(Yielded, expected);
        QFETCH(QString, end);
        run([](Gone how, bool settled, int size, Yielded expected, QString end) -> QCoro::Task<void> {
            int reads = 0;
            const std::function<void(int)> onRead;
            auto pool = std::make_unique<TaskPoolExecutor>(1);
            std::vector<int> started;
            Gate hold; // holds item 5, when cancelling, so that item 6 stays queued behind it
            const bool cancelling = how == Gone::ShutDownCancelling;
            auto fn = [&](int x) -> QCoro::Task<int> {
                started.push_back(x);
                if (cancelling && x == 5)
                    co_await hold;
                co_await TaskPool::detail::Yield {};
                co_return 10 * x;
            };
            auto afterEach = [&](int taken) -> QCoro::Task<void> {
                if (taken != 5)
                    co_return;
                if (cancelling)
                    co_await until([&] { return std::find(started.begin(), started.end(), 5) != started.end(); });
                co_await makeGone(pool, how);
                hold.open();
            };
            const MapOptions options { .bufferSize = 2 };
            Yielded got;
            QString ended;
            if (settled)
                ended = co_await drain(pool->mapUnorderedSettled(options, fn, countedInput(size, reads, onRead)), got,
                                       afterEach);
            else
                ended = co_await drain(pool->mapUnordered(options, fn, countedInput(size, reads, onRead)), got,
                                       afterEach);
            CO_COMPARE(got, expected);
            CO_COMPARE(ended, end);
            CO_COMPARE(reads, 7); // nothing read after the executor went
            if (pool)
                co_await pool->shutdown();
        }(Gone(how), settled, size, expected, end));
    }

    //! The executor destroyed while the iteration waits for an item, by someone other than the
    //! consumer: the items submitted before are yielded, then ShutdownError.
    void destroyedWhileAwaitingAnItem_data()
    {
        QTest::addColumn<bool>("settled");
        QTest::newRow("mapUnordered") << false;
        QTest::newRow("mapUnorderedSettled") << true;
    }
    void destroyedWhileAwaitingAnItem()
    {
        QFETCH(bool, settled);
        run([](bool settled) -> QCoro::Task<void> {
            int reads = 0;
            const std::function<void(int)> onRead;
            auto pool = std::make_unique<TaskPoolExecutor>(1);
            Gate hold;
            bool tookFive = false;
            auto fn = [&](int x) -> QCoro::Task<int> {
                if (x == 5)
                    co_await hold;
                co_return 10 * x;
            };
            auto afterEach = [&](int taken) -> QCoro::Task<void> {
                tookFive = tookFive || taken == 5;
                co_return;
            };
            // Once 5 results were taken: the iteration then waits for item 5, held, with items 0
            // to 6 submitted (a buffer of 2).
            auto destroyer
                = [](std::unique_ptr<TaskPoolExecutor>& pool, bool& tookFive, Gate& hold) -> QCoro::Task<void> {
                co_await until([&] { return tookFive; });
                pool.reset();
                hold.open();
            }(pool, tookFive, hold);
            const MapOptions options { .bufferSize = 2 };
            Yielded got;
            QString ended;
            if (settled)
                ended = co_await drain(pool->mapUnorderedSettled(options, fn, countedInput(10, reads, onRead)), got,
                                       afterEach);
            else
                ended
                    = co_await drain(pool->mapUnordered(options, fn, countedInput(10, reads, onRead)), got, afterEach);
            co_await destroyer;
            CO_COMPARE(got, tenTimes(7));
            CO_COMPARE(ended, QStringLiteral("ShutdownError"));
            CO_COMPARE(reads, 7);
        }(settled));
    }

    //! The executor shut down or destroyed while the map reads its next item (here by the input
    //! itself, between the map's check of the executor and the item's submission; a shutdown from
    //! another thread comes at the same point): that item is dropped and never runs, the ones
    //! before are yielded, then ShutdownError. Also for an unbuffered map cut short during the call.
    void goneWhileReadingAnItem_data()
    {
        QTest::addColumn<bool>("destroy");
        QTest::addColumn<int>("bufferSize"); // 0: none
        QTest::addColumn<bool>("settled");
        QTest::newRow("shut down, buffer 2") << false << 2 << false;
        QTest::newRow("shut down, buffer 2, settled") << false << 2 << true;
        QTest::newRow("destroyed, buffer 2") << true << 2 << false;
        QTest::newRow("destroyed, buffer 2, settled") << true << 2 << true;
        QTest::newRow("shut down, no buffer (during the call)") << false << 0 << false;
        QTest::newRow("shut down, no buffer (during the call), settled") << false << 0 << true;
    }
    void goneWhileReadingAnItem()
    {
        QFETCH(bool, destroy);
        QFETCH(int, bufferSize);
        QFETCH(bool, settled);
        run([](bool destroy, int bufferSize, bool settled) -> QCoro::Task<void> {
            int reads = 0;
            auto pool = std::make_unique<TaskPoolExecutor>(2);
            const std::function<void(int)> onRead = [&](int item) {
                if (item != 3)
                    return;
                if (destroy) {
                    pool.reset();
                } else {
                    const ShutdownOptions noWait { .wait = false };
                    auto shutdown = pool->shutdown(noWait); // completes before it returns
                    Q_UNUSED(shutdown);
                }
            };
            std::vector<int> started;
            auto fn = [&](int x) -> QCoro::Task<int> {
                started.push_back(x);
                co_await TaskPool::detail::Yield {};
                co_return 10 * x;
            };
            const MapOptions options = bufferSize > 0 ? MapOptions { .bufferSize = bufferSize } : MapOptions {};
            Yielded got;
            QString ended;
            if (settled)
                ended = co_await drain(pool->mapUnorderedSettled(options, fn, countedInput(6, reads, onRead)), got,
                                       nothingMore);
            else
                ended
                    = co_await drain(pool->mapUnordered(options, fn, countedInput(6, reads, onRead)), got, nothingMore);
            CO_COMPARE(got, tenTimes(3));
            CO_COMPARE(ended, QStringLiteral("ShutdownError"));
            CO_COMPARE(reads, 4);
            std::sort(started.begin(), started.end());
            CO_COMPARE(started, (std::vector<int> { 0, 1, 2 })); // item 3 was read, never started
            if (pool)
                co_await pool->shutdown();
        }(destroy, bufferSize, settled));
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
