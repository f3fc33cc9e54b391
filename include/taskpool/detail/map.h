// SPDX-License-Identifier: MIT
#pragma once
#ifndef TASKPOOL_INSIDE_PUBLIC_HEADER
#error "Do not include taskpool/detail headers directly; include <taskpool/taskpool.h>"
#endif

#include <taskpool/detail/taskjob.h>
#include <taskpool/errors.h>
#include <taskpool/result.h>

#include <QCoro/QCoroAsyncGenerator>
#include <QPointer>

#include <coroutine>
#include <deque>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <variant>

namespace TaskPool {
class TaskPoolExecutor;
}

namespace TaskPool::detail {

//! A range given to map(): an lvalue referred to, an rvalue moved in. Unlike std::views::all, it
//! needs no std::ranges view machinery, which clang 14 cannot compile from libstdc++ 12: map() over
//! containers then works with clang 14 too.
template <typename R> class HeldRange {
    static constexpr bool referred = std::is_lvalue_reference_v<R>;

public:
    explicit HeldRange(R&& range) requires referred : m_range(&range) { }
    explicit HeldRange(R&& range) requires(!referred) : m_range(std::move(range)) { }
    auto begin() { return std::ranges::begin(get()); }
    auto end() { return std::ranges::end(get()); }

private:
    auto& get()
    {
        if constexpr (referred)
            return *m_range;
        else
            return m_range;
    }
    std::conditional_t<referred, std::remove_reference_t<R>*, std::remove_cvref_t<R>> m_range;
};

//! A job whose outcome stays in the job: a map() item, which needs no QFuture of its own.
template <typename T> class ValueJob : public Job {
public:
    using value_type = T;
    bool isCancelRequested() const noexcept override { return false; }
    void fail(std::exception_ptr error) override { settleFailed(std::move(error)); }
    Outcome outcome(QString* message) const override
    {
        if (auto* error = std::get_if<Failed>(&m_outcome)) {
            if (message)
                *message = describe(*error);
            return Outcome::Failed;
        }
        return m_outcome.index() == Succeeded ? Outcome::Succeeded : Outcome::Cancelled;
    }
    //! Moves the result out, or rethrows; once the job has settled.
    T take()
    {
        if (auto* error = std::get_if<Failed>(&m_outcome))
            std::rethrow_exception(*error);
        if (m_outcome.index() != Succeeded)
            throw CancelledError();
        if constexpr (!std::is_void_v<T>)
            return std::move(*std::get_if<Succeeded>(&m_outcome));
    }
    //! Moves the outcome out, an exception or a cancellation included; once the job has settled.
    Result<T> takeResult()
    {
        if (auto* error = std::get_if<Failed>(&m_outcome))
            return Result<T>::fromError(*error);
        if (m_outcome.index() != Succeeded)
            return Result<T>::fromError(std::make_exception_ptr(CancelledError()));
        if constexpr (std::is_void_v<T>)
            return Result<T>();
        else
            return Result<T>(std::move(*std::get_if<Succeeded>(&m_outcome)));
    }

protected:
    void started() { }
    void markCancelled() override
    {
        m_outcome.template emplace<Cancelled>();
        record(Outcome::Cancelled);
    }
    void settleFailed(std::exception_ptr error)
    {
        if (beginSettle()) {
            m_outcome.template emplace<Failed>(std::move(error));
            record(Outcome::Failed);
            endSettle();
        }
    }
    template <typename... U> void settleResult(U&&... value)
    {
        if (beginSettle()) {
            try {
                m_outcome.template emplace<Succeeded>(std::forward<U>(value)...);
                record(Outcome::Succeeded);
            } catch (...) {
                m_outcome.template emplace<Failed>(std::current_exception()); // the result's move threw
                record(Outcome::Failed);
            }
            endSettle();
        }
    }

private:
    struct Done { }; // the value of a void item
    enum : std::size_t { Open, Succeeded, Failed, Cancelled };
    std::variant<std::monostate, std::conditional_t<std::is_void_v<T>, Done, T>, std::exception_ptr, std::monostate>
        m_outcome;
};

//! fn(args...), or fn(stop, args...), for one map() item: the callable is shared by all items.
template <typename Fn, typename... Args> struct MapCall {
    static constexpr bool takesStop = std::invocable<Fn&, std::stop_token, Args...>;
    std::shared_ptr<Fn> fn;
    std::tuple<Args...> args;
    using Return = typename std::conditional_t<takesStop, std::invoke_result<Fn&, std::stop_token, Args...>,
                                               std::invoke_result<Fn&, Args...>>::type; // spelled out, as in Call
    using Value = typename ValueOf<Return>::type;
    template <typename... Stop> Return invoke(Stop... stop)
    {
        return std::apply(
            [&](Args&... a) -> decltype(auto) { return std::invoke(*fn, std::move(stop)..., std::move(a)...); }, args);
    }
};

//! What map() may do to its executor (defined by executor.h, whose private members it uses).
struct MapAccess {
    //! The executor exists and is not shut down.
    static bool isOpen(TaskPoolExecutor* executor);
    //! Queues \a job at \a priority (with a stop token when \a takesStop); throws ShutdownError
    //! when the executor was shut down from another thread.
    static void enqueue(TaskPoolExecutor* executor, Job* job, int priority, bool takesStop);
};

//! The outstanding items of map(): in input order, the order they are yielded in.
template <typename Value> class OrderedItems {
public:
    template <typename Work> using Item = TaskJob<ValueJob<Value>, Work>;

    OrderedItems() = default;
    OrderedItems(const OrderedItems&) = delete;
    OrderedItems& operator=(const OrderedItems&) = delete;

    void keep(JobRef job, qsizetype) { m_outstanding.push_back(std::move(job)); }
    void unkeep() { m_outstanding.pop_back(); }
    std::deque<JobRef>& outstanding() { return m_outstanding; }
    //! Cancels what was submitted and not yielded: queued items never start.
    void cancelAll()
    {
        for (auto& job : std::exchange(m_outstanding, {}))
            job->cancel();
    }

private:
    std::deque<JobRef> m_outstanding;
};

class UnorderedItems;

//! Where an item of mapUnordered() is in its map's lists: running (or queued), then settled.
struct MapLink {
    Job* job = nullptr;
    UnorderedItems* items = nullptr; // null once the map let go of the item
    MapLink* prev = nullptr;
    MapLink* next = nullptr;
    qsizetype index = 0; // the item's position in the input
};

//! The outstanding items of mapUnordered(): those running or queued, and those that settled and
//! were not yielded yet, in the order they settled. Two intrusive lists, so that an item moves from
//! one to the other when it settles without allocating anything (it settles inside the executor).
/*!
 * Items run and settle in the executor's thread, which is also the one iterating the map (the
 * generator is for the executor's thread, as map() is), so the lists need no lock. Each listed
 * item holds a reference to its job.
 */
class UnorderedItems {
public:
    UnorderedItems() = default;
    UnorderedItems(const UnorderedItems&) = delete;
    UnorderedItems& operator=(const UnorderedItems&) = delete;
    ~UnorderedItems()
    {
        m_waiting = {}; // a generator destroyed while suspended in next() is not resumed
        cancelAll();
    }

