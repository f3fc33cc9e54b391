// SPDX-License-Identifier: MIT
//! \file cancel.h
//! Awaits that end early when a std::stop_token is stopped: sleep(), untilCancelled() and
//! cancellable() (any awaitable, a QProcess; a QNetworkReply in network.h).
/*!
 * Each helper takes a `std::stop_token` and works with any `std::stop_source`: it does not need an
 * executor. When stop is requested while a coroutine is suspended in one of them, the coroutine
 * resumes with TaskPool::CancelledError at that `co_await`, from a later turn of the event loop of
 * the thread it awaited in: never inside `request_stop()` itself, which may run inside a cancel()
 * of the caller. When stop was already requested at the `co_await`, the helpers throw
 * CancelledError at once, without suspending, even when the operation has already completed
 * (untilCancelled() then just completes; cancellable(QProcess *) first waits for a running
 * process to end). A stop that comes after the operation completed changes nothing.
 *
 * Threads: the awaiting thread must run a Qt event loop. `request_stop()` may be called from any
 * thread; the stop callbacks then run in that thread, but they only decide the outcome and post
 * the rest (the resumption, `terminate()`, `abort()`) to the awaiting thread. A stop callback is
 * deregistered when the awaiter goes away, which waits for a callback running in another thread
 * to return (`std::stop_callback`'s rule): these callbacks never block, so that wait is short.
 * When the stop comes from a TaskPoolExecutor, its callbacks run in the executor's thread, which
 * is the thread of the awaiting task.
 *
 * A coroutine frame destroyed while suspended in one of these awaits is never resumed: its
 * awaiter deregisters its stop callback and drops whatever it had posted.
 */
#pragma once

#include <taskpool/clock.h>
#include <taskpool/errors.h>
#include <taskpool/future.h>

#define TASKPOOL_INSIDE_PUBLIC_HEADER
#include <taskpool/detail/scheduler.h>
#include <taskpool/detail/taskjob.h>
#undef TASKPOOL_INSIDE_PUBLIC_HEADER

#include <QAbstractEventDispatcher>
#include <QCoro/QCoroTask>
#include <QMetaObject>
#include <QPointer>
#include <QProcess>
#include <QThread>
#include <QTimer>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <type_traits>
#include <utility>

class QNetworkReply;

namespace TaskPool {

namespace detail {

    //! The steady_clock time \a duration (not negative) from now; TimePoint::max() ("never") when
    //! the clock cannot reach it.
    inline Clock::TimePoint timeAfter(std::chrono::milliseconds duration)
    {
        const Clock::TimePoint now = std::chrono::steady_clock::now();
        if (duration >= std::chrono::duration_cast<std::chrono::milliseconds>(Clock::TimePoint::max() - now))
            return Clock::TimePoint::max();
        return now + duration;
    }

    //! An alarm of systemClock(), the executor's own: a precise QTimer checked against
    //! steady_clock when it fires, re-armed for the rest when early, and armed in steps for a
    //! time beyond a QTimer's int of milliseconds. It fires in the thread that made it.
    inline std::unique_ptr<Clock::Alarm> alarmAfter(std::chrono::milliseconds duration, std::function<void()> fire)
    {
        auto alarm = systemClock()->makeAlarm(std::move(fire));
        alarm->start(timeAfter(duration));
        return alarm;
    }

    //! What a cancellable await shares with the callbacks that may outlive it or run in another
    //! thread: who won (completion or stop), and the one resumption of the awaiting coroutine.
    /*!
     * The outcome is decided once, by the first of decide()'s callers, from any thread. Everything
     * else happens in the awaiting thread, from its event loop: post() hands work over to it, and
     * the work is dropped when the awaiter has gone away by then (detach()).
     */
    class StopWaitState {
    public:
        enum Outcome : int { Pending, Completed, Stopped };

        StopWaitState() : m_thread(QThread::currentThread()) { }
        StopWaitState(const StopWaitState&) = delete;
        StopWaitState& operator=(const StopWaitState&) = delete;
        virtual ~StopWaitState() = default;

