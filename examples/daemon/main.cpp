// SPDX-License-Identifier: MIT
// A headless tool that fetches many URLs with at most N requests in flight: TaskPoolExecutor::map
// with a buffer over QNetworkAccessManager requests, a live progress line, a summary, and Ctrl-C
// cancelling what is still queued through shutdown({.cancelFutures = true}).
#include "localhttpserver.h"
#include "sigintwatcher.h"

#include <taskpool/taskpool.h>

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QCoro/QCoroNetworkReply>
#include <QElapsedTimer>
#include <QFile>
#include <QHash>
#include <QNetworkAccessManager>
#include <QNetworkProxy>
#include <QNetworkReply>
#include <QTimer>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <ranges>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

struct Options {
    int workers = 8;
    int buffer = 0; // 0: twice the workers
    int count = 100;
    bool countGiven = false;
    QUrl baseUrl;
    QString urlFile;
    bool serve = false;
    int latencyMs = 50;
    int failEvery = 0;
    int timeoutMs = 10000;
    int interruptAfter = 0;
    bool check = false;
    bool quiet = false;
};

//! Replies are deleted from the event loop, never from inside their own signals.
struct DeleteLater {
    void operator()(QObject* object) const { object->deleteLater(); }
};

//! What one request gave.
struct FetchResult {
    int index = 0;
    bool ok = false;
    int status = 0;
    qint64 bytes = 0;
    QString error;
};

