// SPDX-License-Identifier: MIT
// The executor core: submit in both forms, results and exceptions, workers (lazy creation, reuse,
// saturation, names), introspection and lifecycle signals, setMaxWorkers, and destruction.
// Ports cf-taskpool's tests/test_task_pool.py and CPython's concurrent.futures executor tests.
#include "testutil.h"

#include <QPromise>
#include <QRegularExpression>
#include <QSignalSpy>

#include <functional>
#include <memory>
#include <stdexcept>

using namespace TestUtil;
using TaskPool::Future;
using TaskPool::TaskPoolExecutor;

namespace {

QCoro::Task<int> multiply(int x, int y)
{
    co_await sleep(1ms);
    co_return x* y;
}

struct DivisionByZero : std::domain_error {
    DivisionByZero() : std::domain_error("integer division or modulo by zero") { }
};

QCoro::Task<std::pair<int, int>> divmod(int x, int y, bool cancelIfZero)
{
    co_await sleep(1ms);
    if (y == 0) {
        if (cancelIfZero)
            throw TaskPool::CancelledError();
        throw DivisionByZero();
    }
    co_return std::pair(x / y, x % y);
}

//! Holds its task until the test opens the gate.
QCoro::Task<int> waitThen(Gate* gate, int value)
{
    co_await *gate;
    co_return value;
}

QCoro::Task<int> failAfter(Gate* gate, QString message)
{
    co_await *gate;
    throw std::runtime_error(message.toStdString());
}

struct MyObject {
    int i = 0;
};

QCoro::Task<int> useObject(std::shared_ptr<MyObject> object)
{
    co_await sleep(1ms);
    co_return object->i;
}

QCoro::Task<std::shared_ptr<MyObject>> createObject(int i)
{
    co_await sleep(1ms);
    co_return std::make_shared<MyObject>(MyObject { i });
}

//! Submits `fn(args...)` as a callable or, when \a asAwaitable, the awaitable it returns.
template <typename Fn, typename... Args> auto submitAs(TaskPoolExecutor& pool, bool asAwaitable, Fn fn, Args... args)
{
    if (asAwaitable)
        return pool.submit(fn(args...));
    return pool.submit(fn, args...);
}

//! Suspends until \a obj emits \a signal; resumes from the event loop, never inside the emission.
//! (QCoro 0.8's qCoro(signal) resumes through a queued call that may outlive its awaiter.)
template <typename Obj, typename Signal> struct NextEmission {
    Obj* obj;
    Signal signal;
    QMetaObject::Connection connection;

    ~NextEmission() { QObject::disconnect(connection); }
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> handle)
    {
        connection = QObject::connect(obj, signal, obj, [this, handle] {
            QObject::disconnect(connection);
            TaskPool::detail::resumeLater(handle);
        });
    }
    void await_resume() const noexcept { }
};

//! Resumes once \a pred holds, re-checking whenever \a obj emits \a signal (no polling).
template <typename Obj, typename Signal, typename Pred> QCoro::Task<void> until(Obj* obj, Signal signal, Pred pred)
{
    while (!pred())
        co_await NextEmission<Obj, Signal> { obj, signal, {} };
}

//! Counts the copies made of it (moves are free).
struct Counted {
    int* copies;
    explicit Counted(int* copies) : copies(copies) { }
    Counted(const Counted& other) : copies(other.copies) { ++*copies; }
    Counted(Counted&& other) noexcept = default;
    Counted& operator=(const Counted&) = delete;
    Counted& operator=(Counted&&) = delete;
};

template <typename... A>
concept CanSubmit = requires(TaskPoolExecutor& pool, A&&... a)
{
    pool.submit(std::forward<A>(a)...);
};

using MultiplyFn = QCoro::Task<int> (*)(int, int);
// The TypeError cases of the originals (missing, extra or wrong arguments, arguments with an
// awaitable) are compile-time errors here.
static_assert(CanSubmit<MultiplyFn, int, int>);
static_assert(!CanSubmit<MultiplyFn, int>, "missing argument");
static_assert(!CanSubmit<MultiplyFn, int, int, int>, "extra argument");
static_assert(!CanSubmit<MultiplyFn, QString, int>, "wrong argument type");
static_assert(CanSubmit<QCoro::Task<int>>);
static_assert(!CanSubmit<QCoro::Task<int>, int>, "arguments with an awaitable");
static_assert(!CanSubmit<int>, "neither callable nor awaitable");
// A future has the type that awaiting what the callable returns gives.
static_assert(std::is_same_v<decltype(std::declval<TaskPoolExecutor&>().submit(multiply, 1, 2)), Future<int>>);
static_assert(
    std::is_same_v<decltype(std::declval<TaskPoolExecutor&>().submit([] { return QString(); })), Future<QString>>);