        //! Any thread: true for the first caller only, whose outcome it is.
        bool decide(Outcome outcome) noexcept
        {
            int expected = Pending;
            return m_outcome.compare_exchange_strong(expected, outcome, std::memory_order_acq_rel);
        }
        Outcome outcome() const noexcept { return Outcome(m_outcome.load(std::memory_order_acquire)); }

        //! Awaiting thread, in await_suspend(): the coroutine to resume. (The state is made in the
        //! awaiting thread too: its thread is fixed from then on, read by post() from any thread.)
        void arm(std::coroutine_handle<> handle) noexcept { m_handle = handle; }
        //! Awaiting thread: the awaiter goes away; nothing posted for it runs any more.
        void detach() noexcept
        {
            m_alive = false;
            m_handle = {};
        }

        //! Any thread: runs \a fn in the awaiting thread from a later turn of its event loop, unless
        //! the awaiter is gone by then. Never inline (it may be called inside request_stop()).
        template <typename Fn> static void post(std::shared_ptr<StopWaitState> self, Fn fn)
        {
            QThread* thread = self->m_thread;
            auto call = [self = std::move(self), fn = std::move(fn)]() mutable {
                if (self->m_alive)
                    fn();
            };
            if (auto* dispatcher = QAbstractEventDispatcher::instance(thread)) {
                QMetaObject::invokeMethod(dispatcher, std::move(call), Qt::QueuedConnection);
                return;
            }
            // As resumeLater(): without an event loop nothing else could ever run it.
            qWarning("TaskPool: the awaiting thread has no event loop; a cancellable await goes on inline");
            call();
        }

        //! Any thread: resumes the awaiting coroutine (once) from a later turn of its event loop.
        static void resume(const std::shared_ptr<StopWaitState>& self)
        {
            StopWaitState* state = self.get();
            post(self, [state] {
                if (auto handle = std::exchange(state->m_handle, {}))
                    handle.resume();
            });
        }

    private:
        std::atomic<int> m_outcome { Pending };
        QThread* const m_thread; // the awaiting thread
        std::coroutine_handle<> m_handle; // awaiting thread only
        bool m_alive = true; // awaiting thread only
    };

    //! The stop callback that ends an await at once: decides "stopped" and posts the resumption.
    struct ResumeOnStop {
        std::shared_ptr<StopWaitState> state;
        void operator()() noexcept
        {
            if (state->decide(StopWaitState::Stopped))
                StopWaitState::resume(state);
        }
    };

    //! The stop callback that hands work over: decides "stopped" and posts \a inThread to the
    //! awaiting thread (terminate() a process, abort() a reply, where they live).
    struct PostOnStop {
        std::shared_ptr<StopWaitState> state;
        std::function<void()> inThread;
        void operator()() noexcept
        {
            if (state->decide(StopWaitState::Stopped))
                StopWaitState::post(state, inThread);
        }
    };

    //! What every cancellable await holds: its token, the state it shares with the callbacks, and
    //! the stop callback, deregistered before the state is detached when the awaiter goes.
    template <typename OnStop, typename State = StopWaitState> class StopAwaiter {
    public:
        StopAwaiter(const StopAwaiter&) = delete;
        StopAwaiter& operator=(const StopAwaiter&) = delete;

    protected:
        explicit StopAwaiter(std::stop_token token, std::shared_ptr<State> state = nullptr) :
            m_token(std::move(token)), m_state(std::move(state))
        {
        }
        ~StopAwaiter()
        {
            m_stop.reset(); // first: waits for a callback running in another thread
            if (m_state)
                m_state->detach();
        }
        //! In await_suspend(): the coroutine to resume (the state made now, unless given).
        void arm(std::coroutine_handle<> handle)
        {
            if (!m_state)
                m_state = std::make_shared<State>();
            m_state->arm(handle);
        }
        //! Last in await_suspend(): registers \a onStop, which runs at once if stopped meanwhile.
        void listen(OnStop onStop) { m_stop.emplace(m_token, std::move(onStop)); }
        //! Whether the await ended by a stop (also one requested before it began).
        bool stopped() const
        {
            return m_state ? m_state->outcome() == StopWaitState::Stopped : m_token.stop_requested();
        }

        std::stop_token m_token;
        std::shared_ptr<State> m_state;

    private:
        std::optional<std::stop_callback<OnStop>> m_stop;
    };

