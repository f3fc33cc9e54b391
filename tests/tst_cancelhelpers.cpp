// SPDX-License-Identifier: MIT
// The cancellation helpers of cancel.h and network.h, each against a real component: a QTimer
// (sleep), the token itself (untilCancelled), never-finishing QFutures and signals (the general
// race), a QProcess running `sleep 30`, and QNetworkReplies against a loopback HTTP server that
// records whether each request was served or aborted by the client. Stops come from a
// std::stop_source of the test's own, in the awaiting thread or another one.
#include "testutil.h"

#include <taskpool/network.h>

#include <QCoro/QCoroSignal>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QProcess>
#include <QStandardPaths>
#include <QTcpServer>
#include <QTcpSocket>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <limits>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <sys/types.h>
#include <thread>

// QProcess forks while the test has threads, and the cross-thread tests start threads afterwards:
// ThreadSanitizer refuses that unless told otherwise (the child only execs).
#if defined(__SANITIZE_THREAD__)
extern "C" const char* __tsan_default_options()
{
    return "die_after_fork=0";
}
#endif

using namespace TestUtil;
using namespace std::chrono_literals;
using TaskPool::CancelledError;

namespace {

// ---- a coroutine frame the test owns ------------------------------------------------------------

//! An eager coroutine whose frame the test destroys (a stand-in for any coroutine destroyed while
//! suspended), and which records each time it gets past its await.
struct Frame {
    struct promise_type {
        Frame get_return_object() { return Frame(std::coroutine_handle<promise_type>::from_promise(*this)); }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() { }
        void unhandled_exception() { std::terminate(); }
    };
    explicit Frame(std::coroutine_handle<promise_type> h) : handle(h) { }
    Frame(Frame&& other) noexcept : handle(std::exchange(other.handle, {})) { }
    Frame& operator=(Frame&&) = delete;
    ~Frame() { destroy(); }
    bool done() const { return handle && handle.done(); }
    void destroy()
    {
        if (handle)
            std::exchange(handle, {}).destroy();
    }
    std::coroutine_handle<promise_type> handle;
};

//! What happened to an awaiting coroutine.
struct Observed {
    int resumed = 0; // times it got past its await (more than once: resumed into a frame gone on)
    bool cancelled = false;
    bool failed = false;
    QThread* thread = nullptr; // the thread it resumed in
};

//! Awaits \a awaitable in a Frame, recording the outcome in \a observed.
template <typename Awaitable> Frame awaitIn(Awaitable awaitable, Observed* observed)
{
    try {
        co_await std::move(awaitable);
    } catch (const CancelledError&) {
        observed->cancelled = true;
    } catch (...) {
        observed->failed = true;
    }
    observed->thread = QThread::currentThread();
    ++observed->resumed;
}

//! What happened to a coroutine awaiting in a worker thread (read from the test's thread).
struct WorkerAwait {
    std::atomic<bool> suspended = false;
    std::atomic<bool> resumed = false;
    std::atomic<bool> cancelled = false;
    std::atomic<QThread*> thread = nullptr;
};

template <typename Awaitable> QCoro::Task<void> awaitInWorker(Awaitable awaitable, WorkerAwait* observed)
{
    observed->suspended = true;
    try {
        co_await std::move(awaitable);
    } catch (const CancelledError&) {
        observed->cancelled = true;
    }
    observed->thread = QThread::currentThread();
    observed->resumed = true;
}

//! Awaits \a future, then sets \a ended: an operation whose end the test can see.
QCoro::Task<void> untilFinished(QFuture<int> future, std::atomic<bool>* ended)
{
    try {
        co_await TaskPool::Future<int>(future);
    } catch (...) {
    }
    *ended = true;
}

//! Whether a process with \a pid still exists (a zombie counts: it has not been reaped).
bool processExists(qint64 pid)
{
    return ::kill(pid_t(pid), 0) == 0 || errno != ESRCH;
}

//! Starts `sleep 30`; with \a ignoreTerm, in a shell that first ignores SIGTERM (and says so once
//! it does: a SIGTERM before that would end it).
QCoro::Task<void> startSleeper(QProcess& process, bool ignoreTerm = false)
{
    if (!ignoreTerm) {
        process.start(QStringLiteral("sleep"), { QStringLiteral("30") });
        co_await until(&process, &QProcess::stateChanged, [&] { return process.state() != QProcess::Starting; });
        co_return;
    }
    process.start(QStringLiteral("/bin/sh"),
                  { QStringLiteral("-c"), QStringLiteral("trap '' TERM; echo ignoring; exec sleep 30") });
    co_await until(&process, &QProcess::readyReadStandardOutput,
                   [&] { return process.state() == QProcess::NotRunning || process.peek(64).contains("ignoring"); });
}

//! Kills a process still running when the test ends, however it ends (a failed check included), and
//! waits for it: no child outlives its test.
struct KillOnExit {
    QProcess& process;
    ~KillOnExit()
    {
        if (process.state() == QProcess::NotRunning)
            return;
        process.kill();
        process.waitForFinished(5000);
    }
};

//! A duration beyond what a QTimer takes (an int of milliseconds): 2^32 + 100 ms, which an int
//! truncates to 100 ms.
constexpr std::chrono::milliseconds beyondIntMax(std::chrono::milliseconds::rep(1) << 32 | 100);

// ---- a loopback HTTP/1.1 server ------------------------------------------------------------------

//! Answers every request after a delay, and records for each one whether it was served or the
//! client closed the connection first (an aborted QNetworkReply closes its connection).
class HttpServer : public QObject {
public:
    enum class Fate { Waiting, Served, Aborted };
    struct Request {
        QByteArray path;
        Fate fate = Fate::Waiting;
    };

