// SPDX-License-Identifier: MIT
// The operations tst_model applies to an executor and to the reference model (schedulermodel.h),
// how they print (as C++-like steps, to reproduce a failure by hand), and a builder for scripted
// sequences. No Qt.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace SchedModel {

enum class OpKind {
    Submit,
    Cancel,
    Clear,
    Pause,
    Resume,
    SetMaxWorkers,
    SetKeyLimit,
    SetMaxPerKey,
    SetRateLimit,
    Finish, // the driver opens a running task's gate: it returns, or throws (fail)
    DestroyContext,
    Advance, // virtual time
    Shutdown,
    ArmSlot, // a slot that performs `inner` the first time (or the first `repeat` times) it fires
    Nested, // `inner` performed inside a nested QEventLoop
};

enum class CancelHow { Future, Plain, Thread };
enum class SlotSignal { PendingCount, Started, Cancelled, Finished, RateLimitedTrue };

struct Op {
    OpKind kind = OpKind::Clear;
    int label = 0; // Submit: the new task (a repeated slot adds the firing's index); else the target
    int priority = 0;
    int key = -1; // -1: none; 0: "a"; 1: "b"
    int context = -1; // -1: none
    bool token = false; // the task takes a std::stop_token (and ends once it is stopped)
    bool fromThread = false; // Submit from a std::thread, joined before anything else
    CancelHow how = CancelHow::Future;
    bool fail = false; // Finish: the task throws
    int n = 0; // limits
    long windowMs = 0; // SetRateLimit
    long ms = 0; // Advance
    bool cancelFutures = false; // Shutdown
    SlotSignal signal = SlotSignal::PendingCount; // ArmSlot
    bool nested = false; // ArmSlot: the slot runs its operation inside a nested QEventLoop
    int repeat = 1; // ArmSlot: how many firings perform the operation
    std::vector<Op> inner; // ArmSlot, Nested: one operation
    bool settle = true; // let the event loop settle (and compare) after it
};

struct Sequence {
    std::uint64_t seed = 0;
    int workers = 2;
    std::vector<Op> ops;
};

//! Operations that can make no task start: a few may follow one another in one event-loop turn
//! (`settle = false`); after any other the event loop always settles.
inline bool enablesNoStart(const Op& op)
{
    return op.kind == OpKind::Submit || op.kind == OpKind::Cancel || op.kind == OpKind::Clear
        || op.kind == OpKind::Pause || op.kind == OpKind::ArmSlot;
}

inline std::string keyText(int key)
{
    return key == 0 ? "u\"a\"_s" : "u\"b\"_s";
}

inline const char* slotSignalText(SlotSignal s)
{
    switch (s) {
    case SlotSignal::PendingCount:
        return "&TaskPoolExecutor::pendingCountChanged";
    case SlotSignal::Started:
        return "&TaskPoolExecutor::taskStarted";
    case SlotSignal::Cancelled:
        return "&TaskPoolExecutor::taskCancelled";
    case SlotSignal::Finished:
        return "&TaskPoolExecutor::taskFinished";
    case SlotSignal::RateLimitedTrue:
        return "&TaskPoolExecutor::rateLimitedChanged /* (true) */";
    }
    return "?";
}

//! The operation as a C++-like statement.
inline std::string toCpp(const Op& op)
{
    const std::string t = "t" + std::to_string(op.label);
    switch (op.kind) {
    case OpKind::Submit: {
        std::string options;
        auto add = [&](const std::string& field) { options += (options.empty() ? "" : ", ") + field; };
        if (op.context >= 0)
            add(".context = ctx" + std::to_string(op.context));
        if (op.priority != 0)
            add(".priority = " + std::to_string(op.priority));
        if (op.key >= 0)
            add(".key = " + keyText(op.key));
        std::string call = "pool.submit({" + options + "}, " + (op.token ? "gatedWithStop" : "gated") + ")";
        if (op.fromThread)
            return "std::thread([&] { " + t + " = " + call + "; }).join();";
        return "auto " + t + " = " + call + ";";
    }
    case OpKind::Cancel:
        switch (op.how) {
        case CancelHow::Future:
            return t + ".cancel();";
        case CancelHow::Plain:
            return "QFuture<int>(" + t + ").cancel();   // a plain copy";
        case CancelHow::Thread:
            return "std::thread([&] { " + t + ".cancel(); }).join();";
        }
        return "?";
    case OpKind::Clear:
        return "pool.clear();";
    case OpKind::Pause:
        return "pool.pause();";
    case OpKind::Resume:
        return "pool.resume();";
    case OpKind::SetMaxWorkers:
        return "pool.setMaxWorkers(" + std::to_string(op.n) + ");";
    case OpKind::SetKeyLimit:
        return "pool.setKeyLimit(" + keyText(op.key) + ", " + std::to_string(op.n) + ");";
    case OpKind::SetMaxPerKey:
        return "pool.setMaxPerKey(" + std::to_string(op.n) + ");";
    case OpKind::SetRateLimit:
        return op.n == 0 ? "pool.setRateLimit(0);"
                         : "pool.setRateLimit(" + std::to_string(op.n) + ", " + std::to_string(op.windowMs) + "ms);";
    case OpKind::Finish:
        return op.fail ? "gate(" + t + ").fail();   // its coroutine throws"
                       : "gate(" + t + ").open();   // it returns";
    case OpKind::DestroyContext:
        return "delete ctx" + std::to_string(op.context) + ";";
    case OpKind::Advance:
        return "clock->advance(" + std::to_string(op.ms) + "ms);";
    case OpKind::Shutdown:
        return std::string("pool.shutdown({.wait = false, .cancelFutures = ") + (op.cancelFutures ? "true" : "false")
            + "});";
    case OpKind::ArmSlot: {
        std::string body = op.inner.empty() ? "" : toCpp(op.inner.front());
        if (op.nested)
            body += " runNestedEventLoop();";
        if (op.repeat > 1)
            return std::string("onEach(") + slotSignalText(op.signal) + ", " + std::to_string(op.repeat)
                + " /* firings; t" + std::to_string(op.inner.empty() ? 0 : op.inner.front().label)
                + " + firing index */, [&] { " + body + " });";
        return std::string("onFirst(") + slotSignalText(op.signal) + ", [&] { " + body + " });";
    }
    case OpKind::Nested:
        return "nestedLoop([&] { " + (op.inner.empty() ? std::string() : toCpp(op.inner.front())) + " });";
    }
    return "?";
}

