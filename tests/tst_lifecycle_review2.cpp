// SPDX-License-Identifier: MIT
// Where applications end, attacked a second time (after tst_lifecycle_review): cancels made while the
// executor is between threads, an executor destroyed while its move is due, rate limits, timeouts and
// keys across a move, coroutines awaiting whenIdle()/shutdown() across a move, the application's quit
// with an executor moving, a worker thread whose loop ends at the quit, a deleted QThread. Each
// asserts what is promised (README "The executor" / "shutdown", "Threads"; docs/task-life.md), never a
// timing or a count of loop turns; every wait is bounded, so a case fails, never hangs.
// The comment above a case tells what the code it was written against did wrong, and where.
#include "testutil.h"

#include <QCoreApplication>
#include <QPointer>
#include <QSemaphore>
#include <QThread>
#include <QTimer>

#include <atomic>
#include <memory>
#include <mutex>
#include <stop_token>

using namespace TestUtil;
using TaskPool::CancelledError;
using TaskPool::SubmitOptions;
using TaskPool::TaskPoolExecutor;

namespace {

QCoro::Task<int> untilStoppedTask(std::stop_token token)
{
    co_await TaskPool::untilCancelled(token);
    throw CancelledError();
}

//! Deletes \a pool in its thread and ends that thread.
void dispose(TaskPoolExecutor* pool, QThread* thread)
{
    QObject::connect(pool, &QObject::destroyed, thread, &QThread::quit, Qt::DirectConnection);
    pool->deleteLater();
    QVERIFY(thread->wait(5000));
}

} // namespace

class tst_LifecycleReview2 : public QObject {
    Q_OBJECT

private Q_SLOTS:
    // Order: the quit cases come first (an executor core of an earlier case may outlive its thread),
    // the case that crashes the process comes last.

    // Promise 2 with a move due: the application quits while a task runs in the old thread and the
    // object already lives in the new one. The running task is stopped and ends (where it started),
    // the queued one is cancelled, before exec()'s caller goes on.
    void quitWhileAMoveIsDue()
    {
        auto* pool = new TaskPoolExecutor(1);
        pool->setQuitTimeout(3000);
        auto running = pool->submit(untilStoppedTask);
        auto queued = pool->submit([] { return 1; });
        QVERIFY(QTest::qWaitFor([&] { return pool->activeCount() == 1; }, 5000));
        QThread later;
        later.start();
        QTest::ignoreMessage(QtWarningMsg, QRegularExpression("moveToThread\\(\\): 1 running task"));
        pool->moveToThread(&later);
        QTimer::singleShot(0, qApp, [] { QCoreApplication::quit(); });
        QCoreApplication::exec();
        const bool runningEnded = running.isFinished();
        const bool queuedCancelled = queued.isCanceled();
        QVERIFY(QTest::qWaitFor([&] { return running.isFinished() && queued.isFinished(); }, 5000));
        dispose(pool, &later);
        QVERIFY2(runningEnded, "the running task had not ended when exec() returned");
        QVERIFY(queuedCancelled);
    }

    // Promise 3: "waiting tasks' cancels go to its new thread". An idle (paused) executor moves to a
    // thread whose loop has not turned yet: it is in transit (no home). A queued task's future is
    // cancelled in the old thread: Job::cancel() posts the cancel to the job's recorded thread (the
    // old one), where ExecutorCore::atHome() drops it (no home). Held here only because the task is
    // the head of the queue: take() in the new thread meets it before it looks at the pause (see
    // cancelOfATaskBehindAnotherWhileInTransit for the case it does not).
    void cancelWhileInTransitReachesTheNewThread()
    {
        auto* pool = new TaskPoolExecutor(1);
        std::atomic<int> cancelledHeard { 0 };
        std::atomic<int> idleHeard { 0 };
        connect(
            pool, &TaskPoolExecutor::taskCancelled, pool, [&] { ++cancelledHeard; }, Qt::DirectConnection);
        connect(
            pool, &TaskPoolExecutor::idle, pool, [&] { ++idleHeard; }, Qt::DirectConnection);
        pool->setPaused(true);
        auto queued = pool->submit([] { return 1; });
        QThread later;
        QTest::qWait(20); // its worker took nothing (paused) and parked: nothing runs
        pool->moveToThread(&later); // nothing runs: it moves at once, arriving at later's first turn
        QVERIFY(queued.cancel());
        QTest::qWait(50); // the cancel's hand-over runs here, in the old thread
        later.start();
        std::atomic<int> pending { -1 };
        const bool heard = QTest::qWaitFor([&] { return cancelledHeard.load() == 1; }, 3000);
        QMetaObject::invokeMethod(
            pool, [&] { pending = pool->pendingCount(); }, Qt::BlockingQueuedConnection);
        const int pendingAfter = pending.load();
        dispose(pool, &later);
        QVERIFY2(heard, "taskCancelled never emitted for a task cancelled while the executor moved");
        QCOMPARE(pendingAfter, 0);
    }

