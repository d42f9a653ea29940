//! scylla-communicator: one shard-aware, tablet-aware session of
//! libscylla_shard per machine, served as standard CQL v4 on a Unix socket
//! (and optionally TCP) to every local client.
//!
//! A separate binary crate so the library's shared object carries no
//! daemon: it uses the library's session, routing, pools and codec through
//! their Rust API, and the C ABI stays what applications link.

mod client;
mod config;
mod json_front;
mod json_values;
mod keyspaces;
mod listeners;
mod local;
mod metrics;
mod prepared;
mod requests;
mod server;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match config::from_args(&args) {
        Ok(config::Invocation::Run(config)) => config,
        Ok(config::Invocation::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("scylla-communicator: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_max_level(config.log_level)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("scylla-communicator: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run(*config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scylla-communicator: {e}");
            ExitCode::FAILURE
        }
    }
}