    explicit HttpServer(std::chrono::milliseconds delay) : m_delay(delay)
    {
        QObject::connect(&m_server, &QTcpServer::newConnection, this, [this] {
            while (QTcpSocket* socket = m_server.nextPendingConnection())
                serve(socket);
        });
        m_listening = m_server.listen(QHostAddress::LocalHost);
    }

    ~HttpServer() override
    {
        // The sockets (children of m_server) go with it: they must not report to a half-destroyed
        // server.
        for (QTcpSocket* socket : m_server.findChildren<QTcpSocket*>())
            QObject::disconnect(socket, nullptr, this, nullptr);
    }

    bool isListening() const { return m_listening; }
    QUrl url(const QString& path) const
    {
        return QUrl(QStringLiteral("http://127.0.0.1:%1%2").arg(m_server.serverPort()).arg(path));
    }
    const std::vector<Request>& requests() const { return m_requests; }
    int count(Fate fate) const
    {
        return int(
            std::count_if(m_requests.begin(), m_requests.end(), [fate](const Request& r) { return r.fate == fate; }));
    }

private:
    void serve(QTcpSocket* socket)
    {
        auto buffer = std::make_shared<QByteArray>();
        auto index = std::make_shared<std::optional<std::size_t>>(); // the request it carries
        QObject::connect(socket, &QTcpSocket::readyRead, this, [this, socket, buffer, index] {
            buffer->append(socket->readAll());
            if (index->has_value() || !buffer->contains("\r\n\r\n"))
                return;
            const QByteArray line = buffer->left(buffer->indexOf("\r\n"));
            *index = m_requests.size();
            m_requests.push_back(Request { line.split(' ').value(1), Fate::Waiting });
            QTimer::singleShot(m_delay, socket, [this, socket, index] {
                if (socket->state() != QAbstractSocket::ConnectedState)
                    return;
                const QByteArray body = "served " + m_requests[**index].path;
                socket->write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: "
                              + QByteArray::number(body.size()) + "\r\n\r\n" + body);
                m_requests[**index].fate = Fate::Served;
                socket->disconnectFromHost();
            });
        });
        // The client closed the connection before the answer: the request was aborted.
        auto closed = [this, socket, index] {
            if (index->has_value() && m_requests[**index].fate == Fate::Waiting)
                m_requests[**index].fate = Fate::Aborted;
            socket->deleteLater();
        };
        QObject::connect(socket, &QTcpSocket::disconnected, this, closed);
        QObject::connect(socket, &QTcpSocket::errorOccurred, this, closed);
    }

    QTcpServer m_server;
    std::chrono::milliseconds m_delay;
    bool m_listening = false;
    std::vector<Request> m_requests;
};

//! Something to emit, for qCoro(signal) awaits.
class Emitter : public QObject {
    Q_OBJECT
Q_SIGNALS:
    void fired(int value);
};

} // namespace

class tst_CancelHelpers : public QObject {
    Q_OBJECT
private Q_SLOTS:

    // ---- sleep ---------------------------------------------------------------------------------

    void sleepEndsAfterItsTime()
    {
        run([]() -> QCoro::Task<void> {
            std::stop_source source;
            QElapsedTimer elapsed;
            elapsed.start();
            co_await TaskPool::sleep(40ms, source.get_token()); // does not throw
            CO_VERIFY2(elapsed.elapsed() >= 40, "a sleep that was not stopped ended before its time");
            // A token that can never be stopped works as well.
            co_await TaskPool::sleep(1ms, std::stop_token());
            co_await TaskPool::sleep(-5ms, source.get_token()); // a negative duration: at once
        }());
    }

    void sleepNeverEndsBeforeItsDuration_data()
    {
        QTest::addColumn<int>("ms");
        for (int ms : { 50, 120, 300 })
            QTest::addRow("%d ms", ms) << ms;
    }

    void sleepNeverEndsBeforeItsDuration()
    {
        // "After duration" means never before it, on a monotonic clock: a timer that fires early is
        // re-armed for the rest. Only a lower bound is checked (a busy machine may be late).
        QFETCH(int, ms);
        run([](std::chrono::milliseconds duration) -> QCoro::Task<void> {
            std::stop_source source;
            for (int round = 0; round < 4; ++round) {
                const auto start = std::chrono::steady_clock::now();
                co_await TaskPool::sleep(duration, source.get_token());
                const auto elapsed = std::chrono::steady_clock::now() - start;
                CO_VERIFY2(elapsed >= duration,
                           qPrintable(QStringLiteral("sleep(%1 ms) ended after %2 ms")
                                          .arg(duration.count())
                                          .arg(std::chrono::duration<double, std::milli>(elapsed).count())));
            }
        }(std::chrono::milliseconds(ms)));
    }

