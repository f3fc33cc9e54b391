// SPDX-License-Identifier: MIT
// Every cancellation source against every cancellation helper, end to end: a task of the pool
// awaits a helper on its own stop token (a sleep, a `sleep 30` process, a request to a loopback
// server that never answers, a never-finishing QFuture raced through cancellable(), the token
// itself), and each source must end the await, the real work (the process is gone, the server sees
// the connection closed) and the task, freeing its worker.
#include "testutil.h"

#include <taskpool/cancel.h>
#include <taskpool/network.h>

#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QProcess>
#include <QTcpServer>
#include <QTcpSocket>

#include <memory>
#include <thread>

using namespace TestUtil;
using TaskPool::CancelledError;
using TaskPool::Future;
using TaskPool::MapOptions;
using TaskPool::SubmitOptions;
using TaskPool::TaskPoolExecutor;
using TaskPool::TimeoutError;

namespace {

enum class Source { Cancel, CancelFromThread, PlainCancel, Shutdown, Timeout, Context, MapDropped };
enum class Helper { Sleep, Process, Reply, Race, Token };

//! Accepts connections, reads requests, never answers; counts the connections its clients closed.
class SilentServer : public QObject {
public:
    SilentServer()
    {
        connect(&m_server, &QTcpServer::newConnection, this, [this] {
            while (QTcpSocket* socket = m_server.nextPendingConnection()) {
                ++requests;
                connect(socket, &QTcpSocket::readyRead, socket, [socket] { socket->readAll(); });
                connect(socket, &QTcpSocket::disconnected, this, [this, socket] {
                    ++closedByClient;
                    socket->deleteLater();
                });
            }
        });
        m_server.listen(QHostAddress::LocalHost);
    }
    QUrl url() const { return QUrl(QStringLiteral("http://127.0.0.1:%1/slow").arg(m_server.serverPort())); }
    int requests = 0;
    int closedByClient = 0;

private:
    QTcpServer m_server;
};

//! What the task saw and left behind.
struct Trace {
    bool started = false;
    bool ended = false; // the coroutine reached its end (by CancelledError, as the helpers throw)
    bool cancelledAtAwait = false;
    std::unique_ptr<QProcess> process;
    QNetworkReply* reply = nullptr;
};

//! The task: awaits \a helper on its stop token.
QCoro::Task<int> awaitHelper(std::stop_token stop, Helper helper, Trace* trace, QNetworkAccessManager* manager,
                             QUrl url)
{
    trace->started = true;
    try {
        switch (helper) {
        case Helper::Sleep: {
            auto wait = TaskPool::sleep(std::chrono::seconds(30), stop);
            co_await wait;
            break;
        }
        case Helper::Process: {
            trace->process = std::make_unique<QProcess>();
            trace->process->start(QStringLiteral("sleep"), { QStringLiteral("30") });
            auto wait = TaskPool::cancellable(trace->process.get(), stop);
            co_await wait;
            break;
        }
        case Helper::Reply: {
            trace->reply = manager->get(QNetworkRequest(url));
            auto wait = TaskPool::cancellable(trace->reply, stop);
            co_await wait;
            break;
        }
        case Helper::Race: {
            QPromise<int> never; // its future never finishes: only the stop ends the race
            never.start();
            auto wait = TaskPool::cancellable(never.future(), stop);
            co_await wait;
            break;
        }
        case Helper::Token: {
            auto wait = TaskPool::untilCancelled(stop);
            co_await wait;
            trace->ended = true;
            throw CancelledError(); // a task that awaits its token itself, and ends cancelled
        }
        }
    } catch (const CancelledError&) {
        trace->cancelledAtAwait = true;
        trace->ended = true;
        throw;
    }
    trace->ended = true;
    co_return 1;
}

} // namespace

Q_DECLARE_METATYPE(Source)
Q_DECLARE_METATYPE(Helper)

