//! Listening sockets: bound here, inherited from systemd (socket
//! activation, `LISTEN_FDS`), or handed over by the daemon this one
//! replaces (SIGHUP or an upgrade), so a restart never refuses a client.
//!
//! Inherited sockets are matched to the configured listeners by name
//! (`LISTEN_FDNAMES`, systemd's `FileDescriptorName=`: `cql`, `cql-tcp`,
//! `json`, `metrics`) or else by address. A handover passes the same
//! variables and `SCYLLA_COMMUNICATOR_HANDOVER`; the new daemon reports
//! readiness on the descriptor named by `SCYLLA_COMMUNICATOR_READY_FD`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UnixListener};

use crate::config::UnixListen;

/// systemd passes its sockets from this descriptor on.
const FIRST_FD: RawFd = 3;
const HANDOVER_VAR: &str = "SCYLLA_COMMUNICATOR_HANDOVER";
const READY_FD_VAR: &str = "SCYLLA_COMMUNICATOR_READY_FD";
const READY: &[u8] = b"ready\n";
/// Descriptors a handover passes at most (the child's fixed array).
const MAX_PASSED: usize = 16;

/// One inherited socket, not yet matched to a listener.
pub struct Inherited {
    name: Option<String>,
    fd: OwnedFd,
}

/// The sockets this process was started with (none unless `LISTEN_PID` is
/// ours or a handover started it). Clears the variables so that no child
/// inherits them.
pub fn inherited() -> Vec<Inherited> {
    let handover = std::env::var_os(HANDOVER_VAR).is_some();
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|n| n.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", HANDOVER_VAR] {
        std::env::remove_var(var);
    }
    if !(handover || for_us) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for i in 0..count.clamp(0, 64) {
        // SAFETY: the service manager (or the daemon handing over) passed
        // these descriptors open to this process, and nothing else in it
        // owns them: they are taken once, here.
        let passed = unsafe { OwnedFd::from_raw_fd(FIRST_FD + i) };
        // A close-on-exec copy, so later children do not inherit it.
        let fd = match passed.try_clone() {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!(fd = FIRST_FD + i, error = %e, "ignoring an inherited descriptor");
                continue;
            }
        };
        out.push(Inherited {
            name: names.get(i as usize).filter(|n| !n.is_empty()).cloned(),
            fd,
        });
    }
    out
}

/// Tells the daemon that started this one (handover) that it serves now.
pub fn report_ready() {
    let Some(fd) = std::env::var(READY_FD_VAR)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
    else {
        return;
    };
    std::env::remove_var(READY_FD_VAR);
    // SAFETY: the daemon handing over passed this descriptor (one end of a
    // socket pair) for this purpose only; it is taken once, here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut stream = std::os::unix::net::UnixStream::from(fd);
    let _ = stream.write_all(READY);
}

/// The inherited socket `at` says is at the listener's address, else the
/// one carrying the listener's name (a systemd socket unit gives one name
/// to all its sockets, so the address decides first).
fn take(
    inherited: &mut Vec<Inherited>,
    at: impl Fn(&Inherited) -> bool,
    name: &str,
) -> Option<Inherited> {
    let index = inherited.iter().position(at).or_else(|| {
        inherited
            .iter()
            .position(|i| i.name.as_deref() == Some(name))
    })?;
    Some(inherited.remove(index))
}

/// A Unix listener: inherited (by path or `name`) or bound. The flag says
/// whether this process created the socket file (and removes it on stop).
pub fn unix(
    listen: &UnixListen,
    name: &str,
    inherited: &mut Vec<Inherited>,
) -> Result<(UnixListener, bool), String> {
    let at = |i: &Inherited| {
        let fd = i.fd.try_clone().ok();
        let path = fd
            .and_then(|fd| std::os::unix::net::UnixListener::from(fd).local_addr().ok())
            .and_then(|a| a.as_pathname().map(Path::to_path_buf));
        path.as_deref() == Some(listen.path.as_path())
    };
    let found = take(inherited, at, name);
    if let Some(found) = found {
        let std = std::os::unix::net::UnixListener::from(found.fd);
        std.set_nonblocking(true)
            .map_err(|e| format!("{}: {e}", listen.path.display()))?;
        tracing::info!(path = %listen.path.display(), "using an inherited socket");
        return UnixListener::from_std(std)
            .map(|l| (l, false))
            .map_err(|e| format!("{}: {e}", listen.path.display()));
    }
    bind_unix(listen).map(|l| (l, true))
}

/// A TCP listener: inherited (by address or `name`) or bound.
pub async fn tcp(
    addr: SocketAddr,
    name: &str,
    inherited: &mut Vec<Inherited>,
) -> Result<TcpListener, String> {
    let at = |i: &Inherited| {
        let fd = i.fd.try_clone().ok();
        fd.and_then(|fd| std::net::TcpListener::from(fd).local_addr().ok()) == Some(addr)
    };
    let found = take(inherited, at, name);
    if let Some(found) = found {
        let std = std::net::TcpListener::from(found.fd);
        std.set_nonblocking(true)
            .map_err(|e| format!("{addr}: {e}"))?;
        tracing::info!(%addr, "using an inherited socket");
        return TcpListener::from_std(std).map_err(|e| format!("{addr}: {e}"));
    }
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))
}

