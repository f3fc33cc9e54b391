// SPDX-License-Identifier: MIT
#pragma once
#ifndef TASKPOOL_INSIDE_PUBLIC_HEADER
#error "Do not include taskpool/detail headers directly; include <taskpool/taskpool.h>"
#endif

#include <taskpool/detail/taskjob.h>
#include <taskpool/errors.h>

#include <QCoro/QCoroAsyncGenerator>
#include <QPointer>

#include <deque>
#include <memory>
#include <ranges>
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
        if (auto* error = std::get_if<std::exception_ptr>(&m_outcome)) {
            if (message)
                *message = describe(*error);
            return Outcome::Failed;
        }
        return std::holds_alternative<T>(m_outcome) ? Outcome::Succeeded : Outcome::Cancelled;
    }
    //! Moves the result out, or rethrows; once the job has settled.
    T take()
    {
        if (auto* value = std::get_if<T>(&m_outcome))
            return std::move(*value);
        if (auto* error = std::get_if<std::exception_ptr>(&m_outcome))
            std::rethrow_exception(*error);
        throw CancelledError();
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
            m_outcome = std::move(error);
            record(Outcome::Failed);
            endSettle();
        }
    }
    template <typename U> void settleResult(U&& value)
    {
        if (beginSettle()) {
            try {
                m_outcome.template emplace<T>(std::forward<U>(value));
                record(Outcome::Succeeded);
            } catch (...) {
                m_outcome = std::current_exception(); // the result's move threw: the item fails
                record(Outcome::Failed);
            }
            endSettle();
        }
    }

private:
    struct Cancelled { };
    std::variant<std::monostate, T, std::exception_ptr, Cancelled> m_outcome;
};

//! fn(args...), or fn(stop, args...), for one map() item: the callable is shared by all items.
template <typename Fn, typename... Args> struct MapCall {
    static constexpr bool takesStop = std::invocable<Fn&, std::stop_token, Args...>;
    std::shared_ptr<Fn> fn;
    std::tuple<Args...> args;
    using Return = std::conditional_t<takesStop, std::invoke_result<Fn&, std::stop_token, Args...>,
                                      std::invoke_result<Fn&, Args...>>::type; // spelled out, as in Call
    using Value = typename ValueOf<Return>::type;
    Return invoke(std::stop_token stop)
    {
        return std::apply(
            [&](Args&... a) -> decltype(auto) {
                if constexpr (takesStop)
                    return std::invoke(*fn, std::move(stop), std::move(a)...);
                else
                    return std::invoke(*fn, std::move(a)...);
            },
            args);
    }
};

//! What map() submitted and still has to yield, and the zipped input it submits from.
template <typename Fn, typename... Views> class MapState {
public:
    using Work = MapCall<Fn, std::ranges::range_value_t<Views>...>;
    using Value = typename Work::Value;
    using Item = TaskJob<ValueJob<Value>, Work>;

    MapState(TaskPoolExecutor* executor, std::shared_ptr<Fn> fn, Views... views) :
        m_executor(executor), m_fn(std::move(fn)), m_views(std::move(views)...)
    {
        // The iterators point into m_views: MapState is created on the heap and never moves.
        std::apply([this](Views&... view) { m_iterators.emplace(std::ranges::begin(view)...); }, m_views);
    }
    MapState(const MapState&) = delete;
    MapState& operator=(const MapState&) = delete;
    ~MapState() { cancelAll(); }

    //! Submits the next zipped item; false once an input ended or the executor is gone or shut down.
    /*!
     * Whatever throws on the way (an input's `*` or `++`, an item's copy, the job's allocation)
     * leaves nothing behind: the item read is dropped without being submitted, and the input counts
     * as ended. The caller (map() or the generator) then cancels what is outstanding and lets the
     * exception through.
     */
    bool submitNext()
    {
        if (m_exhausted || !isOpen(m_executor)) {
            m_exhausted = true;
            return false;
        }
        m_exhausted = true; // until this item is safely submitted: an input that threw has ended
        if (atEnd())
            return false;
        JobRef job = std::apply(
            [this](auto&... it) {
                // The arguments first, then the job owned at once, then the iterators advanced.
                std::tuple<std::ranges::range_value_t<Views>...> args(*it...);
                JobRef item(new Item(m_fn, std::move(args)));
                (++it, ...);
                return item;
            },
            *m_iterators);
        Job* raw = job.get();
        m_outstanding.push_back(std::move(job)); // from here, cancelAll() covers it
        try {
            enqueue(m_executor, raw);
        } catch (const ShutdownError&) {
            m_outstanding.pop_back(); // shut down from another thread just now: never queued
            return false;
        }
        m_exhausted = false;
        return true;
    }

    std::deque<JobRef>& outstanding() { return m_outstanding; }

    //! Cancels what was submitted and not yielded: queued items never start.
    void cancelAll()
    {
        for (auto& job : std::exchange(m_outstanding, {}))
            job->cancel();
    }

private:
    bool atEnd() { return atEnd(std::index_sequence_for<Views...>()); }
    template <size_t... I> bool atEnd(std::index_sequence<I...>)
    {
        return ((std::get<I>(*m_iterators) == std::ranges::end(std::get<I>(m_views))) || ...);
    }
    static bool isOpen(TaskPoolExecutor* executor);
    static void enqueue(TaskPoolExecutor* executor, Job* job);

    QPointer<TaskPoolExecutor> m_executor; // a map does not keep its executor alive
    std::shared_ptr<Fn> m_fn;
    std::tuple<Views...> m_views;
    std::optional<std::tuple<std::ranges::iterator_t<Views>...>> m_iterators;
    std::deque<JobRef> m_outstanding;
    bool m_exhausted = false;
};

//! The generator map() returns: yields results in input order, submitting one more item per
//! result taken when buffered.
template <typename State>
QCoro::AsyncGenerator<typename State::Value> mapResults(std::unique_ptr<State> state, bool buffered)
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
            auto value = static_cast<typename State::Item*>(job.get())->take();
            job = {}; // hold nothing but the value being yielded
            co_yield value;
        }
    } catch (...) {
        state->cancelAll(); // as the finally of Python's map: the rest is not wanted any more
        throw;
    }
}

} // namespace TaskPool::detail
