//! A TCP proxy in front of PostgreSQL that a test can cut and restore, to
//! simulate the database going away under a running server without touching
//! the real database server other tests use.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards connections from its own port to `upstream` while up.
pub struct Proxy {
    upstream: SocketAddr,
    address: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding from a free local port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let mut proxy = Self {
            upstream,
            address,
            acceptor: None,
        };
        proxy.serve(listener);
        proxy
    }

    /// The port servers should connect to.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The database "goes down": open connections are dropped and new ones refused.
    pub fn cut(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
        }
    }

    /// The database "comes back" on the same port.
    pub async fn restore(&mut self) {
        let listener = TcpListener::bind(self.address).await.expect("rebind proxy");
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream;
        self.acceptor = Some(tokio::spawn(async move {
            // Connections live in this set: aborting the acceptor drops them all.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}
