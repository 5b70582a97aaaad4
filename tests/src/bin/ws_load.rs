//! WebSocket load client for `tests/load/ws.sh`: logs in N sandbox users, opens one
//! socket each, joins them all to one room, broadcasts M messages into it from one
//! more socket, and reports deliveries per second, delivery latency (publish →
//! received, one clock: the same process) and the app's memory per socket.
//!
//! `ws-load <base URL> <connections> <messages> <interval ms> [app pid]`

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use weapp_e2e::ws::{Ws, connect, next_json, send};

const ROOM: &str = "live:load";

/// Microseconds since the run began: what a message carries as its send time.
fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// CPU seconds used so far by process `pid` (`self` for this one): user + system.
fn cpu_s(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The `sent_us` of a room message, read without parsing the frame: the client must
/// cost little next to the server on the same two cores.
fn sent_us(text: &str) -> Option<u64> {
    let at = text.find("\"sent_us\":")? + "\"sent_us\":".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn login(client: &reqwest::Client, base: &str, openid: &str) -> Result<String, String> {
    let code: Value = client
        .post(format!("{base}/__sandbox/login"))
        .json(&json!({ "openid": openid }))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let login: Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "code": code["code"] }))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    login["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("login failed: {login}"))
}

async fn joined(base: &str, token: &str) -> Result<Ws, String> {
    let mut ws = connect(base, token).await?;
    send(&mut ws, &json!({"type": "join", "room": ROOM})).await?;
    let ack = next_json(&mut ws, Duration::from_secs(30)).await?;
    match ack["type"] == "ack" {
        true => Ok(ws),
        false => Err(format!("join refused: {ack}")),
    }
}

/// Reads until `expected` room messages came (or 30 s of silence); their latencies
/// in microseconds and when the last arrived.
async fn receive(mut ws: Ws, expected: usize) -> (Vec<u64>, Option<u64>) {
    let mut latencies = Vec::with_capacity(expected);
    let mut last = None;
    while latencies.len() < expected {
        let next = tokio::time::timeout(Duration::from_secs(30), ws.next()).await;
        let Ok(Some(Ok(Message::Text(text)))) = next else {
            match next {
                Ok(Some(Ok(_))) => continue,
                _ => break,
            }
        };
        if let Some(sent) = sent_us(&text) {
            let now = now_us();
            latencies.push(now.saturating_sub(sent));
            last = Some(now);
        }
    }
    let _ = ws.close(None).await;
    (latencies, last)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: ws-load <base URL> <connections> <messages> <interval ms> [app pid]";
    let base = args.get(1).ok_or(usage)?.clone();
    let number = |i: usize| -> Result<u64, String> {
        args.get(i)
            .ok_or(usage)?
            .parse()
            .map_err(|_| usage.to_owned())
    };
    let (connections, messages, interval_ms) =
        (number(2)? as usize, number(3)? as usize, number(4)?);
    let pid = args.get(5).and_then(|p| p.parse().ok());
    now_us();

    let client = reqwest::Client::new();
    let started = Instant::now();
    let tokens: Vec<String> = stream::iter(0..=connections)
        .map(|i| {
            let (client, base) = (client.clone(), base.clone());
            async move { login(&client, &base, &format!("o_ws_load_{i}")).await }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    println!(
        "logged in {} users in {:.1} s",
        tokens.len(),
        started.elapsed().as_secs_f64()
    );

    let rss_before = rss_kib(pid);
    let started = Instant::now();
    let mut sockets: Vec<Ws> = stream::iter(tokens[1..].to_vec())
        .map(|token| {
            let base = base.clone();
            async move { joined(&base, &token).await }
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let connect_s = started.elapsed().as_secs_f64();
    // Let the app settle, then read its memory with every socket open and idle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = rss_kib(pid);
    println!(
        "{} sockets open and joined in {connect_s:.1} s ({:.0}/s)",
        sockets.len(),
        sockets.len() as f64 / connect_s
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        println!(
            "app RSS {before} KiB before, {after} KiB with the sockets: {:.1} KiB per socket",
            after.saturating_sub(before) as f64 / sockets.len() as f64
        );
    }

    let receivers: Vec<_> = sockets
        .drain(..)
        .map(|ws| tokio::spawn(receive(ws, messages)))
        .collect();
    let mut publisher = joined(&base, &tokens[0]).await?;
    let app_cpu = pid.map(|p: u32| p.to_string());
    let cpu_before = (app_cpu.as_deref().and_then(cpu_s), cpu_s("self"));
    let first_sent = now_us();
    let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms.max(1)));
    for seq in 0..messages {
        ticker.tick().await;
        let frame =
            json!({"type": "publish", "room": ROOM, "data": {"seq": seq, "sent_us": now_us()}});
        send(&mut publisher, &frame).await?;
    }
    let publish_s = (now_us() - first_sent) as f64 / 1e6;
    // The publisher's own acks and copies are drained, so its socket keeps up.
    let drain = tokio::spawn(async move {
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_secs(5), publisher.next()).await
        {}
    });

    let mut latencies = Vec::with_capacity(connections * messages);
    let mut last_delivery = first_sent;
    for receiver in receivers {
        let (mut got, last) = receiver.await.map_err(|e| e.to_string())?;
        latencies.append(&mut got);
        last_delivery = last_delivery.max(last.unwrap_or(0));
    }
    drain.abort();
    let cpu_after = (app_cpu.as_deref().and_then(cpu_s), cpu_s("self"));
    latencies.sort_unstable();
    let expected = connections * messages;
    let window_s = (last_delivery - first_sent) as f64 / 1e6;
    println!(
        "broadcast: {messages} messages over {publish_s:.1} s to {connections} sockets: {} of {expected} delivered ({} lost)",
        latencies.len(),
        expected - latencies.len()
    );
    println!(
        "deliveries: {:.0}/s over {window_s:.2} s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len() as f64 / window_s,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    if let ((Some(app0), Some(me0)), (Some(app1), Some(me1))) = (cpu_before, cpu_after) {
        println!(
            "CPU during the broadcast: app {:.2} s ({:.2} µs per delivery), this client {:.2} s, over {window_s:.2} s on {} cores",
            app1 - app0,
            (app1 - app0) * 1e6 / latencies.len().max(1) as f64,
            me1 - me0,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
    }
    match latencies.len() == expected {
        true => Ok(()),
        false => Err(format!("{} deliveries missing", expected - latencies.len())),
    }
}