    //! The awaiter of untilCancelled().
    class UntilCancelledAwaiter : public StopAwaiter<ResumeOnStop> {
    public:
        explicit UntilCancelledAwaiter(std::stop_token token) : StopAwaiter(std::move(token)) { }
        bool await_ready() const noexcept { return m_token.stop_requested(); }
        void await_suspend(std::coroutine_handle<> handle)
        {
            arm(handle);
            listen(ResumeOnStop { m_state });
        }
        void await_resume() const noexcept { }
    };

    //! What untilCancelled() returns: movable; its awaiter is not.
    class [[nodiscard]] UntilCancelled {
    public:
        explicit UntilCancelled(std::stop_token token) : m_token(std::move(token)) { }
        UntilCancelledAwaiter operator co_await() const { return UntilCancelledAwaiter(m_token); }

    private:
        std::stop_token m_token;
    };

    //! The awaiter of sleep(): an alarm raced against the token.
    class SleepAwaiter : public StopAwaiter<ResumeOnStop> {
    public:
        SleepAwaiter(std::chrono::milliseconds duration, std::stop_token token) :
            StopAwaiter(std::move(token)), m_duration(duration)
        {
        }
        //! No suspension when stopped, or for no time at all (zero or negative).
        bool await_ready() noexcept
        {
            m_stoppedFirst = m_token.stop_requested();
            return m_stoppedFirst || m_duration <= std::chrono::milliseconds(0);
        }
        void await_suspend(std::coroutine_handle<> handle)
        {
            arm(handle);
            m_alarm = alarmAfter(m_duration, [state = m_state] {
                if (state->decide(StopWaitState::Completed))
                    StopWaitState::resume(state); // not inside the timer's own signal
            });
            listen(ResumeOnStop { m_state });
        }
        void await_resume() const
        {
            if (m_state ? m_state->outcome() != StopWaitState::Completed : m_stoppedFirst)
                throw CancelledError();
        }

    private:
        std::chrono::milliseconds m_duration;
        bool m_stoppedFirst = false;
        std::unique_ptr<Clock::Alarm> m_alarm; // destroyed with the awaiter, in the awaiting thread
    };

    //! What sleep() returns: movable; its awaiter is not.
    class [[nodiscard]] Sleep {
    public:
        Sleep(std::chrono::milliseconds duration, std::stop_token token) :
            m_duration(duration), m_token(std::move(token))
        {
        }
        SleepAwaiter operator co_await() const { return SleepAwaiter(m_duration, m_token); }

    private:
        std::chrono::milliseconds m_duration;
        std::stop_token m_token;
    };

    //! The shared state of cancellable(awaitable): the operation's outcome, kept by whichever of
    //! the awaiter and the operation lives longer.
    template <typename R> class RaceState : public StopWaitState {
    public:
        using Stored = std::conditional_t<std::is_void_v<R>, bool, R>;
        std::optional<Stored> value; // written before decide(Completed), read after it
        std::exception_ptr error;
    };

    //! Awaits \a task to its end, whoever still waits for it: the operation cancellable() gave up
    //! on is finished here, and its outcome dropped with the state.
    template <typename R> QCoro::Task<void> finishInto(QCoro::Task<R> task, std::shared_ptr<RaceState<R>> state)
    {
        try {
            if constexpr (std::is_void_v<R>) {
                co_await std::move(task);
                state->value.emplace(true);
            } else {
                state->value.emplace(co_await std::move(task));
            }
        } catch (...) {
            state->error = std::current_exception();
        }
        if (state->decide(StopWaitState::Completed))
            StopWaitState::resume(state);
    }

