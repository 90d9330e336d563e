//! A web handler on a [`ferropg::Pool`]: a tiny HTTP server (plain tokio, no
//! framework) whose handler takes a connection from the pool for each request.
//!
//! ```sh
//! PGDSN=postgresql://postgres@localhost/postgres cargo run -p ferropg --example web_pool
//! PGDSN=... cargo run -p ferropg --example web_pool -- --serve 127.0.0.1:8080
//! ```
//!
//! Without `--serve` it starts the server on a free port, sends it 200 requests
//! from 50 tasks at once, checks every answer and exits. The pool holds 8
//! connections: the requests share them.

use std::sync::Arc;

use ferropg::{Config, Error, Pool};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The handler: `GET /square/<n>` answers with n² computed by the server.
async fn handle(pool: &Pool, path: &str) -> Result<(u16, String), Error> {
    let Some(n) = path
        .strip_prefix("/square/")
        .and_then(|n| n.parse::<i64>().ok())
    else {
        return Ok((404, "try /square/<integer>\n".into()));
    };
    // Waits for a free connection; dropping `client` gives it back (reset first).
    let client = pool.acquire().await?;
    let row = client
        .query_one("select $1::int8 * $1::int8, pg_backend_pid()", &[&n])
        .await?;
    let (square, pid): (i64, i32) = (row.get(0), row.get(1));
    Ok((200, format!("{square} (backend {pid})\n")))
}

/// Reads one request line, answers it, closes the connection.
async fn serve_one(pool: Arc<Pool>, stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    // Skip the headers.
    let mut line = String::new();
    while reader.read_line(&mut line).await? > 2 {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match handle(&pool, path).await {
        Ok(answer) => answer,
        Err(e) => (500, format!("database error: {e}\n")),
    };
    let response = format!(
        "HTTP/1.1 {status} {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        if status == 200 { "OK" } else { "Error" },
        body.len()
    );
    reader.get_mut().write_all(response.as_bytes()).await
}

async fn serve(pool: Arc<Pool>, listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let pool = Arc::clone(&pool);
        tokio::spawn(async move {
            if let Err(e) = serve_one(pool, stream).await {
                eprintln!("request failed: {e}");
            }
        });
    }
}

/// A plain HTTP GET, returning the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: example\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config: Config = std::env::var("PGDSN").unwrap_or_default().parse()?;
    let pool = Arc::new(
        Pool::builder(config)
            .min_size(2)
            .max_size(8)
            .build()
            .await?,
    );

    let args: Vec<String> = std::env::args().collect();
    if let Some(addr) = args
        .iter()
        .position(|a| a == "--serve")
        .and_then(|i| args.get(i + 1))
    {
        println!("serving on http://{addr}/square/12");
        serve(pool, TcpListener::bind(addr).await?).await?;
        return Ok(());
    }

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(Arc::clone(&pool), listener));
    let mut clients = Vec::new();
    for task in 0..50i64 {
        clients.push(tokio::spawn(async move {
            for i in 0..4 {
                let n = task * 4 + i;
                let body = get(addr, &format!("/square/{n}")).await?;
                let square: i64 = body
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .parse()
                    .unwrap_or(-1);
                assert_eq!(square, n * n, "{body}");
            }
            Ok::<(), std::io::Error>(())
        }));
    }
    for client in clients {
        client.await??;
    }
    println!(
        "200 requests answered by {} pooled connections (at most {})",
        pool.size(),
        pool.max_size()
    );
    assert!(get(addr, "/nothing").await?.starts_with("try"));
    pool.close().await;
    Ok(())
}