    //! Lists a submitted item as running; it holds a reference to its job from now on.
    void add(MapLink* link, qsizetype index)
    {
        link->job->ref();
        link->items = this;
        link->index = index;
        append(m_running, link);
    }
    //! Unlists the item added last (its executor was shut down before it could be queued).
    void unkeep() { release(unlink(m_running, m_running.tail)); }
    //! Called when an item settles: it moves to the settled list, and a waiting generator resumes.
    void settled(MapLink* link)
    {
        append(m_settled, unlink(m_running, link));
        if (m_waiting)
            resumeLater(std::exchange(m_waiting, {})); // never inside the settle
    }

    bool isEmpty() const { return !m_running.head && !m_settled.head; }
    //! The item that settled first among those not taken yet; null when none has.
    JobRef takeSettled()
    {
        if (!m_settled.head)
            return {};
        MapLink* link = unlink(m_settled, m_settled.head);
        link->items = nullptr;
        return JobRef(link->job); // adopts the list's reference
    }
    //! Cancels every item not yielded yet (queued ones never start) and lets go of them all.
    void cancelAll()
    {
        m_waiting = {};
        while (MapLink* link = m_running.head) {
            if (!link->job->cancel() && m_running.head == link)
                release(unlink(m_running, link)); // settling elsewhere: it reports to no one now
        }
        while (m_settled.head)
            release(unlink(m_settled, m_settled.head));
    }