    // The same cancel, of a task that is not the next to start (a higher priority one is queued
    // before it). The cancel posted to the old thread is dropped by ExecutorCore::atHome()
    // (src/executorcore_p.h:132, no home while moving), arrive() only re-stamps the jobs' thread, and
    // take() meets only the head of the paused queue: nothing ever tells the core of the cancel. The
    // task stays counted pending and is never reported cancelled while the executor stays paused.
    void cancelOfATaskBehindAnotherWhileInTransit()
    {
        auto* pool = new TaskPoolExecutor(1);
        std::atomic<int> cancelledHeard { 0 };
        connect(
            pool, &TaskPoolExecutor::taskCancelled, pool, [&] { ++cancelledHeard; }, Qt::DirectConnection);
        pool->setPaused(true);
        auto first = pool->submit({ .priority = 1 }, [] { return 1; });
        auto behind = pool->submit([] { return 2; });
        QThread later;
        QTest::qWait(20); // its worker took nothing (paused) and parked: nothing runs
        pool->moveToThread(&later); // nothing runs: it moves at once, arriving at later's first turn
        QVERIFY(behind.cancel());
        QTest::qWait(50); // the cancel's hand-over runs here, in the old thread, with no home to go to
        later.start();
        const bool heard = QTest::qWaitFor([&] { return cancelledHeard.load() == 1; }, 3000);
        std::atomic<int> pending { -1 };
        QMetaObject::invokeMethod(
            pool, [&] { pending = pool->pendingCount(); }, Qt::BlockingQueuedConnection);
        const int pendingAfter = pending.load();
        first.cancel();
        dispose(pool, &later);
        QVERIFY2(heard, "taskCancelled never emitted for a waiting task cancelled while the executor moved");
        QCOMPARE(pendingAfter, 1);
    }

    // Promise 3: moved back to its first thread while the move is due (a task runs there): queued
    // tasks start there once the running one ended.
    void movedBackWhileTheMoveIsDue()
    {
        auto* pool = new TaskPoolExecutor(1);
        Gate gate;
        auto running = pool->submit(waitFor, &gate);
        std::atomic<QThread*> ranIn { nullptr };
        auto queued = pool->submit([&] { ranIn = QThread::currentThread(); });
        QVERIFY(QTest::qWaitFor([&] { return pool->activeCount() == 1; }, 5000));
        QThread later;
        later.start();
        QThread* const here = QThread::currentThread();
        QTest::ignoreMessage(QtWarningMsg, QRegularExpression("moveToThread\\(\\): 1 running task"));
        pool->moveToThread(&later);
        QMetaObject::invokeMethod(
            pool, [pool, here] { pool->moveToThread(here); }, Qt::BlockingQueuedConnection);
        QCOMPARE(pool->thread(), here);
        gate.open();
        const bool ran = QTest::qWaitFor([&] { return queued.isFinished(); }, 5000);
        later.quit();
        QVERIFY(later.wait(5000));
        QVERIFY(ran);
        QCOMPARE(ranIn.load(), here);
        delete pool;
    }

