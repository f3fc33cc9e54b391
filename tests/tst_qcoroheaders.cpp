// SPDX-License-Identifier: MIT
// Every submit form, and map(), in a translation unit that includes all of QCoro's public headers
// before TaskPool's (as code that awaits QFutures, timers, signals or replies does). Some of them
// teach QCoro to await Qt types (QFuture, QTimer *, ...) that TaskPool also knows: no trait may then
// match twice. Also the parts that differ between QCoro versions: an empty Task, and LazyTask
// (QCoro 0.11 and newer).

#include <QCoro/QCoroAsyncGenerator>
#include <QCoro/QCoroCore>
#include <QCoro/QCoroFuture>
#include <QCoro/QCoroFwd>
#include <QCoro/QCoroGenerator>
#include <QCoro/QCoroIODevice>
#include <QCoro/QCoroProcess>
#include <QCoro/QCoroSignal>
#include <QCoro/QCoroTask>
#include <QCoro/QCoroThread>
#include <QCoro/QCoroTimer>
#if __has_include(<QCoro/QCoroLazyTask>)
#include <QCoro/QCoroLazyTask>
#endif
#ifdef TASKPOOL_TEST_QCORO_NETWORK
#include <QCoro/QCoroAbstractSocket>
#include <QCoro/QCoroLocalSocket>
#include <QCoro/QCoroNetwork>
#include <QCoro/QCoroNetworkReply>
#include <QCoro/QCoroTcpServer>
#endif

#include "testutil.h" // includes <taskpool/taskpool.h>

#include <QPromise>
#include <QTimer>

#include <memory>
#include <stdexcept>
#include <type_traits>
#include <vector>

using namespace TestUtil;
using TaskPool::Future;
using TaskPool::TaskPoolExecutor;

class Emitter : public QObject {
    Q_OBJECT
Q_SIGNALS:
    void value(int value);
};

namespace {

QCoro::Task<int> multiply(int x, int y)
{
    co_await sleep(1ms);
    co_return x* y;
}

//! A QFuture that gets \a value once the event loop runs (no QtConcurrent needed).
QFuture<int> laterFuture(int value)
{
    auto promise = std::make_shared<QPromise<int>>();
    promise->start();
    QTimer::singleShot(1ms, [promise, value] {
        promise->addResult(value);
        promise->finish();
    });
    return promise->future();
}

//! Whether calling `co_await` on a future is the same as reading it: the outcome of a settled
//! future, as the failure text of a wrongly typed or failed one.
template <typename T> QCoro::Task<QString> failureText(Future<T> future)
{
    try {
        co_await future;
    } catch (const std::logic_error& e) {
        co_return QString::fromUtf8(e.what());
    } catch (...) {
        co_return QStringLiteral("another exception");
    }
    co_return QStringLiteral("no exception");
}

} // namespace

