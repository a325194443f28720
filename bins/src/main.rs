//! `monitor-server`: parse the command line, load the configuration, start
//! telemetry, and run one command of the `ordermon` crate.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ordermon::config::duration;
use ordermon::{Config, client, ops, secret, token_settings};
use ordermon_domain::user::Role;
use ordermon_telemetry::{LogFormat, TelemetryConfig};

/// mimalloc instead of the system allocator: the request path allocates and
/// frees many small buffers across worker threads (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The ordermon order-monitoring server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (keys in docs/configuration.md); `ORDERMON_*`
    /// environment variables override it.
    #[arg(
        long,
        short,
        global = true,
        env = "ORDERMON_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Check every configured backend; exits non-zero naming the one that failed.
    Check,
    /// Print the running server's /status.
    Status {
        /// Base URL of the server (default: http://{http.addr}).
        #[arg(long)]
        url: Option<String>,
        /// Bearer token (default: a short-lived token for the user `admin`,
        /// which must be an active admin, from the configured secret).
        #[arg(long)]
        token: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print a JWT signed with the configured secret, for a user that exists
    /// and is active in the configured database (the server refuses tokens
    /// of unknown or disabled users; the token acts with at most the user's
    /// role).
    Token {
        /// The user id the token speaks for.
        #[arg(long)]
        sub: String,
        /// admin, trader or viewer.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Validity, e.g. 30m, 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        ttl: Duration,
        /// Create the user (active, with --role) when it does not exist: how
        /// a new deployment gets its first admin.
        #[arg(long)]
        create: bool,
    },
    /// Print the effective configuration as TOML, secrets redacted.
    Config,
    /// List or replay the bus's dead letters.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Manage users' sign-in.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Set a user's password, read from the first line of standard input
    /// (never the command line), and sign the user's sessions out. Standard
    /// input must not be a terminal: pipe the password in, e.g.
    /// `read -rs PW && printf '%s\n' "$PW" | monitor-server user set-password alice`.
    SetPassword {
        /// The user id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum DlqAction {
    /// Print a consumer group's dead letters as JSON lines, oldest first.
    List {
        /// The consumer group (default: this instance's, `instance-{bus.instance}`).
        #[arg(long)]
        group: Option<String>,
        /// Most dead letters printed (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Send dead letters back to their group for another try.
    Replay {
        /// The consumer group (default: this instance's).
        #[arg(long)]
        group: Option<String>,
        /// Only this event (repeatable); without any, every dead letter of the group.
        #[arg(long = "id", value_name = "EVENT_ID")]
        ids: Vec<ordermon_domain::ids::EventId>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("`{s}` is not one of admin, trader, viewer"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    duration::parse(s).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The cause chain on one line, without a backtrace: this is for operators.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref()).context("loading the configuration")?;
    let command = cli.command.unwrap_or(Command::Serve);
    // One-shot commands print results on stdout; keep their logs to warnings.
    let filter = match command {
        Command::Serve | Command::Migrate => config.logs.level.clone(),
        _ => "warn".to_owned(),
    };
    // `serve` also writes the per-user and system log files under `logs.dir`.
    let (extra, _log_writer) = if matches!(command, Command::Serve) {
        let (layer, writer) = ordermon::logs::user_log_layer(&config)?;
        (vec![layer], Some(writer))
    } else {
        (Vec::new(), None)
    };
    // Traces are exported by `serve` only: one-shot commands trace nothing.
    let otlp = matches!(command, Command::Serve)
        .then(|| ordermon::ops::otlp_config(&config))
        .flatten();
    let telemetry = ordermon_telemetry::init_with_layers(
        &TelemetryConfig {
            format: config.logs.format,
            filter: Some(filter),
            service: "monitor-server".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            otlp,
        },
        extra,
    )
    .context("starting telemetry")?;
    match command {
        Command::Serve => {
            let served = serve(config).await;
            // The last spans (shutdown included) go out before the process ends.
            let flush = telemetry.clone();
            let _ =
                tokio::task::spawn_blocking(move || flush.shutdown(Duration::from_secs(5))).await;
            served
        }
        Command::Check => check(&config).await,
        Command::Status { url, token } => status(&config, url, token).await,
        Command::Migrate => {
            println!("{}", ops::migrate(&config).await.context("migrating")?);
            Ok(())
        }
        Command::Token {
            sub,
            role,
            ttl,
            create,
        } => {
            let max = config.auth.max_token_ttl;
            if ttl > max {
                anyhow::bail!(
                    "--ttl {} is longer than auth.max_token_ttl ({})",
                    duration::format(ttl),
                    duration::format(max)
                );
            }
            let (secret, _) = secret::resolve(&config.auth).context("resolving the JWT secret")?;
            let auth = token_settings(&config.auth, secret);
            // Refuse a bad subject before touching the database.
            let token = ordermon_http::mint_token(&auth, &sub, role, ttl)
                .with_context(|| format!("minting a token for `{sub}`"))?;
            match ops::token_user(&config, &sub, role, create).await? {
                ops::TokenUser::Active { role: acts } if acts != role => eprintln!(
                    "note: `{sub}` is a {} in the database: the token acts as one",
                    acts.as_str()
                ),
                ops::TokenUser::Created => {
                    eprintln!("created user `{sub}` ({})", role.as_str());
                }
                ops::TokenUser::Unchecked => eprintln!(
                    "note: database.url = memory: `{sub}` could not be checked here; \
                     the server refuses the token unless the user exists there"
                ),
                ops::TokenUser::Active { .. } => {}
            }
            println!("{token}");
            Ok(())
        }
        Command::Dlq { action } => dlq(&config, action).await,
        Command::User { action } => user(&config, action).await,
        Command::Config => {
            print!(
                "{}",
                config
                    .to_redacted_toml()
                    .context("printing the configuration")?
            );
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = config.http.addr.clone();
    let format = config.logs.format;
    let app = ordermon::build(config).await.context("starting")?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!(addr = %local, "monitor-server listening");
    if format == LogFormat::Pretty {
        tracing::info!("try: curl http://{local}/health/ready");
    }
    app.serve(listener, shutdown_signal()).await
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

async fn dlq(config: &Config, action: DlqAction) -> anyhow::Result<()> {
    match action {
        DlqAction::List { group, limit } => {
            let group = ops::dlq_group(config, group);
            let letters = ops::dlq_list(config, &group, limit)
                .await
                .with_context(|| format!("listing the dead letters of `{group}`"))?;
            for l in &letters {
                println!(
                    "{}",
                    serde_json::to_string(l).context("printing a dead letter")?
                );
            }
            eprintln!("{} dead letter(s) in `{group}`", letters.len());
            Ok(())
        }
        DlqAction::Replay { group, ids } => {
            let group = ops::dlq_group(config, group);
            let outcome = ops::dlq_replay(config, &group, &ids)
                .await
                .with_context(|| format!("replaying the dead letters of `{group}`"))?;
            println!("replayed {} dead letter(s) to `{group}`", outcome.replayed);
            Ok(())
        }
    }
}

async fn user(config: &Config, action: UserAction) -> anyhow::Result<()> {
    match action {
        UserAction::SetPassword { id } => {
            let password = read_password()?;
            ops::set_password(config, &id, &password).await?;
            println!("password set for `{id}`; their sessions are signed out");
            Ok(())
        }
    }
}

/// The first line of standard input, without its line ending. A terminal is
/// refused: what is typed there would be shown.
fn read_password() -> anyhow::Result<String> {
    use std::io::{BufRead as _, IsTerminal as _};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        anyhow::bail!(
            "the password is read from standard input, which is a terminal here; pipe it in, e.g. \
             `read -rs PW && printf '%s\\n' \"$PW\" | monitor-server user set-password ID`"
        );
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        anyhow::bail!("no password on standard input (the first line is the password)");
    }
    Ok(password.to_owned())
}

async fn check(config: &Config) -> anyhow::Result<()> {
    let checks = ops::check(config).await;
    for c in &checks {
        println!("{c}");
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.outcome.is_err())
        .map(|c| c.component)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("check failed: {}", failed.join(", "))
    }
}

async fn status(config: &Config, url: Option<String>, token: Option<String>) -> anyhow::Result<()> {
    let base = url.unwrap_or_else(|| {
        // A wildcard listen address is reached on loopback.
        let addr = config
            .http
            .addr
            .replace("0.0.0.0:", "127.0.0.1:")
            .replace("[::]:", "[::1]:");
        format!("http://{addr}")
    });
    let token = match token {
        Some(t) => t,
        None => {
            let (secret, _) = secret::resolve(&config.auth).context("resolving the JWT secret")?;
            let auth = token_settings(&config.auth, secret);
            // The token acts for a user the server admits: the bootstrap
            // admin when one is configured, else the demo's `admin`.
            let sub = config.auth.bootstrap_admin.as_deref().unwrap_or("admin");
            ordermon_http::mint_token(&auth, sub, Role::Admin, Duration::from_secs(300))
                .with_context(|| format!("minting an admin token for `{sub}`"))?
        }
    };
    let url = format!("{}/status", base.trim_end_matches('/'));
    let response = client::get(&url, Some(&token), Duration::from_secs(10))
        .await
        .context("asking for the status")?;
    let body = serde_json::from_str::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(response.body);
    println!("{body}");
    if response.status != 200 {
        anyhow::bail!("{url} answered {}", response.status);
    }
    Ok(())
}
