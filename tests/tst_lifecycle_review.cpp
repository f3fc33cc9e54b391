// SPDX-License-Identifier: MIT
// Where applications end, attacked: a context's cancel flushed by a child's destruction, executors
// of worker threads at the quit, moves racing submits, moves from slots with nested loops, moves to
// threads not started yet, calls in the new thread before its first turn. Each case failed on the
// first version of the lifecycle change. Each asserts what is promised (README "Work tied to a
// QObject's life", "When the application quits", "Threads"; docs/task-life.md), never a timing or
// a count of loop turns; every wait is bounded, so a case fails, never hangs.
// The comment above a case tells what the code it was written against did wrong, and where.
#include "testutil.h"

#include <QCoreApplication>
#include <QFile>
#include <QHash>
#include <QPointer>
#include <QProcess>
#include <QSemaphore>
#include <QSet>
#include <QThread>
#include <QTimer>

#include <atomic>
#include <csignal>
#include <memory>
#include <mutex>
#include <stop_token>
#include <thread>

using namespace TestUtil;
using TaskPool::CancelledError;
using TaskPool::SubmitOptions;
using TaskPool::TaskPoolExecutor;

namespace {

//! Where a stop-taking task ran, was told to stop, and ended.
struct Where {
    std::atomic<QThread*> ranIn { nullptr };
    std::atomic<QThread*> stoppedIn { nullptr };
    std::atomic<QThread*> endedIn { nullptr };
};

//! Runs until its token is stopped (through the cancellation helper), then ends cancelled.
QCoro::Task<int> recordStop(std::stop_token token, std::shared_ptr<Where> where)
{
    where->ranIn = QThread::currentThread();
    std::stop_callback onStop(token, [where] { where->stoppedIn = QThread::currentThread(); });
    co_await TaskPool::untilCancelled(token);
    where->endedIn = QThread::currentThread();
    throw CancelledError();
}

//! Runs `program args` as a child through TaskPool::cancellable(&process, token, grace).
QCoro::Task<int> runChild(std::stop_token token, std::shared_ptr<std::atomic<qint64>> pid, QString program,
                          QStringList args, std::chrono::milliseconds grace)
{
    QProcess process;
    process.start(program, args);
    if (!process.waitForStarted(5000))
        co_return -1;
    *pid = process.processId();
    co_await TaskPool::cancellable(&process, token, grace);
    co_return process.exitCode();
}

//! Whether process \a pid still runs (a zombie has ended), as tests/apps/lifecycle.cpp reads it.
bool isRunning(qint64 pid)
{
    QFile stat(QStringLiteral("/proc/%1/stat").arg(pid));
    if (!stat.open(QIODevice::ReadOnly))
        return false;
    const QByteArray line = stat.readAll();
    const qsizetype close = line.lastIndexOf(')');
    return close < 0 || line.mid(close + 2, 1) != "Z";
}

//! Polls the process table (no event loop: exec() has returned) until \a pid has ended.
bool endsWithin(qint64 pid, int ms)
{
    QElapsedTimer clock;
    clock.start();
    while (isRunning(pid)) {
        if (clock.elapsed() > ms)
            return false;
        QThread::msleep(10);
    }
    return true;
}

//! Stands for a QWidget window, in QtCore: ~QWidget emits destroyed() itself, with every
//! connection of the widget still in place, then deletes its children (QWidget::~QWidget in
//! qwidget.cpp: "emit destroyed(this)" ... "d->deleteChildren()"), and only then does ~QObject cut
//! the connections. (The same with a real QWidget: see the review report.)
class WidgetLike : public QObject {
public:
    using QObject::QObject;
    ~WidgetLike() override
    {
        Q_EMIT destroyed(this);
        const QObjectList kids = children();
        qDeleteAll(kids);
    }
};

//! A window that listens to the executor and is its jobs' context.
class Window : public WidgetLike {
public:
    explicit Window(TaskPoolExecutor* pool)
    {
        connect(pool, &TaskPoolExecutor::pendingCountChanged, this, [this] { heard(0); });
        connect(pool, &TaskPoolExecutor::taskCancelled, this, [this](quint64 id) { heard(id); });
        connect(pool, &TaskPoolExecutor::idle, this, [this] { heard(0); });
    }
    ~Window() override { dead = true; }