    void sleepBeyondIntMaxDoesNotEndEarly_data()
    {
        QTest::addColumn<qint64>("ms");
        QTest::newRow("2^32 + 100 ms") << qint64(beyondIntMax.count());
        QTest::newRow("INT_MAX + 1 ms") << qint64(std::numeric_limits<int>::max()) + 1;
        QTest::newRow("milliseconds::max()") << qint64(std::chrono::milliseconds::max().count());
    }

    void sleepBeyondIntMaxDoesNotEndEarly()
    {
        // Longer than a QTimer's int of milliseconds: still pending long after the truncated
        // duration would have passed, and a stop still ends it.
        QFETCH(qint64, ms);
        run([](std::chrono::milliseconds duration) -> QCoro::Task<void> {
            std::stop_source source;
            Observed observed;
            Frame frame = awaitIn(TaskPool::sleep(duration, source.get_token()), &observed);
            co_await sleep(500ms);
            CO_COMPARE(observed.resumed, 0);
            source.request_stop();
            co_await until([&] { return observed.resumed > 0; });
            CO_VERIFY(observed.cancelled);
            CO_VERIFY(frame.done());
        }(std::chrono::milliseconds(ms)));
    }

    void sleepOfNoTimeCompletesAtOnce()
    {
        // Zero or negative: completes at once, without suspending (as std::this_thread::sleep_for).
        run([]() -> QCoro::Task<void> {
            std::stop_source source;
            for (const auto duration : { 0ms, -1ms, -5000ms, std::chrono::milliseconds::min() }) {
                auto awaiter = TaskPool::sleep(duration, source.get_token()).operator co_await();
                CO_VERIFY(awaiter.await_ready()); // no suspension
                awaiter.await_resume(); // does not throw
                Observed observed;
                Frame frame = awaitIn(TaskPool::sleep(duration, source.get_token()), &observed);
                CO_COMPARE(observed.resumed, 1); // before the call returned
                CO_VERIFY(!observed.cancelled && !observed.failed);
            }
            // A stop requested before the co_await still wins.
            source.request_stop();
            CO_VERIFY_THROWS(co_await TaskPool::sleep(0ms, source.get_token()), CancelledError);
            CO_VERIFY_THROWS(co_await TaskPool::sleep(-1ms, source.get_token()), CancelledError);
        }());
    }

    void sleepEndsOnStopThroughTheEventLoop()
    {
        run([]() -> QCoro::Task<void> {
            std::stop_source source;
            Observed observed;
            Frame frame = awaitIn(TaskPool::sleep(60s, source.get_token()), &observed);
            co_await turns();
            CO_COMPARE(observed.resumed, 0);
            source.request_stop();
            CO_COMPARE(observed.resumed, 0); // never inside request_stop()
            co_await until([&] { return observed.resumed > 0; }); // the watchdog is far below 60 s
            CO_VERIFY(observed.cancelled);
            CO_VERIFY(frame.done());
            co_await turns();
            CO_COMPARE(observed.resumed, 1);
        }());
    }

    void sleepStoppedBeforeTheAwaitThrowsAtOnce()
    {
        run([]() -> QCoro::Task<void> {
            std::stop_source source;
            source.request_stop();
            auto awaiter = TaskPool::sleep(60s, source.get_token()).operator co_await();
            CO_VERIFY(awaiter.await_ready()); // no suspension
            CO_VERIFY_THROWS(awaiter.await_resume(), CancelledError);
            CO_VERIFY_THROWS(co_await TaskPool::sleep(60s, source.get_token()), CancelledError);
        }());
    }

    void sleepIsSubmittable()
    {
        // The result is movable: it can be stored, and submitted in both forms.
        run([]() -> QCoro::Task<void> {
            TaskPool::TaskPoolExecutor pool(2);
            std::stop_source source;
            auto stored = TaskPool::sleep(60s, source.get_token());
            auto viaAwaitable = pool.submit(std::move(stored));
            auto viaCallable = pool.submit(
                [](int value, std::stop_token token) -> QCoro::Task<int> {
                    co_await TaskPool::sleep(60s, token);
                    co_return value;
                },
                1, source.get_token());
            co_await turns();
            CO_VERIFY(!viaAwaitable.done() && !viaCallable.done());
            source.request_stop();
            CO_VERIFY_THROWS(co_await viaAwaitable, CancelledError);
            CO_VERIFY_THROWS(co_await viaCallable, CancelledError);
            co_await pool.shutdown();
        }());
    }

    // ---- untilCancelled ------------------------------------------------------------------------

    void untilCancelledCompletesOnStop()
    {
        run([]() -> QCoro::Task<void> {
            std::stop_source source;
            Observed observed;
            Frame frame = awaitIn(TaskPool::untilCancelled(source.get_token()), &observed);
            co_await turns(5);
            CO_COMPARE(observed.resumed, 0);
            source.request_stop();
            CO_COMPARE(observed.resumed, 0); // never inside request_stop()
            co_await until([&] { return observed.resumed > 0; });
            CO_VERIFY(!observed.cancelled && !observed.failed); // completes, does not throw
            // Already stopped: no suspension.
            auto awaiter = TaskPool::untilCancelled(source.get_token()).operator co_await();
            CO_VERIFY(awaiter.await_ready());
            co_await TaskPool::untilCancelled(source.get_token());
        }());
    }

