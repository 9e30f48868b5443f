//! anyvip: announce a Kubernetes control-plane VIP over BGP while the local
//! apiserver is healthy.

use anyvip::api::client::{Client, ClientError};
use anyvip::config;

mod trim;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// Exit codes of the control commands (`status`, `drain`, `resume`,
/// `reload`); usage errors are 2 as well (clap's).
const EXIT_REFUSED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_UNREACHABLE: u8 = 3;

/// What the exit codes mean: `--help` and the EXIT STATUS of anyvip(8).
const EXIT_STATUS_HELP: &str =
    "Control commands (status, drain, resume, reload) talk to the running daemon \
over its control socket; they exit 0 when done, 1 when the daemon refused or failed, \
2 on a usage or configuration error, 3 when the daemon cannot be reached (not running, \
no permission to its socket, or no answer).";

#[derive(Parser)]
#[command(name = "anyvip", version, about, after_help = EXIT_STATUS_HELP)]
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
    /// Show the BGP sessions, the VIPs and the health checks.
    ///
    /// Peers: state, how long in it, prefixes sent and received, last
    /// error or NOTIFICATION. VIPs: announced, draining or withdrawn, and
    /// why. Checks: health, last result and latency.
    Status {
        /// Print the daemon's JSON document instead of tables.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Drain a VIP, or all: GRACEFUL_SHUTDOWN, then withdraw.
    ///
    /// The VIP is re-announced with GRACEFUL_SHUTDOWN (65535:0) and the
    /// configured drain prepends and MED, so routers move traffic away, and
    /// withdrawn after [drain] delay. It stays withdrawn until `resume`.
    /// Prints the VIPs affected.
    Drain {
        /// The VIP's prefix or address (e.g. 192.0.2.100/32); all VIPs if omitted.
        #[arg(value_parser = parse_vip)]
        vip: Option<String>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Undo a drain: the VIP is announced again while its checks are up.
    ///
    /// Prints the VIPs affected.
    Resume {
        /// The VIP's prefix or address; all VIPs if omitted.
        #[arg(value_parser = parse_vip)]
        vip: Option<String>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Re-read the configuration file, as SIGHUP does.
    ///
    /// Sessions whose settings did not change stay up, new peers start,
    /// removed ones are closed. An invalid file is refused with the reason
    /// (exit 1) and the running configuration stays. [api] settings apply
    /// only at the next start.
    Reload {
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Print the version.
    Version,
    /// Write the man pages or the shell completions into DIR (packaging).
    #[command(hide = true)]
    Generate { what: Generated, dir: PathBuf },
}

#[derive(Clone, Copy, ValueEnum)]
enum Generated {
    /// anyvip.8 and one anyvip-COMMAND.8 per command.
    Man,
    /// anyvip.bash, _anyvip (zsh) and anyvip.fish.
    Completions,
}

#[derive(Args)]
struct SocketArg {
    /// The daemon's control socket ([api] socket in its configuration).
    #[arg(
        short,
        long,
        value_name = "PATH",
        env = "ANYVIP_SOCKET",
        default_value = config::DEFAULT_SOCKET
    )]
    socket: PathBuf,
}

fn parse_vip(s: &str) -> Result<String, String> {
    anyvip::api::parse_vip(s).map(|p| p.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => run(&config),
        Command::Generate { what, dir } => {
            let result = match what {
                Generated::Man => generate::man_pages(Cli::command(), &dir),
                Generated::Completions => generate::completions(Cli::command(), &dir),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("anyvip: cannot write into {}: {e}", dir.display());
                    ExitCode::FAILURE
                }
            }
        }
        Command::Version => {
            println!("anyvip {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::CheckConfig { config } => match load(&config) {
            Ok((c, warnings, router_id)) => {
                // Accepted: `run` starts, and the check says why it fails.
                for w in &warnings {
                    eprintln!("{}: warning: {w}", config.display());
                }
                if router_id.is_auto() {
                    println!("router_id: auto -> {} ({router_id})", c.speaker.router_id);
                }
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
                ExitCode::from(EXIT_USAGE)
            }
        },
        Command::Status { json, socket } => control(socket, |c| async move {
            if json {
                // The daemon's own document, as it sent it.
                let (status, body) = c.request(hyper::Method::GET, "/v1/status").await?;
                if !status.is_success() {
                    let message = serde_json::from_slice::<anyvip::api::json::Error>(&body)
                        .map(|e| e.error)
                        .unwrap_or_else(|_| status.to_string());
                    return Err(ClientError::Refused { status, message });
                }
                Ok(String::from_utf8_lossy(&body).into_owned())
            } else {
                Ok(anyvip::api::table::status(&c.status().await?))
            }
        }),
        Command::Drain { vip, socket } => control(socket, |c| async move {
            let vips = c.drain(vip.as_deref()).await?;
            Ok(anyvip::api::table::vips(&vips))
        }),
        Command::Resume { vip, socket } => control(socket, |c| async move {
            let vips = c.resume(vip.as_deref()).await?;
            Ok(anyvip::api::table::vips(&vips))
        }),
        Command::Reload { socket } => control(socket, |c| async move {
            c.reload().await?;
            Ok("configuration reloaded\n".to_string())
        }),
    }
}

/// Run one control command against the daemon: print what it answers, or
/// why not, and exit accordingly.
fn control<F, Fut>(socket: SocketArg, f: F) -> ExitCode
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Result<String, ClientError>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("anyvip: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    match runtime.block_on(f(Client::new(socket.socket))) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("anyvip: {e}");
            ExitCode::from(match e {
                ClientError::NotRunning { .. }
                | ClientError::Denied { .. }
                | ClientError::Unreachable { .. } => EXIT_UNREACHABLE,
                ClientError::Refused { .. } | ClientError::BadAnswer(_) => EXIT_REFUSED,
            })
        }
    }
}

