// SPDX-License-Identifier: MIT
#include <taskpool/taskpool.h>

#include <algorithm>
#include <limits>

namespace TaskPool::detail {

QDeadlineTimer deadlineAfter(std::optional<std::chrono::milliseconds> timeout)
{
    using namespace std::chrono;
    if (!timeout)
        return QDeadlineTimer(QDeadlineTimer::Forever);
    if (*timeout <= milliseconds::zero())
        return QDeadlineTimer(); // expired
    // Never converted to nanoseconds (or added to the clock) unless the sum fits: Qt's own
    // conversion overflows for anything above ~292 years, and then lands in the past.
    const QDeadlineTimer now = QDeadlineTimer::current();
    const qint64 room = std::numeric_limits<qint64>::max() - now.deadlineNSecs();
    if (*timeout >= duration_cast<milliseconds>(nanoseconds(room)))
        return QDeadlineTimer(QDeadlineTimer::Forever);
    return QDeadlineTimer::addNSecs(now, duration_cast<nanoseconds>(*timeout).count());
}

SettleSet::SettleSet() = default;

// Members go in reverse order: the timer, then every watcher (their pending callout events are
// dropped with them), so no signal reaches a half-destroyed set.
SettleSet::~SettleSet() = default;

void SettleSet::watch(qsizetype key, const QFuture<void>& future)
{
    const std::size_t slot = m_slots.size();
    auto* watcher = new QFutureWatcher<void>();
    m_slots.push_back(Slot { key, std::unique_ptr<QFutureWatcher<void>>(watcher) });
    // A failed future is reported canceled before it is finished, and a cancelled one may never
    // finish: check() tells them apart.
    QObject::connect(watcher, &QFutureWatcherBase::finished, watcher, [this, slot] { check(slot); });
    QObject::connect(watcher, &QFutureWatcherBase::canceled, watcher, [this, slot] { check(slot); });
    watcher->setFuture(future); // replays the state it already reached, so no settle is missed
}

void SettleSet::setDeadline(QDeadlineTimer deadline)
{
    if (deadline.isForever())
        return;
    if (deadline.hasExpired()) {
        m_timedOut = true;
        return;
    }
    m_timer = std::make_unique<QTimer>();
    m_timer->setSingleShot(true);
    m_timer->setTimerType(Qt::PreciseTimer);
    QObject::connect(m_timer.get(), &QTimer::timeout, m_timer.get(), [this, deadline] {
        if (!deadline.hasExpired())
            return startTimer(deadline); // a deadline beyond one timer interval
        m_timedOut = true;
        wake();
    });
    startTimer(deadline);
}

void SettleSet::startTimer(QDeadlineTimer deadline)
{
    // QTimer counts in int milliseconds: a farther deadline takes several rounds.
    using std::chrono::milliseconds;
    const auto remaining = std::chrono::ceil<milliseconds>(deadline.remainingTimeAsDuration());
    m_timer->start(std::min(remaining, milliseconds(std::numeric_limits<int>::max())));
}

QList<qsizetype> SettleSet::takeSettled()
{
    QList<qsizetype> keys;
    keys.reserve(m_settled.size());
    for (std::size_t slot : std::exchange(m_settled, {})) {
        keys.append(m_slots[slot].key);
        m_slots[slot].watcher.reset();
    }
    return keys;
}

void SettleSet::check(std::size_t slot)
{
    QFutureWatcher<void>* watcher = m_slots[slot].watcher.get();
    if (!isSettled(watcher->future()))
        return;
    watcher->disconnect(); // report it once
    m_settled.append(slot);
    wake();
}

void SettleSet::wake()
{
    // Never resumed from inside the signal: the coroutine may delete the watcher that emits it.
    if (m_waiting)
        resumeLater(std::exchange(m_waiting, {}));
}

} // namespace TaskPool::detail
