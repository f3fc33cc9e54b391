// SPDX-License-Identifier: MIT
// TaskPoolExecutor::map(): the map cases of cf-taskpool's test_task_pool.py and of CPython's
// concurrent.futures executor tests, plus the guarantees the spec adds (ownership of outstanding
// items, ranges referred to or moved, the executor going away, move-only results, maxWorkers).
//
// Not ported, because C++ rejects them at compile time: a bufferSize of the wrong type ("foo",
// 2.0: MapOptions::bufferSize is a std::optional<int>) and map() without any range (see the
// static_asserts below). CPython's test_map_timeout does not apply: map() takes no timeout, as a
// pending co_await cannot be timed out in QCoro 0.8; a caller bounds the whole iteration instead.
#include "testutil.h"

#include <QCoro/QCoroAsyncGenerator>
#include <QSet>

#include <algorithm>
#include <climits>
#include <functional>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <utility>
#include <vector>

using namespace TestUtil;
using namespace Qt::StringLiterals;
using TaskPool::CancelledError;
using TaskPool::MapOptions;
using TaskPool::ShutdownError;
using TaskPool::ShutdownOptions;
using TaskPool::TaskPoolExecutor;

namespace {

//! One turn of the event loop: makes a mapped function really asynchronous.
TaskPool::detail::Yield nextTurn()
{
    return {};
}

QCoro::Task<int> aturnmul(int x, int y)
{
    co_await nextTurn();
    co_return x* y;
}

QCoro::Task<QString> astr(int x)
{
    co_await nextTurn();
    co_return QString::number(x);
}

QCoro::Task<std::pair<int, int>> adivmod(int x, int y)
{
    co_await nextTurn();
    if (y == 0)
        throw std::domain_error("integer division or modulo by zero");
    co_return std::pair(x / y, x % y);
}

//! As adivmod, but an item dividing by zero cancels itself.
QCoro::Task<std::pair<int, int>> adivmodCancel(int x, int y)
{
    co_await nextTurn();
    if (y == 0)
        throw CancelledError();
    co_return std::pair(x / y, x % y);
}

//! The options of a data row: a bufferSize of 0 stands for none.
MapOptions buffer(int size)
{
    return size > 0 ? MapOptions { .bufferSize = size } : MapOptions {};
}

//! A single-pass input range of 0, 1, 2, ... (endless when size < 0) that counts how far it was
//! advanced: Python's `iter(range(n))` or `itertools.count()`.
class CountingInput {
public:
    class Iterator {
    public:
        using iterator_concept = std::input_iterator_tag;
        using value_type = int;
        using difference_type = std::ptrdiff_t;

        Iterator() = default;
        explicit Iterator(CountingInput* input) : m_input(input) { }
        int operator*() const
        {
            if (m_input->onRead)
                m_input->onRead(m_input->m_next);
            return m_input->m_next;
        }
        Iterator& operator++()
        {
            ++m_input->m_next;
            return *this;
        }
        void operator++(int) { ++*this; }
        bool operator==(std::default_sentinel_t) const
        {
            return m_input->m_size >= 0 && m_input->m_next >= m_input->m_size;
        }

    private:
        CountingInput* m_input = nullptr;
    };

    explicit CountingInput(int size = -1) : m_size(size) { }
    CountingInput(const CountingInput&) = delete; // single pass: only ever referred to
    CountingInput& operator=(const CountingInput&) = delete;

    Iterator begin() { return Iterator(this); }
    std::default_sentinel_t end() const { return {}; }
    //! How many items were taken from the input; also the next item it gives.
    int pulled() const { return m_next; }
    //! Called with each item as it is read (by the iterator's `*`), when set.
    std::function<void(int)> onRead;

private:
    int m_size;
    int m_next = 0;
};
static_assert(std::ranges::input_range<CountingInput&> && !std::ranges::forward_range<CountingInput&>);

//! A range that counts its copies, to tell a range referred to or moved from one copied.
struct TrackedRange {
    TrackedRange(std::vector<int> items, int* copies) : items(std::move(items)), copies(copies) { }
    TrackedRange(const TrackedRange& other) : items(other.items), copies(other.copies) { ++*copies; }
    TrackedRange& operator=(const TrackedRange& other)
    {
        items = other.items;
        copies = other.copies;
        ++*copies;
        return *this;
    }
    TrackedRange(TrackedRange&&) noexcept = default;
    TrackedRange& operator=(TrackedRange&&) noexcept = default;
    auto begin() { return items.begin(); }
    auto end() { return items.end(); }

    std::vector<int> items;
    int* copies;
};

//! Counts the executor's lifecycle signals, one of which ends each task.
class Outcomes {
public:
    explicit Outcomes(TaskPoolExecutor& pool) :
        m_connections {
            QObject::connect(&pool, &TaskPoolExecutor::taskStarted, [this] { ++started; }),
            QObject::connect(&pool, &TaskPoolExecutor::taskFinished, [this] { ++finished; }),
            QObject::connect(&pool, &TaskPoolExecutor::taskFailed, [this] { ++failed; }),
            QObject::connect(&pool, &TaskPoolExecutor::taskCanceled, [this] { ++canceled; }),
        }
    {
    }
    Outcomes(const Outcomes&) = delete;
    Outcomes& operator=(const Outcomes&) = delete;
    ~Outcomes()
    {
        for (const auto& connection : m_connections)
            QObject::disconnect(connection);
    }