class tst_QCoroHeaders : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // ---- the value types: what each form's future holds -----------------------------------------

    void futureTypes()
    {
        TaskPoolExecutor pool(1);
        QFuture<int> ready = laterFuture(1);
        QTimer timer;
        Emitter emitter;
        // Callable forms.
        static_assert(std::is_same_v<decltype(pool.submit(multiply, 1, 2)), Future<int>>);
        static_assert(std::is_same_v<decltype(pool.submit([ready] { return ready; })), Future<int>>);
        static_assert(
            std::is_same_v<decltype(pool.submit([&pool] { return pool.submit(multiply, 1, 2); })), Future<int>>);
        static_assert(std::is_same_v<decltype(pool.submit([] { return 1; })), Future<int>>);
        static_assert(std::is_same_v<decltype(pool.submit([&timer] { return &timer; })), Future<void>>);
        static_assert(std::is_same_v<decltype(pool.submit([&emitter] { return qCoro(&emitter, &Emitter::value); })),
                                     Future<int>>);
        static_assert(std::is_same_v<decltype(pool.submit([](QPromise<QString>&) -> QCoro::Task<void> { co_return; })),
                                     Future<QString>>);
        // Awaitable forms.
        static_assert(std::is_same_v<decltype(pool.submit(ready)), Future<int>>);
        static_assert(std::is_same_v<decltype(pool.submit(QFuture<int>(ready))), Future<int>>);
        static_assert(std::is_same_v<decltype(pool.submit(qCoro(&emitter, &Emitter::value))), Future<int>>);
        pool.shutdown({ .wait = false, .cancelFutures = true });
        QVERIFY(true); // the checks above are made by the compiler
    }

    // ---- callable forms ---------------------------------------------------------------------------

    void callableReturningTask()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            CO_COMPARE(co_await pool.submit(multiply, 6, 7), 42);
            co_await pool.shutdown();
        }());
    }

    void callableReturningQFuture()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            auto f = pool.submit([] { return laterFuture(5); });
            CO_COMPARE(co_await f, 5);
            CO_COMPARE(f.result(), 5);
            // A pool future, returned by a task of another pool.
            TaskPoolExecutor inner(1);
            auto g = pool.submit([&inner] { return inner.submit(multiply, 3, 4); });
            CO_COMPARE(co_await g, 12);
            co_await inner.shutdown();
            co_await pool.shutdown();
        }());
    }

    void callableReturningFailedQFuture()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto f = pool.submit([] {
                QPromise<int> promise;
                promise.start();
                promise.setException(std::make_exception_ptr(std::logic_error("broken")));
                promise.finish();
                return promise.future();
            });
            CO_COMPARE(co_await failureText(f), QStringLiteral("broken"));
            co_await pool.shutdown();
        }());
    }

    void callableReturningPlainValue()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            CO_COMPARE(co_await pool.submit([](int a) { return a + 1; }, 41), 42);
            co_await pool.submit([] {}); // void
            co_await pool.shutdown();
        }());
    }

    void callableReturningQCoroAdaptedTypes()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            QTimer timer;
            timer.setSingleShot(true);
            auto timed = pool.submit([&timer] {
                timer.start(1ms);
                return &timer; // awaited through QCoro's awaiter_type<QTimer *>
            });
            co_await timed;
            CO_VERIFY(timed.isFinished());
            CO_VERIFY(!timer.isActive());

            Emitter emitter;
            auto signalled = pool.submit([&emitter] { return qCoro(&emitter, &Emitter::value); });
            co_await turns(); // the task started and waits for the signal
            CO_VERIFY(!signalled.isFinished());
            Q_EMIT emitter.value(17);
            CO_COMPARE(co_await signalled, 17);
            co_await pool.shutdown();
        }());
    }

    void promiseForm()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            auto f = pool.submit(
                [](QPromise<int>& promise, int base) -> QCoro::Task<void> {
                    promise.setProgressRange(0, 2);
                    promise.addResult(base);
                    co_await sleep(1ms);
                    promise.addResult(base + 1);
                    promise.setProgressValue(2);
                },
                10);
            CO_COMPARE(co_await f, 10);
            CO_COMPARE(f.results(), (QList<int> { 10, 11 }));
            CO_COMPARE(f.progressValue(), 2);
            co_await pool.shutdown();
        }());
    }

    // ---- awaitable forms --------------------------------------------------------------------------

    void awaitableTask()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            CO_COMPARE(co_await pool.submit(multiply(2, 3)), 6);
            co_await pool.shutdown();
        }());
    }

    void awaitableQFuture()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            QFuture<int> later = laterFuture(8);
            auto f = pool.submit(later);
            CO_COMPARE(co_await f, 8);
            // A cancelled QFuture ends the task cancelled (QCoro's own co_await would hang).
            QPromise<int> promise;
            promise.start();
            auto g = pool.submit(promise.future());
            co_await turns();
            promise.future().cancel();
            CO_VERIFY_THROWS(co_await g, TaskPool::CancelledError);
            promise.finish();
            co_await pool.shutdown();
        }());
    }

    void awaitableSignal()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            Emitter emitter;
            auto f = pool.submit(qCoro(&emitter, &Emitter::value));
            co_await turns();
            CO_VERIFY(!f.isFinished());
            Q_EMIT emitter.value(3);
            CO_COMPARE(co_await f, 3);
            co_await pool.shutdown();
        }());
    }

    // ---- map --------------------------------------------------------------------------------------

    void mapForms()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(3);
            QList<int> results;
            QCORO_FOREACH(int r, pool.map(multiply, std::vector<int> { 1, 2, 3 }, std::vector<int> { 4, 5, 6 }))
            {
                results.append(r);
            }
            CO_COMPARE(results, (QList<int> { 4, 10, 18 }));
            results.clear();
            QCORO_FOREACH(int r, pool.map({ .bufferSize = 2 }, laterFuture, std::views::iota(0, 4)))
            {
                results.append(r);
            }
            CO_COMPARE(results, (QList<int> { 0, 1, 2, 3 }));
            results.clear();
            QCORO_FOREACH(int r, pool.map([](int x) { return -x; }, QList<int> { 1, 2 }))
            {
                results.append(r);
            }
            CO_COMPARE(results, (QList<int> { -1, -2 }));
            co_await pool.shutdown();
        }());
    }

    // ---- an empty QCoro::Task (0.8 asserts when awaiting it, 0.11 never resumes) -------------------

    void emptyTaskFailsItsFuture()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1); // one worker: the next task runs only if the slot was freed
            auto empty = pool.submit([] { return QCoro::Task<int>(); });
            const QString text = co_await failureText(empty);
            CO_VERIFY2(text.contains(QStringLiteral("empty QCoro::Task")), qPrintable(text));
            CO_VERIFY(empty.done());
            CO_VERIFY(empty.exception() != nullptr);
            auto emptyVoid = pool.submit([] { return QCoro::Task<void>(); });
            CO_VERIFY(!(co_await failureText(emptyVoid)).isEmpty());
            CO_VERIFY(emptyVoid.exception() != nullptr);
            auto awaited = pool.submit(QCoro::Task<int>());
            CO_VERIFY((co_await failureText(awaited)).contains(QStringLiteral("empty QCoro::Task")));
            CO_COMPARE(co_await pool.submit(multiply, 2, 2), 4);
            co_await pool.shutdown();
        }());
    }

    void emptyTaskFailsItsMapItem()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto fn = [](int x) { return x == 1 ? QCoro::Task<int>() : multiply(x, 10); };
            QList<int> results;
            bool failed = false;
            try {
                QCORO_FOREACH(int r, pool.map(fn, std::views::iota(0, 3)))
                {
                    results.append(r);
                }
            } catch (const std::logic_error&) {
                failed = true;
            }
            CO_VERIFY(failed);
            CO_COMPARE(results, QList<int> { 0 });
            co_await pool.shutdown();
        }());
    }

    // ---- QCoro::LazyTask (QCoro 0.11 and newer) ----------------------------------------------------

    void lazyTaskCallable()
    {
#if TASKPOOL_HAS_LAZY_TASK
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto blocker = pool.submit(waitFor, &gate);
            int calls = 0;
            bool started = false;
            auto lazy = [&](int x) -> QCoro::LazyTask<int> {
                started = true;
                co_await sleep(1ms);
                co_return x * 2;
            };
            auto f = pool.submit(
                [&](int x) {
                    ++calls;
                    return lazy(x);
                },
                21);
            static_assert(std::is_same_v<decltype(f), Future<int>>);
            co_await turns();
            CO_COMPARE(calls, 0);
            CO_VERIFY(!started);
            gate.open();
            CO_COMPARE(co_await f, 42);
            CO_COMPARE(calls, 1);
            co_await blocker;
            auto v = pool.submit([&]() -> QCoro::LazyTask<void> {
                started = false;
                co_await sleep(1ms);
                started = true;
            });
            static_assert(std::is_same_v<decltype(v), Future<void>>);
            co_await v;
            CO_VERIFY(started);
            co_await pool.shutdown();
        }());
