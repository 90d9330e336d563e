//! The transport: a TCP or Unix-domain stream, and how to reach one again (for
//! cancel requests).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ferropg_core::config::Keepalives;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{tcp, unix, TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

use crate::config::Host;
use crate::Error;

/// A connected stream to the server.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The address a socket was connected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Socket {
    /// The server's certificate (DER), over TLS: what SCRAM channel binding binds to.
    pub(crate) fn server_certificate(&self) -> Option<&[u8]> {
        match self {
            Socket::Tls(s) => s
                .get_ref()
                .1
                .peer_certificates()?
                .first()
                .map(|c| c.as_ref()),
            Socket::Tcp(_) | Socket::Unix(_) => None,
        }
    }

    /// Reads what is available into `buf` (0 at end of stream). Cancel-safe.
    pub(crate) async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read_buf(buf).await,
            Socket::Unix(s) => s.read_buf(buf).await,
            Socket::Tls(s) => s.read_buf(buf).await,
        }
    }

    /// Writes part of `buf`, advancing it past what was written. Cancel-safe.
    pub(crate) async fn write_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write_buf(buf).await,
            Socket::Unix(s) => s.write_buf(buf).await,
            Socket::Tls(s) => {
                let n = s.write_buf(buf).await?;
                // The TLS layer may hold the record back until flushed.
                s.flush().await?;
                Ok(n)
            }
        }
    }

    /// Reads what has already arrived into `buf`, without waiting
    /// (`WouldBlock` when nothing has).
    pub(crate) fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_read_buf(buf),
            Socket::Unix(s) => s.try_read_buf(buf),
            Socket::Tls(s) => {
                // TLS streams have no try_read: poll once, with nobody to wake.
                let mut chunk = [0u8; 8192];
                let mut read = ReadBuf::new(&mut chunk);
                let mut cx = Context::from_waker(Waker::noop());
                match Pin::new(s.as_mut()).poll_read(&mut cx, &mut read) {
                    Poll::Ready(Ok(())) => {
                        buf.extend_from_slice(read.filled());
                        Ok(read.filled().len())
                    }
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }

    /// Writes what the kernel takes right now, without waiting.
    pub(crate) fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_write(buf),
            Socket::Unix(s) => s.try_write(buf),
            Socket::Tls(s) => {
                let mut cx = Context::from_waker(Waker::noop());
                let mut stream = Pin::new(s.as_mut());
                match stream.as_mut().poll_write(&mut cx, buf) {
                    Poll::Ready(result) => {
                        let _ = stream.poll_flush(&mut cx);
                        result
                    }
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }

    /// Writes part of `buf` (a [`Client`](crate::Client)'s driver, which polls by
    /// hand).
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    /// Pushes out what the TLS layer holds back (a no-op for plain streams).
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    /// Shuts down the write half, polled by hand.
    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    /// Shuts down the write half.
    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.shutdown().await,
            Socket::Unix(s) => s.shutdown().await,
            Socket::Tls(s) => s.shutdown().await,
        }
    }
}

/// The read half of a TCP or Unix stream a [`Client`](crate::Client)'s driver
/// reads alone (see [`PlainWriter`] for why the stream is split).
#[derive(Debug)]
pub(crate) enum PlainReader {
    Tcp(tcp::OwnedReadHalf),
    Unix(unix::OwnedReadHalf),
}

impl PlainReader {
    /// Reads what has arrived into `buf` (0 at end of stream).
    pub(crate) fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        // `read_buf` takes nothing until bytes are there: a read that is not ready
        // yet is dropped here and started again at the next poll. (Through
        // `AsyncRead`, a short read clears the readiness: no extra system call
        // that would find nothing.)
        match self {
            PlainReader::Tcp(s) => pin!(s.read_buf(buf)).poll(cx),
            PlainReader::Unix(s) => pin!(s.read_buf(buf)).poll(cx),
        }
    }
}

/// The write half of a TCP or Unix stream, which a [`Client`](crate::Client)'s
/// driver and its callers share (behind the client's lock): a caller whose request
/// is all there is to write writes it itself, without waiting (`try_write`), and
/// the driver writes the rest, registered for writability (`poll_write`). Dropping
/// it shuts the write half down. (A TLS stream is not split: the driver alone
/// touches it.)
#[derive(Debug)]
pub(crate) enum PlainWriter {
    Tcp(tcp::OwnedWriteHalf),
    Unix(unix::OwnedWriteHalf),
}