//! Parses the command line into \a options; prints the problem and returns false when it is wrong.
bool parseOptions(const QCoreApplication& app, Options& options)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("Fetches URLs with at most N requests in flight (TaskPoolExecutor::map with a buffer).\n"
                       "The URLs come from --url-file, or are generated as <base-url>/item/<i>.\n"
                       "--serve starts a local HTTP server on 127.0.0.1 (ephemeral port) with an artificial latency\n"
                       "and fetches from it. Ctrl-C cancels the queued requests and prints the summary."));
    parser.addHelpOption();
    const QCommandLineOption workers({ QStringLiteral("w"), QStringLiteral("workers") },
                                     QStringLiteral("At most <n> requests in flight (default 8)."), QStringLiteral("n"),
                                     QStringLiteral("8"));
    const QCommandLineOption buffer({ QStringLiteral("b"), QStringLiteral("buffer") },
                                    QStringLiteral("map() buffer: URLs submitted ahead of the results (default 2 x "
                                                   "workers)."),
                                    QStringLiteral("n"));
    const QCommandLineOption count({ QStringLiteral("n"), QStringLiteral("count") },
                                   QStringLiteral("How many URLs to fetch (default 100; with --url-file: all of its "
                                                  "lines)."),
                                   QStringLiteral("n"));
    const QCommandLineOption baseUrl(QStringLiteral("base-url"),
                                     QStringLiteral("Base of the generated URLs and of the relative ones of the URL "
                                                    "file."),
                                     QStringLiteral("url"));
    const QCommandLineOption urlFile(QStringLiteral("url-file"),
                                     QStringLiteral("Read the URLs from <file>, one per line ('#' starts a comment)."),
                                     QStringLiteral("file"));
    const QCommandLineOption serve(QStringLiteral("serve"),
                                   QStringLiteral("Start a local HTTP server on 127.0.0.1 and fetch from it."));
    const QCommandLineOption latency(QStringLiteral("latency-ms"),
                                     QStringLiteral("The local server answers after <ms> milliseconds (default 50)."),
                                     QStringLiteral("ms"), QStringLiteral("50"));
    const QCommandLineOption failEvery(QStringLiteral("fail-every"),
                                       QStringLiteral("Every <k>-th generated URL asks for a 500 answer (default: "
                                                      "none)."),
                                       QStringLiteral("k"), QStringLiteral("0"));
    const QCommandLineOption timeout(QStringLiteral("timeout-ms"),
                                     QStringLiteral("A request fails after <ms> milliseconds without data (default "
                                                    "10000)."),
                                     QStringLiteral("ms"), QStringLiteral("10000"));
    const QCommandLineOption interruptAfter(QStringLiteral("interrupt-after"),
                                            QStringLiteral("Send ourselves SIGINT after <n> results, as Ctrl-C "
                                                           "would (for tests)."),
                                            QStringLiteral("n"), QStringLiteral("0"));
    const QCommandLineOption check(QStringLiteral("check"),
                                   QStringLiteral("Check the run's invariants (counts, order, the bound on requests "
                                                  "in flight); the exit status is 0 only when they held."));
    const QCommandLineOption quiet({ QStringLiteral("q"), QStringLiteral("quiet") },
                                   QStringLiteral("No progress line."));
    parser.addOptions(
        { workers, buffer, count, baseUrl, urlFile, serve, latency, failEvery, timeout, interruptAfter, check, quiet });
    parser.process(app);

    auto number = [&](const QCommandLineOption& option, int minimum, int& out) {
        bool ok = false;
        const int value = parser.value(option).toInt(&ok);
        if (!ok || value < minimum) {
            std::fprintf(stderr, "daemon: --%s needs a whole number >= %d, not '%s'\n",
                         qPrintable(option.names().constLast()), minimum, qPrintable(parser.value(option)));
            return false;
        }
        out = value;
        return true;
    };
    if (!number(workers, 1, options.workers) || !number(latency, 0, options.latencyMs)
        || !number(failEvery, 0, options.failEvery) || !number(timeout, 0, options.timeoutMs)
        || !number(interruptAfter, 0, options.interruptAfter))
        return false;
    options.buffer = 2 * options.workers;
    if (parser.isSet(buffer) && !number(buffer, 1, options.buffer))
        return false;
    options.countGiven = parser.isSet(count);
    if (options.countGiven && !number(count, 0, options.count))
        return false;
    options.serve = parser.isSet(serve);
    options.urlFile = parser.value(urlFile);
    options.check = parser.isSet(check);
    options.quiet = parser.isSet(quiet);
    if (parser.isSet(baseUrl)) {
        options.baseUrl = QUrl(parser.value(baseUrl), QUrl::StrictMode);
        if (!options.baseUrl.isValid() || !options.baseUrl.scheme().startsWith(QLatin1String("http"))) {
            std::fprintf(stderr, "daemon: --base-url needs an http(s) URL, not '%s'\n",
                         qPrintable(parser.value(baseUrl)));
            return false;
        }
    }
    if (options.serve && options.baseUrl.isValid()) {
        std::fprintf(stderr, "daemon: --serve and --base-url exclude each other\n");
        return false;
    }
    if (!options.serve && !options.baseUrl.isValid() && options.urlFile.isEmpty()) {
        std::fprintf(stderr, "daemon: say where to fetch from: --serve, --base-url or --url-file (see --help)\n");
        return false;
    }
    if (!parser.positionalArguments().isEmpty()) {
        std::fprintf(stderr, "daemon: unexpected argument '%s'\n", qPrintable(parser.positionalArguments().first()));
        return false;
    }
    return true;
}

//! Fetches the URLs through a TaskPoolExecutor and reports.
class Daemon : public QObject {
public:
    explicit Daemon(Options options) : m_options(std::move(options)), m_pool(m_options.workers, QStringLiteral("fetch"))
    {
        m_progressTimer.setInterval(m_tty ? 100ms : 1000ms);
        connect(&m_progressTimer, &QTimer::timeout, this, [this] { printProgress(false); });
        connect(&m_sigint, &SigintWatcher::interrupted, this, &Daemon::interrupt);
    }

