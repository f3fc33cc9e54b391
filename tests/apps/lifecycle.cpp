// SPDX-License-Identifier: MIT
// Where a widgets application ends, as a whole program: tasks running `sleep` child processes
// through TaskPool::cancellable(), then the window closed or the application quit. The program
// checks with the process table that no child outlives it, and that no slot of the closing window
// ran after its destructor (UBSan's vptr check catches the same under the sanitizer builds).
//
//   lifecycle close-context   window (Qt::WA_DeleteOnClose) is the tasks' context and listens to
//                             the executor's signals; closing it (the last window) quits
//   lifecycle close-child     the same, with the executor a child of the window
//   lifecycle quit            the executor outlives the window; the tasks have no context: the
//                             application quits with them running
#include <taskpool/taskpool.h>

#include <QApplication>
#include <QCoro/QCoroProcess>
#include <QFile>
#include <QLabel>
#include <QPointer>
#include <QProcess>
#include <QSet>
#include <QTimer>
#include <QVBoxLayout>

#include <csignal>
#include <cstdio>
#include <memory>
#include <stop_token>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr int taskCount = 4;

QSet<const void*> destroyedWindows;
int lateSlotCalls = 0;
std::vector<qint64> childPids;

QCoro::Task<int> runChild(std::stop_token token)
{
    QProcess process;
    process.start(QStringLiteral("sleep"), { QStringLiteral("30") });
    co_await qCoro(process).waitForStarted();
    childPids.push_back(process.processId());
    co_await TaskPool::cancellable(&process, token, 2s);
    co_return process.exitCode();
}

//! A window as the README writes one: the executor's counts on a label, jobs with it as context.
class Window : public QWidget {
public:
    Window(TaskPool::TaskPoolExecutor* pool, bool asContext)
    {
        setAttribute(Qt::WA_DeleteOnClose);
        auto* layout = new QVBoxLayout(this);
        m_counts = new QLabel(this);
        layout->addWidget(m_counts);
        connect(pool, &TaskPool::TaskPoolExecutor::activeCountChanged, this, &Window::showCounts);
        connect(pool, &TaskPool::TaskPoolExecutor::pendingCountChanged, this, &Window::showCounts);
        connect(pool, &TaskPool::TaskPoolExecutor::taskCancelled, this, &Window::showCounts);
        connect(pool, &TaskPool::TaskPoolExecutor::idle, this, &Window::showCounts);
        for (int i = 0; i < taskCount + 2; ++i) { // two stay queued
            TaskPool::SubmitOptions options;
            if (asContext)
                options.context = this;
            m_futures.push_back(pool->submit(options, runChild));
        }
    }
    ~Window() override { destroyedWindows.insert(this); }

private:
    void showCounts()
    {
        if (destroyedWindows.contains(this)) {
            ++lateSlotCalls;
            return;
        }
        m_counts->setText(QStringLiteral("%1 running").arg(m_futures.size()));
    }

    QLabel* m_counts = nullptr;
    std::vector<TaskPool::Future<int>> m_futures;
};

bool isRunning(qint64 pid)
{
    QFile stat(QStringLiteral("/proc/%1/stat").arg(pid));
    if (!stat.open(QIODevice::ReadOnly))
        return false; // gone
    const QByteArray line = stat.readAll();
    const qsizetype close = line.lastIndexOf(')');
    return close < 0 || line.mid(close + 2, 1) != "Z"; // a zombie has ended
}

} // namespace

int main(int argc, char** argv)
{
    const QByteArray mode = argc > 1 ? QByteArray(argv[1]) : QByteArray();
    if (mode != "close-context" && mode != "close-child" && mode != "quit") {
        std::fprintf(stderr, "usage: lifecycle close-context|close-child|quit\n");
        return 2;
    }
    int survivors = 0;
    {
        QApplication app(argc, argv);
        auto pool = std::make_unique<TaskPool::TaskPoolExecutor>(taskCount);
        auto* window = new Window(pool.get(), mode != "quit");
        if (mode == "close-child")
            pool.release()->setParent(window);
        window->show();
        QPointer<QWidget> guard(window);
        // Closed once every child runs; a bound only ends a hang.
        QTimer poll;
        poll.callOnTimeout([&] {
            if (int(childPids.size()) == taskCount && guard)
                guard->close();
        });
        poll.start(10);
        QTimer::singleShot(60s, &app, [] {
            std::fprintf(stderr, "lifecycle: the children did not start\n");
            QCoreApplication::exit(3);
        });
        const int code = app.exec();
        if (code != 0)
            return code;
        pool.reset();
        delete guard.data();
    }
    for (qint64 pid : childPids) {
        if (isRunning(pid)) {
            ++survivors;
            std::fprintf(stderr, "lifecycle: child %lld outlived the application\n", static_cast<long long>(pid));
            ::kill(pid_t(pid), SIGKILL);
        }
    }
    if (int(childPids.size()) != taskCount) {
        std::fprintf(stderr, "lifecycle: %d children started, expected %d\n", int(childPids.size()), taskCount);
        return 1;
    }
    if (lateSlotCalls > 0) {
        std::fprintf(stderr, "lifecycle: %d slot call(s) on the window after its destructor ran\n", lateSlotCalls);
        return 1;
    }
    if (survivors > 0)
        return 1;
    std::printf("lifecycle %s: %d children ended with the application\n", mode.constData(), taskCount);
    return 0;
}
