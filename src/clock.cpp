// SPDX-License-Identifier: MIT
#include <taskpool/clock.h>

#include <QTimer>

#include <algorithm>
#include <limits>
#include <map>

namespace TaskPool {

Clock::~Clock() = default;
Clock::Alarm::~Alarm() = default;

namespace {

    //! A precise single-shot QTimer. QTimer takes at most an int of milliseconds: a later time is
    //! reached in steps, each firing checking the clock again.
    class TimerAlarm final : public Clock::Alarm {
    public:
        explicit TimerAlarm(std::function<void()> fire) : m_fire(std::move(fire))
        {
            m_timer.setSingleShot(true);
            m_timer.setTimerType(Qt::PreciseTimer);
            QObject::connect(&m_timer, &QTimer::timeout, [this] {
                if (std::chrono::steady_clock::now() < m_at)
                    return arm();
                const auto fire = m_fire; // it may destroy this alarm
                fire();
            });
        }
        void start(Clock::TimePoint at) override
        {
            m_at = at;
            arm();
        }
        void stop() override { m_timer.stop(); }

    private:
        void arm()
        {
            const auto wait = std::chrono::ceil<std::chrono::milliseconds>(m_at - std::chrono::steady_clock::now());
            m_timer.start(std::clamp(wait, std::chrono::milliseconds(0),
                                     std::chrono::milliseconds(std::numeric_limits<int>::max())));
        }
        QTimer m_timer;
        Clock::TimePoint m_at;
        std::function<void()> m_fire;
    };

    class SystemClock final : public Clock {
    public:
        TimePoint now() const override { return std::chrono::steady_clock::now(); }
        std::unique_ptr<Alarm> makeAlarm(std::function<void()> fire) override
        {
            return std::make_unique<TimerAlarm>(std::move(fire));
        }
    };

} // namespace

std::shared_ptr<Clock> systemClock()
{
    static const auto clock = std::make_shared<SystemClock>();
    return clock;
}

// ---- virtual time ---------------------------------------------------------------------------------

class ManualAlarm;

struct ManualClock::State {
    TimePoint now;
    std::multimap<TimePoint, ManualAlarm*> due; // started alarms, earliest first
};

class ManualAlarm final : public Clock::Alarm {
public:
    ManualAlarm(std::shared_ptr<ManualClock::State> state, std::function<void()> fire) :
        m_state(std::move(state)), fire(std::move(fire))
    {
    }
    ~ManualAlarm() override { stop(); }
    void start(Clock::TimePoint at) override
    {
        stop();
        m_entry = m_state->due.emplace(at, this);
    }
    void stop() override
    {
        if (m_entry)
            m_state->due.erase(*std::exchange(m_entry, std::nullopt));
    }
    //! Taken off the clock's list, about to fire.
    void taken() { m_entry.reset(); }

private:
    std::shared_ptr<ManualClock::State> m_state;
    std::optional<std::multimap<Clock::TimePoint, ManualAlarm*>::iterator> m_entry;

public:
    std::function<void()> fire;
};

ManualClock::ManualClock(TimePoint start) : m_state(std::make_shared<State>(State { start, {} })) { }

ManualClock::~ManualClock() = default;

Clock::TimePoint ManualClock::now() const
{
    return m_state->now;
}

std::unique_ptr<Clock::Alarm> ManualClock::makeAlarm(std::function<void()> fire)
{
    return std::make_unique<ManualAlarm>(m_state, std::move(fire));
}

void ManualClock::advance(std::chrono::nanoseconds by)
{
    if (by.count() < 0)
        throw std::invalid_argument("ManualClock::advance(): time does not go back");
    const auto state = m_state; // an alarm's function may destroy this clock
    // Saturated: time never wraps around.
    const TimePoint target = by >= TimePoint::max() - state->now ? TimePoint::max() : state->now + by;
    while (!state->due.empty() && state->due.begin()->first <= target) {
        const auto first = state->due.begin();
        state->now = std::max(state->now, first->first);
        ManualAlarm* alarm = first->second;
        state->due.erase(first);
        alarm->taken();
        const auto fire = alarm->fire; // it may start, stop or destroy alarms, this one included
        fire();
    }
    state->now = std::max(state->now, target); // an alarm's function may have advanced it further
}

std::optional<Clock::TimePoint> ManualClock::nextAlarm() const
{
    if (m_state->due.empty())
        return std::nullopt;
    return m_state->due.begin()->first;
}

} // namespace TaskPool
