// SPDX-License-Identifier: MIT
#pragma once

#include <taskpool/clock.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>

namespace TaskPool::detail {

//! Times at which something is due (a running task's timeout), on one alarm of a Clock.
template <typename T> class Deadlines {
public:
    using Map = std::multimap<Clock::TimePoint, T>;
    using Entry = typename Map::iterator;

    explicit Deadlines(std::function<void()> onDue) : m_onDue(std::move(onDue)) { }

    bool empty() const { return m_due.empty(); }
    //! Adds \a value, due at \a at; the alarm is made on first use and set for the earliest.
    Entry add(Clock& clock, Clock::TimePoint at, T value)
    {
        const Entry entry = m_due.emplace(at, std::move(value));
        if (entry == m_due.begin()) {
            if (!m_alarm)
                m_alarm = clock.makeAlarm(m_onDue);
            m_alarm->start(at);
        }
        return entry;
    }
    //! Removes an entry (the alarm fires once for nothing at worst).
    void remove(Entry entry) { m_due.erase(entry); }
    //! Removes and returns the earliest entry due at \a now.
    std::optional<T> takeDue(Clock::TimePoint now)
    {
        if (m_due.empty() || m_due.begin()->first > now)
            return std::nullopt;
        T value = std::move(m_due.begin()->second);
        m_due.erase(m_due.begin());
        return value;
    }
    //! Sets the alarm for the earliest entry left.
    void rearm()
    {
        if (!m_due.empty() && m_alarm)
            m_alarm->start(m_due.begin()->first);
    }
    //! Forgets the alarm (the clock changes); only while empty.
    void resetAlarm() { m_alarm.reset(); }

private:
    Map m_due;
    std::unique_ptr<Clock::Alarm> m_alarm;
    std::function<void()> m_onDue;
};

} // namespace TaskPool::detail
