// SPDX-License-Identifier: MIT
// Second adversarial review: each test breaks one documented promise (named in its comment) of
// the QML module, the waiting helpers, map() or the misuse checks. A test here fails while the
// promise is broken.
#include "testutil.h"

#ifdef TASKPOOL_QML_IMPORT_DIR

#include <taskpool/qml.h>

#include <QPointer>
#include <QQmlComponent>
#include <QQmlContext>
#include <QQmlEngine>
#include <QQmlExpression>

#include <limits>
#include <memory>

using namespace TestUtil;
using TaskPool::TaskFuture;

namespace {

QCoro::Task<int> one()
{
    co_return 1;
}

//! A callable object with two call operators, one of them fitting `int`.
struct Overloaded {
    int operator()(int x) const { return x; }
    int operator()(double x) const { return int(x); }
};

} // namespace

class tst_Adversarial2 : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void idleBeforeTaskFutureSettles_slotOnTaskFinished();
    void idleBeforeTaskFutureSettles_secondTaskFutureOfOneTask();
    void overloadedCallableMisuseReachesStaticAssert();
    // These two end the process under ASan/UBSan (the error they show), so they come last.
    void ownerDeletesTaskFutureInFinished();
    void progressOverFullIntRange();
};

// Promise (qml.h, QmlTaskPoolExecutor::idle and README "Ordering"): every TaskFuture made with
// toTaskFuture(future, executor) has settled when the executor signals idle(); inside idle its
// status is final. Broken: a slot on taskFinished (connected before the first TaskFuture made
// the executor's tracker) that submits and cancels a follow-up job makes the executor emit idle()
// from inside the taskFinished emission, before the tracker's own taskFinished handler settled
// the TaskFuture.
void tst_Adversarial2::idleBeforeTaskFutureSettles_slotOnTaskFinished()
{
    TaskPool::TaskPoolExecutor pool(1);
    Gate gate;
    quint64 firstId = 0;
    connect(&pool, &TaskPool::TaskPoolExecutor::taskFinished, this, [&](quint64 id) {
        if (id != firstId)
            return;
        auto followUp = pool.submit(one); // queued behind nothing, yet not started: then dropped
        followUp.cancel();
    });
    auto future = pool.submit(gated, &gate, 7);
    firstId = future.taskId();
    std::unique_ptr<TaskFuture> taskFuture(TaskPool::toTaskFuture(future, &pool));
    QList<int> statusAtIdle;
    connect(&pool, &TaskPool::TaskPoolExecutor::idle, this, [&] { statusAtIdle << int(taskFuture->status()); });
    QTRY_COMPARE(taskFuture->status(), TaskFuture::Running);
    gate.open();
    QTRY_COMPARE(taskFuture->status(), TaskFuture::Finished);
    QTRY_VERIFY(!statusAtIdle.isEmpty());
    QCOMPARE(statusAtIdle, QList<int> { int(TaskFuture::Finished) });
}

// Same promise, without any slot on the executor's own signals: two TaskFutures of one task (two
// toTaskFuture() calls, both with the executor). The finished() handler of the one the tracker
// settles first submits and
// cancels a job; the executor then emits idle() while the second TaskFuture of the same, already
// finished, task still says Running.
void tst_Adversarial2::idleBeforeTaskFutureSettles_secondTaskFutureOfOneTask()
{
    TaskPool::TaskPoolExecutor pool(1);
    Gate gate;
    auto future = pool.submit(gated, &gate, 7);
    std::unique_ptr<TaskFuture> first(TaskPool::toTaskFuture(future, &pool));
    std::unique_ptr<TaskFuture> second(TaskPool::toTaskFuture(future, &pool));
    // Whichever of the two settles first (the tracker's order) reacts, once.
    bool reacted = false;
    auto react = [&] {
        if (!std::exchange(reacted, true))
            pool.submit(one).cancel();
    };
    connect(first.get(), &TaskFuture::finished, this, react);
    connect(second.get(), &TaskFuture::finished, this, react);
    QStringList statusAtIdle;
    connect(&pool, &TaskPool::TaskPoolExecutor::idle, this,
            [&] { statusAtIdle << QStringLiteral("%1 %2").arg(int(first->status())).arg(int(second->status())); });
    QTRY_COMPARE(second->status(), TaskFuture::Running);
    gate.open();
    QTRY_COMPARE(second->status(), TaskFuture::Finished);
    QTRY_COMPARE(first->status(), TaskFuture::Finished);
    QTRY_VERIFY(!statusAtIdle.isEmpty());
    const QString finished = QString::number(int(TaskFuture::Finished));
    QCOMPARE(statusAtIdle, QStringList { finished + u' ' + finished });
}

