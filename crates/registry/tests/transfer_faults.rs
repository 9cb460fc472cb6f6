//! Transfer faults against a scripted HTTP server on 127.0.0.1: a blob whose connection drops
//! halfway is completed with a `Range` request (not fetched again from the start), transient
//! 503s are retried, and a blob that ends early is refused as truncated naming its digest.
use berth_registry::blob::BlobReader;
use berth_registry::client::RegistryClient;
use berth_registry::Settings;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// What the fake registry does with the n-th blob request.
#[derive(Clone, Copy)]
enum Reply {
    /// 200 with the full length announced, but only this many bytes before closing.
    Cut(usize),
    /// 503 Service Unavailable.
    Unavailable,
    /// Serve honestly (206 for a Range request).
    Honest,
}

struct Fake {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

fn serve(blob: Vec<u8>, script: Vec<Reply>) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        let mut blob_requests = 0usize;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() || !line.starts_with("GET") {
                continue; // a TLS hello: this server speaks plain HTTP only
            }
            let mut range_from = None;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range_from = v.trim().trim_end_matches('-').parse::<usize>().ok();
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            seen.lock().expect("log").push(format!(
                "{path} range={}",
                range_from.map(|r| r.to_string()).unwrap_or_default()
            ));
            if path == "/v2/" {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
                continue;
            }
            let reply = script.get(blob_requests).copied().unwrap_or(Reply::Honest);
            blob_requests += 1;
            match reply {
                Reply::Unavailable => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
                    );
                }
                Reply::Cut(n) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                        blob.len()
                    );
                    let _ = stream.write_all(&blob[..n]);
                }
                Reply::Honest => {
                    let from = range_from.unwrap_or(0);
                    let status = if from > 0 {
                        "206 Partial Content"
                    } else {
                        "200 OK"
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
                        blob.len() - from
                    );
                    let _ = stream.write_all(&blob[from..]);
                }
            }
            let _ = stream.flush();
        }
    });
    Fake { port, requests }
}

fn blob() -> (Vec<u8>, String) {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
    (data, digest)
}

fn read_all(fake: &Fake, digest: &str, size: u64) -> Result<Vec<u8>, String> {
    let client = RegistryClient::connect(
        &format!("127.0.0.1:{}", fake.port),
        &Settings::default(),
        None,
    )
    .map_err(|e| e.to_string())?;
    let tick = |_| {};
    let mut r = BlobReader::new(&client, "t/x", digest, size, &tick);
    let mut out = Vec::new();
    let read = r.read_to_end(&mut out);
    if let Err(e) = read {
        return Err(r
            .take_failure()
            .map(|f| f.to_string())
            .unwrap_or(e.to_string()));
    }
    r.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[test]
fn a_dropped_blob_download_resumes_with_a_range_request() {
    let (data, digest) = blob();
    let fake = serve(data.clone(), vec![Reply::Cut(100_000), Reply::Honest]);
    let got = read_all(&fake, &digest, data.len() as u64).expect("blob");
    assert_eq!(got, data);
    let log = fake.requests.lock().expect("log").clone();
    let blob_requests: Vec<_> = log.iter().filter(|l| l.contains("/blobs/")).collect();
    assert_eq!(blob_requests.len(), 2, "{log:?}");
    assert!(blob_requests[1].ends_with("range=100000"), "{log:?}");
}

#[test]
fn transient_errors_are_retried() {
    let (data, digest) = blob();
    let fake = serve(data.clone(), vec![Reply::Unavailable, Reply::Unavailable]);
    let got = read_all(&fake, &digest, data.len() as u64).expect("blob");
    assert_eq!(got, data);
}

#[test]
fn a_blob_that_keeps_ending_early_is_refused_as_truncated() {
    let (data, digest) = blob();
    let fake = serve(data.clone(), vec![Reply::Cut(10); 20]);
    let err = read_all(&fake, &digest, data.len() as u64).expect_err("truncated");
    assert!(err.contains(&digest) && err.contains("truncated"), "{err}");
}