/// The configuration as `run` would start with it: validated, and its
/// router ID derived from the node if the file leaves it to the node.
fn load(
    path: &std::path::Path,
) -> Result<
    (
        config::Config,
        Vec<config::ConfigError>,
        config::RouterIdSource,
    ),
    config::ConfigErrors,
> {
    let (mut c, warnings) = config::load_with_warnings(path)?;
    match config::resolve_router_id(&mut c) {
        Ok(source) => Ok((c, warnings, source)),
        Err(e) => Err(config::ConfigErrors {
            file: path.to_path_buf(),
            errors: vec![e],
            warnings,
        }),
    }
}

fn run(path: &std::path::Path) -> ExitCode {
    // Before any thread exists (src/trim.rs).
    trim::one_malloc_arena();
    init_logging();
    let (config, router_id) = match load(path) {
        Ok((c, warnings, router_id)) => {
            for w in &warnings {
                tracing::warn!(key = %w.key, "{}", w.reason);
            }
            tracing::info!(router_id = %c.speaker.router_id, source = %router_id, "BGP identifier");
            (c, router_id)
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_USAGE);
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
    let result = runtime.block_on(async {
        // The control socket and metrics first: a socket that cannot be
        // bound stops the start, before any session or route exists.
        let api = anyvip::api::start(&config.api, control).await?;
        // Once settled, start-up's free heap goes back (src/trim.rs).
        tokio::spawn(async {
            tokio::time::sleep(trim::SETTLE).await;
            trim::release_free_heap();
        });
        let result = anyvip::daemon::run(path.to_path_buf(), config, router_id, requests).await;
        drop(api);
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "anyvip failed");
            ExitCode::FAILURE
        }
    }
}

/// One line per event; no colours or timestamps under journald (it adds
/// its own); `ANYVIP_LOG` filters (default info): a level, and/or
/// `target=level` pairs, e.g. `info,anyvip::bgp=debug`. A plain target
/// filter, not `EnvFilter`: its span and regex filters cost a regex engine
/// in the binary (memory, issue 14) that a VIP speaker's logs do not need.
fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let default = Targets::new().with_default(tracing::Level::INFO);
    let (filter, bad) = match std::env::var("ANYVIP_LOG") {
        Err(_) => (default, None),
        Ok(v) => match v.parse::<Targets>() {
            Ok(t) => (t, None),
            Err(e) => (
                default,
                Some(format!("ANYVIP_LOG={v:?}: {e}; logging at info")),
            ),
        },
    };
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false);
    if journald {
        builder.without_time().finish().with(filter).init();
    } else {
        builder.finish().with(filter).init();
    }
    if let Some(bad) = bad {
        tracing::warn!("{bad}");
    }
}

/// The packaging artefacts made from the clap definitions above, so that
/// they say exactly what `--help` says.
mod generate {
    use std::io::Write;
    use std::path::Path;

