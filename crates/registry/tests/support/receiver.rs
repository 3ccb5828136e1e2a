//! A webhook receiver on 127.0.0.1 for the tests: it records every delivery, answers 500 to the first few of a
//! chosen event type (to exercise retries) and 200 otherwise, and verifies signatures the way
//! `docs/registry-webhooks.md` tells a receiver to, written from that page rather than from the registry's code.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// One request as received.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
    /// The status answered.
    pub answered: u16,
}

impl Delivery {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The CloudEvents `type`.
    pub fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_string()
    }
}

/// A running receiver.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    /// Listens; the first `failures` deliveries whose CloudEvents type is `failing_type` get a 500.
    pub fn start(failing_type: &str, failures: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let log = deliveries.clone();
        let failing_type = failing_type.to_string();
        std::thread::spawn(move || {
            let mut failed = 0;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = BTreeMap::new();
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.trim_end().split_once(':') {
                        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
                    }
                }
                let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let kind = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["type"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let answered = if kind == failing_type && failed < failures {
                    failed += 1;
                    500
                } else {
                    200
                };
                log.lock().unwrap().push(Delivery { headers, body, answered });
                let reason = if answered == 200 { "OK" } else { "Internal Server Error" };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {answered} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, deliveries }
    }

    /// Everything received so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }

    /// Waits (60 s at most) until a delivery of `kind` (the CloudEvents type) about `subject` was answered 200.
    pub fn wait_for(&self, kind: &str, subject: &str) -> Delivery {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(d) = self
                .deliveries()
                .into_iter()
                .find(|d| d.answered == 200 && d.kind() == kind && d.json()["subject"] == subject)
            {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} for {subject} in 60 s; received: {:?}",
                self.deliveries()
                    .iter()
                    .map(|d| (d.kind(), d.json()["subject"].clone(), d.answered))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The receiver's side of the documented scheme: the secret is `whsec_` + base64 key; the signature is
/// `v1,` + base64 HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`; the timestamp must be within 5
/// minutes of `now`; an id already accepted is a replay.
pub fn verify(secret: &str, delivery: &Delivery, now: i64, seen: &mut HashSet<String>) -> Result<(), String> {
    let key = STANDARD
        .decode(secret.trim().strip_prefix("whsec_").ok_or("secret without whsec_")?)
        .map_err(|e| e.to_string())?;
    let header = |name: &str| delivery.headers.get(name).cloned().ok_or(format!("no {name} header"));
    let (id, timestamp, signatures) = (header("webhook-id")?, header("webhook-timestamp")?, header("webhook-signature")?);
    let at: i64 = timestamp.parse().map_err(|_| "bad timestamp".to_string())?;
    if (now - at).abs() > 300 {
        return Err(format!("timestamp {at} is {} s from now", now - at));
    }
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(&delivery.body);
    let expected = STANDARD.encode(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), &content).as_ref());
    if !signatures.split(' ').any(|s| s.strip_prefix("v1,") == Some(expected.as_str())) {
        return Err("signature mismatch".into());
    }
    if !seen.insert(id.clone()) {
        return Err(format!("replayed delivery {id}"));
    }
    Ok(())
}