    int started = 0;
    int finished = 0;
    int failed = 0;
    int canceled = 0;

private:
    std::vector<QMetaObject::Connection> m_connections;
};

QList<int> upTo(int count)
{
    QList<int> list;
    for (int i = 0; i < count; ++i)
        list.append(i);
    return list;
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

//! What an element of a map says: its value; for mapSettled(), -1 for a cancelled item, -2 for a
//! failed one.
int valueOf(int value)
{
    return value;
}
int valueOf(const TaskPool::Result<int>& result)
{
    return result.hasValue() ? result.value() : result.isCancelled() ? -1 : -2;
}

//! Takes every element of \a results into \a values, awaiting `afterEach(count taken)` after each;
//! returns how the iteration ended: "end", or the exception that ended it.
template <typename Element, typename AfterEach>
QCoro::Task<QString> drain(QCoro::AsyncGenerator<Element> results, QList<int>& values, AfterEach afterEach)
{
    try {
        auto it = co_await results.begin();
        while (it != results.end()) {
            values.append(valueOf(*it));
            co_await afterEach(int(values.size()));
            co_await ++it;
        }
    } catch (const ShutdownError&) {
        co_return u"ShutdownError"_s;
    } catch (const CancelledError&) {
        co_return u"CancelledError"_s;
    }
    co_return u"end"_s;
}

//! A coroutine that does nothing: drain()'s afterEach when there is nothing to do.
QCoro::Task<void> nothingMore(int)
{
    co_return;
}

// map() needs at least one range (CPython's test_map_buffersize_without_iterable: here it does
// not compile), and the function must take the ranges' items.
template <typename Fn, typename... Ranges>
concept Mappable = requires(TaskPoolExecutor& pool, Fn fn, Ranges&&... ranges)
{
    pool.map(MapOptions {}, fn, std::forward<Ranges>(ranges)...);
};
static_assert(Mappable<decltype(&astr), std::vector<int>>);
static_assert(Mappable<decltype(&aturnmul), std::vector<int>, decltype(std::views::iota(0))>);
static_assert(!Mappable<decltype(&astr)>);
// A function that does not take the ranges' items fails with a static_assert: tests/compile_fail.

} // namespace

class tst_Map : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // ---- results -------------------------------------------------------------------------------

    void mapInOrder_data()
    {
        QTest::addColumn<int>("items");
        QTest::addColumn<int>("bufferSize");
        QTest::newRow("1 item") << 1 << 0;
        QTest::newRow("10 items") << 10 << 0;
        QTest::newRow("10 items, buffer 10") << 10 << 10;
        QTest::newRow("10 items, buffer 20") << 10 << 20;
    }
    void mapInOrder()
    {
        QFETCH(int, items);
        QFETCH(int, bufferSize);
        run([](int items, int bufferSize) -> QCoro::Task<void> {
            // Item x may only finish after item x + 1 did: the items complete in reverse order.
            std::vector<Gate> mayFinish(items);
            mayFinish.back().open();
            QList<int> completed;
            TaskPoolExecutor pool(items);
            auto square = [&](int x) -> QCoro::Task<int> {
                co_await mayFinish[x];
                completed.append(x);
                if (x > 0)
                    mayFinish[x - 1].open();
                co_return x* x;
            };
            QList<int> results;
            QCORO_FOREACH(int r, pool.map(buffer(bufferSize), square, std::views::iota(0, items)))
            {
                results.append(r);
            }
            QList<int> squares;
            QList<int> reversed;
            for (int x = 0; x < items; ++x) {
                squares.append(x * x);
                reversed.prepend(x);
            }
            CO_COMPARE(completed, reversed);
            CO_COMPARE(results, squares);
            co_await pool.shutdown();
        }(items, bufferSize));
    }