    // Promise 3: moved twice (to A while a task runs, then from A to B before the executor got to
    // A): queued tasks start in B.
    void movedTwiceBeforeArrival()
    {
        auto* pool = new TaskPoolExecutor(1);
        Gate gate;
        auto running = pool->submit(waitFor, &gate);
        std::atomic<QThread*> ranIn { nullptr };
        auto queued = pool->submit([&] { ranIn = QThread::currentThread(); });
        QVERIFY(QTest::qWaitFor([&] { return pool->activeCount() == 1; }, 5000));
        QThread a, b;
        a.start();
        b.start();
        QTest::ignoreMessage(QtWarningMsg, QRegularExpression("moveToThread\\(\\): 1 running task"));
        pool->moveToThread(&a);
        QMetaObject::invokeMethod(
            pool, [pool, &b] { pool->moveToThread(&b); }, Qt::BlockingQueuedConnection);
        gate.open();
        const bool ran = QTest::qWaitFor([&] { return queued.isFinished(); }, 5000);
        a.quit();
        QVERIFY(a.wait(5000));
        dispose(pool, &b);
        QVERIFY(ran);
        QCOMPARE(ranIn.load(), &b);
    }

    // Promise 3: moved from a taskFinished slot of the last running task, while another waits.
    void movedFromTheLastTaskFinishedSlot()
    {
        auto* pool = new TaskPoolExecutor(1);
        Gate gate;
        auto running = pool->submit(waitFor, &gate);
        std::atomic<QThread*> ranIn { nullptr };
        auto queued = pool->submit([&] { ranIn = QThread::currentThread(); });
        QVERIFY(QTest::qWaitFor([&] { return pool->activeCount() == 1; }, 5000));
        QThread later;
        later.start();
        const quint64 id = running.taskId();
        connect(pool, &TaskPoolExecutor::taskFinished, pool, [pool, id, &later](quint64 finished) {
            if (finished == id)
                pool->moveToThread(&later);
        });
        gate.open();
        const bool ran = QTest::qWaitFor([&] { return queued.isFinished(); }, 5000);
        dispose(pool, &later);
        QVERIFY(ran);
        QCOMPARE(ranIn.load(), &later);
    }

    // The same with the cancel made in another thread (a third one) while the executor moves (held,
    // for the same reason).
    void cancelFromAThirdThreadWhileInTransit()
    {
        auto* pool = new TaskPoolExecutor(1);
        std::atomic<int> cancelledHeard { 0 };
        connect(
            pool, &TaskPoolExecutor::taskCancelled, pool, [&] { ++cancelledHeard; }, Qt::DirectConnection);
        pool->setPaused(true);
        auto queued = pool->submit([] { return 1; });
        QThread later;
        QTest::qWait(20); // its worker took nothing (paused) and parked: nothing runs
        pool->moveToThread(&later);
        std::unique_ptr<QThread> third(QThread::create([&] { queued.cancel(); }));
        third->start();
        QVERIFY(third->wait(5000));
        QTest::qWait(50);
        later.start();
        const bool heard = QTest::qWaitFor([&] { return cancelledHeard.load() == 1; }, 3000);
        std::atomic<int> pending { -1 };
        QMetaObject::invokeMethod(
            pool, [&] { pending = pool->pendingCount(); }, Qt::BlockingQueuedConnection);
        const int pendingAfter = pending.load();
        dispose(pool, &later);
        QVERIFY2(heard, "taskCancelled never emitted for a task cancelled while the executor moved");
        QCOMPARE(pendingAfter, 0);
    }

    // README "shutdown": destroying the executor leaves queued and running work to complete. With a
    // move due (a task runs, the object moved), the executor is destroyed (its new thread has not
    // run, so nothing else touches it). ~TaskPoolExecutor un-pauses and dispatches, but the move's
    // hold (m_moveDue, in m_throttled) keeps the queue; when the running task ends maybeMove() clears
    // the hold and returns (q is null) without dispatching: the queued task never starts and its
    // future never finishes.
    void destroyedWhileMoveDueStillRunsQueuedWork()
    {
        auto* pool = new TaskPoolExecutor(1);
        Gate gate;
        auto running = pool->submit(waitFor, &gate);
        auto queued = pool->submit([] { return 2; });
        QVERIFY(QTest::qWaitFor([&] { return pool->activeCount() == 1; }, 5000));
        QThread later; // never started: nothing but this thread touches the executor
        QTest::ignoreMessage(QtWarningMsg, QRegularExpression("moveToThread\\(\\): 1 running task"));
        pool->moveToThread(&later);
        delete pool;
        gate.open();
        QVERIFY(QTest::qWaitFor([&] { return running.isFinished(); }, 5000));
        QVERIFY2(QTest::qWaitFor([&] { return queued.isFinished(); }, 3000),
                 "a queued task of an executor destroyed while its move was due never ran");
        QCOMPARE(queued.result(), 2);
    }

