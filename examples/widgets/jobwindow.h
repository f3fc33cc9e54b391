// SPDX-License-Identifier: MIT
#pragma once

#include <taskpool/taskpool.h>

#include <QFutureWatcher>
#include <QNetworkAccessManager>
#include <QUrl>
#include <QWidget>

#include <chrono>
#include <memory>
#include <vector>

class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTreeWidget;
class QTreeWidgetItem;

//! A window that runs batches of download jobs on a TaskPoolExecutor and shows them: one row per job
//! with a progress bar fed by a QFutureWatcher (the job reports through its QPromise), an overall
//! bar and counters bound to the executor's properties, a spin box bound to maxWorkers, Start,
//! Cancel and Pause/Resume.
/*!
 * Each job downloads its parts from an HTTP server one request at a time. Its coroutine takes a
 * std::stop_token and awaits each reply through TaskPool::cancellable(reply, token), so Cancel
 * aborts the requests in flight and frees the workers at once. The jobs are submitted with the
 * window as their context: destroying the window (closing it: Qt::WA_DeleteOnClose) cancels what
 * is queued and stops what runs, and no job touches the window.
 */
class JobWindow : public QWidget {
    Q_OBJECT

public:
    enum class State { Queued, Running, Done, Cancelled, Failed };

    //! What is known of one job of the current batch.
    struct Job {
        TaskPool::Future<int> future;
        std::unique_ptr<QFutureWatcher<int>> watcher;
        QTreeWidgetItem* item = nullptr;
        QProgressBar* bar = nullptr;
        State state = State::Queued;
        int steps = 0;
        int result = 0;
    };

    //! Downloads from the HTTP server at \a server.
    explicit JobWindow(const QUrl& server, QWidget* parent = nullptr);
    ~JobWindow() override;

    TaskPool::TaskPoolExecutor& pool() { return m_pool; }
    const std::vector<Job>& jobs() const { return m_jobs; }
    bool isRunning() const { return m_settled < int(m_jobs.size()); }
    //! The most tasks the pool ran at once since the last batch started.
    int peakActive() const { return m_peakActive; }

    QSpinBox* workersBox() const { return m_workers; }
    QSpinBox* jobCountBox() const { return m_jobCount; }
    QPushButton* startButton() const { return m_start; }
    QPushButton* cancelButton() const { return m_cancel; }
    QPushButton* pauseButton() const { return m_pause; }
    QLabel* countsLabel() const { return m_counts; }
    QProgressBar* overallBar() const { return m_overall; }

    static QString stateName(State state);

Q_SIGNALS:
    //! Every job of the batch has settled (done, cancelled or failed).
    void batchFinished();
    //! One job settled.
    void jobSettled(int index);

private:
    void start();
    void cancel();
    void togglePause();
    void settle(int index);
    void setState(Job& job, State state, const QString& detail = {});
    void updateCounts();
    void updateButtons();

    // In this order: the jobs go first, then the pool, then the manager (the running coroutines
    // hold a QPointer to it, never a pointer to the window).
    QUrl m_server;
    QNetworkAccessManager m_manager;
    TaskPool::TaskPoolExecutor m_pool;
    std::vector<Job> m_jobs;
    int m_settled = 0;
    int m_peakActive = 0;

    QSpinBox* m_workers = nullptr;
    QSpinBox* m_jobCount = nullptr;
    QPushButton* m_start = nullptr;
    QPushButton* m_cancel = nullptr;
    QPushButton* m_pause = nullptr;
    QProgressBar* m_overall = nullptr;
    QLabel* m_counts = nullptr;
    QTreeWidget* m_list = nullptr;
};