class tst_CancelMatrix : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void everySourceEndsEveryHelper_data()
    {
        QTest::addColumn<Source>("source");
        QTest::addColumn<Helper>("helper");
        const std::pair<Source, const char*> sources[] = {
            { Source::Cancel, "cancel" },
            { Source::CancelFromThread, "cancel from a thread" },
            { Source::PlainCancel, "QFuture::cancel" },
            { Source::Shutdown, "shutdown(cancelFutures)" },
            { Source::Timeout, "timeout" },
            { Source::Context, "context destroyed" },
            { Source::MapDropped, "map dropped" },
        };
        const std::pair<Helper, const char*> helpers[] = {
            { Helper::Sleep, "sleep" }, { Helper::Process, "process" }, { Helper::Reply, "reply" },
            { Helper::Race, "race" },   { Helper::Token, "token" },
        };
        for (const auto& [source, sourceName] : sources) {
            for (const auto& [helper, helperName] : helpers)
                QTest::addRow("%s / %s", sourceName, helperName) << source << helper;
        }
    }

    void everySourceEndsEveryHelper()
    {
        QFETCH(Source, source);
        QFETCH(Helper, helper);
        run(
            [](Source source, Helper helper) -> QCoro::Task<void> {
                SilentServer server;
                QNetworkAccessManager manager;
                auto pool = std::make_unique<TaskPoolExecutor>(2);
                auto context = std::make_unique<QObject>();
                Trace trace;
                Future<int> future;
                std::optional<QCoro::AsyncGenerator<int>> map;
                if (source == Source::MapDropped) {
                    map.emplace(
                        pool->map([&](std::stop_token stop,
                                      int) { return awaitHelper(stop, helper, &trace, &manager, server.url()); },
                                  QList<int> { 0 }));
                } else {
                    SubmitOptions options;
                    if (source == Source::Timeout)
                        options.timeout = std::chrono::milliseconds(50);
                    if (source == Source::Context)
                        options.context = context.get();
                    future = pool->submit(options, awaitHelper, helper, &trace, &manager, server.url());
                }
                co_await until([&] { return trace.started && (helper != Helper::Reply || server.requests > 0); });
                co_await turns(); // suspended in the helper now
                CO_VERIFY(!trace.ended);

                switch (source) {
                case Source::Cancel:
                    CO_VERIFY(future.cancel());
                    break;
                case Source::CancelFromThread: {
                    std::thread other([&] { future.cancel(); });
                    other.join();
                    break;
                }
                case Source::PlainCancel: {
                    QFuture<int> plain = future;
                    plain.cancel();
                    break;
                }
                case Source::Shutdown: {
                    auto shutdown = pool->shutdown({ .wait = false, .cancelFutures = true });
                    co_await shutdown;
                    break;
                }
                case Source::Timeout:
                    break; // it comes by itself
                case Source::Context:
                    context.reset();
                    break;
                case Source::MapDropped:
                    map.reset();
                    break;
                }

                // The await ends with CancelledError, the task ends, its worker frees.
                co_await until([&] { return trace.ended && pool->activeCount() == 0; });
                CO_VERIFY(trace.cancelledAtAwait);
                // The real work ended too.
                if (helper == Helper::Process)
                    CO_COMPARE(trace.process->state(), QProcess::NotRunning);
                if (helper == Helper::Reply) {
                    co_await until([&] { return server.closedByClient > 0; }); // the server saw the abort
                    CO_COMPARE(trace.reply->error(), QNetworkReply::OperationCanceledError);
                    trace.reply->deleteLater();
                }
                // And the future tells which source it was.
                if (source == Source::Timeout) {
                    CO_VERIFY_THROWS(co_await future, TimeoutError);
                } else if (source != Source::MapDropped) {
                    CO_VERIFY(future.done());
                    CO_VERIFY(future.cancelled());
                }
                co_await pool->whenIdle();
            }(source, helper),
            20s);
    }
};

QTEST_GUILESS_MAIN(tst_CancelMatrix)
#include "tst_cancelmatrix.moc"