    //! The awaiter of the race: resumes on the operation's end or on stop, whichever comes first.
    template <typename R> class RaceAwaiter : public StopAwaiter<ResumeOnStop, RaceState<R>> {
        using StopAwaiter<ResumeOnStop, RaceState<R>>::m_state;
        using StopAwaiter<ResumeOnStop, RaceState<R>>::m_token;

    public:
        RaceAwaiter(std::shared_ptr<RaceState<R>> state, std::stop_token token) :
            StopAwaiter<ResumeOnStop, RaceState<R>>(std::move(token), std::move(state))
        {
        }
        bool await_ready() const noexcept
        {
            if (m_state->outcome() != StopWaitState::Pending)
                return true;
            if (m_token.stop_requested())
                m_state->decide(StopWaitState::Stopped); // unless it completed just now
            return m_state->outcome() != StopWaitState::Pending;
        }
        void await_suspend(std::coroutine_handle<> handle)
        {
            this->arm(handle); // a completion posted meanwhile resumes it from the event loop
            this->listen(ResumeOnStop { m_state });
        }
        R await_resume()
        {
            if (m_state->outcome() == StopWaitState::Stopped)
                throw CancelledError();
            if (m_state->error)
                std::rethrow_exception(m_state->error);
            if constexpr (!std::is_void_v<R>)
                return std::move(*m_state->value);
        }
    };

    template <typename R> class RaceWait {
    public:
        RaceWait(std::shared_ptr<RaceState<R>> state, std::stop_token token) :
            m_state(std::move(state)), m_token(std::move(token))
        {
        }
        RaceAwaiter<R> operator co_await() { return RaceAwaiter<R>(std::move(m_state), std::move(m_token)); }

    private:
        std::shared_ptr<RaceState<R>> m_state;
        std::stop_token m_token;
    };

    //! The coroutine cancellable(awaitable) returns.
    template <typename R> QCoro::Task<R> race(QCoro::Task<R> task, std::stop_token token)
    {
        auto state = std::make_shared<RaceState<R>>();
        if (token.stop_requested())
            state->decide(StopWaitState::Stopped); // before the operation can complete at once
        // Started before awaiting: it may complete at once. Its Task is dropped: the coroutine
        // runs on by itself and frees itself when it ends.
        static_cast<void>(finishInto<R>(std::move(task), state));
        // Through an awaitable that makes the awaiter: g++ 12 copies an awaiter that co_await gets
        // as a glvalue (from QCoro's await_transform), and this one cannot be copied.
        if constexpr (std::is_void_v<R>)
            co_await RaceWait<R>(std::move(state), std::move(token));
        else
            co_return co_await RaceWait<R>(std::move(state), std::move(token));
    }

    //! Whether cancellable(awaitable) takes \a A (a QProcess and a QNetworkReply have their own).
    template <typename A>
    concept RaceAwaitable = QCoroAwaitable<A> && !std::is_convertible_v<
                                std::decay_t<A>, QProcess*> && !std::is_convertible_v<std::decay_t<A>, QNetworkReply*>;

    //! What cancellable(awaitable) gives; nothing for what it does not take (a soft failure, also for
    //! compilers that substitute the return type before checking the constraint).
    template <typename A> struct RaceResult {
    };
    template <RaceAwaitable A> struct RaceResult<A> {
        using type = typename AwaitResult<A>::type;
    };

    //! The grace of cancellable(QProcess *) that never kills.
    inline constexpr std::chrono::milliseconds neverKill = std::chrono::milliseconds::max();

    //! The awaiter of cancellable(QProcess *).
    class ProcessAwaiter : public StopAwaiter<PostOnStop> {
    public:
        ProcessAwaiter(QProcess* process, std::stop_token token, std::chrono::milliseconds grace) :
            StopAwaiter(std::move(token)), m_process(process), m_grace(grace)
        {
        }
        ~ProcessAwaiter()
        {
            QObject::disconnect(m_stateChanged);
            QObject::disconnect(m_destroyed);
        }

