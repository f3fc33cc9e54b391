// SPDX-License-Identifier: MIT
#include "jobwindow.h"

#include <taskpool/network.h>

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QNetworkProxy>
#include <QNetworkReply>
#include <QPointer>
#include <QProgressBar>
#include <QPromise>
#include <QPushButton>
#include <QSpinBox>
#include <QTreeWidget>
#include <QVBoxLayout>

#include <algorithm>
#include <stdexcept>
#include <stop_token>

namespace {

enum Column { NameColumn, StatusColumn, ProgressColumn };

//! A reply is deleted from the event loop, unless it went with its manager already.
struct ReplyGuard {
    QPointer<QNetworkReply> reply;
    ~ReplyGuard()
    {
        if (reply)
            reply->deleteLater();
    }
};

//! A job: downloads `steps` parts of \a url, one request after another, reporting progress through
//! its promise. Its result is the sum 1 + 2 + ... + steps.
/*!
 * The first parameter, a std::stop_token, makes the pool hand the task its stop token: Cancel
 * (Future::cancel()) and the end of the window (SubmitOptions::context) stop it. The request in
 * flight is then aborted, and the co_await throws CancelledError: the coroutine ends there and its
 * worker is free for the next job at once.
 */
QCoro::Task<void> download(std::stop_token stop, QPromise<int>& promise, QPointer<QNetworkAccessManager> manager,
                           QUrl url, int steps)
{
    promise.setProgressRange(0, steps);
    int sum = 0;
    for (int step = 1; step <= steps; ++step) {
        if (!manager)
            throw TaskPool::CancelledError(); // the window is gone
        QUrl part = url;
        part.setQuery(QStringLiteral("part=%1").arg(step));
        QNetworkRequest request(part);
        request.setAttribute(QNetworkRequest::Http2AllowedAttribute, false);
        const ReplyGuard guard { manager->get(request) };
        QNetworkReply* reply = co_await TaskPool::cancellable(guard.reply.data(), stop);
        if (!reply)
            throw TaskPool::CancelledError(); // deleted with its manager
        if (reply->error() != QNetworkReply::NoError)
            throw std::runtime_error(reply->errorString().toStdString());
        sum += step;
        promise.setProgressValue(step);
    }
    promise.addResult(sum);
}

} // namespace

JobWindow::JobWindow(const QUrl& server, QWidget* parent) :
    QWidget(parent), m_server(server), m_pool(3, QStringLiteral("job"))
{
    setWindowTitle(QStringLiteral("TaskPool: jobs"));
    m_manager.setAutoDeleteReplies(false);
    if (server.host() == QLatin1String("127.0.0.1"))
        m_manager.setProxy(QNetworkProxy::NoProxy);

    m_workers = new QSpinBox;
    m_workers->setRange(1, 16);
    m_workers->setValue(m_pool.maxWorkers());
    m_jobCount = new QSpinBox;
    m_jobCount->setRange(1, 100);
    m_jobCount->setValue(12);
    m_start = new QPushButton(QStringLiteral("Start"));
    m_cancel = new QPushButton(QStringLiteral("Cancel"));
    m_pause = new QPushButton(QStringLiteral("Pause"));

    auto* controls = new QHBoxLayout;
    controls->addWidget(new QLabel(QStringLiteral("Workers:")));
    controls->addWidget(m_workers);
    controls->addWidget(new QLabel(QStringLiteral("Jobs:")));
    controls->addWidget(m_jobCount);
    controls->addStretch();
    controls->addWidget(m_start);
    controls->addWidget(m_cancel);
    controls->addWidget(m_pause);

    m_list = new QTreeWidget;
    m_list->setHeaderLabels({ QStringLiteral("Job"), QStringLiteral("Status"), QStringLiteral("Progress") });
    m_list->setRootIsDecorated(false);
    m_list->setSelectionMode(QAbstractItemView::NoSelection);
    m_list->header()->setStretchLastSection(true);
    m_list->setColumnWidth(NameColumn, 90);
    m_list->setColumnWidth(StatusColumn, 150);

    m_overall = new QProgressBar;
    m_overall->setRange(0, 1);
    m_overall->setValue(0);
    m_overall->setFormat(QStringLiteral("%v / %m jobs settled"));
    m_counts = new QLabel;

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(controls);
    layout->addWidget(m_list, 1);
    layout->addWidget(m_overall);
    layout->addWidget(m_counts);
    resize(520, 460);

    // The spin box and the executor's writable maxWorkers property, both ways.
    connect(m_workers, &QSpinBox::valueChanged, &m_pool, &TaskPool::TaskPoolExecutor::setMaxWorkers);
    connect(&m_pool, &TaskPool::TaskPoolExecutor::maxWorkersChanged, m_workers, &QSpinBox::setValue);
    // The overall bar and the counters follow the executor's counts.
    connect(&m_pool, &TaskPool::TaskPoolExecutor::activeCountChanged, this, &JobWindow::updateCounts);
    connect(&m_pool, &TaskPool::TaskPoolExecutor::pendingCountChanged, this, &JobWindow::updateCounts);
    connect(&m_pool, &TaskPool::TaskPoolExecutor::workerCountChanged, this, &JobWindow::updateCounts);
    connect(&m_pool, &TaskPool::TaskPoolExecutor::maxWorkersChanged, this, &JobWindow::updateCounts);
    // Pause holds the queued jobs (running ones go on); the button follows the paused property.
    connect(&m_pool, &TaskPool::TaskPoolExecutor::pausedChanged, this, [this](bool paused) {
        m_pause->setText(paused ? QStringLiteral("Resume") : QStringLiteral("Pause"));
        updateCounts();
    });
    // Which worker runs which job: the lifecycle signals name the task by its future's taskId().
    connect(&m_pool, &TaskPool::TaskPoolExecutor::taskStarted, this, [this](quint64 id, const QString& worker) {
        for (Job& job : m_jobs) {
            if (job.future.taskId() == id && job.state == State::Queued)
                setState(job, State::Running, worker);
        }
    });
    connect(m_start, &QPushButton::clicked, this, &JobWindow::start);
    connect(m_cancel, &QPushButton::clicked, this, &JobWindow::cancel);
    connect(m_pause, &QPushButton::clicked, this, &JobWindow::togglePause);
    updateCounts();
    updateButtons();
}

