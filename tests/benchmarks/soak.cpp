// SPDX-License-Identifier: MIT
// Soak run (not a test): pushes 10 million tasks through one TaskPoolExecutor, with a bounded
// number in flight, and prints the resident set size at 1M, 5M and 10M tasks (it must stay flat:
// the pool keeps nothing of a finished task) and the throughput.
//
//   taskpool_soak [tasks=10000000] [maxWorkers=8] [inFlight=4096]
#include <taskpool/taskpool.h>

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QFile>
#include <QTimer>

#include <cstdio>
#include <deque>
#include <unistd.h>

namespace {

long rssKiB()
{
    QFile statm(QStringLiteral("/proc/self/statm"));
    if (!statm.open(QIODevice::ReadOnly))
        return -1;
    const QList<QByteArray> fields = statm.readAll().split(' ');
    return fields.size() > 1 ? fields[1].toLong() * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

QCoro::Task<int> task(int n)
{
    if (n % 2)
        co_await TaskPool::detail::Yield {}; // half of them suspend once
    co_return n + 1;
}

QCoro::Task<int> soak(long total, int maxWorkers, int inFlight)
{
    TaskPool::TaskPoolExecutor pool(maxWorkers);
    std::deque<TaskPool::Future<int>> window;
    QElapsedTimer clock;
    clock.start();
    std::printf("soak: %ld tasks, maxWorkers %d, %d in flight; RSS at start %ld KiB\n", total, maxWorkers, inFlight,
                rssKiB());
    long done = 0;
    long checksumErrors = 0;
    long firstRss = 0;
    for (long n = 0; n < total || !window.empty();) {
        if (n < total && long(window.size()) < inFlight) {
            window.push_back(pool.submit(task, int(n % 1000000)));
            ++n;
            continue;
        }
        TaskPool::Future<int> f = std::move(window.front());
        window.pop_front();
        const int expected = int(done % 1000000) + 1;
        if (co_await f != expected)
            ++checksumErrors;
        ++done;
        if (done == 1'000'000 || done == 5'000'000 || done == 10'000'000 || done == total) {
            const long rss = rssKiB();
            if (!firstRss)
                firstRss = rss;
            const double seconds = double(clock.nsecsElapsed()) / 1e9;
            std::printf("  %9ld tasks: RSS %6ld KiB (%+ld KiB since 1M), %.2f s, %.0f tasks/s\n", done, rss,
                        rss - firstRss, seconds, double(done) / seconds);
            std::fflush(stdout);
        }
    }
    co_await pool.shutdown();
    std::printf("soak: %ld tasks, %ld wrong results, pool after shutdown: %d workers, %d active, %d pending\n", done,
                checksumErrors, pool.workerCount(), pool.activeCount(), pool.pendingCount());
    co_return checksumErrors == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv)
{
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    const long total = args.size() > 1 ? args[1].toLong() : 10'000'000;
    const int maxWorkers = args.size() > 2 ? args[2].toInt() : 8;
    const int inFlight = args.size() > 3 ? args[3].toInt() : 4096;
    int rc = 1;
    QTimer::singleShot(0, &app, [&] {
        [](long total, int maxWorkers, int inFlight, int* rc) -> QCoro::Task<void> {
            *rc = co_await soak(total, maxWorkers, inFlight);
            QCoreApplication::quit();
        }(total, maxWorkers, inFlight, &rc);
    });
    app.exec();
    return rc;
}