    bool dead = false;
    static inline int lateCalls = 0;
    static inline QSet<quint64> lateCancelled; // taskCancelled ids heard after ~Window ran

private:
    void heard(quint64 id)
    {
        if (!dead)
            return;
        ++lateCalls;
        if (id)
            lateCancelled.insert(id);
    }
};

//! A child of the window that owns one job of its own and cancels it when it goes (a job row).
class JobRow : public QObject {
public:
    using QObject::QObject;
    ~JobRow() override { future.cancel(); }
    TaskPool::Future<int> future;
};

//! Calls \a fn when it gets QEvent::ThreadChange, as a child of the object being moved does: Qt
//! sends it after the parent's and before the thread is switched (QObjectPrivate::moveToThread_helper).
class ThreadChangeHook : public QObject {
public:
    using QObject::QObject;
    std::function<void()> fn;
    bool event(QEvent* e) override
    {
        if (e->type() == QEvent::ThreadChange && fn)
            fn();
        return QObject::event(e);
    }
};

QCoro::Task<int> untilStopped(std::stop_token token, std::shared_ptr<std::atomic<int>> ended)
{
    co_await TaskPool::untilCancelled(token);
    ++*ended;
    throw CancelledError();
}

} // namespace

class tst_LifecycleReview : public QObject {
    Q_OBJECT

private Q_SLOTS:
    // Order: the QProcess cases come after every case that starts threads (TSan cannot start a
    // thread after a fork), and the UBSan-fatal one (a slot on a destroyed Window) comes last.

    // Promise 3. A submit from a third thread races moveToThread() of an idle executor: it lands in
    // the window between the executor's QEvent::ThreadChange and Qt's switch of its thread (here
    // made certain by a child's ThreadChange, which Qt sends in that window). The job then records
    // the old thread as the executor's: Future::cancel() from the old thread runs the executor's
    // transition, and the task's stop callbacks, in the old thread while the executor works in
    // the new one (a data race on the core; TSan reports it).
    void submitRacingMoveToThreadKeepsTheOldThread()
    {
        auto* pool = new TaskPoolExecutor(1);
        QThread worker;
        worker.start();
        auto where = std::make_shared<Where>();
        TaskPool::Future<int> future;
        std::atomic<QThread*> reportedIn { nullptr }; // the thread that emitted its taskCancelled
        connect(
            pool, &TaskPoolExecutor::taskCancelled, pool, [&] { reportedIn = QThread::currentThread(); },
            Qt::DirectConnection);
        auto* hook = new ThreadChangeHook(pool);
        hook->fn = [&] {
            std::thread submitter([&] { future = pool->submit(recordStop, where); });
            submitter.join();
        };
        pool->moveToThread(&worker);
        QVERIFY(QTest::qWaitFor([&] { return where->ranIn.load() != nullptr; }, 5000));
        QCOMPARE(where->ranIn.load(), &worker); // it does run in the new thread

        future.cancel(); // from the main thread, which is no longer the executor's
        QVERIFY(
            QTest::qWaitFor([&] { return where->endedIn.load() != nullptr && reportedIn.load() != nullptr; }, 5000));
        QThread* const stoppedIn = where->stoppedIn.load();

        QObject::connect(pool, &QObject::destroyed, &worker, &QThread::quit, Qt::DirectConnection);
        pool->deleteLater();
        QVERIFY(worker.wait(5000));
        QCOMPARE(stoppedIn, &worker); // the executor's thread (task-life: stop callbacks run there)
        QCOMPARE(reportedIn.load(), &worker); // and so are its signals
    }

