// SPDX-License-Identifier: MIT
#include "localhttpserver.h"

#include <QTcpSocket>
#include <QTimer>

//! One client connection: reads a request, answers it after the server's latency, then reads the
//! next one. Its end before an answer counts the request aborted.
class HttpConnection : public QObject {
public:
    HttpConnection(QTcpSocket* socket, LocalHttpServer* server) : QObject(server), m_socket(socket), m_server(server)
    {
        socket->setParent(this);
        connect(socket, &QTcpSocket::readyRead, this, &HttpConnection::readRequest);
        connect(socket, &QTcpSocket::disconnected, this, &QObject::deleteLater);
        readRequest();
    }
    ~HttpConnection() override
    {
        if (m_pending)
            m_server->requestEnded(false); // the client went away before its answer
    }

private:
    void readRequest()
    {
        if (m_pending)
            return; // the next request waits for the answer to this one
        m_buffer += m_socket->readAll();
        const qsizetype end = m_buffer.indexOf("\r\n\r\n");
        if (end < 0) {
            if (m_buffer.size() > 16 * 1024)
                m_socket->abort();
            return;
        }
        const QList<QByteArray> requestLine = m_buffer.left(m_buffer.indexOf("\r\n")).split(' ');
        m_buffer.remove(0, end + 4);
        const bool ok = requestLine.size() == 3 && requestLine[0] == "GET" && requestLine[1].startsWith('/');

        m_pending = true;
        m_server->requestStarted();
        QTimer::singleShot(m_server->latency(), this, [this, ok, path = requestLine.value(1)] { answer(ok, path); });
    }

    void answer(bool ok, const QByteArray& path)
    {
        const QByteArray body = ok ? "item " + path + "\n" : QByteArray("Bad Request\n");
        QByteArray response = ok ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n";
        response += "Content-Type: text/plain\r\nContent-Length: " + QByteArray::number(body.size()) + "\r\n\r\n";
        m_socket->write(response + body);
        m_pending = false;
        m_server->requestEnded(true);
        if (!ok)
            m_socket->disconnectFromHost(); // what followed a bad request is not read
        else if (!m_buffer.isEmpty() || m_socket->bytesAvailable() > 0)
            readRequest();
    }

    QTcpSocket* m_socket;
    LocalHttpServer* m_server;
    QByteArray m_buffer;
    bool m_pending = false;
};

LocalHttpServer::LocalHttpServer(std::chrono::milliseconds latency, QObject* parent) :
    QObject(parent), m_latency(latency)
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