    // The same, destroyed by deleteLater() in the new thread (the object's thread now), as a
    // parent's deletion there would. Its queued task must still run, in some thread, and finish.
    void deletedLaterInTheNewThreadWhileMoveDue()
    {
        auto* pool = new TaskPoolExecutor(1);
        Gate gate;
        auto running = pool->submit(waitFor, &gate);
        auto queued = pool->submit([] { return 3; });
        QVERIFY(QTest::qWaitFor([&] { return pool->activeCount() == 1; }, 5000));
        QThread later;
        later.start();
        QTest::ignoreMessage(QtWarningMsg, QRegularExpression("moveToThread\\(\\): 1 running task"));
        pool->moveToThread(&later);
        QPointer<TaskPoolExecutor> guard(pool);
        pool->deleteLater();
        QVERIFY(QTest::qWaitFor([&] { return guard.isNull(); }, 5000));
        gate.open();
        QVERIFY(QTest::qWaitFor([&] { return running.isFinished(); }, 5000));
        const bool ran = QTest::qWaitFor([&] { return queued.isFinished(); }, 3000);
        later.quit();
        QVERIFY(later.wait(5000));
        QVERIFY2(ran, "a queued task of an executor deleted while its move was due never ran");
    }

    // Promise 3 with a rate limit: tasks held by the rate window when the (otherwise idle) executor
    // moves start in the new thread (the rate alarm, reset at the move, is made again there).
    void rateHeldTasksStartInTheNewThread()
    {
        auto* pool = new TaskPoolExecutor(2);
        pool->setRateLimit(1, std::chrono::milliseconds(300));
        std::mutex mutex;
        std::vector<QThread*> ranIn;
        std::vector<TaskPool::Future<void>> futures;
        for (int i = 0; i < 3; ++i) {
            futures.push_back(pool->submit([&] {
                std::lock_guard lock(mutex);
                ranIn.push_back(QThread::currentThread());
            }));
        }
        QVERIFY(QTest::qWaitFor([&] { return futures[0].isFinished(); }, 5000));
        QTest::qWait(20); // its worker parks: nothing runs, two wait for the rate window
        QThread later;
        later.start();
        pool->moveToThread(&later);
        const bool all = QTest::qWaitFor(
            [&] { return std::all_of(futures.begin(), futures.end(), [](auto& f) { return f.isFinished(); }); }, 5000);
        std::vector<QThread*> seen;
        {
            std::lock_guard lock(mutex);
            seen = ranIn;
        }
        dispose(pool, &later);
        QVERIFY2(all, "tasks held by the rate window never started after the move");
        QCOMPARE(int(seen.size()), 3);
        QCOMPARE(seen[1], &later);
        QCOMPARE(seen[2], &later);
    }

    // Promise 3 with a timeout: a task queued before the move and started after it is timed out
    // (the timeout alarm, reset at the move, is made again in the new thread).
    void timeoutOfATaskStartedAfterTheMove()
    {
        auto* pool = new TaskPoolExecutor(1);
        pool->setPaused(true);
        auto future = pool->submit({ .timeout = std::chrono::milliseconds(100) }, untilStoppedTask);
        QThread later;
        later.start();
        pool->moveToThread(&later);
        QMetaObject::invokeMethod(
            pool, [pool] { pool->setPaused(false); }, Qt::QueuedConnection);
        const bool ended = QTest::qWaitFor([&] { return future.isFinished(); }, 5000);
        bool timedOut = false;
        if (ended) {
            try {
                future.result();
            } catch (const TaskPool::TimeoutError&) {
                timedOut = true;
            } catch (...) {
            }
        }
        if (!ended)
            future.cancel();
        dispose(pool, &later);
        QVERIFY2(ended, "a timed task started after the move never timed out");
        QVERIFY(timedOut);
    }