    //! Sets up the server and the URL list; prints the problem and returns false on failure.
    bool prepare()
    {
        if (!m_sigint.isValid())
            std::fprintf(stderr, "daemon: cannot watch SIGINT; Ctrl-C will end the process at once\n");
        if (m_options.serve) {
            m_server.emplace(std::chrono::milliseconds(m_options.latencyMs));
            if (!m_server->listen()) {
                std::fprintf(stderr, "daemon: cannot listen on 127.0.0.1: %s\n", qPrintable(m_server->errorString()));
                return false;
            }
            m_base = m_server->baseUrl();
        } else {
            m_base = m_options.baseUrl;
        }
        if (!m_options.urlFile.isEmpty()) {
            QFile file(m_options.urlFile);
            if (!file.open(QIODevice::ReadOnly | QIODevice::Text)) {
                std::fprintf(stderr, "daemon: cannot read %s: %s\n", qPrintable(m_options.urlFile),
                             qPrintable(file.errorString()));
                return false;
            }
            int line = 0;
            while (!file.atEnd()) {
                ++line;
                const QString text = QString::fromUtf8(file.readLine()).section(QLatin1Char('#'), 0, 0).trimmed();
                if (text.isEmpty())
                    continue;
                QUrl url(text);
                if (url.isRelative() && m_base.isValid())
                    url = m_base.resolved(url);
                if (!url.isValid() || !url.scheme().startsWith(QLatin1String("http"))) {
                    std::fprintf(stderr, "daemon: %s:%d: not an http(s) URL: %s\n", qPrintable(m_options.urlFile), line,
                                 qPrintable(text));
                    return false;
                }
                m_urls.append(url);
            }
            m_total = int(m_urls.size());
            if (m_options.countGiven)
                m_total = std::min(m_total, m_options.count);
        } else {
            m_total = m_options.count;
        }
        return true;
    }

    //! The whole run; gives the exit status.
    QCoro::Task<int> run()
    {
        std::fprintf(stderr, "daemon: fetching %d URLs from %s with %d workers (buffer %d)%s\n", m_total,
                     qPrintable(m_options.urlFile.isEmpty() ? m_base.toString() : m_options.urlFile), m_options.workers,
                     m_options.buffer,
                     m_server ? qPrintable(QStringLiteral(", server latency %1 ms").arg(m_options.latencyMs)) : "");
        m_elapsed.start();
        if (!m_options.quiet)
            m_progressTimer.start();

        const TaskPool::MapOptions mapOptions { .bufferSize = m_options.buffer };
        try {
            auto results = m_pool.map(
                mapOptions, [this](int index) { return fetch(index); }, std::views::iota(0, m_total));
            QCORO_FOREACH(auto&& result, results)
            {
                record(result);
            }
        } catch (const TaskPool::CancelledError&) {
            // The first URL cancelled by Ctrl-C: the generator is gone, and the rest with it.
        } catch (const TaskPool::ShutdownError&) {
            // Ctrl-C came before map() was called.
        }
        co_await m_pool.shutdown(); // waits for requests still running
        const double seconds = double(m_elapsed.nsecsElapsed()) / 1e9;
        m_progressTimer.stop();
        if (!m_options.quiet)
            printProgress(true);
        printSummary(seconds);
        if (m_options.check)
            co_return checkInvariants() ? 0 : 1;
        co_return m_interrupted ? 130 : (m_failed > 0 ? 1 : 0);
    }

private:
    //! One URL: runs in a worker of the pool, so at most maxWorkers of these are in flight.
    QCoro::Task<FetchResult> fetch(int index)
    {
        FetchResult result;
        result.index = index;
        QNetworkRequest request(urlAt(index));
        request.setTransferTimeout(m_options.timeoutMs);
        request.setAttribute(QNetworkRequest::Http2AllowedAttribute, false);
        const std::unique_ptr<QNetworkReply, DeleteLater> reply(managerForCurrentWorker()->get(request));
        m_peakInFlight = std::max(m_peakInFlight, ++m_inFlight);
        co_await qCoro(reply.get()).waitForFinished();
        --m_inFlight;
        result.status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
        result.bytes = reply->readAll().size();
        result.ok = reply->error() == QNetworkReply::NoError;
        if (!result.ok)
            result.error = reply->errorString();
        co_return result;
    }

    //! A QNetworkAccessManager keeps at most 6 connections per host, so each worker of the pool
    //! gets its own: the pool, not the manager, is what bounds the requests in flight. The worker's
    //! name is known during the task's synchronous start, which is where this is called.
    QNetworkAccessManager* managerForCurrentWorker()
    {
        const QString worker = TaskPool::TaskPoolExecutor::currentWorkerName();
        QNetworkAccessManager*& manager = m_managers[worker];
        if (!manager) {
            manager = new QNetworkAccessManager(this);
            manager->setAutoDeleteReplies(false);
            if (m_server)
                manager->setProxy(QNetworkProxy::NoProxy); // straight to 127.0.0.1
        }
        return manager;
    }

