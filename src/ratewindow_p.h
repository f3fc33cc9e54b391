// SPDX-License-Identifier: MIT
#pragma once

#include <taskpool/clock.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
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
 * A start is refused while the limit()-th most recent start is within the window, so only the
 * most recent starts matter: as many as the highest limit set so far are kept, whatever their
 * age. Changing the limit or the window therefore never forgets a start that counts: lowering the
 * limit and raising it again, or widening the window, lets no extra start through.
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
        m_kept = std::max(m_kept, std::size_t(starts));
        if (starts > 0)
            m_window = std::min(window, century);
    }

    bool isActive() const override { return m_limit > 0; }
    bool isFull(Clock::TimePoint now) override { return bool(heldUntil(now)); }
    void forget() override { m_starts.clear(); }

    Admission tryAcquire(Clock::TimePoint now) override
    {
        if (const auto until = heldUntil(now))
            return { false, *until };
        m_starts.push_back(now);
        if (m_starts.size() > m_kept)
            m_starts.pop_front();
        return { true, now };
    }

private:
    //! When the limit()-th most recent start leaves the window, if it is within it at \a now.
    std::optional<Clock::TimePoint> heldUntil(Clock::TimePoint now) const
    {
        const std::size_t limit = std::size_t(m_limit);
        if (limit == 0 || m_starts.size() < limit)
            return std::nullopt;
        const Clock::TimePoint leaves = m_starts[m_starts.size() - limit] + m_window;
        return leaves > now ? std::optional(leaves) : std::nullopt;
    }

    int m_limit = 0;
    std::chrono::milliseconds m_window { 1000 };
    std::size_t m_kept = 0; // the highest limit so far
    std::deque<Clock::TimePoint> m_starts; // the most recent starts, oldest first
};

} // namespace TaskPool::detail