    // ---- cancellable(awaitable): the general race -----------------------------------------------

    void raceCompletionWins()
    {
        run([]() -> QCoro::Task<void> {
            std::stop_source source;
            const auto token = source.get_token();
            // A QCoro::Task, a Future, a plain QFuture finished later, a signal, a QTimer *.
            CO_COMPARE(co_await TaskPool::cancellable(sleepy(7), token), 7);
            CO_COMPARE(co_await TaskPool::cancellable(successfulFuture(), token), 42);
            QPromise<QString> promise;
            promise.start();
            QTimer::singleShot(5ms, [&] {
                promise.addResult(QStringLiteral("later"));
                promise.finish();
            });
            CO_COMPARE(co_await TaskPool::cancellable(promise.future(), token), QStringLiteral("later"));
            Emitter emitter;
            QTimer::singleShot(5ms, &emitter, [&] { Q_EMIT emitter.fired(9); });
            const auto emitted = co_await TaskPool::cancellable(qCoro(&emitter, &Emitter::fired), token);
            CO_COMPARE(emitted, 9);
            QTimer timer;
            timer.setSingleShot(true);
            timer.start(5ms);
            co_await TaskPool::cancellable(&timer, token);
            CO_VERIFY(!timer.isActive());
            // Its exception is rethrown, a cancelled future's CancelledError too.
            CO_VERIFY_THROWS(co_await TaskPool::cancellable(exceptionFuture(), token), std::runtime_error);
            CO_VERIFY_THROWS(co_await TaskPool::cancellable(cancelledFuture(), token), CancelledError);
            // A stop after the completion changes nothing.
            auto task = TaskPool::cancellable(sleepy(3), token);
            co_await turns();
            co_await sleep(20ms);
            source.request_stop();
            CO_COMPARE(co_await std::move(task), 3);
        }());
    }

    void raceStopWinsOverANeverFinishingFuture()
    {
        run([]() -> QCoro::Task<void> {
            std::stop_source source;
            Observed observed;
            std::optional<QPromise<int>> promise(std::in_place);
            promise->start();
            Frame frame = awaitIn(TaskPool::cancellable(promise->future(), source.get_token()), &observed);
            co_await turns();
            CO_COMPARE(observed.resumed, 0);
            source.request_stop();
            CO_COMPARE(observed.resumed, 0); // never inside request_stop()
            co_await until([&] { return observed.resumed > 0; });
            CO_VERIFY(observed.cancelled);
            CO_VERIFY(frame.done());
            frame.destroy(); // the frame that moved on is gone
            // The abandoned operation completes later: nothing resumes the frame.
            promise->addResult(5);
            promise->finish();
            co_await turns(5);
            CO_COMPARE(observed.resumed, 1);
            // An abandoned future that ends cancelled (its promise destroyed unfinished) too.
            std::stop_source second;
            Observed again;
            QPromise<int> unfinished;
            unfinished.start();
            Frame other = awaitIn(TaskPool::cancellable(unfinished.future(), second.get_token()), &again);
            second.request_stop();
            co_await until([&] { return again.resumed > 0; });
            CO_VERIFY(again.cancelled);
            promise.reset();
        }());
    }

    void raceStopWinsOverASignalNeverEmitted()
    {
        run([]() -> QCoro::Task<void> {
            std::stop_source source;
            Observed observed;
            Emitter emitter;
            Frame frame
                = awaitIn(TaskPool::cancellable(qCoro(&emitter, &Emitter::fired), source.get_token()), &observed);
            co_await turns();
            source.request_stop();
            co_await until([&] { return observed.resumed > 0; });
            CO_VERIFY(observed.cancelled);
            // Emitted after all: the abandoned await ends by itself, and resumes nobody.
            Q_EMIT emitter.fired(1);
            co_await turns(5);
            CO_COMPARE(observed.resumed, 1);
        }());
    }

    void raceStopWinsOverARunningTask()
    {
        // The abandoned task runs to its end (it is not destroyed under its own feet).
        run([]() -> QCoro::Task<void> {
            std::stop_source source;
            bool ended = false;
            auto body = [](bool* ended) -> QCoro::Task<int> {
                co_await sleep(30ms);
                *ended = true;
                co_return 1;
            };
            auto raced = TaskPool::cancellable(body(&ended), source.get_token());
            source.request_stop();
            CO_VERIFY_THROWS(co_await std::move(raced), CancelledError);
            CO_VERIFY(!ended);
            co_await until([&] { return ended; });
        }());
    }

    void raceStoppedBeforeTheAwait()
    {
        run([]() -> QCoro::Task<void> {
            std::stop_source source;
            source.request_stop();
            QPromise<int> promise;
            promise.start();
            Observed observed;
            Frame frame = awaitIn(TaskPool::cancellable(promise.future(), source.get_token()), &observed);
            CO_COMPARE(observed.resumed, 1); // at once, no suspension
            CO_VERIFY(observed.cancelled);
            promise.addResult(1);
            promise.finish();
            co_await turns(5);
            CO_COMPARE(observed.resumed, 1);
            // Stopped, yet already finished: stop still wins at the co_await.
            CO_VERIFY_THROWS(co_await TaskPool::cancellable(successfulFuture(), source.get_token()), CancelledError);
        }());
    }

