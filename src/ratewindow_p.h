// SPDX-License-Identifier: MIT
#pragma once

#include <taskpool/clock.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <stdexcept>

namespace TaskPool::detail {

//! Whether a task may start now, by the number of recent starts.
/*!
 * The executor asks before each start while a limit is set; the limiter records the starts it
 * grants. A limiter shared with other processes implements the same call.
 */
class RateLimiter {
public:
    struct Admission {
        bool granted;
        Clock::TimePoint retryAt; // when refused: the earliest time a start may be granted
    };
    virtual ~RateLimiter() = default;
    //! Whether it limits at all: the executor asks it nothing otherwise.
    virtual bool isActive() const = 0;
    //! Grants and records one start at \a now, or says when to ask again.
    virtual Admission tryAcquire(Clock::TimePoint now) = 0;
    //! Whether a start at \a now would be refused (for the executor's rateLimited property).
    virtual bool isFull(Clock::TimePoint now) = 0;
    //! Forgets what it recorded (the executor's clock changed).
    virtual void forget() = 0;
};

//! At most limit() starts within any window() of time (a sliding window of start times).
/*!
 * Starts are forgotten when they leave the window, never when the limit changes: lowering the
 * limit and raising it again within one window cannot let more than the higher limit start in it.
 */
class LocalRateWindow final : public RateLimiter {
public:
    //! Beyond a century a window means "at most limit starts, ever" (and time_point arithmetic in
    //! nanoseconds would overflow soon after).
    static constexpr std::chrono::milliseconds century = std::chrono::hours(24 * 365 * 100);

    int limit() const { return m_limit; }
    std::chrono::milliseconds window() const { return m_window; }
    //! 0 starts: no limit. \throws std::invalid_argument for a negative limit, or an empty window
    //! with a limit.
    void setLimit(int starts, std::chrono::milliseconds window)
    {
        if (starts < 0)
            throw std::invalid_argument("the rate limit must not be negative (0: no limit)");
        if (starts > 0 && window <= std::chrono::milliseconds(0))
            throw std::invalid_argument("the rate window must be longer than 0 ms");
        m_limit = starts;
        if (starts > 0)
            m_window = std::min(window, century);
    }

    bool isActive() const override { return m_limit > 0; }
    bool isFull(Clock::TimePoint now) override
    {
        forgetBefore(now);
        return std::ptrdiff_t(m_starts.size()) >= m_limit;
    }
    void forget() override { m_starts.clear(); }

    Admission tryAcquire(Clock::TimePoint now) override
    {
        forgetBefore(now);
        const auto recent = std::ptrdiff_t(m_starts.size());
        if (recent < m_limit) {
            m_starts.push_back(now);
            return { true, now };
        }
        // Held until enough of the recent starts leave the window for one more to fit.
        return { false, m_starts[std::size_t(recent - m_limit)] + m_window };
    }

private:
    void forgetBefore(Clock::TimePoint now)
    {
        while (!m_starts.empty() && now - m_starts.front() >= m_window)
            m_starts.pop_front();
    }

    int m_limit = 0;
    std::chrono::milliseconds m_window { 1000 };
    std::deque<Clock::TimePoint> m_starts; // within the window, oldest first
};

} // namespace TaskPool::detail
