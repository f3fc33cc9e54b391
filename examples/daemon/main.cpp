// SPDX-License-Identifier: MIT
// A headless tool that fetches many URLs with at most N requests in flight: TaskPoolExecutor::map
// with a buffer over QNetworkAccessManager requests, a live progress line, a summary, and Ctrl-C
// cancelling what is queued and aborting what is in flight through
// shutdown({.cancelFutures = true}) and each task's std::stop_token. Optional scheduling controls:
// a per-request timeout, a rate limit and a per-host limit.
#include "localhttpserver.h"
#include "sigintwatcher.h"

#include <taskpool/network.h>
#include <taskpool/taskpool.h>

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QCoro/QCoroTimer>
#include <QElapsedTimer>
#include <QFile>
#include <QHash>
#include <QNetworkAccessManager>
#include <QNetworkProxy>
#include <QNetworkReply>
#include <QPointer>
#include <QTimer>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <deque>
#include <memory>
#include <optional>
#include <ranges>
#include <stop_token>
#include <unistd.h>
#include <vector>

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
    int timeoutMs = 10000; // 0: none
    bool timeoutGiven = false;
    int rate = 0; // task starts per second; 0: no limit
    int perHost = 0; // requests in flight per host; 0: no limit
    int interruptAfter = 0;
    bool check = false;
    bool quiet = false;
};

//! Replies are deleted from the event loop, never from inside their own signals; one deleted
//! meanwhile (with its QNetworkAccessManager) is left alone.
struct ReplyGuard {
    QPointer<QNetworkReply> reply;
    ~ReplyGuard()
    {
        if (reply)
            reply->deleteLater();
    }
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
                       "and fetches from it. Ctrl-C cancels the queued requests, aborts the ones in flight and\n"
                       "prints the summary."));
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
                                     QStringLiteral("A request fails with TimeoutError (and is aborted) <ms> "
                                                    "milliseconds after it started: the pool's defaultTimeout "
                                                    "(default 10000; 0: none)."),
                                     QStringLiteral("ms"), QStringLiteral("10000"));
    const QCommandLineOption rate(QStringLiteral("rate"),
                                  QStringLiteral("At most <n> requests start in any second (setRateLimit(n, 1s), a "
                                                 "strict sliding window); written n/s or n."),
                                  QStringLiteral("n/s"));
    const QCommandLineOption perHost(QStringLiteral("per-host"),
                                     QStringLiteral("At most <n> requests in flight per host (setMaxPerKey(n), each "
                                                    "request keyed by its URL's host)."),
                                     QStringLiteral("n"));
    const QCommandLineOption interruptAfter(QStringLiteral("interrupt-after"),
                                            QStringLiteral("Send ourselves SIGINT after <n> results, as Ctrl-C "
                                                           "would (for tests)."),
                                            QStringLiteral("n"), QStringLiteral("0"));
    const QCommandLineOption check(QStringLiteral("check"),
                                   QStringLiteral("Check the run's invariants (counts, order, the bound on requests "
                                                  "in flight); the exit status is 0 only when they held."));
    const QCommandLineOption quiet({ QStringLiteral("q"), QStringLiteral("quiet") },
                                   QStringLiteral("No progress line."));
    parser.addOptions({ workers, buffer, count, baseUrl, urlFile, serve, latency, failEvery, timeout, rate, perHost,
                        interruptAfter, check, quiet });
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
    options.timeoutGiven = parser.isSet(timeout);
    if (parser.isSet(rate)) {
        QString text = parser.value(rate);
        if (text.endsWith(QLatin1String("/s")))
            text.chop(2);
        bool ok = false;
        options.rate = text.toInt(&ok);
        if (!ok || options.rate < 1) {
            std::fprintf(stderr,
                         "daemon: --rate needs a whole number of requests per second >= 1 (e.g. 20/s), not "
                         "'%s'\n",
                         qPrintable(parser.value(rate)));
            return false;
        }
    }
    if (parser.isSet(perHost) && !number(perHost, 1, options.perHost))
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
        // The scheduling controls: a timeout counted from each request's start (TimeoutError, and
        // the task's stop token aborts the reply), a strict rate limit, a bound per key (host).
        if (m_options.timeoutMs > 0)
            m_pool.setDefaultTimeout(std::chrono::milliseconds(m_options.timeoutMs));
        if (m_options.rate > 0)
            m_pool.setRateLimit(m_options.rate, 1s);
        if (m_options.perHost > 0)
            m_pool.setMaxPerKey(m_options.perHost);
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

        try {
            if (m_options.perHost > 0)
                co_await fetchKeyed();
            else
                co_await fetchMapped();
        } catch (const TaskPool::ShutdownError&) {
            // Ctrl-C came before the first submission.
        }
        co_await m_pool.shutdown(); // waits for the requests still running (aborted ones end at once)
        m_activeAfterShutdown = m_pool.activeCount();
        if (m_server)
            co_await serverDrained();
        const double seconds = double(m_elapsed.nsecsElapsed()) / 1e9;
        m_progressTimer.stop();
        if (!m_options.quiet)
            printProgress(true);
        printSummary(seconds);
        printControls();
        if (m_options.check)
            co_return checkInvariants() ? 0 : 1;
        co_return m_interrupted ? 130 : (m_failed > 0 ? 1 : 0);
    }