    // ---- cancellable(QProcess *) -----------------------------------------------------------------

    void processTerminatedOnStop()
    {
        run([]() -> QCoro::Task<void> {
            QProcess process;
            co_await startSleeper(process);
            CO_COMPARE(process.state(), QProcess::Running);
            const qint64 pid = process.processId();
            CO_VERIFY(processExists(pid));
            std::stop_source source;
            Observed observed;
            QProcess::ProcessState stateAtResume = QProcess::Running;
            auto awaitProcess = [](QProcess* process, std::stop_token token, Observed* observed,
                                   QProcess::ProcessState* stateAtResume) -> Frame {
                try {
                    co_await TaskPool::cancellable(process, token);
                } catch (const CancelledError&) {
                    observed->cancelled = true;
                }
                *stateAtResume = process->state();
                ++observed->resumed;
            };
            Frame frame = awaitProcess(&process, source.get_token(), &observed, &stateAtResume);
            co_await turns();
            CO_COMPARE(observed.resumed, 0);
            source.request_stop();
            CO_COMPARE(observed.resumed, 0);
            CO_COMPARE(process.state(), QProcess::Running); // terminate() comes from the event loop
            co_await until([&] { return observed.resumed > 0; }); // far below 30 s
            CO_VERIFY(observed.cancelled);
            CO_COMPARE(stateAtResume, QProcess::NotRunning); // resumed once it had really ended
            CO_COMPARE(process.exitStatus(), QProcess::CrashExit); // by SIGTERM
            CO_VERIFY2(!processExists(pid), "the process is still there");
        }());
    }

    void processKilledAfterTheGrace()
    {
        run([]() -> QCoro::Task<void> {
            QProcess process;
            co_await startSleeper(process, true); // ignores SIGTERM
            CO_COMPARE(process.state(), QProcess::Running);
            const qint64 pid = process.processId();
            std::stop_source source;
            Observed observed;
            Frame frame = awaitIn(TaskPool::cancellable(&process, source.get_token(), 400ms), &observed);
            QElapsedTimer elapsed;
            elapsed.start();
            source.request_stop();
            co_await sleep(100ms);
            CO_COMPARE(observed.resumed, 0); // SIGTERM ignored: not before the kill
            CO_COMPARE(process.state(), QProcess::Running);
            co_await until([&] { return observed.resumed > 0; });
            CO_VERIFY(elapsed.elapsed() >= 350); // killed after the grace, not before
            CO_VERIFY(observed.cancelled);
            CO_COMPARE(process.state(), QProcess::NotRunning);
            CO_VERIFY2(!processExists(pid), "the process is still there");
        }());
    }

    void processNotKilledBeforeTheGrace_data()
    {
        QTest::addColumn<int>("ms");
        for (int ms : { 120, 300, 500 })
            QTest::addRow("%d ms", ms) << ms;
    }

    void processNotKilledBeforeTheGrace()
    {
        // A process that ignores SIGTERM ends by the kill, which never comes before the grace has
        // passed since the stop, on a monotonic clock (only a lower bound: a busy machine is late).
        QFETCH(int, ms);
        run([](std::chrono::milliseconds grace) -> QCoro::Task<void> {
            std::optional<std::chrono::steady_clock::time_point> endedAt; // outlives the process
            QProcess process;
            KillOnExit cleanup { process };
            co_await startSleeper(process, true); // ignores SIGTERM
            CO_COMPARE(process.state(), QProcess::Running);
            const qint64 pid = process.processId();
            QObject::connect(&process, &QProcess::stateChanged, &process, [&](QProcess::ProcessState state) {
                if (state == QProcess::NotRunning && !endedAt)
                    endedAt = std::chrono::steady_clock::now();
            });
            std::stop_source source;
            Observed observed;
            Frame frame = awaitIn(TaskPool::cancellable(&process, source.get_token(), grace), &observed);
            const auto stoppedAt = std::chrono::steady_clock::now();
            source.request_stop();
            co_await until([&] { return observed.resumed > 0; });
            CO_VERIFY(observed.cancelled);
            CO_VERIFY(endedAt.has_value());
            const auto lived = *endedAt - stoppedAt;
            CO_VERIFY2(lived >= grace,
                       qPrintable(QStringLiteral("killed %1 ms after the stop, with a grace of %2 ms")
                                      .arg(std::chrono::duration<double, std::milli>(lived).count())
                                      .arg(grace.count())));
            CO_COMPARE(process.exitStatus(), QProcess::CrashExit); // by SIGKILL
            CO_VERIFY2(!processExists(pid), "the process is still there");
        }(std::chrono::milliseconds(ms)));
    }

    void processGraceBeyondIntMaxDoesNotKillAtOnce_data()
    {
        QTest::addColumn<qint64>("ms");
        QTest::newRow("2^32 + 100 ms") << qint64(beyondIntMax.count());
        QTest::newRow("milliseconds::max(): never") << qint64(std::chrono::milliseconds::max().count());
    }

