//! `make fuzz`: mutates valid frames and values for a while and saves
//! every input that panicked or blew the memory budget into the corpus.
//!
//! ```text
//! fuzz-decoders [--seconds N] [--iterations N] [--seed N] [--corpus DIR]
//! fuzz-decoders --explain FILE    # one input: its verdict, and the stack
//!                                 # of every allocation over its budget
//! ```
//! The seed defaults to the clock and is printed, so a run can be repeated.

use std::path::PathBuf;
use std::time::Duration;

use scylla_shard_fuzz::{crash, fuzz, save, Config};

fn main() {
    let mut seconds = 60u64;
    let mut iterations = None;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--seconds" => {
                seconds = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--seconds takes a number"))
            }
            "--iterations" => {
                iterations = Some(
                    value()
                        .parse()
                        .unwrap_or_else(|_| usage("--iterations takes a number")),
                )
            }
            "--seed" => {
                seed = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--seed takes a number"))
            }
            "--corpus" => corpus = PathBuf::from(value()),
            "--explain" => explain(&PathBuf::from(value())),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if let Err(e) = std::fs::create_dir_all(&corpus) {
        usage(&format!("cannot create {}: {e}", corpus.display()));
    }
    crash::arm(&corpus);
    println!(
        "fuzzing the decoders for {seconds} s, seed {seed}, corpus {}",
        corpus.display()
    );
    let report = fuzz(&Config {
        seed,
        iterations,
        duration: Some(Duration::from_secs(seconds)),
        max_findings: 50,
    });
    println!(
        "{} inputs in {:.1} s ({:.0}/s), {} distinct outcomes, pool of {}",
        report.iterations,
        report.elapsed.as_secs_f64(),
        report.iterations as f64 / report.elapsed.as_secs_f64().max(1e-9),
        report.outcomes,
        report.pool
    );
    if report.findings.is_empty() {
        println!("no findings");
        return;
    }
    println!(
        "{} findings (saved in the corpus; commit them so make test replays them):",
        report.findings.len()
    );
    for finding in &report.findings {
        match save(&corpus, finding) {
            Ok(path) => println!("  {}: {finding}", path.display()),
            Err(e) => println!("  (not saved: {e}) {finding}"),
        }
    }
    std::process::exit(1);
}

fn explain(path: &std::path::Path) -> ! {
    let input = std::fs::read(path)
        .unwrap_or_else(|e| usage(&format!("cannot read {}: {e}", path.display())));
    // Every allocation above the budget, or the largest if only the peak
    // was over it.
    scylla_shard_fuzz::meter::explain_above(
        scylla_shard_fuzz::memory_budget(input.len()) / 2,
        true,
    );
    match scylla_shard_fuzz::check(&input) {
        Ok(_) => {
            println!("{}: within the rules", path.display());
            std::process::exit(0)
        }
        Err(finding) => {
            println!("{}: {finding}", path.display());
            std::process::exit(1)
        }
    }
}

fn usage(why: &str) -> ! {
    eprintln!("fuzz-decoders: {why}\nusage: fuzz-decoders [--seconds N] [--iterations N] [--seed N] [--corpus DIR] | --explain FILE");
    std::process::exit(2);
}
