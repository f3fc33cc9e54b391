// SPDX-License-Identifier: MIT
#pragma once

#include <taskpool/taskpool.h>

#include <QFutureWatcher>
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

//! A window that runs batches of jobs on a TaskPoolExecutor and shows them: one row per job with a
//! progress bar fed by a QFutureWatcher (the job reports through its QPromise), an overall bar and
//! counters bound to the executor's properties, a spin box bound to maxWorkers, Start and Cancel.
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

    explicit JobWindow(QWidget* parent = nullptr);
    ~JobWindow() override;

    TaskPool::TaskPoolExecutor& pool() { return m_pool; }
    const std::vector<Job>& jobs() const { return m_jobs; }
    bool isRunning() const { return m_settled < int(m_jobs.size()); }
    //! The most tasks the pool ran at once since the last batch started.
    int peakActive() const { return m_peakActive; }
    //! How long one step of a job takes (jobs have 10 to 24 steps).
    void setStepTime(std::chrono::milliseconds stepTime) { m_stepTime = stepTime; }

    QSpinBox* workersBox() const { return m_workers; }
    QSpinBox* jobCountBox() const { return m_jobCount; }
    QPushButton* startButton() const { return m_start; }
    QPushButton* cancelButton() const { return m_cancel; }
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
    void settle(int index);
    void setState(Job& job, State state, const QString& detail = {});
    void updateCounts();
    void updateButtons();

    TaskPool::TaskPoolExecutor m_pool;
    std::vector<Job> m_jobs;
    int m_settled = 0;
    int m_peakActive = 0;
    std::chrono::milliseconds m_stepTime { 60 };

    QSpinBox* m_workers = nullptr;
    QSpinBox* m_jobCount = nullptr;
    QPushButton* m_start = nullptr;
    QPushButton* m_cancel = nullptr;
    QProgressBar* m_overall = nullptr;
    QLabel* m_counts = nullptr;
    QTreeWidget* m_list = nullptr;
};