    // Promise 3. The executor is a child of the object being moved (an executor owned by a worker
    // object, `new TaskPoolExecutor(this)`), with a task running: the move is refused, but the
    // move back (moveToThread() on an object with a parent) is refused by Qt. thread() then says
    // the new thread for good while the tasks run in the old one. Promised: thread() and where
    // tasks run never disagree for long.
    void refusedMoveOfAChildExecutorNeverComesBack()
    {
        auto* owner = new QObject;
        auto* pool = new TaskPoolExecutor(1, {}, owner);
        Gate gate;
        auto running = pool->submit(waitFor, &gate);
        QVERIFY(QTest::qWaitFor([&] { return pool->activeCount() == 1; }, 5000));
        QThread worker;
        worker.start();
        QTest::ignoreMessage(QtWarningMsg, QRegularExpression("moveToThread\\(\\): 1 running task"));
        owner->moveToThread(&worker);
        // The refusal's move back has had its turn in the worker thread.
        QSemaphore turned;
        QMetaObject::invokeMethod(pool, [&] { turned.release(); });
        QVERIFY(turned.tryAcquire(1, 5000));
        std::atomic<QThread*> ranIn { nullptr };
        gate.open();
        QThread* const objectThread = pool->thread();
        auto next = pool->submit([&ranIn] { ranIn = QThread::currentThread(); });
        QVERIFY(QTest::qWaitFor([&] { return ranIn.load() != nullptr; }, 5000));
        QVERIFY(QTest::qWaitFor([&] { return running.isFinished() && next.isFinished(); }, 5000));
        QThread* const taskThread = ranIn.load();

        QObject::connect(owner, &QObject::destroyed, &worker, &QThread::quit, Qt::DirectConnection);
        owner->deleteLater();
        if (!worker.wait(5000)) { // the owner came back: delete it here
            worker.quit();
            worker.wait();
        }
        QCOMPARE(objectThread, taskThread);
    }

    // Promise 3. The same refusal with a new thread that never turns (not started yet, or a
    // QThread::create() function without an event loop): the move back never runs, thread() stays
    // that thread while every task runs here. (Connections with the executor as the receiver's
    // context are then queued to a thread that never delivers them.)
    void moveToAThreadNotYetStarted()
    {
        auto* pool = new TaskPoolExecutor(1);
        Gate gate;
        auto running = pool->submit(waitFor, &gate);
        QVERIFY(QTest::qWaitFor([&] { return pool->activeCount() == 1; }, 5000));
        QThread later;
        QTest::ignoreMessage(QtWarningMsg, QRegularExpression("moveToThread\\(\\): 1 running task"));
        pool->moveToThread(&later);
        gate.open();
        QVERIFY(QTest::qWaitFor([&] { return running.isFinished(); }, 5000)); // here, where it started
        std::atomic<QThread*> ranIn { nullptr };
        auto next = pool->submit([&ranIn] { ranIn = QThread::currentThread(); });
        QTest::qWait(50);
        QVERIFY(!next.isFinished()); // the executor is the thread's now, as the object: not started
        later.start();
        QVERIFY(QTest::qWaitFor([&] { return next.isFinished(); }, 5000));
        QCOMPARE(ranIn.load(), &later);
        QCOMPARE(pool->thread(), &later);
        QObject::connect(pool, &QObject::destroyed, &later, &QThread::quit, Qt::DirectConnection);
        pool->deleteLater();
        QVERIFY(later.wait(5000));
    }

    // Promise 3. A slot of idle() moves the (idle) executor, then runs a nested event loop (a modal
    // dialog) while the executor works in its new thread. The old thread's flush is still on the
    // stack (m_flushing, m_flushLevel): the new thread's flushes at the same loop level return
    // without emitting, and once the slot returns the old thread emits the new thread's reports,
    // racing the core there. Promised: after the move, the executor works (and so reports) in
    // the new thread.
    void moveFromAnIdleSlotWithANestedLoop()
    {
        auto* pool = new TaskPoolExecutor(1);
        QThread worker;
        worker.start();
        std::mutex mutex;
        QHash<quint64, QThread*> finishedIn; // task id -> the thread that emitted its taskFinished
        connect(
            pool, &TaskPoolExecutor::taskFinished, pool,
            [&](quint64 id) {
                std::lock_guard lock(mutex);
                finishedIn[id] = QThread::currentThread();
            },
            Qt::DirectConnection);
        bool once = false;
        TaskPool::Future<int> second;
        std::atomic<QThread*> ranIn { nullptr };
        connect(
            pool, &TaskPoolExecutor::idle, qApp,
            [&] {
                if (std::exchange(once, true))
                    return;
                pool->moveToThread(&worker); // idle: follows
                second = pool->submit([&ranIn] {
                    ranIn = QThread::currentThread();
                    return 2;
                });
                nestedLoopUntil([&] { return second.isFinished(); });
            },
            Qt::DirectConnection);
        auto first = pool->submit([] { return 1; });
        { // from an event loop, as an application's idle() is emitted (QCoreApplication::exec())
            QEventLoop loop;
            QTimer poll;
            QObject::connect(&poll, &QTimer::timeout, &loop, [&] {
                if (second.isFinished())
                    loop.quit();
            });
            poll.start(1);
            QTimer::singleShot(5000, &loop, &QEventLoop::quit);
            loop.exec();
        }
        QVERIFY(QTest::qWaitFor(
            [&] {
                std::lock_guard lock(mutex);
                return second.isFinished() && finishedIn.contains(second.taskId());
            },
            5000));
        QThread* emittedIn = nullptr;
        {
            std::lock_guard lock(mutex);
            emittedIn = finishedIn.value(second.taskId());
        }
        QObject::connect(pool, &QObject::destroyed, &worker, &QThread::quit, Qt::DirectConnection);
        pool->deleteLater();
        QVERIFY(worker.wait(5000));
        QCOMPARE(ranIn.load(), &worker);
        QCOMPARE(emittedIn, &worker);
    }

