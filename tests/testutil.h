// SPDX-License-Identifier: MIT
// Shared helpers of the TaskPool tests: coroutine-friendly assertions and a watchdog.
#pragma once

#include <taskpool/taskpool.h>

#include <QCoro/QCoroTask>
#include <QCoro/QCoroTimer>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFuture>
#include <QPromise>
#include <QTest>
#include <QThread>
#include <QTimer>

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <exception>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

// QVERIFY/QCOMPARE `return`, which a coroutine cannot: these `co_return` instead.
#define CO_VERIFY(statement)                                                                                           \
    do {                                                                                                               \
        if (!QTest::qVerify(static_cast<bool>(statement), #statement, "", __FILE__, __LINE__))                         \
            co_return;                                                                                                 \
    } while (false)
#define CO_VERIFY2(statement, description)                                                                             \
    do {                                                                                                               \
        if (!QTest::qVerify(static_cast<bool>(statement), #statement, description, __FILE__, __LINE__))                \
            co_return;                                                                                                 \
    } while (false)
#define CO_COMPARE(actual, expected)                                                                                   \
    do {                                                                                                               \
        if (!QTest::qCompare(actual, expected, #actual, #expected, __FILE__, __LINE__))                                \
            co_return;                                                                                                 \
    } while (false)
// Evaluates `expression` (which may co_await) and checks that it throws `Exception`.
#define CO_VERIFY_THROWS(expression, Exception)                                                                        \
    do {                                                                                                               \
        bool thrown_ = false;                                                                                          \
        try {                                                                                                          \
            expression;                                                                                                \
        } catch (const Exception&) {                                                                                   \
            thrown_ = true;                                                                                            \
        }                                                                                                              \
        if (!QTest::qVerify(thrown_, #expression, "did not throw " #Exception, __FILE__, __LINE__))                    \
            co_return;                                                                                                 \
    } while (false)

namespace TestUtil {

using namespace std::chrono_literals;

//! Runs a test body coroutine on the event loop. A body that does not finish within \a timeout
//! fails the test (the watchdog), as does an exception escaping it.
inline void run(QCoro::Task<void> body, std::chrono::milliseconds timeout = 10s)
{
    bool finished = false;
    QString error;
    QEventLoop loop;
    auto wrapper = [](QCoro::Task<void> body, bool& finished, QString& error, QEventLoop& loop) -> QCoro::Task<void> {
        try {
            co_await body;
        } catch (const std::exception& e) {
            error = QString::fromUtf8(e.what());
        } catch (...) {
            error = QStringLiteral("unknown exception");
        }
        finished = true;
        loop.quit();
    }(std::move(body), finished, error, loop);
    if (!finished) {
        QTimer::singleShot(timeout, &loop, &QEventLoop::quit);
        loop.exec();
    }
    // Let what the body left behind (workers leaving, posted resumptions) run down.
    for (int i = 0; i < 5; ++i)
        QCoreApplication::processEvents();
    QVERIFY2(finished, "test body timed out (watchdog)");
    QVERIFY2(error.isEmpty(), qPrintable(QStringLiteral("exception escaped the test body: ") + error));
}

//! A coroutine that sleeps \a ms milliseconds on a QTimer.
inline QCoro::Task<void> sleep(std::chrono::milliseconds ms)
{
    QTimer timer;
    timer.setSingleShot(true);
    timer.start(ms);
    co_await timer;
}

//! Something to suspend on until the test releases it: a manual-reset event.
class Gate {
public:
    bool isOpen() const { return m_open; }
    void open()
    {
        m_open = true;
        for (auto handle : std::exchange(m_waiters, {}))
            TaskPool::detail::resumeLater(handle);
    }
    auto operator co_await()
    {
        struct Awaiter {
            Gate& gate;
            bool await_ready() const noexcept { return gate.m_open; }
            void await_suspend(std::coroutine_handle<> handle) { gate.m_waiters.push_back(handle); }
            void await_resume() const noexcept { }
        };
        return Awaiter { *this };
    }

private:
    bool m_open = false;
    std::vector<std::coroutine_handle<>> m_waiters;
};

// ---- Task bodies and helpers shared by several test files ----------------------------------------

//! \a x times \a y after \a Ms milliseconds on a QTimer.
template <int Ms> QCoro::Task<int> delayedMul(int x, int y)
{
    co_await sleep(std::chrono::milliseconds(Ms));
    co_return x* y;
}

//! \a x times \a y after a millisecond.
inline QCoro::Task<int> amul(int x, int y)
{
    co_await sleep(1ms);
    co_return x* y;
}

//! Holds its task until the test opens \a gate, then returns \a value.
inline QCoro::Task<int> gated(Gate* gate, int value)
{
    co_await *gate;
    co_return value;
}

//! Holds its task until the test opens \a gate, then returns 0.
inline QCoro::Task<int> waitFor(Gate* gate)
{
    co_await *gate;
    co_return 0;
}

//! An exception that does not derive from std::exception.
struct NotAnException {
    int code;
};

//! Suspends until \a done() holds, letting the event loop run in between (the watchdog bounds it).
template <typename Pred> QCoro::Task<void> until(Pred done)
{
    while (!done())
        co_await TaskPool::detail::Yield {};
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

//! \a n event loop turns: long enough for every notice posted so far (watcher events, resumptions
//! they queue) to have been handled, so that "not returned yet" is a real observation.
inline QCoro::Task<void> turns(int n = 3)
{
    for (; n > 0; --n)
        co_await TaskPool::detail::Yield {};
}

//! Submits `fn(args...)` in the callable form, or the awaitable it makes in the awaitable form.
template <typename Fn, typename... Args>
auto submitAs(TaskPool::TaskPoolExecutor& pool, bool asAwaitable, Fn fn, Args... args)
{
    if (asAwaitable)
        return pool.submit(fn(args...));
    return pool.submit(fn, args...);
}

//! The data column of a test that runs in both submit forms.
inline void addSubmitForms()
{
    QTest::addColumn<bool>("asAwaitable");
    QTest::newRow("callable") << false;
    QTest::newRow("awaitable") << true;
}

// The three kinds of future that have already settled before a test awaits them.
inline QFuture<int> successfulFuture()
{
    QPromise<int> promise;
    promise.start();
    promise.addResult(42);
    promise.finish();
    return promise.future();
}

inline QFuture<int> exceptionFuture()
{
    QPromise<int> promise;
    promise.start();
    promise.setException(std::make_exception_ptr(std::runtime_error("OSError")));
    promise.finish();
    return promise.future();
}

inline QFuture<int> cancelledFuture()
{
    QPromise<int> promise;
    promise.start();
    promise.future().cancel();
    promise.finish();
    return promise.future();
}

//! Whether \a a and \a b share their state (QFuture has no operator== in Qt 6).
inline bool same(const QFuture<int>& a, const QFuture<int>& b)
{
    return QFutureInterfaceBase::get(a) == QFutureInterfaceBase::get(b);
}

//! \a value after 5 ms on a QTimer.
inline QCoro::Task<int> sleepy(int value)
{
    co_await TestUtil::sleep(std::chrono::milliseconds(5));
    co_return value;
}

//! Runs a nested event loop until \a done holds; false when a 5 s fallback ended it instead.
template <typename Pred> bool nestedLoopUntil(Pred done)
{
    QEventLoop loop;
    bool timedOut = false;
    QTimer poll;
    QObject::connect(&poll, &QTimer::timeout, &loop, [&] {
        if (done())
            loop.quit();
    });
    poll.start(1);
    QTimer::singleShot(5000, &loop, [&] {
        timedOut = true;
        loop.quit();
    });
    if (!done())
        loop.exec();
    return !timedOut && done();
}

//! Threads that run \a body once each; awaited without blocking the executor's event loop.
class Threads {
public:
    template <typename Body> Threads(int count, Body body)
    {
        for (int i = 0; i < count; ++i)
            m_threads.emplace_back(QThread::create(body, i));
        for (auto& thread : m_threads)
            thread->start();
    }
    ~Threads()
    {
        for (auto& thread : m_threads)
            thread->wait();
    }
    bool finished() const
    {
        return std::all_of(m_threads.begin(), m_threads.end(), [](const auto& t) { return t->isFinished(); });
    }

private:
    std::vector<std::unique_ptr<QThread>> m_threads;
};

//! How long a bounded wait gives what must happen (eventually()).
constexpr auto patience = 2s;

//! Resumes once \a done holds (true), or after \a limit (false): a bounded wait turns a hang into a
//! clean failure; what the test asserts is the result, never the time it took.
template <typename Pred> QCoro::Task<bool> eventually(Pred done, std::chrono::milliseconds limit = patience)
{
    QElapsedTimer elapsed;
    elapsed.start();
    while (!done()) {
        if (elapsed.elapsed() >= limit.count())
            co_return false;
        co_await TestUtil::sleep(1ms);
    }
    co_return true;
}

//! Nothing queued, nothing running.
inline bool isIdle(const TaskPool::TaskPoolExecutor& pool)
{
    return pool.pendingCount() == 0 && pool.activeCount() == 0;
}

//! Occupies a worker of \a pool until \a gate opens; returns once that task runs.
inline QCoro::Task<TaskPool::Future<int>> occupy(TaskPool::TaskPoolExecutor& pool, Gate* gate)
{
    const int before = pool.activeCount();
    auto blocker = pool.submit(waitFor, gate);
    co_await until([&] { return pool.activeCount() > before; });
    co_return blocker;
}

//! The lifecycle signals of an executor as one listener sees them, in order.
struct SignalLog {
    enum Kind { Started, Finished, Failed, Cancelled, Idle };
    std::vector<std::pair<Kind, quint64>> events;

    void connect(TaskPool::TaskPoolExecutor& pool, QObject* context = nullptr)
    {
        using TaskPool::TaskPoolExecutor;
        QObject* receiver = context ? context : &pool;
        QObject::connect(&pool, &TaskPoolExecutor::taskStarted, receiver,
                         [this](quint64 id) { events.emplace_back(Started, id); });
        QObject::connect(&pool, &TaskPoolExecutor::taskFinished, receiver,
                         [this](quint64 id) { events.emplace_back(Finished, id); });
        QObject::connect(&pool, &TaskPoolExecutor::taskFailed, receiver,
                         [this](quint64 id) { events.emplace_back(Failed, id); });
        QObject::connect(&pool, &TaskPoolExecutor::taskCancelled, receiver,
                         [this](quint64 id) { events.emplace_back(Cancelled, id); });
        QObject::connect(&pool, &TaskPoolExecutor::idle, receiver, [this] { events.emplace_back(Idle, 0); });
    }
    //! The position of the first \a kind signal for \a id; -1 when none.
    int first(Kind kind, quint64 id) const
    {
        const auto it = std::find(events.begin(), events.end(), std::pair { kind, id });
        return it == events.end() ? -1 : int(it - events.begin());
    }
    int count(Kind kind, quint64 id) const
    {
        return int(std::count(events.begin(), events.end(), std::pair { kind, id }));
    }
    int count(Kind kind) const
    {
        return int(std::count_if(events.begin(), events.end(), [kind](const auto& e) { return e.first == kind; }));
    }
};

} // namespace TestUtil
