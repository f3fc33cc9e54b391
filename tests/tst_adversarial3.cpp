// SPDX-License-Identifier: MIT
// Third adversarial review: each test breaks one documented promise (named in its comment) of the
// cancellation and scheduling controls (stop tokens, SubmitOptions, timeouts, pause). A test here
// fails (or ends the process under ASan) while the promise is broken.
#include "testutil.h"

#include <QFutureWatcher>

#include <functional>
#include <memory>
#include <optional>
#include <stop_token>

using namespace TestUtil;

namespace {

//! Suspends until the token is stopped, and resumes inline, inside the stop callback (a common
//! way to write a cancellable awaitable over std::stop_callback).
struct ResumeInlineOnStop {
    std::stop_token token;
    std::shared_ptr<std::stop_callback<std::function<void()>>> callback {};
    std::coroutine_handle<> handle {};

    bool await_ready() const noexcept { return token.stop_requested(); }
    void await_suspend(std::coroutine_handle<> h)
    {
        handle = h;
        auto resume = h;
        callback = std::make_shared<std::stop_callback<std::function<void()>>>(
            token, std::function<void()>([resume] { resume.resume(); }));
    }
    void await_resume() const noexcept { }
};

//! A task with two stop callbacks: the later one (run first) ends the task inline.
QCoro::Task<int> endsInsideStopCallback(std::stop_token token)
{
    std::stop_callback other(token, [] {});
    // A named awaiter: g++ 12 destroys a temporary awaitable with a non-trivial destructor twice
    // when QCoro's await_transform forwards it (here: one stop_token release too many).
    ResumeInlineOnStop wait { token };
    co_await wait;
    co_return 1;
}

} // namespace

class tst_Adversarial3 : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void destroyingPausedExecutorLeavesFuturesUnsettled();
    void timeoutMessageUsesLaterDefault();
    // These end the process under ASan (the error they show), so they come last.
    void stopCallbackEndsTaskInlineOnTimeout();
    void stopCallbackEndsTaskInlineOnPlainQFutureCancel();
};

// Promise (executor.h, class description and ~TaskPoolExecutor): "Destroying the executor behaves
// as shutdown({.wait = false}): queued and running work still completes while the event loop runs,
// and every future still finishes." Broken: destroying a paused executor leaves its queued tasks
// queued forever (nothing can resume it any more): the future never finishes, the job and the
// core leak. Cause: ~TaskPoolExecutor -> beginShutdown(false) ignores `paused`; take() never
// starts a job while paused, and releaseIdleWorkers() keeps parked workers while work is queued.
void tst_Adversarial3::destroyingPausedExecutorLeavesFuturesUnsettled()
{
    auto* pool = new TaskPool::TaskPoolExecutor(1);
    pool->pause();
    QFuture<int> future = pool->submit(amul, 2, 3);
    delete pool;
    QVERIFY2(nestedLoopUntil([&] { return future.isFinished(); }),
             "the future of a task queued in a destroyed paused executor never finished");
}

// Promise (executor.h, SubmitOptions::timeout / setDefaultTimeout()): defaultTimeout "for tasks
// that start from now on" - a running task keeps the timeout it started with. Its timer does, but
// the TimeoutError reports the executor's current defaultTimeout (timeOut() reads *defaultTimeout
// when the TimeoutError is made; with the default reset to none that is *an empty optional*, UB).
void tst_Adversarial3::timeoutMessageUsesLaterDefault()
{
    run([]() -> QCoro::Task<void> {
        TaskPool::TaskPoolExecutor pool(1);
        pool.setDefaultTimeout(std::chrono::milliseconds(30));
        Gate gate;
        auto future = pool.submit(waitFor, &gate);
        co_await until([&] { return pool.activeCount() == 1; });
        pool.setDefaultTimeout(std::chrono::milliseconds(5000)); // for tasks that start from now on
        QString message;
        try {
            co_await future;
        } catch (const TaskPool::TimeoutError& e) {
            message = QString::fromUtf8(e.what());
        }
        gate.open();
        CO_VERIFY2(!message.isEmpty(), "the task did not time out");
        CO_VERIFY2(message.contains(QLatin1String("30 ms")), qPrintable(message));
        co_await pool.whenIdle();
    }());
}

// Promise (executor.h, SubmitOptions::timeout): "When it passes, the future fails with
// TimeoutError and the task's stop token is stopped." Broken: a task whose stop callback resumes
// it inline ends inside request_stop(); the executor holds no reference to the job across
// requestStop() in timeOut(), so end() deletes the job and its JobControl (the stop_source, last
// owner of the stop state) while std::stop_source::request_stop() is still walking its callback
// list: heap-use-after-free under ASan (in std::_Stop_state_t::_M_request_stop / _M_lock).
void tst_Adversarial3::stopCallbackEndsTaskInlineOnTimeout()
{
    TaskPool::TaskPoolExecutor pool(1);
    // Only a plain QFuture is kept: the executor's reference is the job's last one.
    QFuture<int> future = pool.submit({ .timeout = std::chrono::milliseconds(10) }, endsInsideStopCallback);
    QVERIFY(nestedLoopUntil([&] { return future.isFinished() && pool.activeCount() == 0; }));
    QVERIFY(nestedLoopUntil([&] { return pool.workerCount() >= 0; }));
}

// Promise (executor.h / detail/job.h: a plain QFuture::cancel() stops a running task's token, via
// the per-task QFutureWatcher). Broken the same way: the watcher's slot captures the raw Job* and
// Job::cancel() -> jobCancelled() -> requestStop() runs the callbacks with nobody holding the job;
// the task ends inline, end() deletes the job and its stop_source mid request_stop():
// heap-use-after-free under ASan.
void tst_Adversarial3::stopCallbackEndsTaskInlineOnPlainQFutureCancel()
{
    TaskPool::TaskPoolExecutor pool(1);
    QFuture<int> future = pool.submit(endsInsideStopCallback);
    QVERIFY(nestedLoopUntil([&] { return pool.activeCount() == 1; }));
    future.cancel();
    QVERIFY(nestedLoopUntil([&] { return pool.activeCount() == 0; }));
    QVERIFY(future.isCanceled());
}

QTEST_GUILESS_MAIN(tst_Adversarial3)
#include "tst_adversarial3.moc"
