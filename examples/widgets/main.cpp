// SPDX-License-Identifier: MIT
// A Qt Widgets front end for a TaskPoolExecutor: download jobs with live progress, a bounded pool,
// Cancel that aborts the requests in flight, Pause/Resume, and a window whose end cancels its jobs.
// The jobs download from a small HTTP server on 127.0.0.1 that the program starts, which counts
// the requests it served and those the client aborted.
//
//   taskpool-widgets                      the window; press Start
//   taskpool-widgets --auto-quit          runs a batch paused and resumed halfway, a second one
//                                         cancelled halfway, a third one closed halfway, checks the
//                                         outcome and exits (0 when it was as expected)
//   taskpool-widgets --auto-quit --screenshot jobs.png
#include "jobwindow.h"
#include "localhttpserver.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QCoro/QCoroTimer>
#include <QFuture>
#include <QLabel>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTimer>

#include <cstdio>

using namespace std::chrono_literals;

namespace {

//! The next emission of a signal, as a future (QtFuture::connect) awaited through TaskPool::Future.
/*!
 * (Awaiting `qCoro(object, &Class::signal)` in a loop is avoided here: with QCoro 0.8, a signal
 * emitted twice before the coroutine resumes can resume it twice.)
 */
template <typename Sender, typename Signal> QCoro::Task<void> nextSignal(Sender* sender, Signal signal)
{
    auto future = QtFuture::connect(sender, signal);
    co_await TaskPool::Future(future);
}

//! Awaits `batchFinished`, unless the batch is already over.
QCoro::Task<void> batchOver(JobWindow& window)
{
    if (window.isRunning())
        co_await nextSignal(&window, &JobWindow::batchFinished);
}

//! Awaits the pool's `idle` signal, unless it is idle already.
QCoro::Task<void> poolIdle(JobWindow& window)
{
    if (window.pool().activeCount() > 0 || window.pool().pendingCount() > 0)
        co_await nextSignal(&window.pool(), &TaskPool::TaskPoolExecutor::idle);
}

//! Awaits the next turn of the event loop.
QCoro::Task<void> nextTurn()
{
    co_await QCoro::sleepFor(0ms);
}

//! Awaits until the server holds no request any more (answered, or seen aborted).
QCoro::Task<void> serverDrained(LocalHttpServer& server)
{
    while (server.inFlight() > 0)
        co_await nextSignal(&server, &LocalHttpServer::countsChanged);
}

//! Slows the server down, then awaits until every request it holds is a slow one: none of them can
//! be answered before the client aborts it, however slowly this process runs.
QCoro::Task<void> onlySlowRequestsInFlight(LocalHttpServer& server)
{
    const qint64 received = server.served() + server.aborted() + server.inFlight();
    server.setLatency(60s);
    while (server.served() + server.aborted() < received || server.inFlight() == 0)
        co_await nextSignal(&server, &LocalHttpServer::countsChanged);
}

//! How many parts the jobs of the current batch download in all.
int totalParts(const JobWindow& window)
{
    int parts = 0;
    for (const auto& job : window.jobs())
        parts += job.steps;
    return parts;
}

//! Awaits until \a count jobs of the batch are done (or the batch is over).
QCoro::Task<void> jobsDone(JobWindow& window, int count)
{
    while (window.isRunning()) {
        int done = 0;
        for (const auto& job : window.jobs())
            done += job.state == JobWindow::State::Done ? 1 : 0;
        if (done >= count)
            break;
        co_await nextSignal(&window, &JobWindow::jobSettled);
    }
}

//! Drives the window through its buttons and checks what it shows; the exit status.
QCoro::Task<int> autoRun(QPointer<JobWindow> guarded, LocalHttpServer& server, QString screenshot)
{
    QStringList problems;
    auto expect = [&problems](bool ok, const QString& what) {
        if (!ok)
            problems << what;
    };
    JobWindow& window = *guarded; // until batch 3 closes it
    const auto fastLatency = server.latency();

    // Batch 1: 12 jobs, 3 workers, paused after 2 jobs are done, then resumed and run to the end.
    window.workersBox()->setValue(3);
    window.jobCountBox()->setValue(12);
    if (!screenshot.isEmpty()) {
        // A picture halfway through the first batch.
        auto connection = std::make_shared<QMetaObject::Connection>();
        *connection = QObject::connect(&window, &JobWindow::jobSettled, &window, [&window, screenshot, connection] {
            int settled = 0;
            for (const auto& job : window.jobs())
                settled += job.state == JobWindow::State::Done ? 1 : 0;
            if (settled < 5)
                return;
            QObject::disconnect(*connection);
            const bool saved = window.grab().save(screenshot);
            std::printf("screenshot %s: %s\n", saved ? "saved" : "NOT saved", qPrintable(screenshot));
        });
    }
    window.startButton()->click();
    expect(window.isRunning() && !window.startButton()->isEnabled() && window.cancelButton()->isEnabled(),
           QStringLiteral("Start did not start a batch"));
    co_await jobsDone(window, 2);
    window.pauseButton()->click();
    expect(window.pool().isPaused() && window.pauseButton()->text() == QStringLiteral("Resume"),
           QStringLiteral("Pause did not pause the pool"));
    // Paused: the running jobs finish, no queued one starts.
    while (window.pool().activeCount() > 0)
        co_await nextSignal(&window.pool(), &TaskPool::TaskPoolExecutor::activeCountChanged);
    int started = 0;
    for (const auto& job : window.jobs())
        started += job.state != JobWindow::State::Queued ? 1 : 0;
    co_await nextTurn();
    int startedLater = 0;
    for (const auto& job : window.jobs())
        startedLater += job.state != JobWindow::State::Queued ? 1 : 0;
    const int pendingWhilePaused = window.pool().pendingCount();
    expect(pendingWhilePaused > 0 && started < 12 && startedLater == started,
           QStringLiteral("paused: %1 started, %2 pending").arg(startedLater).arg(pendingWhilePaused));
    expect(window.countsLabel()->text().contains(QStringLiteral("paused")),
           QStringLiteral("the status line does not say paused"));
    window.pauseButton()->click();
    expect(!window.pool().isPaused() && window.pauseButton()->text() == QStringLiteral("Pause"),
           QStringLiteral("Resume did not resume the pool"));
    co_await batchOver(window);
    co_await poolIdle(window);
    int done = 0;
    for (const auto& job : window.jobs()) {
        done += job.state == JobWindow::State::Done ? 1 : 0;
        expect(job.result == job.steps * (job.steps + 1) / 2, QStringLiteral("a job's result is wrong"));
        expect(job.bar->value() == job.bar->maximum() && job.bar->maximum() == job.steps,
               QStringLiteral("a job's progress bar is not full"));
    }
    expect(done == 12, QStringLiteral("batch 1: %1 of 12 jobs done").arg(done));
    expect(window.peakActive() == 3, QStringLiteral("batch 1: peak active %1, expected 3").arg(window.peakActive()));
    expect(window.pool().workerCount() <= 3, QStringLiteral("batch 1: more than 3 workers"));
    expect(window.overallBar()->value() == 12 && window.overallBar()->maximum() == 12,
           QStringLiteral("batch 1: the overall bar is not full"));
    expect(server.served() == totalParts(window) && server.aborted() == 0,
           QStringLiteral("batch 1: the server served %1 of %2 parts, %3 aborted")
               .arg(server.served())
               .arg(totalParts(window))
               .arg(server.aborted()));
    std::printf("batch 1: %d of 12 jobs done, peak active %d of 3 workers; paused with %d queued after %d "
                "started, resumed\n",
                done, window.peakActive(), pendingWhilePaused, started);

    // Batch 2: 20 jobs, 5 workers (through the spin box), cancelled after 4 jobs are done: the
    // requests in flight are aborted and every worker is free within a few event-loop turns.
    window.workersBox()->setValue(5);
    expect(window.pool().maxWorkers() == 5, QStringLiteral("the spin box did not set maxWorkers"));
    window.jobCountBox()->setValue(20);
    const qint64 servedBefore2 = server.served();
    window.startButton()->click();
    co_await jobsDone(window, 4);
    co_await onlySlowRequestsInFlight(server);
    const qint64 served0 = server.served(), aborted0 = server.aborted();
    const int inFlightAtCancel = server.inFlight();
    window.cancelButton()->click();
    // The stop callbacks post the aborts to the next turn; an aborted reply resumes its coroutine
    // from the turn after, where it ends with CancelledError and frees its worker. How many turns
    // that takes is the machine's business (a busy one posts later): the bound only ends a hang.
    int turns = 0;
    while (window.pool().activeCount() > 0 && turns < 1000) {
        co_await nextTurn();
        ++turns;
    }
    const int activeAfterCancel = window.pool().activeCount();
    expect(activeAfterCancel == 0,
           QStringLiteral("batch 2: active %1 after %2 event-loop turns").arg(activeAfterCancel).arg(turns));
    expect(window.countsLabel()->text().startsWith(QStringLiteral("active 0 ")),
           QStringLiteral("batch 2: the status line says '%1'").arg(window.countsLabel()->text()));
    co_await batchOver(window);
    co_await poolIdle(window);
    co_await serverDrained(server);
    server.setLatency(fastLatency);
    const qint64 served2 = server.served() - served0, aborted2 = server.aborted() - aborted0;
    int cancelled = 0, failed = 0;
    done = 0;
    for (const auto& job : window.jobs()) {
        done += job.state == JobWindow::State::Done ? 1 : 0;
        cancelled += job.state == JobWindow::State::Cancelled ? 1 : 0;
        failed += job.state == JobWindow::State::Failed ? 1 : 0;
    }
    expect(done + cancelled == 20 && failed == 0,
           QStringLiteral("batch 2: %1 done + %2 cancelled + %3 failed != 20").arg(done).arg(cancelled).arg(failed));
    expect(done >= 4 && cancelled >= 10, QStringLiteral("batch 2: %1 done, %2 cancelled").arg(done).arg(cancelled));
    expect(window.peakActive() <= 5, QStringLiteral("batch 2: peak active %1 > 5").arg(window.peakActive()));
    expect(inFlightAtCancel >= 1 && aborted2 >= inFlightAtCancel && served2 == 0,
           QStringLiteral("batch 2: %1 requests in flight at Cancel, %2 aborted, %3 served after it")
               .arg(inFlightAtCancel)
               .arg(aborted2)
               .arg(served2));
    expect(server.served() - servedBefore2 < totalParts(window),
           QStringLiteral("batch 2: the server served every part"));
    expect(window.startButton()->isEnabled() && !window.cancelButton()->isEnabled(),
           QStringLiteral("the buttons did not come back"));
    std::printf("batch 2: %d done, %d cancelled, %d failed; peak active %d of 5 workers; Cancel aborted %lld "
                "requests in flight (%d at the click), %lld more served; active 0 after %d event-loop turns\n",
                done, cancelled, failed, window.peakActive(), qlonglong(aborted2), inFlightAtCancel, qlonglong(served2),
                turns);

    // Batch 3: 20 jobs, 4 workers, the window closed after 2 jobs are done: it is destroyed
    // (Qt::WA_DeleteOnClose), which cancels its jobs and aborts their requests.
    window.workersBox()->setValue(4);
    window.jobCountBox()->setValue(20);
    const qint64 servedBefore3 = server.served();
    window.startButton()->click();
    co_await jobsDone(window, 2);
    co_await onlySlowRequestsInFlight(server);
    QList<TaskPool::Future<int>> futures;
    for (const auto& job : window.jobs())
        futures.append(job.future);
    const int parts3 = totalParts(window);
    const qint64 aborted3 = server.aborted(), served3 = server.served();
    const int inFlightAtClose = server.inFlight();
    auto gone = QtFuture::connect(&window, &QObject::destroyed);
    window.close();
    co_await TaskPool::Future(gone);
    expect(guarded.isNull(), QStringLiteral("batch 3: the window was not destroyed"));
    int settled = 0, cancelled3 = 0;
    for (const auto& future : std::as_const(futures)) {
        settled += future.done() ? 1 : 0;
        cancelled3 += future.cancelled() ? 1 : 0;
    }
    co_await serverDrained(server);
    for (int turn = 0; turn < 5; ++turn)
        co_await nextTurn(); // the aborted coroutines end and free themselves
    expect(settled == 20 && cancelled3 >= 10,
           QStringLiteral("batch 3: %1 of 20 futures settled, %2 cancelled").arg(settled).arg(cancelled3));
    expect(inFlightAtClose >= 1 && server.aborted() - aborted3 >= inFlightAtClose && server.served() == served3,
           QStringLiteral("batch 3: %1 requests in flight at the close, %2 aborted, %3 served after it")
               .arg(inFlightAtClose)
               .arg(server.aborted() - aborted3)
               .arg(server.served() - served3));
    expect(server.served() - servedBefore3 < parts3, QStringLiteral("batch 3: the server served every part"));
    std::printf("batch 3: window closed; %d of 20 futures settled at once, %d cancelled; %lld requests aborted "
                "(%d in flight at the close), %lld of %d parts served\n",
                settled, cancelled3, qlonglong(server.aborted() - aborted3), inFlightAtClose,
                qlonglong(server.served() - servedBefore3), parts3);

    for (const QString& problem : std::as_const(problems))
        std::printf("FAILED: %s\n", qPrintable(problem));
    std::printf("%s\n", problems.isEmpty() ? "auto-quit: OK" : "auto-quit: FAILED");
    std::fflush(stdout);
    co_return problems.isEmpty() ? 0 : 1;
}

} // namespace