private:
    //! The URLs through map() with a buffer: results in input order, at most `buffer` submitted
    //! ahead. mapSettled() yields every item's outcome (a failure, a TimeoutError or a cancellation
    //! does not end the loop); after Ctrl-C it yields what was submitted, then ends.
    QCoro::Task<void> fetchMapped()
    {
        const TaskPool::MapOptions mapOptions { .bufferSize = m_options.buffer };
        auto results = m_pool.mapSettled(
            mapOptions, [this](std::stop_token stop, int index) { return fetch(std::move(stop), index); },
            std::views::iota(0, m_total));
        QCORO_FOREACH(auto&& result, results)
        {
            record(result);
        }
    }

    //! The same pipeline by hand with submit(), which takes a key per task (map() does not): each
    //! request is keyed by its host, and at most --per-host of them run at once per host, while
    //! requests to other hosts go on.
    QCoro::Task<void> fetchKeyed()
    {
        std::deque<TaskPool::Future<FetchResult>> window; // submitted, not yet recorded, in input order
        auto takeFirst = [&window]() -> QCoro::Task<TaskPool::Result<FetchResult>> {
            auto [result] = co_await TaskPool::gatherSettled(window.front());
            window.pop_front();
            co_return result;
        };
        for (int index = 0; index < m_total && !m_pool.isShutdown(); ++index) {
            const TaskPool::SubmitOptions options { .key = urlAt(index).host() };
            window.push_back(m_pool.submit(
                options, [this](std::stop_token stop, int i) { return fetch(std::move(stop), i); }, index));
            if (int(window.size()) >= m_options.buffer)
                record(co_await takeFirst());
        }
        while (!window.empty())
            record(co_await takeFirst());
    }

    //! One URL: runs in a worker of the pool, so at most maxWorkers of these are in flight. The
    //! pool stops \a stop on Ctrl-C (shutdown with cancelFutures) and at the timeout: the reply is
    //! then aborted and the co_await throws CancelledError, which frees the worker at once.
    QCoro::Task<FetchResult> fetch(std::stop_token stop, int index)
    {
        m_starts.push_back(m_elapsed.nsecsElapsed());
        FetchResult result;
        result.index = index;
        const QUrl url = urlAt(index);
        QNetworkRequest request(url);
        request.setAttribute(QNetworkRequest::Http2AllowedAttribute, false);
        const ReplyGuard guard { managerForCurrentWorker()->get(request) };
        const InFlight inFlight(*this, url.host());
        QNetworkReply* reply = co_await TaskPool::cancellable(guard.reply.data(), std::move(stop));
        if (!reply)
            throw TaskPool::CancelledError(); // its manager is gone
        result.status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
        result.bytes = reply->readAll().size();
        result.ok = reply->error() == QNetworkReply::NoError;
        if (!result.ok)
            result.error = reply->errorString();
        co_return result;
    }

    //! Counts a request in flight, overall and for its host, while it lives.
    class InFlight {
    public:
        InFlight(Daemon& daemon, const QString& host) : m_daemon(daemon), m_host(host)
        {
            m_daemon.m_peakInFlight = std::max(m_daemon.m_peakInFlight, ++m_daemon.m_inFlight);
            int& count = m_daemon.m_hostInFlight[m_host];
            m_daemon.m_peakPerHost = std::max(m_daemon.m_peakPerHost, ++count);
        }
        ~InFlight()
        {
            --m_daemon.m_inFlight;
            --m_daemon.m_hostInFlight[m_host];
        }
        InFlight(const InFlight&) = delete;
        InFlight& operator=(const InFlight&) = delete;

    private:
        Daemon& m_daemon;
        QString m_host;
    };

    //! After the run: the server sees the aborted connections close from its own event-loop turns.
    QCoro::Task<void> serverDrained()
    {
        QElapsedTimer waited;
        waited.start();
        while (m_server->inFlight() > 0 && waited.elapsed() < 5000)
            co_await QCoro::sleepFor(5ms);
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

    //! One URL's outcome, in input order: a FetchResult, a failure (TimeoutError) or a cancellation.
    void record(const TaskPool::Result<FetchResult>& outcome)
    {
        const int index = m_next++;
        if (outcome.isCancelled())
            return; // Ctrl-C: counted with the URLs that never started
        if (outcome.hasValue()) {
            const FetchResult& result = outcome.value();
            if (result.index != index)
                m_outOfOrder = true;
            if (result.ok)
                ++m_ok;
            else
                fail(result.error);
        } else {
            try {
                std::rethrow_exception(outcome.error());
            } catch (const TaskPool::TimeoutError& e) {
                ++m_timedOut;
                fail(QString::fromUtf8(e.what()));
            } catch (const std::exception& e) {
                fail(QString::fromUtf8(e.what()));
            }
        }
        if (m_options.interruptAfter > 0 && m_ok + m_failed == m_options.interruptAfter) {
            // The self-check's Ctrl-C: what is in flight now is answered no more, so it must be
            // aborted (otherwise, on a busy machine, the server might answer before the abort).
            if (m_server)
                m_server->hold();
            ::raise(SIGINT); // handled like a Ctrl-C, through the event loop
        }
    }

    void fail(const QString& error)
    {
        ++m_failed;
        if (m_errors.size() < 5)
            m_errors.append(error);
    }

    //! Ctrl-C: queued URLs are cancelled (they never start), no more are submitted, and the running
    //! requests are asked to stop: their stop tokens abort the replies, and their workers free as
    //! soon as the coroutines end. The loop then takes what was submitted and ends.
    void interrupt()
    {
        if (m_interrupted)
            return;
        m_interrupted = true;
        m_inFlightAtInterrupt = m_inFlight;
        m_serverInFlightAtInterrupt = m_server ? m_server->inFlight() : 0;
        if (m_tty && !m_options.quiet)
            std::fputs("\n", stderr);
        std::fprintf(stderr,
                     "daemon: interrupted: cancelling the queued requests, aborting %d in flight (Ctrl-C again to "
                     "quit at once)\n",
                     m_inFlight);
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
            std::printf("  server: %lld served, %lld aborted by the client", qlonglong(m_server->served()),
                        qlonglong(m_server->aborted()));
            if (m_interrupted)
                std::printf(" (%d in flight at Ctrl-C, %d of them unanswered; pool active %d after shutdown)",
                            m_inFlightAtInterrupt, m_serverInFlightAtInterrupt, m_activeAfterShutdown);
            std::printf("\n");
            const double serial = double(m_ok + m_failed) * m_options.latencyMs / 1000.0;
            if (serial > 0 && seconds > 0 && m_options.rate == 0) {
                std::printf("  serial time: %d x %d ms = %.2f s; took %.2f s, %.1fx faster\n", m_ok + m_failed,
                            m_options.latencyMs, serial, seconds, serial / seconds);
                if (m_options.rate == 0 && m_options.perHost == 0) {
                    const int rounds = (m_ok + m_failed + m_options.workers - 1) / m_options.workers;
                    std::printf("  best possible with %d in flight: %d rounds x %d ms = %.2f s\n", m_options.workers,
                                rounds, m_options.latencyMs, rounds * m_options.latencyMs / 1000.0);
                }
            }
        }
        std::fflush(stdout);
    }

    //! The most requests that started in any window of \a window (the starts are sorted).
    int maxStartsIn(std::chrono::nanoseconds window) const
    {
        int most = 0;
        size_t first = 0;
        for (size_t last = 0; last < m_starts.size(); ++last) {
            while (m_starts[last] - m_starts[first] >= window.count())
                ++first;
            most = std::max(most, int(last - first + 1));
        }
        return most;
    }

    //! The window the observed rate is counted in: a request notes its start a little after the
    //! pool counted it (by a scheduling delay, longer on a busy machine), so two notes may be closer
    //! than the pool's two readings; the window is shortened by that much.
    static constexpr std::chrono::nanoseconds rateWindow = std::chrono::milliseconds(950);

    //! The rate and per-host limits next to what was observed.
    void printControls() const
    {
        if (m_options.rate > 0) {
            const double span = m_starts.size() > 1 ? double(m_starts.back() - m_starts.front()) / 1e9 : 0.0;
            std::printf("  rate: limit %d starts per second (strict sliding window); observed at most %d starts in "
                        "any 1 s window (counted in 950 ms: the requests note their starts after the pool; %zu "
                        "starts in %.2f s from the first to the last)\n",
                        m_options.rate, maxStartsIn(rateWindow), m_starts.size(), span);
        }
        if (m_options.perHost > 0)
            std::printf("  per host: limit %d in flight per host; observed peak %d in flight for one host (%lld "
                        "host%s)\n",
                        m_options.perHost, m_peakPerHost, qlonglong(m_hostInFlight.size()),
                        m_hostInFlight.size() == 1 ? "" : "s");
        if (m_options.timeoutGiven || m_timedOut > 0)
            std::printf("  timeout: %d ms from each request's start (0: none); %d timed out and were aborted\n",
                        m_options.timeoutMs, m_timedOut);
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
        if (m_activeAfterShutdown != 0)
            problems << QStringLiteral("activeCount %1 after shutdown").arg(m_activeAfterShutdown);
        if (m_options.rate > 0 && maxStartsIn(rateWindow) > m_options.rate)
            problems << QStringLiteral("%1 starts in a 1 s window, limit %2")
                            .arg(maxStartsIn(rateWindow))
                            .arg(m_options.rate);
        if (m_options.perHost > 0 && m_peakPerHost > m_options.perHost)
            problems << QStringLiteral("%1 in flight for one host, limit %2").arg(m_peakPerHost).arg(m_options.perHost);
        // Timeouts are asserted only where they cannot be a race: far shorter or far longer than
        // the server's latency.
        if (m_server && m_options.timeoutMs > 0 && m_options.latencyMs >= 2 * m_options.timeoutMs && m_timedOut != done)
            problems << QStringLiteral("%1 of %2 requests timed out, expected all").arg(m_timedOut).arg(done);
        if ((m_options.timeoutMs == 0 || (m_server && 2 * m_options.latencyMs <= m_options.timeoutMs))
            && m_timedOut != 0)
            problems << QStringLiteral("%1 requests timed out, expected none").arg(m_timedOut);
        if (m_server) {
            const int peak = m_server->peakInFlight();
            const qint64 received = m_server->served() + m_server->aborted() + m_server->inFlight();
            if (m_interrupted) {
                // Ctrl-C aborted what was in flight: every request the server had not answered yet
                // (it answers nothing after a self-check's Ctrl-C) was aborted by the client.
                if (m_server->isHeld() && m_server->aborted() < m_serverInFlightAtInterrupt)
                    problems << QStringLiteral("%1 requests unanswered at Ctrl-C, %2 aborted")
                                    .arg(m_serverInFlightAtInterrupt)
                                    .arg(m_server->aborted());
                if (m_server->served() >= m_total)
                    problems << QStringLiteral("interrupted, yet the server served all %1 requests").arg(m_total);
            } else if (m_server->aborted() != m_timedOut) {
                problems << QStringLiteral("the server saw %1 requests aborted, %2 timed out")
                                .arg(m_server->aborted())
                                .arg(m_timedOut);
            }
            if (received < done)
                problems
                    << QStringLiteral("the server received %1 requests, the client ended %2").arg(received).arg(done);
            // An aborted request leaves the server's count only once it sees the connection close,
            // which may come after the next request arrives: its view is exact only without aborts
            // (the client's own peak, above, holds the limit in every case).
            if (m_server->aborted() == 0 && peak > m_options.workers)
                problems << QStringLiteral("server peak in flight %1 > %2 workers").arg(peak).arg(m_options.workers);
            if (m_server->inFlight() != 0)
                problems << QStringLiteral("the server still has %1 requests in flight").arg(m_server->inFlight());
            if (!m_interrupted) {
                if (m_server->served() != done - m_timedOut)
                    problems << QStringLiteral("the server answered %1 requests, the client got %2")
                                    .arg(m_server->served())
                                    .arg(done - m_timedOut);
                const int reachable = std::min(
                    { m_options.workers, m_total, m_options.perHost > 0 ? m_options.perHost : m_options.workers });
                if (m_options.buffer >= m_options.workers && m_options.rate == 0 && m_server->aborted() == 0
                    && peak != reachable)
                    problems << QStringLiteral("server peak in flight %1, expected %2: the pool did not use its "
                                               "workers")
                                    .arg(peak)
                                    .arg(reachable);
                if (m_urls.isEmpty() && m_timedOut == 0) {
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
    int m_next = 0; // the input index of the next outcome
    int m_timedOut = 0;
    int m_inFlightAtInterrupt = 0;
    int m_serverInFlightAtInterrupt = 0; // requests the local server had not answered at Ctrl-C
    int m_activeAfterShutdown = 0;
    QHash<QString, int> m_hostInFlight;
    int m_peakPerHost = 0;
    std::vector<qint64> m_starts; // when each request started (ns since the run began), in order
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