    // Promise 3 (and 2). The executor is deleted while it moves: moved to a thread that has not
    // run yet, then deleted (allowed: that thread runs no events). The move's first turn, posted to
    // the object, goes with it, so `thread` stays null for good: ~TaskPoolExecutor takes in the
    // handed-over tasks and they run here, but every later hand-over to the executor's thread is
    // dropped (atHome() with no home; and the jobs name the never-run thread), and the quit hook
    // is gone. Promised: a cancel stops a running task's token; destroying an executor lets its
    // work end; the application's quit stops what still runs.
    void deletedWhileMovingLosesCancelsAndTheQuit()
    {
        auto* pool = new TaskPoolExecutor(2);
        QThread never;
        pool->moveToThread(&never);
        auto cancelled = std::make_shared<Where>();
        auto atQuit = std::make_shared<Where>();
        auto a = pool->submit(recordStop, cancelled);
        auto b = pool->submit(recordStop, atQuit);
        delete pool;
        QVERIFY(QTest::qWaitFor([&] { return cancelled->ranIn.load() && atQuit->ranIn.load(); }, 5000));
        a.cancel();
        const bool stoppedByCancel = QTest::qWaitFor([&] { return cancelled->endedIn.load() != nullptr; }, 1000);
        QTimer::singleShot(0, qApp, [] { QCoreApplication::quit(); });
        QCoreApplication::exec();
        const bool stoppedByQuit = atQuit->endedIn.load() != nullptr;
        QVERIFY2(stoppedByCancel, "Future::cancel() never stopped the running task's token");
        QVERIFY2(stoppedByQuit, "the application's quit did not stop the running task");
    }

    // Promise 3. The canonical worker-object pattern: the idle executor is moved, and the thread's
    // started() slot (run in the new thread, before its event loop's first turn) uses it. thread()
    // already says the new thread, but the executor does not know it yet: whenIdle() (for the
    // executor's thread only) throws std::logic_error there.
    void executorsThreadCallsBeforeTheFirstTurnAreRefused()
    {
        auto* pool = new TaskPoolExecutor(1);
        QThread worker;
        pool->moveToThread(&worker);
        std::atomic<int> verdict { 0 }; // 1: accepted, 2: threw
        std::atomic<QThread*> objectThread { nullptr };
        QObject::connect(
            &worker, &QThread::started, pool,
            [&] {
                objectThread = pool->thread();
                try {
                    (void)pool->whenIdle(); // idle: completes at once
                    verdict = 1;
                } catch (const std::logic_error&) {
                    verdict = 2;
                }
            },
            Qt::DirectConnection);
        worker.start();
        QVERIFY(QTest::qWaitFor([&] { return verdict.load() != 0; }, 5000));
        QObject::connect(pool, &QObject::destroyed, &worker, &QThread::quit, Qt::DirectConnection);
        pool->deleteLater();
        QVERIFY(worker.wait(5000));
        QCOMPARE(objectThread.load(), &worker);
        QVERIFY2(verdict == 1, "whenIdle() in the executor's own thread (thread() == it) threw std::logic_error");
    }

