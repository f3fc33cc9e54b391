// SPDX-License-Identifier: MIT
#include "sigintwatcher.h"

#include <QSocketNotifier>

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <unistd.h>

namespace {
int pipeFds[2] = { -1, -1 };

extern "C" void onSigint(int)
{
    const int saved = errno; // only async-signal-safe calls in here
    const char byte = 1;
    [[maybe_unused]] const auto written = ::write(pipeFds[1], &byte, 1);
    errno = saved;
}
} // namespace

SigintWatcher::SigintWatcher(QObject* parent) : QObject(parent)
{
    if (pipeFds[0] != -1 || ::pipe2(pipeFds, O_CLOEXEC | O_NONBLOCK) != 0)
        return; // one watcher per process
    struct sigaction action = {};
    action.sa_handler = onSigint;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (::sigaction(SIGINT, &action, nullptr) != 0)
        return;
    m_notifier = new QSocketNotifier(pipeFds[0], QSocketNotifier::Read, this);
    connect(m_notifier, &QSocketNotifier::activated, this, &SigintWatcher::onReadable);
}

SigintWatcher::~SigintWatcher()
{
    if (!m_notifier)
        return;
    std::signal(SIGINT, SIG_DFL);
    delete m_notifier;
    ::close(pipeFds[0]);
    ::close(pipeFds[1]);
    pipeFds[0] = pipeFds[1] = -1;
}

void SigintWatcher::onReadable()
{
    char bytes[16];
    while (::read(pipeFds[0], bytes, sizeof bytes) > 0) { }
    std::signal(SIGINT, SIG_DFL); // a second Ctrl-C ends the process the usual way
    Q_EMIT interrupted();
}