    //! Suspends until an item has settled (at once when one has).
    auto next()
    {
        struct Awaiter {
            UnorderedItems& items;
            bool await_ready() const noexcept { return items.m_settled.head != nullptr; }
            void await_suspend(std::coroutine_handle<> handle) noexcept { items.m_waiting = handle; }
            void await_resume() const noexcept { }
        };
        return Awaiter { *this };
    }

private:
    struct List {
        MapLink* head = nullptr;
        MapLink* tail = nullptr;
    };
    static void append(List& list, MapLink* link)
    {
        link->prev = list.tail;
        link->next = nullptr;
        (list.tail ? list.tail->next : list.head) = link;
        list.tail = link;
    }
    static MapLink* unlink(List& list, MapLink* link)
    {
        (link->prev ? link->prev->next : list.head) = link->next;
        (link->next ? link->next->prev : list.tail) = link->prev;
        link->prev = link->next = nullptr;
        return link;
    }
    static void release(MapLink* link)
    {
        link->items = nullptr;
        link->job->deref();
    }

    List m_running;
    List m_settled;
    std::coroutine_handle<> m_waiting;
};

//! A mapUnordered() item's job: tells its map when it settles.
template <typename T> class IndexedValueJob : public ValueJob<T>, public MapLink {
protected:
    IndexedValueJob() { job = this; }
    void finishStore() override
    {
        if (items)
            items->settled(this);
    }
};

//! The outstanding items of mapUnordered(), typed.
template <typename Value> class UnorderedItemsOf : public UnorderedItems {
public:
    template <typename Work> using Item = TaskJob<IndexedValueJob<Value>, Work>;
    void keep(const JobRef& job, qsizetype index) { add(static_cast<IndexedValueJob<Value>*>(job.get()), index); }
};

//! The zipped input of a map, what it submitted from it and still has to yield (kept by a Store:
//! OrderedItems or UnorderedItemsOf), and the executor it submits to.
template <template <typename> class Store, typename Fn, typename... Views>
class MapState : public Store<typename MapCall<Fn, std::ranges::range_value_t<Views>...>::Value> {
public:
    using Work = MapCall<Fn, std::ranges::range_value_t<Views>...>;
    using Value = typename Work::Value;
    using Item = typename Store<Value>::template Item<Work>;

    MapState(TaskPoolExecutor* executor, int priority, std::shared_ptr<Fn> fn, Views... views) :
        m_executor(executor), m_priority(priority), m_fn(std::move(fn)), m_views(std::move(views)...)
    {
        // The iterators point into m_views: MapState is created on the heap and never moves.
        std::apply([this](Views&... view) { m_iterators.emplace(std::ranges::begin(view)...); }, m_views);
    }
    MapState(const MapState&) = delete;
    MapState& operator=(const MapState&) = delete;
    ~MapState() { this->cancelAll(); } // what was not yielded, before the input goes

    //! Submits the next zipped item; false once an input ended or the executor is gone or shut down.
    /*!
     * Whatever throws on the way (an input's `*` or `++`, an item's copy, the job's allocation)
     * leaves nothing behind: the item read is dropped without being submitted, and the input counts
     * as ended. The caller (map() or the generator) then cancels what is outstanding and lets the
     * exception through.
     *
     * When the executor is gone or shut down before an input ended, the map is cut short
     * (isCutShort()): an item read meanwhile (the input's own code may shut the executor down or
     * destroy it, or another thread shut it down) is dropped, never queued. An input at its end
     * anyway is a normal end, whatever became of the executor.
     */
    bool submitNext()
    {
        if (m_exhausted)
            return false;
        m_exhausted = true; // until this item is safely submitted: an input that threw has ended
        if (atEnd())
            return false;
        if (!MapAccess::isOpen(m_executor))
            return cutShort();
        JobRef job = std::apply(
            [this](auto&... it) {
                // The arguments first, then the job owned at once, then the iterators advanced.
                std::tuple<std::ranges::range_value_t<Views>...> args(*it...);
                JobRef item(new Item(m_fn, std::move(args)));
                (++it, ...);
                return item;
            },
            *m_iterators);
        if (!MapAccess::isOpen(m_executor))
            return cutShort(); // gone or shut down while the item was read: dropped, never queued
        Job* raw = job.get();
        this->keep(std::move(job), m_submitted); // from here, cancelAll() covers it
        try {
            MapAccess::enqueue(m_executor, raw, m_priority, Work::takesStop);
        } catch (const ShutdownError&) {
            this->unkeep(); // shut down from another thread just now: never queued
            return cutShort();
        }
        ++m_submitted;
        m_exhausted = false;
        return true;
    }

    //! Whether the executor went away (gone or shut down) before the input was exhausted: once
    //! the items submitted before are yielded, the map throws ShutdownError.
    bool isCutShort() const { return m_cutShort; }

private:
    bool cutShort()
    {
        m_cutShort = true;
        return false;
    }