// Promise (README "Errors": a call to submit that cannot work fails with a static_assert that
// says what to do, e.g. "arguments that do not fit the callable"; usage.h CallableLike: "an
// object with an operator()"). Broken: an object with overloaded call operators is no
// CallableLike when the arguments fit none of them, so `pool.submit(Overloaded{})` fails with
// "no matching function for call to TaskPoolExecutor::submit(Overloaded)" instead of the
// static_assert. Checked here through the constraint itself (a compile failure cannot be a test).
void tst_Adversarial2::overloadedCallableMisuseReachesStaticAssert()
{
    QVERIFY((std::invocable<Overloaded, int>)); // it is a callable object
    QVERIFY((TaskPool::detail::CallableLike<Overloaded, int>));
    QVERIFY2((TaskPool::detail::CallableLike<Overloaded>),
             "submit(Overloaded{}) with no arguments is refused by overload resolution, not by the static_assert");
}

// Promise (qml.h TaskFuture: "finished() ... emitted last"; "A TaskFuture kept by C++ only must
// ... be deleted by its owner"; the tracker's comment: a TaskFuture's signal may delete
// TaskFutures). Broken: an owner that deletes its TaskFuture when it reports finished() (the last
// signal) makes TaskFuture::update() read the deleted object right after the emission
// (src/qml/taskfuture.cpp:219, m_deferred.isEmpty(), then m_deferred/m_self): heap-use-after-free
// under ASan; the same holds for a deletion in statusChanged(), failed() or cancelled(), after
// which update() goes on emitting from the deleted object.
void tst_Adversarial2::ownerDeletesTaskFutureInFinished()
{
    Gate gate;
    TaskPool::TaskPoolExecutor pool(1);
    auto* taskFuture = TaskPool::toTaskFuture(pool.submit(gated, &gate, 1), &pool);
    QPointer<TaskFuture> alive(taskFuture);
    bool wasFinished = false;
    connect(taskFuture, &TaskFuture::finished, this, [&wasFinished, taskFuture] {
        wasFinished = taskFuture->status() == TaskFuture::Finished;
        delete taskFuture;
    });
    gate.open();
    QTRY_VERIFY(alive.isNull());
    QVERIFY(wasFinished);
}

// Promise (qml.h TaskFuture: "progress is a fraction in 0..1: (progressValue - progressMinimum) /
// (progressMaximum - progressMinimum)"). Broken at the extremes of int: TaskFuture::progress()
// subtracts in int (src/qml/taskfuture.cpp, progress()), which overflows (undefined behaviour,
// reported by UBSan) for a range wider than INT_MAX; without UBSan the wrapped difference gives
// 1.0 for a task at the middle of its range.
void tst_Adversarial2::progressOverFullIntRange()
{
    QFutureInterface<int> producer;
    producer.reportStarted();
    TaskFuture taskFuture(producer.future());
    producer.setProgressRange(std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
    producer.setProgressValue(0);
    QTRY_COMPARE(taskFuture.progressValue(), 0);
    QTRY_COMPARE(taskFuture.progressMinimum(), std::numeric_limits<int>::min());
    QVERIFY2(qAbs(taskFuture.progress() - 0.5) < 1e-6, qPrintable(QString::number(taskFuture.progress())));
    producer.reportFinished();
}

QTEST_GUILESS_MAIN(tst_Adversarial2)

#else

class tst_Adversarial2 : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void qmlModuleNotBuilt() { QSKIP("TASKPOOL_BUILD_QML is OFF"); }
};

QTEST_GUILESS_MAIN(tst_Adversarial2)

#endif

#include "tst_adversarial2.moc"