static_assert(std::is_same_v<decltype(std::declval<TaskPoolExecutor&>().submit([] {})), Future<void>>);
static_assert(std::is_same_v<decltype(std::declval<TaskPoolExecutor&>().submit([] { return QFuture<double>(); })),
                             Future<double>>);

} // namespace

class tst_ExecutorCore : public QObject {
    Q_OBJECT

private:
    static void addFormColumn()
    {
        QTest::addColumn<bool>("asAwaitable");
        QTest::newRow("callable") << false;
        QTest::newRow("awaitable") << true;
    }

private Q_SLOTS:
    // ---- submit (cf-taskpool test_submit, test_submit_keyword) ---------------------------------

    void submit_data() { addFormColumn(); }
    void submit()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            auto future = submitAs(pool, asAwaitable, multiply, 2, 8);
            CO_VERIFY(future.taskId() != 0);
            CO_COMPARE(co_await future, 16);
            CO_COMPARE(future.result(), 16);
            CO_VERIFY(future.done());
            CO_VERIFY(!future.cancelled());
            CO_VERIFY(future.exception() == nullptr);
            co_await pool.shutdown();
        }(asAwaitable));
    }

    void argumentsAreDecayCopiedAtSubmit()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            auto concat = [](QString a, QString b) -> QCoro::Task<QString> {
                co_await sleep(1ms);
                co_return a + b;
            };
            QString first = QStringLiteral("a");
            auto future = pool.submit(concat, first, QStringLiteral("b"));
            first = QStringLiteral("changed"); // after submit: the task has its own copy
            CO_COMPARE(co_await future, QStringLiteral("ab"));

            int copies = 0;
            Counted counted(&copies);
            auto takesCounted = [](Counted c) -> QCoro::Task<int> {
                co_await sleep(1ms);
                co_return *c.copies;
            };
            auto copied = pool.submit(takesCounted, counted);
            CO_COMPARE(copies, 1); // copied once, at submit; moved from then on
            CO_COMPARE(co_await copied, 1);
            CO_COMPARE(copies, 1);
            co_await pool.shutdown();
        }());
    }

    void moveOnlyArgument()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            auto deref = [](std::unique_ptr<int> p) -> QCoro::Task<int> {
                co_await sleep(1ms);
                co_return *p;
            };
            auto future = pool.submit(deref, std::make_unique<int>(7));
            CO_COMPARE(co_await future, 7);
            co_await pool.shutdown();
        }());
    }

    void memberFunctionWithObject()
    {
        run([]() -> QCoro::Task<void> {
            struct Adder {
                int base;
                QCoro::Task<int> add(int x) const
                {
                    co_await sleep(1ms);
                    co_return base + x;
                }
            };
            TaskPoolExecutor pool(2);
            auto future = pool.submit(&Adder::add, Adder { 40 }, 2);
            CO_COMPARE(co_await future, 42);
            co_await pool.shutdown();
        }());
    }

    void plainValueCallables()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            auto number = pool.submit([](int x) { return x * 2; }, 21);
            auto text = pool.submit([] { return QStringLiteral("plain"); });
            bool ran = false;
            auto nothing = pool.submit([&ran] { ran = true; });
            CO_VERIFY(!ran); // never inside submit()
            CO_COMPARE(co_await number, 42);
            CO_COMPARE(co_await text, QStringLiteral("plain"));
            co_await nothing;
            CO_VERIFY(ran);
            auto throwing = pool.submit([]() -> int { throw std::runtime_error("plain failure"); });
            CO_VERIFY_THROWS(co_await throwing, std::runtime_error);
            co_await pool.shutdown();
        }());
    }

    void callableReturningQFuture()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto ready = pool.submit([] { return QtFuture::makeReadyFuture(5); });
            CO_COMPARE(co_await ready, 5);

            // The slot stays taken until the returned QFuture finishes.
            QPromise<int> promise;
            promise.start();
            auto later = pool.submit([future = promise.future()] { return future; });
            co_await until(&pool, &TaskPoolExecutor::activeCountChanged, [&] { return pool.activeCount() == 1; });
            auto queued = pool.submit([&later] { return later.done(); });
            CO_COMPARE(pool.pendingCount(), 1);
            CO_VERIFY(!later.done());
            promise.addResult(9);
            promise.finish();
            CO_COMPARE(co_await later, 9);
            CO_VERIFY(co_await queued); // it started only once the QFuture had finished

            // The same QFuture handed over as an awaitable.
            auto direct = pool.submit(QtFuture::makeReadyFuture(QStringLiteral("direct")));
            CO_COMPARE(co_await direct, QStringLiteral("direct"));
            co_await pool.shutdown();
        }());
    }

    void callableReturningCancelledQFutureDoesNotHang()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            // A QFuture cancelled and never finished: the task must still end.
            QFutureInterface<int> interface;
            interface.reportStarted();
            auto future = pool.submit([f = interface.future()] { return f; });
            co_await until(&pool, &TaskPoolExecutor::activeCountChanged, [&] { return pool.activeCount() == 1; });
            interface.cancel();
            CO_VERIFY_THROWS(co_await future, TaskPool::CancelledError);
            CO_VERIFY(future.cancelled());
            auto next = pool.submit(multiply, 3, 3);
            CO_COMPARE(co_await next, 9); // the worker was freed
            co_await pool.shutdown();
            interface.reportFinished();
        }());
    }

    // ---- exceptions (test_exception, test_cancellation, test_swallows_falsey_exceptions) -------

    void exception_data() { addFormColumn(); }
    void exception()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            QSignalSpy failed(&pool, &TaskPoolExecutor::taskFailed);
            auto future = submitAs(pool, asAwaitable, divmod, 2, 0, false);
            const DivisionByZero* caught = nullptr;
            try {
                co_await future;
            } catch (const DivisionByZero& e) {
                caught = &e; // the exception object lives on while an exception_ptr holds it
            }
            CO_VERIFY(caught);
            CO_VERIFY(!future.cancelled());
            CO_VERIFY(future.isCanceled()); // Qt's own view of a failed future
            const std::exception_ptr error = future.exception();
            CO_VERIFY(error != nullptr);
            try {
                std::rethrow_exception(error);
            } catch (const DivisionByZero& e) {
                CO_VERIFY(&e == caught); // the very exception the task threw (`is` in the original)
            }
            CO_VERIFY_THROWS(future.result(), DivisionByZero);
            CO_COMPARE(failed.count(), 1);
            CO_COMPARE(failed.at(0).at(0).toULongLong(), future.taskId());
            CO_COMPARE(failed.at(0).at(1).toString(), QStringLiteral("integer division or modulo by zero"));
            co_await pool.shutdown();
        }(asAwaitable));
    }

    void cancellation_data() { addFormColumn(); }
    void cancellation()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            QSignalSpy canceled(&pool, &TaskPoolExecutor::taskCanceled);
            QSignalSpy failed(&pool, &TaskPoolExecutor::taskFailed);
            auto future = submitAs(pool, asAwaitable, divmod, 2, 0, true);
            CO_VERIFY_THROWS(co_await future, TaskPool::CancelledError);
            CO_VERIFY(future.cancelled());
            CO_VERIFY(future.done());
            CO_VERIFY_THROWS(future.exception(), TaskPool::CancelledError);
            CO_COMPARE(canceled.count(), 1);
            CO_COMPARE(canceled.at(0).at(0).toULongLong(), future.taskId());
            CO_COMPARE(failed.count(), 0);
            co_await pool.shutdown();
        }(asAwaitable));
    }

    // Python's falsy exceptions have no C++ counterpart; the closest is an exception that is not a
    // std::exception, or has an empty message: it must not be lost either.
    void exceptionsThatLookEmptyAreKept_data() { addFormColumn(); }
    void exceptionsThatLookEmptyAreKept()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            QSignalSpy failed(&pool, &TaskPoolExecutor::taskFailed);
            auto throwInt = [](int value) -> QCoro::Task<int> {
                co_await sleep(1ms);
                throw value;
            };
            auto intFuture = submitAs(pool, asAwaitable, +throwInt, 0);
            int thrown = -1;
            try {
                co_await intFuture;
            } catch (int value) {
                thrown = value;
            }
            CO_COMPARE(thrown, 0);
            auto throwEmpty = []() -> QCoro::Task<void> {
                co_await sleep(1ms);
                throw std::runtime_error("");
            };
            auto emptyFuture = submitAs(pool, asAwaitable, +throwEmpty);
            CO_VERIFY_THROWS(co_await emptyFuture, std::runtime_error);
            CO_VERIFY(emptyFuture.exception() != nullptr);
            CO_COMPARE(failed.count(), 2);
            CO_COMPARE(failed.at(0).at(1).toString(), QStringLiteral("an exception not derived from std::exception"));
            co_await pool.shutdown();
        }(asAwaitable));
    }

    void throwingTaskNeverStopsItsWorker()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QSignalSpy started(&pool, &TaskPoolExecutor::taskStarted);
            auto throwsAtOnce = []() -> QCoro::Task<int> { throw std::runtime_error("before suspending"); };
            auto throwsLater = []() -> QCoro::Task<int> {
                co_await sleep(1ms);
                throw std::runtime_error("after suspending");
            };
            auto first = pool.submit(throwsAtOnce);
            auto second = pool.submit(throwsLater);
            auto third = pool.submit([]() -> int { throw std::logic_error("plain"); });
            auto fourth = pool.submit(multiply, 6, 7);
            CO_VERIFY_THROWS(co_await first, std::runtime_error);
            CO_VERIFY_THROWS(co_await second, std::runtime_error);
            CO_VERIFY_THROWS(co_await third, std::logic_error);
            CO_COMPARE(co_await fourth, 42);
            CO_COMPARE(started.count(), 4);
            for (const auto& args : started)
                CO_COMPARE(args.at(1).toString(), pool.taskNamePrefix() + QStringLiteral("_0"));
            CO_COMPARE(pool.workerCount(), 1);
            co_await pool.shutdown();
        }());
    }

    // ---- references (test_no_stale_references, test_free_future_reference) ---------------------

    void noStaleReferences_data()
    {
        QTest::addColumn<bool>("asAwaitable");
        QTest::addColumn<bool>("keepFuture");
        QTest::newRow("callable, future kept") << false << true;
        QTest::newRow("awaitable, future kept") << true << true;
        QTest::newRow("callable, future discarded") << false << false;
        QTest::newRow("awaitable, future discarded") << true << false;
    }
    void noStaleReferences()
    {
        QFETCH(bool, asAwaitable);
        QFETCH(bool, keepFuture);
        run([](bool asAwaitable, bool keepFuture) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            auto object = std::make_shared<MyObject>(MyObject { 1 });
            std::weak_ptr<MyObject> weak = object;
            if (keepFuture) {
                auto future = submitAs(pool, asAwaitable, useObject, object);
                object.reset();
                CO_VERIFY(!weak.expired()); // the task holds it
                CO_COMPARE(co_await future, 1);
                CO_VERIFY(weak.expired()); // released when the task ended, the future still alive
            } else {
                QSignalSpy idle(&pool, &TaskPoolExecutor::idle);
                (void)submitAs(pool, asAwaitable, useObject, object); // deliberately discarded
                object.reset();
                CO_VERIFY(!weak.expired());
                co_await until(&pool, &TaskPoolExecutor::idle, [&] { return idle.count() > 0; });
                CO_VERIFY(weak.expired());
            }
            co_await pool.shutdown();
        }(asAwaitable, keepFuture));
    }

    void cancelledQueuedTaskReleasesItsArguments()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto blocker = pool.submit(waitThen, &gate, 0);
            auto object = std::make_shared<MyObject>();
            std::weak_ptr<MyObject> weak = object;
            auto queued = pool.submit(useObject, std::move(object));
            CO_VERIFY(!weak.expired());
            CO_VERIFY(queued.cancel());
            CO_VERIFY(weak.expired());
            gate.open();
            co_await blocker;
            co_await pool.shutdown();
        }());
    }

    void freeResultReference_data() { addFormColumn(); }
    void freeResultReference()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            std::weak_ptr<MyObject> weak;
            {
                auto future = submitAs(pool, asAwaitable, createObject, 1);
                auto result = co_await future;
                CO_COMPARE(result->i, 1);
                weak = result;
            }
            CO_VERIFY(weak.expired()); // neither the pool nor the job kept the result
            co_await pool.shutdown();
        }(asAwaitable));
    }

    // ---- construction (test_max_workers_negative, test_default_workers) ------------------------

    void maxWorkersMustBePositive_data()
    {
        QTest::addColumn<int>("maxWorkers");
        QTest::newRow("zero") << 0;
        QTest::newRow("negative") << -1;
    }
    void maxWorkersMustBePositive()
    {
        QFETCH(int, maxWorkers);
        try {
            TaskPoolExecutor pool(maxWorkers);
            QFAIL("no exception");
        } catch (const std::invalid_argument& e) {
            QCOMPARE(QString::fromUtf8(e.what()), QStringLiteral("maxWorkers must be greater than 0"));
        }
        TaskPoolExecutor pool(2);
        QSignalSpy changed(&pool, &TaskPoolExecutor::maxWorkersChanged);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, pool.setMaxWorkers(maxWorkers));
        QCOMPARE(pool.maxWorkers(), 2);
        QCOMPARE(changed.count(), 0);
    }

    void defaultWorkers()
    {
        TaskPoolExecutor pool;
        QCOMPARE(pool.maxWorkers(), QThread::idealThreadCount());
        QCOMPARE(pool.workerCount(), 0); // lazily created
        QVERIFY(pool.workerNames().isEmpty());
        QVERIFY(!pool.isShutdown());
    }

    // ---- workers (test_saturation, test_idle_worker_reuse, test_task_names) --------------------

    void saturation_data() { addFormColumn(); }
    void saturation()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(4);
            Gate gate;
            QList<Future<int>> futures;
            for (int i = 0; i < 15 * pool.maxWorkers(); ++i)
                futures.append(submitAs(pool, asAwaitable, waitThen, &gate, i));
            CO_COMPARE(pool.workerCount(), pool.maxWorkers());
            co_await until(&pool, &TaskPoolExecutor::activeCountChanged, [&] { return pool.activeCount() == 4; });
            CO_COMPARE(pool.workerCount(), 4);
            CO_COMPARE(pool.pendingCount(), 15 * 4 - 4);
            gate.open();
            co_await pool.shutdown();
            for (int i = 0; i < futures.size(); ++i)
                CO_COMPARE(futures[i].result(), i);
            CO_COMPARE(pool.workerCount(), 0);
        }(asAwaitable));
    }

    void concurrencyNeverExceedsMaxWorkers()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            int running = 0;
            int peak = 0;
            auto task = [&running, &peak](int ms) -> QCoro::Task<int> {
                peak = std::max(peak, ++running);
                co_await sleep(std::chrono::milliseconds(ms));
                --running;
                co_return ms;
            };
            QList<Future<int>> futures;
            for (int i = 0; i < 20; ++i)
                futures.append(pool.submit(task, i % 4));
            int peakActive = 0;
            auto connection = QObject::connect(&pool, &TaskPoolExecutor::activeCountChanged,
                                               [&peakActive](int n) { peakActive = std::max(peakActive, n); });
            for (auto& future : futures)
                co_await future;
            QObject::disconnect(connection);
            CO_COMPARE(peak, 3);
            CO_COMPARE(peakActive, 3);
            co_await pool.shutdown();
        }());
    }

    void idleWorkerReuse_data() { addFormColumn(); }
    void idleWorkerReuse()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool;
            QSignalSpy started(&pool, &TaskPoolExecutor::taskStarted);
            CO_COMPARE(co_await submitAs(pool, asAwaitable, multiply, 21, 2), 42);
            CO_COMPARE(co_await submitAs(pool, asAwaitable, multiply, 6, 7), 42);
            CO_COMPARE(co_await submitAs(pool, asAwaitable, multiply, 3, 14), 42);
            CO_COMPARE(pool.workerCount(), 1);
            CO_COMPARE(started.count(), 3);
            const QString name = pool.taskNamePrefix() + QStringLiteral("_0");
            for (const auto& args : started)
                CO_COMPARE(args.at(1).toString(), name);
            CO_COMPARE(pool.workerNames(), QStringList { name });
            co_await pool.shutdown();
        }(asAwaitable));
    }

    void workerNames_data()
    {
        QTest::addColumn<QString>("prefix");
        QTest::addColumn<QString>("pattern");
        QTest::newRow("default") << QString() << QStringLiteral("^TaskPoolExecutor-\\d+_[0-4]$");
        QTest::newRow("SpecialPool") << QStringLiteral("SpecialPool") << QStringLiteral("^SpecialPool_[0-4]$");
    }
    void workerNames()
    {
        QFETCH(QString, prefix);
        QFETCH(QString, pattern);
        run([](QString prefix, QRegularExpression pattern) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5, prefix);
            QSignalSpy started(&pool, &TaskPoolExecutor::taskStarted);
            Gate gate;
            QStringList seenInside;
            int namedAfterSuspending = 0;
            auto task = [&gate, &seenInside, &namedAfterSuspending]() -> QCoro::Task<int> {
                seenInside.append(TaskPoolExecutor::currentWorkerName());
                const bool suspends = !gate.isOpen();
                co_await gate;
                // Only until the first suspension: afterwards the coroutine runs from the event loop.
                if (suspends && !TaskPoolExecutor::currentWorkerName().isEmpty())
                    ++namedAfterSuspending;
                co_return 0;
            };
            QList<Future<int>> futures;
            for (int i = 0; i < 10; ++i)
                futures.append(pool.submit(task));
            CO_VERIFY(TaskPoolExecutor::currentWorkerName().isEmpty());
            co_await until(&pool, &TaskPoolExecutor::activeCountChanged, [&] { return pool.activeCount() == 5; });
            QStringList names = pool.workerNames();
            CO_COMPARE(names.size(), 5);
            for (const QString& name : names)
                CO_VERIFY2(pattern.match(name).hasMatch(), qPrintable(name));
            names.sort();
            CO_COMPARE(names.removeDuplicates(), qsizetype(0));
            QStringList startedNames;
            for (const auto& args : started)
                startedNames.append(args.at(1).toString());
            CO_COMPARE(seenInside, startedNames);
            CO_VERIFY(!seenInside.contains(QString()));
            startedNames.sort();
            CO_COMPARE(startedNames, names);
            gate.open();
            for (auto& future : futures)
                co_await future;
            CO_COMPARE(namedAfterSuspending, 0);
            for (const auto& args : started)
                CO_VERIFY(pattern.match(args.at(1).toString()).hasMatch());
            co_await pool.shutdown();
            CO_VERIFY(pool.workerNames().isEmpty());
        }(prefix, QRegularExpression(pattern)));
    }

    void defaultPrefixIsUnique()
    {
        TaskPoolExecutor first;
        TaskPoolExecutor second;
        const QRegularExpression pattern(QStringLiteral("^TaskPoolExecutor-\\d+$"));
        QVERIFY(pattern.match(first.taskNamePrefix()).hasMatch());
        QVERIFY(pattern.match(second.taskNamePrefix()).hasMatch());
        QVERIFY(first.taskNamePrefix() != second.taskNamePrefix());
        TaskPoolExecutor named(1, QStringLiteral("Fetch"));
        QCOMPARE(named.taskNamePrefix(), QStringLiteral("Fetch"));
    }

    void setTaskNamePrefix()
    {
        TaskPoolExecutor pool(1);
        const QString original = pool.taskNamePrefix();
        QSignalSpy changed(&pool, &TaskPoolExecutor::taskNamePrefixChanged);
        pool.setTaskNamePrefix(QStringLiteral("Renamed"));
        QCOMPARE(pool.taskNamePrefix(), QStringLiteral("Renamed"));
        pool.setTaskNamePrefix(QStringLiteral("Renamed"));
        QCOMPARE(changed.count(), 1);
        pool.setTaskNamePrefix(QString()); // back to the default
        QCOMPARE(pool.taskNamePrefix(), original);
        QCOMPARE(changed.count(), 2);
        QCOMPARE(pool.property("taskNamePrefix").toString(), original);
        run([](TaskPoolExecutor& pool) -> QCoro::Task<void> {
            pool.setTaskNamePrefix(QStringLiteral("Later"));
            auto future = pool.submit([] { return TaskPoolExecutor::currentWorkerName(); });
            CO_COMPARE(co_await future, QStringLiteral("Later_0"));
            co_await pool.shutdown();
        }(pool));
    }

    // ---- introspection and lifecycle signals ---------------------------------------------------

    void lifecycleSignalsAndCounts()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2, QStringLiteral("Life"));
            QSignalSpy started(&pool, &TaskPoolExecutor::taskStarted);
            QSignalSpy finished(&pool, &TaskPoolExecutor::taskFinished);
            QSignalSpy failed(&pool, &TaskPoolExecutor::taskFailed);
            QSignalSpy canceled(&pool, &TaskPoolExecutor::taskCanceled);
            QSignalSpy idle(&pool, &TaskPoolExecutor::idle);
            QSignalSpy active(&pool, &TaskPoolExecutor::activeCountChanged);
            QSignalSpy pending(&pool, &TaskPoolExecutor::pendingCountChanged);
            QSignalSpy workers(&pool, &TaskPoolExecutor::workerCountChanged);
            Gate succeed, fail, never;
            auto a = pool.submit(waitThen, &succeed, 1);
            auto b = pool.submit(failAfter, &fail, QStringLiteral("boom"));
            auto c = pool.submit(waitThen, &never, 3);
            CO_VERIFY(a.taskId() != b.taskId() && b.taskId() != c.taskId() && a.taskId() != c.taskId());
            // Nothing starts inside submit(); workers are created for the first two.
            CO_COMPARE(pool.pendingCount(), 3);
            CO_COMPARE(pool.activeCount(), 0);
            CO_COMPARE(pool.workerCount(), 2);
            CO_COMPARE(pool.property("pendingCount").toInt(), 3);
            CO_COMPARE(pool.property("workerCount").toInt(), 2);
            CO_COMPARE(pending.count(), 3);
            CO_COMPARE(workers.count(), 2);
            CO_COMPARE(started.count(), 0);

            co_await until(&pool, &TaskPoolExecutor::activeCountChanged, [&] { return pool.activeCount() == 2; });
            CO_COMPARE(pool.pendingCount(), 1);
            CO_COMPARE(pool.property("activeCount").toInt(), 2);
            CO_COMPARE(started.count(), 2);
            const QSet<quint64> startedIds { started.at(0).at(0).toULongLong(), started.at(1).at(0).toULongLong() };
            CO_VERIFY(startedIds == (QSet<quint64> { a.taskId(), b.taskId() }));
            const QSet<QString> startedNames { started.at(0).at(1).toString(), started.at(1).at(1).toString() };
            CO_VERIFY(startedNames == (QSet<QString> { QStringLiteral("Life_0"), QStringLiteral("Life_1") }));

            CO_VERIFY(c.cancel());
            CO_COMPARE(pool.pendingCount(), 0);
            CO_COMPARE(canceled.count(), 1);
            CO_COMPARE(canceled.at(0).at(0).toULongLong(), c.taskId());
            CO_COMPARE(idle.count(), 0);

            succeed.open();
            CO_COMPARE(co_await a, 1);
            CO_COMPARE(finished.count(), 1);
            CO_COMPARE(finished.at(0).at(0).toULongLong(), a.taskId());
            CO_COMPARE(idle.count(), 0);
            fail.open();
            CO_VERIFY_THROWS(co_await b, std::runtime_error);
            CO_COMPARE(failed.count(), 1);
            CO_COMPARE(failed.at(0).at(0).toULongLong(), b.taskId());
            CO_COMPARE(failed.at(0).at(1).toString(), QStringLiteral("boom"));
            CO_COMPARE(pool.activeCount(), 0);
            CO_COMPARE(idle.count(), 1);

            // One terminal signal per task, and no start for the cancelled one.
            CO_COMPARE(finished.count() + failed.count() + canceled.count(), 3);
            CO_COMPARE(started.count(), 2);
            QList<int> activeValues;
            for (const auto& args : active)
                activeValues.append(args.at(0).toInt());
            CO_COMPARE(activeValues, (QList<int> { 1, 2, 1, 0 }));
            CO_COMPARE(pending.last().at(0).toInt(), 0);
            QList<int> workerValues;
            for (const auto& args : workers)
                workerValues.append(args.at(0).toInt());
            CO_COMPARE(workerValues, (QList<int> { 1, 2 }));

            QSignalSpy shutdownChanged(&pool, &TaskPoolExecutor::isShutdownChanged);
            co_await pool.shutdown();
            CO_COMPARE(pool.workerCount(), 0);
            CO_COMPARE(workers.last().at(0).toInt(), 0);
            CO_COMPARE(shutdownChanged.count(), 1);
            CO_VERIFY(pool.property("isShutdown").toBool());
        }());
    }

    void idleIsEmittedEachTimeThePoolDrains()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            QSignalSpy idle(&pool, &TaskPoolExecutor::idle);
            auto first = pool.submit(multiply, 1, 1);
            auto second = pool.submit(multiply, 2, 2);
            co_await first;
            co_await second;
            CO_COMPARE(idle.count(), 1);
            CO_COMPARE(co_await pool.submit(multiply, 3, 3), 9);
            CO_COMPARE(idle.count(), 2);
            co_await pool.shutdown();
            CO_COMPARE(idle.count(), 2);
        }());
    }

    // ---- setMaxWorkers ---------------------------------------------------------------------------

    void setMaxWorkersRaisesTheBound()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QSignalSpy changed(&pool, &TaskPoolExecutor::maxWorkersChanged);
            Gate gate;
            QList<Future<int>> futures;
            for (int i = 0; i < 4; ++i)
                futures.append(pool.submit(waitThen, &gate, i));
            co_await until(&pool, &TaskPoolExecutor::activeCountChanged, [&] { return pool.activeCount() == 1; });
            CO_COMPARE(pool.pendingCount(), 3);
            pool.setMaxWorkers(3);
            CO_COMPARE(changed.count(), 1);
            CO_COMPARE(changed.at(0).at(0).toInt(), 3);
            CO_COMPARE(pool.maxWorkers(), 3);
            CO_COMPARE(pool.workerCount(), 3); // waiting work gets the new workers at once
            co_await until(&pool, &TaskPoolExecutor::activeCountChanged, [&] { return pool.activeCount() == 3; });
            CO_COMPARE(pool.pendingCount(), 1);
            pool.setMaxWorkers(3);
            CO_COMPARE(changed.count(), 1);
            gate.open();
            for (int i = 0; i < futures.size(); ++i)
                CO_COMPARE(co_await futures[i], i);
            CO_COMPARE(pool.workerCount(), 3);
            co_await pool.shutdown();
        }());
    }

    void setMaxWorkersLowersTheBound()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3, QStringLiteral("Low"));
            Gate first, second;
            QList<Future<int>> running;
            for (int i = 0; i < 3; ++i)
                running.append(pool.submit(waitThen, &first, i));
            co_await until(&pool, &TaskPoolExecutor::activeCountChanged, [&] { return pool.activeCount() == 3; });
            pool.setMaxWorkers(1);
            CO_COMPARE(pool.maxWorkers(), 1);
            CO_COMPARE(pool.workerCount(), 3); // busy workers finish their task first
            CO_COMPARE(pool.activeCount(), 3);
            QList<Future<int>> queued;
            for (int i = 0; i < 2; ++i)
                queued.append(pool.submit(waitThen, &second, 10 + i));
            CO_COMPARE(pool.workerCount(), 3);
            // No task may start while as many run as the new bound allows.
            int startedOverBound = 0;
            auto connection = QObject::connect(&pool, &TaskPoolExecutor::taskStarted, [&] {
                if (pool.activeCount() > pool.maxWorkers())
                    ++startedOverBound;
            });
            first.open();
            for (auto& future : running)
                co_await future;
            co_await until(&pool, &TaskPoolExecutor::workerCountChanged, [&] { return pool.workerCount() == 1; });
            CO_COMPARE(pool.workerNames(), QStringList { QStringLiteral("Low_0") });
            co_await until(&pool, &TaskPoolExecutor::activeCountChanged, [&] { return pool.activeCount() == 1; });
            CO_COMPARE(pool.pendingCount(), 1);
            second.open();
            CO_COMPARE(co_await queued[0], 10);
            CO_COMPARE(co_await queued[1], 11);
            QObject::disconnect(connection);
            CO_COMPARE(startedOverBound, 0);
            CO_COMPARE(pool.workerCount(), 1);

            // Idle workers beyond a lowered bound leave at once.
            pool.setMaxWorkers(3);
            Gate third;
            QList<Future<int>> more;
            for (int i = 0; i < 3; ++i)
                more.append(pool.submit(waitThen, &third, i));
            CO_COMPARE(pool.workerCount(), 3);
            third.open();
            for (auto& future : more)
                co_await future;
            CO_COMPARE(pool.workerCount(), 3);
            pool.setMaxWorkers(1);
            CO_COMPARE(pool.workerCount(), 1);
            CO_COMPARE(pool.workerNames(), QStringList { QStringLiteral("Low_0") });
            CO_COMPARE(co_await pool.submit(multiply, 2, 2), 4);
            co_await pool.shutdown();
        }());
    }

    // ---- destruction -----------------------------------------------------------------------------

    void destroyingTheExecutorLetsWorkComplete()
    {
        run([]() -> QCoro::Task<void> {
            auto* pool = new TaskPoolExecutor(1);
            QSignalSpy destroyed(pool, &QObject::destroyed);
            Gate gate;
            auto running = pool->submit(waitThen, &gate, 1);
            auto queued = pool->submit(multiply, 2, 3);
            auto cancelled = pool->submit(multiply, 4, 4);
            co_await until(pool, &TaskPoolExecutor::activeCountChanged, [&] { return pool->activeCount() == 1; });
            cancelled.cancel();
            delete pool;
            CO_COMPARE(destroyed.count(), 1);
            CO_VERIFY(!running.done());
            CO_VERIFY(!queued.done());
            gate.open();
            CO_COMPARE(co_await running, 1);
            CO_COMPARE(co_await queued, 6);
            CO_VERIFY(cancelled.cancelled());
        }());
    }

    void destroyingTheExecutorWithQueuedWorkOnly()
    {
        run([]() -> QCoro::Task<void> {
            auto pool = std::make_unique<TaskPoolExecutor>(2);
            QList<Future<int>> futures;
            for (int i = 0; i < 6; ++i)
                futures.append(pool->submit(multiply, i, 2));
            pool.reset(); // before any worker got to run
            for (int i = 0; i < 6; ++i)
                CO_COMPARE(co_await futures[i], i * 2);
        }());
    }

    void taskDeletesItsOwnExecutor_data()
    {
        QTest::addColumn<bool>("afterSuspending");
        QTest::newRow("synchronously") << false;
        QTest::newRow("after suspending") << true;
    }
    void taskDeletesItsOwnExecutor()
    {
        QFETCH(bool, afterSuspending);
        run([](bool afterSuspending) -> QCoro::Task<void> {
            TaskPoolExecutor* pool = new TaskPoolExecutor(1);
            auto deleteExecutor = [&pool, afterSuspending]() -> QCoro::Task<int> {
                if (afterSuspending)
                    co_await sleep(1ms);
                delete std::exchange(pool, nullptr);
                co_await sleep(1ms);
                co_return 1;
            };
            auto first = pool->submit(deleteExecutor);
            auto second = pool->submit(multiply, 5, 5);
            CO_COMPARE(co_await first, 1);
            CO_VERIFY(pool == nullptr);
            CO_COMPARE(co_await second, 25);
        }(afterSuspending));
    }

    // CPython bpo-45021 has a task submit to its own pool until the pool shuts down: the submit
    // that comes too late fails inside its task, and the pool is not harmed.
    void taskSubmitsToItsOwnExecutor()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QList<Future<int>> chain;
            Gate third;
            std::function<QCoro::Task<int>(int)> link = [&](int n) -> QCoro::Task<int> {
                co_await sleep(0ms);
                chain.append(pool.submit(link, n + 1));
                if (n == 3)
                    third.open();
                co_return n;
            };
            chain.append(pool.submit(link, 0));
            co_await third;
            co_await pool.shutdown();
            CO_VERIFY(chain.size() >= 5);
            for (int i = 0; i < chain.size() - 1; ++i)
                CO_COMPARE(chain[i].result(), i);
            CO_VERIFY_THROWS(co_await chain.last(), TaskPool::ShutdownError);
        }());
    }
};

QTEST_GUILESS_MAIN(tst_ExecutorCore)
#include "tst_executorcore.moc"