    // Promise 3 with keys: a task held behind its key when the move becomes due starts in the new
    // thread once the running one of its key ended in the old.
    void keyHeldTaskStartsInTheNewThread()
    {
        auto* pool = new TaskPoolExecutor(2);
        pool->setMaxPerKey(1);
        Gate gate;
        auto first = pool->submit({ .key = QStringLiteral("k") }, waitFor, &gate);
        std::atomic<QThread*> ranIn { nullptr };
        auto held = pool->submit({ .key = QStringLiteral("k") }, [&] { ranIn = QThread::currentThread(); });
        QVERIFY(QTest::qWaitFor([&] { return pool->activeCount() == 1; }, 5000));
        QThread later;
        later.start();
        QTest::ignoreMessage(QtWarningMsg, QRegularExpression("moveToThread\\(\\): 1 running task"));
        pool->moveToThread(&later);
        gate.open();
        const bool ran = QTest::qWaitFor([&] { return held.isFinished(); }, 5000);
        dispose(pool, &later);
        QVERIFY(first.isFinished());
        QVERIFY(ran);
        QCOMPARE(ranIn.load(), &later);
    }

    // A coroutine of the old thread awaiting whenIdle() when the move becomes due (awaited in the
    // executor's thread, as required) resumes in the thread it awaited in, never in the new thread
    // the executor reached idle in (its locals and QObjects belong to the old one).
    void whenIdleAwaitedInTheOldThreadAcrossAMove()
    {
        auto* pool = new TaskPoolExecutor(1);
        Gate gate;
        auto running = pool->submit(waitFor, &gate);
        auto queued = pool->submit([] {});
        QVERIFY(QTest::qWaitFor([&] { return pool->activeCount() == 1; }, 5000));
        auto resumedIn = std::make_shared<std::atomic<QThread*>>(nullptr);
        auto waiter = [](TaskPoolExecutor* pool, std::shared_ptr<std::atomic<QThread*>> out) -> QCoro::Task<void> {
            co_await pool->whenIdle();
            *out = QThread::currentThread();
        }(pool, resumedIn);
        QThread later;
        later.start();
        QTest::ignoreMessage(QtWarningMsg, QRegularExpression("moveToThread\\(\\): 1 running task"));
        pool->moveToThread(&later);
        gate.open();
        const bool resumed = QTest::qWaitFor([&] { return resumedIn->load() != nullptr; }, 5000);
        QVERIFY(QTest::qWaitFor([&] { return queued.isFinished(); }, 5000));
        dispose(pool, &later);
        QVERIFY2(resumed, "whenIdle() awaited before the move never resumed");
        QCOMPARE(resumedIn->load(), QThread::currentThread());
    }

    // Promise 2: "also one deleted while its tasks still run ... one whose thread does not run is
    // shut down from the application's thread". An executor of a worker thread is deleted while a
    // task runs there; the worker thread is then ended and its QThread deleted (the usual
    // teardown of a worker). At the quit, ExecutorCore::applicationQuits() reads the core's thread,
    // a dangling QThread*, and calls isRunning() on it: a use after free (SIGSEGV, or ASan's
    // heap-use-after-free). Crashes the process: the last case.
    void quitAfterTheExecutorsThreadWasDeleted()
    {
        // An idle executor whose thread ended and whose QThread was deleted: the application's
        // quit, and the executor's destruction afterwards, touch neither.
        auto* worker = new QThread;
        worker->start();
        auto* pool = new TaskPoolExecutor(1);
        pool->moveToThread(worker);
        auto future = pool->submit([] { return 5; });
        QVERIFY(QTest::qWaitFor([&] { return future.isFinished(); }, 5000));
        QCOMPARE(future.result(), 5);
        QSemaphore idle;
        QMetaObject::invokeMethod(pool, [&] {
            [](TaskPoolExecutor* pool, QSemaphore* idle) -> QCoro::Task<void> {
                co_await pool->whenIdle();
                idle->release();
            }(pool, &idle);
        });
        QVERIFY(idle.tryAcquire(1, 5000));
        worker->quit();
        QVERIFY(worker->wait(5000));
        delete worker;
        QTimer::singleShot(0, qApp, [] { QCoreApplication::quit(); });
        QCoreApplication::exec(); // must not touch the deleted QThread
        delete pool; // nor must this
        QVERIFY(true);
    }
};

QTEST_GUILESS_MAIN(tst_LifecycleReview2)
#include "tst_lifecycle_review2.moc"
