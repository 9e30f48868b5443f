//! anyvip: announce a Kubernetes control-plane VIP over BGP while the local
//! apiserver is healthy.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "anyvip", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the version.
    Version,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => println!("anyvip {}", env!("CARGO_PKG_VERSION")),
    }
}