        bool await_ready() const noexcept { return !running(); }
        void await_suspend(std::coroutine_handle<> handle)
        {
            m_started = m_process->state() == QProcess::Running;
            arm(handle);
            m_stateChanged
                = QObject::connect(m_process, &QProcess::stateChanged, m_process, [this](QProcess::ProcessState state) {
                      if (state == QProcess::Running)
                          m_started = true;
                      else if (state == QProcess::NotRunning)
                          ended();
                  });
            // Destroyed by the user meanwhile (~QProcess kills it and waits for it): it has ended.
            m_destroyed = QObject::connect(m_process, &QObject::destroyed, [this] { ended(); });
            listen(PostOnStop { m_state, [this] { stopInThread(); } }); // terminate() in its thread
        }
        //! True when the process ran and ended while awaited; false when it was not running.
        bool await_resume() const
        {
            if (stopped())
                throw CancelledError();
            return m_state && m_started;
        }

    private:
        bool running() const { return m_process && m_process->state() != QProcess::NotRunning; }
        void ended()
        {
            m_state->decide(StopWaitState::Completed); // unless stopped before
            StopWaitState::resume(m_state);
        }
        //! Awaiting thread, the awaiter still there: terminate() now, kill() after the grace.
        void stopInThread()
        {
            if (!running()) {
                StopWaitState::resume(m_state);
                return;
            }
            m_process->terminate();
            if (m_grace == neverKill)
                return;
            m_killAlarm = alarmAfter(m_grace, [this] {
                if (running())
                    m_process->kill();
            });
        }

        QPointer<QProcess> m_process;
        std::chrono::milliseconds m_grace;
        bool m_started = false;
        QMetaObject::Connection m_stateChanged;
        QMetaObject::Connection m_destroyed;
        std::unique_ptr<Clock::Alarm> m_killAlarm;
    };

    //! What cancellable(QProcess *) returns: movable; its awaiter is not.
    class [[nodiscard]] ProcessWait {
    public:
        ProcessWait(QProcess* process, std::stop_token token, std::chrono::milliseconds grace) :
            m_process(process), m_token(std::move(token)), m_grace(grace)
        {
        }
        ProcessAwaiter operator co_await() const { return ProcessAwaiter(m_process, m_token, m_grace); }

