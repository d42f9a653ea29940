//! scylla-emulator: a multi-node, multi-shard CQL v4 server that real
//! ScyllaDB drivers accept, and that counts how they route.

mod cluster;
mod config;
mod engine;
mod fault;
mod http;
mod metrics;
mod server;
mod tls;
mod topology;

use std::io::Write;

use config::Config;

fn main() {
    let config = match Config::from_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if let Some(dir) = &config.tls_generate {
        if let Err(message) = tls::generate(dir, &config) {
            eprintln!("{message}");
            std::process::exit(1);
        }
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = runtime.block_on(run(config));
    std::process::exit(code);
}

async fn run(config: Config) -> i32 {
    engine::values::set_write_clock_offset_ms(config.write_clock_offset_ms);
    let cluster = cluster::Cluster::new(config);
    if let Err(e) = server::start(cluster.clone()).await {
        eprintln!("scylla-emulator: {e}");
        return 1;
    }
    if let Err(e) = http::start(cluster.clone()).await {
        eprintln!("scylla-emulator: {e}");
        return 1;
    }
    let c = &cluster.config;
    println!(
        "READY nodes={} shards={} addresses={}..{} port={} shard_aware_port={} metrics_port={} tablets={} tls_port={} tls_shard_aware_port={}",
        c.nodes,
        c.shards,
        c.node_ip(0),
        c.node_ip(c.nodes - 1),
        c.port,
        c.shard_aware_port,
        c.metrics_port,
        c.tablets,
        c.tls.as_ref().map_or(0, |t| t.port),
        c.tls.as_ref().map_or(0, |t| t.shard_aware_port),
    );
    let _ = std::io::stdout().flush();
    wait_for_signal().await;
    0
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
