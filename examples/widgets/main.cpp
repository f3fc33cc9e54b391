// SPDX-License-Identifier: MIT
// A Qt Widgets front end for a TaskPoolExecutor: jobs with live progress, a bounded pool, Cancel.
//
//   taskpool-widgets                      the window; press Start
//   taskpool-widgets --auto-quit          runs a batch to the end, a second one cancelled halfway,
//                                         checks the outcome and exits (0 when it was as expected)
//   taskpool-widgets --auto-quit --screenshot jobs.png
#include "jobwindow.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QCoro/QCoroTimer>
#include <QFuture>
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

//! Drives the window through its buttons and checks what it shows; the exit status.
QCoro::Task<int> autoRun(JobWindow& window, QString screenshot)
{
    QStringList problems;
    auto expect = [&problems](bool ok, const QString& what) {
        if (!ok)
            problems << what;
    };
    window.setStepTime(15ms);

    // Batch 1: 12 jobs, 3 workers, run to the end.
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
    std::printf("batch 1: %d of 12 jobs done, peak active %d of 3 workers\n", done, window.peakActive());

    // Batch 2: 20 jobs, 5 workers (through the spin box), cancelled after 4 jobs finished.
    window.workersBox()->setValue(5);
    expect(window.pool().maxWorkers() == 5, QStringLiteral("the spin box did not set maxWorkers"));
    window.jobCountBox()->setValue(20);
    window.startButton()->click();
    while (true) {
        int finished = 0;
        for (const auto& job : window.jobs())
            finished += job.state == JobWindow::State::Done ? 1 : 0;
        if (finished >= 4 || !window.isRunning())
            break;
        co_await nextSignal(&window, &JobWindow::jobSettled);
    }
    window.cancelButton()->click();
    co_await batchOver(window);
    co_await poolIdle(window);
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
    expect(window.startButton()->isEnabled() && !window.cancelButton()->isEnabled(),
           QStringLiteral("the buttons did not come back"));
    std::printf("batch 2: %d done, %d cancelled, %d failed; peak active %d of 5 workers\n", done, cancelled, failed,
                window.peakActive());

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
                                      QStringLiteral("Run a batch, cancel a second one, check the outcome and exit (0 "
                                                     "when it was as expected)."));
    const QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                        QStringLiteral("With --auto-quit: save a picture of the window to <file> "
                                                       "halfway through the first batch."),
                                        QStringLiteral("file"));
    parser.addOptions({ autoQuit, screenshot });
    parser.process(app);

    JobWindow window;
    window.show();
    if (parser.isSet(autoQuit)) {
        // Never hang a test run.
        QTimer::singleShot(60s, &app, [] {
            std::printf("auto-quit: FAILED (timed out)\n");
            QCoreApplication::exit(3);
        });
        QTimer::singleShot(0, &window, [&window, file = parser.value(screenshot)] {
            autoRun(window, file).then([](int status) { QCoreApplication::exit(status); });
        });
    }
    return app.exec();
}