    private:
        QProcess* m_process;
        std::stop_token m_token;
        std::chrono::milliseconds m_grace;
    };

} // namespace detail

//! Sleeps \a duration, or less: ends with CancelledError as soon as \a token is stopped.
/*!
 * `co_await TaskPool::sleep(500ms, token);` resumes after \a duration, or from the next turn of
 * the event loop after `request_stop()`, throwing CancelledError; at once, without suspending, when
 * stop was already requested.
 *
 * "After" means never before: \a duration is measured from the `co_await` on
 * `std::chrono::steady_clock` (real time, not an executor's ManualClock), with a precise timer
 * that is checked against that clock when it fires and re-armed for the rest when early. Any
 * duration works: one beyond a QTimer's int of milliseconds is armed in steps, and
 * `milliseconds::max()` sleeps until stopped. A zero or negative duration completes at once,
 * without suspending (as `std::this_thread::sleep_for()`; a stop requested before still wins).
 *
 * The timer lives in the awaiting coroutine's frame and is destroyed with it. The result can be
 * awaited once; it may be stored and moved, and submitted as an awaitable.
 */
inline detail::Sleep sleep(std::chrono::milliseconds duration, std::stop_token token)
{
    return detail::Sleep(duration, std::move(token));
}

//! Awaits \a token itself: completes (without throwing) when stop is requested.
/*!
 * `co_await TaskPool::untilCancelled(token);` resumes from the next turn of the event loop after
 * `request_stop()`, and does not suspend when stop was already requested. A token that can never
 * be stopped (`!token.stop_possible()`) never completes it.
 */
inline detail::UntilCancelled untilCancelled(std::stop_token token)
{
    return detail::UntilCancelled(std::move(token));
}

//! Races any QCoro awaitable against \a token: its result, or CancelledError on stop.
/*!
 * \a awaitable is anything a QCoro::Task can `co_await`: a QCoro::Task, a QFuture or a Future, a
 * `qCoro(object, &Class::signal)`, a `QTimer *`, ... (with the QCoro header that adapts it). It
 * is started at once (a QCoro::Task already is) and awaited in a coroutine of its own.
 *
 * - Completion first: `co_await TaskPool::cancellable(x, token)` gives what `co_await x` would,
 *   rethrowing its exception.
 * - Stop first: the awaiting coroutine resumes with CancelledError at this `co_await`, from the next
 *   turn of its event loop (at once when stop was already requested). The operation is not
 *   interrupted: it is abandoned, kept alive until it ends by itself, and its outcome (value or
 *   exception) is then dropped. It never resumes the coroutine that moved on. An operation that
 *   never ends is kept forever: to end the work itself, use the overloads for QProcess and
 *   QNetworkReply, or cancel what you awaited (a Future, a QFuture) yourself.
 *
 * An awaitable is taken by value (an rvalue is moved in, an lvalue such as a `QFuture` or a
 * `QTimer *` copied); a QCoro::Task must be moved in.
 */
template <typename Awaitable>
requires detail::RaceAwaitable<Awaitable>
[[nodiscard]] QCoro::Task<typename detail::RaceResult<Awaitable>::type> cancellable(Awaitable&& awaitable,
                                                                                    std::stop_token token)
{
    static_assert(!detail::isQCoroTask<std::remove_cvref_t<Awaitable>> || !std::is_lvalue_reference_v<Awaitable>,
                  "cancellable() takes a QCoro::Task over: pass it as an rvalue (std::move(task))");
    using R = typename detail::RaceResult<Awaitable>::type;
    return detail::race<R>(detail::asTask<R>(std::forward<Awaitable>(awaitable)), std::move(token));
}

//! Awaits the end of \a process without blocking; on stop, terminates it, then kills it.
/*!
 * `bool ended = co_await TaskPool::cancellable(&process, token);` resumes once the process has
 * ended (QProcess::NotRunning: finished, crashed or failed to start), as QCoro's
 * `waitForFinished()` but with no time limit. It gives true when the process was running (or
 * starting) and ran; false when it was not running at the `co_await` (never started, or already
 * ended: no suspension) or failed to start. Read `exitStatus()` and `exitCode()` for how it ended.
 *
 * On stop (also when already requested at the `co_await`), the process gets `terminate()`
 * (SIGTERM) from the next turn of the awaiting thread's event loop, then `kill()` after \a grace if
 * it still runs; the coroutine resumes with CancelledError only once the process has really
 * ended, so that it may then destroy the QProcess without blocking. A process that was not running
 * gives CancelledError at once. A stop that comes after the process ended changes nothing.
 *
 * The grace is never cut short: it is measured from `terminate()` on `std::chrono::steady_clock`,
 * as sleep() measures its duration, and any length works. 0 kills right after `terminate()`, from
 * the next turn of the event loop; `milliseconds::max()` never kills (`terminate()` only: the
 * await ends when the process does). A negative grace throws `std::invalid_argument` from this
 * call, before anything is done.
 *
 * The process must live in the awaiting thread. It may be destroyed while awaited (`~QProcess`
 * kills it and waits for it): the await then ends as if the process had ended.
 */
inline detail::ProcessWait cancellable(QProcess* process, std::stop_token token,
                                       std::chrono::milliseconds grace = std::chrono::milliseconds(3000))
{
    if (grace < std::chrono::milliseconds(0))
        throw std::invalid_argument("cancellable(process, token, grace): grace must not be negative "
                                    "(0: kill at once after terminate(), milliseconds::max(): never kill)");
    return detail::ProcessWait(process, std::move(token), grace);
}

} // namespace TaskPool
