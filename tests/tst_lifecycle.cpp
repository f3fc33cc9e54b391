// SPDX-License-Identifier: MIT
// Where applications end: a context destroyed with listeners that are part of it (a window whose
// slots listen to the executor), the application quitting with tasks in flight, and an executor
// moved to another thread. The whole programs (a window closed, an application quit with processes
// running) are in tests/apps/lifecycle.cpp.
#include "testutil.h"

#include <QCoreApplication>
#include <QEventLoop>
#include <QSemaphore>
#include <QSet>
#include <QTimer>

#include <atomic>
#include <memory>
#include <stop_token>
#include <thread>

using namespace TestUtil;
using TaskPool::CancelledError;
using TaskPool::SubmitOptions;
using TaskPool::TaskPoolExecutor;

namespace {

//! Objects whose own destructor has run (their QObject part is being destroyed).
QSet<const void*>& destroyedListeners()
{
    static QSet<const void*> set;
    return set;
}

//! A listener that is also the tasks' context, as a window is: its slots must never be called once
//! its destructor has run, while QObject's destructor emits destroyed() (which cancels the tasks).
class Listener : public QObject {
public:
    explicit Listener(TaskPoolExecutor* pool, QObject* parent = nullptr) : QObject(parent)
    {
        connect(pool, &TaskPoolExecutor::pendingCountChanged, this, [this] { heard(); });
        connect(pool, &TaskPoolExecutor::activeCountChanged, this, [this] { heard(); });
        connect(pool, &TaskPoolExecutor::taskCancelled, this, [this] { heard(); });
        connect(pool, &TaskPoolExecutor::idle, this, [this] { heard(); });
    }
    ~Listener() override { destroyedListeners().insert(this); }

    static inline int lateCalls = 0; // slots called on a listener after its destructor ran

private:
    void heard()
    {
        if (destroyedListeners().contains(this))
            ++lateCalls;
    }
};

//! Runs until its stop token is stopped, then ends cancelled.
QCoro::Task<int> untilStopped(std::stop_token token, std::shared_ptr<int> stopped)
{
    Gate stop;
    std::stop_callback onStop(token, [&stop] { stop.open(); });
    co_await stop;
    ++*stopped;
    throw CancelledError();
}

} // namespace