int main(int argc, char* argv[])
{
    QApplication app(argc, argv);
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Jobs on a TaskPoolExecutor, in a Qt Widgets window."));
    parser.addHelpOption();
    const QCommandLineOption autoQuit(QStringLiteral("auto-quit"),
                                      QStringLiteral("Run a batch paused and resumed, cancel a second one, close the "
                                                     "window during a third, check the outcome and exit (0 when it "
                                                     "was as expected)."));
    const QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                        QStringLiteral("With --auto-quit: save a picture of the window to <file> "
                                                       "halfway through the first batch."),
                                        QStringLiteral("file"));
    parser.addOptions({ autoQuit, screenshot });
    parser.process(app);

    // The HTTP server the jobs download from: each part is answered after the latency.
    LocalHttpServer server(parser.isSet(autoQuit) ? 15ms : 60ms);
    if (!server.listen()) {
        std::fprintf(stderr, "cannot listen on 127.0.0.1: %s\n", qPrintable(server.errorString()));
        return 2;
    }
    // Closing the window destroys it, and with it its jobs: queued ones never start, running ones
    // have their requests aborted.
    QPointer<JobWindow> window = new JobWindow(server.baseUrl());
    window->setAttribute(Qt::WA_DeleteOnClose);
    window->show();
    if (parser.isSet(autoQuit)) {
        app.setQuitOnLastWindowClosed(false); // the run closes the window, then checks and exits
        // Never hang a test run.
        QTimer::singleShot(60s, &app, [] {
            std::printf("auto-quit: FAILED (timed out)\n");
            QCoreApplication::exit(3);
        });
        QTimer::singleShot(0, window, [window, &server, file = parser.value(screenshot)] {
            autoRun(window, server, file).then([](int status) { QCoreApplication::exit(status); });
        });
    }
    const int status = app.exec();
    delete window; // still open when the run timed out
    return status;
}
