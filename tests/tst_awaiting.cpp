// SPDX-License-Identifier: MIT
// The awaiting machinery at its edges: awaiters that go away before their future settles, foreign
// futures that finish without a result, and CancelledError carried by a plain QFuture.
#include "testutil.h"

#include <QPromise>

using namespace TestUtil;
using TaskPool::CancelledError;
using TaskPool::Future;
using TaskPool::TaskPoolExecutor;

namespace {

// A coroutine that only records that it was resumed: it stands for an awaiting coroutine whose
// frame is destroyed before the future settles, and must then never be resumed.
struct Probe {
    struct promise_type {
        bool* resumed = nullptr;
        Probe get_return_object() { return Probe { std::coroutine_handle<promise_type>::from_promise(*this) }; }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() { }
        void unhandled_exception() { std::terminate(); }
    };
    std::coroutine_handle<promise_type> handle;
};

Probe probe(bool* resumed)
{
    *resumed = true;
    co_return;
}

} // namespace

class tst_Awaiting : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void awaiterGoneBeforeSettlingIsNeverResumed()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            Gate gate;
            auto future = pool.submit(gated, &gate, 5);
            bool firstResumed = false, secondResumed = false, thirdResumed = false;
            Probe first = probe(&firstResumed), second = probe(&secondResumed), third = probe(&thirdResumed);
            {
                // Three awaiters register; the middle one and then the newest one go away (as the
                // frame of a coroutine destroyed while suspended would), the oldest stays.
                using Awaiter = decltype(future.operator co_await());
                struct Held {
                    Awaiter awaiter;
                };
                auto keep = future.operator co_await();
                std::unique_ptr<Held> middle(new Held { future.operator co_await() });
                std::unique_ptr<Held> newest(new Held { future.operator co_await() });
                CO_VERIFY(!keep.await_ready());
                CO_VERIFY(keep.await_suspend(first.handle));
                CO_VERIFY(middle->awaiter.await_suspend(second.handle));
                CO_VERIFY(newest->awaiter.await_suspend(third.handle));
                middle.reset();
                newest.reset();
                gate.open();
                CO_COMPARE(co_await future, 5);
                co_await TaskPool::detail::Yield {};
                CO_VERIFY(firstResumed);
                CO_VERIFY(!secondResumed);
                CO_VERIFY(!thirdResumed);
                CO_COMPARE(keep.await_resume(), 5);
            }
            first.handle.destroy();
            second.handle.destroy();
            third.handle.destroy();
            co_await pool.shutdown();
        }());
    }

    void awaitingASettledFutureDoesNotSuspend()
    {
        run([]() -> QCoro::Task<void> {
            TaskPoolExecutor pool(1);
            auto future = pool.submit([] { return 3; });
            CO_COMPARE(co_await future, 3);
            auto awaiter = future.operator co_await();
            CO_VERIFY(awaiter.await_ready());
            bool resumed = false;
            Probe never = probe(&resumed);
            CO_VERIFY(!awaiter.await_suspend(never.handle)); // settled: registers nothing
            CO_COMPARE(awaiter.await_resume(), 3);
            never.handle.destroy();
            co_await pool.shutdown();
        }());
    }

    void foreignFutureFinishedWithoutAResult()
    {
        run([]() -> QCoro::Task<void> {
            QPromise<int> promise;
            promise.start();
            promise.finish();
            Future<int> future(promise.future());
            CO_VERIFY(future.done());
            CO_VERIFY(!future.cancelled());
            CO_VERIFY_THROWS(co_await future, std::logic_error);
        }());
    }

    void cancelledErrorCarriedByAPlainQFuture()
    {
        run([]() -> QCoro::Task<void> {
            QPromise<int> promise;
            promise.start();
            promise.setException(CancelledError()); // stored through QException::raise()
            promise.finish();
            Future<int> future(promise.future());
            CO_VERIFY(!future.cancelled()); // it failed, with a CancelledError
            CO_VERIFY_THROWS(co_await future, CancelledError);
            const std::unique_ptr<QException> copy(CancelledError().clone());
            CO_VERIFY(dynamic_cast<CancelledError*>(copy.get()));
            CO_VERIFY_THROWS(copy->raise(), CancelledError);
        }());
    }
};

QTEST_GUILESS_MAIN(tst_Awaiting)
#include "tst_awaiting.moc"
