// SPDX-License-Identifier: MIT
#pragma once

#include <taskpool/taskpool.h>

#include <functional>
#include <map>

namespace TaskPool::detail {

//! An intrusive FIFO of jobs (through Job::prev/next); a job is in one list at most (Job::queue).
struct JobQueue {
    Job* head = nullptr;
    Job* tail = nullptr;

    bool empty() const { return !head; }
    //! Links \a job before \a before (at the tail when null).
    void link(Job* job, Job* before = nullptr)
    {
        job->queue = this;
        job->next = before;
        job->prev = before ? before->prev : tail;
        (job->prev ? job->prev->next : head) = job;
        (before ? before->prev : tail) = job;
    }
    //! Whether \a a arrived before \a b (the arrival counter wraps: live jobs span far less).
    static bool arrivedBefore(const Job* a, const Job* b) { return qint32(a->arrival - b->arrival) < 0; }
    //! Whether \a a starts before \a b: higher priority first, then earlier submission.
    static bool ranksBefore(const Job* a, const Job* b)
    {
        return a->priority > b->priority || (a->priority == b->priority && arrivedBefore(a, b));
    }
    //! Links \a job in start order (the queue is in that order); looked for from the tail, where a
    //! job of the most common priority goes.
    void linkByRank(Job* job)
    {
        Job* after = tail;
        while (after && ranksBefore(job, after))
            after = after->prev;
        link(job, after ? after->next : head);
    }
    //! Links \a job before the first job that arrived after it.
    void linkInOrder(Job* job)
    {
        Job* before = head;
        while (before && arrivedBefore(before, job))
            before = before->next;
        link(job, before);
    }
    void unlink(Job* job)
    {
        (job->prev ? job->prev->next : head) = job->next;
        (job->next ? job->next->prev : tail) = job->prev;
        job->prev = job->next = nullptr;
        job->queue = nullptr;
    }
};

//! The queued jobs by priority: higher first, in submission order within a priority.
/*!
 * Priority 0, the common case, is a list of its own (no map look-up); every other priority has a
 * list in a map while it has jobs. A job's submission order is its arrival (Job::arrival), the
 * order in which submit() returned; a job that comes back (released by its key) goes back to its
 * place.
 */
class PriorityQueue {
public:
    bool empty() const { return !top(); }

    void push(Job* job) { listOf(job->priority).link(job); }
    void pushInOrder(Job* job) { listOf(job->priority).linkInOrder(job); }
    //! Removes \a job, which is in this queue.
    void remove(Job* job)
    {
        JobQueue& list = *job->queue;
        list.unlink(job);
        if (&list != &m_normal && list.empty())
            m_byPriority.erase(job->priority);
    }
    //! The first job of the highest priority, or null.
    Job* top() const
    {
        if (m_byPriority.empty())
            return m_normal.head;
        const auto& [priority, list] = *m_byPriority.begin();
        return priority > 0 || !m_normal.head ? list.head : m_normal.head;
    }
    //! The queued job \a id, or null; the newest jobs are looked at first, so that a job just
    //! submitted is found at once.
    Job* find(quint64 id) const
    {
        auto inList = [id](const JobQueue& list) {
            Job* job = list.tail;
            while (job && job->id != id)
                job = job->prev;
            return job;
        };
        Job* found = inList(m_normal);
        for (auto it = m_byPriority.begin(); !found && it != m_byPriority.end(); ++it)
            found = inList(it->second);
        return found;
    }
    //! Calls \a f with every job, highest priority first, in submission order within one.
    template <typename F> void forEach(F&& f) const
    {
        auto each = [&](const JobQueue& list) {
            for (Job* job = list.head; job; job = job->next)
                f(job);
        };
        for (const auto& [priority, list] : m_byPriority) {
            if (priority < 0)
                break;
            each(list);
        }
        each(m_normal);
        for (const auto& [priority, list] : m_byPriority) {
            if (priority < 0)
                each(list);
        }
    }

private:
    JobQueue& listOf(int priority) { return priority == 0 ? m_normal : m_byPriority[priority]; }

    JobQueue m_normal;
    std::map<int, JobQueue, std::greater<>> m_byPriority;
};

} // namespace TaskPool::detail