JobWindow::~JobWindow()
{
    // Nothing to cancel by hand: the jobs' context is this window, whose end cancels them. Only
    // the pool's signals must not reach this half-destroyed window while the members go.
    m_pool.disconnect(this);
}

QString JobWindow::stateName(State state)
{
    switch (state) {
    case State::Queued:
        return QStringLiteral("queued");
    case State::Running:
        return QStringLiteral("running");
    case State::Done:
        return QStringLiteral("done");
    case State::Cancelled:
        return QStringLiteral("cancelled");
    case State::Failed:
        return QStringLiteral("failed");
    }
    return {};
}

void JobWindow::start()
{
    if (isRunning())
        return;
    m_list->clear();
    m_jobs.clear();
    m_settled = 0;
    m_peakActive = 0;
    const int count = m_jobCount->value();
    m_jobs.resize(size_t(count));
    for (int i = 0; i < count; ++i) {
        Job& job = m_jobs[size_t(i)];
        job.steps = 10 + (i * 7) % 15;
        job.item = new QTreeWidgetItem(m_list, { QStringLiteral("Job %1").arg(i + 1), QString() });
        job.bar = new QProgressBar;
        job.bar->setRange(0, job.steps);
        job.bar->setValue(0);
        m_list->setItemWidget(job.item, ProgressColumn, job.bar);
        setState(job, State::Queued);

        // The callable takes a std::stop_token and a QPromise<int>& first: the pool hands it the
        // task's stop token and the future's promise. The window is the task's context.
        const TaskPool::SubmitOptions options { .context = this };
        QUrl url = m_server;
        url.setPath(QStringLiteral("/file/%1").arg(i + 1));
        job.future = m_pool.submit(options, download, QPointer<QNetworkAccessManager>(&m_manager), url, job.steps);
        job.watcher = std::make_unique<QFutureWatcher<int>>();
        QFutureWatcher<int>* watcher = job.watcher.get();
        connect(watcher, &QFutureWatcherBase::progressRangeChanged, job.bar, &QProgressBar::setRange);
        connect(watcher, &QFutureWatcherBase::progressValueChanged, job.bar, &QProgressBar::setValue);
        connect(watcher, &QFutureWatcherBase::finished, this, [this, i] { settle(i); });
        watcher->setFuture(job.future);
    }
    m_overall->setRange(0, count);
    updateCounts();
    updateButtons();
}

void JobWindow::cancel()
{
    for (Job& job : m_jobs)
        job.future.cancel(); // queued: never starts; running: its request is aborted, its slot frees
}

void JobWindow::togglePause()
{
    m_pool.setPaused(!m_pool.isPaused());
}

void JobWindow::settle(int index)
{
    Job& job = m_jobs[size_t(index)];
    if (job.state == State::Done || job.state == State::Cancelled || job.state == State::Failed)
        return;
    if (job.future.cancelled()) {
        setState(job, State::Cancelled);
    } else if (auto error = job.future.exception()) {
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            setState(job, State::Failed, QString::fromUtf8(e.what()));
        } catch (...) {
            setState(job, State::Failed);
        }
    } else {
        job.result = job.future.result();
        job.bar->setValue(job.bar->maximum());
        setState(job, State::Done, QStringLiteral("result %1").arg(job.result));
    }
    ++m_settled;
    Q_EMIT jobSettled(index);
    updateCounts();
    if (m_settled == int(m_jobs.size())) {
        updateButtons();
        Q_EMIT batchFinished();
    }
}

void JobWindow::setState(Job& job, State state, const QString& detail)
{
    job.state = state;
    job.item->setText(StatusColumn,
                      detail.isEmpty() ? stateName(state) : QStringLiteral("%1 (%2)").arg(stateName(state), detail));
}

void JobWindow::updateCounts()
{
    const int active = m_pool.activeCount();
    const int pending = m_pool.pendingCount();
    m_peakActive = std::max(m_peakActive, active);
    // Bound to the executor: what is neither running nor queued any more has settled.
    const int total = int(m_jobs.size());
    m_overall->setValue(std::clamp(total - active - pending, 0, std::max(total, 1)));
    m_counts->setText(QStringLiteral("active %1 · pending %2 · workers %3 of %4 · peak active %5%6")
                          .arg(active)
                          .arg(pending)
                          .arg(m_pool.workerCount())
                          .arg(m_pool.maxWorkers())
                          .arg(m_peakActive)
                          .arg(m_pool.isPaused() ? QStringLiteral(" · paused") : QString()));
}

void JobWindow::updateButtons()
{
    m_start->setEnabled(!isRunning());
    m_cancel->setEnabled(isRunning());
}
