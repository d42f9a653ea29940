//! The hostile-server suite: a fake CQL server answers the library with
//! malformed, lying, oversized and duplicated frames, and each case checks
//! the error the library reports, that the request never outlives its
//! timeout, the memory the case costs, what became of the connection, and
//! that the next ordinary request on the same session succeeds.
//!
//! Each case runs in a child process of this test binary (the environment
//! variable `HOSTILE_CASE` names it), so its memory peak is its own and a
//! hang is killed rather than stalling the run. Without a harness
//! (`harness = false`); it takes libtest's filters: `cargo test --test
//! hostile -- many_null` runs the cases whose name contains `many_null`.

mod cases;
mod child;
mod frames;
mod memory;
mod server;

use std::collections::VecDeque;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Names the case a child process runs.
const CASE_ENV: &str = "HOSTILE_CASE";
/// A child still running after this is hung and killed.
const CHILD_DEADLINE: Duration = Duration::from_secs(90);

fn main() {
    if let Ok(name) = std::env::var(CASE_ENV) {
        std::process::exit(run_child(&name));
    }
    let options = Options::parse(std::env::args().skip(1));
    let all = cases::all();
    let selected: Vec<&'static str> = all
        .iter()
        .map(|c| c.name)
        .filter(|name| options.selects(name))
        .collect();
    if options.list {
        for name in &selected {
            println!("{name}: test");
        }
        return;
    }
    println!("\nrunning {} hostile-server cases", selected.len());
    let started = Instant::now();
    let queue = Arc::new(Mutex::new(
        selected.iter().copied().collect::<VecDeque<_>>(),
    ));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..options.threads)
        .map(|_| {
            let (queue, failures) = (queue.clone(), failures.clone());
            std::thread::spawn(move || loop {
                let Some(name) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front() else {
                    return;
                };
                match run_case(name) {
                    Ok(report) => println!("test {name} ... ok ({report})"),
                    Err(why) => {
                        println!("test {name} ... FAILED\n    {why}");
                        failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(name);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    let failures = failures.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let outcome = if failures.is_empty() { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {outcome}. {} passed; {} failed; finished in {:.1}s\n",
        selected.len() - failures.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        println!("failures:\n    {}", failures.join("\n    "));
        std::process::exit(101);
    }
}

/// The libtest options this harness honours; the others are ignored.
struct Options {
    filters: Vec<String>,
    exact: bool,
    list: bool,
    /// `--ignored`: there are no ignored cases, so nothing runs.
    ignored_only: bool,
    threads: usize,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> Options {
        let mut options = Options {
            filters: Vec::new(),
            exact: false,
            list: false,
            ignored_only: false,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
        };
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--exact" => options.exact = true,
                "--list" => options.list = true,
                "--ignored" => options.ignored_only = true,
                "--test-threads" => {
                    if let Some(n) = args.next().and_then(|n| n.parse().ok()) {
                        options.threads = n;
                    }
                }
                "--skip" | "--format" | "--color" | "-Z" | "--logfile" | "--report-time" => {
                    let _ = args.next();
                }
                flag if flag.starts_with("--test-threads=") => {
                    if let Ok(n) = flag["--test-threads=".len()..].parse() {
                        options.threads = n;
                    }
                }
                flag if flag.starts_with('-') => {}
                filter => options.filters.push(filter.to_owned()),
            }
        }
        options.threads = options.threads.max(1);
        options
    }

    fn selects(&self, name: &str) -> bool {
        if self.ignored_only {
            return false;
        }
        self.filters.is_empty()
            || self.filters.iter().any(|f| {
                if self.exact {
                    name == f
                } else {
                    name.contains(f.as_str())
                }
            })
    }
}

/// Runs one case in a child process; the cases that say so again under
/// the system allocator, whose memory release the library's must match.
fn run_case(name: &str) -> Result<String, String> {
    let (report, retained) = run_in_child(name, None)?;
    let compare = cases::all()
        .iter()
        .any(|c| c.name == name && c.release_vs_system);
    if !compare {
        return Ok(report);
    }
    let (_, system) = run_in_child(name, Some("system"))?;
    let (ours, system) = (retained.unwrap_or(usize::MAX), system.unwrap_or(0));
    if ours > system + child::SLACK {
        return Err(format!(
            "memory: {:.1} MiB still resident after the free, {:.1} MiB with the system allocator",
            memory::mib(ours),
            memory::mib(system)
        ));
    }
    Ok(format!(
        "{report}; system allocator: retained +{:.1} MiB",
        memory::mib(system)
    ))
}

/// Runs one case in a child process, killed at [`CHILD_DEADLINE`]: its
/// report and the bytes it kept after the free.
fn run_in_child(name: &str, allocator: Option<&str>) -> Result<(String, Option<usize>), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut command = Command::new(exe);
    if let Some(allocator) = allocator {
        command.env("SSHARD_ALLOCATOR", allocator);
    }
    let mut child = command
        .env(CASE_ENV, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    })
    .collect();
    let deadline = Instant::now() + CHILD_DEADLINE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("wait: {e}")),
        }
    };
    let output: Vec<String> = readers
        .into_iter()
        .map(|r| r.join().unwrap_or_default())
        .collect();
    let stdout = output.first().cloned().unwrap_or_default();
    let stderr = output.get(1).cloned().unwrap_or_default();
    let report = stdout
        .lines()
        .find_map(|l| l.strip_prefix("HOSTILE-OK "))
        .map(str::to_owned);
    let failure = stdout
        .lines()
        .find_map(|l| l.strip_prefix("HOSTILE-FAILED "))
        .map(str::to_owned);
    let retained = stdout
        .lines()
        .find_map(|l| l.strip_prefix(child::RETAINED_PREFIX)?.parse().ok());
    match (status, report, failure) {
        (None, _, _) => Err(format!("hung: killed after {CHILD_DEADLINE:?}\n{stderr}")),
        (Some(s), Some(report), _) if s.success() => Ok((report, retained)),
        (_, _, Some(why)) => Err(why),
        (Some(s), _, None) => Err(format!("the case process ended with {s}\n{stderr}")),
    }
}

/// Child side: runs the named case and prints its verdict.
fn run_child(name: &str) -> i32 {
    let Some(case) = cases::all().into_iter().find(|c| c.name == name) else {
        println!("HOSTILE-FAILED no case named {name}");
        return 1;
    };
    match child::run(&case) {
        Ok(report) => {
            println!("HOSTILE-OK {report}");
            0
        }
        Err(why) => {
            println!("HOSTILE-FAILED {why}");
            1
        }
    }
}