    use clap_complete::Shell;
    use clap_mangen::roff::{bold, italic, roman, Roff};
    use clap_mangen::Man;

    /// Section 8: a daemon and its administration commands.
    const SECTION: &str = "8";

    /// anyvip.8 (commands, exit status, files, environment) and one page per
    /// command (`anyvip-drain.8`, ...) with its options, as git and cargo do.
    pub fn man_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<()> {
        let mut cmd = cmd.disable_help_subcommand(true);
        // Gives each subcommand its display name, "anyvip-drain".
        cmd.build();
        let date = source_date();
        let source = format!("anyvip {}", env!("CARGO_PKG_VERSION"));
        let page = |c: clap::Command| {
            Man::new(c)
                .section(SECTION)
                .source(source.clone())
                .date(date.clone())
                .manual("System Manager's Manual")
        };
        let mut out = Vec::new();
        let top = page(cmd.clone());
        top.render_title(&mut out)?;
        top.render_name_section(&mut out)?;
        top.render_synopsis_section(&mut out)?;
        top.render_description_section(&mut out)?;
        top.render_options_section(&mut out)?;
        top.render_subcommands_section(&mut out)?;
        top_page_sections(&mut out)?;
        std::fs::write(dir.join(top.get_filename()), out)?;
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let page = page(sub.clone());
            let mut out = Vec::new();
            page.render(&mut out)?;
            let mut roff = Roff::new();
            roff.control("SH", ["SEE ALSO"]).text([
                bold("anyvip"),
                roman("(8), "),
                bold("anyvip.toml"),
                roman("(5)"),
            ]);
            roff.to_writer(&mut out)?;
            std::fs::write(dir.join(page.get_filename()), out)?;
        }
        Ok(())
    }

    /// What only the top page says: exit codes, files, environment.
    fn top_page_sections(out: &mut dyn Write) -> std::io::Result<()> {
        let mut roff = Roff::new();
        roff.control("SH", ["EXIT STATUS"])
            .text([roman(super::EXIT_STATUS_HELP)]);
        roff.control("SH", ["FILES"]);
        for (path, what) in [
            (
                "/etc/anyvip/anyvip.toml",
                "The configuration, described in anyvip.toml(5); anyvip check-config checks it.",
            ),
            (
                "/run/anyvip/anyvip.sock",
                "The control socket of the running daemon, mode 0660, group anyvip: \
                 members of the group may use status, drain, resume and reload.",
            ),
        ] {
            roff.control("TP", [])
                .text([bold(path)])
                .text([roman(what)]);
        }
        roff.control("SH", ["ENVIRONMENT"]);
        for (name, what) in [
            (
                "ANYVIP_SOCKET",
                "The control socket the control commands use (as --socket).",
            ),
            (
                "ANYVIP_LOG",
                "What the daemon logs: a level (default info; e.g. debug) and/or target=level pairs, e.g. info,anyvip::bgp=debug.",
            ),
        ] {
            roff.control("TP", [])
                .text([bold(name)])
                .text([roman(what)]);
        }
        roff.control("SH", ["SEE ALSO"]).text([
            bold("anyvip.toml"),
            roman("(5), "),
            bold("systemctl"),
            roman("(1), "),
            bold("nft"),
            roman("(8), "),
            italic("/usr/share/doc/anyvip/README.Debian"),
        ]);
        roff.to_writer(out)
    }

    /// The date on the pages: SOURCE_DATE_EPOCH's (reproducible builds), else
    /// none.
    fn source_date() -> String {
        std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(|secs| {
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
                humantime::format_rfc3339_seconds(t)
                    .to_string()
                    .chars()
                    .take(10)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// anyvip.bash, _anyvip and anyvip.fish: the names each shell's
    /// completion directory expects are the packager's business.
    pub fn completions(cmd: clap::Command, dir: &Path) -> std::io::Result<()> {
        // clap_complete offers hidden subcommands too (this one, `generate`):
        // complete a copy that has only the visible ones.
        let mut cmd = clap::Command::new("anyvip")
            .version(env!("CARGO_PKG_VERSION"))
            .about(env!("CARGO_PKG_DESCRIPTION"))
            .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            clap_complete::generate_to(shell, &mut cmd, "anyvip", dir)?;
        }
        Ok(())
    }
}
