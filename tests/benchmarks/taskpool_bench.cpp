// SPDX-License-Identifier: MIT
// TaskPool benchmarks: the same workloads, in one process and one run, for
//  - TaskPoolExecutor,
//  - a bare QCoro baseline (N QCoro::Task created and awaited, no bound),
//  - a hand-written minimal pool (K worker coroutines over a std::deque of jobs, a counter as the
//    semaphore, one QPromise per job, results awaited through QCoro's co_await QFuture),
//  - QtConcurrent::run on a QThreadPool of maxWorkers threads.
// Times are medians of wall-clock runs, from the pool's construction to the last result read.
// `--callgrind <workload>` runs one workload once (after an uncounted warm-up) between
// CALLGRIND_TOGGLE_COLLECT markers, for tests/benchmarks/callgrind.sh.
#include <taskpool/taskpool.h>

#include <QAbstractEventDispatcher>
#include <QCoreApplication>
#include <QCoro/QCoroAsyncGenerator>
#include <QCoro/QCoroFuture>
#include <QCoro/QCoroTask>
#include <QCoro/QCoroTimer>
#include <QElapsedTimer>
#include <QFile>
#include <QPromise>
#include <QSemaphore>
#include <QThread>
#include <QThreadPool>
#include <QTimer>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <malloc.h>
#include <map>
#include <optional>
#include <random>
#include <ranges>
#include <string>
#include <unistd.h>
#include <vector>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define BENCH_TOGGLE_COLLECT() CALLGRIND_TOGGLE_COLLECT
#else
#define BENCH_TOGGLE_COLLECT() ((void)0)
#endif

namespace {

using namespace std::chrono_literals;

// ---- the tasks -----------------------------------------------------------------------------------

//! One event-loop hop: one posted event per resumption (what any Qt-side wake-up costs).
struct PostedYield {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> handle) const
    {
        QMetaObject::invokeMethod(
            qApp, [handle] { handle.resume(); }, Qt::QueuedConnection);
    }
    void await_resume() const noexcept { }
};

QCoro::Task<int> trivialTask(int i)
{
    co_return i;
}

QCoro::Task<int> hopTask(int i)
{
    co_await PostedYield {};
    co_return i;
}

//! A 10 ms sleep on a Qt::PreciseTimer. QCoro::sleepFor uses the default Qt::CoarseTimer, whose
//! lateness (a few percent, more on a busy machine) adds up over the 20 sequential rounds of the
//! sleep workload and would hide the pools' own overhead; `--coarse-sleep` measures that instead.
struct PreciseSleep {
    std::chrono::milliseconds duration;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> handle) const
    {
        QTimer::singleShot(duration, Qt::PreciseTimer, qApp, [handle] { handle.resume(); });
    }
    void await_resume() const noexcept { }
};

bool coarseSleep = false;

QCoro::Task<int> sleepTask(int i)
{
    if (coarseSleep)
        co_await QCoro::sleepFor(10ms);
    else
        co_await PreciseSleep { 10ms };
    co_return i;
}

int trivialFn(int i)
{
    return i;
}

int sleepFn(int i)
{
    QThread::msleep(10);
    return i;
}

using TaskFn = QCoro::Task<int> (*)(int);
using PlainFn = int (*)(int);

//! Holds tasks until release(); the blocker of the memory measurements.
struct Gate {
    bool entered = false;
    bool open = false;
    std::vector<std::coroutine_handle<>> waiters;

    auto operator co_await()
    {
        struct Awaiter {
            Gate& gate;
            bool await_ready() const noexcept { return gate.open; }
            void await_suspend(std::coroutine_handle<> handle) { gate.waiters.push_back(handle); }
            void await_resume() const noexcept { }
        };
        return Awaiter { *this };
    }
    void release()
    {
        open = true;
        for (auto handle : std::exchange(waiters, {}))
            QMetaObject::invokeMethod(
                qApp, [handle] { handle.resume(); }, Qt::QueuedConnection);
    }
};

QCoro::Task<int> gatedTask(Gate* gate)
{
    gate->entered = true;
    co_await *gate;
    co_return 0;
}

// ---- the hand-written minimal pool ---------------------------------------------------------------

//! A coroutine nobody awaits: starts at once, frees its frame when it returns.
struct Detached {
    struct promise_type {
        Detached get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() const noexcept { return {}; }
        std::suspend_never final_suspend() const noexcept { return {}; }
        void return_void() const noexcept { }
        void unhandled_exception() const noexcept { std::terminate(); }
    };
};

//! K worker coroutines over a deque of jobs, one QPromise per job: the least a pool must do.
class MiniPool {
public:
    explicit MiniPool(int maxWorkers) : m_maxWorkers(maxWorkers) { }
    MiniPool(const MiniPool&) = delete;
    MiniPool& operator=(const MiniPool&) = delete;

    template <typename Fn, typename Arg> QFuture<int> submit(Fn fn, Arg arg)
    {
        Job& job = m_jobs.emplace_back();
        job.work = [fn, arg] { return fn(arg); };
        QFuture<int> future = job.promise.future();
        if (m_running < m_maxWorkers) {
            ++m_running;
            worker();
        }
        return future;
    }

private:
    struct Job {
        std::function<QCoro::Task<int>()> work;
        QPromise<int> promise;
    };

    Detached worker()
    {
        co_await PostedYield {}; // never run a job inside submit()
        while (!m_jobs.empty()) {
            Job job = std::move(m_jobs.front());
            m_jobs.pop_front();
            job.promise.start();
            try {
                job.promise.addResult(co_await job.work());
            } catch (...) {
                job.promise.setException(std::current_exception());
            }
            job.promise.finish();
        }
        --m_running;
    }

    std::deque<Job> m_jobs;
    int m_maxWorkers;
    int m_running = 0;
};

// ---- measurements --------------------------------------------------------------------------------

struct Result {
    qint64 sum = 0;
    double seconds = 0; // wall clock
    double cpu = 0; // CPU time of the whole process (every thread): robust to a busy machine
};