class tst_Lifecycle : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void init() { Listener::lateCalls = 0; }

    // Issue 19, 1: the context's destruction cancels its tasks, and the reports of that cancel
    // reach no slot of the half-destroyed object; other listeners still get them, from the loop.
    void contextDestructionNeverCallsTheDyingListener()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(2);
            auto* window = new Listener(&pool);
            int cancelledHeard = 0;
            int idleHeard = 0;
            connect(&pool, &TaskPoolExecutor::taskCancelled, &pool, [&] { ++cancelledHeard; });
            connect(&pool, &TaskPoolExecutor::idle, &pool, [&] { ++idleHeard; });
            auto stopped = std::make_shared<int>(0);
            std::vector<TaskPool::Future<int>> futures;
            for (int i = 0; i < 5; ++i)
                futures.push_back(pool.submit({ .context = window }, untilStopped, stopped));
            co_await until([&] { return pool.activeCount() == 2; });
            delete window;
            CO_COMPARE(Listener::lateCalls, 0);
            for (auto& future : futures)
                CO_VERIFY(future.isCanceled()); // the cancel itself is made at once
            co_await until([&] { return idleHeard > 0; });
            CO_COMPARE(Listener::lateCalls, 0);
            CO_COMPARE(cancelledHeard, 5);
            CO_COMPARE(*stopped, 2);
            CO_COMPARE(pool.activeCount(), 0);
        }());
    }

    // The same with the executor as the dying object's child: deleted with it, no slot called late.
    void executorAsTheContextsChild()
    {
        run([]() -> QCoro::Task<void> {
            auto* window = new QObject;
            auto* pool = new TaskPoolExecutor(2);
            auto* listener = new Listener(pool, window);
            pool->setParent(window); // destroyed after the listener, as a member declared first

            auto stopped = std::make_shared<int>(0);
            std::vector<TaskPool::Future<int>> futures;
            for (int i = 0; i < 4; ++i)
                futures.push_back(pool->submit({ .context = listener }, untilStopped, stopped));
            co_await until([&] { return pool->activeCount() == 2; });
            delete window;
            CO_COMPARE(Listener::lateCalls, 0);
            co_await until([&] { return *stopped == 2; });
            for (auto& future : futures)
                CO_VERIFY(future.isCanceled());
            CO_COMPARE(Listener::lateCalls, 0);
        }());
    }

    // A context destroyed from a slot of the executor's own report: the rest of that flush goes on,
    // the dying object's slots are never called.
    void contextDestroyedInASlot()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto* window = new Listener(&pool);
            QPointer<Listener> guard(window);
            connect(&pool, &TaskPoolExecutor::taskFinished, &pool, [&] { delete guard.data(); });
            auto first = pool.submit([] { return 1; });
            auto second = pool.submit({ .context = window }, [] { return 2; });
            co_await first;
            co_await until([&] { return second.isFinished(); });
            CO_VERIFY(guard.isNull());
            CO_VERIFY(second.isCanceled() || second.result() == 2);
            CO_COMPARE(Listener::lateCalls, 0);
        }());
    }

    void quitTimeoutProperty()
    {
        TaskPoolExecutor pool(1);
        QCOMPARE(pool.quitTimeout(), 5000);
        int heard = -1;
        connect(&pool, &TaskPoolExecutor::quitTimeoutChanged, &pool, [&](int ms) { heard = ms; });
        pool.setQuitTimeout(250);
        QCOMPARE(pool.quitTimeout(), 250);
        QCOMPARE(heard, 250);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, pool.setQuitTimeout(-1));
        QCOMPARE(pool.quitTimeout(), 250);
        QCOMPARE(pool.property("quitTimeout").toInt(), 250);
    }

    // Issue 19, 2: when the application quits (exec() returns), queued tasks are cancelled, running
    // tasks are told to stop, and exec()'s caller gets control back only once they have ended.
    void applicationQuitStopsAndDrains()
    {
        TaskPoolExecutor pool(2);
        auto stopped = std::make_shared<int>(0);
        std::vector<TaskPool::Future<int>> futures;
        for (int i = 0; i < 4; ++i)
            futures.push_back(pool.submit(untilStopped, stopped));
        auto plain = pool.submit([] { return 7; }); // queued: cancelled, never run
        QTimer::singleShot(0, qApp, [&] {
            QCOMPARE(pool.activeCount(), 2);
            QCoreApplication::quit();
        });
        QCoreApplication::exec();
        QCOMPARE(*stopped, 2); // both running tasks ended before exec()'s caller went on
        QCOMPARE(pool.activeCount(), 0);
        QVERIFY(pool.isShutdown());
        for (auto& future : futures)
            QVERIFY(future.isCanceled());
        QVERIFY(plain.isCanceled());
        QVERIFY_THROWS_EXCEPTION(TaskPool::ShutdownError, (void)pool.submit([] { return 0; }));
    }

    // A coroutine awaiting a queued task's future when the application quits resumes (with
    // CancelledError) before exec()'s caller goes on, as one awaiting a running task does.
    void applicationQuitResumesAwaitersOfQueuedTasks()
    {
        TaskPoolExecutor pool(1);
        pool.pause(); // everything stays queued
        auto queued = pool.submit([] { return 1; });
        int outcome = 0; // 1: a result, 2: CancelledError
        auto awaiting = [](TaskPool::Future<int> future, int* outcome) -> QCoro::Task<void> {
            try {
                co_await future;
                *outcome = 1;
            } catch (const CancelledError&) {
                *outcome = 2;
            }
        }(queued, &outcome);
        QTimer::singleShot(0, qApp, [] { QCoreApplication::quit(); });
        QCoreApplication::exec();
        QCOMPARE(outcome, 2);
        QVERIFY(queued.isCanceled());
    }

    // A task that ignores its stop token is waited for at most quitTimeout, then abandoned.
    void applicationQuitWaitsAtMostQuitTimeout()
    {
        auto pool = std::make_unique<TaskPoolExecutor>(1);
        pool->setQuitTimeout(300);
        Gate never;
        auto future = pool->submit(waitFor, &never);
        QTimer::singleShot(0, qApp, [&] {
            QCOMPARE(pool->activeCount(), 1);
            QCoreApplication::quit();
        });
        QTest::ignoreMessage(QtWarningMsg,
                             QRegularExpression("1 task\\(s\\) still running 300 ms after the application quit"));
        QElapsedTimer clock;
        clock.start();
        QCoreApplication::exec();
        QVERIFY(clock.elapsed() >= 250); // waited (a precise timer may round a little)
        QCOMPARE(pool->activeCount(), 1);
        never.open();
        QVERIFY(QTest::qWaitFor([&] { return future.isFinished(); }, 5000));
        QCOMPARE(future.result(), 0);
    }

    // Issue 19, 3: an idle executor follows moveToThread(): its tasks run in the new thread, and
    // tasks submitted before the thread started run there once it does.
    void moveToThreadWhenIdleFollows()
    {
        auto* pool = new TaskPoolExecutor(2);
        auto first = pool->submit([] { return 1; });
        QVERIFY(QTest::qWaitFor([&] { return first.isFinished() && pool->activeCount() == 0; }, 5000));
        QThread worker;
        pool->moveToThread(&worker);
        QCOMPARE(pool->thread(), &worker);
        std::atomic<QThread*> ranIn { nullptr };
        auto early = pool->submit([&ranIn] {
            ranIn = QThread::currentThread();
            return 2;
        }); // from another thread now: handed over, run once the worker's loop turns
        worker.start();
        QVERIFY(QTest::qWaitFor([&] { return early.isFinished(); }, 5000));
        QCOMPARE(early.result(), 2);
        QCOMPARE(ranIn.load(), &worker);
        ranIn = nullptr;
        std::atomic<bool> inThread { false };
        QMetaObject::invokeMethod(pool, [&] {
            // Submitted in the new thread, as its code would.
            (void)pool->submit([&] {
                ranIn = QThread::currentThread();
                inThread = true;
            });
        });
        QVERIFY(QTest::qWaitFor([&] { return inThread.load(); }, 5000));
        QCOMPARE(ranIn.load(), &worker);
        QSemaphore drained; // the worker's end is the executor's business, in its thread
        QMetaObject::invokeMethod(pool, [&] {
            [](TaskPoolExecutor* pool, QSemaphore* drained) -> QCoro::Task<void> {
                co_await pool->whenIdle();
                drained->release();
            }(pool, &drained);
        });
        QVERIFY(drained.tryAcquire(1, 5000));
        QObject::connect(pool, &QObject::destroyed, &worker, &QThread::quit, Qt::DirectConnection);
        pool->deleteLater();
        QVERIFY(worker.wait(5000));
    }

    // With a task running, the executor follows once it has ended: the running task ends in its
    // thread, the queued one starts in the new thread, and from then on thread() is where tasks run.
    void moveToThreadWithWorkFollowsOnceItEnds()
    {
        auto* pool = new TaskPoolExecutor(1);
        Gate gate;
        std::atomic<QThread*> firstRanIn { nullptr };
        auto running = pool->submit(
            [&firstRanIn](Gate* gate) -> QCoro::Task<int> {
                co_await *gate;
                firstRanIn = QThread::currentThread();
                co_return 1;
            },
            &gate);
        std::atomic<QThread*> queuedRanIn { nullptr };
        auto queued = pool->submit([&queuedRanIn] {
            queuedRanIn = QThread::currentThread();
            return 2;
        });
        QVERIFY(QTest::qWaitFor([&] { return pool->activeCount() == 1; }, 5000));
        QThread worker;
        worker.start();
        QTest::ignoreMessage(QtWarningMsg, QRegularExpression("moveToThread\\(\\): 1 running task"));
        pool->moveToThread(&worker);
        QCOMPARE(pool->thread(), &worker);
        QTest::qWait(50);
        QVERIFY(!queued.isFinished()); // held while the running task has not ended
        gate.open();
        QVERIFY(QTest::qWaitFor([&] { return queued.isFinished(); }, 5000));
        QCOMPARE(running.result(), 1);
        QCOMPARE(firstRanIn.load(), QThread::currentThread());
        QCOMPARE(queued.result(), 2);
        QCOMPARE(queuedRanIn.load(), &worker);
        QObject::connect(pool, &QObject::destroyed, &worker, &QThread::quit, Qt::DirectConnection);
        pool->deleteLater();
        QVERIFY(worker.wait(5000));
    }

    // The executor of an object moved with it (its child), busy at the move: it follows too.
    void childExecutorFollowsItsOwner()
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
        gate.open();
        QVERIFY(QTest::qWaitFor([&] { return running.isFinished(); }, 5000));
        std::atomic<QThread*> ranIn { nullptr };
        auto next = pool->submit([&ranIn] { ranIn = QThread::currentThread(); });
        QVERIFY(QTest::qWaitFor([&] { return next.isFinished(); }, 5000));
        QCOMPARE(ranIn.load(), pool->thread());
        QCOMPARE(pool->thread(), &worker);
        QObject::connect(owner, &QObject::destroyed, &worker, &QThread::quit, Qt::DirectConnection);
        owner->deleteLater();
        QVERIFY(worker.wait(5000));
    }

    // Code of the new thread that calls the executor before that thread's loop has turned once.
    void callsInTheNewThreadBeforeItsFirstTurn()
    {
        auto* pool = new TaskPoolExecutor(1);
        QThread worker;
        pool->moveToThread(&worker);
        std::atomic<int> verdict { 0 };
        QObject starter;
        starter.moveToThread(&worker);
        QMetaObject::invokeMethod(&starter, [&] {
            // Queued before the executor's own arrival: the executor is here already.
            auto idle = pool->whenIdle();
            (void)pool->submit([] { return 1; });
            verdict = pool->pendingCount() + pool->activeCount() >= 0 ? 1 : -1;
        });
        worker.start();
        QVERIFY(QTest::qWaitFor([&] { return verdict.load() != 0; }, 5000));
        QCOMPARE(verdict.load(), 1);
        QVERIFY(QTest::qWaitFor([&] { return pool->activeCount() == 0 && pool->pendingCount() == 0; }, 5000));
        QObject::connect(pool, &QObject::destroyed, &worker, &QThread::quit, Qt::DirectConnection);
        pool->deleteLater();
        QVERIFY(worker.wait(5000));
    }
};

QTEST_GUILESS_MAIN(tst_Lifecycle)
#include "tst_lifecycle.moc"
