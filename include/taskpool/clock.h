// SPDX-License-Identifier: MIT
//! \file clock.h
//! The time source of an executor's time-based policies, and a manual one for tests.
#pragma once

#include <taskpool/taskpool_export.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

namespace TaskPool {

//! The time source of an executor's time-based policies: the rate window and timeouts.
/*!
 * The default is systemClock(): `std::chrono::steady_clock` with Qt timers. A test gives an
 * executor a ManualClock (TaskPoolExecutor::setClock()) and moves time on itself, so that rate
 * windows and timeouts are checked exactly, in virtual time, whatever the machine's load.
 */
class TASKPOOL_EXPORT Clock {
public:
    //! A point in the clock's time.
    using TimePoint = std::chrono::steady_clock::time_point;

    //! Calls its function, in the thread that made it, once the clock reaches the time it was
    //! started for. Starting it again replaces that time; destroying it stops it.
    class TASKPOOL_EXPORT Alarm {
    public:
        virtual ~Alarm();
        //! Fires once the clock reaches \a at (at once, from the event loop, when it has).
        virtual void start(TimePoint at) = 0;
        //! Fires no more, until started again.
        virtual void stop() = 0;
    };

    virtual ~Clock();
    //! The current time.
    virtual TimePoint now() const = 0;
    //! A stopped alarm that calls \a fire.
    virtual std::unique_ptr<Alarm> makeAlarm(std::function<void()> fire) = 0;
};

//! The real clock: `std::chrono::steady_clock`, with alarms on precise QTimers.
TASKPOOL_EXPORT std::shared_ptr<Clock> systemClock();

//! A clock that moves only when told: virtual time for tests.
/*!
 * advance() fires every alarm that falls due, in time order, each with now() reading its own
 * time; alarms started by a firing alarm fire within the same advance() when they fall within
 * it. Alarms fire inline, in the thread calling advance(), which must be the thread that made
 * them (the executor's). Work an alarm releases is resumed from the event loop, as always.
 */
class TASKPOOL_EXPORT ManualClock : public Clock {
public:
    //! A clock reading \a start until advanced.
    explicit ManualClock(TimePoint start = TimePoint(std::chrono::hours(1)));
    ~ManualClock() override;
    //! The time, as advanced so far.
    TimePoint now() const override;
    //! An alarm fired by advance().
    std::unique_ptr<Alarm> makeAlarm(std::function<void()> fire) override;
    //! Moves the time on by \a by (not negative), firing the alarms that fall due.
    void advance(std::chrono::nanoseconds by);
    //! The earliest time an alarm is started for, if any.
    std::optional<TimePoint> nextAlarm() const;

private:
    friend class ManualAlarm;
    struct State;
    std::shared_ptr<State> m_state;
};

} // namespace TaskPool