double cpuNow()
{
    timespec ts {};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

//! Wall-clock and process CPU time since construction.
class Stopwatch {
public:
    Stopwatch() : m_cpu(cpuNow()) { m_wall.start(); }
    Result lap(qint64 sum) const { return { sum, double(m_wall.nsecsElapsed()) * 1e-9, cpuNow() - m_cpu }; }

private:
    QElapsedTimer m_wall;
    double m_cpu;
};

//! Lets leftovers of the previous run (posted events, deferred deletes) go before the next one.
void drainEvents()
{
    for (int i = 0; i < 3; ++i) {
        QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
        QCoreApplication::processEvents(QEventLoop::AllEvents);
    }
}

// Submit N, then await every result in order.

QCoro::Task<Result> taskPoolAll(int workers, int n, TaskFn fn)
{
    const Stopwatch timer;
    TaskPool::TaskPoolExecutor pool(workers);
    std::vector<TaskPool::Future<int>> futures;
    futures.reserve(n);
    for (int i = 0; i < n; ++i)
        futures.push_back(pool.submit(fn, i));
    qint64 sum = 0;
    for (auto& future : futures)
        sum += co_await future;
    const Result result = timer.lap(sum);
    co_await pool.shutdown();
    co_return result;
}

//! What the per-task controls of issue-12 cost: trivial tasks that take a stop token, or are given a
//! timeout (never reached) or a context object.
enum class Control { Token, Timeout, Context };

QCoro::Task<int> trivialTokenTask(std::stop_token stop, int i)
{
    co_return stop.stop_requested() ? -1 : i;
}

QCoro::Task<Result> taskPoolControlled(int workers, int n, Control control)
{
    const Stopwatch timer;
    TaskPool::TaskPoolExecutor pool(workers);
    QObject context;
    std::vector<TaskPool::Future<int>> futures;
    futures.reserve(n);
    for (int i = 0; i < n; ++i) {
        switch (control) {
        case Control::Token:
            futures.push_back(pool.submit(trivialTokenTask, i));
            break;
        case Control::Timeout:
            futures.push_back(
                pool.submit(TaskPool::SubmitOptions { .timeout = std::chrono::hours(1) }, trivialTask, i));
            break;
        case Control::Context:
            futures.push_back(pool.submit(TaskPool::SubmitOptions { .context = &context }, trivialTask, i));
            break;
        }
    }
    qint64 sum = 0;
    for (auto& future : futures)
        sum += co_await future;
    const Result result = timer.lap(sum);
    co_await pool.shutdown();
    co_return result;
}

QCoro::Task<Result> miniAll(int workers, int n, TaskFn fn)
{
    const Stopwatch timer;
    MiniPool pool(workers);
    std::vector<QFuture<int>> futures;
    futures.reserve(n);
    for (int i = 0; i < n; ++i)
        futures.push_back(pool.submit(fn, i));
    qint64 sum = 0;
    for (auto& future : futures)
        sum += co_await future;
    co_return timer.lap(sum);
}

QCoro::Task<Result> bareAll(int n, TaskFn fn)
{
    const Stopwatch timer;
    std::vector<QCoro::Task<int>> tasks;
    tasks.reserve(n);
    for (int i = 0; i < n; ++i)
        tasks.push_back(fn(i));
    qint64 sum = 0;
    for (auto& task : tasks)
        sum += co_await task;
    co_return timer.lap(sum);
}

Result qtConcurrentAll(int workers, int n, PlainFn fn)
{
    const Stopwatch timer;
    QThreadPool pool;
    pool.setMaxThreadCount(workers);
    std::vector<QFuture<int>> futures;
    futures.reserve(n);
    for (int i = 0; i < n; ++i)
        futures.push_back(QtConcurrent::run(&pool, fn, i));
    qint64 sum = 0;
    for (auto& future : futures)
        sum += future.result();
    const Result result = timer.lap(sum);
    futures.clear();
    pool.waitForDone();
    return result;
}

// The cost of awaiting a pending future against a finished one: N trivial tasks, each result
// awaited by a coroutine of its own, started either while every future is still pending (no task
// runs inside submit()) or once the whole batch has finished. Both do the same work otherwise.

template <typename F> QCoro::Task<int> awaitOne(F future)
{
    co_return co_await future;
}

template <typename Pool> QCoro::Task<Result> awaitEach(int workers, int n, bool pending)
{
    const Stopwatch timer;
    Pool pool(workers);
    using F = decltype(pool.submit(trivialTask, 0));
    std::vector<F> futures;
    futures.reserve(n);
    for (int i = 0; i < n; ++i)
        futures.push_back(pool.submit(trivialTask, i));
    if (!pending) {
        co_await futures.back(); // the queue is FIFO and the tasks never suspend: all have finished
        if (!std::all_of(futures.begin(), futures.end(), [](const F& f) { return f.isFinished(); }))
            qFatal("awaitEach: a future was still pending");
    }
    std::vector<QCoro::Task<int>> awaiters;
    awaiters.reserve(n);
    for (const F& future : futures)
        awaiters.push_back(awaitOne(future));
    qint64 sum = 0;
    for (auto& awaiter : awaiters)
        sum += co_await awaiter;
    const Result result = timer.lap(sum);
    if constexpr (std::is_same_v<Pool, TaskPool::TaskPoolExecutor>)
        co_await pool.shutdown();
    co_return result;
}

// Ordered results with `buffer` items outstanding: map(), or its equivalent by hand.

qint64 heapInUse();
qint64 rssBytes();

//! Heap in use and RSS every million items of an infinite map: flat when memory is constant.
struct MemorySample {
    qint64 items, heap, rss;
};
std::vector<MemorySample> mapMemorySamples;

QCoro::Task<Result> taskPoolMap(int workers, qint64 n, int buffer, TaskFn fn, bool infinite = false)
{
    const Stopwatch timer;
    TaskPool::TaskPoolExecutor pool(workers);
    TaskPool::MapOptions options;
    options.bufferSize = buffer;
    qint64 sum = 0;
    if (infinite) {
        qint64 count = 0;
        auto results = pool.map(options, fn, std::views::iota(0));
        QCORO_FOREACH(int r, results)
        {
            sum += r;
            if (++count % 1'000'000 == 0)
                mapMemorySamples.push_back({ count, heapInUse(), rssBytes() });
            if (count == n)
                break;
        }
    } else {
        auto results = pool.map(options, fn, std::views::iota(0, int(n)));
        QCORO_FOREACH(int r, results)
        {
            sum += r;
        }
    }
    const Result result = timer.lap(sum);
    co_await pool.shutdown();
    co_return result;
}

QCoro::Task<Result> taskPoolWindow(int workers, qint64 n, int buffer, TaskFn fn)
{
    const Stopwatch timer;
    TaskPool::TaskPoolExecutor pool(workers);
    std::deque<TaskPool::Future<int>> window;
    qint64 next = 0;
    for (; next < n && next < buffer; ++next)
        window.push_back(pool.submit(fn, int(next)));
    qint64 sum = 0;
    while (!window.empty()) {
        TaskPool::Future<int> future = std::move(window.front());
        window.pop_front();
        if (next < n)
            window.push_back(pool.submit(fn, int(next++)));
        sum += co_await future;
    }
    const Result result = timer.lap(sum);
    co_await pool.shutdown();
    co_return result;
}

QCoro::Task<Result> miniWindow(int workers, qint64 n, int buffer, TaskFn fn)
{
    const Stopwatch timer;
    MiniPool pool(workers);
    std::deque<QFuture<int>> window;
    qint64 next = 0;
    for (; next < n && next < buffer; ++next)
        window.push_back(pool.submit(fn, int(next)));
    qint64 sum = 0;
    while (!window.empty()) {
        QFuture<int> future = std::move(window.front());
        window.pop_front();
        if (next < n)
            window.push_back(pool.submit(fn, int(next++)));
        sum += co_await future;
    }
    co_return timer.lap(sum);
}

QCoro::Task<Result> bareWindow(qint64 n, int buffer, TaskFn fn)
{
    const Stopwatch timer;
    std::deque<QCoro::Task<int>> window;
    qint64 next = 0;
    for (; next < n && next < buffer; ++next)
        window.push_back(fn(int(next)));
    qint64 sum = 0;
    while (!window.empty()) {
        QCoro::Task<int> task = std::move(window.front());
        window.pop_front();
        if (next < n)
            window.push_back(fn(int(next++)));
        sum += co_await task;
    }
    co_return timer.lap(sum);
}

Result qtConcurrentWindow(int workers, qint64 n, int buffer, PlainFn fn)
{
    const Stopwatch timer;
    QThreadPool pool;
    pool.setMaxThreadCount(workers);
    std::deque<QFuture<int>> window;
    qint64 next = 0;
    for (; next < n && next < buffer; ++next)
        window.push_back(QtConcurrent::run(&pool, fn, int(next)));
    qint64 sum = 0;
    while (!window.empty()) {
        QFuture<int> future = std::move(window.front());
        window.pop_front();
        if (next < n)
            window.push_back(QtConcurrent::run(&pool, fn, int(next++)));
        sum += future.result();
    }
    const Result result = timer.lap(sum);
    pool.waitForDone();
    return result;
}

// One slow item in 100: ordered map() against mapUnordered(), same items, same bound.

//! 2 ms, or 50 ms for every 100th item (precise timers).
QCoro::Task<int> oneSlowIn100(int i)
{
    co_await PreciseSleep { i % 100 == 0 ? 50ms : 2ms };
    co_return i;
}

QCoro::Task<Result> slowMap(bool unordered, int workers, int n, int buffer)
{
    const Stopwatch timer;
    TaskPool::TaskPoolExecutor pool(workers);
    TaskPool::MapOptions options;
    options.bufferSize = buffer;
    qint64 sum = 0;
    if (unordered) {
        QCORO_FOREACH(const auto& r, pool.mapUnordered(options, oneSlowIn100, std::views::iota(0, n)))
        {
            sum += r.value;
        }
    } else {
        QCORO_FOREACH(int r, pool.map(options, oneSlowIn100, std::views::iota(0, n)))
        {
            sum += r;
        }
    }
    const Result result = timer.lap(sum);
    co_await pool.shutdown();
    co_return result;
}

// ---- dispatch ------------------------------------------------------------------------------------

enum class Workload { Trivial, Hop, Map, Sleep, Pending, Finished, Token, Timeout, Context };
enum class Impl { TaskPool, TaskPoolWindow, Mini, Bare, QtConcurrent };

//! The workloads of the throughput tables (sleep has its own table).
constexpr Workload throughputWorkloads[]
    = { Workload::Trivial, Workload::Hop, Workload::Map, Workload::Pending, Workload::Finished };

const char* workloadName(Workload w)
{
    switch (w) {
    case Workload::Trivial:
        return "trivial";
    case Workload::Hop:
        return "hop";
    case Workload::Map:
        return "map";
    case Workload::Sleep:
        return "sleep";
    case Workload::Pending:
        return "pending";
    case Workload::Finished:
        return "finished";
    case Workload::Token:
        return "token";
    case Workload::Timeout:
        return "timeout";
    case Workload::Context:
        return "context";
    }
    return "?";
}

const char* implName(Impl impl)
{
    switch (impl) {
    case Impl::TaskPool:
        return "taskpool";
    case Impl::TaskPoolWindow:
        return "taskpool-window";
    case Impl::Mini:
        return "handwritten";
    case Impl::Bare:
        return "bare-qcoro";
    case Impl::QtConcurrent:
        return "qtconcurrent";
    }
    return "?";
}

constexpr int mapBuffer = 64;

bool applicable(Workload w, Impl impl)
{
    if (impl == Impl::QtConcurrent && w == Workload::Hop)
        return false; // a QThreadPool thread has no event loop to hop through
    if (impl == Impl::TaskPoolWindow)
        return w == Workload::Map;
    if (w == Workload::Token || w == Workload::Timeout || w == Workload::Context)
        return impl == Impl::TaskPool; // TaskPool's own per-task controls
    if (w == Workload::Pending || w == Workload::Finished)
        return impl == Impl::TaskPool || impl == Impl::Mini; // what awaiting a pool's futures costs
    return true;
}

//! Runs one workload once; nullopt when it does not apply to the implementation.
std::optional<Result> runOnce(Workload w, Impl impl, int workers, qint64 n)
{
    if (!applicable(w, impl))
        return std::nullopt;
    const TaskFn fn = w == Workload::Hop ? hopTask : w == Workload::Sleep ? sleepTask : trivialTask;
    const PlainFn plain = w == Workload::Sleep ? sleepFn : trivialFn;
    Result result;
    if (w == Workload::Token || w == Workload::Timeout || w == Workload::Context) {
        const Control control = w == Workload::Token ? Control::Token
            : w == Workload::Timeout                 ? Control::Timeout
                                                     : Control::Context;
        result = QCoro::waitFor(taskPoolControlled(workers, int(n), control));
    } else if (w == Workload::Pending || w == Workload::Finished) {
        const bool pending = w == Workload::Pending;
        result = impl == Impl::TaskPool
            ? QCoro::waitFor(awaitEach<TaskPool::TaskPoolExecutor>(workers, int(n), pending))
            : QCoro::waitFor(awaitEach<MiniPool>(workers, int(n), pending));
    } else if (w == Workload::Map) {
        switch (impl) {
        case Impl::TaskPool:
            result = QCoro::waitFor(taskPoolMap(workers, n, mapBuffer, fn));
            break;
        case Impl::TaskPoolWindow:
            result = QCoro::waitFor(taskPoolWindow(workers, n, mapBuffer, fn));
            break;
        case Impl::Mini:
            result = QCoro::waitFor(miniWindow(workers, n, mapBuffer, fn));
            break;
        case Impl::Bare:
            result = QCoro::waitFor(bareWindow(n, mapBuffer, fn));
            break;
        case Impl::QtConcurrent:
            result = qtConcurrentWindow(workers, n, mapBuffer, plain);
            break;
        }
    } else {
        switch (impl) {
        case Impl::TaskPool:
            result = QCoro::waitFor(taskPoolAll(workers, int(n), fn));
            break;
        case Impl::Mini:
            result = QCoro::waitFor(miniAll(workers, int(n), fn));
            break;
        case Impl::Bare:
            result = QCoro::waitFor(bareAll(int(n), fn));
            break;
        case Impl::QtConcurrent:
            result = qtConcurrentAll(workers, int(n), plain);
            break;
        case Impl::TaskPoolWindow:
            break;
        }
    }
    drainEvents();
    const qint64 expected = n * (n - 1) / 2;
    if (result.sum != expected) {
        std::fprintf(stderr, "%s/%s: wrong sum %lld, expected %lld\n", workloadName(w), implName(impl),
                     static_cast<long long>(result.sum), static_cast<long long>(expected));
        std::exit(2);
    }
    return result;
}

double median(std::vector<double> values)
{
    std::sort(values.begin(), values.end());
    const size_t m = values.size() / 2;
    return values.size() % 2 ? values[m] : (values[m - 1] + values[m]) / 2;
}

// ---- memory --------------------------------------------------------------------------------------

//! Bytes handed out by malloc (small chunks and mmapped blocks), headers included.
qint64 heapInUse()
{
    const struct mallinfo2 info = mallinfo2();
    return qint64(info.uordblks + info.hblkhd);
}

qint64 rssBytes()
{
    QFile file(QStringLiteral("/proc/self/statm"));
    if (!file.open(QIODevice::ReadOnly))
        return 0;
    const QList<QByteArray> fields = file.readAll().split(' ');
    return fields.size() > 1 ? fields[1].toLongLong() * sysconf(_SC_PAGESIZE) : 0;
}

qint64 statusKb(const char* field)
{
    QFile file(QStringLiteral("/proc/self/status"));
    if (!file.open(QIODevice::ReadOnly))
        return 0;
    for (const QByteArray& line : file.readAll().split('\n')) {
        if (line.startsWith(field))
            return line.mid(int(std::strlen(field))).trimmed().split(' ').first().toLongLong();
    }
    return 0;
}

//! Resets VmHWM to the current RSS (Linux >= 4.0).
void resetPeakRss()
{
    QFile file(QStringLiteral("/proc/self/clear_refs"));
    if (file.open(QIODevice::WriteOnly))
        file.write("5");
}

struct PendingMemory {
    double heapPerTask = 0;
    double rssPerTask = 0;
};

//! Returns free pages to the system first, so that RSS growth shows again.
bool trimHeap()
{
    return malloc_trim(0);
}

struct MemoryProbe {
    bool trimmed = trimHeap(); // initialised before the readings below
    qint64 heap = heapInUse();
    qint64 rss = rssBytes();
    PendingMemory per(qint64 n) const
    {
        return { double(heapInUse() - heap) / double(n), double(rssBytes() - rss) / double(n) };
    }
};

// One worker busy behind a gate, then N submitted tasks measured while they wait.

QCoro::Task<PendingMemory> taskPoolPending(int n)
{
    TaskPool::TaskPoolExecutor pool(1);
    Gate gate;
    auto blocker = pool.submit(gatedTask, &gate);
    while (!gate.entered)
        co_await PostedYield {};
    std::vector<TaskPool::Future<int>> futures;
    futures.reserve(n);
    const MemoryProbe probe;
    for (int i = 0; i < n; ++i)
        futures.push_back(pool.submit(trivialTask, i));
    const PendingMemory memory = probe.per(n);
    gate.release();
    co_await blocker;
    for (auto& future : futures)
        co_await future;
    co_await pool.shutdown();
    co_return memory;
}

QCoro::Task<PendingMemory> miniPending(int n)
{
    MiniPool pool(1);
    Gate gate;
    auto blocker = pool.submit(gatedTask, &gate);
    while (!gate.entered)
        co_await PostedYield {};
    std::vector<QFuture<int>> futures;
    futures.reserve(n);
    const MemoryProbe probe;
    for (int i = 0; i < n; ++i)
        futures.push_back(pool.submit(trivialTask, i));
    const PendingMemory memory = probe.per(n);
    gate.release();
    co_await blocker;
    for (auto& future : futures)
        co_await future;
    co_return memory;
}

QCoro::Task<PendingMemory> barePending(int n)
{
    Gate gate;
    std::vector<QCoro::Task<int>> tasks;
    tasks.reserve(n);
    const MemoryProbe probe;
    for (int i = 0; i < n; ++i)
        tasks.push_back(gatedTask(&gate));
    const PendingMemory memory = probe.per(n);
    gate.release();
    for (auto& task : tasks)
        co_await task;
    co_return memory;
}

PendingMemory qtConcurrentPending(int n)
{
    QThreadPool pool;
    pool.setMaxThreadCount(1);
    QSemaphore entered, gate;
    auto blocker = QtConcurrent::run(&pool, [&entered, &gate] {
        entered.release();
        gate.acquire();
        return 0;
    });
    entered.acquire();
    std::vector<QFuture<int>> futures;
    futures.reserve(n);
    const MemoryProbe probe;
    for (int i = 0; i < n; ++i)
        futures.push_back(QtConcurrent::run(&pool, trivialFn, i));
    const PendingMemory memory = probe.per(n);
    gate.release();
    for (auto& future : futures)
        future.waitForFinished();
    pool.waitForDone();
    return memory;
}

// ---- options -------------------------------------------------------------------------------------

struct Options {
    std::vector<qint64> ns { 10'000, 100'000, 1'000'000 };
    std::vector<int> workers { 1, 8, 64, 1024 };
    int reps = 0; // 0: 3 below 1e6 items, 1 from 1e6 on
    QString csv;
    std::vector<std::string> only { "trivial", "hop",       "map",     "pending",  "finished", "sleep",
                                    "memory",  "mapmemory", "slowmap", "priority", "rate" };
    qint64 memoryN = 100'000;
    std::vector<qint64> mapMemoryItems { 1'000'000, 10'000'000 };
    QString callgrind; // workload name
    QString impl = QStringLiteral("taskpool");
    std::optional<qint64> callgrindN;
};

template <typename T> std::vector<T> parseList(const char* text)
{
    std::vector<T> values;
    for (const QByteArray& item : QByteArray(text).split(','))
        values.push_back(T(item.trimmed().toDouble())); // accepts 1e5
    return values;
}

void usage()
{
    std::puts("usage: taskpool_bench [--quick] [--n N[,N...]] [--workers K[,K...]] [--reps R] [--csv FILE]\n"
              "                      [--only trivial,hop,map,pending,finished,sleep,memory,mapmemory,slowmap,priority,"
              "rate]\n"
              "                      [--memory-n N]\n"
              "                      [--map-memory-items M[,M...]] [--coarse-sleep]\n"
              "       taskpool_bench --callgrind trivial|hop|map|pending|finished|sleep|token|timeout|context [--impl "
              "taskpool|taskpool-window|\n"
              "                      handwritten|bare-qcoro|qtconcurrent] [--n N] [--workers K]");
}

bool wants(const Options& o, const char* what)
{
    return std::find(o.only.begin(), o.only.end(), std::string(what)) != o.only.end();
}

std::optional<Workload> parseWorkload(const QString& name)
{
    for (Workload w : { Workload::Sleep, Workload::Token, Workload::Timeout, Workload::Context }) {
        if (name == QLatin1String(workloadName(w)))
            return w;
    }
    for (Workload w : throughputWorkloads) {
        if (name == QLatin1String(workloadName(w)))
            return w;
    }
    return std::nullopt;
}

std::optional<Impl> parseImpl(const QString& name)
{
    for (Impl impl : { Impl::TaskPool, Impl::TaskPoolWindow, Impl::Mini, Impl::Bare, Impl::QtConcurrent }) {
        if (name == QLatin1String(implName(impl)))
            return impl;
    }
    return std::nullopt;
}

// ---- modes ---------------------------------------------------------------------------------------

int runCallgrind(const Options& o)
{
    const auto workload = parseWorkload(o.callgrind);
    const auto impl = parseImpl(o.impl);
    if (!workload || !impl) {
        usage();
        return 1;
    }
    const int workers = o.workers.size() == 1 ? o.workers.front() : (*workload == Workload::Sleep ? 100 : 8);
    const qint64 n = o.callgrindN.value_or(*workload == Workload::Hop || *workload == Workload::Pending ? 20'000
                                               : *workload == Workload::Sleep                           ? 2'000
                                                                                                        : 100'000);
    if (!applicable(*workload, *impl)) {
        std::printf("callgrind %s %s: not applicable\n", workloadName(*workload), implName(*impl));
        return 3;
    }
    runOnce(*workload, *impl, workers, std::min<qint64>(n, 1000)); // warm-up: lazy set-up stays uncounted
    BENCH_TOGGLE_COLLECT();
    runOnce(*workload, *impl, workers, n);
    BENCH_TOGGLE_COLLECT();
    std::printf("callgrind workload=%s impl=%s workers=%d n=%lld\n", workloadName(*workload), implName(*impl), workers,
                static_cast<long long>(n));
    return 0;
}

struct Row {
    Workload workload;
    Impl impl;
    qint64 n;
    int workers; // 0: unbounded
    int reps;
    double seconds;
    double ratio; // seconds / the hand-written pool's seconds at the same maxWorkers
    double cpu; // process CPU seconds (all threads)
};

//! Medians of wall-clock and CPU time, taken separately.
std::pair<double, double> medians(const std::vector<Result>& results)
{
    std::vector<double> wall, cpu;
    for (const Result& r : results) {
        wall.push_back(r.seconds);
        cpu.push_back(r.cpu);
    }
    return { median(wall), median(cpu) };
}

void printTable(Workload w, qint64 n, int reps, const std::vector<Row>& rows)
{
    std::printf("\n%s, N = %lld, median of %d run%s\n", workloadName(w), static_cast<long long>(n), reps,
                reps == 1 ? "" : "s");
    std::printf("  %10s  %-16s %11s %13s %10s %12s %14s\n", "maxWorkers", "implementation", "time [ms]", "tasks/s",
                "ns/task", "x handwritten", "CPU ns/task");
    for (const Row& row : rows) {
        if (row.workload != w || row.n != n)
            continue;
        const std::string workers = row.workers ? std::to_string(row.workers) : std::string("unbounded");
        std::printf("  %10s  %-16s %11.2f %13.0f %10.0f %12.2f %14.0f\n", workers.c_str(), implName(row.impl),
                    row.seconds * 1e3, double(n) / row.seconds, row.seconds * 1e9 / double(n), row.ratio,
                    row.cpu * 1e9 / double(n));
    }
    std::fflush(stdout);
}

void runThroughput(const Options& o, std::vector<Row>& rows)
{
    const Impl impls[] = { Impl::TaskPool, Impl::TaskPoolWindow, Impl::Mini, Impl::QtConcurrent };
    for (Workload w : throughputWorkloads) {
        if (!wants(o, workloadName(w)))
            continue;
        for (qint64 n : o.ns) {
            const int reps = o.reps ? o.reps : (n >= 1'000'000 ? 1 : 3);
            std::fprintf(stderr, "[%s N=%lld]", workloadName(w), static_cast<long long>(n));
            // The unbounded baseline does not depend on maxWorkers: measured once per N.
            std::vector<Result> bareRuns;
            for (int rep = 0; rep < reps; ++rep) {
                if (auto result = runOnce(w, Impl::Bare, 0, n))
                    bareRuns.push_back(*result);
            }
            const auto bare = bareRuns.empty() ? std::nullopt : std::optional(medians(bareRuns));
            std::vector<Row> block;
            for (int workers : o.workers) {
                std::map<Impl, std::vector<Result>> times;
                for (int rep = 0; rep < reps; ++rep) { // interleaved, so that drift hits every implementation
                    for (Impl impl : impls) {
                        if (auto result = runOnce(w, impl, workers, n))
                            times[impl].push_back(*result);
                    }
                }
                std::fprintf(stderr, " K=%d", workers);
                const double mini = medians(times[Impl::Mini]).first;
                for (Impl impl : impls) {
                    if (!times[impl].empty()) {
                        const auto [seconds, cpu] = medians(times[impl]);
                        block.push_back({ w, impl, n, workers, reps, seconds, seconds / mini, cpu });
                    }
                }
                if (bare) {
                    const auto [bareSeconds, bareCpu] = *bare;
                    block.push_back({ w, Impl::Bare, n, workers, reps, bareSeconds, bareSeconds / mini, bareCpu });
                }
            }
            std::fprintf(stderr, "\n");
            printTable(w, n, reps, block);
            for (Row& row : block) {
                if (row.impl == Impl::Bare && row.workers != o.workers.front())
                    continue; // one CSV row for the unbounded baseline
                if (row.impl == Impl::Bare)
                    row.workers = 0;
                rows.push_back(row);
            }
        }
    }
}

void runSleep(const Options& o, std::vector<Row>& rows)
{
    constexpr int n = 2000, workers = 100;
    const int reps = o.reps ? o.reps : 3;
    std::map<Impl, std::vector<Result>> times;
    const Impl impls[] = { Impl::TaskPool, Impl::Mini, Impl::QtConcurrent, Impl::Bare };
    for (int rep = 0; rep < reps; ++rep) {
        for (Impl impl : impls)
            times[impl].push_back(*runOnce(Workload::Sleep, impl, impl == Impl::Bare ? 0 : workers, n));
    }
    const double mini = medians(times[Impl::Mini]).first;
    std::printf("\nsleep: %d tasks of 10 ms (%s) at %d workers (ideal 200 ms; bare QCoro is unbounded: ideal "
                "10 ms), median of %d\n",
                n, coarseSleep ? "QCoro::sleepFor, coarse timer" : "precise timer", workers, reps);
    std::printf("  %-16s %11s %14s %12s\n", "implementation", "time [ms]", "vs ideal", "x handwritten");
    for (Impl impl : impls) {
        const auto [seconds, cpu] = medians(times[impl]);
        const double ideal = impl == Impl::Bare ? 0.010 : 0.200;
        std::printf("  %-16s %11.1f %+13.1f%% %12.2f\n", implName(impl), seconds * 1e3, (seconds / ideal - 1) * 100,
                    seconds / mini);
        rows.push_back(
            { Workload::Sleep, impl, n, impl == Impl::Bare ? 0 : workers, reps, seconds, seconds / mini, cpu });
    }
    std::fflush(stdout);
}

void runSlowMap(const Options& o)
{
    constexpr int n = 1000, workers = 8, buffer = 8;
    const int reps = o.reps ? o.reps : 3;
    std::vector<double> ordered, unordered;
    for (int rep = 0; rep < reps; ++rep) {
        ordered.push_back(QCoro::waitFor(slowMap(false, workers, n, buffer)).seconds);
        drainEvents();
        unordered.push_back(QCoro::waitFor(slowMap(true, workers, n, buffer)).seconds);
        drainEvents();
    }
    // Work: 10 items of 50 ms and 990 of 2 ms, over 8 workers: 310 ms at best.
    const double ideal = (10 * 0.050 + 990 * 0.002) / workers;
    const double o1 = median(ordered), u1 = median(unordered);
    std::printf("\nslowmap: %d items of 2 ms, every 100th 50 ms, %d workers, bufferSize %d (ideal %.0f ms), "
                "median of %d\n",
                n, workers, buffer, ideal * 1e3, reps);
    std::printf("  %-16s %11s %14s\n", "implementation", "time [ms]", "vs ideal");
    std::printf("  %-16s %11.1f %+13.1f%%\n", "map (ordered)", o1 * 1e3, (o1 / ideal - 1) * 100);
    std::printf("  %-16s %11.1f %+13.1f%%\n", "mapUnordered", u1 * 1e3, (u1 / ideal - 1) * 100);
    std::printf("  ordered / unordered: %.2f\n", o1 / u1);
    std::fflush(stdout);
}

void runMemory(const Options& o)
{
    const int n = int(o.memoryN);
    std::printf("\nmemory per pending task: %d trivial tasks queued behind one gated worker "
                "(heap: mallinfo2 in-use bytes; RSS: /proc/self/statm), future handles excluded "
                "(sizeof(TaskPool::Future<int>) = %zu, sizeof(QFuture<int>) = %zu)\n",
                n, sizeof(TaskPool::Future<int>), sizeof(QFuture<int>));
    std::printf("  %-16s %16s %16s\n", "implementation", "heap B/task", "RSS B/task");
    auto print = [](Impl impl, PendingMemory m) {
        std::printf("  %-16s %16.0f %16.0f\n", implName(impl), m.heapPerTask, m.rssPerTask);
        std::fflush(stdout);
    };
    print(Impl::TaskPool, QCoro::waitFor(taskPoolPending(n)));
    drainEvents();
    print(Impl::Mini, QCoro::waitFor(miniPending(n)));
    drainEvents();
    print(Impl::QtConcurrent, qtConcurrentPending(n));
    drainEvents();
    print(Impl::Bare, QCoro::waitFor(barePending(n)));
    drainEvents();
}

void runMapMemory(const Options& o)
{
    constexpr int buffer = 16, workers = 8;
    std::printf("\nmap memory: items of an infinite range with bufferSize %d, %d workers: peak RSS growth "
                "(VmHWM reset through /proc/self/clear_refs)\n",
                buffer, workers);
    std::printf("  %-16s %12s %14s %16s %10s\n", "implementation", "items", "peak +KiB", "heap after +B", "time [s]");
    for (Impl impl : { Impl::TaskPool, Impl::TaskPoolWindow, Impl::Mini }) {
        for (qint64 items : o.mapMemoryItems) {
            std::fprintf(stderr, "[map memory %s %lld]\n", implName(impl), static_cast<long long>(items));
            drainEvents();
            malloc_trim(0);
            const qint64 heapBefore = heapInUse();
            const qint64 rssBeforeKb = statusKb("VmRSS:");
            resetPeakRss();
            Result r;
            if (impl == Impl::TaskPool)
                r = QCoro::waitFor(taskPoolMap(workers, items, buffer, trivialTask, true));
            else if (impl == Impl::TaskPoolWindow)
                r = QCoro::waitFor(taskPoolWindow(workers, items, buffer, trivialTask));
            else
                r = QCoro::waitFor(miniWindow(workers, items, buffer, trivialTask));
            drainEvents();
            const qint64 peakKb = statusKb("VmHWM:");
            std::printf("  %-16s %12lld %14lld %16lld %10.2f\n", implName(impl), static_cast<long long>(items),
                        static_cast<long long>(peakKb - rssBeforeKb), static_cast<long long>(heapInUse() - heapBefore),
                        r.seconds);
            if (impl == Impl::TaskPool && !mapMemorySamples.empty()) {
                std::printf("  %-16s heap in use / RSS [KiB] every million items:", "");
                for (const MemorySample& sample : std::exchange(mapMemorySamples, {}))
                    std::printf(" %lld/%lld", static_cast<long long>(sample.heap / 1024),
                                static_cast<long long>(sample.rss / 1024));
                std::printf("\n");
            }
            std::fflush(stdout);
        }
    }
}

// ---- scheduling controls -------------------------------------------------------------------------

//! How the priority benchmark submits: without options, with priority 0, with random priorities.
enum class PriorityMode { NoOptions, Zero, Random };

const char* priorityModeName(PriorityMode mode)
{
    switch (mode) {
    case PriorityMode::NoOptions:
        return "no options";
    case PriorityMode::Zero:
        return "priority 0";
    case PriorityMode::Random:
        return "random priority";
    }
    return "?";
}

struct PriorityResult {
    double submitNs = 0; // per task, while the worker is held: the queue grows to N
    double drainNs = 0; // per task, from the gate's release to the last result read
    double cpuNs = 0; // process CPU per task, submit and drain
};

//! N trivial tasks queued behind one gated worker, then drained in priority order.
QCoro::Task<PriorityResult> taskPoolPriority(int n, PriorityMode mode)
{
    TaskPool::TaskPoolExecutor pool(1);
    Gate gate;
    auto blocker = pool.submit(gatedTask, &gate);
    while (!gate.entered)
        co_await PostedYield {};
    std::vector<int> priorities(std::size_t(n), 0);
    std::mt19937 rng(42);
    if (mode == PriorityMode::Random) {
        for (int& p : priorities)
            p = int(rng() % 1001) - 500; // up to 1,001 distinct priorities
    }
    std::vector<TaskPool::Future<int>> futures;
    futures.reserve(std::size_t(n));
    const double cpu = cpuNow();
    QElapsedTimer wall;
    wall.start();
    for (int i = 0; i < n; ++i) {
        if (mode == PriorityMode::NoOptions)
            futures.push_back(pool.submit(trivialTask, i));
        else
            futures.push_back(pool.submit({ .priority = priorities[std::size_t(i)] }, trivialTask, i));
    }
    const double submitted = double(wall.nsecsElapsed());
    gate.release();
    co_await blocker;
    qint64 sum = 0;
    for (auto& future : futures)
        sum += co_await future;
    const double total = double(wall.nsecsElapsed());
    PriorityResult result { submitted / n, (total - submitted) / n, (cpuNow() - cpu) * 1e9 / n };
    co_await pool.shutdown();
    if (sum != qint64(n) * (n - 1) / 2)
        std::fprintf(stderr, "priority benchmark: wrong sum\n");
    co_return result;
}

void runPriority(const Options& o)
{
    std::printf("\npriorities: N trivial tasks queued behind one gated worker, then drained; ns per task "
                "(median of %d below 1e6, 1 from 1e6 on; after an unmeasured warm-up); random: priorities in "
                "[-500, 500]\n",
                o.reps > 0 ? o.reps : 3);
    std::printf("  %10s %-16s %12s %12s %12s %12s %10s\n", "queued", "submit", "submit ns", "drain ns", "total ns",
                "cpu ns", "vs none");
    for (const int n : { 1'000, 1'000'000 }) {
        const int reps = n >= 1'000'000 ? 1 : (o.reps > 0 ? o.reps : 3);
        QCoro::waitFor(taskPoolPriority(n, PriorityMode::NoOptions)); // warm-up: the heap grows once, unmeasured
        double baseline = 0;
        for (PriorityMode mode : { PriorityMode::NoOptions, PriorityMode::Zero, PriorityMode::Random }) {
            std::vector<double> submit, drain, cpu;
            for (int r = 0; r < reps; ++r) {
                drainEvents();
                const PriorityResult result = QCoro::waitFor(taskPoolPriority(n, mode));
                submit.push_back(result.submitNs);
                drain.push_back(result.drainNs);
                cpu.push_back(result.cpuNs);
            }
            const double total = median(submit) + median(drain);
            if (mode == PriorityMode::NoOptions)
                baseline = total;
            std::printf("  %10d %-16s %12.0f %12.0f %12.0f %12.0f %9.2fx\n", n, priorityModeName(mode), median(submit),
                        median(drain), total, median(cpu), total / baseline);
            std::fflush(stdout);
        }
    }
}

//! Start times of trivial tasks under a rate limit.
QCoro::Task<int> timedTask(std::vector<std::chrono::steady_clock::time_point>* starts)
{
    starts->push_back(std::chrono::steady_clock::now());
    co_return 1;
}

QCoro::Task<void> taskPoolRate(int n, int limit, std::chrono::milliseconds window, int workers)
{
    using Clock = std::chrono::steady_clock;
    TaskPool::TaskPoolExecutor pool(workers);
    pool.setRateLimit(limit, window);
    std::vector<Clock::time_point> starts;
    starts.reserve(std::size_t(n));
    std::vector<TaskPool::Future<int>> futures;
    futures.reserve(std::size_t(n));
    int heldSignals = 0;
    QObject::connect(&pool, &TaskPool::TaskPoolExecutor::rateLimitedChanged, &pool,
                     [&](bool limited) { heldSignals += limited ? 1 : 0; });
    const auto begin = Clock::now();
    for (int i = 0; i < n; ++i)
        futures.push_back(pool.submit(timedTask, &starts));
    for (auto& future : futures)
        co_await future;
    co_await pool.shutdown();
    // The busiest sliding window (starts timed in the task, after the pool's own reading), and the
    // starts of consecutive fixed windows from the first start.
    int worst = 0;
    for (std::size_t i = 0, j = 0; i < starts.size(); ++i) {
        while (starts[i] - starts[j] >= window)
            ++j;
        worst = std::max(worst, int(i - j + 1));
    }
    std::map<qint64, int> fixed;
    for (const auto& t : starts)
        ++fixed[(t - starts.front()) / window];
    int least = n, most = 0;
    for (const auto& [index, count] : fixed) {
        if (index + 1 < qint64(fixed.size())) { // the last window is partial
            least = std::min(least, count);
            most = std::max(most, count);
        }
    }
    // Ideal: `limit` starts at once, then `limit` more each window.
    const auto ideal = window * ((n + limit - 1) / limit - 1);
    const double seconds = std::chrono::duration<double>(starts.back() - starts.front()).count();
    const double idealSeconds = std::chrono::duration<double>(ideal).count();
    // The closest two starts `limit` apart: the margin the strict window keeps.
    auto closest = Clock::duration::max();
    for (std::size_t i = 0; i + std::size_t(limit) < starts.size(); ++i)
        closest = std::min(closest, starts[i + std::size_t(limit)] - starts[i]);
    std::printf("  %8d %6d %8lld %8d %13d %12d/%d %12.3f %12.3f %9.4fx %14.3f %8d\n", n, limit,
                static_cast<long long>(window.count()), workers, worst, least, most, seconds, idealSeconds,
                seconds / idealSeconds, std::chrono::duration<double, std::milli>(closest).count(), heldSignals);
    std::printf("  %8s first start %.3f ms after the first submit\n", "",
                std::chrono::duration<double, std::milli>(starts.front() - begin).count());
    std::fflush(stdout);
}

void runRate(const Options&)
{
    std::printf("\nrate-limit fidelity: trivial tasks under setRateLimit(limit, window); worst = most starts in "
                "any sliding window (must be <= limit); fixed = fewest/most starts per consecutive window from "
                "the first start (the last, partial one excluded); time from the first start to the last "
                "against the ideal (limit at once, then limit per window); closest = smallest gap between "
                "starts `limit` apart (>= window); held = rateLimited turning true\n");
    std::printf("  %8s %6s %8s %8s %13s %14s %12s %12s %10s %14s %8s\n", "tasks", "limit", "window", "workers",
                "worst window", "fixed min/max", "time [s]", "ideal [s]", "vs ideal", "closest [ms]", "held");
    QCoro::waitFor(taskPoolRate(10'000, 1'000, std::chrono::milliseconds(1000), 8));
    drainEvents();
    QCoro::waitFor(taskPoolRate(10'000, 10, std::chrono::milliseconds(10), 8));
}

void writeCsv(const QString& path, const std::vector<Row>& rows)
{
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate | QIODevice::Text)) {
        std::fprintf(stderr, "cannot write %s\n", qPrintable(path));
        return;
    }
    file.write("workload,impl,n,workers,reps,median_s,tasks_per_s,ratio_vs_handwritten,median_cpu_s\n");
    for (const Row& row : rows) {
        file.write(QStringLiteral("%1,%2,%3,%4,%5,%6,%7,%8,%9\n")
                       .arg(QLatin1String(workloadName(row.workload)), QLatin1String(implName(row.impl)))
                       .arg(row.n)
                       .arg(row.workers)
                       .arg(row.reps)
                       .arg(row.seconds, 0, 'g', 6)
                       .arg(double(row.n) / row.seconds, 0, 'f', 0)
                       .arg(row.ratio, 0, 'f', 3)
                       .arg(row.cpu, 0, 'g', 6)
                       .toUtf8());
    }
}

} // namespace

int main(int argc, char** argv)
{
    QCoreApplication app(argc, argv);
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const bool hasValue = i + 1 < argc;
        if (arg == "--quick") {
            o.ns = { 2'000, 20'000 };
            o.memoryN = 20'000;
            o.mapMemoryItems = { 100'000, 1'000'000 };
        } else if (arg == "--coarse-sleep") {
            coarseSleep = true;
        } else if (arg == "--n" && hasValue) {
            o.ns = parseList<qint64>(argv[++i]);
            o.callgrindN = o.ns.front();
        } else if (arg == "--workers" && hasValue) {
            o.workers = parseList<int>(argv[++i]);
        } else if (arg == "--reps" && hasValue) {
            o.reps = std::atoi(argv[++i]);
        } else if (arg == "--csv" && hasValue) {
            o.csv = QString::fromLocal8Bit(argv[++i]);
        } else if (arg == "--only" && hasValue) {
            o.only.clear();
            for (const QByteArray& item : QByteArray(argv[++i]).split(','))
                o.only.push_back(item.trimmed().toStdString());
        } else if (arg == "--memory-n" && hasValue) {
            o.memoryN = qint64(std::atof(argv[++i]));
        } else if (arg == "--map-memory-items" && hasValue) {
            o.mapMemoryItems = parseList<qint64>(argv[++i]);
        } else if (arg == "--callgrind" && hasValue) {
            o.callgrind = QString::fromLocal8Bit(argv[++i]);
        } else if (arg == "--impl" && hasValue) {
            o.impl = QString::fromLocal8Bit(argv[++i]);
        } else {
            usage();
            return arg == "--help" || arg == "-h" ? 0 : 1;
        }
    }
    if (!o.callgrind.isEmpty())
        return runCallgrind(o);

    std::printf("TaskPool benchmarks: Qt %s, QCoro 0.8, %d cores, event dispatcher %s\n", qVersion(),
                QThread::idealThreadCount(), QAbstractEventDispatcher::instance()->metaObject()->className());
    // Memory first, on a heap that no large run has grown yet.
    if (wants(o, "memory"))
        runMemory(o);
    if (wants(o, "mapmemory"))
        runMapMemory(o);
    // Warm-up: lazy initialisations (thread pools, timers, dynamic symbol binding) stay unmeasured.
    for (Workload w : throughputWorkloads) {
        for (Impl impl : { Impl::TaskPool, Impl::TaskPoolWindow, Impl::Mini, Impl::Bare, Impl::QtConcurrent })
            runOnce(w, impl, 8, 1000);
    }
    std::vector<Row> rows;
    runThroughput(o, rows);
    if (wants(o, "sleep"))
        runSleep(o, rows);
    if (wants(o, "slowmap"))
        runSlowMap(o);
    if (wants(o, "priority"))
        runPriority(o);
    if (wants(o, "rate"))
        runRate(o);
    if (!o.csv.isEmpty())
        writeCsv(o.csv, rows);
    return 0;
}