    void mapMultipleRanges_data()
    {
        QTest::addColumn<QList<int>>("xs");
        QTest::addColumn<QList<int>>("ys");
        QTest::addColumn<QList<int>>("expected");
        const QList<int> ten = upTo(10);
        QList<int> squares;
        for (int x : ten)
            squares.append(x * x);
        QTest::newRow("same length") << ten << ten << squares;
        QTest::newRow("first shorter") << QList<int> { 1, 2 } << QList<int> { 3, 4, 5 } << QList<int> { 3, 8 };
        QTest::newRow("second shorter") << QList<int> { 1, 2, 3 } << QList<int> { 4 } << QList<int> { 4 };
        QTest::newRow("second empty") << QList<int> { 1, 2 } << QList<int> {} << QList<int> {};
    }
    void mapMultipleRanges()
    {
        QFETCH(QList<int>, xs);
        QFETCH(QList<int>, ys);
        QFETCH(QList<int>, expected);
        run([](QList<int> xs, QList<int> ys, QList<int> expected) -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            QList<int> results;
            QCORO_FOREACH(int r, pool.map(aturnmul, xs, ys))
            {
                results.append(r);
            }
            CO_COMPARE(results, expected);
            co_await pool.shutdown();
        }(xs, ys, expected));
    }

    void mapRangesOfDifferentKinds()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            const std::vector<int> counts { 1, 2, 3 };
            auto label
                = [](int count, QString word, int index) { return u"%1:%2x%3"_s.arg(index).arg(count).arg(word); };
            QStringList results;
            QCORO_FOREACH(QString r, pool.map(label, counts, QStringList { u"a"_s, u"b"_s }, std::views::iota(0)))
            {
                results.append(r);
            }
            const QStringList expected { u"0:1xa"_s, u"1:2xb"_s };
            CO_COMPARE(results, expected);
            co_await pool.shutdown();
        }());
    }

    // ---- exceptions and cancellations ----------------------------------------------------------

    void mapExceptionPosition_data()
    {
        QTest::addColumn<bool>("cancels");
        QTest::addColumn<int>("bufferSize");
        for (int size : { 0, 1, 2, 4 }) {
            const QByteArray suffix = size ? ", buffer " + QByteArray::number(size) : QByteArray();
            QTest::newRow("raises" + suffix) << false << size;
            QTest::newRow("raises CancelledError" + suffix) << true << size;
        }
    }
    void mapExceptionPosition()
    {
        QFETCH(bool, cancels);
        QFETCH(int, bufferSize);
        run([](bool cancels, int bufferSize) -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            const QList<int> xs { 1, 1, 1, 1 };
            const QList<int> ys { 2, 3, 0, 5 };
            auto results = pool.map(buffer(bufferSize), cancels ? adivmodCancel : adivmod, xs, ys);
            const std::pair expected(0, 1);
            auto it = co_await results.begin();
            CO_VERIFY(it != results.end());
            CO_COMPARE(*it, expected);
            co_await ++it;
            CO_VERIFY(it != results.end());
            CO_COMPARE(*it, expected);
            if (cancels)
                CO_VERIFY_THROWS(co_await ++it, CancelledError);
            else
                CO_VERIFY_THROWS(co_await ++it, std::domain_error);
            // Unlike CPython 3.14's map, the iteration ends with the exception (as cf-taskpool's).
            CO_VERIFY(it == results.end());
            co_await pool.shutdown();
        }(cancels, bufferSize));
    }

    void mapExceptionCancelsTheRest_data()
    {
        QTest::addColumn<int>("bufferSize");
        QTest::newRow("no buffer") << 0;
        QTest::newRow("buffer 4") << 4;
        QTest::newRow("buffer 6") << 6;
    }
    void mapExceptionCancelsTheRest()
    {
        QFETCH(int, bufferSize);
        run([](int bufferSize) -> QCoro::Task<void> {
            Gate release;
            QList<int> started;
            TaskPoolExecutor pool(1);
            Outcomes outcomes(pool);
            // Item 2 fails; item 3 holds the only worker until released, so 4 and 5 stay queued.
            auto fn = [&](int x) -> QCoro::Task<int> {
                started.append(x);
                co_await nextTurn();
                if (x == 2)
                    throw std::domain_error("item 2");
                if (x > 2)
                    co_await release;
                co_return x;
            };
            auto generator = pool.map(buffer(bufferSize), fn, std::views::iota(0, 6));
            QList<int> results;
            bool thrown = false;
            try {
                QCORO_FOREACH(int r, generator)
                {
                    results.append(r);
                }
            } catch (const std::domain_error&) {
                thrown = true;
            }
            CO_VERIFY(thrown);
            const QList<int> expected { 0, 1 };
            CO_COMPARE(results, expected);
            // The generator still exists: the exception itself cancelled the rest (as the finally
            // of Python's map does).
            CO_COMPARE(outcomes.finished, 2);
            CO_COMPARE(outcomes.failed, 1);
            CO_COMPARE(outcomes.canceled, 3);
            // Destroyed, not assigned over: QCoro 0.10+'s `generator = {}` would leak it.
            {
                auto dropped = std::move(generator);
            }
            release.open();
            co_await pool.shutdown();
            CO_VERIFY(!started.contains(4));
            CO_VERIFY(!started.contains(5));
            CO_COMPARE(outcomes.finished, 2); // item 3, if it was running, ended with its result discarded
        }(bufferSize));
    }

    void mapCancelledItemPosition_data()
    {
        QTest::addColumn<int>("bufferSize");
        QTest::addColumn<bool>("expectCancelled");
        // shutdown({.cancelFutures = true}) cancels the queued items; a buffered map submits no
        // more after it, so with a buffer of 1 nothing queued was left to cancel: the iteration
        // ends with ShutdownError instead, its input cut short.
        QTest::newRow("no buffer") << 0 << true;
        QTest::newRow("buffer 1") << 1 << false;
        QTest::newRow("buffer 2") << 2 << true;
        QTest::newRow("buffer 3") << 3 << true;
    }
    void mapCancelledItemPosition()
    {
        QFETCH(int, bufferSize);
        QFETCH(bool, expectCancelled);
        run([](int bufferSize, bool expectCancelled) -> QCoro::Task<void> {
            Gate firstStarted;
            Gate release;
            TaskPoolExecutor pool(1);
            auto fn = [&](int x) -> QCoro::Task<int> {
                if (x == 0) {
                    firstStarted.open();
                    co_await release;
                }
                co_return x;
            };
            auto results = pool.map(buffer(bufferSize), fn, std::views::iota(0, 3));
            co_await firstStarted;
            const ShutdownOptions cancelQueued { .wait = false, .cancelFutures = true };
            co_await pool.shutdown(cancelQueued);
            release.open();
            auto it = co_await results.begin();
            CO_VERIFY(it != results.end());
            CO_COMPARE(*it, 0);
            if (expectCancelled)
                CO_VERIFY_THROWS(co_await ++it, CancelledError);
            else
                CO_VERIFY_THROWS(co_await ++it, ShutdownError);
            CO_VERIFY(it == results.end());
            co_await pool.shutdown();
        }(bufferSize, expectCancelled));
    }

    // ---- bufferSize and shutdown at the call ---------------------------------------------------

    void mapBufferSizeValidation_data()
    {
        QTest::addColumn<int>("bufferSize");
        QTest::newRow("0") << 0;
        QTest::newRow("-1") << -1;
        QTest::newRow("INT_MIN") << INT_MIN;
    }
    void mapBufferSizeValidation()
    {
        QFETCH(int, bufferSize);
        CountingInput input(4);
        TaskPoolExecutor pool(2);
        bool thrown = false;
        try {
            [[maybe_unused]] auto results = pool.map(MapOptions { .bufferSize = bufferSize }, astr, input);
        } catch (const std::invalid_argument& e) {
            thrown = true;
            QCOMPARE(QString::fromUtf8(e.what()), u"bufferSize must be greater than 0"_s);
        }
        QVERIFY(thrown);
        QCOMPARE(input.pulled(), 0);
        QCOMPARE(pool.pendingCount(), 0);
    }

    void mapAfterShutdown_data()
    {
        QTest::addColumn<int>("bufferSize");
        QTest::newRow("no buffer") << 0;
        QTest::newRow("buffer 2") << 2;
    }
    void mapAfterShutdown()
    {
        QFETCH(int, bufferSize);
        run([](int bufferSize) -> QCoro::Task<void> {
            CountingInput input(4);
            TaskPoolExecutor pool(2);
            co_await pool.shutdown();
            bool thrown = false;
            try {
                [[maybe_unused]] auto results = pool.map(buffer(bufferSize), astr, input);
            } catch (const ShutdownError& e) {
                thrown = true;
                CO_COMPARE(QString::fromUtf8(e.what()), u"cannot schedule new futures after shutdown"_s);
            }
            CO_VERIFY2(thrown, "map() after shutdown must throw ShutdownError at the call");
            CO_COMPARE(input.pulled(), 0);
            CO_COMPARE(pool.pendingCount(), 0);
        }(bufferSize));
    }

    void maxWorkersNegative_data()
    {
        QTest::addColumn<int>("maxWorkers");
        QTest::newRow("0") << 0;
        QTest::newRow("-1") << -1;
    }
    void maxWorkersNegative()
    {
        QFETCH(int, maxWorkers);
        bool thrown = false;
        try {
            TaskPoolExecutor pool(maxWorkers);
        } catch (const std::invalid_argument& e) {
            thrown = true;
            QCOMPARE(QString::fromUtf8(e.what()), u"maxWorkers must be greater than 0"_s);
        }
        QVERIFY(thrown);
    }

    void mapBufferSize_data()
    {
        QTest::addColumn<int>("bufferSize");
        QTest::addColumn<bool>("twoRanges");
        for (int size : { 1, 2, 4, 8 }) {
            QTest::addRow("one range, buffer %d", size) << size << false;
            QTest::addRow("two ranges, buffer %d", size) << size << true;
        }
    }
    void mapBufferSize()
    {
        QFETCH(int, bufferSize);
        QFETCH(bool, twoRanges);
        run([](int bufferSize, bool twoRanges) -> QCoro::Task<void> {
            CountingInput input(4);
            TaskPoolExecutor pool(2);
            // n items are taken at the call, one more with each result.
            QList<int> pulledAtResult;
            QList<int> expectedPulled;
            for (int k = 0; k < 4; ++k)
                expectedPulled.append(std::min(4, bufferSize + k + 1));
            if (twoRanges) {
                QList<int> results;
                QCORO_FOREACH(int r, pool.map(buffer(bufferSize), aturnmul, input, std::views::iota(0, 4)))
                {
                    results.append(r);
                    pulledAtResult.append(input.pulled());
                }
                const QList<int> expected { 0, 1, 4, 9 };
                CO_COMPARE(results, expected);
            } else {
                QStringList results;
                QCORO_FOREACH(QString r, pool.map(buffer(bufferSize), astr, input))
                {
                    results.append(r);
                    pulledAtResult.append(input.pulled());
                }
                const QStringList expected { u"0"_s, u"1"_s, u"2"_s, u"3"_s };
                CO_COMPARE(results, expected);
            }
            CO_COMPARE(pulledAtResult, expectedPulled);
            co_await pool.shutdown();
        }(bufferSize, twoRanges));
    }

    void mapInfiniteRanges_data()
    {
        QTest::addColumn<int>("bufferSize");
        QTest::addColumn<bool>("twoRanges");
        for (int size : { 1, 2, 16 }) {
            QTest::addRow("one range, buffer %d", size) << size << false;
            QTest::addRow("two ranges, buffer %d", size) << size << true;
        }
    }
    void mapInfiniteRanges()
    {
        QFETCH(int, bufferSize);
        QFETCH(bool, twoRanges);
        run([](int bufferSize, bool twoRanges) -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            int calls = 0;
            QList<int> callsAtResult;
            QList<int> bound;
            QList<int> results;
            auto count = [&](auto result) {
                results.append(result);
                callsAtResult.append(calls);
                bound.append(bufferSize + int(results.size()));
            };
            if (twoRanges) {
                auto mul = [&](int x, int y) {
                    ++calls;
                    return aturnmul(x, y);
                };
                QCORO_FOREACH(int r, pool.map(buffer(bufferSize), mul, std::views::iota(0), std::views::iota(0)))
                {
                    count(r);
                    if (results.size() == 4)
                        break;
                }
                const QList<int> expected { 0, 1, 4, 9 };
                CO_COMPARE(results, expected);
            } else {
                auto str = [&](int x) {
                    ++calls;
                    return astr(x);
                };
                QCORO_FOREACH(QString r, pool.map(buffer(bufferSize), str, std::views::iota(0)))
                {
                    count(r.toInt());
                    if (results.size() == 3)
                        break;
                }
                const QList<int> expected { 0, 1, 2 };
                CO_COMPARE(results, expected);
            }
            // At most n items beyond the results taken were ever started.
            for (qsizetype k = 0; k < results.size(); ++k)
                CO_VERIFY(callsAtResult[k] <= bound[k]);
            co_await pool.shutdown();
            CO_VERIFY(calls <= bufferSize + int(results.size()));
        }(bufferSize, twoRanges));
    }

    void mapEmptyRange_data()
    {
        QTest::addColumn<int>("bufferSize");
        QTest::addColumn<bool>("zipped");
        QTest::newRow("empty") << 0 << false;
        QTest::newRow("empty, buffer 2") << 2 << false;
        QTest::newRow("empty zipped with non-empty") << 0 << true;
        QTest::newRow("empty zipped with non-empty, buffer 2") << 2 << true;
    }
    void mapEmptyRange()
    {
        QFETCH(int, bufferSize);
        QFETCH(bool, zipped);
        run([](int bufferSize, bool zipped) -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            int calls = 0;
            auto str = [&](int x) {
                ++calls;
                return QString::number(x);
            };
            const std::vector<int> empty;
            auto results = zipped ? pool.map(
                               buffer(bufferSize), [&](int x, int) { return str(x); }, std::views::iota(0, 3), empty)
                                  : pool.map(
                                      buffer(bufferSize), [&](int x, int) { return str(x); }, empty, empty);
            auto it = co_await results.begin();
            CO_VERIFY(it == results.end());
            co_await pool.shutdown();
            CO_COMPARE(calls, 0);
        }(bufferSize, zipped));
    }

    void mapBufferFullIteratorPosition_data()
    {
        QTest::addColumn<bool>("keepGenerator");
        QTest::newRow("generator kept") << true;
        QTest::newRow("generator dropped") << false;
    }
    void mapBufferFullIteratorPosition()
    {
        QFETCH(bool, keepGenerator);
        run([](bool keepGenerator) -> QCoro::Task<void> {
            CountingInput input(4);
            TaskPoolExecutor pool(2);
            int calls = 0;
            auto str = [&](int x) {
                ++calls;
                return astr(x);
            };
            auto results = pool.map(MapOptions { .bufferSize = 2 }, str, input);
            if (!keepGenerator) {
                auto dropped = std::move(results); // destroyed: QCoro 0.10+'s `results = {}` leaks it
            }
            co_await pool.shutdown(); // waits for the submitted items
            CO_COMPARE(*input.begin(), 2); // Python's next(ints) == buffersize
            CO_COMPARE(input.pulled(), 2);
            if (keepGenerator)
                CO_COMPARE(calls, 2);
        }(keepGenerator));
    }

    // ---- the generator's ownership of its items ------------------------------------------------

    void mapSubmitsWithoutIteration_data()
    {
        QTest::addColumn<int>("maxWorkers");
        QTest::addColumn<bool>("asynchronous");
        for (int workers : { 1, 3, 11 }) {
            QTest::addRow("plain function, %d workers", workers) << workers << false;
            QTest::addRow("coroutine, %d workers", workers) << workers << true;
        }
    }
    void mapSubmitsWithoutIteration()
    {
        QFETCH(int, maxWorkers);
        QFETCH(bool, asynchronous);
        run([](int maxWorkers, bool asynchronous) -> QCoro::Task<void> {
            QSet<int> finished;
            TaskPoolExecutor pool(maxWorkers);
            Outcomes outcomes(pool);
            auto record = [&](int n) {
                finished.insert(n);
                return n;
            };
            auto recordLater = [&](int n) -> QCoro::Task<int> {
                co_await nextTurn();
                finished.insert(n);
                co_return n;
            };
            // Kept alive, never iterated: the work goes on all the same.
            auto results = asynchronous ? pool.map(recordLater, std::views::iota(0, 10))
                                        : pool.map(record, std::views::iota(0, 10));
            co_await pool.shutdown();
            const QList<int> all = upTo(10);
            CO_COMPARE(finished, QSet<int>(all.begin(), all.end()));
            CO_COMPARE(outcomes.finished, 10);
            {
                auto dropped = std::move(results); // nothing outstanding is left to cancel
            }
            CO_COMPARE(outcomes.canceled, 0);
        }(maxWorkers, asynchronous));
    }

    void mapDroppedGeneratorCancelsItems_data()
    {
        QTest::addColumn<int>("bufferSize");
        QTest::addColumn<int>("submitted");
        QTest::newRow("no buffer") << 0 << 2;
        QTest::newRow("buffer 1") << 1 << 1;
        QTest::newRow("buffer 2") << 2 << 2;
    }
    // cf-taskpool's test_executor_map_current_future_cancel: its anext() with a zero timeout has
    // no QCoro 0.8 counterpart, so the generator is dropped before it is iterated.
    void mapDroppedGeneratorCancelsItems()
    {
        QFETCH(int, bufferSize);
        QFETCH(int, submitted);
        run([](int bufferSize, int submitted) -> QCoro::Task<void> {
            Gate firstStarted;
            Gate stop;
            QStringList log;
            TaskPoolExecutor pool(1);
            Outcomes outcomes(pool);
            auto logAndWait = [&](QString ident) -> QCoro::Task<QString> {
                log.append(ident + u" started"_s);
                if (ident == u"first")
                    firstStarted.open();
                co_await stop;
                log.append(ident + u" stopped"_s);
                co_return ident;
            };
            // Saturate the pool, so that the map's items are queued.
            auto first = pool.submit(logAndWait, u"first"_s);
            co_await firstStarted;
            {
                auto results = pool.map(buffer(bufferSize), logAndWait, QStringList { u"second"_s, u"third"_s });
            }
            CO_COMPARE(outcomes.canceled, submitted);
            stop.open();
            const QString firstResult = co_await first;
            CO_COMPARE(firstResult, u"first"_s);
            co_await pool.shutdown();
            const QStringList expected { u"first started"_s, u"first stopped"_s };
            CO_COMPARE(log, expected);
            CO_COMPARE(outcomes.started, 1);
            CO_COMPARE(outcomes.canceled, submitted);
        }(bufferSize, submitted));
    }

    void mapAbandonedIterationCancelsItems_data()
    {
        QTest::addColumn<bool>("throwFromBody");
        QTest::addColumn<int>("bufferSize");
        QTest::newRow("break") << false << 0;
        QTest::newRow("break, buffer 2") << false << 2;
        QTest::newRow("exception in the loop") << true << 0;
        QTest::newRow("exception in the loop, buffer 2") << true << 2;
    }
    void mapAbandonedIterationCancelsItems()
    {
        QFETCH(bool, throwFromBody);
        QFETCH(int, bufferSize);
        run([](bool throwFromBody, int bufferSize) -> QCoro::Task<void> {
            Gate firstStarted;
            Gate stop;
            QStringList log;
            TaskPoolExecutor pool(2);
            Outcomes outcomes(pool);
            // "second" ends at once; "first" and then "third" hold the two workers until stopped,
            // so "fourth" stays queued.
            auto logAndWait = [&](QString ident) -> QCoro::Task<QString> {
                log.append(ident + u" started"_s);
                if (ident == u"first")
                    firstStarted.open();
                if (ident == u"second")
                    co_await nextTurn();
                else
                    co_await stop;
                log.append(ident + u" stopped"_s);
                co_return ident;
            };
            auto first = pool.submit(logAndWait, u"first"_s);
            co_await firstStarted;
            QStringList results;
            bool thrown = false;
            try {
                QCORO_FOREACH(
                    QString r,
                    pool.map(buffer(bufferSize), logAndWait, QStringList { u"second"_s, u"third"_s, u"fourth"_s }))
                {
                    results.append(r);
                    if (throwFromBody)
                        throw std::runtime_error("consumer gives up");
                    break;
                }
            } catch (const std::runtime_error&) {
                thrown = true;
            }
            CO_COMPARE(thrown, throwFromBody);
            const QStringList expectedResults { u"second"_s };
            CO_COMPARE(results, expectedResults);
            // "third" (running or queued) and the queued "fourth" were cancelled with the generator.
            CO_COMPARE(outcomes.canceled, 2);
            stop.open();
            const QString firstResult = co_await first;
            CO_COMPARE(firstResult, u"first"_s);
            co_await pool.shutdown();
            CO_VERIFY(log.contains(u"second stopped"_s));
            CO_VERIFY(!log.contains(u"fourth started"_s));
            CO_COMPARE(outcomes.finished, 2); // "first" and "second"
            CO_COMPARE(outcomes.canceled, 2);
        }(throwFromBody, bufferSize));
    }

    void mapFreeResultReference_data()
    {
        QTest::addColumn<bool>("asynchronous");
        QTest::addColumn<int>("bufferSize");
        for (int size : { 0, 1, 4 }) {
            const QByteArray suffix = size ? ", buffer " + QByteArray::number(size) : QByteArray();
            QTest::newRow("plain function" + suffix) << false << size;
            QTest::newRow("coroutine" + suffix) << true << size;
        }
    }
    void mapFreeResultReference()
    {
        QFETCH(bool, asynchronous);
        QFETCH(int, bufferSize);
        run([](bool asynchronous, int bufferSize) -> QCoro::Task<void> {
            struct Dummy {
                int i;
            };
            TaskPoolExecutor pool(3);
            auto make = [](int i) { return std::make_shared<Dummy>(i); };
            auto makeLater = [](int i) -> QCoro::Task<std::shared_ptr<Dummy>> {
                co_await nextTurn();
                co_return std::make_shared<Dummy>(i);
            };
            auto objects = asynchronous ? pool.map(buffer(bufferSize), makeLater, std::views::iota(0, 10))
                                        : pool.map(buffer(bufferSize), make, std::views::iota(0, 10));
            int seen = 0;
            QCORO_FOREACH(auto&& object, objects)
            {
                auto owned = std::move(object);
                CO_VERIFY(owned);
                CO_COMPARE(owned->i, seen);
                const std::weak_ptr<Dummy> weak = owned;
                owned.reset();
                CO_VERIFY2(weak.expired(), "the generator or a job still holds the result");
                ++seen;
            }
            CO_COMPARE(seen, 10);
            co_await pool.shutdown();
        }(asynchronous, bufferSize));
    }

    // ---- ranges --------------------------------------------------------------------------------

    void mapLvalueRangeIsReferredTo()
    {
        run([]() -> QCoro::Task<void> {
            int copies = 0;
            TrackedRange range({ 0, 1, 2, 3 }, &copies);
            TaskPoolExecutor pool(1);
            auto results = pool.map(
                MapOptions { .bufferSize = 1 }, [](int x) { return x; }, range);
            CO_COMPARE(copies, 0);
            range.items[2] = 20; // not taken yet: the map reads the caller's range
            QList<int> seen;
            QCORO_FOREACH(int r, results)
            {
                seen.append(r);
            }
            const QList<int> expected { 0, 1, 20, 3 };
            CO_COMPARE(seen, expected);
            CO_COMPARE(copies, 0);
            co_await pool.shutdown();
        }());
    }

    void mapRvalueRangeIsMoved()
    {
        run([]() -> QCoro::Task<void> {
            int copies = 0;
            TrackedRange range({ 0, 1, 2, 3 }, &copies);
            TaskPoolExecutor pool(1);
            auto identity = [](int x) { return x; };
            auto results = pool.map(MapOptions { .bufferSize = 1 }, identity, std::move(range));
            CO_COMPARE(copies, 0);
            CO_VERIFY(range.items.empty()); // NOLINT(bugprone-use-after-move): moved into the generator
            range.items = { 7, 7, 7, 7 };
            QList<int> seen;
            QCORO_FOREACH(int r, results)
            {
                seen.append(r);
            }
            const QList<int> expected { 0, 1, 2, 3 };
            CO_COMPARE(seen, expected);
            CO_COMPARE(copies, 0);

            // A temporary outlives the full expression that made the generator.
            auto fromTemporary = pool.map(MapOptions { .bufferSize = 1 }, identity, std::vector<int> { 4, 5, 6 });
            seen.clear();
            QCORO_FOREACH(int r, fromTemporary)
            {
                seen.append(r);
            }
            const QList<int> expectedFromTemporary { 4, 5, 6 };
            CO_COMPARE(seen, expectedFromTemporary);
            co_await pool.shutdown();
        }());
    }

    // ---- the executor going away ---------------------------------------------------------------

    void mapExecutorGoneMidIteration_data()
    {
        QTest::addColumn<bool>("destroy");
        QTest::addColumn<int>("bufferSize");
        QTest::addColumn<int>("size"); // of the input; < 0: endless
        QTest::addColumn<int>("takenBefore");
        QTest::addColumn<int>("expectedCount");
        QTest::addColumn<bool>("cutShort"); // the iteration ends with ShutdownError
        // Buffered: the items submitted before the executor went away, and no more; then
        // ShutdownError, as the endless input was not exhausted.
        QTest::newRow("destroyed, buffer 1") << true << 1 << -1 << 1 << 2 << true;
        QTest::newRow("destroyed, buffer 2") << true << 2 << -1 << 1 << 3 << true;
        QTest::newRow("destroyed, buffer 4, after 3") << true << 4 << -1 << 3 << 7 << true;
        QTest::newRow("shut down, buffer 2") << false << 2 << -1 << 1 << 3 << true;
        QTest::newRow("shut down, buffer 4, after 3") << false << 4 << -1 << 3 << 7 << true;
        // Unbuffered: every item was submitted at the call, nothing is cut short.
        QTest::newRow("destroyed, no buffer") << true << 0 << 6 << 2 << 6 << false;
        QTest::newRow("shut down, no buffer") << false << 0 << 6 << 2 << 6 << false;
    }
    void mapExecutorGoneMidIteration()
    {
        QFETCH(bool, destroy);
        QFETCH(int, bufferSize);
        QFETCH(int, size);
        QFETCH(int, takenBefore);
        QFETCH(int, expectedCount);
        QFETCH(bool, cutShort);
        run([](bool destroy, int bufferSize, int size, int takenBefore, int expectedCount,
               bool cutShort) -> QCoro::Task<void> {
            CountingInput input(size);
            auto pool = std::make_unique<TaskPoolExecutor>(2);
            auto same = [](int x) -> QCoro::Task<int> {
                co_await nextTurn();
                co_return x;
            };
            auto afterEach = [&](int taken) -> QCoro::Task<void> {
                if (taken == takenBefore)
                    co_await makeGone(pool, destroy ? Gone::Destroyed : Gone::ShutDown);
            };
            QList<int> results;
            const QString end = co_await drain(pool->map(buffer(bufferSize), same, input), results, afterEach);
            CO_COMPARE(results, upTo(expectedCount));
            CO_COMPARE(end, cutShort ? u"ShutdownError"_s : u"end"_s);
            CO_COMPARE(input.pulled(), expectedCount);
            if (pool)
                co_await pool->shutdown();
        }(destroy, bufferSize, size, takenBefore, expectedCount, cutShort));
    }

    // A buffered map whose executor goes away before its input is exhausted yields the items
    // already submitted, then throws ShutdownError: a run cut short never looks complete. Its
    // input exhausted when the executor goes, it ends as usual. One worker, a buffer of 2, the
    // executor gone once 5 results were taken: items 0 to 6 were submitted by then.
    void mapCutShortThrowsShutdownError_data()
    {
        QTest::addColumn<int>("how"); // a Gone
        QTest::addColumn<bool>("settled"); // mapSettled() rather than map()
        QTest::addColumn<int>("size"); // of the input; < 0: endless
        QTest::addColumn<QList<int>>("expected"); // the values yielded (-1: a cancelled Result)
        QTest::addColumn<QString>("end");
        const QList<int> seven = upTo(7);
        const QList<int> sixThenCancelled = upTo(6) << -1;
        const struct {
            Gone how;
            const char* name;
        } hows[] = { { Gone::Destroyed, "destroyed in the loop" },
                     { Gone::ShutDown, "shut down" },
                     { Gone::ShutDownWaiting, "shut down, waiting" },
                     { Gone::ShutDownCancelling, "shut down, cancelling" } };
        for (const auto& [how, name] : hows) {
            for (const bool settled : { false, true }) {
                const QByteArray row = QByteArray(settled ? "mapSettled, " : "map, ") + name;
                if (how != Gone::ShutDownCancelling) {
                    QTest::newRow(row + ", 10 items") << int(how) << settled << 10 << seven << u"ShutdownError"_s;
                    QTest::newRow(row + ", endless") << int(how) << settled << -1 << seven << u"ShutdownError"_s;
                    QTest::newRow(row + ", 7 items (exhausted)") << int(how) << settled << 7 << seven << u"end"_s;
                } else if (!settled) {
                    // Item 6 was queued behind the running item 5: cancelled, it throws at its
                    // position first.
                    QTest::newRow(row + ", 10 items") << int(how) << settled << 10 << upTo(6) << u"CancelledError"_s;
                    QTest::newRow(row + ", 7 items (exhausted)")
                        << int(how) << settled << 7 << upTo(6) << u"CancelledError"_s;
                } else {
                    // mapSettled() yields the cancelled item 6, then tells whether the input was
                    // cut short.
                    QTest::newRow(row + ", 10 items")
                        << int(how) << settled << 10 << sixThenCancelled << u"ShutdownError"_s;
                    QTest::newRow(row + ", 7 items (exhausted)")
                        << int(how) << settled << 7 << sixThenCancelled << u"end"_s;
                }
            }
        }
    }
    void mapCutShortThrowsShutdownError()
    {
        QFETCH(int, how);
        QFETCH(bool, settled);
        QFETCH(int, size);
        QFETCH(QList<int>, expected);
        QFETCH(QString, end);
        run([](Gone how, bool settled, int size, QList<int> expected, QString end) -> QCoro::Task<void> {
            CountingInput input(size);
            auto pool = std::make_unique<TaskPoolExecutor>(1);
            QList<int> started;
            Gate hold; // holds item 5, when cancelling, so that item 6 stays queued behind it
            const bool cancelling = how == Gone::ShutDownCancelling;
            auto same = [&](int x) -> QCoro::Task<int> {
                started.append(x);
                if (cancelling && x == 5)
                    co_await hold;
                co_await nextTurn();
                co_return x;
            };
            auto afterEach = [&](int taken) -> QCoro::Task<void> {
                if (taken != 5)
                    co_return;
                if (cancelling)
                    co_await until([&] { return started.contains(5); });
                co_await makeGone(pool, how);
                hold.open();
            };
            const MapOptions options { .bufferSize = 2 };
            QList<int> values;
            QString ended;
            if (settled)
                ended = co_await drain(pool->mapSettled(options, same, input), values, afterEach);
            else
                ended = co_await drain(pool->map(options, same, input), values, afterEach);
            CO_COMPARE(values, expected);
            CO_COMPARE(ended, end);
            CO_COMPARE(input.pulled(), 7); // nothing read after the executor went
            CO_VERIFY(!started.contains(7));
            if (pool)
                co_await pool->shutdown();
        }(Gone(how), settled, size, expected, end));
    }

    // The executor destroyed while the iteration waits for an item, by someone other than the
    // consumer: the items submitted before are yielded, then ShutdownError.
    void mapDestroyedWhileAwaitingAnItem_data()
    {
        QTest::addColumn<bool>("settled");
        QTest::newRow("map") << false;
        QTest::newRow("mapSettled") << true;
    }
    void mapDestroyedWhileAwaitingAnItem()
    {
        QFETCH(bool, settled);
        run([](bool settled) -> QCoro::Task<void> {
            CountingInput input(10);
            auto pool = std::make_unique<TaskPoolExecutor>(1);
            Gate hold;
            auto same = [&](int x) -> QCoro::Task<int> {
                if (x == 5)
                    co_await hold;
                co_return x;
            };
            // Once the iteration asked for item 5 (held) and so submitted item 7, with a buffer
            // of 2.
            auto destroyer
                = [](std::unique_ptr<TaskPoolExecutor>& pool, CountingInput& input, Gate& hold) -> QCoro::Task<void> {
                co_await until([&] { return input.pulled() == 8; });
                pool.reset();
                hold.open();
            }(pool, input, hold);
            const MapOptions options { .bufferSize = 2 };
            QList<int> values;
            QString ended;
            if (settled)
                ended = co_await drain(pool->mapSettled(options, same, input), values, nothingMore);
            else
                ended = co_await drain(pool->map(options, same, input), values, nothingMore);
            co_await destroyer;
            CO_COMPARE(values, upTo(8));
            CO_COMPARE(ended, u"ShutdownError"_s);
            CO_COMPARE(input.pulled(), 8);
        }(settled));
    }

    // The executor shut down or destroyed while the map reads its next item (here by the input
    // itself, between the map's check of the executor and the item's submission; a shutdown from
    // another thread comes at the same point): that item is dropped and never runs, the ones
    // before are yielded, then ShutdownError. Also for an unbuffered map cut short during the
    // map() call.
    void mapExecutorGoneWhileReadingAnItem_data()
    {
        QTest::addColumn<bool>("destroy");
        QTest::addColumn<int>("bufferSize");
        QTest::addColumn<bool>("settled");
        QTest::newRow("shut down, buffer 2") << false << 2 << false;
        QTest::newRow("shut down, buffer 2, mapSettled") << false << 2 << true;
        QTest::newRow("destroyed, buffer 2") << true << 2 << false;
        QTest::newRow("destroyed, buffer 2, mapSettled") << true << 2 << true;
        QTest::newRow("shut down, no buffer (during the call)") << false << 0 << false;
        QTest::newRow("shut down, no buffer (during the call), mapSettled") << false << 0 << true;
    }
    void mapExecutorGoneWhileReadingAnItem()
    {
        QFETCH(bool, destroy);
        QFETCH(int, bufferSize);
        QFETCH(bool, settled);
        run([](bool destroy, int bufferSize, bool settled) -> QCoro::Task<void> {
            CountingInput input(6);
            auto pool = std::make_unique<TaskPoolExecutor>(2);
            input.onRead = [&](int item) {
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
            QList<int> started;
            auto same = [&](int x) -> QCoro::Task<int> {
                started.append(x);
                co_await nextTurn();
                co_return x;
            };
            QList<int> values;
            QString ended;
            if (settled)
                ended = co_await drain(pool->mapSettled(buffer(bufferSize), same, input), values, nothingMore);
            else
                ended = co_await drain(pool->map(buffer(bufferSize), same, input), values, nothingMore);
            CO_COMPARE(values, upTo(3));
            CO_COMPARE(ended, u"ShutdownError"_s);
            CO_COMPARE(input.pulled(), 4);
            std::sort(started.begin(), started.end());
            CO_COMPARE(started, upTo(3)); // item 3 was read, never started
            if (pool)
                co_await pool->shutdown();
        }(destroy, bufferSize, settled));
    }

    // ---- result types and the bound on workers -------------------------------------------------

    void mapMoveOnlyResults_data()
    {
        QTest::addColumn<bool>("asynchronous");
        QTest::addColumn<int>("bufferSize");
        QTest::newRow("plain function") << false << 0;
        QTest::newRow("plain function, buffer 2") << false << 2;
        QTest::newRow("coroutine") << true << 0;
        QTest::newRow("coroutine, buffer 2") << true << 2;
    }
    void mapMoveOnlyResults()
    {
        QFETCH(bool, asynchronous);
        QFETCH(int, bufferSize);
        run([](bool asynchronous, int bufferSize) -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            auto box = [](int x) { return std::make_unique<int>(10 * x); };
            auto boxLater = [](int x) -> QCoro::Task<std::unique_ptr<int>> {
                co_await nextTurn();
                co_return std::make_unique<int>(10 * x);
            };
            auto boxes = asynchronous ? pool.map(buffer(bufferSize), boxLater, std::views::iota(0, 5))
                                      : pool.map(buffer(bufferSize), box, std::views::iota(0, 5));
            std::vector<std::unique_ptr<int>> owned;
            QCORO_FOREACH(auto&& b, boxes)
            {
                owned.push_back(std::move(b));
            }
            QList<int> values;
            for (const auto& b : owned)
                values.append(b ? *b : -1);
            const QList<int> expected { 0, 10, 20, 30, 40 };
            CO_COMPARE(values, expected);
            co_await pool.shutdown();
        }(asynchronous, bufferSize));
    }

    void mapMaxWorkersBound_data()
    {
        QTest::addColumn<int>("maxWorkers");
        QTest::addColumn<int>("bufferSize");
        QTest::addColumn<int>("expectedPeak");
        QTest::newRow("1 worker") << 1 << 0 << 1;
        QTest::newRow("2 workers") << 2 << 0 << 2;
        QTest::newRow("3 workers") << 3 << 0 << 3;
        QTest::newRow("3 workers, buffer 8") << 3 << 8 << 3;
        // The item being awaited plus the n submitted ahead of it.
        QTest::newRow("3 workers, buffer 1") << 3 << 1 << 2;
        QTest::newRow("4 workers, buffer 2") << 4 << 2 << 3;
    }
    void mapMaxWorkersBound()
    {
        QFETCH(int, maxWorkers);
        QFETCH(int, bufferSize);
        QFETCH(int, expectedPeak);
        run([](int maxWorkers, int bufferSize, int expectedPeak) -> QCoro::Task<void> {
            Gate peakReached;
            int running = 0;
            int peak = 0;
            TaskPoolExecutor pool(maxWorkers);
            // No item ends before expectedPeak of them run at once (a lower bound would hang: the
            // watchdog), and items keep overlapping afterwards (a higher one would be seen).
            auto work = [&](int x) -> QCoro::Task<int> {
                peak = std::max(peak, ++running);
                if (running == expectedPeak)
                    peakReached.open();
                co_await peakReached;
                co_await nextTurn();
                co_await nextTurn();
                --running;
                co_return x;
            };
            QList<int> results;
            QCORO_FOREACH(int r, pool.map(buffer(bufferSize), work, std::views::iota(0, 20)))
            {
                results.append(r);
            }
            CO_COMPARE(results, upTo(20));
            CO_COMPARE(peak, expectedPeak);
            CO_COMPARE(pool.workerCount() <= maxWorkers, true);
            co_await pool.shutdown();
        }(maxWorkers, bufferSize, expectedPeak));
    }
};

QTEST_GUILESS_MAIN(tst_Map)
#include "tst_map.moc"