fn bind_unix(listen: &UnixListen) -> Result<UnixListener, String> {
    let path = &listen.path;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // A socket file left by a stopped daemon; anything else is refused.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(format!("{} exists and is not a socket", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(listen.mode))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if listen.owner.is_some() || listen.group.is_some() {
        let uid = listen.owner.as_deref().map(user_id).transpose()?;
        let gid = listen.group.as_deref().map(group_id).transpose()?;
        std::os::unix::fs::chown(path, uid, gid)
            .map_err(|e| format!("{}: chown: {e}", path.display()))?;
    }
    Ok(listener)
}

fn user_id(name: &str) -> Result<u32, String> {
    if let Ok(id) = name.parse() {
        return Ok(id);
    }
    lookup_id("/etc/passwd", name).ok_or_else(|| format!("unknown user {name}"))
}

fn group_id(name: &str) -> Result<u32, String> {
    if let Ok(id) = name.parse() {
        return Ok(id);
    }
    lookup_id("/etc/group", name).ok_or_else(|| format!("unknown group {name}"))
}

/// The id (third field) of `name` in a passwd-format file.
fn lookup_id(file: &str, name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then(|| fields.nth(1)?.parse().ok())?
    })
}

/// A listening socket this process serves, for a handover.
pub struct Passed<'a> {
    pub name: &'static str,
    pub fd: std::os::fd::BorrowedFd<'a>,
}

/// Starts the next daemon (the program at argv[0], so an upgraded binary
/// takes over) with the same arguments and these listening sockets, and
/// waits until it serves. Returns its pid; on failure the next daemon is
/// stopped and this one goes on serving.
pub async fn hand_over(sockets: &[Passed<'_>], wait: Duration) -> Result<u32, String> {
    if sockets.len() + 1 > MAX_PASSED {
        return Err("too many listening sockets to hand over".into());
    }
    let mut args = std::env::args_os();
    let program = args
        .next()
        .filter(|p| Path::new(p).components().count() > 1)
        .map(std::path::PathBuf::from)
        .map_or_else(std::env::current_exe, Ok)
        .map_err(|e| format!("the daemon's program: {e}"))?;
    let copies = sockets
        .iter()
        .map(|s| s.fd.try_clone_to_owned())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("duplicating a listening socket: {e}"))?;
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| format!("a readiness socket: {e}"))?;
    // Descriptors as the child will see them: the sockets from FIRST_FD on,
    // then the readiness socket.
    let sources: Vec<RawFd> = copies
        .iter()
        .map(|fd| fd.as_raw_fd())
        .chain(std::iter::once(theirs.as_fd().as_raw_fd()))
        .collect();
    let ready_fd = FIRST_FD + sockets.len() as RawFd;
    let names: Vec<&str> = sockets.iter().map(|s| s.name).collect();
    let mut command = std::process::Command::new(&program);
    command
        .args(args)
        .env("LISTEN_FDS", sockets.len().to_string())
        .env("LISTEN_FDNAMES", names.join(":"))
        .env(HANDOVER_VAR, "1")
        .env(READY_FD_VAR, ready_fd.to_string())
        .env_remove("LISTEN_PID")
        .stdin(std::process::Stdio::null());
    let above = FIRST_FD + sources.len() as RawFd;
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe calls (fcntl, dup2, close) on descriptors it
    // owns there; it allocates nothing (`sources` was built before fork).
    unsafe {
        command.pre_exec(move || {
            // First above every target, so no source is overwritten, then
            // into place (dup2 clears close-on-exec).
            let mut moved = [0 as RawFd; MAX_PASSED];
            for (i, src) in sources.iter().enumerate() {
                let fd = libc::fcntl(*src, libc::F_DUPFD, above);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                moved[i] = fd;
            }
            for (i, fd) in moved.iter().take(sources.len()).enumerate() {
                if libc::dup2(*fd, FIRST_FD + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(*fd);
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("starting {}: {e}", program.display()))?;
    drop(theirs);
    drop(copies);
    let pid = child.id();
    ours.set_nonblocking(true)
        .map_err(|e| format!("readiness socket: {e}"))?;
    let mut ours =
        tokio::net::UnixStream::from_std(ours).map_err(|e| format!("readiness socket: {e}"))?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 16];
        while !answer.ends_with(READY) {
            match ours.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    if read.is_ok() && answer.ends_with(READY) {
        // Not waited for: it outlives this process.
        drop(child);
        return Ok(pid);
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(match read {
        Err(_) => format!("the next daemon (pid {pid}) was not ready within {wait:?}"),
        Ok(()) => format!("the next daemon (pid {pid}) stopped before it was ready"),
    })
}