    // Promise 3. An idle executor (nothing queued or running, its worker parked) is refused the
    // move because a context's destruction left a flush posted (m_flushPosted): here a paused
    // executor whose only queued job's context went. The warning says "0 task(s)". Promised: an
    // idle executor follows moveToThread().
    void idleAfterAContextWentIsRefusedTheMove()
    {
        auto* pool = new TaskPoolExecutor(1);
        QObject listener;
        int heard = 0;
        QObject::connect(pool, &TaskPoolExecutor::pendingCountChanged, &listener, [&] { ++heard; });
        pool->pause();
        auto* context = new QObject;
        auto job = pool->submit({ .context = context }, [] { return 1; });
        QVERIFY(QTest::qWaitFor([&] { return pool->workerCount() == 1; }, 5000));
        QTest::qWait(20); // the worker took nothing (paused) and parked
        delete context;
        QVERIFY(job.isCanceled());
        QCOMPARE(pool->pendingCount(), 0);
        QCOMPARE(pool->activeCount(), 0);

        QThread worker;
        worker.start();
        pool->moveToThread(&worker); // idle: follows
        QMetaObject::invokeMethod(pool, [pool] { pool->resume(); });
        std::atomic<QThread*> ranIn { nullptr };
        auto next = pool->submit([&ranIn] { ranIn = QThread::currentThread(); });
        QVERIFY(QTest::qWaitFor([&] { return next.isFinished(); }, 5000));
        QThread* const objectThread = pool->thread();

        QObject::connect(pool, &QObject::destroyed, &worker, &QThread::quit, Qt::DirectConnection);
        pool->deleteLater();
        if (!worker.wait(3000)) { // it came back to this thread: delete it here
            QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
            worker.quit();
            worker.wait();
        }
        QCOMPARE(objectThread, &worker);
        QCOMPARE(ranIn.load(), &worker);
    }

    // Promise 2. An executor that lives in a worker thread (made there, as a worker object's
    // executor is), with a task running, when the application quits while that thread is busy for
    // a moment. Promised: every executor shuts down with cancelFutures, stops its running tasks'
    // tokens and waits for them (at most quitTimeout) when aboutToQuit() is emitted; exec()'s
    // caller then goes on. aboutToQuit() reaches this executor's hook through a queued connection.
    void workerThreadExecutorAtQuit()
    {
        QThread worker;
        worker.start();
        QObject inWorker;
        inWorker.moveToThread(&worker);
        TaskPoolExecutor* pool = nullptr;
        auto where = std::make_shared<Where>();
        TaskPool::Future<int> future;
        QMetaObject::invokeMethod(
            &inWorker,
            [&] {
                pool = new TaskPoolExecutor(1);
                future = pool->submit(recordStop, where);
            },
            Qt::BlockingQueuedConnection);
        QVERIFY(QTest::qWaitFor([&] { return where->ranIn.load() == &worker; }, 5000));

        // The worker thread is busy for a while (a slot of its own) when the application quits. (This
        // only makes the outcome certain: without it the task is abandoned all the same, in every
        // run tried, since the queued hook runs too late or its loop returns at once after quit().)
        QSemaphore busy;
        QMetaObject::invokeMethod(&inWorker, [&] { busy.tryAcquire(1, 3000); });
        QTimer::singleShot(0, qApp, [] { QCoreApplication::quit(); });
        QCoreApplication::exec();
        const bool stoppedAtExecReturn = where->stoppedIn.load() != nullptr;
        const bool endedAtExecReturn = where->endedIn.load() != nullptr;
        const bool shutDownAtExecReturn = pool->isShutdown();
        // What an application does next: its worker threads end.
        busy.release();
        worker.quit();
        QVERIFY(worker.wait(10000));
        const bool endedAtThreadEnd = where->endedIn.load() != nullptr;

        delete pool; // the thread is gone: deleted here

        qInfo("at exec()'s return: shut down %d, token stopped %d, task ended %d; at the thread's end: task ended %d",
              shutDownAtExecReturn, stoppedAtExecReturn, endedAtExecReturn, endedAtThreadEnd);

        QVERIFY2(shutDownAtExecReturn, "the worker thread's executor was not shut down when exec() returned");
        QVERIFY2(stoppedAtExecReturn, "its running task's token was not stopped when exec() returned");
        QVERIFY2(endedAtExecReturn, "its running task had not ended when exec() returned");
        QVERIFY2(endedAtThreadEnd, "its running task never ended (abandoned once the thread quit)");
    }

