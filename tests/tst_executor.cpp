// SPDX-License-Identifier: MIT
// The executor core: submit in both forms, results and exceptions, workers (lazy creation, reuse,
// saturation, names), introspection and lifecycle signals, setMaxWorkers, and destruction.
// Ports cf-taskpool's tests/test_task_pool.py and CPython's concurrent.futures executor tests.
#include "testutil.h"

#include <QPointer>
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

//! A finished QFuture holding \a value (QtFuture::makeReadyFuture is deprecated from Qt 6.6, and
//! its replacement makeReadyValueFuture is not in 6.4).
template <typename T> QFuture<T> readyFuture(T value)
{
    QPromise<T> promise;
    promise.start();
    promise.addResult(std::move(value));
    promise.finish();
    return promise.future();
}

QCoro::Task<int> adivmod(int x, int y)
{
    co_await TestUtil::sleep(1ms);
    if (y == 0)
        throw std::domain_error("division by zero");
    co_return x / y;
}

QCoro::Task<int> cancelIfZero(int x, int y)
{
    co_await TestUtil::sleep(1ms);
    if (y == 0)
        throw TaskPool::CancelledError();
    co_return x / y;
}

QCoro::Task<int> failAfter(Gate* gate, QString message)
{
    co_await *gate;
    throw std::runtime_error(message.toStdString());
}

QCoro::Task<QString> capture(int number, QString text, QList<int> list)
{
    co_await TestUtil::sleep(1ms);
    QStringList parts { QString::number(number), text };
    for (int item : list)
        parts.append(QString::number(item));
    co_return parts.join(u',');
}

QCoro::Task<int> throwNotAnException(int code)
{
    co_await TestUtil::sleep(1ms);
    throw NotAnException { code };
}

struct MyObject {
    int value;
    QCoro::Task<int> method() const
    {
        co_await TestUtil::sleep(1ms);
        co_return value;
    }
    int plain(int add) const { return value + add; }
};

QCoro::Task<int> readObject(std::shared_ptr<MyObject> object)
{
    co_await TestUtil::sleep(1ms);
    co_return object->value;
}

QCoro::Task<std::shared_ptr<MyObject>> createObject(int value)
{
    co_await TestUtil::sleep(1ms);
    co_return std::make_shared<MyObject>(MyObject { value });
}

//! Counts copies and live instances: arguments are decay-copied once and dropped when the task ends.
struct Counted {
    static inline int copies = 0;
    static inline int alive = 0;
    Counted() { ++alive; }
    Counted(const Counted&) { ++copies, ++alive; }
    Counted(Counted&&) noexcept { ++alive; }
    ~Counted() { --alive; }
};

template <typename... A>
concept CanSubmit = requires(TaskPoolExecutor& pool, A&&... a)
{
    pool.submit(std::forward<A>(a)...);
};

} // namespace

