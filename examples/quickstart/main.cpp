// SPDX-License-Identifier: MIT
// The README's quick start: three workers, one submitted task, its result awaited.
#include <taskpool/taskpool.h>

#include <QCoreApplication>
#include <QCoro/QCoroTimer>
#include <QTimer>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

QCoro::Task<QString> fetchData(QString url)
{
    QTimer timer;
    timer.start(100ms); // stands for a network round trip
    co_await timer;
    co_return QStringLiteral("Data from %1").arg(url);
}

QCoro::Task<int> multiply(int x, int y)
{
    QTimer timer;
    timer.start(100ms);
    co_await timer;
    co_return x* y;
}

QCoro::Task<void> run()
{
    TaskPool::TaskPoolExecutor executor(3);

    auto future = executor.submit(fetchData, QStringLiteral("https://example.com"));
    std::printf("%s\n", qPrintable(co_await future));

    auto product = executor.submit(multiply, 6, 7);
    std::printf("6 x 7 = %d\n", co_await product);

    co_await executor.shutdown();
}

int main(int argc, char* argv[])
{
    QCoreApplication app(argc, argv);
    run().then([] { QCoreApplication::quit(); });
    return app.exec();
}
