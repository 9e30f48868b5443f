//! anyvip-lab-apiserver: a stand-in kube-apiserver for the lab and the
//! demo. See the `anyvip_lab` crate documentation for what it answers and
//! its modes.
//!
//! ```sh
//! anyvip-lab-apiserver --node n1 --listen 127.0.0.1:6443 \
//!     --ca-out /run/lab/n1/ca.crt --control /run/lab/n1/apiserver.sock
//! echo fail | socat - UNIX-CONNECT:/run/lab/n1/apiserver.sock   # readyz 500
//! ```
//!
//! Once it listens it prints `listening on ADDR` (the real port with
//! `--listen ...:0`) on stdout; the CA file is written before that line.
//! SIGTERM or SIGINT stop it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyvip_lab::{control, server_config, Apiserver, Mode, Pki};
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(
    name = "anyvip-lab-apiserver",
    version,
    about = "A stand-in kube-apiserver for the anyvip lab"
)]
struct Cli {
    /// The node name, reported by `/` ("served-by NAME").
    #[arg(long)]
    node: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Serve this certificate (PEM, chain) instead of generating one.
    #[arg(long, requires = "key", conflicts_with = "ca_out")]
    cert: Option<PathBuf>,
    /// The key of --cert (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Write the CA of the generated certificate here (PEM), for clients'
    /// `ca_file`.
    #[arg(long)]
    ca_out: Option<PathBuf>,
    /// Extra names or addresses for the generated certificate (repeatable);
    /// it always holds localhost, 127.0.0.1, ::1 and the listen address.
    #[arg(long)]
    san: Vec<String>,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long, conflicts_with_all = ["cert", "key", "ca_out"])]
    plain: bool,
    /// A unix socket taking modes, one per line: ok, fail, hang, down, status.
    #[arg(long)]
    control: Option<PathBuf>,
    /// The mode to start in.
    #[arg(long, default_value = "ok")]
    mode: Mode,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("anyvip-lab-apiserver: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("anyvip-lab-apiserver: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let tls = if cli.plain {
        None
    } else if let (Some(cert), Some(key)) = (&cli.cert, &cli.key) {
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        Some(server_config(&read(cert)?, &read(key)?)?)
    } else {
        let mut sans = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        if !cli.listen.ip().is_unspecified() {
            sans.push(cli.listen.ip().to_string());
        }
        for s in &cli.san {
            if !sans.contains(s) {
                sans.push(s.clone());
            }
        }
        let pki = Pki::generate(&sans)?;
        if let Some(path) = &cli.ca_out {
            write_atomically(path, pki.ca_pem.as_bytes())?;
        }
        Some(server_config(
            pki.cert_pem.as_bytes(),
            pki.key_pem.as_bytes(),
        )?)
    };
    let server = Arc::new(
        Apiserver::start(cli.listen, &cli.node, tls, cli.mode)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?,
    );
    let _control = match &cli.control {
        Some(path) => Some(
            control(path, server.clone())
                .map_err(|e| format!("control socket {}: {e}", path.display()))?,
        ),
        None => None,
    };
    println!("listening on {}", server.local_addr());
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    if let Some(path) = &cli.control {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Write through a temporary file and rename, so a reader never sees a
/// half-written CA.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}