    void processGraceBeyondIntMaxDoesNotKillAtOnce()
    {
        // A grace longer than a QTimer's int of milliseconds: terminate() only, for now; the await
        // still ends once the process does (killed here by the test).
        QFETCH(qint64, ms);
        run([](std::chrono::milliseconds grace) -> QCoro::Task<void> {
            QProcess process;
            KillOnExit cleanup { process };
            co_await startSleeper(process, true); // ignores SIGTERM
            CO_COMPARE(process.state(), QProcess::Running);
            const qint64 pid = process.processId();
            std::stop_source source;
            Observed observed;
            Frame frame = awaitIn(TaskPool::cancellable(&process, source.get_token(), grace), &observed);
            source.request_stop();
            co_await sleep(400ms);
            CO_COMPARE(process.state(), QProcess::Running); // not killed
            CO_COMPARE(observed.resumed, 0);
            process.kill();
            co_await until([&] { return observed.resumed > 0; });
            CO_VERIFY(observed.cancelled);
            CO_COMPARE(process.state(), QProcess::NotRunning);
            CO_VERIFY2(!processExists(pid), "the process is still there");
        }(std::chrono::milliseconds(ms)));
    }

    void processNegativeGraceIsRefused()
    {
        // Refused when called, naming the parameter; nothing is touched.
        run([]() -> QCoro::Task<void> {
            QProcess process;
            KillOnExit cleanup { process };
            co_await startSleeper(process, true);
            CO_COMPARE(process.state(), QProcess::Running);
            std::stop_source source;
            for (const auto grace : { -1ms, -3000ms, std::chrono::milliseconds::min() }) {
                QString message;
                try {
                    static_cast<void>(TaskPool::cancellable(&process, source.get_token(), grace));
                } catch (const std::invalid_argument& error) {
                    message = QString::fromUtf8(error.what());
                }
                CO_VERIFY2(message.contains(QLatin1String("grace")), qPrintable(message));
            }
            CO_VERIFY(!source.stop_requested());
            co_await turns();
            CO_COMPARE(process.state(), QProcess::Running);
            // The same process, awaited with a grace of 0: killed right after terminate().
            source.request_stop();
            CO_VERIFY_THROWS(co_await TaskPool::cancellable(&process, source.get_token(), 0ms), CancelledError);
            CO_COMPARE(process.state(), QProcess::NotRunning);
            CO_COMPARE(process.exitStatus(), QProcess::CrashExit);
        }());
    }

    void processThatEndsByItself()
    {
        run([]() -> QCoro::Task<void> {
            QProcess process;
            process.start(QStringLiteral("/bin/sh"), { QStringLiteral("-c"), QStringLiteral("exit 3") });
            std::stop_source source;
            const bool ran = co_await TaskPool::cancellable(&process, source.get_token());
            CO_VERIFY(ran);
            CO_COMPARE(process.state(), QProcess::NotRunning);
            CO_COMPARE(process.exitStatus(), QProcess::NormalExit);
            CO_COMPARE(process.exitCode(), 3);
            // Not running any more: false at once.
            CO_VERIFY(!co_await TaskPool::cancellable(&process, source.get_token()));
        }());
    }

    void processNotStarted()
    {
        run([]() -> QCoro::Task<void> {
            QProcess process;
            std::stop_source source;
            auto awaiter = TaskPool::cancellable(&process, source.get_token()).operator co_await();
            CO_VERIFY(awaiter.await_ready());
            CO_VERIFY(!awaiter.await_resume());
            // One that fails to start.
            process.start(QStringLiteral("/nonexistent/taskpool-no-such-program"));
            CO_VERIFY(!co_await TaskPool::cancellable(&process, source.get_token()));
            // Stopped: CancelledError at once.
            source.request_stop();
            CO_VERIFY_THROWS(co_await TaskPool::cancellable(&process, source.get_token()), CancelledError);
        }());
    }

    void processStoppedBeforeTheAwait()
    {
        run([]() -> QCoro::Task<void> {
            QProcess process;
            co_await startSleeper(process);
            const qint64 pid = process.processId();
            std::stop_source source;
            source.request_stop();
            CO_VERIFY_THROWS(co_await TaskPool::cancellable(&process, source.get_token()), CancelledError);
            CO_COMPARE(process.state(), QProcess::NotRunning); // it waited for the end
            CO_VERIFY(!processExists(pid));
        }());
    }

    void processDestroyedWhileAwaited()
    {
        run([]() -> QCoro::Task<void> {
            auto* process = new QProcess;
            co_await startSleeper(*process);
            std::stop_source source;
            Observed observed;
            Frame frame = awaitIn(TaskPool::cancellable(process, source.get_token()), &observed);
            co_await turns();
            process->deleteLater(); // ~QProcess kills it and waits
            co_await until([&] { return observed.resumed > 0; });
            CO_VERIFY(!observed.cancelled && !observed.failed);
            source.request_stop(); // nothing left to touch
            co_await turns();
            CO_COMPARE(observed.resumed, 1);
        }());
    }

    // ---- cancellable(QNetworkReply *) ------------------------------------------------------------