#else
        QSKIP("this QCoro has no LazyTask (0.11 and newer have)");
#endif
    }

    void lazyTaskAwaitableDefersItsStart()
    {
#if TASKPOOL_HAS_LAZY_TASK
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto blocker = pool.submit(waitFor, &gate);
            bool started = false;
            auto lazy = [](bool* started, int x) -> QCoro::LazyTask<int> {
                *started = true;
                co_await sleep(1ms);
                co_return x + 1;
            };
            auto f = pool.submit(lazy(&started, 1)); // created now, started by a worker
            static_assert(std::is_same_v<decltype(f), Future<int>>);
            co_await turns();
            CO_VERIFY(!started); // the only worker is taken: the bound holds its start too
            CO_COMPARE(pool.pendingCount(), 1);
            gate.open();
            CO_COMPARE(co_await f, 2);
            CO_VERIFY(started);
            co_await blocker;

            // Cancelled while queued: it never starts, and its coroutine is freed (ASan).
            Gate second;
            auto holder = pool.submit(waitFor, &second);
            bool neverStarted = false;
            auto cancelled = pool.submit(lazy(&neverStarted, 5));
            CO_VERIFY(cancelled.cancel());
            second.open();
            co_await holder;
            co_await pool.shutdown();
            CO_VERIFY(!neverStarted);
            CO_VERIFY(cancelled.cancelled());

            // A lazy task that throws fails its future.
            TaskPoolExecutor other(1);
            auto failing = other.submit([]() -> QCoro::LazyTask<int> {
                co_await sleep(1ms);
                throw std::logic_error("lazy failure");
            }());
            CO_COMPARE(co_await failureText(failing), QStringLiteral("lazy failure"));
            co_await other.shutdown();
        }());
#else
        QSKIP("this QCoro has no LazyTask (0.11 and newer have)");
#endif
    }

    void emptyLazyTaskFailsItsFuture()
    {
#if TASKPOOL_HAS_LAZY_TASK
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto f = pool.submit([] { return QCoro::LazyTask<int>(); });
            CO_VERIFY((co_await failureText(f)).contains(QStringLiteral("empty QCoro::LazyTask")));
            CO_COMPARE(co_await pool.submit(multiply, 3, 3), 9);
            co_await pool.shutdown();
        }());
#else
        QSKIP("this QCoro has no LazyTask (0.11 and newer have)");
#endif
    }
};

QTEST_GUILESS_MAIN(tst_QCoroHeaders)
#include "tst_qcoroheaders.moc"
