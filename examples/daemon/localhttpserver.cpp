// SPDX-License-Identifier: MIT
#include "localhttpserver.h"

#include <QPointer>
#include <QTcpSocket>
#include <QTimer>

#include <algorithm>

namespace {
constexpr qsizetype maxHeaderBytes = 16 * 1024;
constexpr std::chrono::seconds idleTimeout { 30 };

QByteArray reasonPhrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}
} // namespace

//! One client connection: answers its requests one after another (HTTP/1.1 without pipelining
//! overlap), each after the server's latency.
class HttpConnection : public QObject {
public:
    HttpConnection(QTcpSocket* socket, LocalHttpServer* server) : QObject(server), m_socket(socket), m_server(server)
    {
        socket->setParent(this);
        m_idle.setSingleShot(true);
        m_idle.setInterval(idleTimeout);
        connect(&m_idle, &QTimer::timeout, socket, &QTcpSocket::disconnectFromHost);
        connect(socket, &QTcpSocket::readyRead, this, &HttpConnection::process);
        connect(socket, &QTcpSocket::disconnected, this, &QObject::deleteLater);
        m_idle.start();
        process();
    }
    ~HttpConnection() override
    {
        if (m_pending)
            m_server->requestEnded(false); // the client went away before its answer
    }

private:
    void process()
    {
        if (m_pending)
            return; // the next request waits for the answer to this one
        m_buffer += m_socket->readAll();
        const qsizetype end = m_buffer.indexOf("\r\n\r\n");
        if (end < 0) {
            if (m_buffer.size() > maxHeaderBytes)
                m_socket->abort();
            return;
        }
        const QByteArray head = m_buffer.left(end);
        m_buffer.remove(0, end + 4);

        const QList<QByteArray> lines = head.split('\n');
        const QList<QByteArray> requestLine = lines.value(0).trimmed().split(' ');
        m_keepAlive = requestLine.value(2) == "HTTP/1.1";
        bool hasBody = false;
        for (qsizetype i = 1; i < lines.size(); ++i) {
            const QByteArray line = lines[i].trimmed().toLower();
            if (line.startsWith("connection:"))
                m_keepAlive = m_keepAlive && !line.contains("close");
            else if (line.startsWith("content-length:") && line.mid(15).trimmed() != "0")
                hasBody = true;
            else if (line.startsWith("transfer-encoding:"))
                hasBody = true;
        }

        int status = 200;
        const QByteArray method = requestLine.value(0);
        const QByteArray path = requestLine.value(1);
        if (requestLine.size() != 3 || !path.startsWith('/')) {
            status = 400;
        } else if (method != "GET" && method != "HEAD") {
            status = 405;
        } else if (path.startsWith("/status/")) {
            bool ok = false;
            status = path.mid(8).toInt(&ok);
            if (!ok || status < 200 || status > 599)
                status = 400;
        }
        if (hasBody || status == 400 || status == 405)
            m_keepAlive = false; // request bodies are not read: end the connection after the answer

        m_pending = true;
        m_idle.stop();
        m_server->requestStarted();
        QTimer::singleShot(m_server->latency(), this,
                           [this, status, path, head = method == "HEAD"] { answer(status, path, head); });
    }

    void answer(int status, const QByteArray& path, bool headOnly)
    {
        if (m_server->isHeld())
            return; // pending until the client goes away
        const QByteArray body = status == 200 ? "item " + path + "\n" : reasonPhrase(status) + "\n";
        QByteArray response = "HTTP/1.1 " + QByteArray::number(status) + ' ' + reasonPhrase(status) + "\r\n";
        response += "Content-Type: text/plain\r\nContent-Length: " + QByteArray::number(body.size()) + "\r\n";
        response += m_keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
        if (!headOnly)
            response += body;
        m_socket->write(response);
        m_pending = false;
        m_server->requestEnded(true);
        if (!m_keepAlive) {
            m_socket->disconnectFromHost();
            return;
        }
        m_idle.start();
        if (!m_buffer.isEmpty() || m_socket->bytesAvailable() > 0)
            process();
    }

    QTcpSocket* m_socket;
    LocalHttpServer* m_server;
    QTimer m_idle; // an idle connection is closed after a while
    QByteArray m_buffer;
    bool m_pending = false;
    bool m_keepAlive = true;
};

LocalHttpServer::LocalHttpServer(std::chrono::milliseconds latency, QObject* parent) :
    QObject(parent), m_latency(std::max(latency, std::chrono::milliseconds(0)))
{
    connect(&m_server, &QTcpServer::newConnection, this, [this] {
        while (QTcpSocket* socket = m_server.nextPendingConnection())
            new HttpConnection(socket, this);
    });
}

LocalHttpServer::~LocalHttpServer()
{
    // The connections (our only children) report to this object while they go: end them first.
    const QObjectList connections = children();
    qDeleteAll(connections);
}

bool LocalHttpServer::listen()
{
    // 127.0.0.1 only, port 0: the system picks a free port.
    return m_server.listen(QHostAddress::LocalHost, 0);
}

QUrl LocalHttpServer::baseUrl() const
{
    QUrl url;
    url.setScheme(QStringLiteral("http"));
    url.setHost(QStringLiteral("127.0.0.1"));
    url.setPort(m_server.serverPort());
    return url;
}

void LocalHttpServer::requestStarted()
{
    ++m_inFlight;
    m_peakInFlight = std::max(m_peakInFlight, m_inFlight);
    Q_EMIT countsChanged();
}

void LocalHttpServer::requestEnded(bool answered)
{
    --m_inFlight;
    if (answered)
        ++m_served;
    else
        ++m_aborted;
    Q_EMIT countsChanged();
}