    void replyAbortedOnStop()
    {
        run([]() -> QCoro::Task<void> {
            HttpServer server(60s); // answers long after the watchdog
            CO_VERIFY(server.isListening());
            QNetworkAccessManager manager;
            std::unique_ptr<QNetworkReply> reply(manager.get(QNetworkRequest(server.url(QStringLiteral("/slow")))));
            std::stop_source source;
            Observed observed;
            Frame frame = awaitIn(TaskPool::cancellable(reply.get(), source.get_token()), &observed);
            co_await until([&] { return server.requests().size() == 1; }); // it reached the server
            source.request_stop();
            CO_COMPARE(observed.resumed, 0);
            CO_VERIFY(!reply->isFinished()); // abort() comes from the event loop
            co_await until([&] { return observed.resumed > 0; });
            CO_VERIFY(observed.cancelled);
            CO_VERIFY(reply->isFinished());
            CO_COMPARE(reply->error(), QNetworkReply::OperationCanceledError);
            // The server sees the connection closed before its answer.
            co_await until([&] { return server.count(HttpServer::Fate::Aborted) == 1; });
            CO_COMPARE(server.count(HttpServer::Fate::Served), 0);
        }());
    }

    void replyServedWhenNotStopped()
    {
        run([]() -> QCoro::Task<void> {
            HttpServer server(20ms);
            CO_VERIFY(server.isListening());
            QNetworkAccessManager manager;
            std::unique_ptr<QNetworkReply> reply(manager.get(QNetworkRequest(server.url(QStringLiteral("/fast")))));
            std::stop_source source;
            QNetworkReply* finished = co_await TaskPool::cancellable(reply.get(), source.get_token());
            CO_COMPARE(finished, reply.get());
            CO_COMPARE(reply->error(), QNetworkReply::NoError);
            CO_COMPARE(reply->readAll(), QByteArray("served /fast"));
            CO_COMPARE(server.count(HttpServer::Fate::Served), 1);
            source.request_stop(); // after the end: changes nothing
            CO_COMPARE(co_await TaskPool::cancellable(reply.get(), std::stop_token()),
                       reply.get()); // finished: at once
        }());
    }

    void replyStoppedBeforeTheAwait()
    {
        run([]() -> QCoro::Task<void> {
            HttpServer server(60s);
            QNetworkAccessManager manager;
            std::unique_ptr<QNetworkReply> reply(manager.get(QNetworkRequest(server.url(QStringLiteral("/never")))));
            std::stop_source source;
            source.request_stop();
            auto awaiter = TaskPool::cancellable(reply.get(), source.get_token()).operator co_await();
            CO_VERIFY(awaiter.await_ready());
            CO_VERIFY_THROWS(awaiter.await_resume(), CancelledError);
            CO_VERIFY(reply->isFinished()); // aborted at once
            CO_COMPARE(reply->error(), QNetworkReply::OperationCanceledError);
            co_await turns();
            CO_COMPARE(server.count(HttpServer::Fate::Served), 0);
        }());
    }

    void replyDeletedWhileAwaited()
    {
        run([]() -> QCoro::Task<void> {
            HttpServer server(60s);
            QNetworkAccessManager manager;
            QNetworkReply* reply = manager.get(QNetworkRequest(server.url(QStringLiteral("/deleted"))));
            std::stop_source source;
            std::optional<QNetworkReply*> got;
            auto awaitReply
                = [](QNetworkReply* reply, std::stop_token token, std::optional<QNetworkReply*>* got) -> Frame {
                *got = co_await TaskPool::cancellable(reply, token);
            };
            Frame frame = awaitReply(reply, source.get_token(), &got);
            co_await until([&] { return server.requests().size() == 1; });
            reply->deleteLater();
            co_await until([&] { return got.has_value(); });
            CO_COMPARE(*got, nullptr);
            source.request_stop(); // nothing left to touch
            co_await turns();
        }());
    }

    // ---- threads ---------------------------------------------------------------------------------

    void stopFromAnotherThread_data()
    {
        QTest::addColumn<QString>("helper");
        for (const char* helper : { "sleep", "untilCancelled", "race", "process" })
            QTest::newRow(helper) << QString::fromLatin1(helper);
    }

    void stopFromAnotherThread()
    {
        // request_stop() in a std::thread: the stop callbacks run there, and the coroutine still
        // resumes in its own thread, from its event loop.
        QFETCH(QString, helper);
        run([](QString helper) -> QCoro::Task<void> {
            std::stop_source source;
            Observed observed;
            QPromise<int> promise;
            promise.start();
            QProcess process;
            std::optional<Frame> frame;
            if (helper == QLatin1String("sleep")) {
                frame.emplace(awaitIn(TaskPool::sleep(60s, source.get_token()), &observed));
            } else if (helper == QLatin1String("untilCancelled")) {
                frame.emplace(awaitIn(TaskPool::untilCancelled(source.get_token()), &observed));
            } else if (helper == QLatin1String("race")) {
                frame.emplace(awaitIn(TaskPool::cancellable(promise.future(), source.get_token()), &observed));
            } else {
                co_await startSleeper(process);
                frame.emplace(awaitIn(TaskPool::cancellable(&process, source.get_token()), &observed));
            }
            co_await turns();
            std::thread::id callbackThread, stopperThread;
            std::stop_callback record(source.get_token(), [&] { callbackThread = std::this_thread::get_id(); });
            std::thread stopper([&] {
                stopperThread = std::this_thread::get_id();
                source.request_stop();
            });
            stopper.join();
            CO_VERIFY(callbackThread == stopperThread); // the callbacks ran in the stopping thread
            CO_COMPARE(observed.resumed, 0); // posted to this thread, which was busy here
            co_await until([&] { return observed.resumed > 0; });
            CO_VERIFY(observed.thread == QThread::currentThread());
            CO_COMPARE(observed.cancelled, helper != QLatin1String("untilCancelled"));
            if (helper == QLatin1String("process"))
                CO_COMPARE(process.state(), QProcess::NotRunning);
            promise.finish();
            co_await turns();
            CO_COMPARE(observed.resumed, 1);
        }(helper));
    }

