// SPDX-License-Identifier: MIT
// Compiled (not run) with clang++-14 by the ctest clang14_headers: clang 14 cannot compile the
// std::ranges views of libstdc++ 12 (llvm#44178), so the public headers must not need them for
// submit(), the waiting helpers, map() (and its siblings) over containers and the cancellation
// helpers.
#include <taskpool/taskpool.h>

#include <QList>

#include <vector>

namespace {

QCoro::Task<int> twice(int x)
{
    co_return 2 * x;
}

QCoro::Task<void> body(TaskPool::TaskPoolExecutor& pool)
{
    int sum = co_await pool.submit(twice, 21);
    sum += co_await pool.submit([](int x) { return x + 1; }, sum);
    sum += co_await pool.submit(twice(1));
    auto progress = pool.submit([](QPromise<int>& promise) -> QCoro::Task<void> {
        promise.addResult(1);
        co_return;
    });
    QList<TaskPool::Future<int>> futures { pool.submit(twice, sum), progress };
    co_await TaskPool::wait(futures);
    QCORO_FOREACH(auto future, TaskPool::asCompleted(futures))
    {
        sum += co_await future;
    }
    const std::vector<int> items { 1, 2, 3 };
    QCORO_FOREACH(int r, pool.map(twice, items))
    {
        sum += r;
    }
    auto add = [](int x, int y) { return x + y; };
    QCORO_FOREACH(int r, pool.map({ .bufferSize = 2 }, add, QList<int> { 4, 5 }, std::vector<int> { 6, 7 }))
    {
        sum += r;
    }
    QCORO_FOREACH(const auto& item, pool.mapUnordered({ .bufferSize = 2 }, twice, items))
    {
        sum += item.value + int(item.index);
    }
    QCORO_FOREACH(const auto& r, pool.mapSettled(twice, items))
    {
        sum += r.hasValue() ? r.value() : 0;
    }
    QCORO_FOREACH(const auto& item, pool.mapUnorderedSettled(twice, items))
    {
        sum += item.value.hasValue() ? item.value.value() : 0;
    }
    QCORO_FOREACH(const auto& item, TaskPool::asCompletedIndexed(futures))
    {
        sum += co_await item.value;
    }
    const auto settled = co_await TaskPool::gatherSettled(futures);
    sum += int(settled.size());
    auto [a, b] = co_await TaskPool::gather(futures[0], pool.submit([] { return QString(); }));
    sum += a + int(b.size());
    auto [c, d] = co_await TaskPool::gatherSettled(futures[0], futures[1]);
    sum += c.value() + d.value();
    co_await pool.shutdown();
    Q_UNUSED(sum);
}

// The cancellation helpers of cancel.h (a QProcess, any awaitable, a sleep, the token).
QCoro::Task<int> cancellableUses(std::stop_token token, QProcess* process)
{
    co_await TaskPool::sleep(std::chrono::milliseconds(1), token);
    co_await TaskPool::untilCancelled(token);
    const bool ran = co_await TaskPool::cancellable(process, token);
    co_return co_await TaskPool::cancellable(twice(ran ? 1 : 0), token);
}

} // namespace

int main()
{
    TaskPool::TaskPoolExecutor pool(2);
    auto task = body(pool);
    auto cancellableTask = cancellableUses(std::stop_token(), nullptr);
    return 0;
}
