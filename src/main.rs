use clap::Parser;
use tracing_subscriber::EnvFilter;

use videoshare::app::App;
use videoshare::config::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("videoshare=info,tower_http=warn")),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => App::build(&args).await?.run_until_stopped().await,
    }
    Ok(())
}