    void awaitingInAWorkerThread()
    {
        // Coroutines await in a QThread with its own event loop; this thread stops them. They
        // resume in the worker.
        run([]() -> QCoro::Task<void> {
            std::stop_source source;
            QThread worker;
            QObject context;
            context.moveToThread(&worker);
            QPromise<int> promise;
            promise.start();
            WorkerAwait sleeping, racing;
            std::atomic<bool> raceOperationEnded = false;
            // Started once everything it shares exists: the thread's creation orders those writes
            // before its reads (a hand-over through Qt's event queue is invisible to TSan).
            worker.start();
            QMetaObject::invokeMethod(&context, [&] {
                static_cast<void>(awaitInWorker(TaskPool::sleep(60s, source.get_token()), &sleeping));
                static_cast<void>(awaitInWorker(
                    TaskPool::cancellable(untilFinished(promise.future(), &raceOperationEnded), source.get_token()),
                    &racing));
            });
            co_await until([&] { return sleeping.suspended.load() && racing.suspended.load(); });
            co_await sleep(10ms);
            CO_VERIFY(!sleeping.resumed.load() && !racing.resumed.load());
            source.request_stop();
            co_await until([&] { return sleeping.resumed.load() && racing.resumed.load(); });
            CO_VERIFY(sleeping.cancelled.load() && racing.cancelled.load());
            CO_VERIFY(sleeping.thread.load() == &worker);
            CO_VERIFY(racing.thread.load() == &worker);
            promise.finish(); // the abandoned operation ends, in the worker
            co_await until([&] { return raceOperationEnded.load(); });
            worker.quit();
            co_await until([&] { return worker.wait(0); });
        }());
    }

    // ---- the awaiting coroutine destroyed while suspended -------------------------------------------

    void awaiterDestroyedWhileSuspended_data()
    {
        QTest::addColumn<QString>("helper");
        QTest::addColumn<bool>("stopFirst"); // stop requested (resumption posted) before the destroy
        for (const char* helper : { "sleep", "untilCancelled", "process", "reply" }) {
            QTest::addRow("%s, then stop", helper) << QString::fromLatin1(helper) << false;
            QTest::addRow("%s, stop first", helper) << QString::fromLatin1(helper) << true;
        }
    }

    void awaiterDestroyedWhileSuspended()
    {
        QFETCH(QString, helper);
        QFETCH(bool, stopFirst);
        run([](QString helper, bool stopFirst) -> QCoro::Task<void> {
            std::stop_source source;
            Observed observed;
            QProcess process;
            HttpServer server(60s);
            QNetworkAccessManager manager;
            std::unique_ptr<QNetworkReply> reply;
            std::optional<Frame> frame;
            if (helper == QLatin1String("sleep")) {
                frame.emplace(awaitIn(TaskPool::sleep(60s, source.get_token()), &observed));
            } else if (helper == QLatin1String("untilCancelled")) {
                frame.emplace(awaitIn(TaskPool::untilCancelled(source.get_token()), &observed));
            } else if (helper == QLatin1String("process")) {
                co_await startSleeper(process);
                frame.emplace(awaitIn(TaskPool::cancellable(&process, source.get_token()), &observed));
            } else {
                reply.reset(manager.get(QNetworkRequest(server.url(QStringLiteral("/gone")))));
                frame.emplace(awaitIn(TaskPool::cancellable(reply.get(), source.get_token()), &observed));
            }
            co_await turns();
            CO_VERIFY(!frame->done());
            if (stopFirst)
                source.request_stop(); // posts the resumption (or the terminate/abort)
            frame.reset(); // destroys the suspended frame, and its awaiter with it
            if (!stopFirst)
                source.request_stop(); // no stop callback left pointing into the frame
            co_await turns(5);
            CO_COMPARE(observed.resumed, 0);
            // The objects it watched end later: nothing of the awaiter is connected to them.
            if (process.state() != QProcess::NotRunning) {
                process.terminate();
                co_await until([&] { return process.state() == QProcess::NotRunning; });
            }
            if (reply && !reply->isFinished())
                reply->abort();
            co_await turns();
            CO_COMPARE(observed.resumed, 0);
        }(helper, stopFirst));
    }
};

QTEST_GUILESS_MAIN(tst_CancelHelpers)
#include "tst_cancelhelpers.moc"
