// SPDX-License-Identifier: MIT
#pragma once

#include <QHash>
#include <QString>

#include <limits>
#include <stdexcept>

namespace TaskPool::detail {

//! How many tasks of one key may run at once (SubmitOptions::key).
/*!
 * The executor asks before it starts a keyed task and tells when one ends; what it keeps itself is
 * the tasks held back while their key is full. The local gate counts in this process; a gate
 * shared with other processes implements the same calls.
 */
class KeyGate {
public:
    virtual ~KeyGate() = default;
    //! How many more tasks of \a key may start now (0 or less: none).
    virtual int room(const QString& key) const = 0;
    //! A task of \a key starts; called only when room(key) > 0.
    virtual void acquire(const QString& key) = 0;
    //! A task of \a key ended.
    virtual void release(const QString& key) = 0;
};

//! The key gate of one executor: a running count per key, a limit per key and a default.
class LocalKeyGate final : public KeyGate {
public:
    int room(const QString& key) const override { return limit(key) - m_running.value(key); }
    void acquire(const QString& key) override { ++m_running[key]; }
    void release(const QString& key) override
    {
        const auto it = m_running.find(key);
        if (--*it == 0)
            m_running.erase(it);
    }

    int limit(const QString& key) const { return m_limits.value(key, m_default); }
    int defaultLimit() const { return m_default; }
    //! \throws std::invalid_argument when \a limit <= 0.
    void setLimit(const QString& key, int limit)
    {
        if (limit <= 0)
            throw std::invalid_argument("a key limit must be greater than 0");
        m_limits.insert(key, limit);
    }
    //! \throws std::invalid_argument when \a limit <= 0.
    void setDefaultLimit(int limit)
    {
        if (limit <= 0)
            throw std::invalid_argument("maxPerKey must be greater than 0");
        m_default = limit;
    }
    int running(const QString& key) const { return m_running.value(key); }

private:
    QHash<QString, int> m_running; // keys with running tasks
    QHash<QString, int> m_limits;
    int m_default = std::numeric_limits<int>::max();
};

} // namespace TaskPool::detail