//! The whole sequence, one statement a line; `settle();` where the driver lets the event loop run
//! until quiescent, ends the tasks due to end one at a time, and compares.
inline std::string toCpp(const Sequence& sequence, bool virtualTime)
{
    std::string text;
    text += "TaskPoolExecutor pool(" + std::to_string(sequence.workers) + ");\n";
    if (virtualTime)
        text += "auto clock = std::make_shared<TaskPool::ManualClock>(); pool.setClock(clock);\n";
    text += "QObject *ctx0 = new QObject, *ctx1 = new QObject, *ctx2 = new QObject;\n";
    for (std::size_t i = 0; i < sequence.ops.size(); ++i) {
        const Op& op = sequence.ops[i];
        std::string line = toCpp(op);
        const bool nestedNext = i + 1 < sequence.ops.size() && sequence.ops[i + 1].kind == OpKind::Nested;
        if (op.settle || !enablesNoStart(op) || nestedNext)
            line += std::string(line.size() < 72 ? 72 - line.size() : 1, ' ') + "settle();";
        text += line + "\n";
    }
    text += "settle();\n";
    return text;
}

//! Scripted sequences: `using namespace SchedModel::Build;`.
namespace Build {
    inline Op submit(int label, int priority = 0, int key = -1, bool token = false, int context = -1)
    {
        Op op;
        op.kind = OpKind::Submit;
        op.label = label;
        op.priority = priority;
        op.key = key;
        op.token = token;
        op.context = context;
        return op;
    }
    inline Op submitFromThread(int label, int priority = 0, int key = -1, bool token = false)
    {
        Op op = submit(label, priority, key, token);
        op.fromThread = true;
        return op;
    }
    inline Op cancel(int label, CancelHow how = CancelHow::Future)
    {
        Op op;
        op.kind = OpKind::Cancel;
        op.label = label;
        op.how = how;
        return op;
    }
    inline Op simple(OpKind kind, int n = 0)
    {
        Op op;
        op.kind = kind;
        op.n = n;
        return op;
    }
    inline Op clear()
    {
        return simple(OpKind::Clear);
    }
    inline Op pause()
    {
        return simple(OpKind::Pause);
    }
    inline Op resume()
    {
        return simple(OpKind::Resume);
    }
    inline Op maxWorkers(int n)
    {
        return simple(OpKind::SetMaxWorkers, n);
    }
    inline Op maxPerKey(int n)
    {
        return simple(OpKind::SetMaxPerKey, n);
    }
    inline Op keyLimit(int key, int n)
    {
        Op op = simple(OpKind::SetKeyLimit, n);
        op.key = key;
        return op;
    }
    inline Op rateLimit(int n, long windowMs)
    {
        Op op = simple(OpKind::SetRateLimit, n);
        op.windowMs = windowMs;
        return op;
    }
    inline Op finish(int label, bool fail = false)
    {
        Op op = simple(OpKind::Finish);
        op.label = label;
        op.fail = fail;
        return op;
    }
    inline Op destroyContext(int context)
    {
        Op op = simple(OpKind::DestroyContext);
        op.context = context;
        return op;
    }
    inline Op advance(long ms)
    {
        Op op = simple(OpKind::Advance);
        op.ms = ms;
        return op;
    }
    inline Op shutdown(bool cancelFutures)
    {
        Op op = simple(OpKind::Shutdown);
        op.cancelFutures = cancelFutures;
        return op;
    }
    inline Op onFirst(SlotSignal signal, Op inner, bool nested = false, int repeat = 1)
    {
        Op op = simple(OpKind::ArmSlot);
        op.signal = signal;
        op.nested = nested;
        op.repeat = repeat;
        op.inner.push_back(std::move(inner));
        return op;
    }
    inline Op nestedLoop(Op inner)
    {
        Op op = simple(OpKind::Nested);
        op.inner.push_back(std::move(inner));
        return op;
    }
    //! No settling after it: the next operation follows in the same event-loop turn.
    inline Op noSettle(Op op)
    {
        op.settle = false;
        return op;
    }
} // namespace Build

} // namespace SchedModel