    QUrl urlAt(int index) const
    {
        if (!m_urls.isEmpty())
            return m_urls.at(index);
        QUrl url = m_base;
        QString base = url.path();
        while (base.endsWith(QLatin1Char('/')))
            base.chop(1);
        if (m_options.failEvery > 0 && (index + 1) % m_options.failEvery == 0)
            url.setPath(base + QStringLiteral("/status/500"));
        else
            url.setPath(base + QStringLiteral("/item/%1").arg(index));
        return url;
    }

    void record(const FetchResult& result)
    {
        if (result.index != m_ok + m_failed)
            m_outOfOrder = true;
        if (result.ok) {
            ++m_ok;
        } else {
            ++m_failed;
            if (m_errors.size() < 5)
                m_errors.append(result.error);
        }
        if (m_options.interruptAfter > 0 && m_ok + m_failed == m_options.interruptAfter)
            ::raise(SIGINT); // handled like a Ctrl-C, through the event loop
    }

    //! Ctrl-C: queued URLs are cancelled (they never start), no more are submitted, running
    //! requests finish; the map's loop then ends at the first cancelled URL.
    void interrupt()
    {
        if (m_interrupted)
            return;
        m_interrupted = true;
        if (m_tty && !m_options.quiet)
            std::fputs("\n", stderr);
        std::fprintf(stderr, "daemon: interrupted: cancelling the queued requests (Ctrl-C again to quit at once)\n");
        const TaskPool::ShutdownOptions options { .wait = false, .cancelFutures = true };
        m_pool.shutdown(options); // without wait it completes before it returns
    }

    void printProgress(bool final)
    {
        const int done = m_ok + m_failed;
        const double seconds = double(m_elapsed.elapsed()) / 1000.0;
        const QString line = QStringLiteral("[%1/%2] ok %3 failed %4 | in flight %5 (peak %6) | active %7 pending %8 | "
                                            "%9 req/s %10 s")
                                 .arg(done, int(QString::number(m_total).size()))
                                 .arg(m_total)
                                 .arg(m_ok)
                                 .arg(m_failed)
                                 .arg(m_inFlight)
                                 .arg(m_peakInFlight)
                                 .arg(m_pool.activeCount())
                                 .arg(m_pool.pendingCount())
                                 .arg(seconds > 0 ? done / seconds : 0.0, 0, 'f', 1)
                                 .arg(seconds, 0, 'f', 1);
        if (m_tty)
            std::fprintf(stderr, "\r\033[K%s%s", qPrintable(line), final ? "\n" : "");
        else
            std::fprintf(stderr, "%s\n", qPrintable(line));
        std::fflush(stderr);
    }

    int cancelled() const { return m_total - m_ok - m_failed; }

    void printSummary(double seconds)
    {
        std::printf("summary: %d URLs, %d workers, buffer %d%s\n", m_total, m_options.workers, m_options.buffer,
                    m_interrupted ? " (interrupted)" : "");
        std::printf("  ok %d, failed %d, cancelled %d\n", m_ok, m_failed, cancelled());
        for (const QString& error : std::as_const(m_errors))
            std::printf("    failed: %s\n", qPrintable(error));
        std::printf("  elapsed %.3f s, %.1f requests/s\n", seconds, seconds > 0 ? (m_ok + m_failed) / seconds : 0.0);
        std::printf("  peak in flight: %d requests seen by the client", m_peakInFlight);
        if (m_server)
            std::printf(", %d seen by the server", m_server->peakInFlight());
        std::printf(" (bound: %d workers)\n", m_options.workers);
        if (m_server) {
            const int peak = std::max(m_server->peakInFlight(), m_peakInFlight);
            std::printf("  bound %s: at most %d requests were in flight at once (server-observed peak %d %s %d "
                        "workers)\n",
                        peak <= m_options.workers ? "held" : "BROKEN", peak, m_server->peakInFlight(),
                        m_server->peakInFlight() == m_options.workers ? "==" : (peak < m_options.workers ? "<" : ">"),
                        m_options.workers);
            const double serial = double(m_ok + m_failed) * m_options.latencyMs / 1000.0;
            if (serial > 0 && seconds > 0) {
                std::printf("  serial time: %d x %d ms = %.2f s; took %.2f s, %.1fx faster\n", m_ok + m_failed,
                            m_options.latencyMs, serial, seconds, serial / seconds);
                const int rounds = (m_ok + m_failed + m_options.workers - 1) / m_options.workers;
                std::printf("  best possible with %d in flight: %d rounds x %d ms = %.2f s\n", m_options.workers,
                            rounds, m_options.latencyMs, rounds * m_options.latencyMs / 1000.0);
            }
        }
        std::fflush(stdout);
    }

