// SPDX-License-Identifier: MIT
// Shared helpers of the TaskPool tests: coroutine-friendly assertions and a watchdog.
#pragma once

#include <taskpool/taskpool.h>

#include <QCoro/QCoroTask>
#include <QCoro/QCoroTimer>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QTest>
#include <QTimer>

#include <chrono>
#include <exception>

// QVERIFY/QCOMPARE `return`, which a coroutine cannot: these `co_return` instead.
#define CO_VERIFY(statement)                                                                         \
    do {                                                                                             \
        if (!QTest::qVerify(static_cast<bool>(statement), #statement, "", __FILE__, __LINE__))       \
            co_return;                                                                               \
    } while (false)
#define CO_VERIFY2(statement, description)                                                           \
    do {                                                                                             \
        if (!QTest::qVerify(static_cast<bool>(statement), #statement, description, __FILE__, __LINE__)) \
            co_return;                                                                               \
    } while (false)
#define CO_COMPARE(actual, expected)                                                                 \
    do {                                                                                             \
        if (!QTest::qCompare(actual, expected, #actual, #expected, __FILE__, __LINE__))              \
            co_return;                                                                               \
    } while (false)
// Evaluates `expression` (which may co_await) and checks that it throws `Exception`.
#define CO_VERIFY_THROWS(expression, Exception)                                                      \
    do {                                                                                             \
        bool thrown_ = false;                                                                        \
        try {                                                                                        \
            expression;                                                                              \
        } catch (const Exception &) {                                                                \
            thrown_ = true;                                                                          \
        }                                                                                            \
        if (!QTest::qVerify(thrown_, #expression, "did not throw " #Exception, __FILE__, __LINE__)) \
            co_return;                                                                               \
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
    auto wrapper = [](QCoro::Task<void> body, bool &finished, QString &error, QEventLoop &loop) -> QCoro::Task<void> {
        try {
            co_await body;
        } catch (const std::exception &e) {
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
class Gate
{
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
        struct Awaiter
        {
            Gate &gate;
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

} // namespace TestUtil
