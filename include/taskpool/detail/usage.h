// SPDX-License-Identifier: MIT
#pragma once
#ifndef TASKPOOL_INSIDE_PUBLIC_HEADER
#error "Do not include taskpool/detail headers directly; include <taskpool/taskpool.h>"
#endif

#include <taskpool/detail/map.h>
#include <taskpool/detail/taskjob.h>

#include <concepts>
#include <ranges>
#include <type_traits>

// What submit() and map() check before anything else, so that a wrong call fails with a
// static_assert that says what to do instead of an error deep inside the job machinery.

namespace TaskPool::detail {

//! Something submit(fn, args...) treats as a callable: a function, a pointer to one or to a member,
//! or any object that is not an awaitable (one with overloaded or templated operator()s included,
//! so that a wrong call reaches the static_assert that says what to do).
template <typename F, typename... Args>
concept CallableLike = std::is_function_v<std::remove_pointer_t<std::remove_cvref_t<F>>> || std::
    is_member_pointer_v<std::remove_cvref_t<F>> || std::invocable<F, Args...> || std::invocable<
        F, std::stop_token, Args...> ||(std::is_class_v<std::remove_cvref_t<F>> && !QCoroAwaitable<F>);

//! The QPromise<T>& a promise-taking callable is given.
template <typename F> using PromiseOf = QPromise<typename PromiseOfFirst<typename Signature<F>::args>::type>&;

//! fn([stop, ]QPromise<T>&, args...) can be called with the decay-copied arguments.
template <typename F, typename... Args>
inline constexpr bool promiseCallable = [] {
    if constexpr (!TakesPromise<F>)
        return false;
    else if constexpr (PromiseOfFirst<typename Signature<F>::args>::stop)
        return std::invocable<F, std::stop_token, PromiseOf<F>, Args...>;
    else
        return std::invocable<F, PromiseOf<F>, Args...>;
}();

//! What awaiting the call's result gives: void for a callable that reports through its promise.
template <typename F, typename... Args>
using PromiseCallValue =
    typename ValueOf<typename std::conditional_t<PromiseOfFirst<typename Signature<F>::args>::stop,
                                                 std::invoke_result<F, std::stop_token, PromiseOf<F>, Args...>,
                                                 std::invoke_result<F, PromiseOf<F>, Args...>>::type>::type;

//! fn(args...) or fn(std::stop_token, args...) can be called.
template <typename F, typename... Args>
concept PlainCallable = std::invocable<F, Args...> || std::invocable<F, std::stop_token, Args...>;

//! Each check returns whether the call is right, after a static_assert that says what to do when it is
//! not; the caller computes it as a constant (so the message comes first) and compiles nothing
//! further when it is false (so it comes alone).
template <typename F, typename... Args> constexpr bool checkSubmitCall()
{
    if constexpr (TakesPromise<F>) {
        static_assert(promiseCallable<F, Args...>,
                      "submit(fn, args...): fn takes a QPromise<T>& first, which the pool passes itself. Pass only "
                      "fn's other arguments, in order (they are decay-copied, as std::thread does): "
                      "submit(fn, a, b) for fn(QPromise<T>&, A, B).");
        if constexpr (promiseCallable<F, Args...>) {
            static_assert(std::is_void_v<PromiseCallValue<F, Args...>>,
                          "submit(fn, args...): a callable taking QPromise<T>& reports its results through the promise "
                          "(promise.addResult()): it must return void or QCoro::Task<void>, not a value.");
        }
    } else {
        static_assert(PlainCallable<F, Args...>,
                      "submit(fn, args...): fn cannot be called with these arguments (after a std::stop_token, if it "
                      "takes one first). They are decay-copied (as "
                      "std::thread does) and passed as rvalues: check their number and types; wrap an argument in "
                      "std::ref() or std::cref() to pass a reference.");
    }
    if constexpr (TakesPromise<F>) {
        if constexpr (promiseCallable<F, Args...>)
            return std::is_void_v<PromiseCallValue<F, Args...>>;
        else
            return false;
    } else {
        return PlainCallable<F, Args...>;
    }
}

template <typename A> constexpr bool checkSubmitAwaitable()
{
    // A QCoro::LazyTask cannot move, but an rvalue one gives its coroutine over (see Await).
    constexpr bool takeable
        = std::constructible_from<std::decay_t<A>,
                                  A> || (isLazyTask<std::decay_t<A>> && !std::is_lvalue_reference_v<A>);
    static_assert(takeable,
                  "submit(awaitable): this awaitable cannot be copied; pass it as an rvalue (std::move(task)). A "
                  "QCoro::Task already runs once made: to defer its start, submit the function that makes it "
                  "instead, submit(fn, args...).");
    return takeable;
}

//! \a voidAllowed: the map yields no value but each item's index or outcome (mapUnordered(),
//! mapSettled()), so fn may return nothing.
template <bool voidAllowed, typename F, typename... Ranges> constexpr bool checkMapCall()
{
    static_assert(!TakesPromise<F>,
                  "map(fn, ranges...): map() passes no QPromise; submit(fn, args...) runs a callable that takes "
                  "QPromise<T>& first.");
    constexpr bool copyable
        = (std::constructible_from<std::ranges::range_value_t<Ranges>, std::ranges::range_reference_t<Ranges>> && ...);
    static_assert(copyable,
                  "map(fn, ranges...): each item is copied from its range into its task (as submit() decay-copies "
                  "its arguments), and these items cannot be: map over std::shared_ptr or other copyable handles, "
                  "or submit() each move-only item yourself.");
    if constexpr (!TakesPromise<F> && copyable) {
        static_assert(PlainCallable<F&, std::ranges::range_value_t<Ranges>...>,
                      "map(fn, ranges...): fn must take one item of each range, in order (called as "
                      "fn(std::ranges::range_value_t<Range>&&...)); check the number of ranges and fn's parameters.");
        if constexpr (PlainCallable<F&, std::ranges::range_value_t<Ranges>...>) {
            using Value = typename MapCall<F, std::ranges::range_value_t<Ranges>...>::Value;
            static_assert(voidAllowed || !std::is_void_v<Value>,
                          "map(fn, ranges...): fn returns nothing (void or QCoro::Task<void>), and map() yields fn's "
                          "results: return a value, or submit() each item for its side effects.");
            return voidAllowed || !std::is_void_v<Value>;
        }
    }
    return false;
}

} // namespace TaskPool::detail