    // Promise 2. An idle executor moved to a worker thread that has not run yet (started later, or
    // never: the application quits first), with work submitted. beginMove() dropped the quit hook;
    // it is made again only from the new thread's first turn. Promised: at the quit every executor
    // shuts down with cancelFutures: its queued work is cancelled.
    void executorMovedToAThreadNotYetRunAtQuit()
    {
        auto* pool = new TaskPoolExecutor(1);
        QThread later; // started after the quit, or never
        pool->moveToThread(&later);
        auto queued = pool->submit([] { return 1; });
        QTimer::singleShot(0, qApp, [] { QCoreApplication::quit(); });
        QCoreApplication::exec();
        const bool cancelled = queued.isCanceled();
        const bool shutDown = pool->isShutdown();
        delete pool; // its thread never ran: deleted here
        QVERIFY2(shutDown, "the executor was not shut down by the application's quit");
        QVERIFY2(cancelled, "its queued task was not cancelled by the application's quit");
    }

    // Promise 2. quitTimeout 0 ("stop, but do not wait"): the tokens are stopped, but the helpers
    // hand terminate() to the next turn of the event loop, which never comes once exec() returned.
    // Promised: child processes run through cancellable(&process, token, grace) do not outlive the
    // application. A `sleep` child that obeys SIGTERM is never sent it.
    void quitTimeoutZeroLeavesChildProcessesRunning()
    {
        auto pool = std::make_unique<TaskPoolExecutor>(1);
        pool->setQuitTimeout(0);
        auto pid = std::make_shared<std::atomic<qint64>>(0);
        auto future = pool->submit(runChild, pid, QStringLiteral("sleep"), QStringList { QStringLiteral("30") },
                                   std::chrono::milliseconds(3000));
        QVERIFY(QTest::qWaitFor([&] { return *pid > 0; }, 5000));
        QTimer::singleShot(0, qApp, [] { QCoreApplication::quit(); });
        QCoreApplication::exec();
        const bool ended = endsWithin(*pid, 3000); // the application has ended its event loop for good
        if (!ended)
            ::kill(pid_t(pid->load()), SIGKILL);
        QVERIFY(QTest::qWaitFor([&] { return future.isFinished(); }, 5000)); // clean up
        QVERIFY2(ended, "the child process outlived the application's quit (quitTimeout 0)");
    }

    // Promise 1. The window (a QWidget: destroyed() first, children next, connections cut last)
    // is the context of running and queued jobs and listens to the executor. One of its children
    // cancels a job of its own as it goes: that cancel flushes the outbox synchronously, with the
    // context cancel's reports in it, to the half-destroyed window's slots. Promised: the reports
    // of the context's cancel come from the event loop, never to the dying window.
    void contextCancelReportsReachTheDyingWindowThroughAChildsCancel()
    {
        run([]() -> QCoro::Task<void> {
            Window::lateCalls = 0;
            Window::lateCancelled.clear();
            TaskPoolExecutor pool(2);
            auto* window = new Window(&pool);
            auto ended = std::make_shared<std::atomic<int>>(0);
            QSet<quint64> contextIds;
            std::vector<TaskPool::Future<int>> futures;
            for (int i = 0; i < 3; ++i) { // two run, one stays queued
                futures.push_back(pool.submit({ .context = window }, untilStopped, ended));
                contextIds.insert(futures.back().taskId());
            }
            auto* row = new JobRow(window);
            row->future = pool.submit(untilStopped, ended); // queued, no context: the row cancels it
            co_await until([&] { return pool.activeCount() == 2; });

            delete window;

            for (auto& future : futures)
                CO_VERIFY(future.isCanceled());
            const QSet<quint64> heardLate = Window::lateCancelled & contextIds;
            CO_VERIFY2(heardLate.isEmpty(),
                       qPrintable(QStringLiteral("%1 taskCancelled report(s) of the context's cancel reached the "
                                                 "half-destroyed window (%2 late slot calls in all)")
                                      .arg(heardLate.size())
                                      .arg(Window::lateCalls)));
            co_await until([&] { return *ended == 2 && isIdle(pool); });
        }());
    }
};

QTEST_GUILESS_MAIN(tst_LifecycleReview)
#include "tst_lifecycle_review.moc"