    bool atEnd() { return atEnd(std::index_sequence_for<Views...>()); }
    template <size_t... I> bool atEnd(std::index_sequence<I...>)
    {
        return ((std::get<I>(*m_iterators) == std::ranges::end(std::get<I>(m_views))) || ...);
    }

    QPointer<TaskPoolExecutor> m_executor; // a map does not keep its executor alive
    int m_priority;
    std::shared_ptr<Fn> m_fn;
    std::tuple<Views...> m_views;
    std::optional<std::tuple<std::ranges::iterator_t<Views>...>> m_iterators;
    qsizetype m_submitted = 0;
    bool m_exhausted = false;
    bool m_cutShort = false;
};

//! Validates a map call, makes its state and submits its first items (all of them without
//! \a bufferSize); what the input throws meanwhile comes from here, every submitted item cancelled.
template <template <typename> class Store, typename Fn, typename... Ranges>
auto startMap(TaskPoolExecutor* executor, std::optional<int> bufferSize, int priority, Fn&& fn, Ranges&&... ranges)
{
    if (bufferSize && *bufferSize < 1)
        throw std::invalid_argument("bufferSize must be greater than 0");
    if (!MapAccess::isOpen(executor))
        throw ShutdownError();
    using State = MapState<Store, std::decay_t<Fn>, HeldRange<Ranges>...>;
    auto state = std::make_unique<State>(executor, priority, std::make_shared<std::decay_t<Fn>>(std::forward<Fn>(fn)),
                                         HeldRange<Ranges>(std::forward<Ranges>(ranges))...);
    for (int n = 0; !bufferSize || n < *bufferSize; ++n) {
        if (!state->submitNext())
            break;
    }
    return state;
}

//! What a map yields for an item: its value, or its Result (the settled variants).
template <typename Value, bool settled> using MapElement = std::conditional_t<settled, Result<Value>, Value>;

//! The generator map() and mapSettled() return: yields results in input order, submitting one more
//! item per result taken when buffered; cut short by the executor going away, it throws
//! ShutdownError after the items submitted before.
template <bool settled, typename State>
QCoro::AsyncGenerator<MapElement<typename State::Value, settled>> mapResults(std::unique_ptr<State> state,
                                                                             bool buffered)
{
    auto& outstanding = state->outstanding();
    try {
        while (!outstanding.empty()) {
            // The next item first, while this one is still outstanding: if the input throws, the
            // catch below cancels it with the others.
            if (buffered)
                state->submitNext();
            JobRef job = std::move(outstanding.front());
            outstanding.pop_front();
            if (!job->isSettled())
                co_await JobAwaiter(job);
            auto* item = static_cast<typename State::Item*>(job.get());
            if constexpr (settled) {
                auto value = item->takeResult();
                job = {}; // hold nothing but the value being yielded
                co_yield value;
            } else {
                auto value = item->take();
                job = {};
                co_yield value;
            }
        }
    } catch (...) {
        state->cancelAll(); // as the finally of Python's map: the rest is not wanted any more
        throw;
    }
    if (state->isCutShort())
        throw ShutdownError(); // not an item's outcome: the settled variants throw it too
}

//! The generator mapUnordered() and mapUnorderedSettled() return: yields each result with its
//! index as soon as it settled, submitting one more item per result taken when buffered; cut short
//! by the executor going away, it throws ShutdownError after the items submitted before.
template <bool settled, typename State>
QCoro::AsyncGenerator<Indexed<MapElement<typename State::Value, settled>>>
mapUnorderedResults(std::unique_ptr<State> state, bool buffered)
{
    using Value = typename State::Value;
    try {
        while (!state->isEmpty()) {
            co_await state->next();
            // The next item first, while the settled one is still listed: if the input throws, the
            // catch below lets go of it with the others.
            if (buffered)
                state->submitNext();
            JobRef job = state->takeSettled();
            auto* item = static_cast<typename State::Item*>(job.get());
            const qsizetype index = item->index;
            if constexpr (settled) {
                Indexed<Result<Value>> value { index, item->takeResult() };
                job = {}; // hold nothing but the value being yielded
                co_yield value;
            } else if constexpr (std::is_void_v<Value>) {
                item->take(); // rethrows
                job = {};
                co_yield Indexed<void> { index };
            } else {
                Indexed<Value> value { index, item->take() };
                job = {};
                co_yield value;
            }
        }
    } catch (...) {
        state->cancelAll();
        throw;
    }
    if (state->isCutShort())
        throw ShutdownError(); // as for map()
}

} // namespace TaskPool::detail
