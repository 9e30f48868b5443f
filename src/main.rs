//! anyvip: announce a Kubernetes control-plane VIP over BGP while the local
//! apiserver is healthy.

use anyvip::config;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "anyvip", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (what the systemd unit starts).
    Run {
        #[arg(short, long, default_value = "/etc/anyvip/anyvip.toml")]
        config: PathBuf,
    },
    /// Check a configuration file and list every problem in it.
    CheckConfig {
        #[arg(short, long, default_value = "/etc/anyvip/anyvip.toml")]
        config: PathBuf,
    },
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => run(&config),
        Command::Version => {
            println!("anyvip {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::CheckConfig { config } => match config::load(&config) {
            Ok(c) => {
                println!(
                    "{}: ok ({} peer(s), {} VIP(s))",
                    config.display(),
                    c.peers.len(),
                    c.vips.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
    }
}

fn run(path: &std::path::Path) -> ExitCode {
    init_logging();
    let config = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // One thread: keepalives, health checks and the API share one event
    // loop, so a hung loop stops keepalives too (design invariant 4).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (control, requests) = anyvip::control::Control::new();
    match runtime.block_on(anyvip::daemon::run(
        path.to_path_buf(),
        config,
        control,
        requests,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "anyvip failed");
            ExitCode::FAILURE
        }
    }
}

/// One line per event; no colours or timestamps under journald (it adds
/// its own), `RUST_LOG` / `ANYVIP_LOG` filters (default info).
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("ANYVIP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false);
    if journald {
        builder.without_time().init();
    } else {
        builder.init();
    }
}