    //! The --check invariants; prints each one that failed.
    bool checkInvariants() const
    {
        QStringList problems;
        const int done = m_ok + m_failed;
        if (cancelled() < 0 || done + cancelled() != m_total)
            problems << QStringLiteral("ok + failed + cancelled = %1, not %2").arg(done + cancelled()).arg(m_total);
        if (m_outOfOrder)
            problems << QStringLiteral("map() yielded results out of input order");
        if (m_peakInFlight > m_options.workers)
            problems
                << QStringLiteral("client peak in flight %1 > %2 workers").arg(m_peakInFlight).arg(m_options.workers);
        if (m_interrupted && cancelled() == 0)
            problems << QStringLiteral("interrupted, but nothing was cancelled");
        if (!m_interrupted && cancelled() != 0)
            problems << QStringLiteral("%1 URLs cancelled without an interrupt").arg(cancelled());
        if (m_server) {
            const int peak = m_server->peakInFlight();
            if (peak > m_options.workers)
                problems << QStringLiteral("server peak in flight %1 > %2 workers").arg(peak).arg(m_options.workers);
            if (m_server->inFlight() != 0)
                problems << QStringLiteral("the server still has %1 requests in flight").arg(m_server->inFlight());
            if (!m_interrupted) {
                if (m_server->served() != done)
                    problems << QStringLiteral("the server answered %1 requests, the client got %2")
                                    .arg(m_server->served())
                                    .arg(done);
                const int reachable = std::min(m_options.workers, m_total);
                if (m_options.buffer >= m_options.workers && peak != reachable)
                    problems << QStringLiteral("server peak in flight %1, expected %2: the pool did not use its "
                                               "workers")
                                    .arg(peak)
                                    .arg(reachable);
                if (m_urls.isEmpty()) {
                    const int expected = m_options.failEvery > 0 ? m_total / m_options.failEvery : 0;
                    if (m_failed != expected)
                        problems << QStringLiteral("%1 failed, expected %2").arg(m_failed).arg(expected);
                }
            }
        }
        for (const QString& problem : std::as_const(problems))
            std::printf("check FAILED: %s\n", qPrintable(problem));
        if (problems.isEmpty())
            std::printf("check: OK (counts add up, results in input order, peak in flight <= %d workers)\n",
                        m_options.workers);
        std::fflush(stdout);
        return problems.isEmpty();
    }

    Options m_options;
    const bool m_tty = ::isatty(STDERR_FILENO) == 1;
    TaskPool::TaskPoolExecutor m_pool;
    SigintWatcher m_sigint;
    std::optional<LocalHttpServer> m_server;
    QHash<QString, QNetworkAccessManager*> m_managers;
    QUrl m_base;
    QList<QUrl> m_urls;
    int m_total = 0;
    int m_ok = 0;
    int m_failed = 0;
    int m_inFlight = 0;
    int m_peakInFlight = 0;
    bool m_outOfOrder = false;
    bool m_interrupted = false;
    QStringList m_errors;
    QElapsedTimer m_elapsed;
    QTimer m_progressTimer;
};

} // namespace

int main(int argc, char* argv[])
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("daemon"));
    Options options;
    if (!parseOptions(app, options))
        return 2;
    Daemon daemon(std::move(options));
    if (!daemon.prepare())
        return 2;
    QTimer::singleShot(0, &daemon,
                       [&daemon] { daemon.run().then([](int status) { QCoreApplication::exit(status); }); });
    return app.exec();
}
