//! The accept loop the test proxies share: a listener on 127.0.0.1 on a thread of
//! its own with its own runtime, so it keeps serving whatever the test's runtime
//! is doing, each connection handed to a task of its own.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// A running accept loop; dropped, it stops (its connections' tasks with it).
pub struct ListenerThread {
    addr: SocketAddr,
    stop: Arc<Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ListenerThread {
    /// Listens on a free port and runs `serve` for each connection.
    pub fn start<F, Fut>(serve: F) -> ListenerThread
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = Arc::new(Notify::new());
        let stopped = Arc::clone(&stop);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    tokio::select! {
                        _ = stopped.notified() => return,
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            tokio::spawn(serve(client));
                        }
                    }
                }
            });
        });
        ListenerThread {
            addr: addr_rx.recv().expect("proxy address"),
            stop,
            thread: Some(thread),
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ListenerThread {
    fn drop(&mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