impl PlainWriter {
    /// Writes part of `buf`, registering the task to be woken when it can go on.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            PlainWriter::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            PlainWriter::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    /// Writes what the kernel takes right now, without waiting and without
    /// registering anyone (`WouldBlock` when it takes nothing).
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            PlainWriter::Tcp(s) => s.try_write(buf),
            PlainWriter::Unix(s) => s.try_write(buf),
        }
    }
}

impl Socket {
    /// The stream split for a [`Client`](crate::Client), or the TLS stream back.
    pub(crate) fn into_split(self) -> Result<(PlainReader, PlainWriter), Socket> {
        match self {
            Socket::Tcp(s) => {
                let (r, w) = s.into_split();
                Ok((PlainReader::Tcp(r), PlainWriter::Tcp(w)))
            }
            Socket::Unix(s) => {
                let (r, w) = s.into_split();
                Ok((PlainReader::Unix(r), PlainWriter::Unix(w)))
            }
            tls @ Socket::Tls(_) => Err(tls),
        }
    }
}

impl Endpoint {
    /// Connects to this exact address.
    pub(crate) async fn connect(&self) -> Result<Socket, Error> {
        match self {
            Endpoint::Tcp(addr) => {
                let s = TcpStream::connect(addr)
                    .await
                    .map_err(|e| Error::io(format!("could not connect to {addr}"), e))?;
                // Requests are written whole; Nagle would only delay them.
                let _ = s.set_nodelay(true);
                Ok(Socket::Tcp(s))
            }
            Endpoint::Unix(path) => UnixStream::connect(path)
                .await
                .map(Socket::Unix)
                .map_err(|e| Error::io(format!("could not connect to {}", path.display()), e)),
        }
    }
}

/// The path of the server's socket in directory `dir` (the core's rule).
fn socket_path(dir: &str, port: u16) -> PathBuf {
    PathBuf::from(ferropg_core::config::socket_path(dir, port))
}

/// Applies libpq's TCP keepalive settings to a connected stream.
fn set_keepalives(stream: &TcpStream, keepalives: &Keepalives) -> io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    if !keepalives.enabled {
        return socket.set_keepalive(false);
    }
    let mut params = socket2::TcpKeepalive::new();
    if let Some(idle) = keepalives.idle {
        params = params.with_time(Duration::from_secs(idle.into()));
    }
    if let Some(interval) = keepalives.interval {
        params = params.with_interval(Duration::from_secs(interval.into()));
    }
    if let Some(count) = keepalives.count {
        params = params.with_retries(count);
    }
    socket.set_tcp_keepalive(&params)
}

/// Connects to `host:port`, trying each address a host name resolves to; a TCP
/// stream gets the `keepalives` settings.
pub(crate) async fn connect(
    host: &Host,
    port: u16,
    keepalives: &Keepalives,
) -> Result<(Socket, Endpoint), Error> {
    match host {
        Host::Unix(dir) if dir.starts_with('@') => Err(Error::config(format!(
            "abstract Unix sockets ({dir}) are not supported"
        ))),
        Host::Unix(dir) => {
            let endpoint = Endpoint::Unix(socket_path(dir, port));
            Ok((endpoint.connect().await?, endpoint))
        }
        Host::Tcp(name) => {
            let addrs = tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|e| Error::io(format!("could not resolve {name:?}"), e))?;
            let mut last = None;
            for addr in addrs {
                let endpoint = Endpoint::Tcp(addr);
                match endpoint.connect().await {
                    Ok(socket) => {
                        if let Socket::Tcp(stream) = &socket {
                            set_keepalives(stream, keepalives)
                                .map_err(|e| Error::io("setting TCP keepalives", e))?;
                        }
                        return Ok((socket, endpoint));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                Error::io(
                    format!("could not resolve {name:?}"),
                    io::Error::new(io::ErrorKind::NotFound, "no addresses"),
                )
            }))
        }
    }
}