class tst_Executor : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void submit_data() { addSubmitForms(); }
    void submit()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            auto future = submitAs(pool, asAwaitable, amul, 2, 8);
            CO_VERIFY(future.taskId() != 0);
            CO_COMPARE(co_await future, 16);
            CO_COMPARE(future.result(), 16);
            CO_VERIFY(future.done());
            CO_VERIFY(!future.cancelled());
            CO_VERIFY(future.exception() == nullptr);
            co_await pool.shutdown();
        }(asAwaitable));
    }

    // Python's keyword arguments have no C++ counterpart: what remains is arguments of several
    // types, and calls that do not fit being rejected (at compile time here).
    void submitArguments_data() { addSubmitForms(); }
    void submitArguments()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            auto future = submitAs(pool, asAwaitable, capture, 1, QStringLiteral("two"), QList<int> { 3, 4 });
            CO_COMPARE(co_await future, QStringLiteral("1,two,3,4"));
            CO_COMPARE(future.result(), QStringLiteral("1,two,3,4"));
            co_await pool.shutdown();
        }(asAwaitable));
    }

    void submitRejectsCallsThatDoNotFit()
    {
        static_assert(CanSubmit<decltype(&amul), int, int>);
        // A callable with arguments that do not fit (missing, too many, wrong type) fails with a
        // static_assert that says what to do: tests/compile_fail.
        static_assert(!CanSubmit<QCoro::Task<int>, int>, "arguments with an awaitable");
        static_assert(!CanSubmit<>, "nothing to run");
        static_assert(!CanSubmit<int>, "neither callable nor awaitable");
        static_assert(CanSubmit<QCoro::Task<int>>);
        // A future has the type that awaiting what the callable returns gives.
        static_assert(std::is_same_v<decltype(std::declval<TaskPoolExecutor&>().submit(amul, 1, 2)), Future<int>>);
        static_assert(std::is_same_v<decltype(std::declval<TaskPoolExecutor&>().submit([] { return QString(); })),
                                     Future<QString>>);
        static_assert(std::is_same_v<decltype(std::declval<TaskPoolExecutor&>().submit([] {})), Future<void>>);
        static_assert(
            std::is_same_v<decltype(std::declval<TaskPoolExecutor&>().submit([] { return QFuture<double>(); })),
                           Future<double>>);
    }

    void argumentsAreDecayCopiedAtSubmit()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QString text = QStringLiteral("before");
            auto future = pool.submit([](QString s) { return s; }, text);
            text = QStringLiteral("after"); // the task has not started yet: it must see its own copy
            CO_COMPARE(pool.activeCount(), 0);
            CO_COMPARE(co_await future, QStringLiteral("before"));

            auto moved = pool.submit([](std::unique_ptr<int> p) { return *p; }, std::make_unique<int>(7));
            CO_COMPARE(co_await moved, 7);

            Counted::copies = 0;
            Counted::alive = 0;
            {
                Counted counted;
                auto counting
                    = pool.submit([](Counted) -> QCoro::Task<void> { co_await TestUtil::sleep(1ms); }, counted);
                CO_COMPARE(Counted::copies, 1); // one copy at submit, moves afterwards
                co_await counting;
                CO_COMPARE(Counted::alive, 1); // only `counted` itself; the future is still held
            }
            CO_COMPARE(Counted::copies, 1);
            CO_COMPARE(Counted::alive, 0);
            co_await pool.shutdown();
        }());
    }

    void exceptionStoredAndRethrown_data() { addSubmitForms(); }
    void exceptionStoredAndRethrown()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            QSignalSpy failed(&pool, &TaskPoolExecutor::taskFailed);
            auto future = submitAs(pool, asAwaitable, adivmod, 2, 0);
            const std::exception* caught = nullptr;
            try {
                co_await future;
            } catch (const std::domain_error& e) {
                caught = &e;
            }
            CO_VERIFY(caught);
            CO_VERIFY(!future.cancelled());
            CO_VERIFY(future.isCanceled()); // Qt's own view of a failed future
            CO_VERIFY(future.done());
            CO_VERIFY(future.exception() != nullptr);
            // exception() hands back the very object that was thrown, as Python's `is` check.
            const std::exception* again = nullptr;
            try {
                std::rethrow_exception(future.exception());
            } catch (const std::domain_error& e) {
                again = &e;
            }
            CO_VERIFY(again == caught);
            CO_VERIFY_THROWS(future.result(), std::domain_error);
            CO_COMPARE(failed.count(), 1);
            CO_COMPARE(failed.at(0).at(0).toULongLong(), future.taskId());
            CO_COMPARE(failed.at(0).at(1).toString(), QStringLiteral("division by zero"));
            co_await pool.shutdown();
        }(asAwaitable));
    }

    void taskRaisingCancelledErrorEndsCancelled_data() { addSubmitForms(); }
    void taskRaisingCancelledErrorEndsCancelled()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            QSignalSpy canceled(&pool, &TaskPoolExecutor::taskCanceled);
            QSignalSpy failed(&pool, &TaskPoolExecutor::taskFailed);
            auto future = submitAs(pool, asAwaitable, cancelIfZero, 2, 0);
            CO_VERIFY_THROWS(co_await future, TaskPool::CancelledError);
            CO_VERIFY(future.cancelled());
            CO_VERIFY(future.done());
            CO_VERIFY_THROWS(future.exception(), TaskPool::CancelledError);
            co_await pool.shutdown();
            CO_COMPARE(canceled.count(), 1);
            CO_COMPARE(canceled.at(0).at(0).toULongLong(), future.taskId());
            CO_COMPARE(failed.count(), 0);
        }(asAwaitable));
    }

    // Port of gh-132063 (falsey exceptions must not be lost): here, exceptions of any type.
    void exceptionNotDerivedFromStdException_data() { addSubmitForms(); }
    void exceptionNotDerivedFromStdException()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            QSignalSpy failed(&pool, &TaskPoolExecutor::taskFailed);
            auto future = submitAs(pool, asAwaitable, throwNotAnException, 42);
            int code = 0;
            try {
                co_await future;
            } catch (const NotAnException& e) {
                code = e.code;
            }
            CO_COMPARE(code, 42);
            CO_VERIFY(future.exception());
            CO_VERIFY_THROWS(future.result(), NotAnException);
            CO_COMPARE(failed.count(), 1);
            CO_VERIFY(!failed.at(0).at(1).toString().isEmpty());

            auto thrownInt = pool.submit([]() -> int { throw 7; });
            CO_VERIFY_THROWS(co_await thrownInt, int);
            co_await pool.shutdown();
        }(asAwaitable));
    }

    void throwingTaskNeverStopsItsWorker()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QSignalSpy workers(&pool, &TaskPoolExecutor::workerCountChanged);
            QSignalSpy started(&pool, &TaskPoolExecutor::taskStarted);
            auto failing = pool.submit(adivmod, 1, 0);
            auto throwingSync = pool.submit([]() -> int { throw std::runtime_error("synchronous"); });
            auto throwsAtOnce = pool.submit([]() -> QCoro::Task<int> { throw std::logic_error("before suspending"); });
            auto next = pool.submit(amul, 6, 7);
            CO_VERIFY_THROWS(co_await failing, std::domain_error);
            CO_VERIFY_THROWS(co_await throwingSync, std::runtime_error);
            CO_VERIFY_THROWS(co_await throwsAtOnce, std::logic_error);
            CO_COMPARE(co_await next, 42);
            CO_COMPARE(started.count(), 4);
            CO_COMPARE(workers.count(), 1); // one worker made, never replaced
            CO_COMPARE(pool.workerCount(), 1);
            for (const auto& args : started)
                CO_COMPARE(args.at(1).toString(), pool.taskNamePrefix() + QStringLiteral("_0"));
            co_await pool.shutdown();
        }());
    }

    // CPython issue #16284: the executor keeps no reference to a task's callable or arguments.
    void noStaleReferences_data()
    {
        QTest::addColumn<int>("form");
        QTest::newRow("callable argument") << 0;
        QTest::newRow("awaitable") << 1;
        QTest::newRow("lambda capture") << 2;
        QTest::newRow("member function") << 3;
    }
    void noStaleReferences()
    {
        QFETCH(int, form);
        run([](int form) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            auto object = std::make_shared<MyObject>(MyObject { 1 });
            std::weak_ptr<MyObject> weak = object;
            Future<int> future;
            switch (form) {
            case 0:
                future = pool.submit(readObject, object);
                break;
            case 1:
                future = pool.submit(readObject(object));
                break;
            case 2:
                future = pool.submit([object]() { return object->method(); });
                break;
            case 3:
                future = pool.submit(&MyObject::plain, object, 0);
                break;
            }
            object.reset();
            CO_VERIFY(!weak.expired()); // the task holds it until it ends
            CO_COMPARE(co_await future, 1);
            // Right after the task ended, even though its future is still held.
            CO_VERIFY(weak.expired());
            co_await pool.shutdown();
        }(form));
    }

    // CPython issue #14406 / cf-taskpool's free reference tests: nothing but the future holds
    // the result.
    void resultHeldOnlyByFuture_data() { addSubmitForms(); }
    void resultHeldOnlyByFuture()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            auto future = submitAs(pool, asAwaitable, createObject, 1);
            auto object = co_await future;
            CO_COMPARE(object->value, 1);
            std::weak_ptr<MyObject> weak = object;
            object.reset();
            CO_VERIFY(!weak.expired());
            future = {};
            CO_VERIFY(weak.expired());
            co_await pool.shutdown();
        }(asAwaitable));
    }

    void maxWorkersMustBePositive_data()
    {
        QTest::addColumn<int>("maxWorkers");
        QTest::newRow("0") << 0;
        QTest::newRow("-1") << -1;
    }
    void maxWorkersMustBePositive()
    {
        QFETCH(int, maxWorkers);
        try {
            TaskPoolExecutor pool(maxWorkers);
            QFAIL("no exception");
        } catch (const std::invalid_argument& e) {
            QCOMPARE(QByteArray(e.what()), QByteArray("maxWorkers must be greater than 0"));
        }
        TaskPoolExecutor pool(2);
        QSignalSpy changed(&pool, &TaskPoolExecutor::maxWorkersChanged);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, pool.setMaxWorkers(maxWorkers));
        QCOMPARE(pool.maxWorkers(), 2);
        QCOMPARE(changed.count(), 0);
    }

    void defaultMaxWorkers()
    {
        TaskPoolExecutor pool;
        QCOMPARE(pool.maxWorkers(), QThread::idealThreadCount());
        QCOMPARE(pool.workerCount(), 0); // workers are made lazily
        QVERIFY(pool.workerNames().isEmpty());
        QVERIFY(!pool.isShutdown());
    }

    void saturation_data() { addSubmitForms(); }
    void saturation()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool(4);
            int mostWorkers = 0;
            connect(&pool, &TaskPoolExecutor::workerCountChanged, &pool,
                    [&](int count) { mostWorkers = std::max(mostWorkers, count); });
            Gate gate;
            const int count = 15 * pool.maxWorkers();
            QList<Future<int>> futures;
            for (int i = 0; i < count; ++i)
                futures.append(submitAs(pool, asAwaitable, gated, &gate, i));
            CO_COMPARE(pool.workerCount(), pool.maxWorkers()); // made at submit, for waiting work
            co_await until([&] { return pool.activeCount() == pool.maxWorkers(); });
            CO_COMPARE(pool.workerCount(), 4);
            CO_COMPARE(pool.pendingCount(), count - 4);
            CO_COMPARE(pool.workerNames().size(), 4);
            gate.open();
            co_await pool.shutdown();
            for (int i = 0; i < count; ++i)
                CO_COMPARE(futures[i].result(), i);
            CO_COMPARE(mostWorkers, 4);
            CO_COMPARE(pool.workerCount(), 0);
        }(asAwaitable));
    }

    void idleWorkerReuse_data() { addSubmitForms(); }
    void idleWorkerReuse()
    {
        QFETCH(bool, asAwaitable);
        run([](bool asAwaitable) -> QCoro::Task<void> {
            TaskPoolExecutor pool; // idealThreadCount() workers allowed
            QSignalSpy workers(&pool, &TaskPoolExecutor::workerCountChanged);
            QSignalSpy started(&pool, &TaskPoolExecutor::taskStarted);
            CO_COMPARE(co_await submitAs(pool, asAwaitable, amul, 21, 2), 42);
            CO_COMPARE(co_await submitAs(pool, asAwaitable, amul, 6, 7), 42);
            CO_COMPARE(co_await submitAs(pool, asAwaitable, amul, 3, 14), 42);
            CO_COMPARE(pool.workerCount(), 1);
            CO_COMPARE(workers.count(), 1);
            CO_COMPARE(started.count(), 3);
            const QString name = pool.taskNamePrefix() + QStringLiteral("_0");
            CO_COMPARE(pool.workerNames(), QStringList { name });
            for (const auto& args : started)
                CO_COMPARE(args.at(1).toString(), name);
            co_await pool.shutdown();
        }(asAwaitable));
    }

    void defaultPrefixIsUnique()
    {
        TaskPoolExecutor a(1);
        TaskPoolExecutor b(1);
        const QRegularExpression pattern(QStringLiteral("^TaskPoolExecutor-\\d+$"));
        QVERIFY(pattern.match(a.taskNamePrefix()).hasMatch());
        QVERIFY(pattern.match(b.taskNamePrefix()).hasMatch());
        QVERIFY(a.taskNamePrefix() != b.taskNamePrefix());
        TaskPoolExecutor named(1, QStringLiteral("Fetch"));
        QCOMPARE(named.taskNamePrefix(), QStringLiteral("Fetch"));
    }

    void plainValueCallables()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            auto doubled = pool.submit([](int a) { return a * 2; }, 21);
            static_assert(std::is_same_v<decltype(doubled), Future<int>>);
            CO_COMPARE(co_await doubled, 42);

            int calls = 0;
            auto nothing = pool.submit([](int* calls) { ++*calls; }, &calls);
            static_assert(std::is_same_v<decltype(nothing), Future<void>>);
            co_await nothing;
            CO_COMPARE(calls, 1);

            std::function<QString(int)> function = [](int a) { return QString::number(a); };
            CO_COMPARE(co_await pool.submit(function, 5), QStringLiteral("5"));

            auto object = std::make_shared<MyObject>(MyObject { 40 });
            CO_COMPARE(co_await pool.submit(&MyObject::plain, object, 2), 42);
            CO_COMPARE(co_await pool.submit(&MyObject::method, object), 40);

            auto text = pool.submit([] { return QStringLiteral("plain"); });
            bool ran = false;
            auto captured = pool.submit([&ran] { ran = true; });
            CO_VERIFY(!ran); // never inside submit()
            CO_COMPARE(co_await text, QStringLiteral("plain"));
            co_await captured;
            CO_VERIFY(ran);
            auto throwing = pool.submit([]() -> int { throw std::runtime_error("plain failure"); });
            CO_VERIFY_THROWS(co_await throwing, std::runtime_error);
            co_await pool.shutdown();
        }());
    }

    void qfutureReturningCallable_data()
    {
        QTest::addColumn<QString>("outcome");
        QTest::newRow("result later") << QStringLiteral("result");
        QTest::newRow("ready") << QStringLiteral("ready");
        QTest::newRow("exception") << QStringLiteral("exception");
        QTest::newRow("cancelled before") << QStringLiteral("cancelled before");
        QTest::newRow("cancelled while awaited") << QStringLiteral("cancelled later");
    }
    void qfutureReturningCallable()
    {
        QFETCH(QString, outcome);
        run([](QString outcome) -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QPromise<int> promise;
            promise.start();
            if (outcome == u"ready") {
                promise.addResult(5);
                promise.finish();
            } else if (outcome == u"cancelled before") {
                promise.future().cancel(); // cancelled but never finished: must not hang
            }
            auto future = pool.submit([](QFuture<int> f) { return f; }, promise.future());
            static_assert(std::is_same_v<decltype(future), Future<int>>);
            co_await until([&] { return pool.activeCount() == 1 || future.isFinished(); });
            if (outcome == u"result") {
                promise.addResult(5);
                promise.finish();
            } else if (outcome == u"exception") {
                promise.setException(std::make_exception_ptr(std::runtime_error("inner")));
                promise.finish();
            } else if (outcome == u"cancelled later") {
                promise.future().cancel();
            }
            if (outcome == u"result" || outcome == u"ready") {
                CO_COMPARE(co_await future, 5);
            } else if (outcome == u"exception") {
                CO_VERIFY_THROWS(co_await future, std::runtime_error);
            } else {
                CO_VERIFY_THROWS(co_await future, TaskPool::CancelledError);
                CO_VERIFY(future.cancelled());
            }
            // The worker is free again: the next task runs.
            CO_COMPARE(co_await pool.submit(amul, 2, 3), 6);
            co_await pool.shutdown();
        }(outcome));
    }

    void qfutureAsAwaitable()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QPromise<int> promise;
            promise.start();
            auto future = pool.submit(promise.future());
            static_assert(std::is_same_v<decltype(future), Future<int>>);
            co_await until([&] { return pool.activeCount() == 1; });
            CO_VERIFY(!future.isFinished());
            promise.addResult(9);
            promise.finish();
            CO_COMPARE(co_await future, 9);
            co_await pool.shutdown();
        }());
    }

    void lifecycleSignalsAndCounts()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QSignalSpy started(&pool, &TaskPoolExecutor::taskStarted);
            QSignalSpy finished(&pool, &TaskPoolExecutor::taskFinished);
            QSignalSpy failed(&pool, &TaskPoolExecutor::taskFailed);
            QSignalSpy canceled(&pool, &TaskPoolExecutor::taskCanceled);
            QSignalSpy idle(&pool, &TaskPoolExecutor::idle);
            QSignalSpy active(&pool, &TaskPoolExecutor::activeCountChanged);
            QSignalSpy pending(&pool, &TaskPoolExecutor::pendingCountChanged);
            QSignalSpy workers(&pool, &TaskPoolExecutor::workerCountChanged);
            QSignalSpy shutdown(&pool, &TaskPoolExecutor::isShutdownChanged);

            auto ok = pool.submit(amul, 2, 3);
            auto bad = pool.submit([]() -> int { throw std::runtime_error("boom"); });
            Gate never;
            auto dropped = pool.submit(gated, &never, 0);
            CO_COMPARE(pool.pendingCount(), 3);
            CO_COMPARE(pool.activeCount(), 0);
            CO_VERIFY(dropped.cancel());
            CO_COMPARE(pool.pendingCount(), 2);
            CO_COMPARE(canceled.count(), 1); // a queued task settles at once
            CO_COMPARE(canceled.at(0).at(0).toULongLong(), dropped.taskId());

            CO_COMPARE(co_await ok, 6);
            CO_VERIFY_THROWS(co_await bad, std::runtime_error);
            co_await until([&] { return idle.count() == 1; });
            CO_COMPARE(pool.activeCount(), 0);
            CO_COMPARE(pool.pendingCount(), 0);

            CO_COMPARE(started.count(), 2);
            CO_COMPARE(started.at(0).at(0).toULongLong(), ok.taskId());
            CO_COMPARE(started.at(1).at(0).toULongLong(), bad.taskId());
            CO_COMPARE(finished.count(), 1);
            CO_COMPARE(finished.at(0).at(0).toULongLong(), ok.taskId());
            CO_COMPARE(failed.count(), 1);
            CO_COMPARE(failed.at(0).at(0).toULongLong(), bad.taskId());
            CO_COMPARE(failed.at(0).at(1).toString(), QStringLiteral("boom"));
            CO_COMPARE(canceled.count(), 1);
            CO_VERIFY(ok.taskId() != bad.taskId() && bad.taskId() != dropped.taskId());

            QList<int> pendingValues;
            for (const auto& args : pending)
                pendingValues.append(args.at(0).toInt());
            CO_COMPARE(pendingValues.mid(0, 4), (QList<int> { 1, 2, 3, 2 }));
            CO_COMPARE(pendingValues.last(), 0);
            for (const auto& args : active)
                CO_VERIFY(args.at(0).toInt() <= 1);
            CO_COMPARE(active.last().at(0).toInt(), 0);
            CO_COMPARE(workers.count(), 1);

            // Busy again, idle again.
            CO_COMPARE(co_await pool.submit(amul, 1, 1), 1);
            co_await until([&] { return idle.count() == 2; });

            co_await pool.shutdown();
            co_await pool.shutdown();
            CO_VERIFY(pool.isShutdown());
            CO_COMPARE(shutdown.count(), 1);
            CO_COMPARE(shutdown.at(0).at(0).toBool(), true);
            CO_COMPARE(workers.last().at(0).toInt(), 0);
        }());
    }

    void setMaxWorkersRaisesTheBound()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            QSignalSpy changed(&pool, &TaskPoolExecutor::maxWorkersChanged);
            Gate gate;
            QList<Future<int>> futures;
            for (int i = 0; i < 4; ++i)
                futures.append(pool.submit(gated, &gate, i));
            co_await until([&] { return pool.activeCount() == 1; });
            CO_COMPARE(pool.pendingCount(), 3);
            pool.setMaxWorkers(3);
            CO_COMPARE(pool.maxWorkers(), 3);
            CO_COMPARE(changed.count(), 1);
            CO_COMPARE(changed.at(0).at(0).toInt(), 3);
            CO_COMPARE(pool.workerCount(), 3); // waiting work gets the new workers at once
            pool.setMaxWorkers(3);
            CO_COMPARE(changed.count(), 1);
            co_await until([&] { return pool.activeCount() == 3; });
            CO_COMPARE(pool.workerCount(), 3);
            CO_COMPARE(pool.pendingCount(), 1);
            gate.open();
            co_await pool.shutdown();
            for (int i = 0; i < 4; ++i)
                CO_COMPARE(futures[i].result(), i);
        }());
    }

    void setMaxWorkersLowersTheBound()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            std::array<Gate, 6> gates;
            QList<Future<int>> futures;
            for (int i = 0; i < 6; ++i)
                futures.append(pool.submit(gated, &gates[i], i));
            co_await until([&] { return pool.activeCount() == 3; });
            bool lowered = false;
            int activeAtLateStart = 0;
            connect(&pool, &TaskPoolExecutor::taskStarted, &pool, [&] {
                if (lowered)
                    activeAtLateStart = std::max(activeAtLateStart, pool.activeCount());
            });
            pool.setMaxWorkers(1);
            lowered = true;
            CO_COMPARE(pool.maxWorkers(), 1);
            CO_COMPARE(pool.activeCount(), 3); // running tasks are not disturbed
            for (int i = 0; i < 6; ++i) {
                gates[i].open();
                co_await futures[i];
            }
            co_await until([&] { return pool.activeCount() == 0; });
            CO_COMPARE(pool.workerCount(), 1);
            // Tasks started after the bound was lowered never ran beside more than the new bound.
            CO_COMPARE(activeAtLateStart, 1);
            co_await pool.shutdown();
            for (int i = 0; i < 6; ++i)
                CO_COMPARE(futures[i].result(), i);
        }());
    }

    void taskDeletesItsOwnExecutor_data()
    {
        QTest::addColumn<bool>("afterSuspending");
        QTest::newRow("during its synchronous start") << false;
        QTest::newRow("after suspending") << true;
    }
    void taskDeletesItsOwnExecutor()
    {
        QFETCH(bool, afterSuspending);
        run([](bool afterSuspending) -> QCoro::Task<void> {
            auto* pool = new TaskPoolExecutor(1);
            QPointer<TaskPoolExecutor> guard(pool);
            auto killer = pool->submit(
                [](TaskPoolExecutor* pool, bool afterSuspending) -> QCoro::Task<int> {
                    if (afterSuspending)
                        co_await TestUtil::sleep(1ms);
                    delete pool;
                    co_await TestUtil::sleep(1ms);
                    co_return 1;
                },
                pool, afterSuspending);
            auto queued = pool->submit(amul, 2, 3);
            CO_COMPARE(co_await killer, 1);
            CO_VERIFY(guard.isNull());
            CO_COMPARE(co_await queued, 6); // queued work still completes
        }(afterSuspending));
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

    void qfutureReturningCallableHoldsItsWorker()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto ready = pool.submit([] { return readyFuture(5); });
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
            auto direct = pool.submit(readyFuture(QStringLiteral("direct")));
            CO_COMPARE(co_await direct, QStringLiteral("direct"));
            co_await pool.shutdown();
        }());
    }

    // Python's falsy exceptions have no C++ counterpart; the closest is an exception that is not a
    // std::exception, or has an empty message: it must not be lost either.
    void exceptionsThatLookEmptyAreKept_data() { addSubmitForms(); }
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

    void noStaleReferencesFutureKeptOrDiscarded_data()
    {
        QTest::addColumn<bool>("asAwaitable");
        QTest::addColumn<bool>("keepFuture");
        QTest::newRow("callable, future kept") << false << true;
        QTest::newRow("awaitable, future kept") << true << true;
        QTest::newRow("callable, future discarded") << false << false;
        QTest::newRow("awaitable, future discarded") << true << false;
    }
    void noStaleReferencesFutureKeptOrDiscarded()
    {
        QFETCH(bool, asAwaitable);
        QFETCH(bool, keepFuture);
        run([](bool asAwaitable, bool keepFuture) -> QCoro::Task<void> {
            TaskPoolExecutor pool(5);
            auto object = std::make_shared<MyObject>(MyObject { 1 });
            std::weak_ptr<MyObject> weak = object;
            if (keepFuture) {
                auto future = submitAs(pool, asAwaitable, readObject, object);
                object.reset();
                CO_VERIFY(!weak.expired()); // the task holds it
                CO_COMPARE(co_await future, 1);
                CO_VERIFY(weak.expired()); // released when the task ended, the future still alive
            } else {
                QSignalSpy idle(&pool, &TaskPoolExecutor::idle);
                (void)submitAs(pool, asAwaitable, readObject, object); // deliberately discarded
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
            auto blocker = pool.submit(gated, &gate, 0);
            auto object = std::make_shared<MyObject>();
            std::weak_ptr<MyObject> weak = object;
            auto queued = pool.submit(readObject, std::move(object));
            CO_VERIFY(!weak.expired());
            CO_VERIFY(queued.cancel());
            CO_VERIFY(weak.expired());
            gate.open();
            co_await blocker;
            co_await pool.shutdown();
        }());
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
            CO_COMPARE(seenInside.size(), 5);
            gate.open();
            for (auto& future : futures)
                co_await future;
            CO_COMPARE(seenInside.size(), 10);
            CO_COMPARE(namedAfterSuspending, 0);
            for (const auto& args : started)
                CO_VERIFY(pattern.match(args.at(1).toString()).hasMatch());
            co_await pool.shutdown();
            CO_VERIFY(pool.workerNames().isEmpty());
        }(prefix, QRegularExpression(pattern)));
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

    void lifecycleSignalsWithTwoWorkers()
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
            auto a = pool.submit(gated, &succeed, 1);
            auto b = pool.submit(failAfter, &fail, QStringLiteral("boom"));
            auto c = pool.submit(gated, &never, 3);
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
            auto first = pool.submit(amul, 1, 1);
            auto second = pool.submit(amul, 2, 2);
            co_await first;
            co_await second;
            CO_COMPARE(idle.count(), 1);
            CO_COMPARE(co_await pool.submit(amul, 3, 3), 9);
            CO_COMPARE(idle.count(), 2);
            co_await pool.shutdown();
            CO_COMPARE(idle.count(), 2);
        }());
    }

    void setMaxWorkersRetiresIdleWorkers()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3, QStringLiteral("Low"));
            Gate first, second;
            QList<Future<int>> running;
            for (int i = 0; i < 3; ++i)
                running.append(pool.submit(gated, &first, i));
            co_await until(&pool, &TaskPoolExecutor::activeCountChanged, [&] { return pool.activeCount() == 3; });
            pool.setMaxWorkers(1);
            CO_COMPARE(pool.maxWorkers(), 1);
            CO_COMPARE(pool.workerCount(), 3); // busy workers finish their task first
            CO_COMPARE(pool.activeCount(), 3);
            QList<Future<int>> queued;
            for (int i = 0; i < 2; ++i)
                queued.append(pool.submit(gated, &second, 10 + i));
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
                more.append(pool.submit(gated, &third, i));
            CO_COMPARE(pool.workerCount(), 3);
            third.open();
            for (auto& future : more)
                co_await future;
            CO_COMPARE(pool.workerCount(), 3);
            // The two workers spawned for `more` start from a later event-loop turn: let them run and
            // park, so that all three are idle.
            co_await turns();
            pool.setMaxWorkers(1);
            CO_COMPARE(pool.workerCount(), 1);
            CO_COMPARE(pool.workerNames(), QStringList { QStringLiteral("Low_0") });
            CO_COMPARE(co_await pool.submit(amul, 2, 2), 4);
            co_await pool.shutdown();
        }());
    }

    void destroyingTheExecutorLetsWorkComplete()
    {
        run([]() -> QCoro::Task<void> {
            auto* pool = new TaskPoolExecutor(1);
            QSignalSpy destroyed(pool, &QObject::destroyed);
            Gate gate;
            auto running = pool->submit(gated, &gate, 1);
            auto queued = pool->submit(amul, 2, 3);
            auto cancelled = pool->submit(amul, 4, 4);
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
                futures.append(pool->submit(amul, i, 2));
            pool.reset(); // before any worker got to run
            for (int i = 0; i < 6; ++i)
                CO_COMPARE(co_await futures[i], i * 2);
        }());
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

    // A task's coroutine runs with the worker as its continuation, no frame of the pool's between:
    // what a lambda coroutine captured must live until the coroutine ends (the callable is kept
    // until then), and an awaitable that is not a QCoro::Task is awaited in a wrapper, both when it
    // is ready at once and when it suspends, with exceptions before and after the suspension.
    void taskCoroutineRunsWithoutAPoolFrame()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            auto token = std::make_shared<int>(7);
            std::weak_ptr<int> watch = token;
            Gate gate;
            auto capturing = pool.submit([token = std::move(token), &gate]() -> QCoro::Task<int> {
                co_await gate;
                co_return *token * 6; // the capture, read after the suspension
            });
            co_await turns();
            CO_VERIFY(!watch.expired());
            gate.open();
            CO_COMPARE(co_await capturing, 42);
            co_await turns();
            CO_VERIFY(watch.expired()); // the callable went once the coroutine ended

            struct Ready {
                int value;
                bool await_ready() const noexcept { return true; }
                void await_suspend(std::coroutine_handle<>) const noexcept { }
                int await_resume() const { return value; }
            };
            struct Later {
                Gate* gate;
                int value;
                auto operator co_await() const
                {
                    struct Awaiter {
                        decltype(std::declval<Gate&>().operator co_await()) inner;
                        int value;
                        bool await_ready() { return inner.await_ready(); }
                        void await_suspend(std::coroutine_handle<> h) { inner.await_suspend(h); }
                        int await_resume() const
                        {
                            if (value < 0)
                                throw std::range_error("negative");
                            return value;
                        }
                    };
                    return Awaiter { gate->operator co_await(), value };
                }
            };
            Gate later;
            auto ready = pool.submit([] { return Ready { 5 }; });
            auto suspending = pool.submit([&later] { return Later { &later, 9 }; });
            auto failingLater = pool.submit([&later] { return Later { &later, -1 }; });
            auto failingAtOnce = pool.submit([]() -> Ready { throw std::length_error("at once"); });
            CO_COMPARE(co_await ready, 5);
            CO_VERIFY_THROWS(co_await failingAtOnce, std::length_error);
            co_await turns();
            CO_VERIFY(!suspending.done());
            CO_COMPARE(pool.activeCount(), 2); // both suspended tasks hold their worker
            later.open();
            CO_COMPARE(co_await suspending, 9);
            CO_VERIFY_THROWS(co_await failingLater, std::range_error);
            co_await pool.shutdown();
        }());
    }
};

QTEST_GUILESS_MAIN(tst_Executor)
#include "tst_executor.moc"
